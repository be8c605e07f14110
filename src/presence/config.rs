//! The `[presence]` settings: flags, `CONFAB_*` variables, or keys of the `[presence]` table of
//! the settings file (flags win), times in seconds.

use super::PresenceConfig;
use clap::Args;
use serde::Deserialize;
use std::time::Duration;

#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct PresenceArgs {
    /// Seconds without activity before a connected user is away (Mattermost's
    /// UserStatusAwayTimeout; default 300).
    #[arg(long, env = "CONFAB_AWAY_TIMEOUT_SECS")]
    pub away_timeout_secs: Option<u64>,
    /// Seconds a user whose last socket closed stays online, so a reconnect to another node
    /// does not flap (default 5).
    #[arg(long, env = "CONFAB_OFFLINE_GRACE_SECS")]
    pub offline_grace_secs: Option<u64>,
    /// Seconds between full presence summaries to the peers (default 5).
    #[arg(long, env = "CONFAB_PRESENCE_SUMMARY_SECS")]
    pub presence_summary_secs: Option<u64>,
    /// Seconds a peer's word about a user lasts without being repeated; a dead node's users go
    /// offline after it (default 20, at least two summaries).
    #[arg(long, env = "CONFAB_PRESENCE_PEER_TIMEOUT_SECS")]
    pub presence_peer_timeout_secs: Option<u64>,
    /// Show and take user statuses (Mattermost's EnableUserStatuses; default true).
    #[arg(long, env = "CONFAB_ENABLE_USER_STATUSES")]
    pub enable_user_statuses: Option<bool>,
}

impl PresenceArgs {
    /// Flags over the file over the defaults.
    pub fn resolve(self, file: PresenceArgs) -> PresenceConfig {
        let d = PresenceConfig::default();
        let secs = |flag: Option<u64>, file: Option<u64>, default: Duration| {
            flag.or(file).map(Duration::from_secs).unwrap_or(default)
        };
        let summary_interval = secs(
            self.presence_summary_secs,
            file.presence_summary_secs,
            d.summary_interval,
        )
        .max(Duration::from_secs(1));
        PresenceConfig {
            away_timeout: secs(
                self.away_timeout_secs,
                file.away_timeout_secs,
                d.away_timeout,
            )
            .max(Duration::from_secs(1)),
            offline_grace: secs(
                self.offline_grace_secs,
                file.offline_grace_secs,
                d.offline_grace,
            ),
            flush_interval: d.flush_interval,
            summary_interval,
            peer_timeout: secs(
                self.presence_peer_timeout_secs,
                file.presence_peer_timeout_secs,
                d.peer_timeout,
            )
            .max(summary_interval * 2),
            user_statuses: self
                .enable_user_statuses
                .or(file.enable_user_statuses)
                .unwrap_or(d.user_statuses),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_bounds_hold() {
        let file = PresenceArgs {
            away_timeout_secs: Some(3),
            offline_grace_secs: Some(1),
            presence_peer_timeout_secs: Some(1),
            ..PresenceArgs::default()
        };
        let flags = PresenceArgs {
            away_timeout_secs: Some(4),
            ..PresenceArgs::default()
        };
        let config = flags.resolve(file);
        assert_eq!(config.away_timeout, Duration::from_secs(4));
        assert_eq!(config.offline_grace, Duration::from_secs(1));
        assert_eq!(
            config.peer_timeout,
            Duration::from_secs(10),
            "two summaries"
        );
        assert_eq!(
            PresenceArgs::default().resolve(PresenceArgs::default()),
            PresenceConfig::default()
        );
    }
}
