//! Channels, membership, read state (view, unread, set unread).

use super::channel_edits;
use super::{created, ok, parse_body, path_id, status_ok, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use confab_storage::{validate, Channel, ChannelType, Command, Id, Outcome, Reader};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha1::Digest;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels", post(create_channel))
        .route("/channels/direct", post(create_direct))
        .route("/channels/group", post(create_group))
        .route(
            "/channels/{channel_id}",
            get(get_channel)
                .delete(delete_channel)
                .put(channel_edits::update_channel),
        )
        .route(
            "/channels/{channel_id}/patch",
            put(channel_edits::patch_channel),
        )
        .route(
            "/channels/{channel_id}/restore",
            post(channel_edits::restore_channel),
        )
        .route(
            "/channels/{channel_id}/members",
            get(list_members).post(add_member),
        )
        .route(
            "/channels/{channel_id}/members/{user_id}",
            get(get_member).delete(remove_member),
        )
        .route("/channels/members/{user_id}/view", post(view_channel))
        .route("/teams/{team_id}/channels", get(public_channels))
        .route("/teams/{team_id}/channels/private", get(private_channels))
        .route(
            "/teams/{team_id}/channels/ids",
            post(public_channels_by_ids),
        )
        .route(
            "/teams/{team_id}/channels/name/{name}",
            get(channel_by_name),
        )
        .route(
            "/teams/name/{team_name}/channels/name/{name}",
            get(channel_by_team_and_name),
        )
        .route(
            "/users/{user_id}/teams/{team_id}/channels",
            get(channels_of_user),
        )
        .route(
            "/users/{user_id}/teams/{team_id}/channels/members",
            get(members_of_user),
        )
        .route(
            "/users/{user_id}/channels/{channel_id}/unread",
            get(channel_unread),
        )
        .route(
            "/users/{user_id}/posts/{post_id}/set_unread",
            post(set_unread),
        )
}

/// Who may read a channel: open channels are for the team's members; private, direct and group
/// channels only for their own members.
pub fn can_read_channel(
    r: &Reader,
    channel: &Channel,
    user: Id,
    admin: bool,
) -> confab_storage::Result<bool> {
    if r.is_channel_member(channel.id, user)? {
        return Ok(true);
    }
    Ok(channel.channel_type == ChannelType::Open
        && (admin || r.team_member(channel.team_id, user)?.is_some()))
}

/// The channel, if it exists and `user` may read it: 404 when missing, 403 when hidden.
pub fn readable_channel(
    r: &Reader,
    channel_id: Id,
    user: Id,
    admin: bool,
) -> confab_storage::Result<Result<Channel, ApiError>> {
    let Some(channel) = r.channel(channel_id)? else {
        return Ok(Err(ApiError::not_found("channel")));
    };
    if can_read_channel(r, &channel, user, admin)? {
        Ok(Ok(channel))
    } else {
        Ok(Err(ApiError::forbidden()))
    }
}

#[derive(Deserialize)]
struct NewChannel {
    team_id: String,
    name: String,
    display_name: String,
    #[serde(rename = "type", default)]
    channel_type: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    header: String,
}

