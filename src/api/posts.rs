//! Posts: create, read, patch, delete, pin; channel pages; threads; posts around the unread point.

use super::channels::readable_channel;
use super::{
    created, ok, ok_bytes, parse_body, path_id, status_ok, with_applied, AppState, Caller, Params,
};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views::{self, PostFacts, PostThreadInfo};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use confab_storage::validate::{self, MAX_PENDING_POST_ID_CHARS};
use confab_storage::{
    Command, Id, Outcome, Post, PostPage, PostsQuery, Reader, ThreadPaging, MAX_MESSAGE_CHARS,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/posts", post(create_post))
        .route(
            "/posts/{post_id}",
            get(get_post).delete(delete_post).put(update_post),
        )
        .route("/posts/ids", post(posts_by_ids))
        .route("/posts/{post_id}/patch", put(patch_post))
        .route("/posts/{post_id}/pin", post(pin_post))
        .route("/posts/{post_id}/unpin", post(unpin_post))
        .route("/posts/{post_id}/thread", get(get_thread))
        .route("/channels/{channel_id}/posts", get(channel_posts))
        .route(
            "/users/{user_id}/channels/{channel_id}/posts/unread",
            get(posts_around_unread),
        )
}

/// What the posts of a page are rendered with: one point lookup per distinct thread, and one
/// prefix scan per post that has reactions (the flag is on the post, so others cost nothing).
pub fn post_facts(r: &Reader, posts: &[Post], user: Id) -> confab_storage::Result<PostFacts> {
    let mut facts = PostFacts::default();
    for post in posts {
        facts.read_post(r, post)?;
        let root = if post.is_root() {
            post.id
        } else {
            post.root_id
        };
        if facts.threads.contains_key(&root) {
            continue;
        }
        if let Some(thread) = r.thread(root)? {
            let following = r.thread_membership(user, root)?.map(|m| m.following);
            facts.threads.insert(
                root,
                PostThreadInfo {
                    reply_count: thread.reply_count,
                    last_reply_at: thread.last_reply_at,
                    participants: thread.participants,
                    is_following: following,
                },
            );
        }
    }
    Ok(facts)
}

/// A post as JSON with its thread facts and reactions, read on the replica.
pub fn post_json(r: &Reader, post: &Post, user: Id) -> confab_storage::Result<Value> {
    let facts = post_facts(r, std::slice::from_ref(post), user)?;
    Ok(views::post(post, facts.thread_of(post), facts.parts(post)))
}

/// A page of posts as JSON bytes, serialized on the blocking pool with the reads.
pub fn page_json(r: &Reader, page: &PostPage, user: Id) -> confab_storage::Result<Vec<u8>> {
    let facts = post_facts(r, &page.posts, user)?;
    Ok(views::post_list(page, &facts))
}

/// A search's page as JSON bytes, with `matches`.
pub fn search_page_json(
    r: &Reader,
    results: &confab_storage::search::SearchResults,
    user: Id,
) -> confab_storage::Result<Vec<u8>> {
    let facts = post_facts(r, &results.page.posts, user)?;
    Ok(views::search_post_list(
        &results.page,
        &results.matches,
        &facts,
    ))
}

#[derive(Deserialize)]
struct Priority {
    #[serde(default)]
    priority: String,
    /// Readers are asked to acknowledge the post.
    #[serde(default)]
    requested_ack: bool,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    priority: Option<Priority>,
}

#[derive(Deserialize)]
struct NewPost {
    channel_id: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    root_id: String,
    #[serde(default)]
    props: Option<Value>,
    #[serde(default)]
    pending_post_id: String,
    #[serde(default, rename = "type")]
    post_type: String,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    file_ids: Option<Vec<String>>,
}

/// `file_ids` of a post body: ids, at most `MAX_FILES_PER_POST` (Mattermost's model check).
fn parse_file_ids(ids: Option<Vec<String>>) -> ApiResult<Option<Vec<Id>>> {
    let Some(ids) = ids else { return Ok(None) };
    if ids.len() > confab_storage::files::MAX_FILES_PER_POST {
        return Err(ApiError::bad_request(
            "model.post.is_valid.file_ids.app_error",
            "Invalid file ids.",
        ));
    }
    ids.iter()
        .map(|id| path_id(id, "file_ids"))
        .collect::<ApiResult<Vec<Id>>>()
        .map(Some)
}

