//! The server's shared state and its two paths to data: writes commit a `Command` through Raft
//! and return once this node's replica has applied it (so the writer reads its own write here);
//! reads run on the local replica in a blocking task, never on the async runtime.

use crate::error::{ApiError, ApiResult};
use crate::presence::StatusKind;
use crate::ratelimit::LoginLimiter;
use crate::ws::Hub;
use confab_raft::RaftNode;
use confab_storage::{Command, Engine, Id, Outcome, Reader, StorageError};
use std::sync::Arc;
use std::time::Duration;

/// Settings the handlers consult.
#[derive(Debug, Clone)]
pub struct Settings {
    pub session_days: u64,
    pub password_cost: PasswordCost,
    pub min_password_len: usize,
    pub cluster_id: String,
    /// Shown by the apps as the server's name (`SiteName`).
    pub site_name: String,
    /// The public URL (`SiteURL`); empty means the URL each request reached.
    pub site_url: String,
}

/// Argon2id cost of new password hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for PasswordCost {
    /// OWASP's argon2id recommendation (19 MiB, 2 passes), argon2's default.
    fn default() -> Self {
        PasswordCost {
            memory_kib: argon2::Params::DEFAULT_M_COST,
            iterations: argon2::Params::DEFAULT_T_COST,
        }
    }
}

/// What [`App::channel_wide_reach`] decided for a post (the command's `channel_wide_ignored`
/// and `here_online`).
#[derive(Debug, Default)]
pub struct WideReach {
    pub ignored: bool,
    pub here_online: Vec<Id>,
}

pub struct App {
    pub engine: Arc<Engine>,
    /// Push settings, and the proxy client when push is on (the ack route uses both).
    pub push: crate::notify::PushSettings,
    pub push_proxy: Option<crate::notify::ProxyClient>,
    pub raft: RaftNode,
    pub hub: Arc<Hub>,
    /// Cluster-wide presence: `app.presence.status(user)`.
    pub presence: Arc<crate::presence::Presence>,
    pub logins: LoginLimiter,
    pub settings: Settings,
    pub cluster_secret: String,
    /// Webhooks, commands, bots and tokens: their switches, and the client for calls out.
    pub integrations: crate::integrations::IntegrationSettings,
    pub outbound: crate::integrations::outbound::Outbound,
    /// Upload slots and file settings (`crate::files`).
    pub files: Arc<crate::files::Files>,
}

impl App {
    /// Commits a command and waits until this node applied it. Returns the applied index and
    /// the command's outcome; a refused command is its Mattermost-shaped error.
    pub async fn write(&self, command: Command) -> ApiResult<(u64, Outcome)> {
        let written = self.raft.write(command).await.map_err(|e| {
            ApiError::unavailable(format!("the cluster did not commit the write: {e}"))
        })?;
        let index = written.index;
        self.wait_applied(index, Duration::from_secs(10)).await?;
        match written.applied.result {
            Ok(outcome) => Ok((index, outcome)),
            Err(error) => Err(error.into()),
        }
    }

    /// Waits (bounded) until the local replica has applied `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> ApiResult<()> {
        self.raft.wait_applied(index, timeout).await.map_err(|_| {
            ApiError::unavailable(format!("this node has not applied index {index} yet"))
        })
    }

    /// Runs a read on a snapshot of the local replica, on the calling task. Every query is bounded
    /// (it scans at most what it returns plus a constant) and its blocks are in memory, so handing
    /// it to the blocking pool — a thread wake-up and two context switches per read — costs more
    /// than the read: under `mix` load that hop was a sixth of the servers' samples.
    pub async fn read<T, F>(&self, query: F) -> ApiResult<T>
    where
        F: FnOnce(&Reader) -> Result<T, StorageError>,
    {
        let reader = self.engine.reader();
        query(&reader).map_err(ApiError::from)
    }

    /// Whom a channel-wide mention in a message for `channel` reaches, decided where the post
    /// is taken because it depends on this node's settings and presence view, which are not
    /// replicated: nobody at or past `MaxNotificationsPerChannel` members (Mattermost's rule),
    /// and for `@here` alone the members this node sees online. It goes into the post's command
    /// and every node counts the same. Reads at most the cap's worth of member keys.
    pub async fn channel_wide_reach(&self, channel: Id, message: &str) -> ApiResult<WideReach> {
        let found = confab_storage::mentions::parse(message);
        if !found.channel_wide {
            return Ok(WideReach::default());
        }
        let cap = self.push.max_notifications_per_channel;
        let members = self
            .read(|r| r.channel_member_ids_up_to(channel, cap))
            .await?;
        if members.len() >= cap {
            return Ok(WideReach {
                ignored: true,
                here_online: Vec::new(),
            });
        }
        if found.everyone {
            return Ok(WideReach::default());
        }
        // Only a connected user can be online: the cheap table lookup spares the others the
        // manual-status read that `status` makes.
        let here_online = members
            .into_iter()
            .filter(|user| self.presence.live(*user).connected)
            .filter(|user| self.presence.status(*user).status == StatusKind::Online)
            .collect();
        Ok(WideReach {
            ignored: false,
            here_online,
        })
    }
}

