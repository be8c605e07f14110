//! Collapsed Reply Threads: a user's threads in a team, one thread, read/unread, follow.

use super::channels::readable_channel;
use super::{ok, path_id, status_ok, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use confab_storage::{Command, Id, Outcome, Reader, ThreadItem, ThreadQuery};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    let base = "/users/{user_id}/teams/{team_id}/threads";
    Router::new()
        .route(base, get(list_threads))
        .route(&format!("{base}/read"), put(read_all))
        .route(&format!("{base}/{{thread_id}}"), get(get_thread))
        .route(
            &format!("{base}/{{thread_id}}/read/{{timestamp}}"),
            put(read_thread),
        )
        .route(
            &format!("{base}/{{thread_id}}/set_unread/{{post_id}}"),
            post(set_unread),
        )
        .route(
            &format!("{base}/{{thread_id}}/following"),
            put(follow).delete(unfollow),
        )
}

/// A ThreadResponse as `user` sees it; `extended` puts whole users in `participants`. The root
/// post carries its metadata (reactions, files, custom emoji, acknowledgements) as it does in a
/// channel's page.
fn thread_json(
    r: &Reader,
    item: &ThreadItem,
    extended: bool,
    user: Id,
) -> confab_storage::Result<Value> {
    let participants = if extended {
        let mut users = Vec::new();
        for id in &item.thread.participants {
            if let Some(user) = r.user(*id)? {
                users.push(views::user(&user, true));
            }
        }
        users
    } else {
        views::thread_participants_ids(item)
    };
    let facts = super::posts::post_facts(r, std::slice::from_ref(&item.root), user)?;
    Ok(views::thread(item, participants, facts.parts(&item.root)))
}

fn ids(caller: &Caller, user_id: &str, team_id: &str) -> ApiResult<(Id, Id)> {
    let user = caller.resolve(user_id)?;
    caller.require_self_or_admin(user)?;
    Ok((user, path_id(team_id, "team_id")?))
}

async fn list_threads(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let (user, team) = ids(&caller, &user_id, &team_id)?;
    let params = Params::parse(query.as_deref());
    let per_page = match params.u64("per_page")? {
        Some(n) => n,
        None => match params.u64("perPage")? {
            Some(n) => n,
            None => params.u64("pageSize")?.unwrap_or(25),
        },
    }
    .clamp(1, 200) as usize;
    let totals_only = params.bool("totalsOnly");
    let threads_only = params.bool("threadsOnly");
    let extended = params.bool("extended");
    let query = ThreadQuery {
        since: params.u64("since")?,
        unread_only: params.bool("unread"),
        include_deleted: params.bool("deleted"),
        before: params.id("before")?,
        after: params.id("after")?,
        per_page: if totals_only { 0 } else { per_page },
    };
    let admin = caller.is_admin();
    let body = app
        .read(move |r| {
            if !admin && r.team_member(team, user)?.is_none() {
                return Ok(Err(ApiError::forbidden()));
            }
            let list = r.user_threads(user, team, &query)?;
            let mut threads = Vec::new();
            for item in &list.threads {
                if readable_channel(r, item.thread.channel_id, user, false)?.is_ok() {
                    threads.push(thread_json(r, item, extended, user)?);
                }
            }
            let mut body = views::thread_list(&list, threads);
            if threads_only {
                for key in [
                    "total",
                    "total_unread_threads",
                    "total_unread_mentions",
                    "total_unread_urgent_mentions",
                ] {
                    body[key] = json!(0);
                }
            }
            Ok(Ok(body))
        })
        .await??;
    Ok(ok(body))
}

/// One thread as `user` sees it, if they may read its channel.
fn visible_thread(
    r: &Reader,
    user: Id,
    thread: Id,
    extended: bool,
) -> confab_storage::Result<Result<Value, ApiError>> {
    let Some(item) = r.user_thread(user, thread)? else {
        return Ok(Err(ApiError::not_found("thread")));
    };
    if let Err(e) = readable_channel(r, item.thread.channel_id, user, false)? {
        return Ok(Err(e));
    }
    Ok(Ok(thread_json(r, &item, extended, user)?))
}

async fn get_thread(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, thread_id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let (user, _team) = ids(&caller, &user_id, &team_id)?;
    let thread = path_id(&thread_id, "thread_id")?;
    let extended = Params::parse(query.as_deref()).bool("extended");
    let body = app
        .read(move |r| visible_thread(r, user, thread, extended))
        .await??;
    Ok(ok(body))
}

/// Answers a thread write with the thread as the user now sees it.
async fn thread_answer(app: &AppState, user: Id, thread: Id, index: u64) -> ApiResult<Response> {
    let body = app
        .read(move |r| visible_thread(r, user, thread, false))
        .await??;
    Ok(with_applied(ok(body), index))
}

async fn read_thread(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, thread_id, timestamp)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let (user, _team) = ids(&caller, &user_id, &team_id)?;
    let thread = path_id(&thread_id, "thread_id")?;
    let timestamp: u64 = timestamp
        .parse()
        .map_err(|_| ApiError::invalid_param("timestamp"))?;
    let (index, _) = app
        .write(Command::ReadThread {
            user_id: user,
            thread_id: thread,
            timestamp,
            at: now_ms(),
        })
        .await?;
    thread_answer(&app, user, thread, index).await
}

async fn set_unread(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, thread_id, post_id)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let (user, _team) = ids(&caller, &user_id, &team_id)?;
    let thread = path_id(&thread_id, "thread_id")?;
    let post_id = path_id(&post_id, "post_id")?;
    let (index, _) = app
        .write(Command::SetThreadUnread {
            user_id: user,
            thread_id: thread,
            post_id,
            at: now_ms(),
        })
        .await?;
    thread_answer(&app, user, thread, index).await
}

async fn set_following(
    app: AppState,
    caller: Caller,
    user_id: String,
    team_id: String,
    thread_id: String,
    follow: bool,
) -> ApiResult<Response> {
    let (user, _team) = ids(&caller, &user_id, &team_id)?;
    let thread = path_id(&thread_id, "thread_id")?;
    let (index, outcome) = app
        .write(Command::FollowThread {
            user_id: user,
            thread_id: thread,
            follow,
            at: now_ms(),
        })
        .await?;
    match outcome {
        Outcome::ThreadFollowChanged { .. } => Ok(with_applied(status_ok(), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

async fn follow(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, thread_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    set_following(app, caller, user_id, team_id, thread_id, true).await
}

async fn unfollow(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id, thread_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    set_following(app, caller, user_id, team_id, thread_id, false).await
}

async fn read_all(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, team_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (user, team) = ids(&caller, &user_id, &team_id)?;
    let (index, _) = app
        .write(Command::ReadAllThreads {
            user_id: user,
            team_id: team,
            at: now_ms(),
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}
