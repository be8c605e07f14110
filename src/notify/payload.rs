//! Mattermost's `PushNotification` JSON, built for one session: the message kinds `message`
//! (by contents mode) and `clear`, with the wording of Mattermost's English strings.

use super::rules::Send;
use super::settings::Contents;
use confab_storage::{Channel, ChannelType, Id, Post, User};
use serde::Serialize;

/// The proxy protocol's body. Field names and omissions as `model.PushNotification`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PushNotification {
    pub ack_id: String,
    pub platform: String,
    pub server_id: String,
    pub device_id: String,
    pub post_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub category: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sound: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub badge: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cont_ava: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub team_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub root_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel_name: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sender_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sender_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub override_username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub override_icon_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from_webhook: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    pub is_crt_enabled: bool,
    pub is_id_loaded: bool,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Mattermost's id for a new ack (26 characters).
fn new_ack_id() -> String {
    Id::from_bytes(rand::random::<[u8; 16]>()).to_base32()
}

/// Id text as Mattermost writes it: empty for none.
fn id_text(id: Id) -> String {
    if id.is_none() {
        String::new()
    } else {
        id.to_base32()
    }
}

/// Splits a session's `<platform>:<token>` device id on the first `:`.
pub fn split_device(device_id: &str) -> (String, String) {
    match device_id.split_once(':') {
        Some((platform, token)) => (platform.to_string(), token.to_string()),
        None => (String::new(), device_id.to_string()),
    }
}

/// Everything a `message` push says about a post, for one recipient.
pub struct MessageFacts<'a> {
    pub post: &'a Post,
    /// The post's text as a `full` push shows it ([`super::plain::push_text`]), made once per
    /// post rather than once per recipient.
    pub text: &'a str,
    pub channel: &'a Channel,
    pub sender: &'a User,
    pub recipient: Id,
    pub why: Send,
    pub crt: bool,
    pub badge: u64,
}

fn post_prop(post: &Post, key: &str) -> String {
    serde_json::from_str::<serde_json::Value>(&post.props)
        .ok()
        .and_then(|props| props.get(key).and_then(|v| v.as_str()).map(String::from))
        .unwrap_or_default()
}

/// A `message` push in `contents` mode (without the session's device fields).
pub fn message(contents: Contents, server_id: &str, facts: &MessageFacts) -> PushNotification {
    let post = facts.post;
    let channel = facts.channel;
    if contents == Contents::IdLoaded {
        return PushNotification {
            ack_id: new_ack_id(),
            server_id: server_id.to_string(),
            post_id: post.id.to_base32(),
            channel_id: channel.id.to_base32(),
            root_id: id_text(post.root_id),
            team_id: id_text(channel.team_id),
            category: "CAN_REPLY".into(),
            version: "v2".into(),
            kind: "message".into(),
            is_id_loaded: true,
            is_crt_enabled: facts.crt,
            // As Mattermost's source: the recipient, not the author.
            sender_id: facts.recipient.to_base32(),
            message: "You've received a new message.".into(),
            badge: facts.badge as i64,
            ..PushNotification::default()
        };
    }
    let sender_name = facts.sender.username.clone();
    let dm = channel.channel_type == ChannelType::Direct;
    let mut channel_name = match channel.channel_type {
        ChannelType::Direct => sender_name.clone(),
        _ => channel.display_name.clone(),
    };
    if facts.crt && !post.is_root() && contents != Contents::GenericNoChannel {
        channel_name = if dm {
            "Reply in Direct Message".into()
        } else {
            format!("Reply in {}", channel.display_name)
        };
    }
    if contents == Contents::GenericNoChannel && !dm {
        channel_name.clear();
    }
    PushNotification {
        ack_id: new_ack_id(),
        server_id: server_id.to_string(),
        post_id: post.id.to_base32(),
        category: "CAN_REPLY".into(),
        version: "v2".into(),
        kind: "message".into(),
        team_id: id_text(channel.team_id),
        channel_id: channel.id.to_base32(),
        root_id: id_text(post.root_id),
        channel_name,
        sender_id: post.user_id.to_base32(),
        message: text(contents, post, facts.text, &sender_name, dm, facts.why),
        sender_name,
        from_webhook: post_prop(post, "from_webhook"),
        badge: facts.badge as i64,
        is_crt_enabled: facts.crt,
        is_id_loaded: false,
        ..PushNotification::default()
    }
}

