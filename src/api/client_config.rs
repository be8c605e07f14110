//! `GET /config/client?format=old` and `GET /license/client?format=old`: what the apps read
//! before they even show a login form. Both are fatal at the mobile connect screen, so they are
//! served without a session. Every value is a string, as in Mattermost. The feature switches say
//! what confab really does: a switch is "true" only where confab serves the feature (and, for
//! files, integrations and push, where this node's settings turn it on), so the apps hide what
//! would fail (plugins, custom emoji, guests, SSO).

use super::{json_response, AppState, Params};
use crate::error::ApiError;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use confab_storage::MAX_MESSAGE_CHARS;
use serde_json::{Map, Value};

/// The Mattermost version confab advertises: the mobile app refuses servers below 9.11.0 and
/// nags admins below 10.11.0, and gates features (reliable WebSocket, CRT) on it.
pub const MATTERMOST_VERSION: &str = "10.11.0";

/// Mattermost answers the "new" format with 501; only `format=old` is served.
fn require_old_format(query: Option<&str>, what: &'static str) -> Result<(), ApiError> {
    if Params::parse(query).get("format") == Some("old") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            what,
            "New format for the client configuration is not supported yet. Please specify format=old.",
        ))
    }
}

/// The site URL: configured, or else the one this request reached (behind a proxy, its
/// `X-Forwarded-Proto`), which is what the web app needs to find the WebSocket.
pub fn site_url(configured: &str, headers: &HeaderMap) -> String {
    if !configured.is_empty() {
        return configured.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    host.map(|h| format!("{scheme}://{h}")).unwrap_or_default()
}

fn flag(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

/// The client configuration, built from confab's settings. `no_accounts` tells the web app to
/// offer sign-up to the very first visitor.
pub fn client_config(app: &AppState, headers: &HeaderMap, no_accounts: bool) -> Value {
    let settings = &app.settings;
    let min_password = settings.min_password_len.to_string();
    let max_post = MAX_MESSAGE_CHARS.to_string();
    let build = format!("confab-{}", env!("CARGO_PKG_VERSION"));
    let site = site_url(&settings.site_url, headers);
    let files = &app.files.settings;
    let max_file = files.max_file_size.to_string();
    let integrations = &app.integrations;
    let entries: Vec<(&str, &str)> = vec![
        // Identity and version.
        ("Version", MATTERMOST_VERSION),
        ("BuildNumber", build.as_str()),
        ("BuildDate", ""),
        ("BuildHash", build.as_str()),
        ("BuildHashEnterprise", "none"),
        ("BuildEnterpriseReady", "false"),
        ("SiteName", settings.site_name.as_str()),
        ("SiteURL", site.as_str()),
        ("DiagnosticId", settings.cluster_id.as_str()),
        ("DiagnosticsEnabled", "false"),
        ("TelemetryId", settings.cluster_id.as_str()),
        ("NoAccounts", flag(no_accounts)),
        // Sign-up and sign-in: email or username with a password; no SSO, LDAP, MFA or guests.
        ("EnableSignUpWithEmail", "true"),
        ("EnableSignInWithEmail", "true"),
        ("EnableSignInWithUsername", "true"),
        ("EnableOpenServer", "true"),
        ("EnableUserCreation", "true"),
        ("EnableLdap", "false"),
        ("EnableSaml", "false"),
        ("EnableSignUpWithGitLab", "false"),
        ("EnableSignUpWithGoogle", "false"),
        ("EnableSignUpWithOffice365", "false"),
        ("EnableSignUpWithOpenId", "false"),
        ("EnableMultifactorAuthentication", "false"),
        ("EnforceMultifactorAuthentication", "false"),
        ("EnableGuestAccounts", "false"),
        ("EnableGuestMagicLink", "false"),
        (
            "EnableUserAccessTokens",
            flag(integrations.enable_user_access_tokens),
        ),
        ("EnableEmailInvitations", "false"),
        ("PasswordMinimumLength", min_password.as_str()),
        ("PasswordRequireLowercase", "false"),
        ("PasswordRequireUppercase", "false"),
        ("PasswordRequireNumber", "false"),
        ("PasswordRequireSymbol", "false"),
        ("ExtendSessionLengthWithActivity", "false"),
        // The WebSocket lives on the API's own host and port.
        ("WebsocketURL", ""),
        ("WebsocketPort", "80"),
        ("WebsocketSecurePort", "443"),
        ("EnableReliableWebSockets", "true"),
        // Messaging: what confab serves.
        ("MaxPostSize", max_post.as_str()),
        ("AllowEditPost", "always"),
        ("PostEditTimeLimit", "-1"),
        ("CollapsedThreads", "default_off"),
        ("EnableUserTypingMessages", "true"),
        ("EnableChannelViewedMessages", "true"),
        ("EnableConfirmNotificationsToChannel", "true"),
        ("ExperimentalTownSquareIsReadOnly", "false"),
        ("ExperimentalEnableDefaultChannelLeaveJoinMessages", "false"),
        ("ExperimentalPrimaryTeam", ""),
        ("TeammateNameDisplay", "username"),
        ("LockTeammateNameDisplay", "false"),
        ("RestrictDirectMessage", "any"),
        ("ShowEmailAddress", "false"),
        ("ShowFullName", "true"),
        ("EnableCustomEmoji", "true"),
        ("EnableEmojiPicker", "true"),
        ("EnableLinkPreviews", "false"),
        // No `permalink` embeds are made: the apps then show such links as plain links.
        ("EnablePermalinkPreviews", "false"),
        ("EnableSVGs", "false"),
        ("EnableLatex", "false"),
        ("EnableInlineLatex", "false"),
        ("EnableCustomUserStatuses", "true"),
        ("EnableLastActiveTime", "false"),
        ("EnablePreviewFeatures", "false"),
        ("EnableTutorial", "false"),
        ("EnableOnboardingFlow", "false"),
        ("EnableClientMetrics", "false"),
        // Files, integrations and push as this node is configured; drafts synced.
        ("EnableFileAttachments", "true"),
        ("EnableMobileFileUpload", "true"),
        ("EnableMobileFileDownload", "true"),
        ("EnablePublicLink", flag(files.enable_public_link)),
        ("MaxFileSize", max_file.as_str()),
        ("EnableCommands", flag(integrations.enable_commands)),
        (
            "EnableIncomingWebhooks",
            flag(integrations.enable_incoming_webhooks),
        ),
        (
            "EnableOutgoingWebhooks",
            flag(integrations.enable_outgoing_webhooks),
        ),
        (
            "EnableBotAccountCreation",
            flag(integrations.enable_bot_account_creation),
        ),
        (
            "EnablePostUsernameOverride",
            flag(integrations.enable_post_username_override),
        ),
        (
            "EnablePostIconOverride",
            flag(integrations.enable_post_icon_override),
        ),
        ("SendPushNotifications", flag(app.push_proxy.is_some())),
        ("AllowSyncedDrafts", "true"),
        // Not in confab: plugins, apps, compliance.
        ("PluginsEnabled", "false"),
        ("EnableMarketplace", "false"),
        ("FeatureFlagAppsEnabled", "false"),
        ("ExperimentalSharedChannels", "false"),
        ("DataRetentionEnableMessageDeletion", "false"),
        ("DataRetentionEnableFileDeletion", "false"),
        ("EnableManagedChannelCategories", "false"),
        // Mobile app policies: none enforced.
        ("MobileJailbreakProtection", "false"),
        ("MobileEnableBiometrics", "false"),
        ("MobilePreventScreenCapture", "false"),
        // Links the apps show; none configured.
        ("AboutLink", ""),
        ("HelpLink", ""),
        ("PrivacyPolicyLink", ""),
        ("TermsOfServiceLink", ""),
        ("ReportAProblemLink", ""),
        ("SupportEmail", ""),
    ];
    let map: Map<String, Value> = entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(map)
}

/// GET /config/client?format=old — no session needed (the connect screen has none).
pub async fn get_client_config(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    require_old_format(query.as_deref(), "api.config.client.old_format.app_error")?;
    let no_accounts = app.read(|r| Ok(r.users(0, 1)?.is_empty())).await?;
    Ok(json_response(
        StatusCode::OK,
        &client_config(&app, &headers, no_accounts),
    ))
}

/// GET /license/client?format=old — confab needs no license: Mattermost's unlicensed answer.
pub async fn get_client_license(RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    require_old_format(query.as_deref(), "api.license.client.old_format.app_error")?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({"IsLicensed": "false"}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn site_url_prefers_the_setting_then_the_request() {
        let mut headers = HeaderMap::new();
        assert_eq!(site_url("", &headers), "");
        headers.insert(
            header::HOST,
            HeaderValue::from_static("chat.example.com:8065"),
        );
        assert_eq!(site_url("", &headers), "http://chat.example.com:8065");
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(site_url("", &headers), "https://chat.example.com:8065");
        assert_eq!(
            site_url("https://chat.example.com/", &headers),
            "https://chat.example.com"
        );
        headers.insert(header::HOST, HeaderValue::from_static("evil\"host"));
        assert_eq!(
            site_url("", &headers),
            "",
            "a host that is not a host is not echoed"
        );
    }

    #[test]
    fn the_version_header_and_the_config_agree() {
        assert!(crate::VERSION_ID.starts_with(&format!("{MATTERMOST_VERSION}.")));
    }

    #[test]
    fn only_the_old_format_is_served() {
        assert!(require_old_format(Some("format=old"), "x").is_ok());
        let refused = require_old_format(Some("format=new"), "x").unwrap_err();
        assert_eq!(refused.status, StatusCode::NOT_IMPLEMENTED);
        assert!(require_old_format(None, "x").is_err());
    }
}