async fn create_channel(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let new: NewChannel = parse_body(&body, "channel")?;
    let team_id = path_id(&new.team_id, "team_id")?;
    let channel_type = match new.channel_type.as_str() {
        "O" | "" => ChannelType::Open,
        "P" => ChannelType::Private,
        _ => {
            return Err(ApiError::bad_request(
                "model.channel.is_valid.type.app_error",
                "Invalid type.",
            ))
        }
    };
    let name = new.name.trim().to_lowercase();
    validate::channel_name(&name).map_err(|_| {
        ApiError::bad_request(
            "model.channel.is_valid.2_or_more.app_error",
            "Name must be 1–64 lowercase letters, digits, '-' or '_'.",
        )
    })?;
    let me = caller.id();
    let member = app.read(move |r| r.team_member(team_id, me)).await?;
    if member.is_none() && !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let (index, outcome) = app
        .write(Command::CreateChannel {
            id: Id::from_bytes(rand::random()),
            at: now_ms(),
            team_id,
            channel_type,
            name,
            display_name: new.display_name,
            purpose: new.purpose,
            header: new.header,
            creator_id: me,
        })
        .await?;
    match outcome {
        Outcome::ChannelCreated { channel, .. } => {
            Ok(with_applied(created(views::channel(&channel)), index))
        }
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

fn parse_user_ids(body: &[u8]) -> ApiResult<Vec<Id>> {
    let texts: Vec<String> = parse_body(body, "user ids")?;
    let mut ids = texts
        .iter()
        .map(|t| path_id(t, "user_id"))
        .collect::<ApiResult<Vec<Id>>>()?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

async fn direct_or_group(
    app: AppState,
    caller: Caller,
    users: Vec<Id>,
    channel_type: ChannelType,
) -> ApiResult<Response> {
    if !users.contains(&caller.id()) && !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let (index, channel, existed) =
        open_direct_or_group(&app, caller.id(), users, channel_type).await?;
    let body = views::channel(&channel);
    let response = if existed { ok(body) } else { created(body) };
    Ok(with_applied(response, index))
}

/// Creates (or finds) the direct or group channel of `users`; answers the applied index, the
/// channel and whether it existed. Mattermost derives both names from the ids as strings,
/// sorted as strings (the base32 alphabet does not keep the byte order): `a__b` for a DM, and
/// for a group the sha1 of the sorted ids concatenated with no separator. Clients compute these
/// names themselves.
pub async fn open_direct_or_group(
    app: &AppState,
    creator: Id,
    users: Vec<Id>,
    channel_type: ChannelType,
) -> ApiResult<(u64, Channel, bool)> {
    let mut texts: Vec<String> = users.iter().map(|u| u.to_base32()).collect();
    texts.sort();
    let name = match channel_type {
        ChannelType::Direct => {
            let first = texts
                .first()
                .cloned()
                .unwrap_or_else(|| creator.to_base32());
            let second = texts.get(1).cloned().unwrap_or_else(|| first.clone());
            format!("{first}__{second}")
        }
        _ => hex::encode(sha1::Sha1::digest(texts.concat().as_bytes())),
    };
    let (index, outcome) = app
        .write(Command::CreateDirectOrGroup {
            id: Id::from_bytes(rand::random()),
            at: now_ms(),
            channel_type,
            name,
            display_name: String::new(),
            members: users,
            creator_id: creator,
        })
        .await?;
    match outcome {
        Outcome::ChannelCreated {
            channel, existed, ..
        } => Ok((index, channel, existed)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

/// The direct channel of two users (created if needed).
pub async fn direct_channel(app: &AppState, a: Id, b: Id) -> ApiResult<Channel> {
    let users = if a == b { vec![a] } else { vec![a, b] };
    Ok(open_direct_or_group(app, a, users, ChannelType::Direct)
        .await?
        .1)
}

async fn create_direct(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let users = parse_user_ids(&body)?;
    if users.is_empty() || users.len() > 2 {
        return Err(ApiError::invalid_param("user_ids"));
    }
    direct_or_group(app, caller, users, ChannelType::Direct).await
}

async fn create_group(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let mut users = parse_user_ids(&body)?;
    if !users.contains(&caller.id()) {
        users.push(caller.id());
        users.sort();
    }
    if !(3..=8).contains(&users.len()) {
        return Err(ApiError::bad_request(
            "api.channel.create_group.bad_size.app_error",
            "Group messages must contain at least 3 and no more than 8 users.",
        ));
    }
    direct_or_group(app, caller, users, ChannelType::Group).await
}

async fn get_channel(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let channel = app
        .read(move |r| readable_channel(r, id, me, admin))
        .await??;
    Ok(ok(views::channel(&channel)))
}

async fn delete_channel(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let channel = app
        .read(move |r| readable_channel(r, id, me, admin))
        .await??;
    if channel.channel_type.is_teamless() {
        return Err(ApiError::bad_request(
            "api.channel.delete_channel.type.invalid",
            "Direct and group channels cannot be deleted.",
        ));
    }
    if channel.creator_id != me && !admin {
        return Err(ApiError::forbidden());
    }
    let (index, _) = app
        .write(Command::DeleteChannel {
            channel_id: id,
            at: now_ms(),
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

async fn channel_by_name(
    State(app): State<AppState>,
    caller: Caller,
    Path((team_id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let channel = app
        .read(move |r| match r.channel_by_name(team_id, &name)? {
            Some(channel) => readable_channel(r, channel.id, me, admin),
            None => Ok(Err(ApiError::not_found("channel"))),
        })
        .await??;
    Ok(ok(views::channel(&channel)))
}

async fn channel_by_team_and_name(
    State(app): State<AppState>,
    caller: Caller,
    Path((team_name, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (me, admin) = (caller.id(), caller.is_admin());
    let channel = app
        .read(move |r| {
            let Some(team) = r.team_by_name(&team_name)? else {
                return Ok(Err(ApiError::not_found("team")));
            };
            match r.channel_by_name(team.id, &name)? {
                Some(channel) => readable_channel(r, channel.id, me, admin),
                None => Ok(Err(ApiError::not_found("channel"))),
            }
        })
        .await??;
    Ok(ok(views::channel(&channel)))
}

async fn public_channels(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    let (page, per_page) = Params::parse(query.as_deref()).paging()?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let channels = app
        .read(move |r| {
            if !crate::api::teams::can_read_team(r, team_id, me, admin)? {
                return Ok(Err(ApiError::forbidden()));
            }
            Ok(Ok(r.team_channels(
                team_id,
                ChannelType::Open,
                page,
                per_page,
            )?))
        })
        .await??;
    Ok(ok(Value::Array(
        channels.iter().map(views::channel).collect(),
    )))
}

/// GET /teams/{team_id}/channels/private: the team's private channels, a page of them, for
/// system admins only (Mattermost's `manage_system`).
async fn private_channels(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let team_id = path_id(&team_id, "team_id")?;
    let (page, per_page) = Params::parse(query.as_deref()).paging()?;
    let channels = app
        .read(move |r| r.team_channels(team_id, ChannelType::Private, page, per_page))
        .await?;
    Ok(ok(Value::Array(
        channels.iter().map(views::channel).collect(),
    )))
}

/// Most ids one `POST /teams/{team_id}/channels/ids` may ask for.
const MAX_CHANNEL_IDS: usize = 1_000;

/// POST /teams/{team_id}/channels/ids `[channel_id…]`: those of the ids that are live open
/// channels of the team (Mattermost's `getPublicChannelsByIdsForTeam`); for team members.
async fn public_channels_by_ids(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    let ids: Vec<String> = parse_body(&body, "channel_ids")?;
    if ids.is_empty() || ids.len() > MAX_CHANNEL_IDS {
        return Err(ApiError::invalid_param("channel_ids"));
    }
    let ids = ids
        .iter()
        .map(|id| Id::parse(id).map_err(|_| ApiError::invalid_param("channel_id")))
        .collect::<ApiResult<Vec<Id>>>()?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let channels = app
        .read(move |r| {
            if !crate::api::teams::can_read_team(r, team_id, me, admin)? {
                return Ok(Err(ApiError::forbidden()));
            }
            let mut found = Vec::new();
            for id in ids {
                if let Some(channel) = r.channel(id)? {
                    let public = channel.channel_type == ChannelType::Open;
                    if public && channel.team_id == team_id && channel.delete_at == 0 {
                        found.push(channel);
                    }
                }
            }
            Ok(Ok(found))
        })
        .await??;
    Ok(ok(Value::Array(
        channels.iter().map(views::channel).collect(),
    )))
}

async fn list_members(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let (page, per_page) = Params::parse(query.as_deref()).paging()?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let members = app
        .read(move |r| {
            if let Err(e) = readable_channel(r, id, me, admin)? {
                return Ok(Err(e));
            }
            Ok(Ok(r.channel_members(id, page, per_page)?))
        })
        .await??;
    Ok(ok(Value::Array(
        members.iter().map(views::channel_member).collect(),
    )))
}

async fn get_member(
    State(app): State<AppState>,
    caller: Caller,
    Path((channel_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let user = caller.resolve(&user_id)?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let member = app
        .read(move |r| {
            if let Err(e) = readable_channel(r, id, me, admin)? {
                return Ok(Err(e));
            }
            Ok(r.channel_member(id, user)?
                .ok_or_else(|| ApiError::not_found("channel member")))
        })
        .await??;
    Ok(ok(views::channel_member(&member)))
}

#[derive(Deserialize)]
struct NewChannelMember {
    user_id: String,
}

pub async fn add_member(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let new: NewChannelMember = parse_body(&body, "channel member")?;
    let user = path_id(&new.user_id, "user_id")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let channel = app
        .read(move |r| readable_channel(r, id, me, admin))
        .await??;
    // Joining an open channel oneself needs only to see it; adding someone else, or to a private
    // channel, needs to be a member of it.
    if user != me || channel.channel_type != ChannelType::Open {
        let member = app.read(move |r| r.is_channel_member(id, me)).await?;
        if !member && !admin {
            return Err(ApiError::forbidden());
        }
    }
    let (index, outcome) = app
        .write(Command::AddChannelMember {
            channel_id: id,
            user_id: user,
            at: now_ms(),
        })
        .await?;
    match outcome {
        Outcome::ChannelMemberAdded { member, .. } => {
            Ok(with_applied(created(views::channel_member(&member)), index))
        }
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

pub async fn remove_member(
    State(app): State<AppState>,
    caller: Caller,
    Path((channel_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = path_id(&channel_id, "channel_id")?;
    let user = caller.resolve(&user_id)?;
    let (me, admin) = (caller.id(), caller.is_admin());
    app.read(move |r| readable_channel(r, id, me, admin))
        .await??;
    if user != me {
        let member = app.read(move |r| r.is_channel_member(id, me)).await?;
        if !member && !admin {
            return Err(ApiError::forbidden());
        }
    }
    let (index, _) = app
        .write(Command::RemoveChannelMember {
            channel_id: id,
            user_id: user,
            at: now_ms(),
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

#[derive(Deserialize)]
struct View {
    #[serde(default)]
    channel_id: String,
    #[serde(default)]
    collapsed_threads_supported: bool,
}

async fn view_channel(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let view: View = parse_body(&body, "view")?;
    if view.channel_id.is_empty() {
        // Viewing "no channel" (leaving the app) is accepted and changes nothing.
        return Ok(ok(json!({"status": "OK", "last_viewed_at_times": {}})));
    }
    let channel_id = path_id(&view.channel_id, "channel_id")?;
    let (index, outcome) = app
        .write(Command::ViewChannel {
            user_id: user,
            channel_id,
            at: now_ms(),
            collapsed_threads_supported: view.collapsed_threads_supported,
        })
        .await?;
    let Outcome::ChannelViewed { member, .. } = outcome else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    // Mattermost's SetActiveChannel: activity, and the channel the user looks at.
    app.presence.activity(user, Some(channel_id));
    let mut times = Map::new();
    times.insert(channel_id.to_base32(), json!(member.last_viewed_at));
    Ok(with_applied(
        ok(json!({"status": "OK", "last_viewed_at_times": times})),
        index,
    ))
}

async fn channels_of_user(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let team = path_id(&team_id, "team_id")?;
    let channels = app
        .read(move |r| r.channels_of_user_in_team(user, team))
        .await?;
    Ok(ok(Value::Array(
        channels
            .iter()
            .filter(|c| c.delete_at == 0)
            .map(views::channel)
            .collect(),
    )))
}

async fn members_of_user(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let team = path_id(&team_id, "team_id")?;
    let members = app
        .read(move |r| r.channel_members_of_user_in_team(user, team))
        .await?;
    Ok(ok(Value::Array(
        members.iter().map(views::channel_member).collect(),
    )))
}

async fn channel_unread(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, channel_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let channel = path_id(&channel_id, "channel_id")?;
    let unread = app
        .read(move |r| r.channel_unread(user, channel))
        .await?
        .ok_or_else(|| ApiError::not_found("channel member"))?;
    Ok(ok(views::channel_unread(&unread)))
}

#[derive(Deserialize, Default)]
struct SetUnread {
    #[serde(default)]
    collapsed_threads_supported: bool,
}

async fn set_unread(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, post_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let post_id = path_id(&post_id, "post_id")?;
    let options: SetUnread = if body.is_empty() {
        SetUnread::default()
    } else {
        parse_body(&body, "set unread")?
    };
    let (index, outcome) = app
        .write(Command::SetPostUnread {
            user_id: user,
            post_id,
            at: now_ms(),
            collapsed_threads: options.collapsed_threads_supported,
        })
        .await?;
    let Outcome::PostMarkedUnread {
        channel, member, ..
    } = outcome
    else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    let unread = confab_storage::ChannelUnread {
        team_id: channel.team_id,
        channel_id: channel.id,
        msg_count: channel.total_msg_count.saturating_sub(member.msg_count),
        msg_count_root: channel
            .total_msg_count_root
            .saturating_sub(member.msg_count_root),
        mention_count: member.mention_count,
        mention_count_root: member.mention_count_root,
        urgent_mention_count: member.urgent_mention_count,
    };
    let mut body = views::channel_unread(&unread);
    body["last_viewed_at"] = json!(member.last_viewed_at);
    Ok(with_applied(ok(body), index))
}
