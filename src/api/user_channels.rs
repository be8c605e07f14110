//! A user's channels across all their teams, as the web app loads its sidebar: every channel,
//! every channel membership, and unread totals per team (the team switcher's marks).

use super::users::user_view;
use super::{ok, parse_body, path_id, AppState, Caller, Params};
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use confab_storage::{ChannelType, Id};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/channels", get(all_channels))
        .route("/users/{user_id}/channel_members", get(all_channel_members))
        .route("/users/{user_id}/teams/unread", get(teams_unread))
        .route("/users/group_channels", post(group_channel_members))
}

/// `GET /users/{id}/channels`: every channel of the user in every team, direct and group
/// channels included; archived ones only with `include_deleted=true`.
async fn all_channels(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let include_deleted = Params::parse(query.as_deref()).bool("include_deleted");
    let channels = app
        .read(move |r| {
            let mut channels = Vec::new();
            for (_, id) in r.channel_ids_of_user(user)? {
                channels.extend(r.channel(id)?);
            }
            Ok::<_, confab_storage::StorageError>(channels)
        })
        .await?;
    Ok(ok(Value::Array(
        channels
            .iter()
            .filter(|c| include_deleted || c.delete_at == 0)
            .map(views::channel)
            .collect(),
    )))
}

/// `GET /users/{id}/channel_members`: the user's read state in every channel, paged
/// (`page`, `per_page` up to 200, as the other member lists).
async fn all_channel_members(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let params = Params::parse(query.as_deref());
    let (page, per_page) = match params.get("per_page") {
        // Without paging the web app expects all of them.
        None => (0, usize::MAX),
        Some(_) => params.paging()?,
    };
    let members = app
        .read(move |r| {
            let mut members = Vec::new();
            let ids = r.channel_ids_of_user(user)?;
            for (_, id) in ids
                .into_iter()
                .skip(page.saturating_mul(per_page))
                .take(per_page)
            {
                members.extend(r.channel_member(id, user)?);
            }
            Ok::<_, confab_storage::StorageError>(members)
        })
        .await?;
    Ok(ok(Value::Array(
        members.iter().map(views::channel_member).collect(),
    )))
}

/// Unread totals of one team, summed over the user's channels in it.
#[derive(Default)]
struct TeamUnread {
    msg_count: u64,
    msg_count_root: u64,
    mention_count: u64,
    mention_count_root: u64,
    urgent_mention_count: u64,
}

/// `GET /users/{id}/teams/unread` (`exclude_team`, `include_collapsed_threads`): per team, the
/// unread messages and mentions of the user's channels in it (O(1) each: channel totals minus
/// the member's counts) and, with collapsed threads, their unread threads and thread mentions.
async fn teams_unread(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let params = Params::parse(query.as_deref());
    let exclude = params.id("exclude_team")?;
    let threads = params.bool("include_collapsed_threads");
    let answer = app
        .read(move |r| {
            let mut by_team: BTreeMap<Id, TeamUnread> = r
                .teams_of_user(user)?
                .into_iter()
                .filter(|t| Some(t.id) != exclude && t.delete_at == 0)
                .map(|t| (t.id, TeamUnread::default()))
                .collect();
            for (team, channel) in r.channel_ids_of_user(user)? {
                let Some(totals) = by_team.get_mut(&team) else {
                    continue;
                };
                if let Some(unread) = r.channel_unread(user, channel)? {
                    totals.msg_count += unread.msg_count;
                    totals.msg_count_root += unread.msg_count_root;
                    totals.mention_count += unread.mention_count;
                    totals.mention_count_root += unread.mention_count_root;
                    totals.urgent_mention_count += unread.urgent_mention_count;
                }
            }
            let mut answer = Vec::with_capacity(by_team.len());
            for (team, totals) in by_team {
                let (thread_count, thread_mentions, thread_urgent) = if threads {
                    let list = r.thread_totals(user, team)?;
                    (
                        list.total_unread_threads,
                        list.total_unread_mentions,
                        list.total_unread_urgent_mentions,
                    )
                } else {
                    (0, 0, 0)
                };
                answer.push(json!({
                    "team_id": views::id(team),
                    "msg_count": totals.msg_count,
                    "msg_count_root": totals.msg_count_root,
                    "mention_count": totals.mention_count,
                    "mention_count_root": totals.mention_count_root,
                    "urgent_mention_count": totals.urgent_mention_count,
                    "thread_count": thread_count,
                    "thread_mention_count": thread_mentions,
                    "thread_urgent_mention_count": thread_urgent,
                }));
            }
            Ok::<_, confab_storage::StorageError>(Value::Array(answer))
        })
        .await?;
    Ok(ok(answer))
}

/// At most this many group channels per `POST /users/group_channels`.
const MAX_GROUP_CHANNELS: usize = 100;
/// A group channel has at most 8 members (Mattermost's limit).
const GROUP_MEMBERS: usize = 8;

/// `POST /users/group_channels`: for each group channel the caller belongs to, its members (the
/// apps name group messages after them). Others are left out.
async fn group_channel_members(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let texts: Vec<String> = parse_body(&body, "group channel ids")?;
    if texts.len() > MAX_GROUP_CHANNELS {
        return Err(ApiError::invalid_param("group_channel_ids"));
    }
    let ids = texts
        .iter()
        .map(|t| path_id(t, "group_channel_ids"))
        .collect::<ApiResult<Vec<Id>>>()?;
    let me = caller.id();
    let groups = app
        .read(move |r| {
            let mut groups = Vec::new();
            for id in ids {
                let Some(channel) = r.channel(id)? else {
                    continue;
                };
                if channel.channel_type != ChannelType::Group || !r.is_channel_member(id, me)? {
                    continue;
                }
                let mut users = Vec::new();
                for member in r.channel_members(id, 0, GROUP_MEMBERS + 1)? {
                    users.extend(r.user(member.user_id)?);
                }
                groups.push((id, users));
            }
            Ok::<_, confab_storage::StorageError>(groups)
        })
        .await?;
    let answer: serde_json::Map<String, Value> = groups
        .iter()
        .map(|(id, users)| {
            (
                views::id(*id),
                Value::Array(users.iter().map(|u| user_view(&caller, u)).collect()),
            )
        })
        .collect();
    Ok(ok(Value::Object(answer)))
}
