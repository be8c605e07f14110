//! `fanout` and `baseline`: every user holds one WebSocket; posts go into random channels at a
//! fixed rate (open model: the schedule never waits for answers, and latency counts from the
//! scheduled time); every recipient reports when each post arrived. Every expected delivery is
//! accounted for: missing, duplicated and unexpected deliveries are counted, never dropped.

use crate::api::Api;
use crate::pool::{self, Pool};
use crate::population::Population;
use crate::proto::{self, ConnSpec, FinalReport, Layout, Target};
use crate::report::{self, LatencySummary, Report, Step};
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct FanoutOpts {
    /// Users, each with one WebSocket.
    #[arg(long)]
    pub users: Option<u32>,
    /// Members per channel.
    #[arg(long)]
    pub channel_size: Option<u32>,
    /// Channels each user is in.
    #[arg(long)]
    pub channels_per_user: Option<u32>,
    /// Posts per second (the first rate with --find-max).
    #[arg(long)]
    pub rate: Option<f64>,
    /// --find-max: posts/s added per step.
    #[arg(long)]
    pub rate_step: Option<f64>,
    /// --find-max: the last rate tried.
    #[arg(long, default_value_t = 1000.0)]
    pub max_rate: f64,
    /// Raise the rate step by step until p99 post→receive passes --p99-goal-ms or a delivery
    /// goes missing; report the highest rate that held.
    #[arg(long)]
    pub find_max: bool,
    /// Seconds measured per rate.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds of posting before measuring (not counted).
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Bytes of each post's message.
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// The post→receive p99 a rate must stay under.
    #[arg(long, default_value_t = 50.0)]
    pub p99_goal_ms: f64,
    /// Sockets per worker process (each process may open at most 20,000 files).
    #[arg(long, default_value_t = 15_000)]
    pub sockets_per_worker: usize,
    /// Run `baseline` with the same receivers first and print the ratio confab/baseline.
    #[arg(long)]
    pub compare_baseline: bool,
    /// Push: the first N members of each channel hold no WebSocket but a session with a push
    /// device (unique per user); the tool runs the push proxy the nodes notify and measures
    /// commit → push. 0: no push measurement.
    #[arg(long)]
    pub offline_devices: Option<u32>,
    /// Push: every K-th post says `@channel` (1: every post; 0: none).
    #[arg(long)]
    pub channel_mention_every: Option<u32>,
    /// Push: the nodes' `--max-notifications-per-channel` (channel-wide mentions are ignored
    /// in channels with at least this many members); default: the channel size + 1,000.
    #[arg(long)]
    pub max_notifications_per_channel: Option<u64>,
    /// Push: where the tool's push proxy listens (port 0: any; the nodes are told).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub push_listen: std::net::SocketAddr,
    /// Push: the commit → last push p99 goal.
    #[arg(long, default_value_t = 1000.0)]
    pub push_p99_goal_ms: f64,
}

impl FanoutOpts {
    pub fn layout(&self) -> Layout {
        Layout {
            users: self.users.unwrap_or(10_000),
            channel_size: self.channel_size.unwrap_or(2_000),
            channels_per_user: self.channels_per_user.unwrap_or(1),
        }
    }

    /// Offline members with devices per channel (0: push not measured).
    pub fn offline_per_channel(&self) -> u32 {
        self.offline_devices.unwrap_or(0)
    }

    /// The cap the nodes get: above every channel's member count (the channels' creator, the
    /// tool's admin, is a member too), unless given.
    pub fn notification_cap(&self) -> u64 {
        self.max_notifications_per_channel
            .unwrap_or(self.layout().channel_size() as u64 + 1_000)
    }

    /// Whether post `post_no` says `@channel`.
    fn mentions(&self, post_no: u64) -> bool {
        match self.channel_mention_every.unwrap_or(1) {
            0 => false,
            every => post_no.is_multiple_of(every as u64),
        }
    }

    fn rates(&self) -> Vec<f64> {
        let first = self.rate.unwrap_or(20.0);
        if !self.find_max {
            return vec![first];
        }
        let step = self.rate_step.unwrap_or(first).max(0.1);
        let mut rates = Vec::new();
        let mut rate = first;
        while rate <= self.max_rate + 1e-9 {
            rates.push(rate);
            rate += step;
        }
        rates
    }
}

