//! The built-in slash commands people type every day. Each does what the matching REST route
//! does by calling that route's own handler (joining is `POST /channels/{id}/members`, `/away`
//! is `PUT /users/me/status`…), so permissions and effects cannot drift apart. Errors come back
//! as ephemeral text, as Mattermost's built-ins answer them.

use super::{AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::integrations::message::Message;
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, State};
use confab_storage::{Channel, ChannelType, Id};
use serde_json::json;

/// Built-in triggers with their autocomplete hint and description (Mattermost's texts).
pub const BUILTINS: &[(&str, &str, &str)] = &[
    ("away", "", "Set your status away"),
    ("dnd", "", "Do not disturb disables desktop and mobile push notifications."),
    ("echo", "'message' [delay in seconds]", "Echo back text from your account"),
    ("header", "[text]", "Edit the channel header"),
    ("invite", "@[username] ~[channel]", "Invite a user to a channel"),
    ("join", "~[channel]", "Join the open channel"),
    ("leave", "", "Leave the current channel"),
    ("me", "[message]", "Do an action"),
    ("msg", "@[username] [message]", "Send Direct Message to a user"),
    (
        "mute",
        "~[channel]",
        "Turns off desktop, email and push notifications for the current channel or the [channel] specified.",
    ),
    ("offline", "", "Set your status offline"),
    ("online", "", "Set your status online"),
    ("purpose", "[text]", "Edit the channel purpose"),
    ("search", "[text]", "Search text in messages"),
    ("shrug", "[message]", "Adds ¯\\_(ツ)_/¯ to your message"),
];

/// Where and by whom a command runs.
pub struct Context {
    pub app: AppState,
    pub caller: Caller,
    pub channel: Channel,
    /// The channel's team, or the one the client named for a direct or group channel.
    pub team_id: Id,
    pub root_id: Option<Id>,
}

fn in_channel(text: String, post_type: &str) -> Message {
    Message {
        response_type: "in_channel".into(),
        text,
        post_type: post_type.into(),
        ..Message::default()
    }
}

fn ephemeral(text: impl Into<String>) -> Message {
    Message {
        response_type: "ephemeral".into(),
        text: text.into(),
        ..Message::default()
    }
}

/// Runs a built-in; a refused action is an ephemeral answer, not an HTTP error.
pub async fn run(cx: &Context, trigger: &str, text: &str) -> ApiResult<Message> {
    match run_inner(cx, trigger, text).await {
        Ok(message) => Ok(message),
        Err(e) if e.status.is_client_error() => Ok(ephemeral(e.message)),
        Err(e) => Err(e),
    }
}

async fn run_inner(cx: &Context, trigger: &str, text: &str) -> ApiResult<Message> {
    match trigger {
        "me" => Ok(in_channel(format!("*{text}*"), "me")),
        "shrug" => {
            let shrug = r"¯\\\_(ツ)\_/¯";
            Ok(in_channel(
                if text.is_empty() {
                    shrug.to_string()
                } else {
                    format!("{text} {shrug}")
                },
                "",
            ))
        }
        "echo" => {
            let message = unquote(text);
            if message.is_empty() {
                return Ok(ephemeral(
                    "A message must be provided with the /echo command.",
                ));
            }
            Ok(in_channel(message, ""))
        }
        "away" | "online" | "offline" | "dnd" => set_status(cx, trigger).await,
        "join" => join(cx, text).await,
        "leave" => leave(cx).await,
        "msg" => direct_message(cx, text).await,
        "invite" => invite(cx, text).await,
        "header" | "purpose" => edit_channel(cx, trigger, text).await,
        "mute" => mute(cx, text).await,
        "search" => search(cx, text).await,
        _ => Err(ApiError::not_found("command")),
    }
}

/// `'message' 5` → `message` (the delay is not supported; the text is posted at once).
fn unquote(text: &str) -> String {
    let text = text.trim();
    for quote in ['"', '\''] {
        if let Some(rest) = text.strip_prefix(quote) {
            if let Some(end) = rest.rfind(quote) {
                return rest[..end].to_string();
            }
        }
    }
    text.to_string()
}

async fn set_status(cx: &Context, status: &str) -> ApiResult<Message> {
    let body = json!({"user_id": views::id(cx.caller.id()), "status": status}).to_string();
    super::status::update_status(
        State(cx.app.clone()),
        cx.caller.clone(),
        Path("me".to_string()),
        Bytes::from(body),
    )
    .await?;
    Ok(ephemeral(match status {
        "dnd" => "Do Not Disturb is enabled. You will not receive desktop or mobile push notifications until Do Not Disturb is turned off.",
        "away" => "You are now away",
        "offline" => "You are now offline",
        _ => "You are now online",
    }))
}

/// A channel of the command's team named `~name` or `name`.
async fn team_channel(cx: &Context, name: &str) -> ApiResult<Channel> {
    let name = name.trim().trim_start_matches('~').to_lowercase();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "api.command_channel.missing.app_error",
            "A channel name must be given.",
        ));
    }
    let team = cx.team_id;
    cx.app
        .read(move |r| r.channel_by_name(team, &name))
        .await?
        .filter(|c| c.delete_at == 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "api.command_join.list.app_error",
                "We couldn't find the channel.",
            )
        })
}

async fn team_name(cx: &Context) -> ApiResult<String> {
    let team = cx.team_id;
    cx.app
        .read(move |r| Ok(r.team(team)?.map(|t| t.name).unwrap_or_default()))
        .await
}

