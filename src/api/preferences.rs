//! Preferences (`/users/{user_id}/preferences…`) and the saved posts they hold
//! (`/users/{user_id}/posts/flagged`). The apps load every preference at login (fatal for the
//! mobile app) and write them as the user changes settings, saves a post or shows a DM. Only
//! the user or a system admin may read or change a user's preferences, as in Mattermost.

use super::channels::can_read_channel;
use super::posts::page_json;
use super::{ok, ok_bytes, parse_body, status_ok, with_applied, AppState, Caller, Params};
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use confab_storage::preferences::{self, FLAGGED_POST_CATEGORY};
use confab_storage::{Command, Id, Outcome, PostPage, Reader};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/users/{user_id}/preferences",
            get(all_preferences).put(save_preferences),
        )
        .route(
            "/users/{user_id}/preferences/delete",
            post(delete_preferences),
        )
        .route(
            "/users/{user_id}/preferences/{category}",
            get(category_preferences),
        )
        .route(
            "/users/{user_id}/preferences/{category}/name/{name}",
            get(one_preference),
        )
        .route("/users/{user_id}/posts/flagged", get(flagged_posts))
}

/// A preference as clients send it; a missing field is empty, as Mattermost decodes it.
#[derive(Deserialize)]
struct PreferenceBody {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

/// The user a `{user_id}` path names, if the caller may act for them.
fn target(caller: &Caller, user_id: &str) -> ApiResult<Id> {
    let user = caller.resolve(user_id)?;
    caller.require_self_or_admin(user)?;
    Ok(user)
}

/// Path categories and names are Mattermost's `[A-Za-z0-9_]+`.
fn path_word(text: &str, name: &str) -> ApiResult<()> {
    let ok = !text.is_empty()
        && text.len() <= preferences::MAX_PREFERENCE_KEY_BYTES
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_param(name))
    }
}

/// Parses a list of preferences for `user`: each must name that user (Mattermost's rule: an
/// admin writes another user's preferences through that user's path and ids).
fn parse_list(body: &[u8], user: Id, refusal: &'static str) -> ApiResult<Vec<PreferenceBody>> {
    let list: Vec<PreferenceBody> = parse_body(body, "preferences")?;
    preferences::validate_count(list.len())?;
    for item in &list {
        if Id::parse(&item.user_id).ok() != Some(user) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                refusal,
                "Unable to change the preferences of another user.",
            ));
        }
    }
    Ok(list)
}

async fn all_preferences(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user = target(&caller, &user_id)?;
    let list = app.read(move |r| r.preferences(user)).await?;
    Ok(ok(views::preferences(&list)))
}

/// A category with no preferences is a 404, as in Mattermost.
async fn category_preferences(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, category)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = target(&caller, &user_id)?;
    path_word(&category, "category")?;
    let list = app
        .read(move |r| r.preferences_in_category(user, &category))
        .await?;
    if list.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "api.preference.preferences_category.get.app_error",
            "Unable to find preferences in this category.",
        ));
    }
    Ok(ok(views::preferences(&list)))
}

async fn one_preference(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, category, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let user = target(&caller, &user_id)?;
    path_word(&category, "category")?;
    path_word(&name, "preference_name")?;
    let found = app
        .read(move |r| r.preference(user, &category, &name))
        .await?;
    match found {
        Some(preference) => Ok(ok(views::preference(&preference))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "app.preference.get.app_error",
            "Unable to find the preference.",
        )),
    }
}

/// Saving a post (`flagged_post`) needs the post to exist and the caller to be able to read it.
fn check_flagged(
    r: &Reader,
    name: &str,
    me: Id,
    admin: bool,
) -> confab_storage::Result<ApiResult<()>> {
    let Ok(post_id) = Id::parse(name) else {
        return Ok(Err(ApiError::invalid_param("preference.name")));
    };
    let Some(post) = r.post(post_id)?.filter(|p| p.delete_at == 0) else {
        return Ok(Err(ApiError::invalid_param("preference.name")));
    };
    let Some(channel) = r.channel(post.channel_id)? else {
        return Ok(Err(ApiError::invalid_param("preference.name")));
    };
    if can_read_channel(r, &channel, me, admin)? {
        Ok(Ok(()))
    } else {
        Ok(Err(ApiError::forbidden()))
    }
}

