//! Memory bounds of a node, in one place: every per-user and per-event structure that grows
//! with the users, the events or the data is capped by one of these settings. The defaults keep
//! a node of a 100,000-user cluster well under 1.5 GB (README, "Memory bounds", has the table).
//!
//! Each setting is a flag, a `CONFAB_*` environment variable, or a key of the `[limits]` table
//! of the settings file (flags win over the file), with the same names.

use clap::Args;
use serde::Deserialize;

/// The settings as given (all optional).
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct LimitArgs {
    /// RocksDB block cache, MiB; memtables are charged to it (default 256).
    #[arg(long, env = "CONFAB_BLOCK_CACHE_MIB")]
    pub block_cache_mib: Option<usize>,
    /// All RocksDB memtables together, MiB (default 64).
    #[arg(long, env = "CONFAB_WRITE_BUFFER_MIB")]
    pub write_buffer_mib: Option<usize>,
    /// Events kept per user for WebSocket resumes (default 512).
    #[arg(long, env = "CONFAB_WS_WINDOW_EVENTS")]
    pub ws_window_events: Option<usize>,
    /// All users' resume windows together, MiB (default 256).
    #[arg(long, env = "CONFAB_WS_WINDOW_MIB")]
    pub ws_window_mib: Option<usize>,
    /// Users with a resume window at most (default 1,000,000).
    #[arg(long, env = "CONFAB_WS_WINDOW_USERS")]
    pub ws_window_users: Option<usize>,
    /// Events of large audiences kept once for resumes (default 8192).
    #[arg(long, env = "CONFAB_WS_BROAD_EVENTS")]
    pub ws_broad_events: Option<usize>,
    /// The broad-event ring, MiB (default 64).
    #[arg(long, env = "CONFAB_WS_BROAD_MIB")]
    pub ws_broad_mib: Option<usize>,
    /// WebSocket streams whose resume checkpoints are kept (default 65,536).
    #[arg(long, env = "CONFAB_WS_RESUME_STREAMS")]
    pub ws_resume_streams: Option<usize>,
    /// Events a connection may have queued before it is closed as too slow (default 1024).
    #[arg(long, env = "CONFAB_WS_QUEUE_EVENTS")]
    pub ws_queue_events: Option<usize>,
    /// Member ids the WebSocket membership cache holds across channels (default 4,000,000).
    #[arg(long, env = "CONFAB_MEMBER_CACHE_IDS")]
    pub member_cache_ids: Option<usize>,
    /// Live sessions cached by token (default 200,000).
    #[arg(long, env = "CONFAB_SESSION_CACHE_ENTRIES")]
    pub session_cache_entries: Option<usize>,
    /// Users and addresses the failed-login limiter tracks (default 100,000).
    #[arg(long, env = "CONFAB_LOGIN_LIMITER_ENTRIES")]
    pub login_limiter_entries: Option<usize>,
}

/// The resolved bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub block_cache_bytes: usize,
    pub write_buffer_bytes: usize,
    pub ws_window_events: usize,
    pub ws_window_bytes: usize,
    pub ws_window_users: usize,
    pub ws_broad_events: usize,
    pub ws_broad_bytes: usize,
    pub ws_queue_events: usize,
    pub ws_resume_streams: usize,
    pub member_cache_ids: usize,
    pub session_cache_entries: usize,
    pub login_limiter_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let storage = confab_storage::MemoryLimits::default();
        let hub = crate::ws::HubConfig::default();
        Limits {
            block_cache_bytes: storage.block_cache_bytes,
            write_buffer_bytes: storage.write_buffer_bytes,
            ws_window_events: hub.window_events,
            ws_window_bytes: hub.window_bytes,
            ws_window_users: hub.window_users,
            ws_broad_events: hub.broad_events,
            ws_broad_bytes: hub.broad_bytes,
            ws_queue_events: hub.queue_frames,
            ws_resume_streams: hub.resume_streams,
            member_cache_ids: hub.member_cache_ids,
            session_cache_entries: hub.session_cache_entries,
            login_limiter_entries: crate::ratelimit::DEFAULT_ENTRIES,
        }
    }
}