/// Where posts go: confab's REST API, an incoming webhook of confab, or the bare broadcaster.
pub enum Poster {
    Confab {
        api: Api,
        nodes: Vec<String>,
        population: Arc<Population>,
    },
    /// `POST /hooks/{id}` (`hooks` mode): the channel and author are the hook's; the text is
    /// numbered by the sender, which keeps what was answered for the post count afterwards.
    Hook(crate::hooks::HookSender),
    Baseline {
        client: reqwest::Client,
        addr: String,
    },
}

impl Poster {
    pub async fn post(&self, channel: u32, poster: u32, message: String) -> Result<(), String> {
        self.post_with_id(channel, poster, message)
            .await
            .map(|_| ())
    }

    /// Posts; the new post's id when the server gave one.
    pub async fn post_with_id(
        &self,
        channel: u32,
        poster: u32,
        message: String,
    ) -> Result<Option<String>, String> {
        match self {
            Poster::Confab {
                api,
                nodes,
                population,
            } => {
                let node = &nodes[poster as usize % nodes.len()];
                let body = json!({
                    "channel_id": population.channels[channel as usize],
                    "message": message,
                });
                api.post(
                    node,
                    "/posts",
                    Some(&population.users[poster as usize].token),
                    &body,
                )
                .await
                .map(|answer| answer["id"].as_str().map(str::to_string))
                .map_err(|e| e.to_string())
            }
            Poster::Hook(sender) => sender.send(poster, &message).await.map(|()| None),
            Poster::Baseline { client, addr } => {
                let body = json!({"channel": channel, "message": message, "user": poster});
                match client
                    .post(format!("http://{addr}/post"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => Ok(None),
                    Ok(r) => Err(format!("baseline answered {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}

/// The users without a socket but with a push device: the first `per_channel` members of
/// every channel.
pub fn offline_users(layout: &Layout, per_channel: u32) -> HashSet<u32> {
    let n = per_channel.min(layout.channel_size());
    (0..layout.channels())
        .flat_map(|c| (0..n).map(move |i| layout.member(c, i)))
        .collect()
}

/// The sockets of a run: user u on node u mod n, except the offline users.
pub fn sockets(
    layout: &Layout,
    addrs: &[String],
    population: Option<&Population>,
    offline: &HashSet<u32>,
) -> Vec<ConnSpec> {
    (0..layout.users)
        .filter(|u| !offline.contains(u))
        .map(|u| ConnSpec {
            user: u,
            addr: addrs[u as usize % addrs.len()].clone(),
            token: population.map(|p| p.users[u as usize].token.clone()),
            user_id: population.map(|p| p.users[u as usize].id.clone()),
        })
        .collect()
}

/// One post as the coordinator saw it.
#[derive(Clone)]
struct Sent {
    channel: u32,
    ok: bool,
    /// Its author (a user index).
    poster: u32,
    /// Said `@channel`.
    mention: bool,
    /// The server's id of the post, and when its POST was answered (the commit).
    post_id: Option<String>,
    committed: Instant,
}

/// Posts at `rate` for `seconds`; returns the post numbers used and what happened to them.
#[allow(clippy::too_many_arguments)]
async fn post_for(
    poster: &Arc<Poster>,
    layout: &Layout,
    run: u32,
    first_post: u64,
    rate: f64,
    seconds: f64,
    message_bytes: usize,
    mentions: &(dyn Fn(u64) -> bool + Sync),
    post_hist: &Arc<Mutex<Histogram<u64>>>,
    errors: &Arc<Mutex<Vec<String>>>,
) -> (u64, HashMap<u64, Sent>) {
    let count = (rate * seconds).round().max(1.0) as u64;
    let sent: Arc<Mutex<HashMap<u64, Sent>>> = Arc::new(Mutex::new(HashMap::new()));
    let start = Instant::now() + Duration::from_millis(5);
    let start_ns = proto::unix_ns() + 5_000_000;
    let mut tasks = tokio::task::JoinSet::new();
    let mut rng = rand::rng();
    for k in 0..count {
        let offset = Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until((start + offset).into()).await;
        let post_no = first_post + k;
        let (channel, poster_user) = layout.random_post(&mut rng);
        let mut message = proto::post_message(
            run,
            post_no,
            start_ns + offset.as_nanos() as u64,
            message_bytes,
        );
        let mention = mentions(post_no);
        if mention {
            message.insert_str(0, "@channel ");
        }
        let scheduled = start + offset;
        let (poster, sent, post_hist, errors) = (
            poster.clone(),
            sent.clone(),
            post_hist.clone(),
            errors.clone(),
        );
        tasks.spawn(async move {
            let result = poster.post_with_id(channel, poster_user, message).await;
            let committed = Instant::now();
            let micros = scheduled.elapsed().as_micros() as u64;
            let ok = result.is_ok();
            let post_id = match result {
                Err(e) => {
                    let mut errors = errors.lock().unwrap_or_else(|e| e.into_inner());
                    if errors.len() < 5 {
                        errors.push(e);
                    }
                    None
                }
                Ok(id) => {
                    report::record(
                        &mut post_hist.lock().unwrap_or_else(|e| e.into_inner()),
                        micros,
                    );
                    id
                }
            };
            sent.lock().unwrap_or_else(|e| e.into_inner()).insert(
                post_no,
                Sent {
                    channel,
                    ok,
                    poster: poster_user,
                    mention,
                    post_id,
                    committed,
                },
            );
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let sent = std::mem::take(&mut *sent.lock().unwrap_or_else(|e| e.into_inner()));
    (count, sent)
}

/// Deliveries expected for each channel: its members whose socket is open.
fn expected_per_channel(layout: &Layout, failed: &[u32], offline: &HashSet<u32>) -> Vec<u64> {
    let failed: HashSet<u32> = failed.iter().copied().collect();
    (0..layout.channels())
        .map(|c| {
            layout
                .members(c)
                .filter(|u| !failed.contains(u) && !offline.contains(u))
                .count() as u64
        })
        .collect()
}

/// Accounting of one measured window.
struct Tally {
    receive: Histogram<u64>,
    received: u64,
    expected: u64,
    missing: u64,
    unexpected: u64,
    duplicates: u64,
    posts_ok: u64,
    posts_failed: u64,
}

fn tally(
    finals: &[FinalReport],
    sent: &HashMap<u64, Sent>,
    expected_per_channel: &[u64],
) -> anyhow::Result<Tally> {
    let mut receive = report::new_histogram();
    let mut per_post: HashMap<u64, u64> = HashMap::new();
    let mut duplicates = 0;
    for f in finals {
        receive.add(report::decode(&f.receive_hist)?)?;
        duplicates += f.duplicates;
        for &(post, count) in &f.per_post {
            *per_post.entry(post).or_insert(0) += count as u64;
        }
    }
    let mut t = Tally {
        receive,
        received: 0,
        expected: 0,
        missing: 0,
        unexpected: 0,
        duplicates,
        posts_ok: 0,
        posts_failed: 0,
    };
    for (post, s) in sent {
        let got = per_post.remove(post).unwrap_or(0);
        let want = if s.ok {
            t.posts_ok += 1;
            expected_per_channel[s.channel as usize]
        } else {
            t.posts_failed += 1;
            0
        };
        t.expected += want;
        t.received += got.min(want);
        t.missing += want.saturating_sub(got);
        t.unexpected += got.saturating_sub(want);
    }
    // Deliveries of posts outside this window (late arrivals of an earlier one).
    t.unexpected += per_post.values().sum::<u64>();
    Ok(t)
}

/// Waits until `want` pushes arrived since `before`, or none arrived for 5 s, or 60 s passed
/// (a dispatcher behind by more than that has failed the goal anyway).
async fn drain_pushes(sink: &crate::push::Sink, before: u64, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = sink.messages();
    let mut still = Instant::now();
    while Instant::now() < deadline && sink.messages().saturating_sub(before) < want {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sink.messages();
        if now != last {
            last = now;
            still = Instant::now();
        } else if still.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
}

/// A window's push counters: the tool's accounting and the servers' own counters.
fn push_counters(
    counters: &mut BTreeMap<String, f64>,
    t: &crate::push::PushTally,
    before: &[crate::scrape::Metrics],
    after: &[crate::scrape::Metrics],
    elapsed: f64,
) {
    for (name, value) in [
        ("push_expected", t.expected),
        ("push_received", t.received),
        ("push_missing", t.missing),
        ("push_duplicated", t.duplicated),
        ("push_unexpected", t.unexpected),
        ("push_before_answer", t.before_answer),
        ("push_posts", t.posts),
        ("push_posts_incomplete", t.posts_incomplete),
        ("push_late", t.late),
        ("push_unknown", t.unknown),
    ] {
        counters.insert(name.into(), value as f64);
    }
    counters.insert("pushes_per_s".into(), t.received as f64 / elapsed);
    for name in [
        "confab_push_sent_total",
        "confab_push_failed_total",
        "confab_push_retried_total",
        "confab_push_dropped_total",
        "confab_notify_batches_total",
    ] {
        if crate::scrape::present(after, name) {
            let key = name
                .trim_start_matches("confab_")
                .trim_end_matches("_total");
            counters.insert(
                format!("server_{key}"),
                crate::scrape::delta(before, after, name),
            );
        }
    }
    if crate::scrape::present(after, "confab_notify_outbox_backlog") {
        counters.insert(
            "server_outbox_backlog_max".into(),
            crate::scrape::max(after, "confab_notify_outbox_backlog"),
        );
    }
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:40}] {pos}/{len}s {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Runs `fanout` (confab) or `baseline` (the bare broadcaster) against `servers`.
pub async fn run(
    opts: &FanoutOpts,
    target: Target,
    servers: &crate::cluster::Servers,
    population: Option<Arc<Population>>,
    push: Option<Arc<crate::push::Sink>>,
    profile: &str,
) -> anyhow::Result<(Report, Vec<(String, Histogram<u64>)>)> {
    let layout = opts.layout();
    let offline = offline_users(&layout, opts.offline_per_channel());
    // Per channel, its offline members: the devices an @channel post there should reach.
    let offline_members: Vec<HashSet<u32>> = (0..layout.channels())
        .map(|c| layout.members(c).filter(|u| offline.contains(u)).collect())
        .collect();
    let mentions = |post_no: u64| opts.mentions(post_no);
    let mode = match target {
        Target::Confab => "fanout",
        Target::Baseline => "baseline",
    };
    let mut report = Report::new(mode, profile, serde_json::to_value(opts)?);
    report.params["layout"] = json!({"users": layout.users, "channel_size": layout.channel_size(), "channels": layout.channels(), "channels_per_user": layout.channels_per_user});
    let run: u32 = rand::random();
    let addrs = servers.addrs();
    let server_pids = servers.pids();
    let rss_before = crate::procstat::total_rss(&server_pids);
    report
        .memory
        .push(crate::procstat::memory_reading("after setup", &server_pids));

    // Sockets.
    let conns = sockets(&layout, &addrs, population.as_deref(), &offline);
    let total = conns.len() as u64;
    let bar = progress_bar(total);
    bar.set_message("opening sockets");
    let groups = pool::split(conns, opts.sockets_per_worker);
    let b2 = bar.clone();
    let (mut pool, opened) = Pool::start(groups, target, run, None, 0, move |_| b2.tick()).await?;
    bar.finish_and_clear();
    eprintln!(
        "{mode}: {} of {total} sockets open over {} workers{}",
        opened.opened,
        pool.pids().len(),
        opened
            .first_error
            .as_ref()
            .map(|e| format!(" (first failure: {e})"))
            .unwrap_or_default()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_added = crate::procstat::total_rss(&server_pids) as i64 - rss_before as i64;
    report.memory.push(crate::procstat::memory_reading(
        "holding sockets",
        &server_pids,
    ));
    if opened.opened > 0 {
        report.rss_per_connection_bytes = Some(rss_added as f64 / opened.opened as f64);
    }
    report
        .counters
        .insert("connections".into(), opened.opened as f64);
    report.counters.insert(
        "connections_failed".into(),
        opened.failed_users.len() as f64,
    );

    let poster = Arc::new(match target {
        Target::Confab => Poster::Confab {
            api: Api::new(None)?,
            nodes: addrs.clone(),
            population: population
                .clone()
                .ok_or_else(|| anyhow::anyhow!("fanout needs users"))?,
        },
        Target::Baseline => Poster::Baseline {
            client: reqwest::Client::builder().tcp_nodelay(true).build()?,
            addr: addrs[0].clone(),
        },
    });
    let expected = expected_per_channel(&layout, &opened.failed_users, &offline);
    if !offline.is_empty() {
        report
            .counters
            .insert("offline_with_device".into(), offline.len() as f64);
    }
    let metrics_client = reqwest::Client::new();
    // Post ids of earlier windows: their pushes arriving later count as late, not unknown.
    let mut earlier_posts: HashSet<String> = HashSet::new();
    let mut push_each = report::new_histogram();
    let mut push_last = report::new_histogram();
    let mut next_post: u64 = 0;
    let post_errors = Arc::new(Mutex::new(Vec::new()));

    // Warm-up at the first rate, not counted.
    let rates = opts.rates();
    if opts.warmup > 0.0 {
        let hist = Arc::new(Mutex::new(report::new_histogram()));
        let (n, warm) = post_for(
            &poster,
            &layout,
            run,
            next_post,
            rates[0],
            opts.warmup,
            opts.message_bytes,
            &mentions,
            &hist,
            &post_errors,
        )
        .await;
        next_post += n;
        earlier_posts.extend(warm.into_values().filter_map(|s| s.post_id));
        tokio::time::sleep(Duration::from_secs(2)).await;
        pool.collect().await?;
        if let Some(sink) = &push {
            sink.take();
        }
    }

    let mut best: Option<(f64, f64)> = None;
    let mut all_receive = report::new_histogram();
    let mut all_post = report::new_histogram();
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    let mut measured_s = 0.0;
    let usage_start = crate::procstat::Watch::start(&server_pids);
    let load_pids: Vec<(String, u32)> =
        std::iter::once(("confab-load".to_string(), std::process::id()))
            .chain(
                pool.pids()
                    .into_iter()
                    .enumerate()
                    .map(|(i, pid)| (format!("worker-{i}"), pid)),
            )
            .collect();
    let load_start = crate::procstat::Watch::start(&load_pids);
    for rate in rates {
        let members = layout.channel_size() as f64;
        let bar = progress_bar(opts.seconds.ceil() as u64);

        let ticker = {
            let bar = bar.clone();
            let counter = pool.counter();
            let started = Instant::now();
            tokio::spawn(async move {
                let mut last = (counter.deliveries(), Instant::now());
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    bar.set_position(started.elapsed().as_secs());
                    let now = (counter.deliveries(), Instant::now());
                    let per_s =
                        (now.0 - last.0) as f64 / now.1.duration_since(last.1).as_secs_f64();
                    bar.set_message(format!(
                        "{rate} posts/s: {per_s:.0} deliveries/s, {} sockets open",
                        counter.open()
                    ));
                    last = now;
                }
            })
        };
        let counter = pool.counter();
        let delivered_before = counter.deliveries();
        let post_hist = Arc::new(Mutex::new(report::new_histogram()));
        let began = Instant::now();
        let metrics_before = match push {
            Some(_) => crate::scrape::all(&metrics_client, &addrs).await,
            None => Vec::new(),
        };
        let pushes_before = push.as_ref().map_or(0, |s| s.messages());
        let (n, sent) = post_for(
            &poster,
            &layout,
            run,
            next_post,
            rate,
            opts.seconds,
            opts.message_bytes,
            &mentions,
            &post_hist,
            &post_errors,
        )
        .await;
        let elapsed = began.elapsed().as_secs_f64().max(opts.seconds);
        next_post += n;
        ticker.abort();
        // Drain: wait until the deliveries stop growing or all expected arrived.
        let want: u64 = sent
            .values()
            .filter(|s| s.ok)
            .map(|s| expected[s.channel as usize])
            .sum();
        let drain_deadline = Instant::now() + Duration::from_secs(10);
        let mut last = counter.deliveries();
        let mut still = Instant::now();
        while Instant::now() < drain_deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = counter.deliveries();
            if now - delivered_before >= want {
                break;
            }
            if now != last {
                last = now;
                still = Instant::now();
            } else if still.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        bar.finish_and_clear();
        let finals = pool.collect().await?;
        let t = tally(&finals, &sent, &expected)?;
        // Pushes: expected per post, drained like the deliveries, then matched by post id.
        let push_figures = match &push {
            Some(sink) => {
                let devices: Vec<(&Sent, HashSet<u32>)> = sent
                    .values()
                    .filter(|s| s.ok && s.post_id.is_some())
                    .map(|s| {
                        let mut want = HashSet::new();
                        if s.mention {
                            want = offline_members[s.channel as usize].clone();
                            want.remove(&s.poster);
                        }
                        (s, want)
                    })
                    .collect();
                let want: u64 = devices.iter().map(|(_, d)| d.len() as u64).sum();
                drain_pushes(sink, pushes_before, want).await;
                let expectations: Vec<crate::push::Expectation<'_>> = devices
                    .iter()
                    .filter_map(|(s, d)| {
                        Some(crate::push::Expectation {
                            post_id: s.post_id.as_deref()?,
                            committed: s.committed,
                            devices: d,
                        })
                    })
                    .collect();
                let pt = crate::push::tally(sink.take(), &expectations, &earlier_posts);
                let metrics_after = crate::scrape::all(&metrics_client, &addrs).await;
                Some((pt, metrics_before, metrics_after))
            }
            None => None,
        };
        earlier_posts.extend(sent.values().filter_map(|s| s.post_id.clone()));
        let post_hist = std::mem::replace(
            &mut *post_hist.lock().unwrap_or_else(|e| e.into_inner()),
            report::new_histogram(),
        );
        let receive = LatencySummary::from_histogram(&t.receive);
        let deliveries_per_s = t.received as f64 / elapsed;
        let passed = receive.p99_ms < opts.p99_goal_ms
            && t.missing == 0
            && t.posts_failed == 0
            && t.duplicates == 0;
        eprintln!(
            "{mode} {rate:>7.1} posts/s × {members} members: {:>9.0} deliveries/s, p99 post→receive {:.1} ms, POST p99 {:.1} ms, missing {}, duplicated {}, failed posts {} — {}",
            deliveries_per_s,
            receive.p99_ms,
            LatencySummary::from_histogram(&post_hist).p99_ms,
            t.missing,
            t.duplicates,
            t.posts_failed,
            if passed { "held" } else { "over the goal" }
        );
        let mut counters: BTreeMap<String, f64> = BTreeMap::new();
        counters.insert("posts_per_s".into(), t.posts_ok as f64 / elapsed);
        counters.insert("deliveries_per_s".into(), deliveries_per_s);
        counters.insert("posts_ok".into(), t.posts_ok as f64);
        counters.insert("posts_failed".into(), t.posts_failed as f64);
        counters.insert("deliveries".into(), t.received as f64);
        counters.insert("expected_deliveries".into(), t.expected as f64);
        counters.insert("missing".into(), t.missing as f64);
        counters.insert("duplicated".into(), t.duplicates as f64);
        counters.insert("unexpected".into(), t.unexpected as f64);
        let mut push_latencies = BTreeMap::new();
        if let Some((pt, before, after)) = &push_figures {
            push_counters(&mut counters, pt, before, after, elapsed);
            let each = LatencySummary::from_histogram(&pt.each);
            let last = LatencySummary::from_histogram(&pt.last);
            eprintln!(
                "{mode} {rate:>7.1} posts/s: pushes {}/{} expected, commit→push p99 {:.1} ms, commit→last push p99 {:.1} ms, missing {}, duplicated {}, unexpected {}, incomplete posts {}",
                pt.received,
                pt.expected,
                each.p99_ms,
                last.p99_ms,
                pt.missing,
                pt.duplicated,
                pt.unexpected,
                pt.posts_incomplete
            );
            push_latencies.insert("commit_to_push".to_string(), each);
            push_latencies.insert("commit_to_last_push".to_string(), last);
            push_each.add(&pt.each)?;
            push_last.add(&pt.last)?;
        }
        for (k, v) in &counters {
            if !k.ends_with("_per_s") && !k.ends_with("_max") {
                *totals.entry(k.clone()).or_insert(0.0) += v;
            }
        }
        measured_s += elapsed;
        let mut latencies = BTreeMap::new();
        latencies.insert("post_to_receive".to_string(), receive.clone());
        latencies.insert(
            "post_request".to_string(),
            LatencySummary::from_histogram(&post_hist),
        );
        latencies.extend(push_latencies);
        report.steps.push(Step {
            load: rate,
            load_unit: "posts/s".into(),
            passed,
            latencies,
            counters,
            note: format!("{:.0} deliveries/s", deliveries_per_s),
        });
        if passed {
            if best.is_none_or(|(_, d)| deliveries_per_s > d) {
                best = Some((rate, deliveries_per_s));
            }
            all_receive.add(&t.receive)?;
            all_post.add(&post_hist)?;
        } else {
            if !opts.find_max {
                all_receive.add(&t.receive)?;
                all_post.add(&post_hist)?;
            }
            if opts.find_max {
                break;
            }
        }
    }
    report.servers = usage_start.usage();
    report.load_processes = load_start.usage();
    report
        .memory
        .push(crate::procstat::memory_reading("end", &server_pids));
    report
        .counters
        .insert("reconnects".into(), pool.counter().reconnects() as f64);
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
    for (k, v) in totals {
        report.counters.insert(k, v);
    }
    report.duration_s = measured_s;
    let errors = post_errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if !errors.is_empty() {
        report
            .goals
            .push(format!("first POST errors: {}", errors.join(" | ")));
    }
    report.latencies.insert(
        "post_to_receive".into(),
        LatencySummary::from_histogram(&all_receive),
    );
    report.latencies.insert(
        "post_request".into(),
        LatencySummary::from_histogram(&all_post),
    );
    if push.is_some() {
        let each = LatencySummary::from_histogram(&push_each);
        let last = LatencySummary::from_histogram(&push_last);
        let counter = |k: &str| report.counters.get(k).copied().unwrap_or(0.0);
        let complete = counter("push_missing") == 0.0 && counter("push_expected") > 0.0;
        report.goals.push(crate::writes::goal_line(
            &format!(
                "commit → last push p99 < {} ms with every expected push received",
                opts.push_p99_goal_ms
            ),
            complete && last.count > 0 && last.p99_ms < opts.push_p99_goal_ms,
            format!(
                "p99 {:.1} ms over {} posts; {} of {} pushes, {} missing, {} duplicated, {} unexpected",
                last.p99_ms,
                last.count,
                counter("push_received"),
                counter("push_expected"),
                counter("push_missing"),
                counter("push_duplicated"),
                counter("push_unexpected")
            ),
        ));
        report.latencies.insert("commit_to_push".into(), each);
        report.latencies.insert("commit_to_last_push".into(), last);
    }
    match best {
        Some((rate, deliveries)) => {
            report
                .counters
                .insert("max_deliveries_per_s".into(), deliveries);
            report.counters.insert("max_posts_per_s".into(), rate);
            report.result = Some(format!(
                "{mode}: {:.0} deliveries/s ({rate} posts/s × {} members) with p99 post→receive < {} ms and nothing missing",
                deliveries,
                layout.channel_size(),
                opts.p99_goal_ms
            ));
        }
        None => {
            report.result = Some(format!(
                "{mode}: no rate held p99 post→receive < {} ms with nothing missing",
                opts.p99_goal_ms
            ))
        }
    }
    Ok((
        report,
        vec![
            ("post→receive".to_string(), all_receive),
            ("POST".to_string(), all_post),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_members_hold_no_socket_and_expect_no_delivery() {
        let layout = Layout {
            users: 10,
            channel_size: 5,
            channels_per_user: 1,
        };
        let offline = offline_users(&layout, 2);
        assert_eq!(offline, [0, 1, 5, 6].into_iter().collect::<HashSet<u32>>());
        let addrs = ["a:1".to_string(), "b:2".to_string()];
        let conns = sockets(&layout, &addrs, None, &offline);
        let users: Vec<u32> = conns.iter().map(|c| c.user).collect();
        assert_eq!(users, vec![2, 3, 4, 7, 8, 9]);
        assert_eq!(conns[0].addr, "a:1");
        assert_eq!(conns[1].addr, "b:2");
        // User 3's socket failed: channel 0 expects users 2 and 4, channel 1 users 7, 8, 9.
        assert_eq!(expected_per_channel(&layout, &[3], &offline), vec![2, 3]);
        assert!(offline_users(&layout, 0).is_empty());
        assert_eq!(offline_users(&layout, 99).len(), 10);
    }
}
