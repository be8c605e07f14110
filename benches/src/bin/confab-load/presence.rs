//! `presence`: what keeping presence costs between nodes. Every user holds one authenticated
//! WebSocket (spread over worker processes, 127.x source addresses and the nodes, as in
//! `fanout`); nothing is posted. Two phases are measured the same way, from each node's
//! `/metrics` counters (`confab_presence_{bytes,messages}_{sent,received}_total`) and its CPU
//! (`/proc`): a steady-state window once every socket is open and the nodes' summaries have
//! gone round, then a mass reconnect — every socket closed and reopened (resuming its stream)
//! within `--reconnect-spread-ms` — and the window that follows it.

use crate::cluster::Servers;
use crate::pool::{self, Pool};
use crate::population::Population;
use crate::proto::{Layout, Target};
use crate::report::{ProcessUsage, Report, Step};
use crate::scrape::{self, Metrics};
use clap::Args;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct PresenceOpts {
    /// Users, each with one WebSocket.
    #[arg(long)]
    pub users: Option<u32>,
    /// Members per channel (only shapes the users' channels; nothing is posted).
    #[arg(long)]
    pub channel_size: Option<u32>,
    /// Seconds between the last socket opening and the steady-state window (let the nodes'
    /// summaries, every 5 s, go round).
    #[arg(long, default_value_t = 12.0)]
    pub settle: f64,
    /// Seconds measured per phase (the reconnect window starts with the reconnect).
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Mass reconnect: each socket closes after a random delay of up to this, then reopens.
    #[arg(long, default_value_t = 2_000)]
    pub reconnect_spread_ms: u64,
    /// Sockets per worker process (each process may open at most 20,000 files).
    #[arg(long, default_value_t = 15_000)]
    pub sockets_per_worker: usize,
}

impl PresenceOpts {
    pub fn layout(&self) -> Layout {
        Layout {
            users: self.users.unwrap_or(2_000),
            channel_size: self.channel_size.unwrap_or(200),
            channels_per_user: 1,
        }
    }
}

/// `connections`/`presence`: 100,000 sockets on 6 nodes (the `connections` profile's users and
/// channels, so its population is reused); otherwise 2,000 users on 3 nodes.
pub fn apply_profile(profile: &str, opts: &mut PresenceOpts, nodes: &mut Option<usize>) {
    let (users, size, n) = match profile {
        "connections" | "presence" => (100_000, 1_000, 6),
        _ => (2_000, 200, 3),
    };
    opts.users.get_or_insert(users);
    opts.channel_size.get_or_insert(size);
    nodes.get_or_insert(n);
}

/// The counters presence shows on `/metrics`.
const SENT_BYTES: &str = "confab_presence_bytes_sent_total";
const SENT_MESSAGES: &str = "confab_presence_messages_sent_total";
const RECEIVED_BYTES: &str = "confab_presence_bytes_received_total";
const RECEIVED_MESSAGES: &str = "confab_presence_messages_received_total";
const REFUSED_MESSAGES: &str = "confab_presence_messages_refused_total";
const USERS_ONLINE: &str = "confab_presence_users_online";

/// One measured phase: the nodes' counters at both ends, their CPU, its length.
struct Phase {
    before: Vec<Metrics>,
    after: Vec<Metrics>,
    servers: Vec<ProcessUsage>,
    load: Vec<ProcessUsage>,
    seconds: f64,
}

