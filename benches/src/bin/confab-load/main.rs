//! `confab-load`: load generator and benchmark driver for confab (benches/README.md: modes,
//! profiles; benches/REPORT.md: the JSON report's fields).
//!
//! It starts the servers under test itself (a confab cluster on loopback, or the bare
//! broadcaster), creates users through the REST API, spreads WebSockets over worker processes
//! and 127.x source addresses, drives load, and prints/saves what it measured.

mod api;
mod baseline;
mod cluster;
mod endpoint;
mod fanout;
mod files;
mod hooks;
mod mix;
mod mix_run;
mod mix_totals;
mod pool;
mod population;
mod presence;
mod procstat;
mod proto;
mod push;
mod report;
mod scrape;
mod slowhook;
mod worker;
mod writes;
mod wsclient;
mod wsctl;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use fanout::FanoutOpts;
use files::FilesOpts;
use hdrhistogram::Histogram;
use hooks::HooksOpts;
use mix_run::MixOpts;
use presence::PresenceOpts;
use proto::Target;
use report::Report;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use writes::WritesOpts;

#[derive(Parser)]
#[command(name = "confab-load", about = "Load tests and benchmarks for confab")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Args, Debug, Clone, serde::Serialize)]
struct Common {
    /// Named defaults: seed-extreme (fanout: 2,000-member channels), push-extreme (fanout:
    /// seed-extreme with 1,500 offline members with devices per channel, every post
    /// @channel), connections (fanout or presence: 100k sockets on 6 nodes), loadtest-ng
    /// (mix), writes.
    #[arg(long, default_value = "custom")]
    profile: String,
    /// Nodes of the confab cluster this tool starts.
    #[arg(long)]
    nodes: Option<usize>,
    /// Use a running cluster instead (host:port of each node's API).
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Pids of --servers, for CPU and RSS.
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// The confab binary (default: the one beside this tool).
    #[arg(long)]
    confab_bin: Option<PathBuf>,
    /// Cluster data and the users created (reused by the next run with the same node count).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Wipe --data-dir first.
    #[arg(long)]
    fresh: bool,
    /// One more argument for every node this tool starts, repeatable, after the tool's own
    /// (e.g. `--node-arg=--push-concurrency --node-arg=64`).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    node_args: Vec<String>,
    /// Node i serves HTTP on base_port+i and Raft on base_port+100+i.
    #[arg(long, default_value_t = 18065)]
    base_port: u16,
    /// Concurrent requests while creating users and memberships.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    /// Write the report as JSON (fields: benches/REPORT.md).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG latency plot.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Mode {
    /// The bare broadcaster (no storage, Raft or auth) with fanout's receivers: the ceiling.
    Baseline {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        opts: FanoutOpts,
    },
    /// Posts into channels at a fixed rate; post→receive latency at every member's socket.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        opts: FanoutOpts,
    },
    /// Committed posts/s and POST latency, many writers, no sockets.
    Writes {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        opts: WritesOpts,
    },
    /// File uploads through a follower: MiB/s and latency of small and large files, server RSS
    /// per upload in flight, and POST latency with and without a large upload beside it.
    Files {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        opts: FilesOpts,
    },
    /// Webhooks (issue 19): incoming-webhook posts/s through the followers, and fan-out with
    /// and without an outgoing webhook whose endpoint answers after 5 s.
    Hooks {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        opts: HooksOpts,
    },
    /// Presence gossip between nodes: bytes/s, messages/s and CPU with N sockets held, at
    /// steady state and during a mass reconnect.
    Presence {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        opts: PresenceOpts,
    },
    /// Mattermost's load-test-ng user behaviour against its thresholds.
    Mix {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        opts: MixOpts,
    },
    /// Internal: a worker process holding sockets.
    #[command(hide = true)]
    Worker,
    /// Internal: the bare broadcaster server process.
    #[command(hide = true)]
    BaselineServer {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        users: u32,
        #[arg(long)]
        channel_size: u32,
        #[arg(long, default_value_t = 1)]
        channels_per_user: u32,
    },
}

/// Profile defaults for fields the command line left unset.
fn apply_fanout_profile(profile: &str, opts: &mut FanoutOpts, common: &mut Common) {
    let (users, size, rate, step, nodes) = match profile {
        "seed-extreme" | "push-extreme" => (10_000, 2_000, 20.0, 5.0, 3),
        "connections" => (100_000, 1_000, 10.0, 10.0, 6),
        _ => (2_000, 200, 20.0, 20.0, 3),
    };
    opts.users.get_or_insert(users);
    opts.channel_size.get_or_insert(size);
    opts.channels_per_user.get_or_insert(1);
    opts.rate.get_or_insert(rate);
    opts.rate_step.get_or_insert(step);
    common.nodes.get_or_insert(nodes);
    if profile == "push-extreme" {
        // 1,500 of each 2,000-member channel offline with a device: 7,500 sessions with
        // devices and 2,500 sockets; every post @channel, so 1,500 pushes per post.
        opts.offline_devices.get_or_insert(1_500);
        opts.channel_mention_every.get_or_insert(1);
    }
}

