//! The write side of `apply`: reads see the live database plus everything earlier commands of the
//! same batch wrote, and all writes land in ONE `WriteBatch`. A failing command's writes are
//! discarded (a per-command layer), so a refused command changes nothing but the applied index.

use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;
use crate::keys::prefix_end;
use crate::search::postings;
use rocksdb::WriteBatch;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

type Layer = BTreeMap<(Cf, Vec<u8>), Option<Vec<u8>>>;

/// Merge operands by key, in the order they were made.
type MergeLayer = BTreeMap<(Cf, Vec<u8>), Vec<Vec<u8>>>;

pub(crate) struct Txn<'a> {
    engine: &'a Engine,
    /// Writes of commands already accepted in this batch.
    batch: Layer,
    /// Writes of the command being applied.
    command: Layer,
    /// Merge operands of commands already accepted in this batch, and of the command being
    /// applied. Never read back: a merged family is written by apply, read by queries.
    batch_merges: MergeLayer,
    command_merges: MergeLayer,
    pub keys_read: u64,
    pub keys_written: u64,
    /// The log index of the command being applied; orders read-state changes.
    pub index: u64,
}

impl<'a> Txn<'a> {
    pub fn new(engine: &'a Engine) -> Txn<'a> {
        Txn {
            engine,
            batch: Layer::new(),
            command: Layer::new(),
            batch_merges: MergeLayer::new(),
            command_merges: MergeLayer::new(),
            keys_read: 0,
            keys_written: 0,
            index: 0,
        }
    }

    /// Starts a command: resets the counters.
    pub fn begin(&mut self, index: u64) {
        self.index = index;
        self.keys_read = 0;
        self.keys_written = 0;
        self.command.clear();
        self.command_merges.clear();
    }

    pub fn commit_command(&mut self) {
        let layer = std::mem::take(&mut self.command);
        self.batch.extend(layer);
        for (key, operands) in std::mem::take(&mut self.command_merges) {
            self.batch_merges.entry(key).or_default().extend(operands);
        }
    }

    pub fn abort_command(&mut self) {
        self.command.clear();
        self.command_merges.clear();
    }

    /// What this batch has pending for a key: `Some(None)` when deleted, `None` when untouched
    /// (the command's own writes shadow the batch's).
    fn pending(&self, cf: Cf, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        let lookup = (cf, key.to_vec());
        self.command
            .get(&lookup)
            .or_else(|| self.batch.get(&lookup))
    }

    pub fn get_raw(&mut self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.keys_read += 1;
        if let Some(value) = self.pending(cf, key) {
            return Ok(value.clone());
        }
        Ok(self.engine.db.get_cf(self.engine.cf(cf)?, key)?)
    }

    /// A key as it was before the command being applied: the batch's earlier commands and the
    /// database, without this command's writes ([`crate::badge`] compares the two states).
    pub fn get_before<T: DeserializeOwned>(&mut self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        self.keys_read += 1;
        let raw = match self.batch.get(&(cf, key.to_vec())) {
            Some(value) => value.clone(),
            None => self.engine.db.get_cf(self.engine.cf(cf)?, key)?,
        };
        match raw {
            Some(bytes) => Ok(Some(rmp_serde::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether the command being applied wrote or deleted `key` (if not, the key reads the
    /// same before and after it).
    pub fn written_by_command(&self, cf: Cf, key: &[u8]) -> bool {
        self.command.contains_key(&(cf, key.to_vec()))
    }

    /// The keys of `cf` the command being applied wrote or deleted, in key order.
    pub fn command_keys(&self, cf: Cf) -> Vec<Vec<u8>> {
        self.command
            .range((cf, Vec::new())..)
            .take_while(|((entry_cf, _), _)| *entry_cf == cf)
            .map(|((_, key), _)| key.clone())
            .collect()
    }

    pub fn get<T: DeserializeOwned>(&mut self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        match self.get_raw(cf, key)? {
            Some(bytes) => Ok(Some(rmp_serde::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn exists(&mut self, cf: Cf, key: &[u8]) -> Result<bool> {
        Ok(self.get_raw(cf, key)?.is_some())
    }

    pub fn put_raw(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.keys_written += 1;
        self.command.insert((cf, key), Some(value));
    }

    pub fn put<T: Serialize>(&mut self, cf: Cf, key: Vec<u8>, value: &T) -> Result<()> {
        let bytes = rmp_serde::to_vec(value)?;
        self.put_raw(cf, key, bytes);
        Ok(())
    }

    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.keys_written += 1;
        self.command.insert((cf, key), None);
    }

    /// A merge operand for `key` of a family with a merge operator (the search postings).
    pub fn merge(&mut self, cf: Cf, key: Vec<u8>, operand: Vec<u8>) {
        self.keys_written += 1;
        self.command_merges
            .entry((cf, key))
            .or_default()
            .push(operand);
    }

    /// Whether `cf` holds any live entry, merging the database with pending writes. Stops at the
    /// first live key, so it costs a seek plus the keys this batch deleted, never a scan.
    pub fn any_live(&mut self, cf: Cf) -> Result<bool> {
        self.keys_read += 1;
        let start = (cf, Vec::new());
        let pending_put = self
            .command
            .range(start.clone()..)
            .chain(self.batch.range(start..))
            .take_while(|((entry_cf, _), _)| *entry_cf == cf)
            .any(|((_, key), _)| matches!(self.pending(cf, key), Some(Some(_))));
        if pending_put {
            return Ok(true);
        }
        for item in self
            .engine
            .db
            .iterator_cf(self.engine.cf(cf)?, rocksdb::IteratorMode::Start)
        {
            let (key, _) = item?;
            if !matches!(self.pending(cf, &key), Some(None)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every live entry under `prefix`, merging the database with pending writes. Used only where
    /// a command inherently touches a whole set (a channel's members for `@channel`, a thread's
    /// followers, a root's replies on delete).
    pub fn scan_prefix(&mut self, cf: Cf, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(prefix);
        self.scan_range(cf, prefix, end.as_deref())
    }

    /// Every live key under `prefix`, merging the database with pending writes, without
    /// copying values or building a merged map: for a whole channel's members where only their
    /// ids are needed ([`crate::badge`] on a channel-wide mention).
    pub fn for_each_key_with_prefix(
        &mut self,
        cf: Cf,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8]),
    ) -> Result<()> {
        let mut pending: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
        for layer in [&self.batch, &self.command] {
            let start = (cf, prefix.to_vec());
            for ((entry_cf, key), value) in layer.range(start..) {
                if *entry_cf != cf || !key.starts_with(prefix) {
                    break;
                }
                pending.insert(key.clone(), value.is_some());
            }
        }
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_lower_bound(prefix.to_vec());
        if let Some(upper) = prefix_end(prefix) {
            opts.set_iterate_upper_bound(upper);
        }
        let mut iter = self
            .engine
            .db
            .raw_iterator_cf_opt(self.engine.cf(cf)?, opts);
        iter.seek(prefix);
        while let Some(key) = iter.key() {
            self.keys_read += 1;
            match pending.remove(key) {
                Some(false) => {}
                _ => visit(key),
            }
            iter.next();
        }
        iter.status()?;
        for (key, live) in pending {
            if live {
                visit(&key);
            }
        }
        Ok(())
    }

    /// Every live entry in `[lower, upper)`, merging the database with pending writes.
    pub fn scan_range(
        &mut self,
        cf: Cf,
        lower: &[u8],
        upper: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.merged_range(cf, lower, upper, None)
    }

    /// The first `limit` live entries in `[lower, upper)`, merging the database with pending
    /// writes. Reads at most `limit` database keys plus the keys this batch deleted in the range,
    /// however many the range holds: for work that must stay bounded per command (purges).
    pub fn scan_range_first(
        &mut self,
        cf: Cf,
        lower: &[u8],
        upper: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.merged_range(cf, lower, Some(upper), Some(limit))
    }

    /// The live entries in `[lower, upper)`, at most `limit` of them: pending writes (the
    /// command's own shadowing the batch's) over the stored keys.
    fn merged_range(
        &mut self,
        cf: Cf,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for layer in [&self.batch, &self.command] {
            let start = (cf, lower.to_vec());
            for ((entry_cf, key), value) in layer.range(start..) {
                if *entry_cf != cf || upper.is_some_and(|upper| key.as_slice() >= upper) {
                    break;
                }
                merged.insert(key.clone(), value.clone());
            }
        }
        // Every pending delete can hide one stored key, so this many stored keys always hold
        // the first `limit` live ones.
        let hidden = merged.values().filter(|value| value.is_none()).count();
        let stored_keys = limit.map_or(usize::MAX, |limit| limit.saturating_add(hidden));
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_lower_bound(lower.to_vec());
        if let Some(upper) = upper {
            opts.set_iterate_upper_bound(upper.to_vec());
        }
        let mode = rocksdb::IteratorMode::From(lower, rocksdb::Direction::Forward);
        for item in self
            .engine
            .db
            .iterator_cf_opt(self.engine.cf(cf)?, opts, mode)
            .take(stored_keys)
        {
            let (key, value) = item?;
            merged
                .entry(key.to_vec())
                .or_insert_with(|| Some(value.to_vec()));
        }
        let live: Vec<_> = merged
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        self.keys_read += live.len() as u64;
        Ok(live)
    }

    /// Moves all accepted writes into one RocksDB write batch: puts and deletes, then one merge
    /// operand per key, the batch's operands for it folded together by its family's rule (badge
    /// differences summed, search operands combined).
    pub fn into_write_batch(self) -> Result<WriteBatch> {
        let mut batch = WriteBatch::default();
        for ((cf, key), value) in self.batch {
            let handle = self.engine.cf(cf)?;
            match value {
                Some(value) => batch.put_cf(handle, key, value),
                None => batch.delete_cf(handle, key),
            }
        }
        for ((cf, key), operands) in self.batch_merges {
            let handle = self.engine.cf(cf)?;
            match operands.as_slice() {
                [one] => batch.merge_cf(handle, key, one),
                _ if cf == Cf::UseridBadge => batch.merge_cf(
                    handle,
                    key,
                    crate::badge::combine(operands.iter().map(Vec::as_slice)),
                ),
                _ => batch.merge_cf(
                    handle,
                    key,
                    postings::combine(operands.iter().map(Vec::as_slice)),
                ),
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(txn: &mut Txn) -> bool {
        txn.any_live(Cf::UseridUser).expect("any_live")
    }

    #[test]
    fn any_live_sees_pending_puts_and_deletes_over_the_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("open engine");
        let cf = Cf::UseridUser;

        let mut txn = Txn::new(&engine);
        assert!(!live(&mut txn), "an empty family");
        txn.put_raw(cf, b"a".to_vec(), b"1".to_vec());
        assert!(live(&mut txn), "the command's own put");
        txn.abort_command();
        assert!(!live(&mut txn), "an aborted command's put");
        txn.put_raw(cf, b"a".to_vec(), b"1".to_vec());
        txn.commit_command();
        assert!(live(&mut txn), "an earlier command's put");
        let batch = txn.into_write_batch().expect("write batch");
        engine.db.write(batch).expect("write");

        let mut txn = Txn::new(&engine);
        assert!(live(&mut txn), "a stored key");
        txn.delete(cf, b"a".to_vec());
        assert!(!live(&mut txn), "a stored key deleted by the command");
        txn.commit_command();
        assert!(!live(&mut txn), "deleted by an earlier command");
        txn.put_raw(cf, b"a".to_vec(), b"2".to_vec());
        assert!(live(&mut txn), "put back after the batch's delete");
    }
}
