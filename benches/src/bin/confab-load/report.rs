//! What a confab-load run measured: latency histograms (µs) and their summaries, counters,
//! CPU/RSS of the processes involved and the find-max steps. Printed as tables, saved as
//! JSON (every field: benches/REPORT.md) and plotted as SVG.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

/// Highest trackable latency: anything slower is a failure anyway, and is recorded as 120 s.
const MAX_MICROS: u64 = 120_000_000;

/// New latency histogram in microseconds, 1 µs ..= 120 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

/// Records a value, clamped to the histogram's range: a stalled request must still count.
pub fn record(hist: &mut Histogram<u64>, micros: u64) {
    hist.saturating_record(micros);
}

/// V2-serialized, standard-base64 text, for shipping histograms between processes in JSON.
/// Serializing into memory only fails for counts beyond `i64::MAX`; the result is then "",
/// which [`decode`] rejects.
pub fn encode(hist: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2Serializer::new().serialize(hist, &mut bytes) {
        Ok(_) => BASE64.encode(bytes),
        Err(_) => String::new(),
    }
}

/// The inverse of [`encode`] (also reads the V2-deflate format).
pub fn decode(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = BASE64
        .decode(text.trim())
        .context("histogram text is not base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .context("histogram text is not a serialized histogram")
}

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// `h` is in µs. Percentiles are HdrHistogram's (the highest value equivalent to the
    /// bucket, so within 0.1 %). An empty histogram gives all zeros.
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub cpu_model: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessUsage {
    pub name: String,
    pub pid: u32,
    pub cpu_seconds: f64,
    /// Of one core, over the measured window (200 = two cores busy).
    pub cpu_percent: f64,
    /// At the end of the window.
    pub rss_bytes: u64,
    pub rss_start_bytes: u64,
}

/// Each server's RSS at one point of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryReading {
    /// When: "after setup", "holding sockets", "step 20000 users", …
    pub label: String,
    /// (server name, RSS bytes), in the servers' order.
    pub rss_bytes: Vec<(String, u64)>,
}

impl MemoryReading {
    /// The largest RSS of any server.
    pub fn max_bytes(&self) -> u64 {
        self.rss_bytes.iter().map(|(_, b)| *b).max().unwrap_or(0)
    }
}

/// One load level of a find-max search.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Step {
    pub load: f64,
    pub load_unit: String,
    pub passed: bool,
    pub latencies: BTreeMap<String, LatencySummary>,
    pub counters: BTreeMap<String, f64>,
    pub note: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub mode: String,
    pub profile: String,
    pub started_unix_s: u64,
    pub machine: Machine,
    pub params: serde_json::Value,
    pub duration_s: f64,
    pub latencies: BTreeMap<String, LatencySummary>,
    pub counters: BTreeMap<String, f64>,
    pub servers: Vec<ProcessUsage>,
    pub load_processes: Vec<ProcessUsage>,
    pub rss_per_connection_bytes: Option<f64>,
    /// Server RSS per node at points of the run (memory is a goal of its own: a node the
    /// kernel kills serves nobody).
    #[serde(default)]
    pub memory: Vec<MemoryReading>,
    pub steps: Vec<Step>,
    pub result: Option<String>,
    pub goals: Vec<String>,
    pub baseline: Option<Box<Report>>,
    pub ratio_to_baseline: Option<f64>,
}

impl Report {
    /// An empty report stamped with the tool, the start time and this machine.
    pub fn new(mode: &str, profile: &str, params: serde_json::Value) -> Report {
        Report {
            tool: "confab-load".into(),
            mode: mode.into(),
            profile: profile.into(),
            started_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            machine: crate::procstat::machine(),
            params,
            ..Report::default()
        }
    }
}

/// Prints the readable summary (see [`summary`]) to stdout.
pub fn print_summary(report: &Report) {
    print!("{}", summary(report));
}

/// Pretty JSON; the fields are documented in benches/REPORT.md.
pub fn write_json(report: &Report, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Text summary

/// The summary as text: header, latencies, counters, processes, steps, baseline, goals, result.
fn summary(r: &Report) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_summary(&mut out, r);
    out
}

