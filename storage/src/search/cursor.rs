//! Cursors over one channel's candidates, newest first. A position is `u64::MAX - create_at`:
//! post times are unique within a channel (apply makes them so), so a position names a post of
//! the channel, and ascending positions are newest first. Every cursor answers `seek(target)`:
//! its first position at or after `target`. Words are leaves over the index's blocks, stepped
//! through in memory; AND is a leapfrog (each child seeks to the largest position any child
//! stands on, until they agree), so two common words that rarely meet skip whole blocks where
//! one of them has none and walk the rest at in-memory speed; OR is the smallest position of its
//! children.

use super::index::{rev_bucket, term_channel_prefix};
use super::postings::{bucket, SetReader};
use crate::cf::Cf;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{prefix_end, KeyBuf};
use crate::read::Reader;
use rocksdb::DBRawIterator;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// `u64::MAX - create_at`.
pub(crate) type Pos = u64;

pub(crate) fn pos(create_at: u64) -> Pos {
    u64::MAX - create_at
}

pub(crate) fn pos_create_at(pos: Pos) -> u64 {
    u64::MAX - pos
}

/// The first position of posts created at or before `t`.
pub(crate) fn pos_at_or_before(t: u64) -> Pos {
    pos(t)
}

pub(crate) enum Cursor<'r> {
    /// Posts of one channel holding one term.
    Term(TermCursor<'r>),
    /// Every live post of one channel (filter-only searches).
    Live(LiveCursor<'r>),
    And(Vec<Cursor<'r>>),
    Or(Vec<Cursor<'r>>),
    /// Matches nothing (a prefix no term has).
    Empty,
}

/// One iterator per term, shared by the cursors of every channel: creating a RocksDB iterator
/// costs far more than a seek, and a search over 200 channels would otherwise create 200 per
/// word.
#[derive(Default)]
pub(crate) struct TermIterators<'r> {
    by_term: HashMap<String, Rc<RefCell<SharedIter<'r>>>>,
}

impl<'r> TermIterators<'r> {
    fn get(&mut self, reader: &'r Reader, term: &str) -> Result<Rc<RefCell<SharedIter<'r>>>> {
        if let Some(it) = self.by_term.get(term) {
            return Ok(it.clone());
        }
        let lower = KeyBuf::new().str(term).byte(0).build();
        let upper = KeyBuf::new().str(term).byte(1).build();
        let it = reader.raw_iter(Cf::TermChannelidBucketCreateats, &lower, Some(&upper))?;
        let it = Rc::new(RefCell::new(SharedIter { it, gap_from: None }));
        self.by_term.insert(term.to_string(), it.clone());
        Ok(it)
    }
}

/// A term's iterator that remembers the gap it just crossed, so that a seek whose answer it
/// already knows costs nothing. The channels' cursors seek in channel order, so for a word
/// that few channels use, the seeks of every channel without it land on the same next key:
/// one RocksDB seek answers the whole run of them instead of one seek per channel.
pub(crate) struct SharedIter<'r> {
    it: DBRawIterator<'r>,
    /// No key lies in `[gap_from, current key)` (or at or after `gap_from` when the iterator
    /// is past its last key); `None` when unknown.
    gap_from: Option<Vec<u8>>,
}

impl SharedIter<'_> {
    /// Stands on the first key at or after `target`; true when RocksDB had to be asked.
    fn seek(&mut self, target: &[u8]) -> bool {
        let known = match &self.gap_from {
            Some(from) if from.as_slice() <= target => match self.it.key() {
                Some(key) => target <= key,
                None => self.it.status().is_ok(),
            },
            _ => false,
        };
        if known {
            return false;
        }
        self.it.seek(target);
        let gap = self.gap_from.get_or_insert_with(Vec::new);
        gap.clear();
        gap.extend_from_slice(target);
        true
    }

    fn next(&mut self) {
        // Just past the current key: the smallest key after it.
        let mut after = self.gap_from.take().unwrap_or_default();
        after.clear();
        match self.it.key() {
            Some(key) => {
                after.extend_from_slice(key);
                after.push(0);
                self.gap_from = Some(after);
            }
            None => self.gap_from = None,
        }
        self.it.next();
    }

    fn key(&self) -> Option<&[u8]> {
        self.it.key()
    }

    fn value(&self) -> Option<&[u8]> {
        self.it.value()
    }

    fn status(&self) -> std::result::Result<(), rocksdb::Error> {
        self.it.status()
    }
}

impl<'r> Cursor<'r> {
    pub fn term(
        reader: &'r Reader,
        iterators: &mut TermIterators<'r>,
        term: &str,
        channel: Id,
    ) -> Result<Cursor<'r>> {
        Ok(Cursor::Term(TermCursor {
            it: iterators.get(reader, term)?,
            prefix: term_channel_prefix(term, channel),
            block: None,
            head: None,
            done: false,
        }))
    }

    pub fn live(reader: &'r Reader, channel: Id) -> Result<Cursor<'r>> {
        let prefix = channel.as_bytes().to_vec();
        let end = prefix_end(&prefix);
        let it = reader.raw_iter(Cf::ChannelidCreateatPostid, &prefix, end.as_deref())?;
        Ok(Cursor::Live(LiveCursor {
            it,
            channel,
            head: None,
            done: false,
        }))
    }

    /// The first position at or after `target`, or None when there is none.
    pub fn seek(&mut self, reader: &Reader, target: Pos) -> Result<Option<Pos>> {
        match self {
            Cursor::Term(c) => c.seek(reader, target),
            Cursor::Live(c) => c.seek(reader, target),
            Cursor::Empty => Ok(None),
            Cursor::Or(children) => {
                let mut best: Option<Pos> = None;
                for child in children.iter_mut() {
                    if let Some(p) = child.seek(reader, target)? {
                        best = Some(best.map_or(p, |b| b.min(p)));
                    }
                }
                Ok(best)
            }
            Cursor::And(children) => {
                let mut candidate = target;
                'agree: loop {
                    for child in children.iter_mut() {
                        match child.seek(reader, candidate)? {
                            None => return Ok(None),
                            Some(p) if p > candidate => {
                                candidate = p;
                                continue 'agree;
                            }
                            Some(_) => {}
                        }
                    }
                    return Ok(Some(candidate));
                }
            }
        }
    }
}