/// `getPushNotificationMessage`: in `full` mode the message with its Markdown stripped and its
/// attachments' fallbacks (`body`, from `plain::push_text`); a post of files alone "attached a
/// file".
fn text(contents: Contents, post: &Post, body: &str, sender: &str, dm: bool, why: Send) -> String {
    if contents == Contents::Full {
        if body.is_empty() && !post.file_ids.is_empty() {
            return if dm {
                "attached a file.".into()
            } else {
                format!("{sender} attached a file.")
            };
        }
        if dm && !why.crt_reply {
            return body.to_string();
        }
        return format!("{sender}: {body}");
    }
    if dm {
        if why.crt_reply {
            return format!("{sender} replied in a thread.");
        }
        return "sent you a message.".into();
    }
    if why.channel_wide {
        return format!("{sender} notified the channel.");
    }
    if why.explicit {
        return format!("{sender} mentioned you.");
    }
    if why.crt_reply {
        return format!("{sender} replied in a thread you're following.");
    }
    format!("{sender} posted a message.")
}

/// A `clear` push: the channel (or thread) was read elsewhere.
pub fn clear(server_id: &str, channel: Id, root: Id, badge: u64, crt: bool) -> PushNotification {
    PushNotification {
        ack_id: new_ack_id(),
        server_id: server_id.to_string(),
        kind: "clear".into(),
        version: "v2".into(),
        channel_id: channel.to_base32(),
        root_id: id_text(root),
        cont_ava: 1,
        badge: badge as i64,
        is_crt_enabled: crt,
        ..PushNotification::default()
    }
}

/// An `update_badge` push: the user's unread count changed without a new post (a post marked
/// unread), so their devices show the new badge, silently.
pub fn update_badge(server_id: &str, badge: u64) -> PushNotification {
    PushNotification {
        ack_id: new_ack_id(),
        server_id: server_id.to_string(),
        kind: "update_badge".into(),
        version: "v2".into(),
        sound: "none".into(),
        cont_ava: 1,
        badge: badge as i64,
        ..PushNotification::default()
    }
}

/// A `session` push: the session on this device expired (Mattermost's `NotifySessionsExpired`,
/// with the English text of `api.push_notifications.session.expired`).
pub fn session_expired(server_id: &str, site_name: &str, length_hours: f64) -> PushNotification {
    PushNotification {
        ack_id: new_ack_id(),
        server_id: server_id.to_string(),
        kind: "session".into(),
        version: "v2".into(),
        message: format!(
            "Session Expired: Please log in to continue receiving notifications. Sessions for \
             {site_name} are configured by your System Administrator to expire every \
             {length_hours} hours."
        ),
        ..PushNotification::default()
    }
}

/// Addresses a push to one session's device, with its own ack id.
pub fn for_device(mut push: PushNotification, device_id: &str) -> PushNotification {
    push.ack_id = new_ack_id();
    let (platform, token) = split_device(device_id);
    push.platform = platform;
    push.device_id = token;
    push
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_split_on_the_first_colon() {
        assert_eq!(
            split_device("android_rn-v2:abc:def"),
            ("android_rn-v2".to_string(), "abc:def".to_string())
        );
        assert_eq!(split_device("tok"), (String::new(), "tok".to_string()));
    }

    #[test]
    fn session_expired_says_where_and_how_long() {
        let push = for_device(session_expired("srv", "Acme", 720.0), "android_rn-v2:t");
        let json = serde_json::to_value(push).expect("json");
        assert_eq!(json["type"], "session");
        assert_eq!(json["version"], "v2");
        assert_eq!(json["device_id"], "t");
        assert_eq!(
            json["message"],
            "Session Expired: Please log in to continue receiving notifications. Sessions for \
             Acme are configured by your System Administrator to expire every 720 hours."
        );
        assert!(json.get("badge").is_none() && json.get("channel_id").is_none());
    }

    #[test]
    fn clear_omits_what_mattermost_omits() {
        let push = clear("srv", Id::from_bytes([1; 16]), Id::NONE, 0, false);
        let json = serde_json::to_value(for_device(push, "apple:t")).expect("json");
        assert_eq!(json["type"], "clear");
        assert_eq!(json["cont_ava"], 1);
        assert_eq!(json["post_id"], "");
        assert!(json.get("badge").is_none());
        assert!(json.get("root_id").is_none());
        assert_eq!(json["platform"], "apple");
        assert_eq!(json["is_crt_enabled"], false);
    }
}
