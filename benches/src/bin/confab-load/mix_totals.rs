//! `mix`'s per-action figures: the workers' windows (between two collects) summed per action,
//! for the whole run (counts, errors, latencies, ramps included, as before) and for the
//! measured halves of the steps alone, whose rates (`per_s:<action>`) are what a given number
//! of users costs in each kind of request.

use crate::proto::FinalReport;
use crate::report::{self, LatencySummary, Report};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// One action's sums.
pub struct Totals {
    pub hist: Histogram<u64>,
    pub count: u64,
    pub errors: u64,
    pub rejected: u64,
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            hist: report::new_histogram(),
            count: 0,
            errors: 0,
            rejected: 0,
        }
    }
}

/// Sums per action name.
#[derive(Default)]
pub struct ActionTable(pub BTreeMap<String, Totals>);

impl ActionTable {
    /// Adds the workers' windows.
    pub fn absorb(&mut self, finals: &[FinalReport]) -> anyhow::Result<()> {
        for f in finals {
            for a in &f.requests {
                let entry = self.0.entry(a.action.clone()).or_default();
                entry.hist.add(report::decode(&a.hist)?)?;
                entry.count += a.count;
                entry.errors += a.errors;
                entry.rejected += a.rejected;
            }
        }
        Ok(())
    }

    /// Adds another table.
    pub fn merge(&mut self, other: &ActionTable) -> anyhow::Result<()> {
        for (action, t) in &other.0 {
            let entry = self.0.entry(action.clone()).or_default();
            entry.hist.add(&t.hist)?;
            entry.count += t.count;
            entry.errors += t.errors;
            entry.rejected += t.rejected;
        }
        Ok(())
    }

    /// `per_s:<action>`: requests per second of `seconds`.
    pub fn rates(&self, seconds: f64) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .map(|(action, t)| {
                let rate = if seconds > 0.0 {
                    t.count as f64 / seconds
                } else {
                    0.0
                };
                (format!("per_s:{action}"), rate)
            })
            .collect()
    }

    /// The whole run's `request:<action>` latencies and `requests:`/`errors:`/`rejected:`
    /// counts.
    pub fn write_run(&self, report: &mut Report) {
        for (action, t) in &self.0 {
            report.latencies.insert(
                format!("request:{action}"),
                LatencySummary::from_histogram(&t.hist),
            );
            report
                .counters
                .insert(format!("requests:{action}"), t.count as f64);
            report
                .counters
                .insert(format!("errors:{action}"), t.errors as f64);
            report
                .counters
                .insert(format!("rejected:{action}"), t.rejected as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ActionTotals;

    fn window(action: &str, micros: &[u64], errors: u64) -> FinalReport {
        let mut hist = report::new_histogram();
        for &m in micros {
            report::record(&mut hist, m);
        }
        FinalReport {
            requests: vec![ActionTotals {
                action: action.into(),
                hist: report::encode(&hist),
                count: micros.len() as u64,
                errors,
                rejected: 0,
            }],
            ..FinalReport::default()
        }
    }

    #[test]
    fn windows_sum_per_action_and_rate_over_the_measured_time() {
        let mut measured = ActionTable::default();
        measured
            .absorb(&[
                window("app_status_ids", &[1000, 2000], 0),
                window("app_status_ids", &[3000], 1),
                window("app_ws_ping", &[100; 30], 0),
            ])
            .expect("windows decode");
        let status = &measured.0["app_status_ids"];
        assert_eq!((status.count, status.errors, status.hist.len()), (3, 1, 3));
        let rates = measured.rates(10.0);
        assert_eq!(rates["per_s:app_status_ids"], 0.3);
        assert_eq!(rates["per_s:app_ws_ping"], 3.0);

        let mut run = ActionTable::default();
        run.absorb(&[window("app_status_ids", &[500], 0)])
            .expect("window decodes");
        run.merge(&measured).expect("tables merge");
        let mut report = Report::new("mix", "test", serde_json::Value::Null);
        run.write_run(&mut report);
        assert_eq!(report.counters["requests:app_status_ids"], 4.0);
        assert_eq!(report.counters["errors:app_status_ids"], 1.0);
        assert_eq!(report.latencies["request:app_ws_ping"].count, 30);
    }
}
