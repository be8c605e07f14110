//! Idempotent posts: Mattermost's web and mobile apps retry a post that timed out with the same
//! `pending_post_id`, and the server must answer the retry with the post the first attempt made
//! instead of storing it twice. The retry may reach another node, or come after a leader change,
//! so the decision is made here, in `apply`, in log order: of two create-post commands with the
//! same author and `pending_post_id`, whichever the log holds first makes the post and the other
//! finds it — on every replica alike. A read before proposing could not do this (two concurrent
//! retries through two nodes would both read "not yet").
//!
//! The state lives in one column family, `userid_pendingpostid_postid`, so it is replicated,
//! survives restarts and travels in snapshots. Two kinds of key share it (one family, one
//! memtable):
//!
//! - `0 · user_id · pending_post_id` → `post_id · t(created)`: the lookup;
//! - `1 · t(created) · user_id · pending_post_id` → `()`: the expiry queue, oldest first.
//!
//! An entry dedups for [`WINDOW_MS`] after its post's creation, measured against the `at` carried
//! in the retrying command (never a clock read at apply time, so every replica agrees). Every
//! post made purges at most [`PURGE_PER_POST`] expired entries from the front of the queue: each
//! post adds at most one entry, so the queue drains, and no command does unbounded work however
//! long the cluster sat idle. The window is as exact as the nodes' clocks agree: `at` comes from
//! the clock of the node that took the request.

use crate::cf::Cf;
use crate::error::{Result, StorageError};
use crate::id::Id;
use crate::keys::{KeyBuf, KeyReader};
use crate::txn::Txn;

/// How long a `pending_post_id` dedups after its post was made: 24 hours. Mattermost's own cache
/// keeps it 30 seconds; a mobile app that comes back online after hours still resends its queue.
pub const WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// Expired entries removed per post made (more than the one a post adds, so the queue drains).
pub(crate) const PURGE_PER_POST: usize = 2;

const LOOKUP: u8 = 0;
const QUEUE: u8 = 1;
const ID_LEN: usize = 16;

fn lookup_key(user: Id, pending_post_id: &str) -> Vec<u8> {
    let mut key = vec![LOOKUP];
    key.extend(KeyBuf::new().id(user).str(pending_post_id).build());
    key
}

fn queue_key(created: u64, user: Id, pending_post_id: &str) -> Vec<u8> {
    let mut key = vec![QUEUE];
    key.extend(
        KeyBuf::new()
            .u64(created)
            .id(user)
            .str(pending_post_id)
            .build(),
    );
    key
}

/// A lookup entry: the post the first attempt made and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    post_id: Id,
    created: u64,
}

impl Entry {
    fn encode(self) -> Vec<u8> {
        KeyBuf::new().id(self.post_id).u64(self.created).build()
    }

    fn decode(bytes: &[u8]) -> Result<Entry> {
        let corrupt = || StorageError::Corrupt(format!("dedup entry of {} bytes", bytes.len()));
        let post_id = bytes
            .get(..ID_LEN)
            .and_then(Id::from_slice)
            .ok_or_else(corrupt)?;
        let created = KeyReader::new(&bytes[ID_LEN..]).u64().ok_or_else(corrupt)?;
        Ok(Entry { post_id, created })
    }

    fn live_at(self, at: u64) -> bool {
        at < self.created.saturating_add(WINDOW_MS)
    }
}

/// The post an earlier command of `user` made with `pending_post_id`, if it is within the window
/// at `at`. An empty `pending_post_id` never dedups (the client did not ask for it).
pub(crate) fn find(txn: &mut Txn, user: Id, pending_post_id: &str, at: u64) -> Result<Option<Id>> {
    if pending_post_id.is_empty() {
        return Ok(None);
    }
    let Some(bytes) = txn.get_raw(
        Cf::UseridPendingpostidPostid,
        &lookup_key(user, pending_post_id),
    )?
    else {
        return Ok(None);
    };
    let entry = Entry::decode(&bytes)?;
    Ok(entry.live_at(at).then_some(entry.post_id))
}

/// Records that `post_id`, made at `created`, answers `user`'s `pending_post_id`, replacing an
/// expired entry for the same pair (and its place in the queue).
pub(crate) fn record(
    txn: &mut Txn,
    user: Id,
    pending_post_id: &str,
    post_id: Id,
    created: u64,
) -> Result<()> {
    if pending_post_id.is_empty() {
        return Ok(());
    }
    let key = lookup_key(user, pending_post_id);
    if let Some(bytes) = txn.get_raw(Cf::UseridPendingpostidPostid, &key)? {
        let old = Entry::decode(&bytes)?;
        txn.delete(
            Cf::UseridPendingpostidPostid,
            queue_key(old.created, user, pending_post_id),
        );
    }
    txn.put_raw(
        Cf::UseridPendingpostidPostid,
        key,
        Entry { post_id, created }.encode(),
    );
    txn.put_raw(
        Cf::UseridPendingpostidPostid,
        queue_key(created, user, pending_post_id),
        Vec::new(),
    );
    Ok(())
}

