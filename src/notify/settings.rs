//! The `[push]` settings: flags, `CONFAB_*` variables or the `[push]` table of the settings file
//! (flags win), named after Mattermost's `EmailSettings` push settings where it has them.

use clap::Args;
use serde::Deserialize;
use std::time::Duration;

/// The settings as given (all optional).
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct PushArgs {
    /// Send push notifications (Mattermost's `SendPushNotifications`; default false).
    #[arg(long, env = "CONFAB_SEND_PUSH_NOTIFICATIONS")]
    pub send_push_notifications: Option<bool>,
    /// The push proxy, e.g. https://push.mattermost.com (`PushNotificationServer`).
    #[arg(long, env = "CONFAB_PUSH_NOTIFICATION_SERVER")]
    pub push_notification_server: Option<String>,
    /// full, generic, generic_no_channel or id_loaded (`PushNotificationContents`; default full).
    #[arg(long, env = "CONFAB_PUSH_NOTIFICATION_CONTENTS")]
    pub push_notification_contents: Option<String>,
    /// Channel-wide mentions are ignored in channels with at least this many members
    /// (`MaxNotificationsPerChannel`; default 1000).
    #[arg(long, env = "CONFAB_MAX_NOTIFICATIONS_PER_CHANNEL")]
    pub max_notifications_per_channel: Option<usize>,
    /// Outbox entries the dispatcher handles per replicated mark (default 256, at most 4096).
    #[arg(long, env = "CONFAB_PUSH_BATCH")]
    pub push_batch: Option<usize>,
    /// Push requests in flight at once (default 32).
    #[arg(long, env = "CONFAB_PUSH_CONCURRENCY")]
    pub push_concurrency: Option<usize>,
    /// Attempts per push before it counts as failed (default 4).
    #[arg(long, env = "CONFAB_PUSH_RETRY_ATTEMPTS")]
    pub push_retry_attempts: Option<u32>,
    /// First retry delay, ms; it doubles per attempt (default 250).
    #[arg(long, env = "CONFAB_PUSH_RETRY_INITIAL_MS")]
    pub push_retry_initial_ms: Option<u64>,
    /// Longest retry delay, ms (default 5000).
    #[arg(long, env = "CONFAB_PUSH_RETRY_MAX_MS")]
    pub push_retry_max_ms: Option<u64>,
    /// Timeout of one push request, ms (default 10000).
    #[arg(long, env = "CONFAB_PUSH_TIMEOUT_MS")]
    pub push_timeout_ms: Option<u64>,
    /// Outbox entries kept at most; past it the oldest are dropped unsent and counted
    /// (`confab_push_dropped_total`) (default 100,000).
    #[arg(long, env = "CONFAB_PUSH_MAX_BACKLOG")]
    pub push_max_backlog: Option<u64>,
    /// Lifetime of a session a mobile device is attached to, from the attach (or a login that
    /// names a device), in hours (`SessionLengthMobileInHours`; default 720; fractions allowed).
    #[arg(long, env = "CONFAB_SESSION_LENGTH_MOBILE_HOURS")]
    pub session_length_mobile_hours: Option<f64>,
    /// How often the leader looks for mobile sessions that expired, to push them a `session`
    /// notification, in seconds (Mattermost's expiry-notify job; default 600).
    #[arg(long, env = "CONFAB_SESSION_EXPIRY_CHECK_SECS")]
    pub session_expiry_check_secs: Option<u64>,
}

/// What a push says about the post (`PushNotificationContents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    Full,
    Generic,
    GenericNoChannel,
    IdLoaded,
}

impl Contents {
    pub fn parse(text: &str) -> Option<Contents> {
        match text {
            "full" => Some(Contents::Full),
            "generic" => Some(Contents::Generic),
            "generic_no_channel" => Some(Contents::GenericNoChannel),
            "id_loaded" => Some(Contents::IdLoaded),
            _ => None,
        }
    }
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct PushSettings {
    pub enabled: bool,
    /// Without a trailing `/`.
    pub server: String,
    pub contents: Contents,
    pub max_notifications_per_channel: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub retry_attempts: u32,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub timeout: Duration,
    pub max_backlog: u64,
    /// `SessionLengthMobileInHours`.
    pub session_length_mobile: Duration,
    pub session_expiry_every: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            enabled: false,
            server: String::new(),
            contents: Contents::Full,
            max_notifications_per_channel: 1000,
            batch: 256,
            concurrency: 32,
            retry_attempts: 4,
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_backlog: 100_000,
            session_length_mobile: Duration::from_secs(720 * 3600),
            session_expiry_every: Duration::from_secs(600),
        }
    }
}

