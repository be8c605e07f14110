//! `writes`: the write path through the REST API, no sockets — committed posts/s with many
//! concurrent writers (closed loop), and POST latency at a fixed rate (open loop, latency from
//! the scheduled time).

use crate::fanout::Poster;
use crate::report::{self, LatencySummary, Report, Step};
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct WritesOpts {
    /// Closed-loop runs, one per number of concurrent writers.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    pub writers: Vec<usize>,
    /// Open-loop rate in posts/s (0: skip).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds per run.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Users who post.
    #[arg(long, default_value_t = 1000)]
    pub users: u32,
    /// Members per channel.
    #[arg(long, default_value_t = 50)]
    pub channel_size: u32,
}

struct Window {
    hist: Mutex<Histogram<u64>>,
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Window {
    fn new() -> Arc<Window> {
        Arc::new(Window {
            hist: Mutex::new(report::new_histogram()),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
        })
    }

    fn note(&self, started: Instant, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                report::record(
                    &mut self.hist.lock().unwrap_or_else(|e| e.into_inner()),
                    started.elapsed().as_micros() as u64,
                );
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
            }
        }
    }

    fn step(&self, load: f64, unit: &str, elapsed: f64) -> (Step, Histogram<u64>) {
        let hist = self.hist.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let ok = self.ok.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let mut counters = BTreeMap::new();
        counters.insert("posts_per_s".to_string(), ok as f64 / elapsed);
        counters.insert("posts_ok".to_string(), ok as f64);
        counters.insert("errors".to_string(), failed as f64);
        let mut latencies = BTreeMap::new();
        latencies.insert(
            "post_request".to_string(),
            LatencySummary::from_histogram(&hist),
        );
        let note = self
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .map(|e| format!("first error: {e}"))
            .unwrap_or_default();
        (
            Step {
                load,
                load_unit: unit.to_string(),
                passed: failed == 0,
                latencies,
                counters,
                note,
            },
            hist,
        )
    }
}

pub async fn run(
    opts: &WritesOpts,
    poster: Arc<Poster>,
    layout: crate::proto::Layout,
    server_pids: &[(String, u32)],
    profile: &str,
) -> anyhow::Result<(Report, Vec<(String, Histogram<u64>)>)> {
    let mut report = Report::new("writes", profile, serde_json::to_value(opts)?);
    let mut series = Vec::new();
    let usage_start = crate::procstat::Watch::start(server_pids);
    let mut measured = 0.0;
    for &writers in &opts.writers {
        let (step, hist, elapsed) =
            closed_loop(&poster, layout, writers, opts.seconds, "write path", None).await;
        measured += elapsed;
        eprintln!(
            "writes: {writers:>4} writers: {:>7.0} posts/s, p50 {:.1} ms, p99 {:.1} ms, errors {}",
            step.counters["posts_per_s"],
            step.latencies["post_request"].p50_ms,
            step.latencies["post_request"].p99_ms,
            step.counters["errors"]
        );
        series.push((format!("{writers} writers"), hist));
        report.steps.push(step);
    }
    if opts.rate > 0.0 {
        let (step, hist, elapsed) =
            open_loop(&poster, layout, opts.rate, opts.seconds, "open loop", None).await;
        measured += elapsed;
        eprintln!(
            "writes: open loop {} posts/s: p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, errors {}",
            opts.rate,
            step.latencies["post_request"].p50_ms,
            step.latencies["post_request"].p99_ms,
            step.latencies["post_request"].p999_ms,
            step.counters["errors"]
        );
        report.latencies.insert(
            "post_request_open_loop".into(),
            step.latencies["post_request"].clone(),
        );
        report.goals.push(goal_line(
            "p99 < 10 ms at the open-loop rate",
            step.latencies["post_request"].p99_ms < 10.0,
            format!("{:.1} ms", step.latencies["post_request"].p99_ms),
        ));
        series.push((format!("open loop {} /s", opts.rate), hist));
        report.steps.push(step);
    }
    let best = report
        .steps
        .iter()
        .filter(|s| s.load_unit == "writers")
        .map(|s| s.counters["posts_per_s"])
        .fold(0.0, f64::max);
    report.counters.insert("max_posts_per_s".into(), best);
    report.goals.push(goal_line(
        "≥ 20,000 committed posts/s",
        best >= 20_000.0,
        format!("{best:.0} posts/s"),
    ));
    report.result = Some(format!("writes: {best:.0} committed posts/s at best"));
    report.duration_s = measured;
    report.servers = usage_start.usage();
    Ok((report, series))
}

/// `writers` concurrent writers, each posting again as soon as its previous post is answered,
/// for `seconds` or until `until` is set (closed loop: latency from each request's start). The
/// step's `posts_per_s` is over the whole window, the last answers included.
pub async fn closed_loop(
    poster: &Arc<Poster>,
    layout: crate::proto::Layout,
    writers: usize,
    seconds: f64,
    message: &'static str,
    until: Option<Arc<AtomicBool>>,
) -> (Step, Histogram<u64>, f64) {
    let window = Window::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let bar = ProgressBar::new(seconds as u64);
    bar.set_message(format!("{writers} writers"));
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (poster, window, until) = (poster.clone(), window.clone(), until.clone());
        tasks.spawn(async move {
            // A writer finishes the post it is on, then stops.
            let stopped = || until.as_ref().is_some_and(|u| u.load(Ordering::Relaxed));
            while Instant::now() < deadline && !stopped() {
                let (channel, user) = layout.random_post(&mut rand::rng());
                let started = Instant::now();
                let result = poster.post(channel, user, message.into()).await;
                window.note(started, result);
            }
        });
    }
    while !tasks.is_empty() {
        tokio::select! {
            _ = tasks.join_next() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => bar.set_position(began.elapsed().as_secs()),
        }
    }
    bar.finish_and_clear();
    let elapsed = began.elapsed().as_secs_f64();
    let (step, hist) = window.step(writers as f64, "writers", elapsed);
    (step, hist, elapsed)
}

/// Posts at `rate` posts/s for `seconds`, or until `until` is set (open loop: one request per
/// scheduled instant, whether or not earlier ones have been answered; latency from the
/// scheduled time), then waits for the last answers. The step's `posts_per_s` is over the schedule plus that wait (the
/// seconds returned), so posts stuck behind something lower it.
pub async fn open_loop(
    poster: &Arc<Poster>,
    layout: crate::proto::Layout,
    rate: f64,
    seconds: f64,
    message: &'static str,
    until: Option<&AtomicBool>,
) -> (Step, Histogram<u64>, f64) {
    let window = Window::new();
    let count = (rate * seconds).round() as u64;
    let start = Instant::now() + Duration::from_millis(5);
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..count {
        let scheduled = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        if until.is_some_and(|stop| stop.load(Ordering::Relaxed)) {
            break;
        }
        let (poster, window) = (poster.clone(), window.clone());
        tasks.spawn(async move {
            let (channel, user) = layout.random_post(&mut rand::rng());
            let result = poster.post(channel, user, message.into()).await;
            window.note(scheduled, result);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let (step, hist) = window.step(rate, "posts/s (open loop)", elapsed);
    (step, hist, elapsed)
}

pub fn goal_line(goal: &str, met: bool, figure: String) -> String {
    format!("{goal}: {} ({figure})", if met { "met" } else { "NOT met" })
}