fn check_message(message: &str) -> ApiResult<()> {
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::bad_request(
            "model.post.is_valid.message_length.app_error",
            format!("Message must be {MAX_MESSAGE_CHARS} characters or fewer."),
        ));
    }
    Ok(())
}

fn props_text(props: Option<Value>) -> ApiResult<String> {
    match props {
        None | Some(Value::Null) => Ok("{}".into()),
        Some(Value::Object(map)) => Ok(Value::Object(map).to_string()),
        Some(_) => Err(ApiError::invalid_param("props")),
    }
}

pub async fn create_post(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let new: NewPost = parse_body(&body, "post")?;
    let channel_id = path_id(&new.channel_id, "channel_id")?;
    check_message(&new.message)?;
    check_pending_post_id(&new.pending_post_id)?;
    let root_id = if new.root_id.is_empty() {
        None
    } else {
        Some(path_id(&new.root_id, "root_id")?)
    };
    let asked = new.metadata.and_then(|m| m.priority);
    let requested_ack = asked.as_ref().is_some_and(|p| p.requested_ack);
    let priority = asked
        .map(|p| p.priority)
        .filter(|p| p == "urgent" || p == "important")
        .unwrap_or_default();
    if root_id.is_some() && (requested_ack || !priority.is_empty()) {
        return Err(ApiError::bad_request(
            "api.post.post_priority.priority_post_only_allowed_for_root_post",
            "Post priority and acknowledgements are for root posts only.",
        ));
    }
    let file_ids = parse_file_ids(new.file_ids)?.unwrap_or_default();
    let me = caller.id();
    // Posting is activity (Mattermost's `set_online`).
    app.presence.activity(me, None);
    let reach = app.channel_wide_reach(channel_id, &new.message).await?;
    let (index, outcome) = app
        .write(Command::CreatePost {
            id: Id::from_bytes(rand::random()),
            at: now_ms(),
            channel_id,
            user_id: me,
            root_id,
            message: new.message,
            post_type: new.post_type,
            props: props_text(new.props)?,
            pending_post_id: new.pending_post_id,
            priority,
            file_ids,
            requested_ack,
            here_online: reach.here_online,
            channel_wide_ignored: reach.ignored,
        })
        .await?;
    // A retry (same author and pending_post_id) is answered like the first attempt: 201 with the
    // original post, as Mattermost does; apply decided which one came first, in log order.
    let (post, thread, files) = match outcome {
        Outcome::Posted(posted) => (posted.post, posted.thread, posted.files),
        Outcome::PostExisted { post, thread } => {
            let read = post.clone();
            let files = app.read(move |r| r.post_files(&read)).await?;
            (post, thread, files)
        }
        _ => return Err(ApiError::internal("unexpected outcome")),
    };
    let emojis = if !confab_storage::emoji::named_in(&post.message).is_empty() {
        let message = post.message.clone();
        app.read(move |r| r.emoji_used_in(&message, &[])).await?
    } else {
        Vec::new()
    };
    let info = thread.as_ref().map(|t| PostThreadInfo {
        reply_count: t.reply_count,
        last_reply_at: t.last_reply_at,
        participants: t.participants.clone(),
        is_following: Some(true),
    });
    Ok(with_applied(
        created(views::post(
            &post,
            info.as_ref(),
            views::PostParts {
                files: &files,
                emojis: &emojis,
                ..views::PostParts::default()
            },
        )),
        index,
    ))
}

/// A post's `pending_post_id`, bounded because it becomes part of a stored key.
fn check_pending_post_id(pending_post_id: &str) -> ApiResult<()> {
    validate::pending_post_id(pending_post_id).map_err(|_| {
        ApiError::bad_request(
            "model.post.is_valid.pending_post_id.app_error",
            format!("pending_post_id must be {MAX_PENDING_POST_ID_CHARS} characters or fewer."),
        )
    })
}

/// Loads a post the caller may read (its channel is readable); deleted posts are 404.
pub(crate) async fn readable_post(app: &AppState, caller: &Caller, post_id: Id) -> ApiResult<Post> {
    let (me, admin) = (caller.id(), caller.is_admin());
    app.read(move |r| {
        let Some(post) = r.post(post_id)? else {
            return Ok(Err(ApiError::not_found("post")));
        };
        if post.delete_at != 0 {
            return Ok(Err(ApiError::not_found("post")));
        }
        Ok(readable_channel(r, post.channel_id, me, admin)?.map(|_| post))
    })
    .await?
}