fn apply_mix_profile(profile: &str, opts: &mut MixOpts, common: &mut Common) {
    if profile == "loadtest-ng" {
        opts.start_users.get_or_insert(5_000);
        opts.step_users.get_or_insert(5_000);
        opts.max_users.get_or_insert(60_000);
    }
    opts.channel_size.get_or_insert(100);
    opts.channels_per_user.get_or_insert(2);
    common.nodes.get_or_insert(3);
}

/// Settings of the clusters this tool starts: cheap password hashes (the tool signs up and
/// logs in up to 100k users; argon2's default cost would take most of an hour on 2 cores).
fn node_flags() -> Vec<String> {
    [
        "--password-hash-memory-kib",
        "64",
        "--password-hash-iterations",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The nodes to measure (started here unless `--servers`), a client, and the population of
/// `layout` on them (made once per data dir, then reused).
async fn servers_with_population(
    common: &Common,
    extra: &[String],
    layout: proto::Layout,
) -> anyhow::Result<(cluster::Servers, api::Api, Arc<population::Population>)> {
    let (servers, data_dir) = confab_servers(common, extra).await?;
    let api = api::Api::new(None)?;
    let population = population::ensure(
        &api,
        &servers.addrs(),
        &data_dir,
        layout,
        common.setup_concurrency,
    )
    .await?;
    Ok((servers, api, Arc::new(population)))
}

async fn confab_servers(
    common: &Common,
    extra: &[String],
) -> anyhow::Result<(cluster::Servers, PathBuf)> {
    let nodes = common.nodes.unwrap_or(3);
    let data_dir = common.data_dir.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        home.join(".cache/confab-load")
            .join(format!("{nodes}-nodes"))
    });
    if common.fresh && data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("wiping {}", data_dir.display()))?;
    }
    if !common.servers.is_empty() {
        return Ok((
            cluster::external(&common.servers, &common.server_pids),
            data_dir,
        ));
    }
    let binary = cluster::confab_binary(common.confab_bin.as_deref())?;
    eprintln!(
        "starting {nodes} confab nodes ({}), data in {}",
        binary.display(),
        data_dir.display()
    );
    let mut flags = node_flags();
    flags.extend(extra.iter().cloned());
    flags.extend(common.node_args.iter().cloned());
    let servers =
        cluster::start_confab(&binary, nodes, &data_dir, common.base_port, &flags).await?;
    Ok((servers, data_dir))
}