pub(crate) struct TermCursor<'r> {
    it: Rc<RefCell<SharedIter<'r>>>,
    /// `term · 0x00 · channel`.
    prefix: Vec<u8>,
    /// The block the head is in, and its times after the head.
    block: Option<Block>,
    head: Option<Pos>,
    done: bool,
}

/// A postings block being read.
struct Block {
    key: Vec<u8>,
    bucket: u32,
    times: SetReader,
}

impl TermCursor<'_> {
    /// The first position at or after `target`: first in the rest of the current block when
    /// `target` falls in it, else in the blocks from `target`'s on. The shared iterator steps to
    /// the next block when it still stands on this cursor's block (the usual case) and seeks
    /// when that next block is newer than `target`'s. Stepping within a block allocates nothing.
    fn seek(&mut self, reader: &Reader, target: Pos) -> Result<Option<Pos>> {
        if self.done {
            return Ok(None);
        }
        if let Some(head) = self.head {
            if head >= target {
                return Ok(Some(head));
            }
        }
        let target_bucket = bucket(pos_create_at(target));
        let in_block = match self.block.as_mut() {
            Some(block) if block.bucket == target_bucket => {
                block.times.by_ref().find(|t| pos(*t) >= target)
            }
            _ => None,
        };
        if let Some(t) = in_block {
            return Ok(self.stand(Some(pos(t))));
        }
        let current = self.block.take().map(|block| block.key);
        let mut target_key = self.prefix.clone();
        target_key.extend_from_slice(&rev_bucket(pos_create_at(target)));
        let shared = self.it.clone();
        let mut it = shared.borrow_mut();
        let on_current = current.is_some() && it.key() == current.as_deref();
        let mut must_seek = true;
        if on_current {
            it.next();
            reader.count(1);
            must_seek = it
                .key()
                .is_some_and(|key| key.starts_with(&self.prefix) && key < target_key.as_slice());
        }
        if must_seek && it.seek(&target_key) {
            reader.count(1);
        }
        loop {
            let Some(key) = it.key().filter(|key| key.starts_with(&self.prefix)) else {
                it.status()?;
                return Ok(self.stand(None));
            };
            // A key of another shape under this prefix is not a block: passed over.
            if let Ok(rev) = <[u8; 4]>::try_from(&key[self.prefix.len()..]) {
                let key = key.to_vec();
                let mut times = SetReader::new(it.value().unwrap_or_default());
                if let Some(t) = times.by_ref().find(|t| pos(*t) >= target) {
                    let bucket = u32::MAX - u32::from_be_bytes(rev);
                    self.block = Some(Block { key, bucket, times });
                    return Ok(self.stand(Some(pos(t))));
                }
            }
            it.next();
            reader.count(1);
        }
    }

    fn stand(&mut self, at: Option<Pos>) -> Option<Pos> {
        self.head = at;
        self.done = at.is_none();
        if at.is_none() {
            self.block = None;
        }
        at
    }
}

/// `channelid_createat_postid` read backwards. Post times are unique within a channel (apply
/// makes them so), so its order backwards is the position order.
pub(crate) struct LiveCursor<'r> {
    it: DBRawIterator<'r>,
    channel: Id,
    head: Option<Pos>,
    done: bool,
}

impl LiveCursor<'_> {
    fn current(&self) -> Result<Option<Pos>> {
        match self.it.key() {
            Some(key) if key.len() == 40 && key.starts_with(self.channel.as_bytes()) => {
                let mut t = [0u8; 8];
                t.copy_from_slice(&key[16..24]);
                Ok(Some(pos(u64::from_be_bytes(t))))
            }
            _ => {
                self.it.status()?;
                Ok(None)
            }
        }
    }

    fn seek(&mut self, reader: &Reader, target: Pos) -> Result<Option<Pos>> {
        if self.done {
            return Ok(None);
        }
        match self.head {
            Some(head) if head >= target => return Ok(Some(head)),
            Some(_) => self.it.prev(),
            None => {
                let key = KeyBuf::new()
                    .id(self.channel)
                    .u64(pos_create_at(target))
                    .id(Id::from_bytes([0xff; 16]))
                    .build();
                self.it.seek_for_prev(&key);
            }
        }
        loop {
            reader.count(1);
            match self.current()? {
                Some(p) if p >= target => {
                    self.head = Some(p);
                    return Ok(Some(p));
                }
                Some(_) => self.it.prev(),
                None => {
                    self.head = None;
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }
}