async fn get_post(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id, "post_id")?;
    let post = readable_post(&app, &caller, post_id).await?;
    let me = caller.id();
    let body = app.read(move |r| post_json(r, &post, me)).await?;
    Ok(ok(body))
}

#[derive(Deserialize)]
struct Patch {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    is_pinned: Option<bool>,
    #[serde(default)]
    props: Option<Value>,
    #[serde(default)]
    file_ids: Option<Vec<String>>,
}

/// Applies a patch and answers the post as it now is, with the applied index.
async fn apply_patch(
    app: &AppState,
    caller: &Caller,
    post_id: Id,
    patch: Patch,
    author_only: bool,
) -> ApiResult<(u64, Value)> {
    let post = readable_post(app, caller, post_id).await?;
    if author_only && post.user_id != caller.id() && !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    if let Some(message) = &patch.message {
        check_message(message)?;
    }
    let props = match patch.props {
        Some(props) => Some(props_text(Some(props))?),
        None => None,
    };
    let (index, outcome) = app
        .write(Command::PatchPost {
            post_id,
            at: now_ms(),
            message: patch.message,
            is_pinned: patch.is_pinned,
            props,
            file_ids: parse_file_ids(patch.file_ids)?,
        })
        .await?;
    let Outcome::PostEdited { post, .. } = outcome else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    let me = caller.id();
    let body = app.read(move |r| post_json(r, &post, me)).await?;
    Ok((index, body))
}

async fn patch_post(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id, "post_id")?;
    let patch: Patch = parse_body(&body, "patch")?;
    let (index, post) = apply_patch(&app, &caller, post_id, patch, true).await?;
    Ok(with_applied(ok(post), index))
}

/// PUT /posts/{id}: a full update, which never changes the pin.
async fn update_post(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id, "post_id")?;
    let patch: Patch = parse_body(&body, "post")?;
    let patch = Patch {
        is_pinned: None,
        ..patch
    };
    let (index, post) = apply_patch(&app, &caller, post_id, patch, true).await?;
    Ok(with_applied(ok(post), index))
}

/// Pinning is open to anyone who can read the channel, as in Mattermost.
async fn set_pinned(
    app: AppState,
    caller: Caller,
    post_id: String,
    pinned: bool,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id, "post_id")?;
    let patch = Patch {
        message: None,
        is_pinned: Some(pinned),
        props: None,
        file_ids: None,
    };
    let (index, _) = apply_patch(&app, &caller, post_id, patch, false).await?;
    Ok(with_applied(status_ok(), index))
}

