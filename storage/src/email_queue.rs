//! Notification emails waiting in their user's batch (Mattermost's email batching), kept as
//! replicated state so a leader change loses none.
//!
//! The leader's dispatcher decides, from an outbox entry, that a user is due an email about a
//! post and that the user batches their email (an interval of 15 minutes or an hour). It then
//! queues `user · create_at · post → channel` here, in the same Raft write that advances the
//! outbox mark. Every `email_batching_interval` the leader looks at the queue: a user whose
//! oldest entry has waited their interval gets one digest of the entries whose channel they
//! have not read since, and [`Command::EmailsSent`](crate::Command) removes the entries.
//!
//! Keys are deterministic, so queueing the same entry twice (a batch replayed after a leader
//! change) stores it once. A digest is sent before its removal commits: after a leader crash in
//! between, the next leader sends that digest again — at most one digest round repeats.
//!
//! `meta` holds the number of queued entries (`"email_queue_len"`, big-endian u64): the
//! dispatcher mails immediately instead of queueing when the queue is full, as Mattermost does
//! when its batching buffer is full, and `/metrics` shows it.

use crate::apply::Step;
use crate::cf::Cf;
use crate::error::Result;
use crate::id::Id;
use crate::keys::KeyBuf;
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};

/// `meta` key of the number of queued entries.
pub const LEN_KEY: &[u8] = b"email_queue_len";

/// Most entries one command queues or removes.
pub const MAX_ENTRIES: usize = 4096;

/// One post waiting in one user's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEmail {
    pub user_id: Id,
    pub create_at: u64,
    pub post_id: Id,
    pub channel_id: Id,
}

impl QueuedEmail {
    fn key(&self) -> Vec<u8> {
        KeyBuf::new()
            .id(self.user_id)
            .u64(self.create_at)
            .id(self.post_id)
            .build()
    }

    fn decode(key: &[u8], value: &[u8]) -> Option<QueuedEmail> {
        if key.len() != 40 {
            return None;
        }
        Some(QueuedEmail {
            user_id: Id::from_slice(&key[..16])?,
            create_at: u64::from_be_bytes(key[16..24].try_into().ok()?),
            post_id: Id::from_slice(&key[24..40])?,
            channel_id: Id::from_slice(value)?,
        })
    }
}

fn len(txn: &mut Txn) -> Step<u64> {
    crate::notify::meta_u64(txn, LEN_KEY)
}

fn set_len(txn: &mut Txn, len: u64) {
    txn.put_raw(Cf::Meta, LEN_KEY.to_vec(), len.to_be_bytes().to_vec());
}

/// Queues entries (at most [`MAX_ENTRIES`]; the rest are the caller's bug and ignored);
/// an entry already queued stays once.
pub(crate) fn queue(txn: &mut Txn, entries: &[QueuedEmail]) -> Step<u64> {
    let mut added = 0u64;
    for entry in entries.iter().take(MAX_ENTRIES) {
        let key = entry.key();
        if txn.exists(Cf::UseridCreateatPostidEmail, &key)? {
            continue;
        }
        txn.put_raw(
            Cf::UseridCreateatPostidEmail,
            key,
            entry.channel_id.as_bytes().to_vec(),
        );
        added += 1;
    }
    if added > 0 {
        let total = len(txn)? + added;
        set_len(txn, total);
    }
    Ok(added)
}

/// Removes sent (or dropped) entries.
pub(crate) fn sent(txn: &mut Txn, entries: &[QueuedEmail]) -> Step<Outcome> {
    let mut removed = 0u64;
    for entry in entries.iter().take(MAX_ENTRIES) {
        let key = entry.key();
        if txn.exists(Cf::UseridCreateatPostidEmail, &key)? {
            txn.delete(Cf::UseridCreateatPostidEmail, key);
            removed += 1;
        }
    }
    if removed > 0 {
        let total = len(txn)?.saturating_sub(removed);
        set_len(txn, total);
    }
    Ok(Outcome::EmailsSent { removed })
}

impl Reader<'_> {
    /// Queued entries in key order (user, then time), at most `limit`, starting after `after`.
    pub fn queued_emails(
        &self,
        after: Option<&QueuedEmail>,
        limit: usize,
    ) -> Result<Vec<QueuedEmail>> {
        let lower = match after {
            Some(entry) => {
                let mut key = entry.key();
                key.push(0);
                key
            }
            None => Vec::new(),
        };
        let mut out = Vec::new();
        self.scan(
            Cf::UseridCreateatPostidEmail,
            &lower,
            None,
            false,
            |key, value| {
                if let Some(entry) = QueuedEmail::decode(key, value) {
                    out.push(entry);
                }
                out.len() < limit
            },
        )?;
        Ok(out)
    }

    /// How many entries are queued (O(1)).
    pub fn email_queue_len(&self) -> Result<u64> {
        self.meta_u64(LEN_KEY)
    }
}