/// The figures of a phase, as step counters.
fn phase_counters(p: &Phase, users: u64) -> BTreeMap<String, f64> {
    let rate = |name: &str| scrape::delta(&p.before, &p.after, name) / p.seconds.max(1e-9);
    let mut c = BTreeMap::new();
    let sent = rate(SENT_BYTES);
    let nodes = p.after.len().max(1) as f64;
    c.insert("presence_bytes_sent_per_s".into(), sent);
    c.insert("presence_messages_sent_per_s".into(), rate(SENT_MESSAGES));
    c.insert("presence_bytes_received_per_s".into(), rate(RECEIVED_BYTES));
    c.insert(
        "presence_messages_received_per_s".into(),
        rate(RECEIVED_MESSAGES),
    );
    c.insert("presence_bytes_sent_per_node_per_s".into(), sent / nodes);
    if users > 0 {
        c.insert(
            "presence_bytes_sent_per_user_per_s".into(),
            sent / users as f64,
        );
    }
    c.insert(
        "presence_messages_refused".into(),
        scrape::delta(&p.before, &p.after, REFUSED_MESSAGES),
    );
    if let Some(min) = scrape::min(&p.after, USERS_ONLINE) {
        c.insert("presence_users_online_min".into(), min);
    }
    for u in &p.servers {
        c.insert(format!("server_cpu_percent {}", u.name), u.cpu_percent);
    }
    let cpu: Vec<f64> = p.servers.iter().map(|u| u.cpu_percent).collect();
    c.insert("server_cpu_percent".into(), cpu.iter().sum());
    c.insert(
        "server_cpu_percent_max".into(),
        cpu.iter().copied().fold(0.0, f64::max),
    );
    c.insert(
        "load_cpu_percent".into(),
        p.load.iter().map(|u| u.cpu_percent).sum(),
    );
    c
}

/// Users whose status the clients' own route is asked for at the end of each window.
const STATUS_SAMPLE: usize = 1_000;

/// `POST /api/v4/users/status/ids` on every node for the first `STATUS_SAMPLE` connected
/// users, as a client reads presence: (users asked, fewest any node says are online). `None`
/// when a node does not answer (a confab without the route).
async fn online_by_api(
    api: &crate::api::Api,
    addrs: &[String],
    population: &Population,
    failed: &HashSet<u32>,
) -> Option<(usize, usize)> {
    let sample: Vec<usize> = (0..population.users.len())
        .filter(|u| !failed.contains(&(*u as u32)))
        .take(STATUS_SAMPLE)
        .collect();
    let ids: Vec<&str> = sample
        .iter()
        .map(|&u| population.users[u].id.as_str())
        .collect();
    let token = &population.users.get(*sample.first()?)?.token;
    let mut fewest = usize::MAX;
    for addr in addrs {
        let answer = api
            .post(
                addr,
                "/users/status/ids",
                Some(token),
                &serde_json::json!(ids),
            )
            .await
            .ok()?;
        let online = answer
            .as_array()?
            .iter()
            .filter(|s| s["status"] == "online")
            .count();
        fewest = fewest.min(online);
    }
    Some((ids.len(), fewest))
}

