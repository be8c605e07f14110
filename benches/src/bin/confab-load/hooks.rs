//! `hooks` (issue 19): webhooks through a cluster.
//!
//! 1. **Incoming webhooks** (what CI systems hammer): a fresh channel and an incoming webhook
//!    in it; closed loops of N senders (`writes::closed_loop`) sending `POST /hooks/{id}`
//!    through the followers (found with `GET /api/v4/cluster/status`) with JSON bodies
//!    `{"text": …}`, one run per `--writers` count, then one run with `payload=` form bodies.
//!    Every text is numbered; afterwards the channel's posts are read back through the API
//!    and every answered webhook must have made exactly one post.
//! 2. **Fan-out beside a slow outgoing webhook**: the tool's own endpoint (`slowhook`) answers
//!    every call after `--slow-ms`. `--rounds` rounds of two `fanout` phases (the same
//!    measurement as `fanout`, reused whole, posts unchanged): without an outgoing webhook,
//!    then with one outgoing webhook per fan-out channel, without trigger words, so every post
//!    calls the slow endpoint. The hooks are deleted after their phase; calls still queued in
//!    the cluster's outbox are then dropped by the dispatcher.

use crate::api::{self, Api};
use crate::cluster::Servers;
use crate::fanout::{self, FanoutOpts, Poster};
use crate::files::{self, median, Through};
use crate::population::Population;
use crate::procstat::{CpuShare, CpuShares};
use crate::proto::{Layout, Target};
use crate::report::{self, LatencySummary, Report, Step};
use crate::slowhook::SlowHook;
use crate::writes;
use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Parser};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The display name of the outgoing hooks this tool creates (and deletes, also when an earlier
/// run left some behind).
const SLOW_HOOK_NAME: &str = "confab-load slow endpoint";

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct HooksOpts {
    /// Incoming webhooks: closed-loop runs with JSON bodies, one per number of concurrent
    /// senders (empty or 0: skip).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    pub writers: Vec<usize>,
    /// Incoming webhooks: one more run with `payload=` form bodies and this many senders
    /// (0: skip).
    #[arg(long, default_value_t = 16)]
    pub form_writers: usize,
    /// Seconds per incoming-webhook run.
    #[arg(long, default_value_t = 10.0)]
    pub hook_seconds: f64,
    /// The nodes that take the incoming webhooks: every follower (found with GET
    /// /api/v4/cluster/status), or the leader.
    #[arg(long, value_enum, default_value_t = Through::Follower)]
    pub through: Through,
    /// Read the channel's posts back and check that every answered webhook made exactly one.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub verify: bool,
    /// Fan-out: rounds of (no outgoing webhook, a slow outgoing webhook on every post),
    /// alternating (0: skip).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The slow endpoint answers each outgoing-webhook call after this many ms.
    #[arg(long, default_value_t = 5000)]
    pub slow_ms: u64,
    /// Where the slow endpoint listens (port 0: any; the hook's callback URL names it). The
    /// nodes must allow its address as an untrusted internal connection.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub slow_listen: SocketAddr,
    /// Fan-out: users, each with one WebSocket.
    #[arg(long, default_value_t = 2000)]
    pub users: u32,
    /// Fan-out: members per channel.
    #[arg(long, default_value_t = 500)]
    pub channel_size: u32,
    /// Fan-out: posts per second (open loop), both phases.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Fan-out: seconds measured per phase.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Fan-out: seconds of posting before each phase's measurement (not counted; with the
    /// hook, these posts call it too).
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Fan-out: the post→receive p99 goal of a phase.
    #[arg(long, default_value_t = 50.0)]
    pub p99_goal_ms: f64,
    /// Pause before each run and phase, s.
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
    /// A fan-out phase is "quiet" when processes other than the servers and this tool used
    /// less CPU than this (% of one core, from /proc/stat); the `_quiet` medians count only
    /// those phases.
    #[arg(long, default_value_t = 10.0)]
    pub quiet_cpu: f64,
}

/// `FanoutOpts` with its own defaults, for the options `hooks` does not set.
#[derive(Parser)]
struct FanoutDefaults {
    #[command(flatten)]
    opts: FanoutOpts,
}

impl HooksOpts {
    pub fn layout(&self) -> Layout {
        Layout {
            users: self.users,
            channel_size: self.channel_size,
            channels_per_user: 1,
        }
    }

    /// The `fanout` measurement of one phase.
    pub fn fanout_opts(&self) -> FanoutOpts {
        let mut opts = FanoutDefaults::try_parse_from(["fanout"])
            .map(|d| d.opts)
            .expect("fanout's defaults parse");
        opts.users = Some(self.users);
        opts.channel_size = Some(self.channel_size);
        opts.channels_per_user = Some(1);
        opts.rate = Some(self.rate);
        opts.rate_step = Some(self.rate);
        opts.find_max = false;
        opts.seconds = self.seconds;
        opts.warmup = self.warmup;
        opts.p99_goal_ms = self.p99_goal_ms;
        opts
    }

    /// The flags every node needs: both kinds of webhook on, and the slow endpoint's address
    /// allowed although it is loopback (`AllowedUntrustedInternalConnections`).
    pub fn node_flags(&self, slow: SocketAddr) -> Vec<String> {
        vec![
            "--enable-incoming-webhooks".into(),
            "true".into(),
            "--enable-outgoing-webhooks".into(),
            "true".into(),
            "--allowed-untrusted-internal-connections".into(),
            slow.ip().to_string(),
        ]
    }
}

/// Sends one closed-loop run's incoming webhooks and keeps, by number, which were answered
/// `200` and which failed (a failed one may or may not have posted).
pub struct HookSender {
    client: reqwest::Client,
    nodes: Vec<String>,
    hook_id: String,
    form: bool,
    /// `hk<run>`: this invocation's posts.
    tag: String,
    /// The run's index: the second word of its texts.
    step: usize,
    next: AtomicU64,
    acked: Mutex<Vec<u64>>,
    failed: Mutex<Vec<u64>>,
    /// The highest `X-Confab-Applied` answered.
    applied: Arc<AtomicU64>,
}

impl HookSender {
    /// One webhook through node `who mod n`: `<tag> <step> <n> <label>`.
    pub async fn send(&self, who: u32, label: &str) -> Result<(), String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let text = format!("{} {} {n} {label}", self.tag, self.step);
        let node = &self.nodes[who as usize % self.nodes.len()];
        let request = self
            .client
            .post(format!("http://{node}/hooks/{}", self.hook_id));
        let request = if self.form {
            request.form(&[("payload", json!({ "text": text }).to_string())])
        } else {
            request.json(&json!({ "text": text }))
        };
        let result = match request.send().await {
            Ok(response) => {
                let status = response.status();
                if let Some(index) = response
                    .headers()
                    .get("x-confab-applied")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    self.applied.fetch_max(index, Ordering::Relaxed);
                }
                match response.text().await {
                    Ok(body) if status.as_u16() == 200 => Ok(body),
                    Ok(body) => Err(format!(
                        "{status}: {}",
                        body.chars().take(200).collect::<String>()
                    )),
                    Err(e) => Err(format!("{status}: reading the answer: {e}")),
                }
            }
            Err(e) => Err(format!("transport: {e}")),
        };
        let list = if result.is_ok() {
            &self.acked
        } else {
            &self.failed
        };
        list.lock().unwrap_or_else(|e| e.into_inner()).push(n);
        result.map(|_| ())
    }
}

