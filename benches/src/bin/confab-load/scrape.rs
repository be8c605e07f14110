//! Server-side counters from each node's Prometheus `/metrics` (text format 0.0.4): the
//! figures only the servers know, such as the bytes presence gossip sends between nodes or the
//! pushes a dispatcher sent. Read before and after a window; the difference over its length
//! is the rate.

use std::collections::BTreeMap;
use std::time::Duration;

/// One node's metrics: name → value, the samples of labelled series summed per name.
pub type Metrics = BTreeMap<String, f64>;

/// Parses the text format: `name value` or `name{labels} value`; comments and unreadable
/// lines are skipped.
pub fn parse(text: &str) -> Metrics {
    let mut out = Metrics::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(line.len());
        let name = &line[..name_end];
        let rest = &line[name_end..];
        let rest = match rest.strip_prefix('{') {
            Some(labelled) => match labelled.rfind('}') {
                Some(end) => &labelled[end + 1..],
                None => continue,
            },
            None => rest,
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if !name.is_empty() {
            *out.entry(name.to_string()).or_insert(0.0) += value;
        }
    }
    out
}

/// `GET http://{addr}/metrics` of every node, in order; a node that does not answer gives an
/// empty map (the counters it would have shown read as absent, not as a failed run).
pub async fn all(client: &reqwest::Client, addrs: &[String]) -> Vec<Metrics> {
    let reads = addrs.iter().map(|addr| async move {
        let answer = client
            .get(format!("http://{addr}/metrics"))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => r.text().await.map(|t| parse(&t)).ok(),
            _ => None,
        }
        .unwrap_or_default()
    });
    futures_util::future::join_all(reads).await
}

/// The sum over nodes of `name`'s growth between two readings (counters never shrink; a node
/// restarted in between contributes what it counted since).
pub fn delta(before: &[Metrics], after: &[Metrics], name: &str) -> f64 {
    after
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let now = a.get(name).copied().unwrap_or(0.0);
            let then = before
                .get(i)
                .and_then(|b| b.get(name))
                .copied()
                .unwrap_or(0.0);
            if now >= then {
                now - then
            } else {
                now
            }
        })
        .sum()
}

/// Whether any node shows `name` at all (a binary without the feature shows none).
pub fn present(readings: &[Metrics], name: &str) -> bool {
    readings.iter().any(|m| m.contains_key(name))
}

/// The largest value of `name` on any node.
pub fn max(readings: &[Metrics], name: &str) -> f64 {
    readings
        .iter()
        .filter_map(|m| m.get(name).copied())
        .fold(0.0, f64::max)
}

/// The smallest value of `name` on the nodes that show it.
pub fn min(readings: &[Metrics], name: &str) -> Option<f64> {
    readings
        .iter()
        .filter_map(|m| m.get(name).copied())
        .reduce(f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_labelled_samples() {
        let text = "# HELP confab_presence_bytes_sent_total bytes\n\
                    # TYPE confab_presence_bytes_sent_total counter\n\
                    confab_presence_bytes_sent_total 1234\n\
                    confab_http_requests_total{method=\"GET\",status=\"200\"} 5\n\
                    confab_http_requests_total{method=\"POST\",status=\"201\"} 7\n\
                    confab_notify_outbox_backlog 3.5\n\
                    garbage line without value\n";
        let m = parse(text);
        assert_eq!(m["confab_presence_bytes_sent_total"], 1234.0);
        assert_eq!(m["confab_http_requests_total"], 12.0);
        assert_eq!(m["confab_notify_outbox_backlog"], 3.5);
        assert!(!m.contains_key("garbage"));
    }

    #[test]
    fn deltas_sum_over_nodes() {
        let before = vec![parse("a 10\n"), parse("a 5\n")];
        let after = vec![parse("a 15\n"), parse("a 2\n")];
        // Node 2 restarted: what it counted since (2) is its share.
        assert_eq!(delta(&before, &after, "a"), 7.0);
        assert!(present(&after, "a"));
        assert!(!present(&after, "b"));
        assert_eq!(max(&after, "a"), 15.0);
        assert_eq!(min(&after, "a"), Some(2.0));
        assert_eq!(min(&after, "b"), None);
    }
}