fn write_summary(o: &mut String, r: &Report) -> std::fmt::Result {
    let m = &r.machine;
    writeln!(o, "\n== {} {} (profile {}) ==", r.tool, r.mode, r.profile)?;
    writeln!(
        o,
        "machine: {} cores, {:.1} GiB, {}, Linux {}",
        m.cores,
        m.memory_bytes as f64 / GIB,
        or_unknown(&m.cpu_model),
        or_unknown(&m.kernel)
    )?;
    writeln!(
        o,
        "started: unix {}, measured for {:.1} s",
        r.started_unix_s, r.duration_s
    )?;
    if !r.params.is_null() {
        writeln!(o, "params: {}", r.params)?;
    }

    if !r.latencies.is_empty() {
        writeln!(o, "\nlatency (ms)")?;
        let mut rows = vec![cells(&[
            "", "count", "mean", "p50", "p90", "p99", "p99.9", "max",
        ])];
        for (name, l) in &r.latencies {
            let mut row = vec![name.clone(), num(l.count as f64)];
            row.extend([l.mean_ms, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms].map(ms));
            rows.push(row);
        }
        table(o, &rows)?;
    }

    if !r.counters.is_empty() {
        writeln!(o, "\ncounters")?;
        let rows: Vec<_> = r
            .counters
            .iter()
            .map(|(k, v)| vec![k.clone(), num(*v)])
            .collect();
        table(o, &rows)?;
    }

    if !r.servers.is_empty() || !r.load_processes.is_empty() {
        writeln!(o, "\nprocesses (CPU % of one core over the window)")?;
        let mut rows = vec![cells(&["", "pid", "CPU %", "CPU s", "RSS MiB start→end"])];
        for (role, list) in [("server", &r.servers), ("load", &r.load_processes)] {
            for p in list.iter() {
                rows.push(vec![
                    format!("{role} {}", p.name),
                    p.pid.to_string(),
                    format!("{:.1}", p.cpu_percent),
                    format!("{:.1}", p.cpu_seconds),
                    format!("{}→{}", mib(p.rss_start_bytes), mib(p.rss_bytes)),
                ]);
            }
            if list.len() > 1 {
                let sum = |f: fn(&ProcessUsage) -> u64| list.iter().map(f).sum::<u64>();
                rows.push(vec![
                    format!("{role} total"),
                    String::new(),
                    format!("{:.1}", list.iter().map(|p| p.cpu_percent).sum::<f64>()),
                    format!("{:.1}", list.iter().map(|p| p.cpu_seconds).sum::<f64>()),
                    format!(
                        "{}→{}",
                        mib(sum(|p| p.rss_start_bytes)),
                        mib(sum(|p| p.rss_bytes))
                    ),
                ]);
            }
        }
        table(o, &rows)?;
    }
    if let Some(b) = r.rss_per_connection_bytes {
        writeln!(o, "\nserver RSS per connection: {} B", num(b))?;
    }
    if let Some(first) = r.memory.first() {
        writeln!(o, "\nserver RSS per node, MiB")?;
        let mut header = vec![String::new()];
        header.extend(first.rss_bytes.iter().map(|(name, _)| name.clone()));
        header.push("max".into());
        let mut rows = vec![header];
        for reading in &r.memory {
            let mut row = vec![reading.label.clone()];
            row.extend(reading.rss_bytes.iter().map(|(_, b)| mib(*b)));
            row.push(mib(reading.max_bytes()));
            rows.push(row);
        }
        table(o, &rows)?;
    }

    if !r.steps.is_empty() {
        write_steps(o, &r.steps)?;
    }

    if let Some(base) = &r.baseline {
        write_baseline(o, r, base)?;
    }

    if !r.goals.is_empty() {
        writeln!(o, "\ngoals")?;
        for g in &r.goals {
            writeln!(o, "  {g}")?;
        }
    }
    if let Some(result) = &r.result {
        writeln!(o, "\nresult: {result}")?;
    }
    Ok(())
}

/// Counters shown per step besides the rates: the ones that make a step fail.
const STEP_FAILURE_COUNTERS: [&str; 9] = [
    "errors",
    "error_rate",
    "missing",
    "duplicated",
    "posts_failed",
    "unexpected",
    "push_missing",
    "push_duplicated",
    "push_unexpected",
];

