//! `files` (issue 17): file uploads through one node of a cluster (a follower by default, so
//! every 1 MiB `FileChunk` is forwarded to the leader and replicated back): throughput in MiB/s
//! and per-upload latency for small and large files, the nodes' RSS growth per upload in
//! flight, and POST latency with and without a large upload running through the same node.
//!
//! Uploads are raw bodies (`POST /api/v4/files?channel_id=&filename=`) of random bytes, new
//! bytes for every file (the server content-addresses files: the same bytes twice would be
//! stored once and cost nothing). Bodies are generated before the clock starts.
//!
//! Order: throughput runs; rounds of posting alone and beside uploads (open loop, and closed
//! loop with `--post-writers`); read-back of one file of each size from every node (sha-256
//! against what was sent); then the memory runs, each on a restarted cluster when the tool
//! started it.

use crate::api::Api;
use crate::cluster::Servers;
use crate::fanout::Poster;
use crate::population::Population;
use crate::proto::Layout;
use crate::report::{self, LatencySummary, MemoryReading, Report, Step};
use crate::writes;
use anyhow::{anyhow, bail};
use bytes::Bytes;
use clap::Args;
use futures_util::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// Which node takes the uploads and the posts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Through {
    /// A follower: chunks and posts are forwarded to the leader (the case).
    Follower,
    /// The leader itself.
    Leader,
}

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct FilesOpts {
    /// The node that takes every upload and post: a follower (found with GET
    /// /api/v4/cluster/status) or the leader.
    #[arg(long, value_enum, default_value_t = Through::Follower)]
    pub through: Through,
    /// Throughput: small files uploaded per run (0: skip).
    #[arg(long, default_value_t = 64)]
    pub small_files: usize,
    /// Size of a small file, MiB.
    #[arg(long, default_value_t = 1.0)]
    pub small_mib: f64,
    /// Concurrent uploaders of small files, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "4")]
    pub small_concurrency: Vec<usize>,
    /// Throughput: large files uploaded per run (0: skip).
    #[arg(long, default_value_t = 6)]
    pub large_files: usize,
    /// Size of a large file, MiB.
    #[arg(long, default_value_t = 50.0)]
    pub large_mib: f64,
    /// Concurrent uploaders of large files, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub large_concurrency: Vec<usize>,
    /// Memory: uploads of --memory-mib started together, one run per value (0 or empty:
    /// skip). Each node's RSS is read before and every --rss-every-ms during the run.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub memory_inflight: Vec<usize>,
    /// Size of a memory-run upload, MiB.
    #[arg(long, default_value_t = 50.0)]
    pub memory_mib: f64,
    /// Restart the cluster before each memory run (when this tool started it), so each begins
    /// from just-started nodes (after one 1 MiB upload); RSS an allocator kept from an earlier
    /// run would otherwise hide growth.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub memory_restart: bool,
    /// RSS sampling period while uploads run, ms.
    #[arg(long, default_value_t = 10)]
    pub rss_every_ms: u64,
    /// Posting beside an upload: rounds of (posts alone, posts beside an upload), alternating
    /// (0: skip).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Open-loop posts/s in both phases (through the same node as the uploads).
    #[arg(long, default_value_t = 50.0)]
    pub post_rate: f64,
    /// Seconds of posting alone per round.
    #[arg(long, default_value_t = 20.0)]
    pub post_seconds: f64,
    /// Also a closed-loop pair per round: this many writers posting alone for --post-seconds,
    /// then beside the uploads (0: open loop only).
    #[arg(long, default_value_t = 0)]
    pub post_writers: usize,
    /// Uploads of --upload-mib per round, one after another; the posts beside them run from
    /// the first one's start until the last one has been answered.
    #[arg(long, default_value_t = 1)]
    pub uploads_per_round: usize,
    /// Size of the upload beside the posts, MiB (the server's default MaxFileSize is 100 MiB;
    /// a raw body of exactly that is accepted).
    #[arg(long, default_value_t = 100.0)]
    pub upload_mib: f64,
    /// Pause before each run and phase, s (lets the previous one's tail settle).
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
    /// Read one file of each size back from every node and compare its sha-256.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub verify: bool,
    /// Users (uploaders are the members of the first channel; posters post anywhere).
    #[arg(long, default_value_t = 20)]
    pub users: u32,
    /// Members per channel.
    #[arg(long, default_value_t = 10)]
    pub channel_size: u32,
    /// Timeout of one upload or download request, s.
    #[arg(long, default_value_t = 300.0)]
    pub request_timeout: f64,
}

impl FilesOpts {
    pub fn layout(&self) -> Layout {
        Layout {
            users: self.users,
            channel_size: self.channel_size,
            channels_per_user: 1,
        }
    }
}

/// Bytes of `mib` MiB (fractions allowed, so "100 MiB minus a little" can be asked for).
pub fn mib_bytes(mib: f64) -> usize {
    (mib * MIB).round().max(1.0) as usize
}

/// A size as it appears in report keys: `1mib`, `50mib`, or `<n>b` when not whole MiB.
pub fn size_label(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{}mib", bytes >> 20)
    } else {
        format!("{bytes}b")
    }
}

/// MiB per second for `bytes` moved in `seconds` (0 for an empty window).
pub fn mib_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / MIB / seconds
    } else {
        0.0
    }
}

/// The median (mean of the middle two for an even count); `None` when empty. NaNs sort last.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// RSS growth per upload in flight: (peak − before) ÷ uploads, per node; a node whose RSS fell
/// grew by 0.
pub fn growth_per_upload(before: &[u64], peak: &[u64], inflight: usize) -> Vec<f64> {
    before
        .iter()
        .zip(peak)
        .map(|(b, p)| p.saturating_sub(*b) as f64 / inflight.max(1) as f64)
        .collect()
}

