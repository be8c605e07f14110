//! Cluster operations over the API: status, add and remove members (system admins), and the
//! join call a new node makes with the cluster secret.

use super::{ok, parse_body, status_ok, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use confab_raft::{ClusterStatus, Role};
use serde::Deserialize;
use serde_json::{json, Value};

pub const SECRET_HEADER: &str = "x-confab-cluster-secret";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cluster/status", get(status))
        .route("/cluster/members", post(add_member))
        .route("/cluster/members/{node_id}", delete(remove_member))
        .route("/cluster/join", post(join))
        .route("/cluster/digest", get(digest))
}

/// `GET /cluster/digest` (system admins): a digest of this node's whole replicated state and the
/// index it was taken at. Equal digests at equal indices mean byte-identical replicas; `stable`
/// is false when entries were applied while the digest was computed (ask again).
async fn digest(State(app): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    let before = app.raft.applied_index();
    let engine = app.engine.clone();
    let digest = tokio::task::spawn_blocking(move || engine.state_digest())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let after = app.raft.applied_index();
    Ok(ok(json!({
        "applied_index": before,
        "stable": before == after,
        "digest": format!("{digest:016x}"),
    })))
}

pub fn status_json(status: &ClusterStatus) -> Value {
    json!({
        "node_id": status.node_id,
        "leader": status.leader,
        "term": status.term,
        "membership_index": status.membership_index,
        "members": status.members.iter().map(|m| json!({
            "id": m.id,
            "addr": m.addr,
            "role": match m.role { Role::Voter => "voter", Role::Learner => "learner" },
            "reachable": m.reachable,
            "state": m.state,
            "term": m.term,
            "last_log_index": m.last_log_index,
            "applied_index": m.applied_index,
            "snapshot_index": m.snapshot_index,
            "purged_index": m.purged_index,
            "matched_index": m.matched_index,
        })).collect::<Vec<_>>(),
    })
}

async fn status(State(app): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    Ok(ok(status_json(&app.raft.status().await)))
}

#[derive(Deserialize)]
struct NewMember {
    node_id: u64,
    raft_addr: String,
}

fn cluster_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "api.cluster.membership.app_error",
        e.to_string(),
    )
}

/// Adds a learner, waits for it to catch up, and promotes it.
async fn add_and_promote(app: &AppState, member: NewMember) -> ApiResult<Response> {
    if member.raft_addr.trim().is_empty() {
        return Err(ApiError::invalid_param("raft_addr"));
    }
    app.raft
        .add_learner(member.node_id, member.raft_addr)
        .await
        .map_err(cluster_error)?;
    app.raft
        .promote(member.node_id)
        .await
        .map_err(cluster_error)?;
    Ok(ok(status_json(&app.raft.status().await)))
}

async fn add_member(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let member: NewMember = parse_body(&body, "member")?;
    add_and_promote(&app, member).await
}

async fn remove_member(
    State(app): State<AppState>,
    caller: Caller,
    Path(node_id): Path<String>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let node_id: u64 = node_id
        .parse()
        .map_err(|_| ApiError::invalid_param("node_id"))?;
    app.raft
        .remove_voter(node_id)
        .await
        .map_err(cluster_error)?;
    Ok(status_ok())
}

async fn join(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let presented = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !crate::auth::constant_time_eq(presented.as_bytes(), app.cluster_secret.as_bytes()) {
        return Err(ApiError::unauthorized());
    }
    let member: NewMember = parse_body(&body, "member")?;
    add_and_promote(&app, member).await
}