/// One row per step: load, passed, mean/p99 of each latency key, rates and failure counts.
fn write_steps(o: &mut String, steps: &[Step]) -> std::fmt::Result {
    let keys: BTreeSet<&String> = steps.iter().flat_map(|s| s.latencies.keys()).collect();
    let counters: BTreeSet<&String> = steps
        .iter()
        .flat_map(|s| s.counters.keys())
        .filter(|k| {
            k.ends_with("_per_s")
                || k.starts_with("server_cpu_percent")
                || STEP_FAILURE_COUNTERS.contains(&k.as_str())
        })
        .collect();
    writeln!(o, "\nsteps (latencies: mean/p99 ms)")?;
    let mut header = cells(&["load", "passed"]);
    header.extend(keys.iter().map(|k| k.to_string()));
    header.extend(counters.iter().map(|k| k.to_string()));
    let mut rows = vec![header];
    for s in steps {
        let mut row = vec![
            format!("{} {}", num(s.load), s.load_unit),
            if s.passed { "yes" } else { "NO" }.to_string(),
        ];
        row.extend(keys.iter().map(|k| match s.latencies.get(*k) {
            Some(l) => format!("{}/{}", ms(l.mean_ms), ms(l.p99_ms)),
            None => "-".into(),
        }));
        row.extend(
            counters
                .iter()
                .map(|k| s.counters.get(*k).map_or("-".into(), |v| num(*v))),
        );
        rows.push(row);
    }
    table(o, &rows)?;
    for s in steps.iter().filter(|s| !s.note.is_empty()) {
        writeln!(o, "  {} {}: {}", num(s.load), s.load_unit, s.note)?;
    }
    Ok(())
}

/// The headline numbers of this run and its baseline side by side.
fn write_baseline(o: &mut String, r: &Report, base: &Report) -> std::fmt::Result {
    writeln!(o, "\nvs. baseline ({})", base.mode)?;
    let mut rows = vec![cells(&["", "this run", "baseline", "ratio"])];
    let mut push = |name: String, this: f64, other: f64, fmt: fn(f64) -> String| {
        let ratio = if other != 0.0 {
            format!("{:.2}", this / other)
        } else {
            "-".into()
        };
        rows.push(vec![name, fmt(this), fmt(other), ratio]);
    };
    for (key, l) in &r.latencies {
        if let Some(b) = base.latencies.get(key) {
            push(format!("{key} p50 ms"), l.p50_ms, b.p50_ms, ms);
            push(format!("{key} p99 ms"), l.p99_ms, b.p99_ms, ms);
        }
    }
    for (key, v) in &r.counters {
        let headline = key.ends_with("_per_s") || key.starts_with("max_") || key == "connections";
        if let (true, Some(b)) = (headline, base.counters.get(key)) {
            push(key.clone(), *v, *b, num);
        }
    }
    let cpu = |list: &[ProcessUsage]| list.iter().map(|p| p.cpu_percent).sum::<f64>();
    if !r.servers.is_empty() && !base.servers.is_empty() {
        push(
            "servers CPU %".into(),
            cpu(&r.servers),
            cpu(&base.servers),
            |v| format!("{v:.1}"),
        );
    }
    if let (Some(a), Some(b)) = (r.rss_per_connection_bytes, base.rss_per_connection_bytes) {
        push("RSS per connection B".into(), a, b, num);
    }
    table(o, &rows)?;
    if let Some(ratio) = r.ratio_to_baseline {
        writeln!(o, "  ratio to baseline: {ratio:.3}")?;
    }
    Ok(())
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = MIB * 1024.0;

fn cells(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB)
}

/// Rows padded to each column's widest cell (in chars: names contain "→"); the first column
/// left-aligned, the others right-aligned.
fn table(o: &mut String, rows: &[Vec<String>]) -> std::fmt::Result {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            let w = widths[c];
            if c == 0 {
                write!(line, " {cell:<w$}")?;
            } else {
                write!(line, "  {cell:>w$}")?;
            }
        }
        writeln!(o, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A count or rate: whole and large numbers with thousands separators, small fractions
/// (error rates, per-second rates below 100) with a few decimals.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        return format!("{sign}{}", thousands(v.abs().round() as u64));
    }
    let text = if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Milliseconds with about three significant digits.