/// The node that takes the load, given each node's Raft id and the leader's: the first node
/// that is (or is not, for a follower) the leader.
pub fn pick_node(ids: &[u64], leader: u64, through: Through) -> Option<usize> {
    ids.iter().position(|&id| match through {
        Through::Leader => id == leader,
        Through::Follower => id != leader,
    })
}

/// Each node's role in this run: `receiving` (takes the uploads), `leader`, or `follower`.
pub fn roles(ids: &[u64], leader: u64, receiving: usize) -> Vec<&'static str> {
    ids.iter()
        .enumerate()
        .map(|(i, &id)| {
            if i == receiving {
                "receiving"
            } else if id == leader {
                "leader"
            } else {
                "follower"
            }
        })
        .collect()
}

/// Per role, the largest value among the nodes of that role (`receiving`, `leader`,
/// `follower`, in that order; roles no node has are left out).
pub fn by_role(roles: &[&'static str], values: &[f64]) -> Vec<(&'static str, f64)> {
    ["receiving", "leader", "follower"]
        .into_iter()
        .filter_map(|role| {
            roles
                .iter()
                .zip(values)
                .filter(|(r, _)| **r == role)
                .map(|(_, v)| *v)
                .reduce(f64::max)
                .map(|v| (role, v))
        })
        .collect()
}

/// `len` bytes from a seeded fast generator: incompressible, and different for every seed.
pub fn content(seed: u64, len: usize) -> Bytes {
    let mut bytes = vec![0u8; len];
    rand::rngs::SmallRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    Bytes::from(bytes)
}

/// Fresh bodies (random seeds), generated off the runtime.
async fn bodies(count: usize, len: usize) -> anyhow::Result<Vec<Bytes>> {
    let seeds: Vec<u64> = (0..count).map(|_| rand::random()).collect();
    Ok(
        tokio::task::spawn_blocking(move || seeds.into_iter().map(|s| content(s, len)).collect())
            .await?,
    )
}

/// One upload that succeeded.
#[derive(Clone)]
struct Uploaded {
    id: String,
    /// `X-Confab-Applied` of the answer: reads elsewhere wait for it.
    applied: u64,
    /// Whose file it is (only the uploader may read an unattached file).
    token: String,
    body: Bytes,
}

/// Uploads into the first channel of the layout through one node, as its members in turn.
struct Uploader {
    client: reqwest::Client,
    node: String,
    channel: String,
    tokens: Vec<String>,
}

impl Uploader {
    async fn upload(&self, k: usize, body: Bytes) -> Result<Uploaded, String> {
        let token = self.tokens[k % self.tokens.len()].clone();
        let url = format!(
            "http://{}/api/v4/files?channel_id={}&filename=load-{k}.bin",
            self.node, self.channel
        );
        let response = self
            .client
            .post(url)
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body.clone())
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let applied = response
            .headers()
            .get("x-confab-applied")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let text = response
            .text()
            .await
            .map_err(|e| format!("{status}: reading the answer: {e}"))?;
        if !status.is_success() {
            return Err(format!("{status}: {}", truncate(&text, 200)));
        }
        let answer: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{status}: {e}: {text}"))?;
        let info = &answer["file_infos"][0];
        let id = info["id"]
            .as_str()
            .ok_or_else(|| format!("{status}: no file id in {}", truncate(&text, 200)))?;
        if info["size"].as_u64() != Some(body.len() as u64) {
            return Err(format!(
                "size {} in the answer, {} sent",
                info["size"],
                body.len()
            ));
        }
        Ok(Uploaded {
            id: id.to_string(),
            applied,
            token,
            body,
        })
    }

    /// The sha-256 of `GET /files/{id}` from `node`, read in pieces as they arrive.
    async fn download_sha(&self, node: &str, file: &Uploaded) -> anyhow::Result<String> {
        let mut response = self
            .client
            .get(format!("http://{node}/api/v4/files/{}", file.id))
            .bearer_auth(&file.token)
            .header("X-Confab-Applied", file.applied)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("GET from {node}: {}", response.status());
        }
        let mut hash = Sha256::new();
        while let Some(piece) = response.chunk().await? {
            hash.update(&piece);
        }
        Ok(hex::encode(hash.finalize()))
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Each server's RSS now and the highest seen until [`RssPeak::finish`], read from `/proc` by a
/// thread of its own every `every`.
struct RssPeak {
    before: Vec<u64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
}

impl RssPeak {
    fn start(pids: &[(String, u32)], every: Duration) -> RssPeak {
        let pids: Vec<u32> = pids.iter().map(|(_, pid)| *pid).collect();
        let read = move |pids: &[u32]| -> Vec<u64> {
            pids.iter()
                .map(|pid| {
                    crate::procstat::sample(*pid)
                        .map(|s| s.rss_bytes)
                        .unwrap_or(0)
                })
                .collect()
        };
        let before = read(&pids);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, mut peak) = (stop.clone(), before.clone());
            std::thread::spawn(move || {
                loop {
                    for (p, now) in peak.iter_mut().zip(read(&pids)) {
                        *p = (*p).max(now);
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(every);
                }
                peak
            })
        };
        RssPeak {
            before,
            stop,
            thread,
        }
    }

    /// (RSS at the start, highest RSS since), per server.
    fn finish(self) -> (Vec<u64>, Vec<u64>) {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.thread.join().unwrap_or_default();
        (self.before, peak)
    }
}

