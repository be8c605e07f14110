//! Sidebar categories (`/users/{user_id}/teams/{team_id}/channels/categories`). The mobile app
//! lists channels only through `category.channel_ids` and shows an error screen when a team has
//! no categories, so every user has Mattermost's three defaults — Favorites (the channels with a
//! `favorite_channel` preference), Channels and Direct Messages (direct and group channels, in
//! every team) — until they arrange their own: custom categories, the order, sorting, muting,
//! collapsing and which channel sits where ([`confab_storage::sidebar`] stores the layout).
//!
//! A read lays the user's live channels over the stored layout: channels left drop out, channels
//! joined since go to their default category (on top when it is sorted by hand). A write reads
//! that view, changes it as asked and stores the whole layout in one command, which also keeps
//! the favourites preferences in step; the user's sockets get `sidebar_category_*` events.

use super::{created, ok, parse_body, status_ok, with_applied, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use confab_storage::sidebar::{
    CategoryKind, Sidebar, SidebarCategory, SidebarChange, Sorting, FAVORITE_CHANNEL,
};
use confab_storage::{Channel, Command, Id, Outcome};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

pub fn routes() -> Router<AppState> {
    let base = "/users/{user_id}/teams/{team_id}/channels/categories";
    Router::new()
        .route(
            base,
            get(categories).post(create_category).put(update_categories),
        )
        .route(&format!("{base}/order"), get(order).put(set_order))
        .route(
            &format!("{base}/{{category_id}}"),
            get(one_category)
                .put(update_category)
                .delete(delete_category),
        )
}

/// Mattermost's id of a default category: `{type}_{user_id}_{team_id}`.
fn default_id(kind: CategoryKind, user: Id, team: Id) -> String {
    format!("{}_{}_{}", kind.as_str(), views::id(user), views::id(team))
}

/// The three defaults, empty, in their default order.
fn defaults(user: Id, team: Id) -> Vec<SidebarCategory> {
    CategoryKind::DEFAULTS
        .iter()
        .map(|(kind, name, sorting)| SidebarCategory {
            id: default_id(*kind, user, team),
            kind: *kind,
            display_name: name.to_string(),
            sorting: *sorting,
            muted: false,
            collapsed: false,
            channel_ids: Vec::new(),
        })
        .collect()
}

/// What a read needs: the user's live channels in the team (with their direct and group
/// channels), their favourites and their stored layout — or `None` if they are not in the team.
struct Loaded {
    channels: Vec<Channel>,
    favorites: BTreeSet<Id>,
    stored: Option<Sidebar>,
}

fn load(r: &confab_storage::Reader, user: Id, team: Id) -> confab_storage::Result<Option<Loaded>> {
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
    let stored = r.sidebar(user, team)?;
    Ok(Some(Loaded {
        channels,
        favorites,
        stored,
    }))
}

/// The categories as the user sees them, in sidebar order, each listing its channels in the
/// order its sorting gives.
fn build(user: Id, team: Id, loaded: &Loaded) -> Vec<SidebarCategory> {
    let live: HashMap<Id, &Channel> = loaded.channels.iter().map(|c| (c.id, c)).collect();
    let mut categories = loaded
        .stored
        .as_ref()
        .map(|s| s.categories.clone())
        .unwrap_or_else(|| defaults(user, team));
    let mut placed = HashSet::new();
    for category in &mut categories {
        let favorites_only = category.kind == CategoryKind::Favorites;
        category.channel_ids.retain(|c| {
            live.contains_key(c)
                && loaded.favorites.contains(c) == favorites_only
                && placed.insert(*c)
        });
    }
    // Channels in no category yet (joined since, or never arranged) go to their default one.
    for channel in &loaded.channels {
        if placed.contains(&channel.id) {
            continue;
        }
        let kind = if loaded.favorites.contains(&channel.id) {
            CategoryKind::Favorites
        } else if channel.channel_type.is_teamless() {
            CategoryKind::DirectMessages
        } else {
            CategoryKind::Channels
        };
        if let Some(category) = categories.iter_mut().find(|c| c.kind == kind) {
            if category.sorting == Sorting::Manual {
                category.channel_ids.insert(0, channel.id);
            } else {
                category.channel_ids.push(channel.id);
            }
        }
    }
    for category in &mut categories {
        sort(category, &live);
    }
    categories
}

/// Orders a category's channels by its sorting: by hand as stored, most recent post first, or
/// by name (the default, except for direct messages, which default to most recent).
fn sort(category: &mut SidebarCategory, live: &HashMap<Id, &Channel>) {
    let recent = match category.sorting {
        Sorting::Manual => return,
        Sorting::Recent => true,
        Sorting::Alpha => false,
        Sorting::Default => category.kind == CategoryKind::DirectMessages,
    };
    let key = |id: &Id| live.get(id).copied();
    category.channel_ids.sort_by(|a, b| match (key(a), key(b)) {
        (Some(a), Some(b)) if recent => b.last_post_at.cmp(&a.last_post_at).then(a.id.cmp(&b.id)),
        (Some(a), Some(b)) => a
            .display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
            .then(a.name.cmp(&b.name)),
        _ => a.cmp(b),
    });
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "app.channel.sidebar_categories.app_error",
        "Unable to find the sidebar category.",
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("api.channel.sidebar_categories.app_error", message)
}

/// Resolves the path and reads the categories the caller may see.
async fn read(
    app: &AppState,
    caller: &Caller,
    user_id: &str,
    team_id: &str,
) -> ApiResult<(Id, Id, Vec<SidebarCategory>)> {
    let user = caller.resolve(user_id)?;
    caller.require_self_or_admin(user)?;
    let team = super::path_id(team_id, "team_id")?;
    let loaded = app.read(move |r| load(r, user, team)).await?;
    let loaded = loaded.ok_or_else(ApiError::forbidden)?;
    Ok((user, team, build(user, team, &loaded)))
}

/// Stores a changed layout; returns the index it applied at and what changed.
async fn store(
    app: &AppState,
    user: Id,
    team: Id,
    categories: Vec<SidebarCategory>,
) -> ApiResult<(u64, SidebarChange)> {
    let (index, outcome) = app
        .write(Command::SetSidebar {
            user_id: user,
            team_id: team,
            categories,
        })
        .await?;
    match outcome {
        Outcome::SidebarChanged(change) => Ok((index, *change)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

fn to_json(user: Id, team: Id, categories: &[SidebarCategory]) -> Vec<Value> {
    categories
        .iter()
        .enumerate()
        .map(|(position, c)| views::sidebar_category(user, team, position, c))
        .collect()
}

/// The stored categories with these ids, as JSON, in the order asked.
fn stored_json(change: &SidebarChange, ids: &[String]) -> Vec<Value> {
    ids.iter()
        .filter_map(|id| {
            let position = change.categories.iter().position(|c| &c.id == id)?;
            Some(views::sidebar_category(
                change.user_id,
                change.team_id,
                position,
                &change.categories[position],
            ))
        })
        .collect()
}

/// A category as a client sends it; absent fields keep their value.
#[derive(Deserialize)]
struct CategoryBody {
    #[serde(default)]
    id: String,
    display_name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    sorting: Option<String>,
    muted: Option<bool>,
    collapsed: Option<bool>,
    channel_ids: Option<Vec<String>>,
}

fn parse_channel_ids(ids: &[String]) -> ApiResult<Vec<Id>> {
    ids.iter()
        .map(|id| Id::parse(id).map_err(|_| ApiError::invalid_param("channel_ids")))
        .collect()
}

fn parse_sorting(sorting: Option<&str>) -> ApiResult<Option<Sorting>> {
    sorting
        .map(|s| Sorting::parse(s).ok_or_else(|| ApiError::invalid_param("sorting")))
        .transpose()
}

/// Puts `channels` in the category at `target`, taking them out of every other category.
fn move_channels(categories: &mut [SidebarCategory], target: usize, channels: Vec<Id>) {
    let moved: HashSet<Id> = channels.iter().copied().collect();
    for (i, category) in categories.iter_mut().enumerate() {
        if i != target {
            category.channel_ids.retain(|c| !moved.contains(c));
        }
    }
    categories[target].channel_ids = channels;
}

/// Applies a client's update to the category it names (its type never changes; only custom
/// categories are renamed; the Direct Messages category cannot be muted, as in Mattermost).
fn apply_update(categories: &mut [SidebarCategory], body: CategoryBody) -> ApiResult<()> {
    let index = categories
        .iter()
        .position(|c| c.id == body.id)
        .ok_or_else(not_found)?;
    let category = &mut categories[index];
    if let Some(kind) = body.kind.as_deref() {
        if !kind.is_empty() && CategoryKind::parse(kind) != Some(category.kind) {
            return Err(invalid("A category's type cannot change."));
        }
    }
    if let Some(name) = body.display_name {
        if category.kind == CategoryKind::Custom {
            category.display_name = name;
        }
    }
    if let Some(sorting) = parse_sorting(body.sorting.as_deref())? {
        category.sorting = sorting;
    }
    if let Some(muted) = body.muted {
        if muted && category.kind == CategoryKind::DirectMessages {
            return Err(invalid("The Direct Messages category cannot be muted."));
        }
        category.muted = muted;
    }
    if let Some(collapsed) = body.collapsed {
        category.collapsed = collapsed;
    }
    if let Some(ids) = body.channel_ids {
        let channels = parse_channel_ids(&ids)?;
        move_channels(categories, index, channels);
    }
    Ok(())
}

/// Refuses a layout the store would refuse, with the reason, before proposing it.
fn check(categories: &[SidebarCategory]) -> ApiResult<()> {
    confab_storage::sidebar::validate(categories).map_err(invalid)
}

/// GET …/categories → `{categories, order}`.
async fn categories(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (user, team, categories) = read(&app, &caller, &user_id, &team_id).await?;
    let order: Vec<&str> = categories.iter().map(|c| c.id.as_str()).collect();
    Ok(ok(
        json!({"categories": to_json(user, team, &categories), "order": order}),
    ))
}

/// GET …/categories/order → the category ids in sidebar order.
async fn order(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (_, _, categories) = read(&app, &caller, &user_id, &team_id).await?;
    Ok(ok(json!(categories
        .iter()
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>())))
}

/// GET …/categories/{category_id} → one category.
async fn one_category(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, category_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (user, team, categories) = read(&app, &caller, &user_id, &team_id).await?;
    let position = categories
        .iter()
        .position(|c| c.id == category_id)
        .ok_or_else(not_found)?;
    Ok(ok(views::sidebar_category(
        user,
        team,
        position,
        &categories[position],
    )))
}

/// POST …/categories `{display_name, channel_ids?, sorting?, muted?, collapsed?}` → 201 with
/// the new custom category, placed after Favorites when Favorites is first, else first.
async fn create_category(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: CategoryBody = parse_body(&body, "category")?;
    let (user, team, mut categories) = read(&app, &caller, &user_id, &team_id).await?;
    let display_name = body.display_name.unwrap_or_default();
    if display_name.trim().is_empty() {
        return Err(ApiError::invalid_param("display_name"));
    }
    let id = views::id(Id::from_bytes(rand::random()));
    let at = usize::from(categories.first().map(|c| c.kind) == Some(CategoryKind::Favorites));
    categories.insert(
        at,
        SidebarCategory {
            id: id.clone(),
            kind: CategoryKind::Custom,
            display_name,
            sorting: parse_sorting(body.sorting.as_deref())?.unwrap_or(Sorting::Default),
            muted: body.muted.unwrap_or(false),
            collapsed: body.collapsed.unwrap_or(false),
            channel_ids: Vec::new(),
        },
    );
    let channels = parse_channel_ids(&body.channel_ids.unwrap_or_default())?;
    move_channels(&mut categories, at, channels);
    check(&categories)?;
    let (index, change) = store(&app, user, team, categories).await?;
    let answer = stored_json(&change, &[id]).pop().ok_or_else(not_found)?;
    Ok(with_applied(created(answer), index))
}

/// PUT …/categories `[category…]` → the updated categories.
async fn update_categories(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let bodies: Vec<CategoryBody> = parse_body(&body, "categories")?;
    let (user, team, mut categories) = read(&app, &caller, &user_id, &team_id).await?;
    let ids: Vec<String> = bodies.iter().map(|b| b.id.clone()).collect();
    for body in bodies {
        apply_update(&mut categories, body)?;
    }
    check(&categories)?;
    let (index, change) = store(&app, user, team, categories).await?;
    Ok(with_applied(ok(json!(stored_json(&change, &ids))), index))
}

/// PUT …/categories/{category_id} `category` → the updated category.
async fn update_category(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, category_id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let mut body: CategoryBody = parse_body(&body, "category")?;
    if body.id.is_empty() {
        body.id = category_id.clone();
    } else if body.id != category_id {
        return Err(ApiError::invalid_param("category_id"));
    }
    let (user, team, mut categories) = read(&app, &caller, &user_id, &team_id).await?;
    apply_update(&mut categories, body)?;
    check(&categories)?;
    let (index, change) = store(&app, user, team, categories).await?;
    let answer = stored_json(&change, &[category_id])
        .pop()
        .ok_or_else(not_found)?;
    Ok(with_applied(ok(answer), index))
}

/// PUT …/categories/order `[id…]` (every category once) → the new order.
async fn set_order(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let wanted: Vec<String> = parse_body(&body, "order")?;
    let (user, team, categories) = read(&app, &caller, &user_id, &team_id).await?;
    let mut by_id: HashMap<String, SidebarCategory> =
        categories.into_iter().map(|c| (c.id.clone(), c)).collect();
    let count = by_id.len();
    let mut ordered = Vec::with_capacity(count);
    for id in &wanted {
        ordered.push(by_id.remove(id).ok_or_else(|| {
            invalid("The order must name every category of the team exactly once.")
        })?);
    }
    if !by_id.is_empty() {
        return Err(invalid(
            "The order must name every category of the team exactly once.",
        ));
    }
    let (index, change) = store(&app, user, team, ordered).await?;
    let order: Vec<&str> = change.categories.iter().map(|c| c.id.as_str()).collect();
    Ok(with_applied(ok(json!(order)), index))
}

/// DELETE …/categories/{category_id}: a custom category only; its channels go back to their
/// default categories.
async fn delete_category(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, category_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (user, team, mut categories) = read(&app, &caller, &user_id, &team_id).await?;
    let position = categories
        .iter()
        .position(|c| c.id == category_id)
        .ok_or_else(not_found)?;
    if categories[position].kind != CategoryKind::Custom {
        return Err(invalid("Only custom categories can be deleted."));
    }
    let removed = categories.remove(position);
    // Its channels go where a channel in no category goes: its default category.
    let teamless = app
        .read(move |r| {
            removed
                .channel_ids
                .iter()
                .map(|&id| {
                    Ok((
                        id,
                        r.channel(id)?.is_some_and(|c| c.channel_type.is_teamless()),
                    ))
                })
                .collect::<confab_storage::Result<Vec<(Id, bool)>>>()
        })
        .await?;
    for (channel, teamless) in teamless {
        let home = if teamless {
            CategoryKind::DirectMessages
        } else {
            CategoryKind::Channels
        };
        if let Some(category) = categories.iter_mut().find(|c| c.kind == home) {
            category.channel_ids.insert(0, channel);
        }
    }
    let (index, _) = store(&app, user, team, categories).await?;
    Ok(with_applied(status_ok(), index))
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
            wide_mentions: Default::default(),
            last_wide_mention_at: 0,
            next_post_number: None,
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
        let loaded = Loaded {
            channels: channels.to_vec(),
            favorites,
            stored: None,
        };
        let built = to_json(user, team, &build(user, team, &loaded));
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

#[cfg(test)]
mod layout_tests {
    use super::*;
    use confab_storage::ChannelType;

    fn channel(n: u8, kind: ChannelType, name: &str) -> Channel {
        Channel {
            id: Id::from_bytes([n; 16]),
            create_at: 1,
            update_at: 1,
            delete_at: 0,
            team_id: Id::NONE,
            channel_type: kind,
            display_name: name.into(),
            name: name.to_lowercase(),
            header: String::new(),
            purpose: String::new(),
            last_post_at: u64::from(n),
            last_root_post_at: u64::from(n),
            total_msg_count: 0,
            total_msg_count_root: 0,
            creator_id: Id::NONE,
            wide_mentions: Default::default(),
            last_wide_mention_at: 0,
            next_post_number: None,
        }
    }

    #[test]
    fn stored_layouts_meet_live_channels() {
        let (user, team) = (Id::from_bytes([1; 16]), Id::from_bytes([9; 16]));
        let c = |n: u8| Id::from_bytes([n; 16]);
        let mut stored = defaults(user, team);
        stored.insert(
            1,
            SidebarCategory {
                id: "mine".into(),
                kind: CategoryKind::Custom,
                display_name: "Mine".into(),
                sorting: Sorting::Manual,
                muted: false,
                collapsed: false,
                // 7 was left since; 3 became a favourite through the preference.
                channel_ids: vec![c(5), c(7), c(3), c(2)],
            },
        );
        let loaded = Loaded {
            channels: vec![
                channel(2, ChannelType::Open, "b"),
                channel(3, ChannelType::Open, "c"),
                channel(4, ChannelType::Direct, ""),
                channel(5, ChannelType::Private, "a"),
                channel(6, ChannelType::Open, "joined since"),
            ],
            favorites: BTreeSet::from([c(3)]),
            stored: Some(Sidebar { categories: stored }),
        };
        let built = build(user, team, &loaded);
        let ids: Vec<Vec<Id>> = built.iter().map(|k| k.channel_ids.clone()).collect();
        assert_eq!(built[1].id, "mine");
        assert_eq!(ids[0], vec![c(3)], "favourite by preference");
        assert_eq!(ids[1], vec![c(5), c(2)], "by hand, the left channel gone");
        assert_eq!(ids[2], vec![c(6)], "joined since: its default category");
        assert_eq!(ids[3], vec![c(4)]);
    }
}