fn ms(v: f64) -> String {
    if v >= 1000.0 {
        num(v)
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

// ---------------------------------------------------------------------------------------------
// Plot

/// Furthest percentile plotted: 99.999 % (x = log10(1 / (1 - p)) = 5).
const MAX_NINES: f64 = 5.0;
/// Log axes need a positive floor; 1 µs is the histogram's resolution.
const FLOOR_MS: f64 = 0.001;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// SVG latency plot. Top panel: the percentile spectrum of every series (x = percentile on a
/// log10(1/(1-p)) axis, so each "nine" gets the same width; y = latency in ms, log). If the
/// report has steps, a second panel: p99 (solid, × where the step failed) and mean (dashed) of
/// every latency key against the step load, log y, with a dashed line per threshold. Only the
/// steps in the first step's `load_unit` are plotted (writes' trailing open-loop step is in
/// posts/s, not writers).
pub fn write_plot(
    path: &Path,
    title: &str,
    series: &[(String, Histogram<u64>)],
    report: &Report,
    thresholds_ms: &[(String, f64)],
) -> anyhow::Result<()> {
    let steps: Vec<&Step> = match report.steps.first() {
        Some(first) => report
            .steps
            .iter()
            .filter(|s| s.load_unit == first.load_unit)
            .collect(),
        None => Vec::new(),
    };
    let height = if steps.is_empty() { 560 } else { 1060 };
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(title, ("sans-serif", 22))?;
    if steps.is_empty() {
        draw_spectrum(&body, series)?;
    } else {
        let (top, bottom) = body.split_vertically(height / 2 - 20);
        draw_spectrum(&top, series)?;
        draw_steps(&bottom, &steps, thresholds_ms)?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// (log10(1/(1-p)), latency ms) points from p = 0 to the last percentile the sample count
/// supports (1 - 1/count), capped at 99.999 %.
fn spectrum_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let end = (h.len() as f64).log10().clamp(1.0, MAX_NINES);
    let n = (end / 0.02).ceil() as usize;
    (0..=n)
        .map(|i| {
            let x = (i as f64 * 0.02).min(end);
            let ms = h.value_at_quantile(1.0 - 10f64.powf(-x)) as f64 / 1000.0;
            (x, ms.max(FLOOR_MS))
        })
        .collect()
}

/// An f64 axis whose ticks are chosen here: plotters' own linear axis would put ticks at round
/// x, which on the percentile axis are meaningless percentiles, and its log axis labels only
/// whole decades.
struct Axis {
    range: std::ops::Range<f64>,
    log: bool,
    /// Labelled ticks and bold grid lines.
    ticks: Vec<f64>,
    /// Light grid lines.
    light: Vec<f64>,
}

impl Axis {
    /// x = log10(1/(1-p)) from 0 to `end`, so every "nine" gets the same width; ticks at 0 %,
    /// 50 %, 90 %, 99 %, ...
    fn nines(end: f64) -> Axis {
        let mut ticks = vec![0.0, 2f64.log10()];
        ticks.extend((1..=end as usize).map(|n| n as f64));
        Axis {
            range: 0.0..end,
            log: false,
            light: ticks.clone(),
            ticks,
        }
    }

    /// Logarithmic over the whole decades around the positive `values` (ms), ticks at 1, 2, 5
    /// times a power of ten (only the powers when that would be crowded).
    fn log_ms(values: impl Iterator<Item = f64>) -> Axis {
        let (lo, hi) = values
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo > hi {
            (0.1, 100.0)
        } else {
            (lo.max(FLOOR_MS), hi)
        };
        let first = lo.log10().floor() as i32;
        let last = (hi.log10().ceil() as i32).max(first + 1);
        let steps: &[f64] = if last - first <= 3 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let decades = || (first..=last).map(|e| 10f64.powi(e));
        Axis {
            range: 10f64.powi(first)..10f64.powi(last),
            log: true,
            ticks: decades()
                .flat_map(|d| steps.iter().map(move |m| m * d))
                .collect(),
            light: decades()
                .flat_map(|d| (1..10).map(move |m| m as f64 * d))
                .collect(),
        }
        .clipped()
    }

    fn clipped(mut self) -> Axis {
        let r = self.range.clone();
        let inside = |v: &f64| *v >= r.start * 0.999_999 && *v <= r.end * 1.000_001;
        self.ticks.retain(inside);
        self.light.retain(inside);
        self
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = |v: f64| {
            if self.log {
                v.max(f64::MIN_POSITIVE).ln()
            } else {
                v
            }
        };
        let (start, end) = (f(self.range.start), f(self.range.end));
        let share = (f(*value) - start) / (end - start);
        limit.0 + ((limit.1 - limit.0) as f64 * share).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// "90%", "99.9%", ... for a log10(1/(1-p)) axis position.
fn percentile_label(x: f64) -> String {
    let decimals = (x.round() as usize).saturating_sub(2);
    format!("{:.*}%", decimals, 100.0 * (1.0 - 10f64.powf(-x)))
}

fn draw_spectrum(area: &Area, series: &[(String, Histogram<u64>)]) -> anyhow::Result<()> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(name, h)| {
            let s = LatencySummary::from_histogram(h);
            let label = format!(
                "{name} (n={}, p50 {} ms, p99 {} ms)",
                num(s.count as f64),
                ms(s.p50_ms),
                ms(s.p99_ms)
            );
            (label, spectrum_points(h))
        })
        .collect();
    let x_end = curves
        .iter()
        .filter_map(|(_, pts)| pts.last().map(|p| p.0))
        .fold(2.0, f64::max)
        .ceil();
    let y = Axis::log_ms(curves.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1)));
    let caption = if curves.is_empty() {
        "latency by percentile (no samples)"
    } else {
        "latency by percentile"
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(15)
        .margin_right(45)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(Axis::nines(x_end), y)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|v| num(*v))
        .draw()?;
    for (i, (label, points)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    if !curves.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

fn draw_steps(area: &Area, steps: &[&Step], thresholds_ms: &[(String, f64)]) -> anyhow::Result<()> {
    let keys: BTreeSet<&String> = steps.iter().flat_map(|s| s.latencies.keys()).collect();
    let (lo, hi) = steps.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
        (lo.min(s.load), hi.max(s.load))
    });
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.05).max(0.5);
    let x = (lo - pad)..(hi + pad);
    let values = steps
        .iter()
        .flat_map(|s| s.latencies.values().flat_map(|l| [l.mean_ms, l.p99_ms]));
    let y = Axis::log_ms(values.chain(thresholds_ms.iter().map(|t| t.1)));
    let unit = steps.first().map_or("", |s| s.load_unit.as_str());
    let mut chart = ChartBuilder::on(area)
        .caption(
            "steps: p99 (solid, × = step failed) and mean (dashed)",
            ("sans-serif", 16),
        )
        .margin(15)
        .margin_right(45)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x.clone(), y)?;
    chart
        .configure_mesh()
        .x_desc(format!("load ({unit})"))
        .y_desc("latency (ms)")
        .x_label_formatter(&|v| num(*v))
        .y_label_formatter(&|v| num(*v))
        .draw()?;
    for (i, key) in keys.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pick = |f: fn(&LatencySummary) -> f64| -> Vec<(f64, f64, bool)> {
            steps
                .iter()
                .filter_map(|s| s.latencies.get(*key).map(|l| (s.load, f(l), s.passed)))
                .filter(|p| p.1 > 0.0)
                .collect()
        };
        let p99 = pick(|l| l.p99_ms);
        chart
            .draw_series(LineSeries::new(
                p99.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))?
            .label(format!("{key} p99"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(
            p99.iter()
                .filter(|p| p.2)
                .map(|p| Circle::new((p.0, p.1), 4, color.filled())),
        )?;
        chart.draw_series(
            p99.iter()
                .filter(|p| !p.2)
                .map(|p| Cross::new((p.0, p.1), 6, color.stroke_width(2))),
        )?;
        let mean = pick(|l| l.mean_ms);
        chart
            .draw_series(DashedLineSeries::new(
                mean.iter().map(|p| (p.0, p.1)),
                6,
                4,
                color.stroke_width(1),
            ))?
            .label(format!("{key} mean"))
            .legend(move |(x, y)| {
                DashedPathElement::new([(x, y), (x + 20, y)], 4, 3, color.stroke_width(1))
            });
    }
    // Distinct from the palette the series use.
    let colors = [BLACK, RGBColor(120, 0, 160), RGBColor(120, 120, 120)];
    for (i, (label, limit)) in thresholds_ms.iter().enumerate() {
        let color = colors[i % colors.len()];
        let text = format!("{label} {} ms", num(*limit));
        chart
            .draw_series(DashedLineSeries::new(
                [(x.start, *limit), (x.end, *limit)],
                10,
                6,
                color.stroke_width(2),
            ))?
            .label(text.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(std::iter::once(Text::new(
            text,
            (x.end, *limit),
            ("sans-serif", 13)
                .into_font()
                .color(&color)
                .pos(Pos::new(HPos::Right, VPos::Bottom)),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_histogram() -> Histogram<u64> {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            record(&mut h, ms * 1000);
        }
        h
    }

    #[test]
    fn encode_decode_round_trip() {
        let h = sample_histogram();
        let back = decode(&encode(&h)).expect("decodes");
        assert_eq!(back, h);
        assert!(decode("not base64!").is_err());
        assert!(decode("").is_err());
    }

    #[test]
    fn record_saturates() {
        let mut h = new_histogram();
        record(&mut h, u64::MAX);
        record(&mut h, 0);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= MAX_MICROS && h.max() <= MAX_MICROS + MAX_MICROS / 1000);
    }

    #[test]
    fn summary_of_known_histogram() {
        let s = LatencySummary::from_histogram(&sample_histogram());
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 1e-9;
        assert_eq!(s.count, 1000);
        assert!(close(s.mean_ms, 500.5), "{s:?}");
        assert!(close(s.p50_ms, 500.0), "{s:?}");
        assert!(close(s.p90_ms, 900.0), "{s:?}");
        assert!(close(s.p99_ms, 990.0), "{s:?}");
        assert!(close(s.p999_ms, 999.0), "{s:?}");
        assert!(close(s.max_ms, 1000.0), "{s:?}");
        let empty = LatencySummary::from_histogram(&new_histogram());
        assert_eq!((empty.count, empty.p99_ms, empty.max_ms), (0, 0.0, 0.0));
    }

    #[test]
    fn number_formats() {
        assert_eq!(num(1234567.4), "1,234,567");
        assert_eq!(num(-2048.0), "-2,048");
        assert_eq!(num(12.0), "12");
        assert_eq!(num(57.25), "57.25");
        assert_eq!(num(0.0012), "0.0012");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2f64.log10()), "50%");
        assert_eq!(percentile_label(4.0), "99.99%");
    }

    fn full_report() -> Report {
        let mut r = Report::new("fanout", "test", serde_json::json!({"rate": 20}));
        let s = LatencySummary::from_histogram(&sample_histogram());
        r.latencies.insert("post_to_receive".into(), s.clone());
        r.counters.insert("deliveries_per_s".into(), 123456.7);
        r.servers.push(ProcessUsage {
            name: "node1".into(),
            pid: 1,
            cpu_seconds: 12.5,
            cpu_percent: 83.3,
            rss_bytes: 300 << 20,
            rss_start_bytes: 100 << 20,
        });
        r.memory.push(MemoryReading {
            label: "holding sockets".into(),
            rss_bytes: vec![("node1".into(), 700 << 20), ("node2".into(), 900 << 20)],
        });
        for (load, passed) in [(10.0, true), (20.0, true), (30.0, false)] {
            let mut step = Step {
                load,
                load_unit: "posts/s".into(),
                passed,
                note: "a note".into(),
                ..Step::default()
            };
            step.latencies.insert("post_to_receive".into(), s.clone());
            step.counters
                .insert("deliveries_per_s".into(), load * 200.0);
            r.steps.push(step);
        }
        r.goals.push("p99 < 50 ms: NOT met (990 ms)".into());
        r.result = Some("headline".into());
        r.baseline = Some(Box::new(r.clone()));
        r.ratio_to_baseline = Some(1.0);
        r
    }

    #[test]
    fn summary_mentions_everything() {
        let text = summary(&full_report());
        for needle in [
            "post_to_receive",
            "123,457",
            "100.0→300.0",
            "vs. baseline",
            "NO",
            "headline",
            "server RSS per node",
            "holding sockets",
            "900.0",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        summary(&Report::default());
    }

    #[test]
    fn json_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        write_json(&full_report(), &path).expect("written");
        let text = std::fs::read_to_string(&path).expect("readable");
        let back: Report = serde_json::from_str(&text).expect("parses");
        assert_eq!(back.steps.len(), 3);
        assert!(back.baseline.is_some());
    }

    #[test]
    fn plot_is_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let series = vec![
            ("post→receive".to_string(), sample_histogram()),
            ("empty".to_string(), new_histogram()),
        ];
        let thresholds = [("goal p99".to_string(), 50.0)];
        for (name, report) in [
            ("steps.svg", full_report()),
            ("plain.svg", Report::default()),
        ] {
            let path = dir.path().join(name);
            write_plot(&path, "test plot", &series, &report, &thresholds).expect("plotted");
            let svg = std::fs::read_to_string(&path).expect("readable");
            assert!(svg.contains("<svg") && svg.contains("99.9%"), "{svg}");
        }
        let path = dir.path().join("nothing.svg");
        write_plot(&path, "no data", &[], &Report::default(), &[]).expect("plotted");
        assert!(std::fs::read_to_string(&path)
            .expect("readable")
            .contains("<svg"));
    }
}