/// The nodes' RocksDB memory gauges read while a memory run goes on: how much of the RSS
/// growth is memtables (bounded by `--write-buffer-mib`) and block cache (`--block-cache-mib`).
const GAUGES: [&str; 2] = [
    "confab_rocksdb_write_buffer_bytes",
    "confab_rocksdb_block_cache_bytes",
];

/// One node's [`GAUGES`], in that order.
type Gauges = [f64; 2];

/// Reads [`GAUGES`] of every node every `every` on a task of its own (so the uploads are never
/// held up by it) until [`GaugePeak::finish`].
struct GaugePeak {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<Gauges>, Vec<Gauges>)>,
}

impl GaugePeak {
    async fn start(addrs: Vec<String>, every: Duration) -> GaugePeak {
        let client = reqwest::Client::new();
        let read = |all: Vec<crate::scrape::Metrics>| -> Vec<Gauges> {
            all.iter()
                .map(|m| GAUGES.map(|g| m.get(g).copied().unwrap_or(0.0)))
                .collect()
        };
        let before = read(crate::scrape::all(&client, &addrs).await);
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut peak = before.clone();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(every).await;
                    let now = read(crate::scrape::all(&client, &addrs).await);
                    for (p, n) in peak.iter_mut().zip(now) {
                        for (p, n) in p.iter_mut().zip(n) {
                            *p = p.max(n);
                        }
                    }
                }
                (before, peak)
            })
        };
        GaugePeak { stop, task }
    }

    /// (gauges at the start, highest seen), per node.
    async fn finish(self) -> (Vec<Gauges>, Vec<Gauges>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// What one batch of uploads measured.
struct Batch {
    hist: Histogram<u64>,
    ok: u64,
    failed: u64,
    first_error: Option<String>,
    wall_s: f64,
    bytes_ok: u64,
    /// The first upload that succeeded (to read back).
    sample: Option<Uploaded>,
    rss_before: Vec<u64>,
    rss_peak: Vec<u64>,
}

impl Batch {
    fn step(&self, load: f64, unit: &str, size: usize, names: &[String]) -> Step {
        let label = size_label(size);
        let mut counters = BTreeMap::new();
        counters.insert(
            "upload_mib_per_s".into(),
            mib_per_s(self.bytes_ok, self.wall_s),
        );
        counters.insert("uploads_ok".into(), self.ok as f64);
        counters.insert("errors".into(), self.failed as f64);
        counters.insert("wall_s".into(), self.wall_s);
        for (name, (b, p)) in names.iter().zip(self.rss_before.iter().zip(&self.rss_peak)) {
            counters.insert(format!("rss_before_bytes {name}"), *b as f64);
            counters.insert(format!("rss_peak_bytes {name}"), *p as f64);
        }
        let mut latencies = BTreeMap::new();
        latencies.insert(
            format!("upload_{label}"),
            LatencySummary::from_histogram(&self.hist),
        );
        Step {
            load,
            load_unit: unit.into(),
            passed: self.failed == 0,
            latencies,
            counters,
            note: self
                .first_error
                .as_ref()
                .map(|e| format!("first error: {e}"))
                .unwrap_or_default(),
        }
    }
}

/// Uploads `count` new files of `size` bytes, `concurrency` at a time; RSS sampled throughout.
async fn batch(
    up: &Uploader,
    count: usize,
    size: usize,
    concurrency: usize,
    pids: &[(String, u32)],
    rss_every: Duration,
) -> anyhow::Result<Batch> {
    let bodies = bodies(count, size).await?;
    let rss = RssPeak::start(pids, rss_every);
    let began = Instant::now();
    let results: Vec<(Result<Uploaded, String>, u64)> =
        stream::iter(bodies.into_iter().enumerate())
            .map(|(k, body)| async move {
                let started = Instant::now();
                let result = up.upload(k, body).await;
                (result, started.elapsed().as_micros() as u64)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let wall_s = began.elapsed().as_secs_f64();
    let (rss_before, rss_peak) = rss.finish();
    let mut batch = Batch {
        hist: report::new_histogram(),
        ok: 0,
        failed: 0,
        first_error: None,
        wall_s,
        bytes_ok: 0,
        sample: None,
        rss_before,
        rss_peak,
    };
    for (result, micros) in results {
        match result {
            Ok(file) => {
                batch.ok += 1;
                batch.bytes_ok += file.body.len() as u64;
                report::record(&mut batch.hist, micros);
                batch.sample.get_or_insert(file);
            }
            Err(e) => {
                batch.failed += 1;
                batch.first_error.get_or_insert(e);
            }
        }
    }
    Ok(batch)
}

/// `count` uploads of `size` bytes one after another (the next body generated while the
/// current one uploads), then `done` is set. `started` fires as the first one starts. Returns
/// each successful upload's (start, end), the errors, and the first file that succeeded.
async fn back_to_back(
    up: Arc<Uploader>,
    first: Bytes,
    count: usize,
    done: Arc<AtomicBool>,
    started: tokio::sync::oneshot::Sender<()>,
) -> (Vec<(Instant, Instant)>, Vec<String>, Option<Uploaded>) {
    let (mut spans, mut errors, mut sample) = (Vec::new(), Vec::new(), None);
    let size = first.len();
    let mut body = Some(first);
    let mut started = Some(started);
    for k in 0..count.max(1) {
        let Some(this) = body.take() else { break };
        let next = (k + 1 < count).then(|| {
            let seed: u64 = rand::random();
            tokio::task::spawn_blocking(move || content(seed, size))
        });
        let begin = Instant::now();
        if let Some(tx) = started.take() {
            let _ = tx.send(());
        }
        match up.upload(1_000_000 + k, this).await {
            Ok(file) => {
                spans.push((begin, Instant::now()));
                sample.get_or_insert(file);
            }
            Err(e) => errors.push(e),
        }
        if let Some(next) = next {
            match next.await {
                Ok(b) => body = Some(b),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    (spans, errors, sample)
}

/// How the posts of a phase are made.
#[derive(Clone, Copy, Debug)]
enum Posting {
    /// At a fixed rate, posts/s (open loop).
    Open(f64),
    /// This many writers, each posting again once answered (closed loop).
    Closed(usize),
}

impl Posting {
    /// The phase's name in report keys.
    fn phase(self, beside: bool) -> &'static str {
        match (self, beside) {
            (Posting::Open(_), false) => "alone",
            (Posting::Open(_), true) => "beside_upload",
            (Posting::Closed(_), false) => "closed_alone",
            (Posting::Closed(_), true) => "closed_beside_upload",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Posting::Open(_) => "posts/s",
            Posting::Closed(_) => "writers",
        }
    }

    fn describe(self) -> String {
        match self {
            Posting::Open(rate) => format!("posts at {rate}/s"),
            Posting::Closed(writers) => format!("{writers} writers"),
        }
    }

    async fn run(
        self,
        poster: &Arc<Poster>,
        layout: Layout,
        seconds: f64,
        until: Option<Arc<AtomicBool>>,
    ) -> (Step, Histogram<u64>) {
        let (step, hist, _) = match self {
            Posting::Open(rate) => {
                writes::open_loop(
                    poster,
                    layout,
                    rate,
                    seconds,
                    "beside files",
                    until.as_deref(),
                )
                .await
            }
            Posting::Closed(writers) => {
                writes::closed_loop(poster, layout, writers, seconds, "beside files", until).await
            }
        };
        (step, hist)
    }
}

pub fn loadavg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn settle(opts: &FilesOpts) {
    tokio::time::sleep(Duration::from_secs_f64(opts.settle.max(0.0))).await;
}

/// Each node's Raft id and the leader's id (asking every node; retried while there is none).
pub async fn cluster_ids(
    api: &Api,
    addrs: &[String],
    admin: &str,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for addr in addrs {
            let status = api
                .get(addr, "/cluster/status", admin)
                .await
                .map_err(|e| anyhow!("cluster status of {addr}: {e}"))?;
            ids.push(status["node_id"].as_u64().unwrap_or(0));
            leaders.push(status["leader"].as_u64().unwrap_or(0));
        }
        let leader = leaders[0];
        if leader != 0 && leaders.iter().all(|&l| l == leader) && ids.contains(&leader) {
            return Ok((ids, leader));
        }
        if Instant::now() > deadline {
            bail!("no agreed leader: nodes {ids:?} name {leaders:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts the cluster again (the old one has been stopped): for memory runs that begin from
/// just-started nodes.
pub type Restart<'a> =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = anyhow::Result<Servers>> + 'a>> + 'a>;

/// The cluster as this run uses it: who leads, which node takes the load, and an uploader
/// bound to that node.
struct Target {
    leader: u64,
    /// `receiving <name>, leader <name>`: the roles, for memory readings' labels.
    roles_note: String,
    /// Every node, `<name> (<role>)`.
    names: Vec<String>,
    /// The nodes with a pid (whose RSS is read): names with their roles, plain names, roles,
    /// API addresses, pids.
    rss_names: Vec<String>,
    rss_plain: Vec<String>,
    rss_addrs: Vec<String>,
    rss_roles: Vec<&'static str>,
    pids: Vec<(String, u32)>,
    node: String,
    up: Arc<Uploader>,
}

impl Target {
    async fn find(
        opts: &FilesOpts,
        api: &Api,
        servers: &Servers,
        population: &Population,
    ) -> anyhow::Result<Target> {
        let addrs = servers.addrs();
        let (ids, leader) = cluster_ids(api, &addrs, &population.admin.token).await?;
        let receiving = pick_node(&ids, leader, opts.through)
            .ok_or_else(|| anyhow!("no {:?} among nodes {ids:?}", opts.through))?;
        let roles = roles(&ids, leader, receiving);
        let named = servers.servers.iter().zip(&roles);
        let leader_name = named
            .clone()
            .find(|(_, r)| {
                **r == "leader" || (**r == "receiving" && opts.through == Through::Leader)
            })
            .map(|(s, _)| s.name.clone())
            .unwrap_or_default();
        let node = addrs[receiving].clone();
        eprintln!(
            "files: uploads and posts through {node} (node {}, {}); leader is node {leader}",
            ids[receiving], roles[receiving]
        );
        let up = Arc::new(Uploader {
            client: reqwest::Client::builder()
                .tcp_nodelay(true)
                .timeout(Duration::from_secs_f64(opts.request_timeout))
                .build()?,
            node: node.clone(),
            channel: population.channels[0].clone(),
            tokens: opts
                .layout()
                .members(0)
                .map(|u| population.users[u as usize].token.clone())
                .collect(),
        });
        Ok(Target {
            leader,
            roles_note: format!(
                "receiving {}, leader {leader_name}",
                servers.servers[receiving].name
            ),
            names: named
                .clone()
                .map(|(s, r)| format!("{} ({r})", s.name))
                .collect(),
            rss_names: named
                .clone()
                .filter(|(s, _)| s.pid.is_some())
                .map(|(s, r)| format!("{} ({r})", s.name))
                .collect(),
            rss_plain: named
                .clone()
                .filter(|(s, _)| s.pid.is_some())
                .map(|(s, _)| s.name.clone())
                .collect(),
            rss_addrs: named
                .clone()
                .filter(|(s, _)| s.pid.is_some())
                .map(|(s, _)| s.addr.clone())
                .collect(),
            rss_roles: named
                .filter(|(s, _)| s.pid.is_some())
                .map(|(_, r)| *r)
                .collect(),
            pids: servers.pids(),
            node,
            up,
        })
    }
}

/// A memory run: uploads in flight, (role, RSS growth per upload), (role, peak RSS).
pub type MemoryRun = (usize, Vec<(&'static str, f64)>, Vec<(&'static str, f64)>);

/// Per-upload RSS figures of the memory runs, by role: for each run (peak − before) ÷ m, the
/// peak itself, and between consecutive runs the growth of the peak per extra upload in flight
/// (what one more upload costs, once the caches every upload shares are filled).
pub fn memory_counters(runs: &[MemoryRun]) -> BTreeMap<String, f64> {
    let mut c = BTreeMap::new();
    for (m, per_upload, peak) in runs {
        for (role, v) in per_upload {
            c.insert(format!("rss_growth_per_upload_bytes:{role}_m{m}"), *v);
        }
        for (role, v) in peak {
            c.insert(format!("rss_peak_bytes:{role}_m{m}"), *v);
        }
    }
    for pair in runs.windows(2) {
        let ((a, _, peak_a), (b, _, peak_b)) = (&pair[0], &pair[1]);
        if b <= a {
            continue;
        }
        for (role, pb) in peak_b {
            if let Some((_, pa)) = peak_a.iter().find(|(r, _)| r == role) {
                c.insert(
                    format!("rss_marginal_per_upload_bytes:{role}_m{a}_to_m{b}"),
                    (pb - pa) / (b - a) as f64,
                );
            }
        }
    }
    c
}

pub async fn run(
    opts: &FilesOpts,
    mut servers: Servers,
    mut restart: Option<Restart<'_>>,
    population: Arc<Population>,
    profile: &str,
) -> anyhow::Result<(Report, Vec<(String, Histogram<u64>)>)> {
    let mut report = Report::new("files", profile, serde_json::to_value(opts)?);
    let mut series = Vec::new();
    let api = Api::new(None)?;
    let mut target = Target::find(opts, &api, &servers, &population).await?;
    report.params["nodes"] = serde_json::json!(target.names);
    report.params["leader_node_id"] = serde_json::json!(target.leader);
    report
        .counters
        .insert("loadavg_1m_start".into(), loadavg_1m());
    let layout = opts.layout();
    let usage = crate::procstat::Watch::start(&target.pids);
    let began = Instant::now();
    let rss_every = Duration::from_millis(opts.rss_every_ms.max(1));
    let mut samples: Vec<(String, Uploaded)> = Vec::new();
    let mut errors = 0.0;

    // 1. Throughput.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    if opts.small_files > 0 {
        let size = mib_bytes(opts.small_mib);
        runs.extend(
            opts.small_concurrency
                .iter()
                .map(|&c| (opts.small_files, size, c)),
        );
    }
    if opts.large_files > 0 {
        let size = mib_bytes(opts.large_mib);
        runs.extend(
            opts.large_concurrency
                .iter()
                .map(|&c| (opts.large_files, size, c)),
        );
    }
    for (count, size, concurrency) in runs {
        let concurrency = concurrency.max(1);
        settle(opts).await;
        let b = batch(
            &target.up,
            count,
            size,
            concurrency,
            &target.pids,
            rss_every,
        )
        .await?;
        let label = size_label(size);
        let key = format!("{label}_c{concurrency}");
        let mut step = b.step(
            concurrency as f64,
            "uploads in flight",
            size,
            &target.rss_names,
        );
        step.counters.insert("file_bytes".into(), size as f64);
        let l = &step.latencies[&format!("upload_{label}")];
        eprintln!(
            "files: {count} × {label} at {concurrency} in flight: {:.1} MiB/s, upload p50 {:.0} ms, p99 {:.0} ms, errors {}{}",
            step.counters["upload_mib_per_s"],
            l.p50_ms,
            l.p99_ms,
            b.failed,
            b.first_error.as_ref().map(|e| format!(" (first: {e})")).unwrap_or_default()
        );
        report.counters.insert(
            format!("upload_mib_per_s:{key}"),
            step.counters["upload_mib_per_s"],
        );
        report.latencies.insert(format!("upload:{key}"), l.clone());
        errors += b.failed as f64;
        if let Some(file) = b.sample.clone() {
            if !samples.iter().any(|(l, _)| *l == label) {
                samples.push((label.clone(), file));
            }
        }
        report.memory.push(MemoryReading {
            label: format!(
                "peak, {count} × {label} at {concurrency} in flight ({})",
                target.roles_note
            ),
            rss_bytes: target
                .rss_plain
                .iter()
                .cloned()
                .zip(b.rss_peak.clone())
                .collect(),
        });
        series.push((format!("upload {label} ×{concurrency}"), b.hist.clone()));
        report.steps.push(step);
    }

    // 2. Posting alone and beside uploads, alternating: open loop at --post-rate, then (with
    // --post-writers) closed loop.
    let poster = Arc::new(Poster::Confab {
        api: api.clone(),
        nodes: vec![target.node.clone()],
        population: population.clone(),
    });
    let upload_size = mib_bytes(opts.upload_mib);
    let upload_label = size_label(upload_size);
    let mut kinds = vec![Posting::Open(opts.post_rate)];
    if opts.post_writers > 0 {
        kinds.push(Posting::Closed(opts.post_writers));
    }
    let mut phases: BTreeMap<&'static str, (Vec<Step>, Histogram<u64>)> = BTreeMap::new();
    let mut uploads_beside: BTreeMap<&'static str, (Vec<f64>, Histogram<u64>)> = BTreeMap::new();
    for round in 1..=opts.rounds {
        for &kind in &kinds {
            settle(opts).await;
            let (mut step, hist) = kind.run(&poster, layout, opts.post_seconds, None).await;
            step.load_unit = format!("{} alone", kind.unit());
            step.counters.insert("round".into(), round as f64);
            eprintln!(
                "files: round {round}, {} alone: p50 {:.1} ms, p99 {:.1} ms, {:.1} posts/s, errors {}",
                kind.describe(),
                step.latencies["post_request"].p50_ms,
                step.latencies["post_request"].p99_ms,
                step.counters["posts_per_s"],
                step.counters["errors"]
            );
            errors += step.counters["errors"];
            let phase = phases
                .entry(kind.phase(false))
                .or_insert_with(|| (Vec::new(), report::new_histogram()));
            phase.1.add(&hist)?;
            phase.0.push(step);

            settle(opts).await;
            let first = content(rand::random(), upload_size);
            let done = Arc::new(AtomicBool::new(false));
            let (tx, rx) = tokio::sync::oneshot::channel();
            let uploads = tokio::spawn(back_to_back(
                target.up.clone(),
                first,
                opts.uploads_per_round,
                done.clone(),
                tx,
            ));
            let _ = rx.await;
            // Posts until the uploads are done (the cap only bounds the schedule).
            let cap = opts.request_timeout * opts.uploads_per_round.max(1) as f64;
            let (mut step, hist) = kind.run(&poster, layout, cap, Some(done)).await;
            let (spans, upload_errors, sample) = uploads.await?;
            let durations: Vec<f64> = spans
                .iter()
                .map(|(a, b)| b.saturating_duration_since(*a).as_secs_f64())
                .collect();
            let beside = uploads_beside
                .entry(kind.phase(true))
                .or_insert_with(|| (Vec::new(), report::new_histogram()));
            for d in &durations {
                report::record(&mut beside.1, (d * 1e6) as u64);
            }
            beside.0.extend(&durations);
            step.load_unit = format!("{} beside {upload_label} uploads", kind.unit());
            step.counters.insert("round".into(), round as f64);
            step.counters
                .insert("uploads_ok".into(), spans.len() as f64);
            step.counters
                .insert("upload_errors".into(), upload_errors.len() as f64);
            step.counters
                .insert("upload_s_median".into(), median(&durations).unwrap_or(0.0));
            if let Some(e) = upload_errors.first() {
                step.note = format!("first upload error: {e}");
                step.passed = false;
            }
            eprintln!(
                "files: round {round}, {} beside {upload_label} uploads: p50 {:.1} ms, p99 {:.1} ms, {:.1} posts/s, errors {}; {} uploads of {:.1} s (median), upload errors {}",
                kind.describe(),
                step.latencies["post_request"].p50_ms,
                step.latencies["post_request"].p99_ms,
                step.counters["posts_per_s"],
                step.counters["errors"],
                spans.len(),
                median(&durations).unwrap_or(0.0),
                upload_errors.len()
            );
            errors += step.counters["errors"] + upload_errors.len() as f64;
            if let Some(file) = sample {
                if !samples.iter().any(|(l, _)| *l == upload_label) {
                    samples.push((upload_label.clone(), file));
                }
            }
            let phase = phases
                .entry(kind.phase(true))
                .or_insert_with(|| (Vec::new(), report::new_histogram()));
            phase.1.add(&hist)?;
            phase.0.push(step);
        }
    }
    // Medians over the rounds, and the merged distributions; steps in the order they ran.
    let mut order: Vec<(f64, usize, Step)> = Vec::new();
    for (name, (steps, hist)) in phases {
        let pick = |f: &dyn Fn(&Step) -> f64| {
            median(&steps.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0)
        };
        let c = &mut report.counters;
        c.insert(
            format!("post_p50_ms:{name}"),
            pick(&|s| s.latencies["post_request"].p50_ms),
        );
        c.insert(
            format!("post_p99_ms:{name}"),
            pick(&|s| s.latencies["post_request"].p99_ms),
        );
        c.insert(
            format!("posts_per_s:{name}"),
            pick(&|s| s.counters["posts_per_s"]),
        );
        report.latencies.insert(
            format!("post_request:{name}"),
            LatencySummary::from_histogram(&hist),
        );
        series.push((format!("post {}", name.replace('_', " ")), hist));
        let rank = kinds
            .iter()
            .position(|k| k.phase(false) == name || k.phase(true) == name)
            .unwrap_or(0)
            * 2
            + usize::from(name.ends_with("beside_upload"));
        order.extend(steps.into_iter().map(|s| (s.counters["round"], rank, s)));
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    report.steps.extend(order.into_iter().map(|(_, _, s)| s));
    for (phase, (secs, hist)) in uploads_beside {
        let with = if phase == "beside_upload" {
            "posts"
        } else {
            "writers"
        };
        let key = format!("{upload_label}_beside_{with}");
        report
            .counters
            .insert(format!("upload_s:{key}"), median(&secs).unwrap_or(0.0));
        report.counters.insert(
            format!("upload_mib_per_s:{key}"),
            median(&secs)
                .map(|s| mib_per_s(upload_size as u64, s))
                .unwrap_or(0.0),
        );
        report.latencies.insert(
            format!("upload:{key}"),
            LatencySummary::from_histogram(&hist),
        );
        series.push((format!("upload {upload_label} beside {with}"), hist));
    }

    // Read-back: one file of each size from every node.
    if opts.verify {
        let mut mismatches = 0.0;
        let mut checked = 0.0;
        for (label, file) in &samples {
            let body = file.body.clone();
            let sent =
                tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&body))).await?;
            for addr in &servers.addrs() {
                checked += 1.0;
                match target.up.download_sha(addr, file).await {
                    Ok(got) if got == sent => {}
                    Ok(got) => {
                        mismatches += 1.0;
                        eprintln!(
                            "files: {label} file {} from {addr}: sha-256 {got}, sent {sent}",
                            file.id
                        );
                    }
                    Err(e) => {
                        mismatches += 1.0;
                        eprintln!("files: {label} file {} from {addr}: {e:#}", file.id);
                    }
                }
            }
        }
        report.counters.insert("verified_reads".into(), checked);
        report
            .counters
            .insert("verify_mismatches".into(), mismatches);
        report.goals.push(writes::goal_line(
            "every node reads back one file of each size byte-identical (sha-256)",
            checked > 0.0 && mismatches == 0.0,
            format!(
                "{checked:.0} reads of {} ({}), {mismatches:.0} differing or failed",
                samples.len(),
                samples
                    .iter()
                    .map(|(l, _)| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    // Did leadership move? (Then "receiving" and "leader" were not what they say.)
    if let Ok((_, now)) = cluster_ids(&api, &servers.addrs(), &population.admin.token).await {
        if now != target.leader {
            report.goals.push(format!(
                "note: the leader changed during the run (node {} → node {now})",
                target.leader
            ));
        }
    }
    report.servers = usage.usage();

    // 3. Memory per upload in flight, each run from just-started nodes when the tool can
    // restart them (after one small upload, so first-use allocations are not counted).
    let memory_size = mib_bytes(opts.memory_mib);
    let memory_label = size_label(memory_size);
    let mut memory_runs = Vec::new();
    for &inflight in opts.memory_inflight.iter().filter(|&&m| m > 0) {
        match restart.as_mut() {
            Some(restart) if opts.memory_restart => {
                drop(servers);
                servers = restart().await?;
                target = Target::find(opts, &api, &servers, &population).await?;
                target
                    .up
                    .upload(0, content(rand::random(), 1 << 20))
                    .await
                    .map_err(|e| anyhow!("warm-up upload: {e}"))?;
            }
            _ => {}
        }
        settle(opts).await;
        let gauges = GaugePeak::start(target.rss_addrs.clone(), Duration::from_millis(250)).await;
        let b = batch(
            &target.up,
            inflight,
            memory_size,
            inflight,
            &target.pids,
            rss_every,
        )
        .await?;
        let mut step = b.step(
            inflight as f64,
            "uploads in flight (memory)",
            memory_size,
            &target.rss_names,
        );
        let (gauges_before, gauges_peak) = gauges.finish().await;
        let per_upload = growth_per_upload(&b.rss_before, &b.rss_peak, inflight);
        for (i, name) in target.rss_names.iter().enumerate() {
            for (g, gauge) in GAUGES.iter().enumerate() {
                let short = gauge.trim_start_matches("confab_rocksdb_");
                if let (Some(b), Some(p)) = (gauges_before.get(i), gauges_peak.get(i)) {
                    step.counters.insert(format!("{short}_before {name}"), b[g]);
                    step.counters.insert(format!("{short}_peak {name}"), p[g]);
                }
            }
        }
        let memtable_peak: Vec<f64> = gauges_peak.iter().map(|g| g[0]).collect();
        let cache_peak: Vec<f64> = gauges_peak.iter().map(|g| g[1]).collect();
        for (name, g) in target.rss_names.iter().zip(&per_upload) {
            step.counters
                .insert(format!("rss_growth_per_upload_bytes {name}"), *g);
        }
        let role_growth = by_role(&target.rss_roles, &per_upload);
        let peaks: Vec<f64> = b.rss_peak.iter().map(|&p| p as f64).collect();
        let role_peak = by_role(&target.rss_roles, &peaks);
        eprintln!(
            "files: {inflight} × {memory_label} in flight: RSS growth per upload {}; peak {}; memtables at most {}; {:.1} MiB/s, errors {}",
            role_growth
                .iter()
                .map(|(r, g)| format!("{r} {:.1} MiB", g / MIB))
                .collect::<Vec<_>>()
                .join(", "),
            role_peak
                .iter()
                .map(|(r, g)| format!("{r} {:.1} MiB", g / MIB))
                .collect::<Vec<_>>()
                .join(", "),
            by_role(&target.rss_roles, &memtable_peak)
                .iter()
                .map(|(r, g)| format!("{r} {:.1} MiB", g / MIB))
                .collect::<Vec<_>>()
                .join(", "),
            step.counters["upload_mib_per_s"],
            b.failed
        );
        errors += b.failed as f64;
        for (label, rss) in [("before", &b.rss_before), ("peak", &b.rss_peak)] {
            report.memory.push(MemoryReading {
                label: format!(
                    "{label}, {inflight} × {memory_label} in flight ({})",
                    target.roles_note
                ),
                rss_bytes: target.rss_plain.iter().cloned().zip(rss.clone()).collect(),
            });
        }
        for (role, v) in by_role(&target.rss_roles, &memtable_peak) {
            report
                .counters
                .insert(format!("write_buffer_peak_bytes:{role}_m{inflight}"), v);
        }
        for (role, v) in by_role(&target.rss_roles, &cache_peak) {
            report
                .counters
                .insert(format!("block_cache_peak_bytes:{role}_m{inflight}"), v);
        }
        memory_runs.push((inflight, role_growth, role_peak));
        report.steps.push(step);
    }
    report.counters.extend(memory_counters(&memory_runs));

    report.counters.insert("errors".into(), errors);
    report.goals.push(writes::goal_line(
        "no upload or post failed",
        errors == 0.0,
        format!("{errors:.0} failed"),
    ));
    report
        .counters
        .insert("loadavg_1m_end".into(), loadavg_1m());
    report.duration_s = began.elapsed().as_secs_f64();
    report.result = Some(result_line(&report.counters, &upload_label));
    Ok((report, series))
}

/// The headline: throughput per run, and posting with and without the upload.
fn result_line(c: &BTreeMap<String, f64>, upload_label: &str) -> String {
    let mut parts: Vec<String> = c
        .iter()
        .filter_map(|(k, v)| {
            let run = k.strip_prefix("upload_mib_per_s:")?;
            (!run.contains("_beside_")).then(|| format!("{run} {v:.1} MiB/s"))
        })
        .collect();
    if let (Some(a), Some(b)) = (
        c.get("post_p99_ms:alone"),
        c.get("post_p99_ms:beside_upload"),
    ) {
        parts.push(format!(
            "post p99 {a:.1} ms alone, {b:.1} ms beside {upload_label} uploads (medians over rounds)"
        ));
    }
    if let (Some(a), Some(b)) = (
        c.get("posts_per_s:closed_alone"),
        c.get("posts_per_s:closed_beside_upload"),
    ) {
        parts.push(format!(
            "closed loop {a:.0} posts/s alone, {b:.0} posts/s beside {upload_label} uploads"
        ));
    }
    format!("files: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates() {
        assert_eq!(mib_bytes(1.0), 1 << 20);
        assert_eq!(mib_bytes(100.0), 100 << 20);
        assert_eq!(mib_bytes(0.5), 1 << 19);
        assert_eq!(size_label(50 << 20), "50mib");
        assert_eq!(size_label((100 << 20) - 4096), "104853504b");
        assert!((mib_per_s(64 << 20, 2.0) - 32.0).abs() < 1e-9);
        assert_eq!(mib_per_s(1, 0.0), 0.0);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn rss_growth() {
        let g = growth_per_upload(&[100, 200, 300], &[500, 150, 300], 4);
        assert_eq!(g, vec![100.0, 0.0, 0.0]);
        assert_eq!(growth_per_upload(&[0], &[10], 0), vec![10.0]);
    }

    #[test]
    fn node_roles() {
        let ids = [1, 2, 3];
        assert_eq!(pick_node(&ids, 1, Through::Follower), Some(1));
        assert_eq!(pick_node(&ids, 2, Through::Follower), Some(0));
        assert_eq!(pick_node(&ids, 3, Through::Leader), Some(2));
        assert_eq!(pick_node(&[1], 1, Through::Follower), None);
        let r = roles(&ids, 1, 1);
        assert_eq!(r, vec!["leader", "receiving", "follower"]);
        assert_eq!(roles(&ids, 3, 2), vec!["follower", "follower", "receiving"]);
        let by = by_role(&["follower", "follower", "receiving"], &[5.0, 7.0, 9.0]);
        assert_eq!(by, vec![("receiving", 9.0), ("follower", 7.0)]);
    }

    #[test]
    fn contents_differ_and_repeat() {
        let a = content(1, 4096);
        assert_eq!(a.len(), 4096);
        assert_eq!(a, content(1, 4096));
        assert_ne!(a, content(2, 4096));
        // Incompressible enough: every byte value shows up in 4 KiB of output.
        let mut seen = [false; 256];
        a.iter().for_each(|&b| seen[b as usize] = true);
        assert!(seen.iter().filter(|&&s| s).count() > 240);
    }

    #[test]
    fn memory_figures() {
        let runs = vec![
            (
                1,
                vec![("receiving", 10.0)],
                vec![("receiving", 100.0), ("leader", 90.0)],
            ),
            (
                2,
                vec![("receiving", 6.0)],
                vec![("receiving", 104.0), ("leader", 96.0)],
            ),
            (4, vec![("receiving", 4.0)], vec![("receiving", 120.0)]),
        ];
        let c = memory_counters(&runs);
        assert_eq!(c["rss_growth_per_upload_bytes:receiving_m2"], 6.0);
        assert_eq!(c["rss_peak_bytes:leader_m1"], 90.0);
        assert_eq!(c["rss_marginal_per_upload_bytes:receiving_m1_to_m2"], 4.0);
        assert_eq!(c["rss_marginal_per_upload_bytes:leader_m1_to_m2"], 6.0);
        assert_eq!(c["rss_marginal_per_upload_bytes:receiving_m2_to_m4"], 8.0);
        assert!(!c.contains_key("rss_marginal_per_upload_bytes:leader_m2_to_m4"));
    }

    #[test]
    fn headline() {
        let mut c = BTreeMap::new();
        c.insert("upload_mib_per_s:1mib_c4".into(), 20.0);
        c.insert("upload_mib_per_s:100mib_beside_posts".into(), 9.0);
        c.insert("post_p99_ms:alone".into(), 4.0);
        c.insert("post_p99_ms:beside_upload".into(), 40.0);
        let line = result_line(&c, "100mib");
        assert!(line.contains("1mib_c4 20.0 MiB/s"), "{line}");
        assert!(!line.contains("beside_posts"), "{line}");
        assert!(
            line.contains("4.0 ms alone, 40.0 ms beside 100mib"),
            "{line}"
        );
    }
}