/// Holds every user's socket, measures steady state, then a mass reconnect.
pub async fn run(
    opts: &PresenceOpts,
    servers: &Servers,
    population: Arc<Population>,
    profile: &str,
) -> anyhow::Result<Report> {
    let layout = opts.layout();
    let mut report = Report::new("presence", profile, serde_json::to_value(opts)?);
    report.params["layout"] = serde_json::json!({"users": layout.users, "channel_size": layout.channel_size(), "channels": layout.channels()});
    report.params["nodes"] = serde_json::json!(servers.servers.len());
    let addrs = servers.addrs();
    let server_pids = servers.pids();
    let client = reqwest::Client::new();
    let rss_before = crate::procstat::total_rss(&server_pids);
    report
        .memory
        .push(crate::procstat::memory_reading("after setup", &server_pids));

    let conns = crate::fanout::sockets(&layout, &addrs, Some(&population), &HashSet::new());
    let total = conns.len() as u64;
    let groups = pool::split(conns, opts.sockets_per_worker);
    let (mut pool, opened) =
        Pool::start(groups, Target::Confab, rand::random(), None, 0, |_| {}).await?;
    eprintln!(
        "presence: {} of {total} sockets open over {} workers{}",
        opened.opened,
        pool.pids().len(),
        opened
            .first_error
            .as_ref()
            .map(|e| format!(" (first failure: {e})"))
            .unwrap_or_default()
    );
    report
        .counters
        .insert("connections".into(), opened.opened as f64);
    report.counters.insert(
        "connections_failed".into(),
        opened.failed_users.len() as f64,
    );
    let first = scrape::all(&client, &addrs).await;
    if !scrape::present(&first, SENT_BYTES) {
        report.goals.push(format!(
            "no {SENT_BYTES} on the nodes' /metrics: a confab without cluster presence? (bytes read as 0)"
        ));
    }
    tokio::time::sleep(Duration::from_secs_f64(opts.settle)).await;
    let rss_added = crate::procstat::total_rss(&server_pids) as i64 - rss_before as i64;
    if opened.opened > 0 {
        report.rss_per_connection_bytes = Some(rss_added as f64 / opened.opened as f64);
    }
    report.memory.push(crate::procstat::memory_reading(
        "holding sockets",
        &server_pids,
    ));
    let load_pids: Vec<(String, u32)> =
        std::iter::once(("confab-load".to_string(), std::process::id()))
            .chain(
                pool.pids()
                    .into_iter()
                    .enumerate()
                    .map(|(i, pid)| (format!("worker-{i}"), pid)),
            )
            .collect();
    let users = opened.opened;
    let failed: HashSet<u32> = opened.failed_users.iter().copied().collect();
    let api = crate::api::Api::new(None)?;

    // Steady state.
    let before = scrape::all(&client, &addrs).await;
    let watch = crate::procstat::Watch::start(&server_pids);
    let load_watch = crate::procstat::Watch::start(&load_pids);
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(opts.seconds)).await;
    let steady = Phase {
        servers: watch.usage(),
        load: load_watch.usage(),
        after: scrape::all(&client, &addrs).await,
        before,
        seconds: began.elapsed().as_secs_f64(),
    };
    let mut steady_counters = phase_counters(&steady, users);
    let steady_status = online_by_api(&api, &addrs, &population, &failed).await;
    if let Some((asked, online)) = steady_status {
        steady_counters.insert("status_sampled".into(), asked as f64);
        steady_counters.insert("status_online_min".into(), online as f64);
    }
    eprintln!(
        "presence steady: {:.0} B/s, {:.1} messages/s between nodes, servers {:.1} % CPU",
        steady_counters["presence_bytes_sent_per_s"],
        steady_counters["presence_messages_sent_per_s"],
        steady_counters["server_cpu_percent"]
    );

    // Mass reconnect: the window starts with it and lasts at least until every socket is back.
    let counter = pool.counter();
    let reconnects_before = counter.reconnects();
    let before = scrape::all(&client, &addrs).await;
    let watch = crate::procstat::Watch::start(&server_pids);
    let load_watch = crate::procstat::Watch::start(&load_pids);
    let began = Instant::now();
    pool.reconnect_all(opts.reconnect_spread_ms).await?;
    let give_up = began + Duration::from_secs_f64(opts.seconds.max(120.0));
    let mut reopened_after: Option<f64> = None;
    while Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reopened = counter.reconnects().saturating_sub(reconnects_before);
        if reopened_after.is_none() && reopened >= users {
            reopened_after = Some(began.elapsed().as_secs_f64());
        }
        if reopened_after.is_some() && began.elapsed().as_secs_f64() >= opts.seconds {
            break;
        }
    }
    let reconnect = Phase {
        servers: watch.usage(),
        load: load_watch.usage(),
        after: scrape::all(&client, &addrs).await,
        before,
        seconds: began.elapsed().as_secs_f64(),
    };
    let reopened = counter.reconnects().saturating_sub(reconnects_before);
    let mut reconnect_counters = phase_counters(&reconnect, users);
    if let Some((asked, online)) = online_by_api(&api, &addrs, &population, &failed).await {
        reconnect_counters.insert("status_sampled".into(), asked as f64);
        reconnect_counters.insert("status_online_min".into(), online as f64);
    }
    reconnect_counters.insert("sockets_reopened".into(), reopened as f64);
    if let Some(s) = reopened_after {
        reconnect_counters.insert("all_reopened_s".into(), s);
    }
    eprintln!(
        "presence mass reconnect: {reopened} of {users} sockets reopened{}; {:.0} B/s, {:.1} messages/s between nodes, servers {:.1} % CPU",
        reopened_after
            .map(|s| format!(" in {s:.1} s"))
            .unwrap_or_else(|| " (not all)".into()),
        reconnect_counters["presence_bytes_sent_per_s"],
        reconnect_counters["presence_messages_sent_per_s"],
        reconnect_counters["server_cpu_percent"]
    );

    report
        .memory
        .push(crate::procstat::memory_reading("end", &server_pids));
    let finals = pool.stop().await?;
    report.counters.insert(
        "sockets_lost".into(),
        finals.iter().map(|f| f.lost).sum::<u64>() as f64,
    );
    let mut closes: BTreeMap<String, u64> = BTreeMap::new();
    for f in &finals {
        for (why, n) in &f.closes {
            *closes.entry(why.clone()).or_insert(0) += n;
        }
    }
    for (why, n) in closes {
        report.goals.push(format!("sockets closed: {n} × {why}"));
    }

    let online_ok = |c: &BTreeMap<String, f64>| {
        c.get("presence_users_online_min")
            .is_some_and(|&n| n >= users as f64)
    };
    report.goals.push(crate::writes::goal_line(
        "every node sees every connected user online (steady state)",
        online_ok(&steady_counters),
        format!(
            "{} of {users} on the node that sees fewest",
            steady_counters
                .get("presence_users_online_min")
                .map_or("?".into(), |n| format!("{n:.0}"))
        ),
    ));
    report.goals.push(crate::writes::goal_line(
        "POST /users/status/ids on every node says the connected users are online (steady state)",
        steady_status.is_some_and(|(asked, online)| asked > 0 && online == asked),
        match steady_status {
            Some((asked, online)) => {
                format!("{online} of {asked} sampled on the node that says fewest")
            }
            None => "a node did not answer".into(),
        },
    ));
    report.goals.push(crate::writes::goal_line(
        "every socket reopened after the mass reconnect",
        reopened >= users,
        format!("{reopened} of {users}"),
    ));
    report.result = Some(format!(
        "presence, {users} sockets on {} nodes: steady {:.0} B/s ({:.1} messages/s) between nodes at {:.1} % server CPU; mass reconnect {:.0} B/s ({:.1} messages/s) at {:.1} % server CPU",
        addrs.len(),
        steady_counters["presence_bytes_sent_per_s"],
        steady_counters["presence_messages_sent_per_s"],
        steady_counters["server_cpu_percent"],
        reconnect_counters["presence_bytes_sent_per_s"],
        reconnect_counters["presence_messages_sent_per_s"],
        reconnect_counters["server_cpu_percent"],
    ));
    // The process table shows the steady window; each phase's CPU per node is in its step.
    report.servers = steady.servers.clone();
    report.load_processes = steady.load.clone();
    report.duration_s = steady.seconds + reconnect.seconds;
    for (name, counters, seconds) in [
        ("steady", steady_counters, steady.seconds),
        ("mass reconnect", reconnect_counters, reconnect.seconds),
    ] {
        report.steps.push(Step {
            load: users as f64,
            load_unit: "sockets".into(),
            passed: true,
            latencies: BTreeMap::new(),
            counters,
            note: format!("{name}, {seconds:.1} s window"),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_counters_are_rates_over_the_window() {
        let before = vec![
            scrape::parse(
                "confab_presence_bytes_sent_total 100\nconfab_presence_messages_sent_total 1\n",
            ),
            scrape::parse("confab_presence_bytes_sent_total 0\n"),
        ];
        let after = vec![
            scrape::parse("confab_presence_bytes_sent_total 1100\nconfab_presence_messages_sent_total 11\nconfab_presence_users_online 10\n"),
            scrape::parse("confab_presence_bytes_sent_total 1000\nconfab_presence_users_online 9\n"),
        ];
        let usage = |name: &str, cpu| ProcessUsage {
            name: name.to_string(),
            cpu_percent: cpu,
            ..ProcessUsage::default()
        };
        let phase = Phase {
            before,
            after,
            servers: vec![usage("confab-1", 20.0), usage("confab-2", 30.0)],
            load: vec![usage("worker-0", 5.0)],
            seconds: 10.0,
        };
        let c = phase_counters(&phase, 10);
        assert_eq!(c["presence_bytes_sent_per_s"], 200.0);
        assert_eq!(c["presence_messages_sent_per_s"], 1.0);
        assert_eq!(c["presence_bytes_sent_per_node_per_s"], 100.0);
        assert_eq!(c["presence_bytes_sent_per_user_per_s"], 20.0);
        assert_eq!(c["presence_users_online_min"], 9.0);
        assert_eq!(c["server_cpu_percent"], 50.0);
        assert_eq!(c["server_cpu_percent confab-2"], 30.0);
        assert_eq!(c["server_cpu_percent_max"], 30.0);
        assert_eq!(c["load_cpu_percent"], 5.0);
    }
}