const MIB: usize = 1 << 20;

impl LimitArgs {
    /// These settings over `file`'s, over the defaults. Every bound is at least 1.
    pub fn resolve(self, file: LimitArgs) -> Limits {
        let d = Limits::default();
        let mib = |flag: Option<usize>, file: Option<usize>, default: usize| {
            flag.or(file)
                .map(|m| m.saturating_mul(MIB))
                .unwrap_or(default)
                .max(1)
        };
        let count = |flag: Option<usize>, file: Option<usize>, default: usize| {
            flag.or(file).unwrap_or(default).max(1)
        };
        Limits {
            block_cache_bytes: mib(
                self.block_cache_mib,
                file.block_cache_mib,
                d.block_cache_bytes,
            ),
            write_buffer_bytes: mib(
                self.write_buffer_mib,
                file.write_buffer_mib,
                d.write_buffer_bytes,
            ),
            ws_window_events: count(
                self.ws_window_events,
                file.ws_window_events,
                d.ws_window_events,
            ),
            ws_window_bytes: mib(self.ws_window_mib, file.ws_window_mib, d.ws_window_bytes),
            ws_window_users: count(
                self.ws_window_users,
                file.ws_window_users,
                d.ws_window_users,
            ),
            ws_broad_events: count(
                self.ws_broad_events,
                file.ws_broad_events,
                d.ws_broad_events,
            ),
            ws_broad_bytes: mib(self.ws_broad_mib, file.ws_broad_mib, d.ws_broad_bytes),
            ws_queue_events: count(
                self.ws_queue_events,
                file.ws_queue_events,
                d.ws_queue_events,
            ),
            ws_resume_streams: count(
                self.ws_resume_streams,
                file.ws_resume_streams,
                d.ws_resume_streams,
            ),
            member_cache_ids: count(
                self.member_cache_ids,
                file.member_cache_ids,
                d.member_cache_ids,
            ),
            session_cache_entries: count(
                self.session_cache_entries,
                file.session_cache_entries,
                d.session_cache_entries,
            ),
            login_limiter_entries: count(
                self.login_limiter_entries,
                file.login_limiter_entries,
                d.login_limiter_entries,
            ),
        }
    }
}

impl Limits {
    /// RocksDB's share.
    pub fn storage(&self) -> confab_storage::MemoryLimits {
        confab_storage::MemoryLimits {
            block_cache_bytes: self.block_cache_bytes,
            write_buffer_bytes: self.write_buffer_bytes,
        }
    }

    /// The hub's share, over `base` (which carries the non-memory settings).
    pub fn hub(&self, base: crate::ws::HubConfig) -> crate::ws::HubConfig {
        crate::ws::HubConfig {
            queue_frames: self.ws_queue_events,
            window_events: self.ws_window_events,
            window_bytes: self.ws_window_bytes,
            window_users: self.ws_window_users,
            broad_events: self.ws_broad_events,
            broad_bytes: self.ws_broad_bytes,
            member_cache_ids: self.member_cache_ids,
            resume_streams: self.ws_resume_streams,
            session_cache_entries: self.session_cache_entries,
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_over_file_over_defaults() {
        let flags = LimitArgs {
            ws_broad_mib: Some(4),
            ..LimitArgs::default()
        };
        let file: LimitArgs =
            toml::from_str("ws_broad_mib = 8\nws_window_events = 100\n").expect("valid toml");
        let limits = flags.resolve(file);
        assert_eq!(limits.ws_broad_bytes, 4 << 20);
        assert_eq!(limits.ws_window_events, 100);
        assert_eq!(limits.ws_window_bytes, Limits::default().ws_window_bytes);
        let hub = limits.hub(crate::ws::HubConfig::default());
        assert_eq!(hub.broad_bytes, 4 << 20);
        assert_eq!(hub.window_events, 100);
    }

    #[test]
    fn zero_is_raised_to_one() {
        let flags = LimitArgs {
            ws_window_events: Some(0),
            ..LimitArgs::default()
        };
        assert_eq!(flags.resolve(LimitArgs::default()).ws_window_events, 1);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<LimitArgs>("ws_window_bites = 1\n").is_err());
    }
}
