//! The `[integrations]` settings: flags, `CONFAB_*` variables, or keys of the `[integrations]`
//! table of the settings file (flags win), defaulting as Mattermost's `ServiceSettings` do.

use clap::Args;
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct IntegrationArgs {
    /// Mattermost's EnableIncomingWebhooks (default true).
    #[arg(long, env = "CONFAB_ENABLE_INCOMING_WEBHOOKS")]
    pub enable_incoming_webhooks: Option<bool>,
    /// Mattermost's EnableOutgoingWebhooks (default true).
    #[arg(long, env = "CONFAB_ENABLE_OUTGOING_WEBHOOKS")]
    pub enable_outgoing_webhooks: Option<bool>,
    /// Mattermost's EnableCommands: custom slash commands (default true).
    #[arg(long, env = "CONFAB_ENABLE_COMMANDS")]
    pub enable_commands: Option<bool>,
    /// Mattermost's EnablePostUsernameOverride (default false).
    #[arg(long, env = "CONFAB_ENABLE_POST_USERNAME_OVERRIDE")]
    pub enable_post_username_override: Option<bool>,
    /// Mattermost's EnablePostIconOverride (default false).
    #[arg(long, env = "CONFAB_ENABLE_POST_ICON_OVERRIDE")]
    pub enable_post_icon_override: Option<bool>,
    /// Mattermost's EnableUserAccessTokens (default false; bots' tokens work regardless).
    #[arg(long, env = "CONFAB_ENABLE_USER_ACCESS_TOKENS")]
    pub enable_user_access_tokens: Option<bool>,
    /// Mattermost's EnableBotAccountCreation (default false).
    #[arg(long, env = "CONFAB_ENABLE_BOT_ACCOUNT_CREATION")]
    pub enable_bot_account_creation: Option<bool>,
    /// Mattermost's AllowedUntrustedInternalConnections: whitespace- or comma-separated host
    /// names, IP addresses and CIDR ranges that outgoing calls may reach although internal.
    #[arg(long, env = "CONFAB_ALLOWED_UNTRUSTED_INTERNAL_CONNECTIONS")]
    pub allowed_untrusted_internal_connections: Option<String>,
    /// Mattermost's OutgoingIntegrationRequestsTimeout, seconds (default 30).
    #[arg(long, env = "CONFAB_OUTGOING_INTEGRATION_REQUESTS_TIMEOUT")]
    pub outgoing_integration_requests_timeout: Option<u64>,
    /// Tries per outgoing-webhook call before it is given up (default 3).
    #[arg(long, env = "CONFAB_OUTGOING_WEBHOOK_ATTEMPTS")]
    pub outgoing_webhook_attempts: Option<u32>,
}

/// What outgoing calls may reach although it is internal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub hosts: Vec<String>,
    pub nets: Vec<(IpAddr, u8)>,
}

impl AllowList {
    pub fn parse(text: &str) -> AllowList {
        let mut list = AllowList::default();
        for item in text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
        {
            let (addr, bits) = match item.split_once('/') {
                Some((addr, bits)) => (addr, bits.parse::<u8>().ok()),
                None => (item, None),
            };
            match addr.parse::<IpAddr>() {
                Ok(ip) => {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    list.nets.push((ip, bits.unwrap_or(max).min(max)));
                }
                Err(_) => list.hosts.push(item.to_ascii_lowercase()),
            }
        }
        list
    }

    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|(net, bits)| in_net(ip, *net, *bits))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits as u32)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits as u32)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct IntegrationSettings {
    pub enable_incoming_webhooks: bool,
    pub enable_outgoing_webhooks: bool,
    pub enable_commands: bool,
    pub enable_post_username_override: bool,
    pub enable_post_icon_override: bool,
    pub enable_user_access_tokens: bool,
    pub enable_bot_account_creation: bool,
    pub allowed: AllowList,
    pub timeout: Duration,
    pub attempts: u32,
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        IntegrationArgs::default().resolve(IntegrationArgs::default())
    }
}

impl IntegrationArgs {
    /// Flags over the file over Mattermost's defaults.
    pub fn resolve(self, file: IntegrationArgs) -> IntegrationSettings {
        let flag = |a: Option<bool>, b: Option<bool>, d: bool| a.or(b).unwrap_or(d);
        IntegrationSettings {
            enable_incoming_webhooks: flag(
                self.enable_incoming_webhooks,
                file.enable_incoming_webhooks,
                true,
            ),
            enable_outgoing_webhooks: flag(
                self.enable_outgoing_webhooks,
                file.enable_outgoing_webhooks,
                true,
            ),
            enable_commands: flag(self.enable_commands, file.enable_commands, true),
            enable_post_username_override: flag(
                self.enable_post_username_override,
                file.enable_post_username_override,
                false,
            ),
            enable_post_icon_override: flag(
                self.enable_post_icon_override,
                file.enable_post_icon_override,
                false,
            ),
            enable_user_access_tokens: flag(
                self.enable_user_access_tokens,
                file.enable_user_access_tokens,
                false,
            ),
            enable_bot_account_creation: flag(
                self.enable_bot_account_creation,
                file.enable_bot_account_creation,
                false,
            ),
            allowed: AllowList::parse(
                &self
                    .allowed_untrusted_internal_connections
                    .or(file.allowed_untrusted_internal_connections)
                    .unwrap_or_default(),
            ),
            timeout: Duration::from_secs(
                self.outgoing_integration_requests_timeout
                    .or(file.outgoing_integration_requests_timeout)
                    .unwrap_or(30)
                    .max(1),
            ),
            attempts: self
                .outgoing_webhook_attempts
                .or(file.outgoing_webhook_attempts)
                .unwrap_or(3)
                .clamp(1, 10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_mattermosts_and_the_allow_list_parses() {
        let s = IntegrationSettings::default();
        assert!(s.enable_incoming_webhooks && s.enable_outgoing_webhooks && s.enable_commands);
        assert!(!s.enable_user_access_tokens && !s.enable_bot_account_creation);
        assert!(!s.enable_post_username_override && !s.enable_post_icon_override);
        assert_eq!(s.timeout, Duration::from_secs(30));
        let list = AllowList::parse("127.0.0.1 10.0.0.0/8,hooks.internal");
        assert!(list.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(!list.allows_ip("127.0.0.2".parse().unwrap()));
        assert!(list.allows_ip("10.9.8.7".parse().unwrap()));
        assert!(!list.allows_ip("11.0.0.1".parse().unwrap()));
        assert!(list.allows_host("Hooks.Internal"));
    }
}
