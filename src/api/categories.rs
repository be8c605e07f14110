//! Sidebar categories (`/users/{user_id}/teams/{team_id}/channels/categories`), read side. The
//! mobile app lists channels only through `category.channel_ids` and shows an error screen when
//! a team has no categories, so every user gets Mattermost's three default categories, computed
//! from replicated state on each read: Favorites (the channels marked with a `favorite_channel`
//! preference, which is how Mattermost itself mirrors that category), Channels (the user's open
//! and private channels of the team) and Direct Messages (their direct and group channels, in
//! every team). Custom categories, reordering and collapsing are not stored yet.

use super::{ok, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use confab_storage::{Channel, Id};
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub fn routes() -> Router<AppState> {
    let base = "/users/{user_id}/teams/{team_id}/channels/categories";
    Router::new()
        .route(base, get(categories))
        .route(&format!("{base}/order"), get(order))
        .route(&format!("{base}/{{category_id}}"), get(one_category))
}

/// The preference category whose names are a user's favourite channels.
const FAVORITE_CHANNEL: &str = "favorite_channel";

/// The three default categories, in sidebar order: (type, display name, sorting).
const DEFAULTS: [(&str, &str, &str); 3] = [
    ("favorites", "Favorites", ""),
    ("channels", "Channels", ""),
    ("direct_messages", "Direct Messages", "recent"),
];

/// Mattermost's id of a default category: `{type}_{user_id}_{team_id}`.
fn category_id(kind: &str, user: Id, team: Id) -> String {
    format!("{kind}_{}_{}", views::id(user), views::id(team))
}

/// The user's live channels in the team (with their direct and group channels) and the ids of
/// their favourites, if the user is a member of the team.
fn load(
    r: &confab_storage::Reader,
    user: Id,
    team: Id,
) -> confab_storage::Result<Option<(Vec<Channel>, BTreeSet<Id>)>> {
    if r.team_member(team, user)?.is_none_or(|m| m.delete_at != 0) {
        return Ok(None);
    }
    let channels: Vec<Channel> = r
        .channels_of_user_in_team(user, team)?
        .into_iter()
        .filter(|c| c.delete_at == 0)
        .collect();
    let favorites = r
        .preferences_in_category(user, FAVORITE_CHANNEL)?
        .into_iter()
        .filter(|p| p.value == "true")
        .filter_map(|p| Id::parse(&p.name).ok())
        .collect();
    Ok(Some((channels, favorites)))
}

/// The categories as Mattermost's JSON, in order.
fn build(user: Id, team: Id, channels: &[Channel], favorites: &BTreeSet<Id>) -> Vec<Value> {
    let by_name = |list: &mut Vec<&Channel>| {
        list.sort_by(|a, b| {
            a.display_name
                .to_lowercase()
                .cmp(&b.display_name.to_lowercase())
                .then(a.name.cmp(&b.name))
        })
    };
    let mut favorite: Vec<&Channel> = channels
        .iter()
        .filter(|c| favorites.contains(&c.id))
        .collect();
    by_name(&mut favorite);
    let mut team_channels: Vec<&Channel> = channels
        .iter()
        .filter(|c| !favorites.contains(&c.id) && !c.channel_type.is_teamless())
        .collect();
    by_name(&mut team_channels);
    let mut direct: Vec<&Channel> = channels
        .iter()
        .filter(|c| !favorites.contains(&c.id) && c.channel_type.is_teamless())
        .collect();
    // Most recent conversation first, as the `recent` sorting shows them.
    direct.sort_by(|a, b| b.last_post_at.cmp(&a.last_post_at).then(a.id.cmp(&b.id)));
    let members = [favorite, team_channels, direct];
    DEFAULTS
        .iter()
        .zip(members)
        .enumerate()
        .map(|(position, ((kind, display_name, sorting), list))| {
            json!({
                "id": category_id(kind, user, team),
                "user_id": views::id(user),
                "team_id": views::id(team),
                "sort_order": position * 10,
                "sorting": sorting,
                "type": kind,
                "display_name": display_name,
                "muted": false,
                "collapsed": false,
                "channel_ids": list.iter().map(|c| views::id(c.id)).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Resolves the path and reads the categories the caller may see.
async fn read(
    app: &AppState,
    caller: &Caller,
    user_id: &str,
    team_id: &str,
) -> ApiResult<(Id, Id, Vec<Value>)> {
    let user = caller.resolve(user_id)?;
    caller.require_self_or_admin(user)?;
    let team = super::path_id(team_id, "team_id")?;
    let loaded = app.read(move |r| load(r, user, team)).await?;
    let (channels, favorites) = loaded.ok_or_else(ApiError::forbidden)?;
    Ok((user, team, build(user, team, &channels, &favorites)))
}

/// GET …/categories → `{categories, order}`.
async fn categories(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (_, _, categories) = read(&app, &caller, &user_id, &team_id).await?;
    let order: Vec<Value> = categories.iter().map(|c| c["id"].clone()).collect();
    Ok(ok(json!({"categories": categories, "order": order})))
}

/// GET …/categories/order → the category ids in sidebar order.
async fn order(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (_, _, categories) = read(&app, &caller, &user_id, &team_id).await?;
    Ok(ok(Value::Array(
        categories.iter().map(|c| c["id"].clone()).collect(),
    )))
}

/// GET …/categories/{category_id} → one category.
async fn one_category(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, category_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (_, _, categories) = read(&app, &caller, &user_id, &team_id).await?;
    categories
        .into_iter()
        .find(|c| c["id"] == category_id.as_str())
        .map(ok)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "app.channel.sidebar_categories.app_error",
                "Unable to find the sidebar category.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_storage::ChannelType;

    fn channel(n: u8, kind: ChannelType, name: &str, last_post_at: u64) -> Channel {
        Channel {
            id: Id::from_bytes([n; 16]),
            create_at: 1,
            update_at: 1,
            delete_at: 0,
            team_id: if kind.is_teamless() {
                Id::NONE
            } else {
                Id::from_bytes([9; 16])
            },
            channel_type: kind,
            display_name: name.into(),
            name: name.to_lowercase(),
            header: String::new(),
            purpose: String::new(),
            last_post_at,
            last_root_post_at: last_post_at,
            total_msg_count: 0,
            total_msg_count_root: 0,
            creator_id: Id::NONE,
        }
    }

    #[test]
    fn defaults_place_every_channel_once() {
        let (user, team) = (Id::from_bytes([1; 16]), Id::from_bytes([9; 16]));
        let channels = [
            channel(2, ChannelType::Open, "Town Square", 5),
            channel(3, ChannelType::Private, "alpha", 5),
            channel(4, ChannelType::Direct, "", 7),
            channel(5, ChannelType::Group, "", 9),
            channel(6, ChannelType::Open, "Off-Topic", 5),
        ];
        let favorites = BTreeSet::from([Id::from_bytes([6; 16])]);
        let built = build(user, team, &channels, &favorites);
        let ids = |n: usize| built[n]["channel_ids"].clone();
        let id = |n: u8| Value::from(views::id(Id::from_bytes([n; 16])));
        assert_eq!(built[0]["type"], "favorites");
        assert_eq!(ids(0), json!([id(6)]));
        assert_eq!(ids(1), json!([id(3), id(2)]), "by display name");
        assert_eq!(ids(2), json!([id(5), id(4)]), "most recent first");
        assert_eq!(
            built[2]["id"],
            format!("direct_messages_{}_{}", views::id(user), views::id(team))
        );
    }
}