/// What the read-back found for one run: (answered, posted once, lost, extra posts of answered
/// ones, failed, failed that posted anyway).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Check {
    pub acked: u64,
    pub once: u64,
    pub lost: u64,
    pub doubled: u64,
    pub failed: u64,
    pub failed_posted: u64,
}

/// Matches a run's answered and failed numbers against how often each was posted.
pub fn check(acked: &[u64], failed: &[u64], posted: &HashMap<u64, u64>) -> Check {
    let mut c = Check {
        acked: acked.len() as u64,
        failed: failed.len() as u64,
        ..Check::default()
    };
    for n in acked {
        match posted.get(n).copied().unwrap_or(0) {
            0 => c.lost += 1,
            1 => c.once += 1,
            k => {
                c.once += 1;
                c.doubled += k - 1;
            }
        }
    }
    for n in failed {
        let k = posted.get(n).copied().unwrap_or(0);
        if k > 0 {
            c.failed_posted += 1;
            c.doubled += k - 1;
        }
    }
    c
}

/// `<tag> <step> <n> …` → (step, n); other texts give `None`.
pub fn parse_text(tag: &str, text: &str) -> Option<(usize, u64)> {
    let mut words = text.split_whitespace();
    if words.next()? != tag {
        return None;
    }
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// Every post message of a channel, newest first, paged with `before` (200 a page).
async fn channel_messages(
    client: &reqwest::Client,
    node: &str,
    token: &str,
    channel: &str,
    applied: u64,
) -> anyhow::Result<Vec<String>> {
    let mut messages = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut url = format!("http://{node}/api/v4/channels/{channel}/posts?per_page=200");
        if let Some(id) = &before {
            url.push_str(&format!("&before={id}"));
        }
        let response = client
            .get(url)
            .bearer_auth(token)
            .header("X-Confab-Applied", applied)
            .send()
            .await?;
        let status = response.status();
        let page: Value = response.json().await?;
        if !status.is_success() {
            bail!("listing the channel's posts: {status} {page}");
        }
        let order: Vec<String> = page["order"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let Some(last) = order.last().cloned() else {
            return Ok(messages);
        };
        for id in &order {
            messages.push(
                page["posts"][id]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        if before.as_deref() == Some(last.as_str()) {
            bail!("the channel's post pages do not advance past {last}");
        }
        before = Some(last);
    }
}

/// Creates the slow outgoing hooks: one per channel of the population, without trigger words,
/// so every post there calls the slow endpoint (JSON calls). Their ids.
async fn create_slow_hooks(
    api: &Api,
    node: &str,
    population: &Population,
    slow: SocketAddr,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for channel in &population.channels {
        let body = json!({
            "team_id": population.team,
            "channel_id": channel,
            "display_name": SLOW_HOOK_NAME,
            "trigger_words": [],
            "trigger_when": 0,
            "callback_urls": [format!("http://{slow}/hook")],
            "content_type": "application/json",
        });
        let hook = api
            .post(
                node,
                "/hooks/outgoing",
                Some(&population.admin.token),
                &body,
            )
            .await
            .map_err(|e| anyhow!("creating the outgoing webhook of channel {channel}: {e}"))?;
        ids.push(api::id_of(&hook)?);
    }
    Ok(ids)
}

/// Deletes every outgoing hook of the team this tool made (one, or leftovers of a run that
/// was stopped); how many.
async fn delete_slow_hooks(
    api: &Api,
    node: &str,
    population: &Population,
) -> anyhow::Result<usize> {
    let token = &population.admin.token;
    let hooks = api
        .get(
            node,
            &format!("/hooks/outgoing?team_id={}&per_page=200", population.team),
            token,
        )
        .await
        .map_err(|e| anyhow!("listing outgoing webhooks: {e}"))?;
    let mut deleted = 0;
    for hook in hooks.as_array().into_iter().flatten() {
        if hook["display_name"] != SLOW_HOOK_NAME {
            continue;
        }
        let id = api::id_of(hook)?;
        api.call(
            node,
            reqwest::Method::DELETE,
            &format!("/hooks/outgoing/{id}"),
            Some(token),
            None,
        )
        .await
        .map_err(|e| anyhow!("deleting outgoing webhook {id}: {e}"))?;
        deleted += 1;
    }
    Ok(deleted)
}

/// A window's CPU split (`procstat::CpuShare`) as step counters.
fn cpu_counters(c: &mut BTreeMap<String, f64>, cpu: CpuShares) {
    c.insert("cpu_machine_percent".into(), cpu.machine);
    c.insert("cpu_servers_percent".into(), cpu.servers);
    c.insert("cpu_tool_percent".into(), cpu.tool);
    c.insert("cpu_other_percent".into(), cpu.other);
}

async fn settle(opts: &HooksOpts) {
    tokio::time::sleep(Duration::from_secs_f64(opts.settle.max(0.0))).await;
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The phases of the fan-out part, in report keys.
const NO_HOOK: &str = "no_hook";
const SLOW_HOOK: &str = "slow_hook";

/// One fan-out phase's figures.
struct Phase {
    step: Step,
    receive: Histogram<u64>,
    post: Histogram<u64>,
    cpu_percent: f64,
}

/// The incoming part: runs, then the read-back. Returns whether every answered webhook made
/// exactly one post (true when not checked).
async fn incoming(
    opts: &HooksOpts,
    api: &Api,
    servers: &Servers,
    population: &Arc<Population>,
    report: &mut Report,
    series: &mut Vec<(String, Histogram<u64>)>,
) -> anyhow::Result<bool> {
    let addrs = servers.addrs();
    let admin = &population.admin.token;
    let (ids, leader) = files::cluster_ids(api, &addrs, admin).await?;
    let targets: Vec<String> = addrs
        .iter()
        .zip(&ids)
        .filter(|(_, &id)| match opts.through {
            Through::Leader => id == leader,
            Through::Follower => id != leader,
        })
        .map(|(a, _)| a.clone())
        .collect();
    if targets.is_empty() {
        bail!(
            "no {:?} among nodes {ids:?} (leader {leader})",
            opts.through
        );
    }
    eprintln!(
        "hooks: incoming webhooks through {} ({:?}); leader is node {leader}",
        targets.join(", "),
        opts.through
    );
    report.params["leader_node_id"] = json!(leader);
    report.params["incoming_through"] = json!(targets);

    // A fresh channel and hook per invocation, so the read-back sees only this run's posts.
    let run: u32 = rand::random();
    let tag = format!("hk{run:08x}");
    let setup = api.consistent();
    let channel = setup
        .ensure_channel(
            &addrs[0],
            admin,
            &population.team,
            &format!("hooks-{run:08x}"),
        )
        .await?;
    let hook = setup
        .post(
            &addrs[0],
            "/hooks/incoming",
            Some(admin),
            &json!({"channel_id": channel, "display_name": "confab-load"}),
        )
        .await
        .map_err(|e| anyhow!("creating the incoming webhook: {e}"))?;
    let hook_id = api::id_of(&hook)?;
    // Every target has applied the hook before the clock starts.
    for node in &targets {
        setup
            .get(node, &format!("/hooks/incoming/{hook_id}"), admin)
            .await
            .map_err(|e| anyhow!("the incoming webhook on {node}: {e}"))?;
    }
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(30))
        .build()?;
    let applied = Arc::new(AtomicU64::new(0));
    let mut runs: Vec<(String, usize, bool)> = opts
        .writers
        .iter()
        .filter(|&&w| w > 0)
        .map(|&w| (format!("json_w{w}"), w, false))
        .collect();
    if opts.form_writers > 0 {
        runs.push((
            format!("form_w{}", opts.form_writers),
            opts.form_writers,
            true,
        ));
    }
    let layout = population.layout;
    let mut senders: Vec<(String, Arc<Poster>, usize)> = Vec::new();
    for (step_no, (key, writers, form)) in runs.into_iter().enumerate() {
        settle(opts).await;
        let poster = Arc::new(Poster::Hook(HookSender {
            client: client.clone(),
            nodes: targets.clone(),
            hook_id: hook_id.clone(),
            form,
            tag: tag.clone(),
            step: step_no,
            next: AtomicU64::new(0),
            acked: Mutex::new(Vec::new()),
            failed: Mutex::new(Vec::new()),
            applied: applied.clone(),
        }));
        let body = if form { "payload= form" } else { "JSON" };
        let cpu = CpuShare::start(&servers.pids());
        let (mut step, hist, _) = writes::closed_loop(
            &poster,
            layout,
            writers,
            opts.hook_seconds,
            "incoming webhook",
            None,
        )
        .await;
        step.load_unit = format!("senders, {body} bodies");
        cpu_counters(&mut step.counters, cpu.finish());
        let l = &step.latencies["post_request"];
        eprintln!(
            "hooks: incoming, {writers:>3} senders ({body}): {:>6.0} hooks/s, p50 {:.1} ms, p99 {:.1} ms, errors {}{}",
            step.counters["posts_per_s"],
            l.p50_ms,
            l.p99_ms,
            step.counters["errors"],
            if step.note.is_empty() { String::new() } else { format!(" ({})", step.note) }
        );
        report
            .counters
            .insert(format!("hooks_per_s:{key}"), step.counters["posts_per_s"]);
        report
            .latencies
            .insert(format!("hook_request:{key}"), l.clone());
        series.push((format!("incoming {writers} senders ({body})"), hist));
        report.steps.push(step);
        senders.push((key, poster, report.steps.len() - 1));
    }
    report.memory.push(crate::procstat::memory_reading(
        "after the incoming-webhook runs",
        &servers.pids(),
    ));
    let best = senders
        .iter()
        .filter(|(k, _, _)| k.starts_with("json_"))
        .map(|(_, _, i)| report.steps[*i].counters["posts_per_s"])
        .fold(0.0, f64::max);
    report.counters.insert("max_hooks_per_s".into(), best);
    if !opts.verify || senders.is_empty() {
        return Ok(true);
    }

    // Read-back: every post of the channel, from the first target (it waits until it has
    // applied the last answered webhook), and the channel's message count on every node.
    let index = applied.load(Ordering::Relaxed);
    let began = Instant::now();
    let messages = channel_messages(&client, &targets[0], admin, &channel, index).await?;
    let mut posted: Vec<HashMap<u64, u64>> = vec![HashMap::new(); senders.len()];
    let mut foreign = 0u64;
    for text in &messages {
        match parse_text(&tag, text) {
            Some((step, n)) if step < posted.len() => *posted[step].entry(n).or_insert(0) += 1,
            _ => foreign += 1,
        }
    }
    let mut total = Check::default();
    for ((key, poster, i), posted) in senders.iter().zip(&posted) {
        let Poster::Hook(sender) = poster.as_ref() else {
            continue;
        };
        let acked = sender
            .acked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let failed = sender
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let c = check(&acked, &failed, posted);
        let counters = &mut report.steps[*i].counters;
        for (name, v) in [
            ("hooks_answered", c.acked),
            ("posts_once", c.once),
            ("lost", c.lost),
            ("doubled", c.doubled),
            ("failed_posted", c.failed_posted),
        ] {
            counters.insert(name.into(), v as f64);
        }
        if c.lost > 0 || c.doubled > 0 {
            report.steps[*i].passed = false;
            eprintln!("hooks: {key}: {c:?}");
        }
        total.acked += c.acked;
        total.once += c.once;
        total.lost += c.lost;
        total.doubled += c.doubled;
        total.failed += c.failed;
        total.failed_posted += c.failed_posted;
    }
    let mut counts = Vec::new();
    for node in &addrs {
        let channel_view = client
            .get(format!("http://{node}/api/v4/channels/{channel}"))
            .bearer_auth(admin)
            .header("X-Confab-Applied", index)
            .send()
            .await
            .context("reading the channel")?
            .json::<Value>()
            .await?;
        counts.push(channel_view["total_msg_count"].as_f64().unwrap_or(-1.0));
    }
    let c = &mut report.counters;
    for (name, v) in [
        ("hooks_answered", total.acked),
        ("hooks_posted_once", total.once),
        ("hooks_lost", total.lost),
        ("hooks_doubled", total.doubled),
        ("hooks_failed", total.failed),
        ("hooks_failed_posted", total.failed_posted),
        ("channel_posts_read", messages.len() as u64),
        ("channel_posts_foreign", foreign),
    ] {
        c.insert(name.into(), v as f64);
    }
    for (node, n) in addrs.iter().zip(&counts) {
        c.insert(format!("channel_total_msg_count {node}"), *n);
    }
    let expected = (total.once + total.doubled + total.failed_posted) as f64;
    let counts_agree = counts.iter().all(|&n| n == messages.len() as f64);
    let exact = total.lost == 0 && total.doubled == 0 && foreign == 0;
    eprintln!(
        "hooks: read back {} posts in {:.1} s: {} answered, {} posted once, {} lost, {} extra, {} failed ({} of them posted); total_msg_count per node {:?}",
        messages.len(),
        began.elapsed().as_secs_f64(),
        total.acked,
        total.once,
        total.lost,
        total.doubled,
        total.failed,
        total.failed_posted,
        counts
    );
    report.goals.push(writes::goal_line(
        "every answered incoming webhook made exactly one post",
        exact && counts_agree && expected == messages.len() as f64,
        format!(
            "{} answered, {} posts read back, {} lost, {} extra, {} failed requests of which {} posted; total_msg_count {}",
            total.acked,
            messages.len(),
            total.lost,
            total.doubled,
            total.failed,
            total.failed_posted,
            if counts_agree { "agrees on every node" } else { "differs" }
        ),
    ));
    Ok(exact && counts_agree)
}

pub async fn run(
    opts: &HooksOpts,
    servers: &Servers,
    population: Arc<Population>,
    slow: &SlowHook,
    profile: &str,
) -> anyhow::Result<(Report, Vec<(String, Histogram<u64>)>)> {
    let mut report = Report::new("hooks", profile, serde_json::to_value(opts)?);
    let mut series = Vec::new();
    let api = Api::new(None)?;
    let addrs = servers.addrs();
    let pids = servers.pids();
    let began = Instant::now();
    eprintln!("hooks: /proc/loadavg at the start: {}", loadavg());
    report
        .counters
        .insert("loadavg_1m_start".into(), files::loadavg_1m());
    report.params["slow_endpoint"] = json!(slow.addr.to_string());
    let usage = crate::procstat::Watch::start(&pids);
    let left = delete_slow_hooks(&api, &addrs[0], &population).await?;
    if left > 0 {
        eprintln!("hooks: deleted {left} outgoing webhook(s) an earlier run left behind");
    }

    // 1. Incoming webhooks.
    let incoming_exact =
        incoming(opts, &api, servers, &population, &mut report, &mut series).await?;

    // 2. Fan-out without and beside the slow outgoing webhook, alternating.
    let fopts = opts.fanout_opts();
    let metrics = reqwest::Client::new();
    let warmup_posts = if fopts.warmup > 0.0 {
        (opts.rate * fopts.warmup).round().max(1.0)
    } else {
        0.0
    };
    let mut phases: BTreeMap<&'static str, Vec<Phase>> = BTreeMap::new();
    let mut lag = report::new_histogram();
    for round in 1..=opts.rounds {
        for phase in [NO_HOOK, SLOW_HOOK] {
            settle(opts).await;
            let loadavg_start = files::loadavg_1m();
            eprintln!(
                "hooks: round {round}, fan-out {}: /proc/loadavg {}",
                if phase == NO_HOOK {
                    "without an outgoing webhook"
                } else {
                    "beside the slow outgoing webhook"
                },
                loadavg()
            );
            let setup = api.consistent();
            let hooks = if phase == SLOW_HOOK {
                create_slow_hooks(&setup, &addrs[0], &population, slow.addr).await?
            } else {
                Vec::new()
            };
            // Every node has them before the first post.
            for (node, id) in addrs.iter().flat_map(|a| hooks.iter().map(move |h| (a, h))) {
                setup
                    .get(
                        node,
                        &format!("/hooks/outgoing/{id}"),
                        &population.admin.token,
                    )
                    .await
                    .map_err(|e| anyhow!("outgoing webhook {id} on {node}: {e}"))?;
            }
            let before = crate::scrape::all(&metrics, &addrs).await;
            slow.sink.window();
            let window_began = Instant::now();
            let cpu = CpuShare::start(&pids);
            let (fan, fan_series) = fanout::run(
                &fopts,
                Target::Confab,
                servers,
                Some(population.clone()),
                None,
                profile,
            )
            .await?;
            let mut window = slow.sink.window();
            let window_s = window_began.elapsed().as_secs_f64();
            let cpu = cpu.finish();
            // The hook goes; calls being held are let finish, queued ones are dropped.
            if !hooks.is_empty() {
                delete_slow_hooks(&setup, &addrs[0], &population).await?;
            }
            let idle = slow
                .idle(Duration::from_millis(opts.slow_ms) + Duration::from_secs(10))
                .await;
            let tail = slow.sink.window();
            window.lag.add(&tail.lag)?;
            let after = crate::scrape::all(&metrics, &addrs).await;
            let mut step = fan
                .steps
                .first()
                .cloned()
                .ok_or_else(|| anyhow!("fanout measured no step"))?;
            step.load_unit = match phase {
                NO_HOOK => "posts/s, no outgoing webhook".into(),
                _ => format!(
                    "posts/s, outgoing webhook answering after {} ms",
                    opts.slow_ms
                ),
            };
            let c = &mut step.counters;
            c.insert("round".into(), round as f64);
            c.insert("loadavg_1m_start".into(), loadavg_start);
            cpu_counters(c, cpu);
            eprintln!(
                "hooks: round {round}, {phase}: CPU (% of one core) machine {:.0}, servers {:.0}, this tool {:.0}, other processes {:.0}",
                cpu.machine, cpu.servers, cpu.tool, cpu.other
            );
            let made = c.get("posts_ok").copied().unwrap_or(0.0)
                + c.get("posts_failed").copied().unwrap_or(0.0)
                + warmup_posts;
            let server_calls =
                crate::scrape::delta(&before, &after, "confab_outgoing_webhook_calls_total");
            if phase == SLOW_HOOK {
                c.insert("hook_posts_made".into(), made);
                c.insert("hook_calls_received".into(), window.calls as f64);
                c.insert("hook_calls_after_phase".into(), tail.calls as f64);
                c.insert(
                    "hook_calls_repeated".into(),
                    (window.repeated + tail.repeated) as f64,
                );
                c.insert(
                    "hook_calls_unreadable".into(),
                    (window.unreadable + tail.unreadable) as f64,
                );
                c.insert(
                    "hook_peak_in_flight".into(),
                    window.peak_in_flight.max(tail.peak_in_flight) as f64,
                );
                // Over the phase: the hooks' creation to the end of `fanout` (sockets opened,
                // warm-up, measurement, drain).
                let per_s = window.calls as f64 / window_s.max(1e-9);
                let not_made = (made - (window.calls + tail.calls) as f64).max(0.0);
                c.insert("hook_calls_per_s".into(), per_s);
                c.insert("hook_calls_not_made".into(), not_made);
                c.insert("hook_window_s".into(), window_s);
                if per_s > 0.0 {
                    c.insert("hook_backlog_drain_s".into(), not_made / per_s);
                }
                c.insert("server_hook_calls".into(), server_calls);
                c.insert("hook_idle_after_phase".into(), if idle { 1.0 } else { 0.0 });
                let summary = LatencySummary::from_histogram(&window.lag);
                eprintln!(
                    "hooks: round {round}: the slow endpoint got {} calls for {made:.0} posts ({:.1}/s), at most {} in flight, {} more after the phase, {} repeated; post→call p50 {:.1} s, max {:.1} s",
                    window.calls,
                    c["hook_calls_per_s"],
                    window.peak_in_flight.max(tail.peak_in_flight),
                    tail.calls,
                    window.repeated + tail.repeated,
                    summary.p50_ms / 1000.0,
                    summary.max_ms / 1000.0
                );
                step.latencies.insert("post_to_hook_call".into(), summary);
                lag.add(&window.lag)?;
            } else if window.calls + tail.calls > 0 || server_calls > 0.0 {
                c.insert(
                    "hook_calls_received".into(),
                    (window.calls + tail.calls) as f64,
                );
                c.insert("server_hook_calls".into(), server_calls);
            }
            let mut receive = report::new_histogram();
            let mut post = report::new_histogram();
            for (name, hist) in fan_series {
                match name.as_str() {
                    "post→receive" => receive.add(&hist)?,
                    "POST" => post.add(&hist)?,
                    _ => {}
                }
            }
            if let Some(mut m) = fan.memory.last().cloned() {
                m.label = format!("end of round {round}, {phase}");
                report.memory.push(m);
            }
            let cpu_percent = fan.servers.iter().map(|p| p.cpu_percent).sum();
            step.counters
                .insert("server_cpu_percent".into(), cpu_percent);
            phases.entry(phase).or_default().push(Phase {
                step,
                receive,
                post,
                cpu_percent,
            });
        }
    }

    // Medians over the rounds, merged distributions, steps in the order they ran.
    let mut fanout_clean = true;
    let mut fan_steps: Vec<(f64, usize, Step)> = Vec::new();
    for (rank, phase) in [NO_HOOK, SLOW_HOOK].into_iter().enumerate() {
        let Some(runs) = phases.remove(phase) else {
            continue;
        };
        let pick = |f: &dyn Fn(&Phase) -> f64| {
            median(&runs.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0)
        };
        let lat = |p: &Phase, name: &str, f: fn(&LatencySummary) -> f64| {
            p.step.latencies.get(name).map(f).unwrap_or(0.0)
        };
        let c = &mut report.counters;
        c.insert(
            format!("receive_p50_ms:{phase}"),
            pick(&|p| lat(p, "post_to_receive", |l| l.p50_ms)),
        );
        c.insert(
            format!("receive_p99_ms:{phase}"),
            pick(&|p| lat(p, "post_to_receive", |l| l.p99_ms)),
        );
        c.insert(
            format!("post_p50_ms:{phase}"),
            pick(&|p| lat(p, "post_request", |l| l.p50_ms)),
        );
        c.insert(
            format!("post_p99_ms:{phase}"),
            pick(&|p| lat(p, "post_request", |l| l.p99_ms)),
        );
        c.insert(
            format!("deliveries_per_s:{phase}"),
            pick(&|p| {
                p.step
                    .counters
                    .get("deliveries_per_s")
                    .copied()
                    .unwrap_or(0.0)
            }),
        );
        c.insert(
            format!("server_cpu_percent:{phase}"),
            pick(&|p| p.cpu_percent),
        );
        for name in ["cpu_machine_percent", "cpu_other_percent"] {
            c.insert(
                format!("{name}:{phase}"),
                pick(&|p| p.step.counters.get(name).copied().unwrap_or(0.0)),
            );
        }
        // The same medians over the quiet phases only (others' compiles and tests away).
        let quiet: Vec<&Phase> = runs
            .iter()
            .filter(|p| {
                p.step
                    .counters
                    .get("cpu_other_percent")
                    .is_some_and(|&o| o < opts.quiet_cpu)
            })
            .collect();
        c.insert(format!("quiet_rounds:{phase}"), quiet.len() as f64);
        if !quiet.is_empty() {
            let quiet_pick = |f: &dyn Fn(&Phase) -> f64| {
                median(&quiet.iter().map(|p| f(p)).collect::<Vec<_>>()).unwrap_or(0.0)
            };
            c.insert(
                format!("receive_p50_ms_quiet:{phase}"),
                quiet_pick(&|p| lat(p, "post_to_receive", |l| l.p50_ms)),
            );
            c.insert(
                format!("receive_p99_ms_quiet:{phase}"),
                quiet_pick(&|p| lat(p, "post_to_receive", |l| l.p99_ms)),
            );
        }
        for name in [
            "missing",
            "duplicated",
            "unexpected",
            "posts_failed",
            "deliveries",
            "expected_deliveries",
        ] {
            let sum: f64 = runs
                .iter()
                .map(|p| p.step.counters.get(name).copied().unwrap_or(0.0))
                .sum();
            if matches!(name, "missing" | "duplicated" | "posts_failed") && sum > 0.0 {
                fanout_clean = false;
            }
            c.insert(format!("{name}:{phase}"), sum);
        }
        if phase == SLOW_HOOK {
            for name in [
                "hook_posts_made",
                "hook_calls_received",
                "hook_calls_after_phase",
                "hook_calls_repeated",
                "hook_calls_not_made",
                "server_hook_calls",
            ] {
                let sum: f64 = runs
                    .iter()
                    .map(|p| p.step.counters.get(name).copied().unwrap_or(0.0))
                    .sum();
                c.insert(name.into(), sum);
            }
            for name in ["hook_calls_per_s", "hook_backlog_drain_s"] {
                c.insert(
                    name.into(),
                    pick(&|p| p.step.counters.get(name).copied().unwrap_or(0.0)),
                );
            }
            let peak = runs
                .iter()
                .map(|p| {
                    p.step
                        .counters
                        .get("hook_peak_in_flight")
                        .copied()
                        .unwrap_or(0.0)
                })
                .fold(0.0, f64::max);
            c.insert("hook_peak_in_flight".into(), peak);
        }
        let mut receive = report::new_histogram();
        let mut post = report::new_histogram();
        for p in &runs {
            receive.add(&p.receive)?;
            post.add(&p.post)?;
        }
        report.latencies.insert(
            format!("post_to_receive:{phase}"),
            LatencySummary::from_histogram(&receive),
        );
        report.latencies.insert(
            format!("post_request:{phase}"),
            LatencySummary::from_histogram(&post),
        );
        series.push((
            format!("post→receive, {}", phase.replace('_', " ")),
            receive,
        ));
        for p in runs {
            fan_steps.push((p.step.counters["round"], rank, p.step));
        }
    }
    // Paired by round (the two phases ran minutes apart, under about the same background
    // load): slow_hook − no_hook.
    let p99_of = |round: f64, rank: usize| {
        fan_steps
            .iter()
            .find(|(r, k, _)| *r == round && *k == rank)
            .and_then(|(_, _, s)| s.latencies.get("post_to_receive"))
            .map(|l| l.p99_ms)
    };
    let deltas: Vec<f64> = (1..=opts.rounds)
        .filter_map(|r| Some(p99_of(r as f64, 1)? - p99_of(r as f64, 0)?))
        .collect();
    if let Some(d) = median(&deltas) {
        report
            .counters
            .insert("receive_p99_ms_delta_paired".into(), d);
    }
    if !lag.is_empty() {
        report.latencies.insert(
            "post_to_hook_call".into(),
            LatencySummary::from_histogram(&lag),
        );
    }
    fan_steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    report
        .steps
        .extend(fan_steps.into_iter().map(|(_, _, s)| s));

    if opts.rounds > 0 {
        let c = &report.counters;
        let get = |k: &str| c.get(k).copied().unwrap_or(0.0);
        report.goals.push(writes::goal_line(
            "every fan-out delivery arrived exactly once, with and without the slow webhook",
            fanout_clean,
            format!(
                "missing {} / {}, duplicated {} / {}, failed posts {} / {} (without / with)",
                get("missing:no_hook"),
                get("missing:slow_hook"),
                get("duplicated:no_hook"),
                get("duplicated:slow_hook"),
                get("posts_failed:no_hook"),
                get("posts_failed:slow_hook")
            ),
        ));
        report.goals.push(writes::goal_line(
            &format!(
                "p99 post→receive < {} ms beside the slow webhook",
                opts.p99_goal_ms
            ),
            get("receive_p99_ms:slow_hook") < opts.p99_goal_ms,
            format!(
                "{:.1} ms, {:.1} ms without (medians of {} rounds)",
                get("receive_p99_ms:slow_hook"),
                get("receive_p99_ms:no_hook"),
                opts.rounds
            ),
        ));
        report.goals.push(writes::goal_line(
            "the slow endpoint kept up: called for every post while its hooks existed",
            get("hook_calls_not_made") == 0.0,
            format!(
                "{} of {} posts called, {} in flight at most, {} dropped with the hook",
                get("hook_calls_received") + get("hook_calls_after_phase"),
                get("hook_posts_made"),
                get("hook_peak_in_flight"),
                get("hook_calls_not_made")
            ),
        ));
    }
    report.goals.push(writes::goal_line(
        "the incoming-webhook read-back matched",
        incoming_exact,
        String::new(),
    ));
    report
        .counters
        .insert("hook_calls_answered".into(), slow.sink.answered() as f64);
    report
        .counters
        .insert("loadavg_1m_end".into(), files::loadavg_1m());
    report.servers = usage.usage();
    report.duration_s = began.elapsed().as_secs_f64();
    report.result = Some(result_line(&report.counters, opts));
    Ok((report, series))
}

/// The headline: best incoming rate, fan-out p99 without and beside the slow hook.
fn result_line(c: &BTreeMap<String, f64>, opts: &HooksOpts) -> String {
    let mut parts = Vec::new();
    if let Some(best) = c.get("max_hooks_per_s") {
        parts.push(format!("incoming webhooks {best:.0}/s at best"));
    }
    if let (Some(a), Some(b)) = (
        c.get("receive_p99_ms:no_hook"),
        c.get("receive_p99_ms:slow_hook"),
    ) {
        parts.push(format!(
            "fan-out p99 post→receive {a:.1} ms without, {b:.1} ms beside a {} ms outgoing webhook (medians of {} rounds); {} calls to it, at most {} in flight",
            opts.slow_ms,
            opts.rounds,
            c.get("hook_calls_received").copied().unwrap_or(0.0) + c.get("hook_calls_after_phase").copied().unwrap_or(0.0),
            c.get("hook_peak_in_flight").copied().unwrap_or(0.0)
        ));
    }
    if let (Some(a), Some(b)) = (
        c.get("receive_p99_ms_quiet:no_hook"),
        c.get("receive_p99_ms_quiet:slow_hook"),
    ) {
        parts.push(format!(
            "quiet phases only ({} / {}): {a:.1} ms without, {b:.1} ms beside",
            c.get("quiet_rounds:no_hook").copied().unwrap_or(0.0),
            c.get("quiet_rounds:slow_hook").copied().unwrap_or(0.0)
        ));
    }
    format!("hooks: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_parse_back() {
        assert_eq!(
            parse_text("hk0000abcd", "hk0000abcd 2 17 incoming webhook"),
            Some((2, 17))
        );
        assert_eq!(parse_text("hk0000abcd", "hk0000abce 2 17"), None);
        assert_eq!(parse_text("hk0000abcd", "hk0000abcd x 17"), None);
        assert_eq!(parse_text("hk0000abcd", ""), None);
    }

    #[test]
    fn checks_count_lost_and_doubled_posts() {
        let posted: HashMap<u64, u64> = [(0, 1), (1, 2), (3, 1), (4, 1)].into_iter().collect();
        // 0 once, 1 twice, 2 lost; failed 3 posted anyway, failed 5 did not.
        let c = check(&[0, 1, 2], &[3, 5], &posted);
        assert_eq!(
            c,
            Check {
                acked: 3,
                once: 2,
                lost: 1,
                doubled: 1,
                failed: 2,
                failed_posted: 1,
            }
        );
        let clean = check(&[0, 3, 4], &[], &posted);
        assert_eq!((clean.lost, clean.doubled, clean.once), (0, 0, 3));
    }

    #[test]
    fn fanout_phase_options() {
        let opts = HooksOpts {
            writers: vec![1],
            form_writers: 0,
            hook_seconds: 1.0,
            through: Through::Follower,
            verify: true,
            rounds: 1,
            slow_ms: 5000,
            slow_listen: "127.0.0.1:0".parse().unwrap(),
            users: 2000,
            channel_size: 500,
            rate: 20.0,
            seconds: 60.0,
            warmup: 3.0,
            p99_goal_ms: 50.0,
            settle: 0.0,
            quiet_cpu: 10.0,
        };
        let f = opts.fanout_opts();
        assert_eq!(f.layout(), opts.layout());
        assert_eq!(f.layout().channels(), 4);
        assert_eq!((f.rate, f.seconds, f.find_max), (Some(20.0), 60.0, false));
        assert_eq!(f.offline_per_channel(), 0);
        let flags = opts.node_flags("127.0.0.1:4567".parse().unwrap());
        assert!(flags
            .windows(2)
            .any(|w| w[0] == "--allowed-untrusted-internal-connections" && w[1] == "127.0.0.1"));
    }
}