impl App {
    /// Figures read at scrape time for `/metrics`: Raft commit/apply latency and leader changes,
    /// WebSocket connections, storage reads and writes, RocksDB's memory and size estimates.
    pub fn gauges(&self) -> Vec<(String, &'static str, f64)> {
        let raft = self.raft.metrics();
        let stats = self.engine.stats();
        let load =
            |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
        let seconds = |us: u64| us as f64 / 1e6;
        let blob_bytes = confab_storage::cf::Cf::BLOB_FILES
            .into_iter()
            .filter_map(|cf| self.engine.blob_file_bytes(cf).ok())
            .fold((0, 0), |(live, garbage), (l, g)| (live + l, garbage + g));
        let mut gauges = vec![
            (
                "confab_raft_writes_ok_total".into(),
                "Writes committed through this node",
                raft.writes_ok as f64,
            ),
            (
                "confab_raft_writes_failed_total".into(),
                "Writes that returned an error",
                raft.writes_failed as f64,
            ),
            (
                "confab_raft_writes_forwarded_total".into(),
                "Writes forwarded to the leader",
                raft.writes_forwarded as f64,
            ),
            (
                "confab_raft_write_retries_total".into(),
                "Write retries across leader changes",
                raft.write_retries as f64,
            ),
            (
                "confab_raft_leader_changes_total".into(),
                "Times the known leader changed",
                raft.leader_changes as f64,
            ),
            (
                "confab_raft_applied_entries_total".into(),
                "Log entries applied locally",
                raft.applied_entries as f64,
            ),
            (
                "confab_raft_applied_index".into(),
                "Last applied log index",
                self.raft.applied_index() as f64,
            ),
            (
                "confab_raft_snapshots_built_total".into(),
                "Snapshots built",
                raft.snapshots_built as f64,
            ),
            (
                "confab_raft_snapshots_installed_total".into(),
                "Snapshots installed",
                raft.snapshots_installed as f64,
            ),
            (
                "confab_raft_log_bytes".into(),
                "Bytes of the entries in the local Raft log (entries kept from before a start as RocksDB estimates them)",
                raft.log_bytes as f64,
            ),
            (
                "confab_raft_snapshot_bytes".into(),
                "Bytes of the newest snapshot built or installed",
                raft.snapshot_bytes as f64,
            ),
            (
                "confab_raft_commit_latency_seconds_mean".into(),
                "Mean commit latency",
                seconds(raft.commit_latency.mean_us()),
            ),
            (
                "confab_raft_commit_latency_seconds_p50".into(),
                "Median commit latency",
                seconds(raft.commit_latency.quantile_us(0.5)),
            ),
            (
                "confab_raft_commit_latency_seconds_p99".into(),
                "p99 commit latency",
                seconds(raft.commit_latency.quantile_us(0.99)),
            ),
            (
                "confab_raft_apply_latency_seconds_mean".into(),
                "Mean apply latency",
                seconds(raft.apply_latency.mean_us()),
            ),
            (
                "confab_raft_apply_latency_seconds_p99".into(),
                "p99 apply latency",
                seconds(raft.apply_latency.quantile_us(0.99)),
            ),
            (
                "confab_ws_connections_open".into(),
                "Open WebSocket connections on this node",
                self.hub.connection_count() as f64,
            ),
            (
                "confab_presence_users_online".into(),
                "Users with a WebSocket on some node of the cluster, as this node sees it",
                self.presence.online_count() as f64,
            ),
            (
                "confab_storage_keys_read_total".into(),
                "Keys read by queries",
                load(&stats.keys_read),
            ),
            (
                "confab_storage_keys_written_total".into(),
                "Keys written by applied commands",
                load(&stats.keys_written),
            ),
            (
                "confab_storage_write_batches_total".into(),
                "RocksDB write batches of applied commands",
                load(&stats.write_batches),
            ),
            (
                "confab_storage_commands_applied_total".into(),
                "Commands applied",
                load(&stats.commands_applied),
            ),
            (
                "confab_storage_commands_refused_total".into(),
                "Commands refused by validation",
                load(&stats.commands_refused),
            ),
            (
                "confab_notify_outbox_backlog".into(),
                "Notification outbox entries not yet dispatched",
                self.engine.reader().notify_backlog().unwrap_or(0) as f64,
            ),
            (
                "confab_notify_dispatched_index".into(),
                "Log index through which notifications were dispatched",
                self.engine.reader().notify_mark().unwrap_or(0) as f64,
            ),
            (
                "confab_email_queue_len".into(),
                "Notification emails waiting in their users' batches",
                self.engine.reader().email_queue_len().unwrap_or(0) as f64,
            ),
            (
                "confab_search_backfilled_total".into(),
                "Posts and users indexed by the one-time search backfill",
                load(&stats.search_backfilled),
            ),
            (
                "confab_search_backfill_pending".into(),
                "1 while a data directory from before search is being indexed",
                f64::from(u8::from(
                    self.engine.search_backfill_pending().unwrap_or(false),
                )),
            ),
            (
                "confab_files_staged_uploads".into(),
                "Uploads whose chunks are in the log but not committed yet",
                self.engine.reader().staged_uploads().unwrap_or(0) as f64,
            ),
            (
                "confab_files_blobs".into(),
                "Distinct file contents stored (the same bytes uploaded twice count once)",
                self.engine.reader().blob_count().unwrap_or(0) as f64,
            ),
            (
                "confab_files_blob_file_bytes".into(),
                "Bytes of this node's blob files (file chunks, previews, images), garbage included",
                blob_bytes.0 as f64,
            ),
            (
                "confab_files_blob_garbage_bytes".into(),
                "Bytes of deleted blobs in this node's blob files, not yet collected",
                blob_bytes.1 as f64,
            ),
            (
                "confab_files_blob_reclaimed_bytes_total".into(),
                "Blob-file bytes this node freed by collecting garbage since it started",
                load(&self.files.blob_bytes_reclaimed),
            ),
        ];
        gauges.extend(self.memory_gauges());
        for (property, name, help) in [
            (
                "rocksdb.cur-size-all-mem-tables",
                "confab_rocksdb_memtable_bytes",
                "RocksDB memtable bytes",
            ),
            (
                "rocksdb.estimate-live-data-size",
                "confab_rocksdb_live_data_bytes",
                "RocksDB live data estimate",
            ),
            (
                "rocksdb.num-running-compactions",
                "confab_rocksdb_running_compactions",
                "RocksDB compactions running",
            ),
            (
                "rocksdb.estimate-pending-compaction-bytes",
                "confab_rocksdb_pending_compaction_bytes",
                "RocksDB pending compaction bytes",
            ),
        ] {
            if let Some(value) = self
                .engine
                .rocksdb_property(property)
                .and_then(|v| v.trim().parse::<f64>().ok())
            {
                gauges.push((name.into(), help, value));
            }
        }
        gauges
    }
}