/// PUT /users/{user_id}/preferences `[{user_id, category, name, value}]` → `{"status":"OK"}`;
/// the user's sockets get `preferences_changed`.
async fn save_preferences(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = target(&caller, &user_id)?;
    let list = parse_list(
        &body,
        user,
        "api.preference.update_preferences.set.app_error",
    )?;
    for item in &list {
        preferences::validate(&item.category, &item.name, &item.value)?;
    }
    let flagged: Vec<String> = list
        .iter()
        .filter(|p| p.category == FLAGGED_POST_CATEGORY)
        .map(|p| p.name.clone())
        .collect();
    if !flagged.is_empty() {
        let (me, admin) = (caller.id(), caller.is_admin());
        app.read(move |r| {
            for name in &flagged {
                if let Err(e) = check_flagged(r, name, me, admin)? {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(()))
        })
        .await??;
    }
    if list.is_empty() {
        return Ok(status_ok());
    }
    let (index, outcome) = app
        .write(Command::SavePreferences {
            user_id: user,
            preferences: list
                .into_iter()
                .map(|p| (p.category, p.name, p.value))
                .collect(),
        })
        .await?;
    match outcome {
        Outcome::PreferencesSaved { .. } => Ok(with_applied(status_ok(), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

/// POST /users/{user_id}/preferences/delete `[{user_id, category, name}]` → `{"status":"OK"}`;
/// the user's sockets get `preferences_deleted` with those that existed.
async fn delete_preferences(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let user = target(&caller, &user_id)?;
    let list = parse_list(
        &body,
        user,
        "api.preference.delete_preferences.delete.app_error",
    )?;
    for item in &list {
        preferences::validate_key(&item.category, &item.name)?;
    }
    if list.is_empty() {
        return Ok(status_ok());
    }
    let (index, outcome) = app
        .write(Command::DeletePreferences {
            user_id: user,
            keys: list.into_iter().map(|p| (p.category, p.name)).collect(),
        })
        .await?;
    match outcome {
        Outcome::PreferencesDeleted { .. } => Ok(with_applied(status_ok(), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

/// GET /users/{user_id}/posts/flagged `?team_id=&channel_id=&page=&per_page=`: the user's saved
/// posts they can still read, newest first. Costs one lookup per saved post of the user (the
/// `flagged_post` category is the index), never a scan of posts.
async fn flagged_posts(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let user = target(&caller, &user_id)?;
    let params = Params::parse(query.as_deref());
    let (page, per_page) = params.paging()?;
    let in_channel = params.id("channel_id")?;
    let in_team = params.id("team_id")?;
    let body = app
        .read(move |r| {
            let mut posts = Vec::new();
            for saved in r.preferences_in_category(user, FLAGGED_POST_CATEGORY)? {
                if saved.value != "true" {
                    continue;
                }
                let Ok(post_id) = Id::parse(&saved.name) else {
                    continue;
                };
                let Some(post) = r.post(post_id)?.filter(|p| p.delete_at == 0) else {
                    continue;
                };
                if in_channel.is_some_and(|c| c != post.channel_id) {
                    continue;
                }
                let Some(channel) = r.channel(post.channel_id)? else {
                    continue;
                };
                // A team filter keeps that team's channels and, as in Mattermost, direct and
                // group messages, which belong to no team.
                if in_team.is_some_and(|t| channel.team_id != t && !channel.team_id.is_none()) {
                    continue;
                }
                // What the user (not an admin looking on) can read.
                if can_read_channel(r, &channel, user, false)? {
                    posts.push(post);
                }
            }
            posts.sort_by(|a, b| b.create_at.cmp(&a.create_at).then(b.id.cmp(&a.id)));
            let start = page.saturating_mul(per_page).min(posts.len());
            let end = start.saturating_add(per_page).min(posts.len());
            let has_next = end < posts.len();
            let page_posts: Vec<_> = posts.drain(start..end).collect();
            let list = PostPage {
                order: page_posts.iter().map(|p| p.id).collect(),
                posts: page_posts,
                has_next,
            };
            page_json(r, &list, user)
        })
        .await?;
    Ok(ok_bytes(body))
}