async fn join(cx: &Context, text: &str) -> ApiResult<Message> {
    let channel = team_channel(cx, text).await?;
    let body = json!({"user_id": views::id(cx.caller.id())}).to_string();
    super::channels::add_member(
        State(cx.app.clone()),
        cx.caller.clone(),
        Path(views::id(channel.id)),
        Bytes::from(body),
    )
    .await?;
    Ok(Message {
        goto_location: format!("/{}/channels/{}", team_name(cx).await?, channel.name),
        ..Message::default()
    })
}

async fn leave(cx: &Context) -> ApiResult<Message> {
    if !matches!(
        cx.channel.channel_type,
        ChannelType::Open | ChannelType::Private
    ) {
        return Ok(ephemeral("You can't leave a direct message channel."));
    }
    super::channels::remove_member(
        State(cx.app.clone()),
        cx.caller.clone(),
        Path((views::id(cx.channel.id), "me".to_string())),
    )
    .await?;
    Ok(Message {
        goto_location: format!("/{}/channels/town-square", team_name(cx).await?),
        ..Message::default()
    })
}

/// `@name rest` → the user and the rest.
async fn named_user(cx: &Context, text: &str) -> ApiResult<(confab_storage::User, String)> {
    let text = text.trim();
    let (name, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let name = name.trim_start_matches('@').to_lowercase();
    let user = cx
        .app
        .read(move |r| r.user_by_username(&name))
        .await?
        .filter(|u| u.delete_at == 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "api.command_msg.missing.app_error",
                "We couldn't find the user.",
            )
        })?;
    Ok((user, rest.trim().to_string()))
}

async fn direct_message(cx: &Context, text: &str) -> ApiResult<Message> {
    let (user, message) = named_user(cx, text).await?;
    let channel = super::channels::direct_channel(&cx.app, cx.caller.id(), user.id).await?;
    if !message.is_empty() {
        let body = json!({"channel_id": views::id(channel.id), "message": message}).to_string();
        super::posts::create_post(State(cx.app.clone()), cx.caller.clone(), Bytes::from(body))
            .await?;
    }
    Ok(Message {
        goto_location: format!("/{}/messages/@{}", team_name(cx).await?, user.username),
        ..Message::default()
    })
}

async fn invite(cx: &Context, text: &str) -> ApiResult<Message> {
    let (user, rest) = named_user(cx, text).await?;
    let channel = if rest.is_empty() {
        cx.channel.clone()
    } else {
        team_channel(cx, &rest).await?
    };
    let body = json!({"user_id": views::id(user.id)}).to_string();
    super::channels::add_member(
        State(cx.app.clone()),
        cx.caller.clone(),
        Path(views::id(channel.id)),
        Bytes::from(body),
    )
    .await?;
    Ok(ephemeral(format!(
        "{} added to {} channel.",
        user.username, channel.display_name
    )))
}

async fn edit_channel(cx: &Context, field: &str, text: &str) -> ApiResult<Message> {
    if text.is_empty() {
        return Ok(ephemeral(format!(
            "Please set the {field} with /{field} [text]."
        )));
    }
    let body = json!({ field: text }).to_string();
    super::channel_edits::patch_channel(
        State(cx.app.clone()),
        cx.caller.clone(),
        Path(views::id(cx.channel.id)),
        Bytes::from(body),
    )
    .await?;
    Ok(Message::default())
}

/// Toggles the caller's `mark_unread` between `mention` (muted) and `all`.
async fn mute(cx: &Context, text: &str) -> ApiResult<Message> {
    let channel = if text.trim().is_empty() {
        cx.channel.clone()
    } else {
        team_channel(cx, text).await?
    };
    let (channel_id, me) = (channel.id, cx.caller.id());
    let member = cx
        .app
        .read(move |r| r.channel_member(channel_id, me))
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "api.command_mute.not_member.error",
                format!("You're not a member of {}.", channel.display_name),
            )
        })?;
    let muted = member.notify_props.get("mark_unread").map(String::as_str) == Some("mention");
    let body = json!({"mark_unread": if muted { "all" } else { "mention" }}).to_string();
    super::notifications::update_channel_notify_props(
        State(cx.app.clone()),
        cx.caller.clone(),
        Path((views::id(channel_id), "me".to_string())),
        Bytes::from(body),
    )
    .await?;
    Ok(ephemeral(if muted {
        format!("Notifications have been restored for ~{}.", channel.name)
    } else {
        format!(
            "You will not receive notifications for ~{} until channel mute is turned off.",
            channel.name
        )
    }))
}

async fn search(cx: &Context, text: &str) -> ApiResult<Message> {
    if text.trim().is_empty() {
        return Ok(ephemeral("Enter the words to search for: /search [text]."));
    }
    let team = (!cx.team_id.is_none()).then_some(cx.team_id);
    let query = super::search::terms_search(text, cx.caller.id(), team, 10)?;
    let found = cx.app.read(move |r| r.search_posts(&query)).await?;
    let shown: Vec<_> = found
        .page
        .order
        .iter()
        .filter_map(|id| found.page.posts.iter().find(|p| p.id == *id))
        .collect();
    if shown.is_empty() {
        return Ok(ephemeral(format!(
            "No results found for \"{}\".",
            text.trim()
        )));
    }
    let mut lines = vec![format!("Search results for \"{}\":", text.trim())];
    lines.extend(shown.iter().map(|p| {
        let first = p.message.lines().next().unwrap_or("");
        format!("> {first}")
    }));
    Ok(ephemeral(lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn echo_takes_the_quoted_message() {
        assert_eq!(unquote("'hello there' 5"), "hello there");
        assert_eq!(unquote("\"hi\""), "hi");
        assert_eq!(unquote("plain words"), "plain words");
    }
}
