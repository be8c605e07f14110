//! Search: posts (`POST /teams/{team_id}/posts/search`, `POST /posts/search`), people
//! (`POST /users/search`, `GET /users/autocomplete`) and channels
//! (`POST /teams/{team_id}/channels/search`, `GET /teams/{team_id}/channels/autocomplete`), all
//! answered from storage's indexes on this node's replica. Only what the caller may read is ever
//! looked at: post search runs over the caller's own channel memberships.

use super::channels::can_read_channel;
use super::posts::search_page_json;
use super::teams::can_read_team;
use super::{ok, parse_body, path_id, AppState, Caller, Params};
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use confab_storage::search::{parse, PostSearch, DEFAULT_KEY_BUDGET};
use confab_storage::{ChannelType, Id, User};
use serde::Deserialize;
use serde_json::{json, Value};

/// Largest `per_page` of a post search.
pub const MAX_SEARCH_PER_PAGE: i64 = 200;
/// Results beyond this offset are not served (a page that deep is not a search any more).
pub const MAX_SEARCH_OFFSET: i64 = 10_000;
/// Largest `limit` of a people search (Mattermost's).
pub const MAX_USER_LIMIT: i64 = 1_000;
/// Channels an autocomplete answers at most.
const CHANNEL_AUTOCOMPLETE_LIMIT: usize = 50;
/// Header set when a search stopped at its budget of keys read: more matches may exist.
pub const TRUNCATED_HEADER: &str = "x-confab-search-truncated";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/teams/{team_id}/posts/search", post(search_team_posts))
        .route("/posts/search", post(search_all_posts))
        .route("/users/search", post(search_users))
        .route("/users/autocomplete", get(autocomplete_users))
        .route("/teams/{team_id}/channels/search", post(search_channels))
        .route(
            "/teams/{team_id}/channels/autocomplete",
            get(autocomplete_channels),
        )
        .route(
            "/teams/{team_id}/channels/search_autocomplete",
            get(autocomplete_channels_for_search),
        )
}

/// The body of a post search (Mattermost's `SearchParameter`).
#[derive(Deserialize)]
struct SearchBody {
    terms: Option<String>,
    #[serde(default)]
    is_or_search: bool,
    #[serde(default)]
    time_zone_offset: i64,
    #[serde(default)]
    include_deleted_channels: bool,
    #[serde(default)]
    page: i64,
    #[serde(default)]
    per_page: i64,
}

fn invalid(name: &'static str, message: &str) -> ApiError {
    ApiError::bad_request(name, message.to_string())
}

/// Validates a search body into a storage search for `user`.
fn post_search(body: SearchBody, user: Id, team: Option<Id>) -> ApiResult<PostSearch> {
    let terms = body.terms.unwrap_or_default();
    if terms.trim().is_empty() {
        return Err(invalid(
            "api.post.search_posts.invalid_body.app_error",
            "terms is required",
        ));
    }
    if body.page < 0 || body.per_page < 0 || body.per_page > MAX_SEARCH_PER_PAGE {
        return Err(ApiError::bad_request(
            "api.post.search_posts.invalid_body.app_error",
            format!("page must be 0 or more and per_page from 0 to {MAX_SEARCH_PER_PAGE}"),
        ));
    }
    if body.time_zone_offset.abs() > 86_400 {
        return Err(invalid(
            "api.post.search_posts.invalid_body.app_error",
            "time_zone_offset is seconds from UTC, within a day",
        ));
    }
    let query = parse(&terms)?;
    let per_page = if body.per_page == 0 {
        60
    } else {
        body.per_page
    };
    let page = if body.page.saturating_mul(per_page) > MAX_SEARCH_OFFSET {
        // Past the deepest page served: an empty answer, as for any page past the end.
        usize::MAX / 2
    } else {
        body.page as usize
    };
    Ok(PostSearch {
        user,
        team,
        query,
        is_or: body.is_or_search,
        time_zone_offset_secs: body.time_zone_offset,
        include_deleted_channels: body.include_deleted_channels,
        page,
        per_page: per_page as usize,
        key_budget: DEFAULT_KEY_BUDGET,
    })
}

async fn run_post_search(
    app: AppState,
    caller: Caller,
    team: Option<Id>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: SearchBody = parse_body(&body, "search params")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let search = post_search(body, me, team)?;
    if search.page.saturating_mul(search.per_page) > MAX_SEARCH_OFFSET as usize {
        let empty = confab_storage::search::SearchResults::default();
        let bytes = app.read(move |r| search_page_json(r, &empty, me)).await?;
        return Ok(search_response(bytes, false));
    }
    let (bytes, truncated) = app
        .read(move |r| {
            if let Some(team) = search.team {
                if r.team(team)?.is_none() {
                    return Ok(Err(ApiError::not_found("team")));
                }
                if !can_read_team(r, team, me, admin)? {
                    return Ok(Err(ApiError::forbidden()));
                }
            }
            let results = r.search_posts(&search)?;
            Ok(Ok((search_page_json(r, &results, me)?, results.truncated)))
        })
        .await??;
    Ok(search_response(bytes, truncated))
}

