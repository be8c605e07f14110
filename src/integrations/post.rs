//! Turning an integration's [`Message`] into posts (or an ephemeral post), with Mattermost's
//! rules: `from_webhook`, username and icon overrides only behind their settings, Slack
//! attachments as `slack_attachment` posts, Slack links as Markdown, long texts split.

use super::message::{slack_to_markdown, split_message, Message};
use crate::app::App;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use confab_storage::{Command, Id, Outcome, Post, MAX_MESSAGE_CHARS};
use serde_json::{json, Map, Value};

/// Who posts, where, and the integration's own fallbacks.
pub struct Poster<'a> {
    pub user_id: Id,
    pub channel_id: Id,
    pub root_id: Option<Id>,
    /// Marks the post `from_webhook` (hooks always; commands when they override).
    pub from_webhook: bool,
    /// The hook's or command's configured username and icon, used when the message has none.
    pub fallback_username: &'a str,
    pub fallback_icon: &'a str,
    /// Incoming hooks answer `"webhook"` when no username is given at all.
    pub default_username: Option<&'a str>,
    /// Incoming hooks name themselves in `props.webhook_display_name`.
    pub webhook_display_name: Option<&'a str>,
}

/// The post type and props an integration message becomes.
pub fn post_shape(
    app: &App,
    who: &Poster<'_>,
    msg: &Message,
) -> ApiResult<(String, Map<String, Value>)> {
    if msg.post_type.starts_with("system_") {
        return Err(ApiError::bad_request(
            "api.context.invalid_param.app_error",
            "Integrations may not create system posts.",
        ));
    }
    let mut props = msg.props.clone().unwrap_or_default();
    let settings = &app.integrations;
    let mut overridden = false;
    if settings.enable_post_username_override {
        let name = [msg.username.as_str(), who.fallback_username]
            .into_iter()
            .find(|s| !s.is_empty())
            .or(who.default_username);
        if let Some(name) = name {
            props.insert("override_username".into(), json!(name));
            overridden = true;
        }
    }
    if settings.enable_post_icon_override {
        if let Some(icon) = [msg.icon_url.as_str(), who.fallback_icon]
            .into_iter()
            .find(|s| !s.is_empty())
        {
            props.insert("override_icon_url".into(), json!(icon));
            overridden = true;
        }
        if !msg.icon_emoji.is_empty() {
            props.insert("override_icon_emoji".into(), json!(msg.icon_emoji));
            overridden = true;
        }
    }
    if who.from_webhook || overridden {
        props.insert("from_webhook".into(), json!("true"));
    }
    if let Some(name) = who.webhook_display_name.filter(|n| !n.is_empty()) {
        props.insert("webhook_display_name".into(), json!(name));
    }
    let mut post_type = msg.post_type.clone();
    if msg.has_attachments() {
        props.insert(
            "attachments".into(),
            msg.attachments.clone().unwrap_or(Value::Null),
        );
        post_type = "slack_attachment".into();
    }
    Ok((post_type, props))
}

/// Posts the message (split if long); answers the applied index and the posts.
pub async fn post(app: &App, who: &Poster<'_>, msg: &Message) -> ApiResult<(u64, Vec<Post>)> {
    let (post_type, props) = post_shape(app, who, msg)?;
    let priority = msg.priority().map_err(|_| {
        ApiError::bad_request(
            "api.context.invalid_param.app_error",
            "priority.priority is required when priority is set.",
        )
    })?;
    let text = if msg.skip_slack_parsing {
        msg.text.clone()
    } else {
        slack_to_markdown(&msg.text)
    };
    let props = Value::Object(props).to_string();
    let mut posts = Vec::new();
    let mut last = 0;
    for part in split_message(&text, MAX_MESSAGE_CHARS) {
        let reach = app.channel_wide_reach(who.channel_id, &part).await?;
        let (index, outcome) = app
            .write(Command::CreatePost {
                id: Id::from_bytes(rand::random()),
                at: now_ms(),
                channel_id: who.channel_id,
                user_id: who.user_id,
                root_id: who.root_id,
                message: part,
                post_type: post_type.clone(),
                props: props.clone(),
                pending_post_id: String::new(),
                priority: priority.clone(),
                file_ids: Vec::new(),
                requested_ack: false,
                here_online: reach.here_online,
                channel_wide_ignored: reach.ignored,
            })
            .await?;
        last = index;
        if let Outcome::Posted(posted) = outcome {
            posts.push(posted.post);
        }
    }
    Ok((last, posts))
}

/// Sends `user` an ephemeral post in a channel (Mattermost's `SendEphemeralPost`): it is
/// stored nowhere; the user's connections on every node get an `ephemeral_message` event.
pub async fn ephemeral(
    app: &App,
    user: Id,
    channel_id: Id,
    root_id: Option<Id>,
    text: &str,
    props: Map<String, Value>,
) -> ApiResult<Post> {
    let at = now_ms();
    let post = Post {
        id: Id::from_bytes(rand::random()),
        create_at: at,
        update_at: at,
        edit_at: 0,
        delete_at: 0,
        is_pinned: false,
        user_id: user,
        channel_id,
        root_id: root_id.unwrap_or(Id::NONE),
        message: text.to_string(),
        post_type: "system_ephemeral".into(),
        props: Value::Object(props).to_string(),
        pending_post_id: String::new(),
        has_reactions: false,
        priority: String::new(),
        file_ids: Vec::new(),
        requested_ack: false,
        ack_count: 0,
        search_number: None,
    };
    app.write(Command::EphemeralPost {
        user_id: user,
        post: views::post_text(&post, None, views::PostParts::default()),
    })
    .await?;
    Ok(post)
}