impl PushArgs {
    /// These settings over `file`'s, over the defaults; `Err` names a bad value.
    pub fn resolve(self, file: PushArgs) -> Result<PushSettings, String> {
        let d = PushSettings::default();
        let contents = match self
            .push_notification_contents
            .or(file.push_notification_contents)
        {
            Some(text) => Contents::parse(&text).ok_or_else(|| {
                format!("push_notification_contents {text:?}: full, generic, generic_no_channel or id_loaded")
            })?,
            None => d.contents,
        };
        let server = self
            .push_notification_server
            .or(file.push_notification_server)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let enabled = self
            .send_push_notifications
            .or(file.send_push_notifications)
            .unwrap_or(d.enabled);
        if enabled && server.is_empty() {
            return Err("send_push_notifications needs push_notification_server".into());
        }
        let session_length_mobile = match self
            .session_length_mobile_hours
            .or(file.session_length_mobile_hours)
        {
            Some(hours) if hours.is_finite() && hours > 0.0 && hours <= 1e6 => {
                Duration::from_secs_f64(hours * 3600.0)
            }
            Some(hours) => {
                return Err(format!(
                    "session_length_mobile_hours {hours}: more than 0, at most 1000000"
                ))
            }
            None => d.session_length_mobile,
        };
        let ms = |flag: Option<u64>, file: Option<u64>, default: Duration| {
            flag.or(file).map(Duration::from_millis).unwrap_or(default)
        };
        Ok(PushSettings {
            enabled,
            server,
            contents,
            max_notifications_per_channel: self
                .max_notifications_per_channel
                .or(file.max_notifications_per_channel)
                .unwrap_or(d.max_notifications_per_channel),
            // A mark deletes at most MAX_MARK_SPAN entries, so a batch is never larger.
            batch: self
                .push_batch
                .or(file.push_batch)
                .unwrap_or(d.batch)
                .clamp(1, confab_storage::notify::MAX_MARK_SPAN),
            concurrency: self
                .push_concurrency
                .or(file.push_concurrency)
                .unwrap_or(d.concurrency)
                .max(1),
            retry_attempts: self
                .push_retry_attempts
                .or(file.push_retry_attempts)
                .unwrap_or(d.retry_attempts)
                .max(1),
            retry_initial: ms(
                self.push_retry_initial_ms,
                file.push_retry_initial_ms,
                d.retry_initial,
            ),
            retry_max: ms(self.push_retry_max_ms, file.push_retry_max_ms, d.retry_max),
            timeout: ms(self.push_timeout_ms, file.push_timeout_ms, d.timeout),
            max_backlog: self
                .push_max_backlog
                .or(file.push_max_backlog)
                .unwrap_or(d.max_backlog)
                .max(1),
            session_length_mobile,
            session_expiry_every: self
                .session_expiry_check_secs
                .or(file.session_expiry_check_secs)
                .map(|s| Duration::from_secs(s.max(1)))
                .unwrap_or(d.session_expiry_every),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_over_file_over_defaults() {
        let file: PushArgs = toml::from_str(
            "send_push_notifications = true\npush_notification_server = \"http://p/\"\npush_notification_contents = \"generic\"\n",
        )
        .expect("valid toml");
        let flags = PushArgs {
            push_notification_contents: Some("id_loaded".into()),
            ..PushArgs::default()
        };
        let settings = flags.resolve(file).expect("valid");
        assert!(settings.enabled);
        assert_eq!(settings.server, "http://p");
        assert_eq!(settings.contents, Contents::IdLoaded);
        assert_eq!(settings.max_notifications_per_channel, 1000);
        assert_eq!(
            settings.session_length_mobile,
            Duration::from_secs(720 * 3600)
        );
        assert_eq!(settings.session_expiry_every, Duration::from_secs(600));
        let short = PushArgs {
            session_length_mobile_hours: Some(0.5),
            ..PushArgs::default()
        };
        let settings = short.resolve(PushArgs::default()).expect("valid");
        assert_eq!(settings.session_length_mobile, Duration::from_secs(1800));
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = PushArgs {
            push_notification_contents: Some("everything".into()),
            ..PushArgs::default()
        };
        assert!(bad.resolve(PushArgs::default()).is_err());
        let no_server = PushArgs {
            send_push_notifications: Some(true),
            ..PushArgs::default()
        };
        assert!(no_server.resolve(PushArgs::default()).is_err());
        assert!(toml::from_str::<PushArgs>("push_servr = \"x\"\n").is_err());
        for hours in [0.0, -1.0, f64::NAN, 2e6] {
            let bad = PushArgs {
                session_length_mobile_hours: Some(hours),
                ..PushArgs::default()
            };
            assert!(bad.resolve(PushArgs::default()).is_err(), "{hours}");
        }
    }
}