/// A search answer is never cached (Mattermost sends the same header).
fn search_response(bytes: Vec<u8>, truncated: bool) -> Response {
    let mut response = super::ok_bytes(bytes);
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    if truncated {
        headers.insert(TRUNCATED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

async fn search_team_posts(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let team = path_id(&team_id, "team_id")?;
    run_post_search(app, caller, Some(team), body).await
}

async fn search_all_posts(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    run_post_search(app, caller, None, body).await
}

/// Mattermost's `UserSearch` body.
#[derive(Deserialize)]
struct UserSearchBody {
    #[serde(default)]
    term: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    not_in_team_id: String,
    #[serde(default)]
    in_channel_id: String,
    #[serde(default)]
    not_in_channel_id: String,
    #[serde(default)]
    allow_inactive: bool,
    #[serde(default)]
    without_team: bool,
    #[serde(default)]
    limit: i64,
}

/// An optional id field: empty means absent.
fn optional_id(text: &str, name: &str) -> ApiResult<Option<Id>> {
    if text.is_empty() {
        Ok(None)
    } else {
        path_id(text, name).map(Some)
    }
}

fn user_limit(limit: i64, default: i64) -> ApiResult<usize> {
    if !(0..=MAX_USER_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_param("limit"));
    }
    Ok(if limit == 0 { default } else { limit } as usize)
}

/// Users as the caller may see them (email hidden unless themselves or an admin).
fn users_json(caller: &Caller, users: &[User]) -> Vec<Value> {
    users
        .iter()
        .map(|u| views::user(u, u.id != caller.id() && !caller.is_admin()))
        .collect()
}

async fn search_users(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let body: UserSearchBody = parse_body(&body, "user search")?;
    if body.term.trim().is_empty() {
        return Err(ApiError::invalid_param("term"));
    }
    let limit = user_limit(body.limit, 100)?;
    let team = optional_id(&body.team_id, "team_id")?;
    let not_in_team = optional_id(&body.not_in_team_id, "not_in_team_id")?;
    let in_channel = optional_id(&body.in_channel_id, "in_channel_id")?;
    let not_in_channel = optional_id(&body.not_in_channel_id, "not_in_channel_id")?;
    if not_in_channel.is_some() && team.is_none() {
        return Err(ApiError::invalid_param("team_id"));
    }
    let (me, admin) = (caller.id(), caller.is_admin());
    let (term, allow_inactive, without_team) =
        (body.term, body.allow_inactive && admin, body.without_team);
    let users = app
        .read(move |r| {
            for t in [team, not_in_team].into_iter().flatten() {
                if !can_read_team(r, t, me, admin)? {
                    return Ok(Err(ApiError::forbidden()));
                }
            }
            for c in [in_channel, not_in_channel].into_iter().flatten() {
                let Some(channel) = r.channel(c)? else {
                    return Ok(Err(ApiError::not_found("channel")));
                };
                if !can_read_channel(r, &channel, me, admin)? {
                    return Ok(Err(ApiError::forbidden()));
                }
            }
            let users = r.search_users(&term, limit, allow_inactive, |r, user| {
                Ok(team.map_or(Ok(true), |t| r.is_team_member(t, user.id))?
                    && !not_in_team.map_or(Ok(false), |t| r.is_team_member(t, user.id))?
                    && in_channel.map_or(Ok(true), |c| r.is_channel_member(c, user.id))?
                    && !not_in_channel.map_or(Ok(false), |c| r.is_channel_member(c, user.id))?
                    && (!without_team || r.teams_of_user(user.id)?.is_empty()))
            })?;
            Ok(Ok(users))
        })
        .await??;
    Ok(ok(Value::Array(users_json(&caller, &users))))
}

/// GET /users/autocomplete?in_team=&in_channel=&name=&limit=
async fn autocomplete_users(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let team = params.id("in_team")?;
    let channel = params.id("in_channel")?;
    let name = params.get("name").unwrap_or("").to_string();
    let limit = user_limit(
        params
            .u64("limit")?
            .map_or(0, |l| l.min(u32::MAX as u64) as i64),
        100,
    )?;
    if channel.is_some() && team.is_none() {
        return Err(ApiError::bad_request(
            "api.user.autocomplete_users.missing_team_id.app_error",
            "in_channel needs in_team",
        ));
    }
    let (me, admin) = (caller.id(), caller.is_admin());
    let answer = app
        .read(move |r| {
            if let Some(t) = team {
                if !can_read_team(r, t, me, admin)? {
                    return Ok(Err(ApiError::forbidden()));
                }
            }
            if let Some(c) = channel {
                let Some(ch) = r.channel(c)? else {
                    return Ok(Err(ApiError::not_found("channel")));
                };
                if !can_read_channel(r, &ch, me, admin)? {
                    return Ok(Err(ApiError::forbidden()));
                }
            }
            let in_team = |r: &confab_storage::Reader, user: &User| {
                team.map_or(Ok(true), |t| r.is_team_member(t, user.id))
            };
            let users = r.search_users(&name, limit, false, |r, user| {
                Ok(in_team(r, user)?
                    && channel.map_or(Ok(true), |c| r.is_channel_member(c, user.id))?)
            })?;
            let out_of_channel = match channel {
                Some(c) => Some(r.search_users(&name, limit, false, |r, user| {
                    Ok(in_team(r, user)? && !r.is_channel_member(c, user.id)?)
                })?),
                None => None,
            };
            Ok(Ok((users, out_of_channel)))
        })
        .await??;
    let (users, out_of_channel) = answer;
    let mut body = json!({ "users": users_json(&caller, &users) });
    if let Some(out) = out_of_channel {
        body["out_of_channel"] = Value::Array(users_json(&caller, &out));
    }
    Ok(ok(body))
}

#[derive(Deserialize)]
struct ChannelSearchBody {
    #[serde(default)]
    term: String,
}

/// POST /teams/{team_id}/channels/search: the team's public channels matching the term (with
/// archived ones, as Mattermost's `SearchChannels` for a member who may list team channels).
async fn search_channels(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let team = path_id(&team_id, "team_id")?;
    let body: ChannelSearchBody = parse_body(&body, "channel search")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let channels = app
        .read(move |r| {
            if !can_read_team(r, team, me, admin)? {
                return Ok(Err(ApiError::not_found("team")));
            }
            let channels = r.search_team_channels(team, &body.term, true, 100, |_, c| {
                Ok(c.channel_type == ChannelType::Open)
            })?;
            Ok(Ok(channels))
        })
        .await??;
    Ok(ok(Value::Array(
        channels.iter().map(views::channel).collect(),
    )))
}

/// GET /teams/{team_id}/channels/autocomplete?name=: public channels and the private channels
/// the caller is in, not archived.
async fn autocomplete_channels(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    team_channel_autocomplete(app, caller, &team_id, query, Offered::Visible).await
}

/// `GET /teams/{team_id}/channels/search_autocomplete?name=`: the channels the search box offers
/// after `in:`. As Mattermost's `AutocompleteChannelsForSearch`, only channels the caller is a
/// member of, public or private: a search finds nothing in the others.
async fn autocomplete_channels_for_search(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    team_channel_autocomplete(app, caller, &team_id, query, Offered::Mine).await
}

/// Which of a team's channels an autocomplete offers.
#[derive(Clone, Copy)]
enum Offered {
    /// Public channels and the private channels the caller is in.
    Visible,
    /// Only the caller's own channels, public or private.
    Mine,
}

/// A team's channels whose names start with `?name=`, not archived, as `offered` allows.
async fn team_channel_autocomplete(
    app: AppState,
    caller: Caller,
    team_id: &str,
    query: Option<String>,
    offered: Offered,
) -> ApiResult<Response> {
    let team = path_id(team_id, "team_id")?;
    let params = Params::parse(query.as_deref());
    let name = params.get("name").unwrap_or("").to_string();
    let (me, admin) = (caller.id(), caller.is_admin());
    let channels = app
        .read(move |r| {
            if !can_read_team(r, team, me, admin)? {
                return Ok(Err(ApiError::forbidden()));
            }
            let channels =
                r.search_team_channels(team, &name, false, CHANNEL_AUTOCOMPLETE_LIMIT, |r, c| {
                    Ok(match offered {
                        Offered::Visible => {
                            c.channel_type == ChannelType::Open || r.is_channel_member(c.id, me)?
                        }
                        Offered::Mine => r.is_channel_member(c.id, me)?,
                    })
                })?;
            Ok(Ok(channels))
        })
        .await??;
    Ok(ok(Value::Array(
        channels.iter().map(views::channel).collect(),
    )))
}

/// The search the `/search` command runs for `terms`: the same validation and scope as
/// `POST /teams/{team_id}/posts/search`.
pub fn terms_search(
    terms: &str,
    user: Id,
    team: Option<Id>,
    per_page: i64,
) -> ApiResult<PostSearch> {
    post_search(
        SearchBody {
            terms: Some(terms.to_string()),
            is_or_search: false,
            time_zone_offset: 0,
            include_deleted_channels: false,
            page: 0,
            per_page,
        },
        user,
        team,
    )
}
