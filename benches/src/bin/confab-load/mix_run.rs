//! The coordinator of `mix`: adds simulated users step by step (in worker processes, each
//! user with its WebSocket), measures each step's requests against Mattermost's thresholds
//! (mean < 100 ms, p99 < 2 s, errors < 0.025%), and with `--find-max` stops at the first step
//! that breaks one — the supported-user count is the last step that held, as load-test-ng's
//! coordinator reports it. Per action (the apps' own calls included, `--app-calls`), it also
//! reports the rate of each kind of request in the measured windows.

use crate::mix::MixSpec;
use crate::mix_totals::ActionTable;
use crate::pool::{self, Pool};
use crate::population::Population;
use crate::proto::{ConnSpec, Layout, Target};
use crate::report::{self, LatencySummary, Report, Step};
use crate::writes::goal_line;
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const MEAN_LIMIT_MS: f64 = 100.0;
pub const P99_LIMIT_MS: f64 = 2000.0;
pub const ERROR_LIMIT: f64 = 0.00025;

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct MixOpts {
    /// Users (without --find-max).
    #[arg(long)]
    pub users: Option<u32>,
    /// Raise the users step by step until a threshold breaks.
    #[arg(long)]
    pub find_max: bool,
    #[arg(long)]
    pub start_users: Option<u32>,
    #[arg(long)]
    pub step_users: Option<u32>,
    #[arg(long)]
    pub max_users: Option<u32>,
    /// Seconds per step; the first half lets the new users' first actions spread out.
    #[arg(long, default_value_t = 60.0)]
    pub step_seconds: f64,
    #[arg(long)]
    pub channel_size: Option<u32>,
    #[arg(long)]
    pub channels_per_user: Option<u32>,
    /// Idle time between a user's actions (load-test-ng: 1–39 s).
    #[arg(long, default_value_t = 1000)]
    pub idle_min_ms: u64,
    #[arg(long, default_value_t = 39_000)]
    pub idle_max_ms: u64,
    /// Users per worker process.
    #[arg(long, default_value_t = 10_000)]
    pub users_per_worker: usize,
    /// Also make the official apps' own calls: entry sync at login and reconnect, statuses
    /// every 60 s, a WebSocket ping every 30 s, occasional preference changes
    /// (`--app-calls=false` for load-test-ng's actions alone).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub app_calls: bool,
}

impl MixOpts {
    pub fn steps(&self) -> Vec<u32> {
        if !self.find_max {
            return vec![self.users.unwrap_or(2_000)];
        }
        let start = self.start_users.unwrap_or(5_000).max(1);
        let step = self.step_users.unwrap_or(5_000).max(1);
        let max = self.max_users.unwrap_or(60_000).max(start);
        (0..)
            .map(|i| start + i * step)
            .take_while(|&u| u <= max)
            .collect()
    }

    pub fn layout(&self) -> Layout {
        Layout {
            users: self.steps().last().copied().unwrap_or(1),
            channel_size: self.channel_size.unwrap_or(100),
            channels_per_user: self.channels_per_user.unwrap_or(2),
        }
    }
}

