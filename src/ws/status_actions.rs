//! The WebSocket status actions, as Mattermost's `wsapi` answers them:
//! - `get_statuses`: `data` = user_id → status of every user this node knows a status for
//!   (connected anywhere in the cluster, or with a manual status), at most [`MAX_ALL`];
//! - `get_statuses_by_ids` (`data.user_ids`, 26-character ids): user_id → status, `offline`
//!   for users nobody knows;
//! - `user_update_active_status` (`user_is_active` required, `manual` optional): activity, or
//!   a manual away / a return from a manual status when `manual` is true. Replies carry
//!   `seq_reply`, never a `seq`, so they leave the event stream's numbering alone.
//!
//! With statuses off (`EnableUserStatuses`), both getters answer `{}` and `manual` is ignored.

use super::conn::Conn;
use super::socket::{fail_reply, ok_reply};
use super::Hub;
use crate::presence::StatusKind;
use bytes::Bytes;
use confab_storage::{Command, Id};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Statuses `get_statuses` answers at most.
pub const MAX_ALL: usize = 10_000;
/// Ids `get_statuses_by_ids` takes at most.
pub const MAX_IDS: usize = 1_000;

fn invalid(seq: u64, action: &str, param: &str) -> Bytes {
    fail_reply(
        seq,
        "api.websocket_handler.invalid_param.app_error",
        &format!("Invalid {param} parameter for {action}"),
        400,
    )
}

pub fn handle(hub: &Hub, conn: &Arc<Conn>, action: &str, seq: u64, data: Option<&Value>) -> Bytes {
    let (Some(presence), Some(identity)) = (hub.presence.get(), conn.identity()) else {
        return fail_reply(
            seq,
            "api.web_socket_router.bad_action.app_error",
            "Statuses are not available",
            501,
        );
    };
    match action {
        // Statuses off (`EnableUserStatuses`): Mattermost's getters answer nothing.
        "get_statuses" | "get_statuses_by_ids" if !presence.user_statuses_enabled() => {
            ok_reply(seq, Some(Value::Object(Map::new())))
        }
        "get_statuses" => {
            let map: Map<String, Value> = presence
                .known_statuses(MAX_ALL)
                .into_iter()
                .map(|(user, kind)| (user.to_base32(), Value::from(kind.as_str())))
                .collect();
            ok_reply(seq, Some(Value::Object(map)))
        }
        "get_statuses_by_ids" => {
            let Some(list) = data
                .and_then(|d| d.get("user_ids"))
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty() && l.len() <= MAX_IDS)
            else {
                return invalid(seq, action, "user_ids");
            };
            let mut ids = Vec::with_capacity(list.len());
            for item in list {
                match item.as_str().map(Id::parse) {
                    Some(Ok(id)) => ids.push(id),
                    _ => return invalid(seq, action, "user_ids"),
                }
            }
            let map: Map<String, Value> = ids
                .into_iter()
                .map(|user| {
                    let status = presence.status(user).status;
                    (user.to_base32(), Value::from(status.as_str()))
                })
                .collect();
            ok_reply(seq, Some(Value::Object(map)))
        }
        _ => {
            let Some(active) = data
                .and_then(|d| d.get("user_is_active"))
                .and_then(Value::as_bool)
            else {
                return invalid(seq, action, "user_is_active");
            };
            let manual = data
                .and_then(|d| d.get("manual"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let user = identity.user;
            if active {
                presence.activity(user, None);
            }
            if manual && presence.user_statuses_enabled() {
                let current = presence.status(user);
                // Manual "active" ends a manual status (online is never stored manual); manual
                // "inactive" sets away by hand, unless a manual status is already in force.
                let wanted = match (active, current.manual) {
                    (true, true) => Some(StatusKind::Online),
                    (false, false) => Some(StatusKind::Away),
                    _ => None,
                };
                if let Some(status) = wanted {
                    (hub.proposer)(Command::SetStatus {
                        user_id: user,
                        at: crate::clock::now_ms(),
                        status: status.as_str().to_string(),
                        dnd_end_time: 0,
                    });
                }
            }
            ok_reply(seq, None)
        }
    }
}
