//! What integrations post: an incoming webhook's body, an outgoing webhook's reply and a slash
//! command's answer share these fields (Mattermost's `IncomingWebhookRequest`,
//! `OutgoingWebhookResponse` and `CommandResponse`), and become posts the same way.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A string field that may be `null` or absent (Slack payloads send both).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<Value>::deserialize(d)?
        .map(|v| match v {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        })
        .unwrap_or_default())
}

#[derive(Deserialize, Default, Debug, Clone)]
pub struct Message {
    #[serde(default, deserialize_with = "text")]
    pub text: String,
    #[serde(default, deserialize_with = "text")]
    pub username: String,
    #[serde(default, deserialize_with = "text")]
    pub icon_url: String,
    #[serde(default, deserialize_with = "text")]
    pub icon_emoji: String,
    #[serde(default, deserialize_with = "text")]
    pub channel: String,
    #[serde(default, deserialize_with = "text")]
    pub channel_id: String,
    #[serde(default)]
    pub props: Option<Map<String, Value>>,
    #[serde(default)]
    pub attachments: Option<Value>,
    #[serde(default, rename = "type", deserialize_with = "text")]
    pub post_type: String,
    #[serde(default, deserialize_with = "text")]
    pub response_type: String,
    #[serde(default, deserialize_with = "text")]
    pub goto_location: String,
    #[serde(default)]
    pub skip_slack_parsing: bool,
    #[serde(default)]
    pub extra_responses: Vec<Message>,
    #[serde(default)]
    pub priority: Option<Value>,
}

impl Message {
    /// Whether the message has anything to post.
    pub fn has_content(&self) -> bool {
        !self.text.is_empty() || self.has_attachments()
    }

    pub fn has_attachments(&self) -> bool {
        matches!(&self.attachments, Some(Value::Array(items)) if !items.is_empty())
    }

    /// `priority.priority`, which Mattermost requires when `priority` is present.
    pub fn priority(&self) -> Result<String, ()> {
        match &self.priority {
            None | Some(Value::Null) => Ok(String::new()),
            Some(p) => match p.get("priority").and_then(Value::as_str) {
                Some(level @ ("urgent" | "important" | "")) => Ok(level.to_string()),
                _ => Err(()),
            },
        }
    }
}

/// Parses a JSON message; like Mattermost, a body with raw newlines or tabs inside its strings
/// (common in shell-built payloads) is retried with them escaped.
pub fn parse_json(body: &[u8]) -> Result<Message, serde_json::Error> {
    match serde_json::from_slice(body) {
        Ok(message) => Ok(message),
        Err(first) => {
            let escaped = escape_controls_in_strings(body);
            serde_json::from_slice(&escaped).map_err(|_| first)
        }
    }
}

fn escape_controls_in_strings(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            match byte {
                b'\n' if !escaped => out.extend_from_slice(b"\\n"),
                b'\t' if !escaped => out.extend_from_slice(b"\\t"),
                b'\r' if !escaped => out.extend_from_slice(b"\\r"),
                _ => out.push(byte),
            }
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else {
            if byte == b'"' {
                in_string = true;
            }
            out.push(byte);
        }
    }
    out
}

/// Slack's `<url|text>` and `<url>` links as Markdown (Mattermost's `ExpandAnnouncement` and
/// link parsing); `<!channel>`-style mentions become `@channel`.
pub fn slack_to_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let inner = &rest[start + 1..start + len];
        out.push_str(&rest[..start]);
        if let Some(mention) = inner.strip_prefix('!') {
            out.push('@');
            out.push_str(mention.split('|').next().unwrap_or(mention));
        } else if inner.starts_with("http://")
            || inner.starts_with("https://")
            || inner.starts_with("mailto:")
        {
            match inner.split_once('|') {
                Some((url, label)) => out.push_str(&format!("[{label}]({url})")),
                None => out.push_str(inner),
            }
        } else {
            out.push_str(&rest[start..=start + len]);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Splits a long message into posts of at most `max` characters, as Mattermost does for
/// webhooks (at line breaks when it can).
pub fn split_message(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest: &str = text;
    while rest.chars().count() > max {
        let cut = rest
            .char_indices()
            .nth(max)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let head = &rest[..cut];
        let at = head.rfind('\n').filter(|&i| i > 0).unwrap_or(cut);
        parts.push(rest[..at].to_string());
        rest = rest[at..].trim_start_matches('\n');
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_like_mattermosts() {
        let m = parse_json(b"{\"text\":\"a\nb\",\"username\":null}").unwrap();
        assert_eq!((m.text.as_str(), m.username.as_str()), ("a\nb", ""));
        assert!(parse_json(b"{not json").is_err());
        assert_eq!(
            slack_to_markdown("see <https://x.io|X> and <https://y.io> <!channel>"),
            "see [X](https://x.io) and https://y.io @channel"
        );
        let parts = split_message(&"a".repeat(25), 10);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        let m = parse_json(br#"{"text":"x","priority":{"priority":"urgent"}}"#).unwrap();
        assert_eq!(m.priority(), Ok("urgent".into()));
        let m = parse_json(br#"{"text":"x","priority":{}}"#).unwrap();
        assert!(m.priority().is_err());
    }
}