fn output(
    common: &Common,
    report: &Report,
    series: &[(String, Histogram<u64>)],
    thresholds: &[(String, f64)],
) -> anyhow::Result<()> {
    report::print_summary(report);
    if let Some(path) = &common.json {
        report::write_json(report, path)?;
        eprintln!("report written to {}", path.display());
    }
    if let Some(path) = &common.plot {
        let title = format!("confab-load {} ({})", report.mode, report.profile);
        report::write_plot(path, &title, series, report, thresholds)?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(())
}

async fn run_baseline(
    common: &Common,
    opts: &FanoutOpts,
) -> anyhow::Result<(Report, Vec<(String, Histogram<u64>)>)> {
    let servers = cluster::start_baseline(common.base_port + 50, opts.layout())?;
    fanout::run(
        opts,
        Target::Baseline,
        &servers,
        None,
        None,
        &common.profile,
    )
    .await
}

async fn main_async(mode: Mode) -> anyhow::Result<()> {
    match mode {
        Mode::Baseline {
            mut common,
            mut opts,
        } => {
            apply_fanout_profile(&common.profile.clone(), &mut opts, &mut common);
            let (report, series) = run_baseline(&common, &opts).await?;
            output(
                &common,
                &report,
                &series,
                &[("goal p99".into(), opts.p99_goal_ms)],
            )
        }
        Mode::Fanout {
            mut common,
            mut opts,
        } => {
            apply_fanout_profile(&common.profile.clone(), &mut opts, &mut common);
            let baseline = if opts.compare_baseline {
                Some(run_baseline(&common, &opts).await?)
            } else {
                None
            };
            // Push: the tool's proxy first, so the nodes can be pointed at it.
            let push_proxy = if opts.offline_per_channel() > 0 {
                let proxy = push::start(opts.push_listen).await?;
                eprintln!("push proxy listening on {}", proxy.addr);
                if !common.servers.is_empty() {
                    eprintln!(
                        "--servers: the nodes must already send pushes to http://{} with --max-notifications-per-channel above the channel size",
                        proxy.addr
                    );
                }
                Some(proxy)
            } else {
                None
            };
            let push_flags: Vec<String> = match &push_proxy {
                Some(proxy) => vec![
                    "--send-push-notifications".into(),
                    "true".into(),
                    "--push-notification-server".into(),
                    format!("http://{}", proxy.addr),
                    "--push-notification-contents".into(),
                    "full".into(),
                    "--max-notifications-per-channel".into(),
                    opts.notification_cap().to_string(),
                ],
                None => Vec::new(),
            };
            let (servers, api, population) =
                servers_with_population(&common, &push_flags, opts.layout()).await?;
            if push_proxy.is_some() {
                let mut offline: Vec<u32> =
                    fanout::offline_users(&opts.layout(), opts.offline_per_channel())
                        .into_iter()
                        .collect();
                offline.sort_unstable();
                population::attach_devices(
                    &api,
                    &servers.addrs(),
                    &population,
                    &offline,
                    common.setup_concurrency,
                )
                .await?;
            }
            let (mut report, mut series) = fanout::run(
                &opts,
                Target::Confab,
                &servers,
                Some(population),
                push_proxy.as_ref().map(|p| p.sink.clone()),
                &common.profile,
            )
            .await?;
            if let Some(proxy) = &push_proxy {
                for (name, value) in [
                    ("push_other_kinds", proxy.sink.other()),
                    ("push_unreadable", proxy.sink.unreadable()),
                    ("push_acks", proxy.sink.acks()),
                ] {
                    report.counters.insert(name.into(), value as f64);
                }
            }
            if let Some((base, base_series)) = baseline {
                let key = if opts.find_max {
                    "max_deliveries_per_s"
                } else {
                    "deliveries_per_s"
                };
                let pick = |r: &Report| {
                    r.counters.get(key).copied().or_else(|| {
                        r.steps
                            .last()
                            .and_then(|s| s.counters.get("deliveries_per_s").copied())
                    })
                };
                if let (Some(c), Some(b)) = (pick(&report), pick(&base)) {
                    if b > 0.0 {
                        report.ratio_to_baseline = Some(c / b);
                    }
                }
                for (name, hist) in base_series {
                    series.push((format!("baseline {name}"), hist));
                }
                report.baseline = Some(Box::new(base));
            }
            if common.profile == "connections" {
                let held = report.counters.get("connections").copied().unwrap_or(0.0);
                let delivering = report.counters.get("missing").copied() == Some(0.0)
                    && report.counters.get("deliveries").copied().unwrap_or(0.0) > 0.0;
                let peak = report
                    .memory
                    .iter()
                    .map(|m| m.max_bytes())
                    .max()
                    .unwrap_or(0);
                report.goals.push(writes::goal_line(
                    "≤ 1.5 GB RSS on every node with 100,000 users",
                    peak > 0 && peak <= 1_500_000_000,
                    format!("{} MiB on the largest node", peak >> 20),
                ));
                report.goals.push(writes::goal_line(
                    "100,000 authenticated sockets held while delivering every post",
                    held >= 100_000.0 && delivering,
                    format!(
                        "{held:.0} sockets, {}",
                        if delivering {
                            "nothing missing"
                        } else {
                            "deliveries missing"
                        }
                    ),
                ));
            }
            let deliveries = report
                .counters
                .get("max_deliveries_per_s")
                .copied()
                .unwrap_or(0.0);
            if common.profile != "connections" {
                report.goals.push(writes::goal_line(
                    "≥ 100,000 deliveries/s at p99 < 50 ms",
                    deliveries >= 100_000.0,
                    format!("{deliveries:.0}/s"),
                ));
            }
            if let Some(ratio) = report.ratio_to_baseline {
                report.goals.push(writes::goal_line(
                    "≥ 0.85 of the baseline",
                    ratio >= 0.85,
                    format!("{ratio:.2}"),
                ));
            }
            if let Some(rss) = report.rss_per_connection_bytes {
                report.goals.push(writes::goal_line(
                    "≤ 8 KB server RSS per connection",
                    rss <= 8192.0,
                    format!("{rss:.0} B"),
                ));
            }
            output(
                &common,
                &report,
                &series,
                &[("goal p99".into(), opts.p99_goal_ms)],
            )
        }
        Mode::Writes { mut common, opts } => {
            common.nodes.get_or_insert(3);
            let (servers, data_dir) = confab_servers(&common, &[]).await?;
            let api = api::Api::new(None)?;
            let layout = proto::Layout {
                users: opts.users,
                channel_size: opts.channel_size,
                channels_per_user: 1,
            };
            let population = Arc::new(
                population::ensure(
                    &api,
                    &servers.addrs(),
                    &data_dir,
                    layout,
                    common.setup_concurrency,
                )
                .await?,
            );
            let poster = Arc::new(fanout::Poster::Confab {
                api,
                nodes: servers.addrs(),
                population,
            });
            let (report, series) =
                writes::run(&opts, poster, layout, &servers.pids(), &common.profile).await?;
            output(
                &common,
                &report,
                &series,
                &[("goal p99 at 1k/s".into(), 10.0)],
            )
        }
        Mode::Files { mut common, opts } => {
            let nodes = *common.nodes.get_or_insert(3);
            // A data dir of its own: every run stores its files (with their Raft log entries)
            // on every node, which other modes' clusters need not carry.
            if common.data_dir.is_none() {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir);
                common.data_dir = Some(
                    home.join(".cache/confab-load")
                        .join(format!("files-{nodes}-nodes")),
                );
            }
            let (servers, _, population) =
                servers_with_population(&common, &[], opts.layout()).await?;
            // Memory runs restart the cluster this tool started (same data, not wiped).
            let restart: Option<files::Restart> = common.servers.is_empty().then(|| {
                let again = Common {
                    fresh: false,
                    ..common.clone()
                };
                Box::new(move || {
                    let again = again.clone();
                    Box::pin(async move { Ok(confab_servers(&again, &[]).await?.0) })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
                }) as files::Restart
            });
            let (report, series) =
                files::run(&opts, servers, restart, population, &common.profile).await?;
            output(&common, &report, &series, &[])
        }
        Mode::Hooks { mut common, opts } => {
            let nodes = *common.nodes.get_or_insert(3);
            // A data dir of its own: the incoming runs leave tens of thousands of posts.
            if common.data_dir.is_none() {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir);
                common.data_dir = Some(
                    home.join(".cache/confab-load")
                        .join(format!("hooks-{nodes}-nodes")),
                );
            }
            // The slow endpoint first: the nodes are told to allow its address.
            let slow = slowhook::start(
                opts.slow_listen,
                std::time::Duration::from_millis(opts.slow_ms),
            )
            .await?;
            eprintln!(
                "slow outgoing-webhook endpoint on {} (answers after {} ms)",
                slow.addr, opts.slow_ms
            );
            if !common.servers.is_empty() {
                eprintln!(
                    "--servers: the nodes must allow {} (--allowed-untrusted-internal-connections) and reach http://{}",
                    slow.addr.ip(),
                    slow.addr
                );
            }
            let (servers, _, population) =
                servers_with_population(&common, &opts.node_flags(slow.addr), opts.layout())
                    .await?;
            let (report, series) =
                hooks::run(&opts, &servers, population, &slow, &common.profile).await?;
            output(
                &common,
                &report,
                &series,
                &[("goal p99".into(), opts.p99_goal_ms)],
            )
        }
        Mode::Mix {
            mut common,
            mut opts,
        } => {
            apply_mix_profile(&common.profile.clone(), &mut opts, &mut common);
            let (servers, _, population) =
                servers_with_population(&common, &[], opts.layout()).await?;
            let (report, series) =
                mix_run::run(&opts, &servers, population, &common.profile).await?;
            output(
                &common,
                &report,
                &series,
                &[
                    ("mean limit".into(), mix_run::MEAN_LIMIT_MS),
                    ("p99 limit".into(), mix_run::P99_LIMIT_MS),
                ],
            )
        }
        Mode::Presence {
            mut common,
            mut opts,
        } => {
            presence::apply_profile(&common.profile.clone(), &mut opts, &mut common.nodes);
            let (servers, _, population) =
                servers_with_population(&common, &[], opts.layout()).await?;
            let report = presence::run(&opts, &servers, population, &common.profile).await?;
            output(&common, &report, &[], &[])
        }
        Mode::Worker => worker::run().await,
        Mode::BaselineServer {
            listen,
            users,
            channel_size,
            channels_per_user,
        } => {
            baseline::serve(
                listen,
                proto::Layout {
                    users,
                    channel_size,
                    channels_per_user,
                },
            )
            .await
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Workers and the broadcaster share 2 cores with the servers: one thread each is enough
    // and keeps their own overhead out of the servers' way; the coordinator gets two.
    let runtime = match cli.command {
        Mode::Worker => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    };
    runtime.block_on(main_async(cli.command))
}