/// Removes up to [`PURGE_PER_POST`] entries that expired by `at`, oldest first.
pub(crate) fn purge_expired(txn: &mut Txn, at: u64) -> Result<()> {
    // Entries created before `at - WINDOW_MS` (exclusive bound: created + WINDOW_MS <= at).
    let Some(horizon) = at.checked_sub(WINDOW_MS) else {
        return Ok(());
    };
    let upper = {
        let mut key = vec![QUEUE];
        key.extend_from_slice(&horizon.saturating_add(1).to_be_bytes());
        key
    };
    let expired = txn.scan_range_first(
        Cf::UseridPendingpostidPostid,
        &[QUEUE],
        &upper,
        PURGE_PER_POST,
    )?;
    for (key, _) in expired {
        let corrupt = || StorageError::Corrupt("dedup queue key too short".into());
        let rest = key.get(1..).ok_or_else(corrupt)?;
        let created = KeyReader::new(rest).u64().ok_or_else(corrupt)?;
        let user = rest
            .get(8..8 + ID_LEN)
            .and_then(Id::from_slice)
            .ok_or_else(corrupt)?;
        let pending = rest.get(8 + ID_LEN..).ok_or_else(corrupt)?;
        let pending = std::str::from_utf8(pending)
            .map_err(|_| StorageError::Corrupt("dedup queue key is not UTF-8".into()))?;
        txn.delete(Cf::UseridPendingpostidPostid, key.clone());
        // The lookup entry goes with it unless a newer post took the pair over (then the queue
        // key would have been replaced, but check rather than trust).
        let lookup = lookup_key(user, pending);
        if let Some(bytes) = txn.get_raw(Cf::UseridPendingpostidPostid, &lookup)? {
            if Entry::decode(&bytes)?.created == created {
                txn.delete(Cf::UseridPendingpostidPostid, lookup);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_short_values_are_corrupt() {
        let entry = Entry {
            post_id: Id([7; 16]),
            created: 1234,
        };
        assert_eq!(Entry::decode(&entry.encode()).ok(), Some(entry));
        assert!(matches!(
            Entry::decode(&[1, 2, 3]),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn the_window_ends_exactly_after_24_hours() {
        let entry = Entry {
            post_id: Id([1; 16]),
            created: 1_000,
        };
        assert!(entry.live_at(1_000));
        assert!(entry.live_at(1_000 + WINDOW_MS - 1));
        assert!(!entry.live_at(1_000 + WINDOW_MS));
    }

    /// Writes a transaction's accepted commands to the database.
    fn write(engine: &crate::engine::Engine, mut txn: Txn) {
        txn.commit_command();
        let batch = txn.into_write_batch().expect("write batch");
        engine.db.write(batch).expect("write");
    }

    fn entries(engine: &crate::engine::Engine) -> usize {
        let mut txn = Txn::new(engine);
        txn.scan_prefix(Cf::UseridPendingpostidPostid, &[])
            .expect("scan")
            .len()
    }

    #[test]
    fn purges_take_expired_entries_oldest_first_and_at_most_two_per_post() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = crate::engine::Engine::open(dir.path()).expect("open engine");
        let user = Id([3; 16]);
        let mut txn = Txn::new(&engine);
        for n in 0..5u8 {
            record(&mut txn, user, &format!("p{n}"), Id([n; 16]), u64::from(n)).expect("record");
        }
        write(&engine, txn);
        assert_eq!(entries(&engine), 10, "a lookup and a queue key each");

        // At WINDOW_MS + 2, the entries made at 0, 1 and 2 have expired; one purge takes two.
        let now = WINDOW_MS + 2;
        let mut txn = Txn::new(&engine);
        purge_expired(&mut txn, now).expect("purge");
        assert_eq!(find(&mut txn, user, "p0", 0).expect("find"), None);
        assert_eq!(find(&mut txn, user, "p1", 1).expect("find"), None);
        assert_eq!(
            find(&mut txn, user, "p2", 2).expect("find"),
            Some(Id([2; 16])),
            "past its budget, still stored"
        );
        // A second purge in the same batch sees the first one's deletes.
        txn.commit_command();
        purge_expired(&mut txn, now).expect("purge");
        write(&engine, txn);
        assert_eq!(entries(&engine), 4, "p3 and p4 are not expired yet");
        let mut txn = Txn::new(&engine);
        purge_expired(&mut txn, now).expect("purge");
        write(&engine, txn);
        assert_eq!(entries(&engine), 4);
    }

    #[test]
    fn a_new_post_takes_over_an_expired_pair_and_its_queue_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = crate::engine::Engine::open(dir.path()).expect("open engine");
        let user = Id([4; 16]);
        let mut txn = Txn::new(&engine);
        record(&mut txn, user, "p", Id([1; 16]), 10).expect("record");
        write(&engine, txn);
        let later = 10 + WINDOW_MS;
        let mut txn = Txn::new(&engine);
        assert_eq!(find(&mut txn, user, "p", later).expect("find"), None);
        record(&mut txn, user, "p", Id([2; 16]), later).expect("record");
        write(&engine, txn);
        assert_eq!(
            entries(&engine),
            2,
            "the old queue key went with the old entry"
        );
        let mut txn = Txn::new(&engine);
        purge_expired(&mut txn, later + 1).expect("purge");
        assert_eq!(
            find(&mut txn, user, "p", later + 1).expect("find"),
            Some(Id([2; 16]))
        );
    }

    #[test]
    fn queue_keys_sort_by_creation_time() {
        let user = Id([9; 16]);
        assert!(queue_key(5, user, "zzz") < queue_key(300, user, "aaa"));
        assert!(lookup_key(user, "x") < queue_key(0, Id::NONE, ""));
    }
}
