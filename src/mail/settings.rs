//! The `[email]` settings: SMTP server and the email-notification switches, named after
//! Mattermost's `EmailSettings` (snake_case). Each is a flag, a `CONFAB_*` environment variable
//! or a key of the `[email]` table of the settings file (flags win), like `[limits]`.
//!
//! Email notifications are off unless `send_email_notifications` is set: Mattermost turns them
//! on by default against `localhost:10025`, which on a fresh machine only produces failed
//! deliveries; confab asks the operator to name a real server first.

use clap::Args;
use serde::Deserialize;
use std::time::Duration;

/// The settings as given (all optional).
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct EmailArgs {
    /// Send email notifications to away and offline users (default false).
    #[arg(long, env = "CONFAB_SEND_EMAIL_NOTIFICATIONS")]
    pub send_email_notifications: Option<bool>,
    /// SMTP server host (default localhost).
    #[arg(long, env = "CONFAB_SMTP_SERVER")]
    pub smtp_server: Option<String>,
    /// SMTP server port (default 10025, Mattermost's).
    #[arg(long, env = "CONFAB_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// "" (plain), "TLS" (implicit TLS) or "STARTTLS".
    #[arg(long, env = "CONFAB_SMTP_CONNECTION_SECURITY")]
    pub connection_security: Option<String>,
    /// Authenticate with `smtp_username` / `smtp_password` (default: when a username is set).
    #[arg(long, env = "CONFAB_ENABLE_SMTP_AUTH")]
    pub enable_smtp_auth: Option<bool>,
    #[arg(long, env = "CONFAB_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    #[arg(long, env = "CONFAB_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Accept any TLS certificate from the SMTP server (default false).
    #[arg(long, env = "CONFAB_SMTP_SKIP_CERT_VERIFICATION")]
    pub skip_server_certificate_verification: Option<bool>,
    /// Seconds to wait on the SMTP server (default 10).
    #[arg(long, env = "CONFAB_SMTP_SERVER_TIMEOUT")]
    pub smtp_server_timeout: Option<u64>,
    /// The sender's display name (default: the site name).
    #[arg(long, env = "CONFAB_FEEDBACK_NAME")]
    pub feedback_name: Option<String>,
    /// The sender's address (default test@example.com, Mattermost's).
    #[arg(long, env = "CONFAB_FEEDBACK_EMAIL")]
    pub feedback_email: Option<String>,
    /// Reply-To address (default test@example.com, Mattermost's).
    #[arg(long, env = "CONFAB_REPLY_TO_ADDRESS")]
    pub reply_to_address: Option<String>,
    /// Collect notifications into one email per user per interval (default false).
    #[arg(long, env = "CONFAB_ENABLE_EMAIL_BATCHING")]
    pub enable_email_batching: Option<bool>,
    /// Seconds between looks at the batches (default 30, Mattermost's).
    #[arg(long, env = "CONFAB_EMAIL_BATCHING_INTERVAL")]
    pub email_batching_interval: Option<u64>,
    /// Seconds a batch collects for users who chose no interval (preference
    /// `notifications`/`email_interval`); Mattermost's is 900.
    #[arg(long, env = "CONFAB_EMAIL_BATCHING_DEFAULT_INTERVAL")]
    pub email_batching_default_interval: Option<u64>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionSecurity {
    None,
    Tls,
    StartTls,
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    pub enabled: bool,
    pub smtp_server: String,
    pub smtp_port: u16,
    pub security: ConnectionSecurity,
    /// Username and password, when authentication is on.
    pub credentials: Option<(String, String)>,
    pub skip_certificate_verification: bool,
    pub timeout: Duration,
    pub feedback_name: String,
    pub feedback_email: String,
    pub reply_to: String,
    pub batching: bool,
    pub batching_interval: Duration,
    pub batching_default_interval: Duration,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            enabled: false,
            smtp_server: "localhost".into(),
            smtp_port: 10025,
            security: ConnectionSecurity::None,
            credentials: None,
            skip_certificate_verification: false,
            timeout: Duration::from_secs(10),
            feedback_name: String::new(),
            feedback_email: "test@example.com".into(),
            reply_to: "test@example.com".into(),
            batching: false,
            batching_interval: Duration::from_secs(30),
            batching_default_interval: Duration::from_secs(900),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailSettingsError {
    #[error("connection_security must be \"\", \"TLS\" or \"STARTTLS\", not {0:?}")]
    Security(String),
    #[error("enable_smtp_auth needs smtp_username")]
    NoUsername,
    #[error("email_batching_interval must be at least 1 second")]
    Interval,
}

impl EmailArgs {
    /// Flags (`self`) over the file's `[email]` table over the defaults.
    pub fn resolve(self, file: EmailArgs) -> Result<EmailSettings, EmailSettingsError> {
        let d = EmailSettings::default();
        let security = match self
            .connection_security
            .or(file.connection_security)
            .unwrap_or_default()
            .to_ascii_uppercase()
            .as_str()
        {
            // Mattermost reads "PLAIN" as no security too.
            "" | "PLAIN" | "NONE" => ConnectionSecurity::None,
            "TLS" => ConnectionSecurity::Tls,
            "STARTTLS" => ConnectionSecurity::StartTls,
            other => return Err(EmailSettingsError::Security(other.to_string())),
        };
        let username = self
            .smtp_username
            .or(file.smtp_username)
            .unwrap_or_default();
        let password = self
            .smtp_password
            .or(file.smtp_password)
            .unwrap_or_default();
        let auth = self
            .enable_smtp_auth
            .or(file.enable_smtp_auth)
            .unwrap_or(!username.is_empty());
        if auth && username.is_empty() {
            return Err(EmailSettingsError::NoUsername);
        }
        let interval = self
            .email_batching_interval
            .or(file.email_batching_interval)
            .unwrap_or(d.batching_interval.as_secs());
        if interval == 0 {
            return Err(EmailSettingsError::Interval);
        }
        Ok(EmailSettings {
            enabled: self
                .send_email_notifications
                .or(file.send_email_notifications)
                .unwrap_or(d.enabled),
            smtp_server: self
                .smtp_server
                .or(file.smtp_server)
                .unwrap_or(d.smtp_server),
            smtp_port: self.smtp_port.or(file.smtp_port).unwrap_or(d.smtp_port),
            security,
            credentials: auth.then_some((username, password)),
            skip_certificate_verification: self
                .skip_server_certificate_verification
                .or(file.skip_server_certificate_verification)
                .unwrap_or(d.skip_certificate_verification),
            timeout: Duration::from_secs(
                self.smtp_server_timeout
                    .or(file.smtp_server_timeout)
                    .unwrap_or(d.timeout.as_secs())
                    .max(1),
            ),
            feedback_name: self
                .feedback_name
                .or(file.feedback_name)
                .unwrap_or_default(),
            feedback_email: self
                .feedback_email
                .or(file.feedback_email)
                .unwrap_or(d.feedback_email),
            reply_to: self
                .reply_to_address
                .or(file.reply_to_address)
                .unwrap_or(d.reply_to),
            batching: self
                .enable_email_batching
                .or(file.enable_email_batching)
                .unwrap_or(d.batching),
            batching_interval: Duration::from_secs(interval),
            batching_default_interval: Duration::from_secs(
                self.email_batching_default_interval
                    .or(file.email_batching_default_interval)
                    .unwrap_or(d.batching_default_interval.as_secs())
                    .max(1),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file = EmailArgs {
            smtp_server: Some("mail.internal".into()),
            smtp_port: Some(25),
            connection_security: Some("starttls".into()),
            ..Default::default()
        };
        let flags = EmailArgs {
            smtp_port: Some(2525),
            send_email_notifications: Some(true),
            ..Default::default()
        };
        let s = flags.resolve(file).expect("valid");
        assert!(s.enabled);
        assert_eq!(s.smtp_server, "mail.internal");
        assert_eq!(s.smtp_port, 2525);
        assert_eq!(s.security, ConnectionSecurity::StartTls);
        assert_eq!(s.credentials, None);
        assert_eq!(s.reply_to, "test@example.com");
        assert_eq!(s.batching_interval, Duration::from_secs(30));
    }

    #[test]
    fn bad_settings_are_refused_with_their_name() {
        let bad = EmailArgs {
            connection_security: Some("SSLv2".into()),
            ..Default::default()
        };
        assert!(matches!(
            bad.resolve(EmailArgs::default()),
            Err(EmailSettingsError::Security(_))
        ));
        let no_user = EmailArgs {
            enable_smtp_auth: Some(true),
            ..Default::default()
        };
        assert_eq!(
            no_user.resolve(EmailArgs::default()),
            Err(EmailSettingsError::NoUsername)
        );
        let with_user = EmailArgs {
            smtp_username: Some("bot".into()),
            smtp_password: Some("pw".into()),
            ..Default::default()
        };
        let s = with_user.resolve(EmailArgs::default()).expect("valid");
        assert_eq!(s.credentials, Some(("bot".into(), "pw".into())));
    }
}