async fn pin_post(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Response> {
    set_pinned(app, caller, post_id, true).await
}

async fn unpin_post(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Response> {
    set_pinned(app, caller, post_id, false).await
}

async fn delete_post(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id, "post_id")?;
    let post = readable_post(&app, &caller, post_id).await?;
    if post.user_id != caller.id() && !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let (index, _) = app
        .write(Command::DeletePost {
            post_id,
            at: now_ms(),
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

/// The most ids `POST /posts/ids` takes (Mattermost's limit).
const MAX_POST_IDS: usize = 1000;

/// POST /posts/ids: the posts among `ids` the caller may read, in the order asked; unknown,
/// deleted and unreadable ids are left out, as Mattermost does.
async fn posts_by_ids(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let ids: Vec<String> = parse_body(&body, "post ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid_param("post_ids"));
    }
    if ids.len() > MAX_POST_IDS {
        return Err(ApiError::bad_request(
            "api.post.posts_by_ids.invalid_body.request_error",
            format!("Too many post ids, at most {MAX_POST_IDS}."),
        ));
    }
    let ids = ids
        .iter()
        .map(|id| path_id(id, "post_ids"))
        .collect::<ApiResult<Vec<Id>>>()?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let body = app
        .read(move |r| {
            let mut readable: HashMap<Id, bool> = HashMap::new();
            let mut posts = Vec::new();
            for id in ids {
                let Some(post) = r.post(id)? else { continue };
                if post.delete_at != 0 {
                    continue;
                }
                let may_read = match readable.get(&post.channel_id) {
                    Some(may) => *may,
                    None => {
                        let may = readable_channel(r, post.channel_id, me, admin)?.is_ok();
                        readable.insert(post.channel_id, may);
                        may
                    }
                };
                if may_read {
                    posts.push(post);
                }
            }
            let facts = post_facts(r, &posts, me)?;
            Ok::<_, confab_storage::StorageError>(Value::Array(
                posts
                    .iter()
                    .map(|p| views::post(p, facts.thread_of(p), facts.parts(p)))
                    .collect(),
            ))
        })
        .await?;
    Ok(ok(body))
}

/// GET /posts/{id}/thread with Mattermost's paging (`perPage`, `fromCreateAt`, `fromPost`,
/// `direction`): without them, the whole thread newest first, led by the post asked for.
async fn get_thread(
    State(app): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id, "post_id")?;
    let paging = thread_paging(&Params::parse(query.as_deref()))?;
    let post = readable_post(&app, &caller, post_id).await?;
    let root = if post.is_root() {
        post.id
    } else {
        post.root_id
    };
    let me = caller.id();
    let body = app
        .read(move |r| {
            let page = r.thread_page(root, post_id, &paging)?;
            page_json(r, &page, me)
        })
        .await?;
    Ok(ok_bytes(body))
}

/// The thread paging parameters, refused as Mattermost refuses them.
fn thread_paging(params: &Params) -> ApiResult<ThreadPaging> {
    let per_page = match params.get("perPage") {
        None | Some("") => None,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n > 0 => Some(n.min(MAX_THREAD_PAGE)),
            _ => return Err(ApiError::invalid_param("perPage")),
        },
    };
    let from_at = match params.get("fromCreateAt") {
        None | Some("") | Some("0") => None,
        Some(_) => params.u64("fromCreateAt")?,
    };
    let from_post = match params.get("fromPost") {
        None | Some("") => None,
        Some(_) => params.id("fromPost")?,
    };
    let up = match params.get("direction") {
        None | Some("") | Some("up") => true,
        Some("down") => false,
        Some(_) => return Err(ApiError::invalid_param("direction")),
    };
    let from = match (from_at, from_post) {
        (Some(at), post) => Some((at, post)),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "api.context.invalid_param.app_error",
                "if fromPost is set, then fromCreateAt must also be set",
            ))
        }
    };
    Ok(ThreadPaging { per_page, from, up })
}

/// The most posts one thread page returns (Mattermost caps post pages at 1,000).
const MAX_THREAD_PAGE: usize = 1000;

/// GET /channels/{id}/posts with `page`/`per_page`, or `since`, or `before`/`after`; with
/// `collapsedThreads=true` only root posts.
async fn channel_posts(
    State(app): State<AppState>,
    caller: Caller,
    Path(channel_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let channel_id = path_id(&channel_id, "channel_id")?;
    let params = Params::parse(query.as_deref());
    let (page, per_page) = params.paging()?;
    let collapsed = params.bool("collapsedThreads");
    let query = if let Some(since) = params.u64("since")? {
        PostsQuery::Since { since, limit: 1000 }
    } else if let Some(before) = params.id("before")? {
        PostsQuery::Before {
            post_id: before,
            per_page,
        }
    } else if let Some(after) = params.id("after")? {
        PostsQuery::After {
            post_id: after,
            per_page,
        }
    } else {
        PostsQuery::Page { page, per_page }
    };
    let (me, admin) = (caller.id(), caller.is_admin());
    let body = app
        .read(move |r| {
            if let Err(e) = readable_channel(r, channel_id, me, admin)? {
                return Ok(Err(e));
            }
            let page = r.channel_posts(channel_id, query, collapsed)?;
            Ok(Ok(page_json(r, &page, me)?))
        })
        .await??;
    Ok(ok_bytes(body))
}

async fn posts_around_unread(
    State(app): State<AppState>,
    caller: Caller,
    Path((user_id, channel_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let user = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user)?;
    let channel_id = path_id(&channel_id, "channel_id")?;
    let params = Params::parse(query.as_deref());
    let before = params.usize_or("limit_before", 60)?.min(200);
    let after = params.usize_or("limit_after", 60)?.clamp(1, 200);
    let collapsed = params.bool("collapsedThreads");
    let body = app
        .read(move |r| {
            let Some(page) = r.posts_around_unread(user, channel_id, before, after, collapsed)?
            else {
                return Ok(Err(ApiError::forbidden()));
            };
            Ok(Ok(page_json(r, &page, user)?))
        })
        .await??;
    Ok(ok_bytes(body))
}