impl App {
    /// Memory an operator watches before the kernel does: what the hub holds for resumes,
    /// RocksDB's cache and memtables, the session cache and login limiter, and the RSS.
    fn memory_gauges(&self) -> Vec<(String, &'static str, f64)> {
        let hub = self.hub.memory();
        let storage = self.engine.memory_usage();
        let mut gauges: Vec<(String, &'static str, f64)> = vec![
            (
                "confab_ws_window_bytes".into(),
                "Bytes held by all users' resume windows (bounded by ws_window_mib)",
                hub.window_bytes as f64,
            ),
            (
                "confab_ws_window_events".into(),
                "Events held across all resume windows",
                hub.window_slots as f64,
            ),
            (
                "confab_ws_windows".into(),
                "Users with a resume window",
                hub.windows as f64,
            ),
            (
                "confab_ws_broad_bytes".into(),
                "Bytes held by the broad-event ring (bounded by ws_broad_mib)",
                hub.broad_bytes as f64,
            ),
            (
                "confab_ws_broad_events".into(),
                "Events held by the broad-event ring",
                hub.broad_events as f64,
            ),
            (
                "confab_ws_resume_streams".into(),
                "WebSocket streams with resume checkpoints (bounded by ws_resume_streams)",
                hub.checkpoint_streams as f64,
            ),
            (
                "confab_ws_resume_checkpoint_bytes".into(),
                "Bytes held by resume checkpoints (estimate)",
                hub.checkpoint_bytes as f64,
            ),
            (
                "confab_ws_peer_checkpoint_index".into(),
                "Highest log index of a WebSocket stream checkpoint received from a peer",
                self.hub.peer_checkpoint_index() as f64,
            ),
            (
                "confab_ws_member_cache_ids".into(),
                "Member ids held by the membership cache",
                hub.member_cache_ids as f64,
            ),
            (
                "confab_rocksdb_block_cache_bytes".into(),
                "RocksDB block cache usage, memtable charge included",
                storage.block_cache_bytes as f64,
            ),
            (
                "confab_rocksdb_block_cache_pinned_bytes".into(),
                "RocksDB block cache bytes pinned",
                storage.block_cache_pinned_bytes as f64,
            ),
            (
                "confab_rocksdb_write_buffer_bytes".into(),
                "RocksDB memtable bytes counted by the write-buffer manager",
                storage.memtable_bytes as f64,
            ),
            (
                "confab_session_cache_entries".into(),
                "Sessions cached by token",
                self.hub.sessions.len() as f64,
            ),
            (
                "confab_login_limiter_entries".into(),
                "Users and addresses tracked by the failed-login limiter",
                self.logins.len() as f64,
            ),
        ];
        if let Some(rss) = resident_bytes() {
            gauges.push((
                "confab_process_resident_bytes".into(),
                "Resident set size of this process",
                rss as f64,
            ));
        }
        gauges
    }
}

/// This process's resident set, from the `VmRSS` line of `/proc/self/status` (Linux; `None`
/// elsewhere).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