pub async fn run(
    opts: &MixOpts,
    servers: &crate::cluster::Servers,
    population: Arc<Population>,
    profile: &str,
) -> anyhow::Result<(Report, Vec<(String, Histogram<u64>)>)> {
    let mut report = Report::new("mix", profile, serde_json::to_value(opts)?);
    let addrs = servers.addrs();
    let layout = population.layout;
    let spec = MixSpec {
        nodes: addrs.clone(),
        team: population.team.clone(),
        channels: population.channels.clone(),
        layout,
        idle_min_ms: opts.idle_min_ms,
        idle_max_ms: opts.idle_max_ms,
        dm_peers: population
            .users
            .iter()
            .step_by((population.users.len() / 500).max(1))
            .map(|u| u.id.clone())
            .collect(),
        usernames: (0..population.users.len())
            .step_by((population.users.len() / 500).max(1))
            .map(crate::population::username)
            .collect(),
        channel_names: (0..layout.channels())
            .map(|c| crate::population::channel_name(&layout, c))
            .collect(),
        app_calls: opts.app_calls,
    };
    let server_pids = servers.pids();
    let mut pools: Vec<Pool> = Vec::new();
    let mut active: u32 = 0;
    let mut supported: Option<u32> = None;
    let mut all = report::new_histogram();
    let mut measured = 0.0;
    // Per action: the whole run, and the measured windows alone.
    let mut run_actions = ActionTable::default();
    let mut measured_actions = ActionTable::default();
    let mut workers = 0u32;
    for target in opts.steps() {
        // Add users active..target.
        let conns: Vec<ConnSpec> = (active..target)
            .map(|u| ConnSpec {
                user: u,
                addr: addrs[u as usize % addrs.len()].clone(),
                token: Some(population.users[u as usize].token.clone()),
                user_id: Some(population.users[u as usize].id.clone()),
            })
            .collect();
        let groups = pool::split(conns, opts.users_per_worker);
        let count = groups.len() as u32;
        let (new_pool, opened) = Pool::start(
            groups,
            Target::Confab,
            0,
            Some(spec.clone()),
            workers,
            |_| {},
        )
        .await?;
        workers += count;
        pools.push(new_pool);
        eprintln!(
            "mix: {target} users ({} new sockets open, {} failed)",
            opened.opened,
            opened.failed_users.len()
        );
        active = target;
        let usage_start = crate::procstat::Watch::start(&server_pids);
        let load_usage_start = crate::procstat::Watch::start(&load_pids(&pools));

        // Ramp (not measured), then the measured half.
        let bar = ProgressBar::new(opts.step_seconds.ceil() as u64);
        let ramp = opts.step_seconds / 2.0;
        let began = Instant::now();
        let counters: Vec<_> = pools.iter().map(|p| p.counter()).collect();
        let totals = |counters: &[crate::pool::Counter]| {
            counters.iter().fold((0, 0), |(r, e), c| {
                let (r2, e2) = c.requests();
                (r + r2, e + e2)
            })
        };
        while began.elapsed().as_secs_f64() < ramp {
            tokio::time::sleep(Duration::from_millis(500)).await;
            bar.set_position(began.elapsed().as_secs());
            bar.set_message(format!("{target} users, ramping"));
        }
        for p in &pools {
            p.take_interval();
        }
        for p in &mut pools {
            run_actions.absorb(&p.collect().await?)?;
        }
        let (req0, err0) = totals(&counters);
        let measure_start = Instant::now();
        while began.elapsed().as_secs_f64() < opts.step_seconds {
            tokio::time::sleep(Duration::from_millis(500)).await;
            bar.set_position(began.elapsed().as_secs());
            let (r, e) = totals(&counters);
            bar.set_message(format!(
                "{target} users: {:.0} requests/s, {} errors",
                (r - req0) as f64 / measure_start.elapsed().as_secs_f64(),
                e - err0
            ));
        }
        bar.finish_and_clear();
        let window = measure_start.elapsed().as_secs_f64();
        measured += window;
        let mut hist = report::new_histogram();
        for p in &pools {
            hist.add(p.take_interval())?;
        }
        let (req1, err1) = totals(&counters);
        let (requests, errors) = (req1 - req0, err1 - err0);
        let mut step_actions = ActionTable::default();
        for p in &mut pools {
            step_actions.absorb(&p.collect().await?)?;
        }
        let summary = LatencySummary::from_histogram(&hist);
        let error_rate = if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        };
        let passed = requests > 0
            && summary.mean_ms < MEAN_LIMIT_MS
            && summary.p99_ms < P99_LIMIT_MS
            && error_rate < ERROR_LIMIT;
        let usage: Vec<_> = usage_start.usage();
        let cpu: f64 = usage.iter().map(|u| u.cpu_percent).sum();
        let load_usage = load_usage_start.usage();
        let load_cpu: f64 = load_usage.iter().map(|u| u.cpu_percent).sum();
        eprintln!(
            "mix {target:>6} users: {:.0} requests/s, mean {:.1} ms, p99 {:.1} ms, errors {errors} ({:.4}%), servers' CPU {cpu:.0}% and the tool's {load_cpu:.0}% of one core — {}",
            requests as f64 / window,
            summary.mean_ms,
            summary.p99_ms,
            error_rate * 100.0,
            if passed { "held" } else { "threshold broken" }
        );
        let mut counters_map = BTreeMap::new();
        counters_map.insert("requests_per_s".to_string(), requests as f64 / window);
        counters_map.insert("requests".to_string(), requests as f64);
        counters_map.insert("errors".to_string(), errors as f64);
        counters_map.insert("error_rate".to_string(), error_rate);
        counters_map.extend(step_actions.rates(window));
        run_actions.merge(&step_actions)?;
        measured_actions.merge(&step_actions)?;
        counters_map.insert("servers_cpu_percent".to_string(), cpu);
        counters_map.insert("load_cpu_percent".to_string(), load_cpu);
        let memory = crate::procstat::memory_reading(&format!("{target} users"), &server_pids);
        counters_map.insert(
            "servers_rss_max_bytes".to_string(),
            memory.max_bytes() as f64,
        );
        report.memory.push(memory);
        let mut latencies = BTreeMap::new();
        latencies.insert("request".to_string(), summary);
        report.steps.push(Step {
            load: target as f64,
            load_unit: "users".into(),
            passed,
            latencies,
            counters: counters_map,
            note: String::new(),
        });
        report.servers = usage;
        report.load_processes = load_usage;
        if passed {
            supported = Some(target);
            all.add(&hist)?;
        } else {
            if !opts.find_max {
                all.add(&hist)?;
            }
            break;
        }
    }

    // Per-action totals over the whole run; rates over the measured windows.
    for p in pools {
        run_actions.absorb(&p.stop().await?)?;
    }
    run_actions.write_run(&mut report);
    report.counters.extend(measured_actions.rates(measured));
    report
        .latencies
        .insert("request".into(), LatencySummary::from_histogram(&all));
    report.duration_s = measured;
    report
        .counters
        .insert("supported_users".into(), supported.unwrap_or(0) as f64);
    report.result = Some(match supported {
        Some(users) => format!(
            "mix: {users} users held Mattermost's thresholds (mean < {MEAN_LIMIT_MS} ms, p99 < {P99_LIMIT_MS} ms, errors < {}%)",
            ERROR_LIMIT * 100.0
        ),
        None => "mix: no step held Mattermost's thresholds".into(),
    });
    report.goals.push(goal_line(
        "≥ 30,000 supported users",
        supported.unwrap_or(0) >= 30_000,
        format!("{} users", supported.unwrap_or(0)),
    ));
    Ok((report, vec![("requests".to_string(), all)]))
}

/// The tool's own processes: this one and every worker of every pool.
fn load_pids(pools: &[Pool]) -> Vec<(String, u32)> {
    let mut pids = vec![("confab-load".to_string(), std::process::id())];
    for p in pools {
        pids.extend(p.pids().into_iter().map(|pid| ("worker".to_string(), pid)));
    }
    pids
}
