//! Acknowledgements: a post sent with "request acknowledgement" (Mattermost's post priority
//! `requested_ack`) shows who has acknowledged it. Family `postid_userid_ack`: post_id ·
//! user_id → u64 time of the acknowledgement. The post keeps a count (`ack_count`), so
//! rendering a page reads the acknowledgements only of posts that have some.
//!
//! An acknowledgement may be taken back within [`UNDO_WINDOW_MS`] of giving it (Mattermost's
//! rule); the time checked is the command's, so every replica decides alike.

use crate::apply::{load_channel, load_live_post, load_user, refuse, touch_post, Step};
use crate::cf::Cf;
use crate::engine::decode_u64;
use crate::error::{CommandError, Result};
use crate::id::Id;
use crate::keys::id2;
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};

/// How long after acknowledging a user may take it back (5 minutes).
pub const UNDO_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Mattermost's PostAcknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub user_id: Id,
    pub post_id: Id,
    pub acknowledged_at: u64,
}

/// Applies `AckPost`: acknowledging twice keeps the first time.
pub(crate) fn ack(txn: &mut Txn, post_id: Id, user_id: Id, at: u64) -> Step<Outcome> {
    let mut post = load_live_post(txn, post_id)?;
    let user = load_user(txn, user_id)?;
    if user.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("user {user_id}")));
    }
    let channel = load_channel(txn, post.channel_id)?;
    let key = id2(post_id, user_id);
    if let Some(bytes) = txn.get_raw(Cf::PostidUseridAck, &key)? {
        let ack = Acknowledgement {
            user_id,
            post_id,
            acknowledged_at: decode_u64(&bytes)?,
        };
        return Ok(Outcome::AckChanged {
            ack,
            channel,
            added: true,
        });
    }
    txn.put_raw(Cf::PostidUseridAck, key, at.to_be_bytes().to_vec());
    post.ack_count = post.ack_count.saturating_add(1);
    touch_post(txn, &mut post, at)?;
    Ok(Outcome::AckChanged {
        ack: Acknowledgement {
            user_id,
            post_id,
            acknowledged_at: at,
        },
        channel,
        added: true,
    })
}

/// Applies `UnackPost`: only within the undo window; none to take back is "not found".
pub(crate) fn unack(txn: &mut Txn, post_id: Id, user_id: Id, at: u64) -> Step<Outcome> {
    let mut post = load_live_post(txn, post_id)?;
    let channel = load_channel(txn, post.channel_id)?;
    let key = id2(post_id, user_id);
    let Some(bytes) = txn.get_raw(Cf::PostidUseridAck, &key)? else {
        return refuse(CommandError::not_found("acknowledgement of post", post_id));
    };
    let acknowledged_at = decode_u64(&bytes)?;
    if at > acknowledged_at.saturating_add(UNDO_WINDOW_MS) {
        return refuse(CommandError::Forbidden(
            "an acknowledgement can be taken back only within 5 minutes".into(),
        ));
    }
    txn.delete(Cf::PostidUseridAck, key);
    post.ack_count = post.ack_count.saturating_sub(1);
    touch_post(txn, &mut post, at)?;
    Ok(Outcome::AckChanged {
        ack: Acknowledgement {
            user_id,
            post_id,
            acknowledged_at,
        },
        channel,
        added: false,
    })
}

impl Reader<'_> {
    /// A post's acknowledgements, by user id.
    pub fn acknowledgements(&self, post_id: Id) -> Result<Vec<Acknowledgement>> {
        let mut found = Vec::new();
        let mut failure = None;
        self.scan_prefix(
            Cf::PostidUseridAck,
            post_id.as_bytes(),
            false,
            |key, value| {
                let user = key.get(16..32).and_then(Id::from_slice);
                match (user, decode_u64(value)) {
                    (Some(user_id), Ok(acknowledged_at)) => {
                        found.push(Acknowledgement {
                            user_id,
                            post_id,
                            acknowledged_at,
                        });
                        true
                    }
                    (None, _) => {
                        failure = Some(crate::error::StorageError::Corrupt(format!(
                            "acknowledgement key of post {post_id} is malformed"
                        )));
                        false
                    }
                    (_, Err(e)) => {
                        failure = Some(e);
                        false
                    }
                }
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }
}
