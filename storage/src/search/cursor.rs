//! Cursors over one channel's candidates, newest first. A position is `rev(create_at) · post_id`
//! (24 bytes), the suffix of the index keys, so byte order is newest first. Every cursor answers
//! `seek(target)`: its first position at or after `target`. Words are leaves over the index; AND
//! is a leapfrog (each child seeks to the largest position any child stands on, until they
//! agree), so two common words that rarely meet skip ahead by seeks instead of reading every
//! match of either; OR is the smallest position of its children.

use super::index::term_channel_prefix;
use crate::cf::Cf;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{prefix_end, KeyBuf};
use crate::read::Reader;
use rocksdb::DBRawIterator;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// `rev(create_at) · post_id`.
pub(crate) type Pos = [u8; 24];

pub(crate) fn pos(create_at: u64, post: Id) -> Pos {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&(u64::MAX - create_at).to_be_bytes());
    out[8..].copy_from_slice(post.as_bytes());
    out
}

pub(crate) fn pos_create_at(pos: &Pos) -> u64 {
    let mut rev = [0u8; 8];
    rev.copy_from_slice(&pos[..8]);
    u64::MAX - u64::from_be_bytes(rev)
}

pub(crate) fn pos_post(pos: &Pos) -> Id {
    let mut id = [0u8; 16];
    id.copy_from_slice(&pos[8..]);
    Id::from_bytes(id)
}

/// The smallest position after `pos`, or None after the last possible one.
pub(crate) fn successor(pos: &Pos) -> Option<Pos> {
    let mut next = *pos;
    for byte in next.iter_mut().rev() {
        if *byte == 0xff {
            *byte = 0;
        } else {
            *byte += 1;
            return Some(next);
        }
    }
    None
}

/// The first position of posts created at or before `t`.
pub(crate) fn pos_at_or_before(t: u64) -> Pos {
    pos(t, Id::NONE)
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
    by_term: HashMap<String, Rc<RefCell<DBRawIterator<'r>>>>,
}

impl<'r> TermIterators<'r> {
    fn get(&mut self, reader: &'r Reader, term: &str) -> Result<Rc<RefCell<DBRawIterator<'r>>>> {
        if let Some(it) = self.by_term.get(term) {
            return Ok(it.clone());
        }
        let lower = KeyBuf::new().str(term).byte(0).build();
        let upper = KeyBuf::new().str(term).byte(1).build();
        let it = reader.raw_iter(Cf::TermChannelidCreateatPostid, &lower, Some(&upper))?;
        let it = Rc::new(RefCell::new(it));
        self.by_term.insert(term.to_string(), it.clone());
        Ok(it)
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
    pub fn seek(&mut self, reader: &Reader, target: &Pos) -> Result<Option<Pos>> {
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
                let mut candidate = *target;
                'agree: loop {
                    for child in children.iter_mut() {
                        match child.seek(reader, &candidate)? {
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
    it: Rc<RefCell<DBRawIterator<'r>>>,
    /// `term · 0x00 · channel`.
    prefix: Vec<u8>,
    head: Option<Pos>,
    done: bool,
}

impl TermCursor<'_> {
    /// The position of the iterator's current key, if it is one of this cursor's keys.
    fn current(&self, it: &DBRawIterator) -> Result<Option<Pos>> {
        match it.key() {
            Some(key) if key.len() == self.prefix.len() + 24 && key.starts_with(&self.prefix) => {
                let mut p = [0u8; 24];
                p.copy_from_slice(&key[self.prefix.len()..]);
                Ok(Some(p))
            }
            _ => {
                it.status()?;
                Ok(None)
            }
        }
    }

    fn seek(&mut self, reader: &Reader, target: &Pos) -> Result<Option<Pos>> {
        if self.done {
            return Ok(None);
        }
        let shared = self.it.clone();
        let mut it = shared.borrow_mut();
        if let Some(head) = self.head {
            if head >= *target {
                return Ok(Some(head));
            }
            // When the shared iterator still stands on this cursor's head, the next key is
            // usually the one wanted: a step is cheaper than a seek.
            if self.current(&it)? == Some(head) {
                it.next();
                reader.count(1);
                match self.current(&it)? {
                    Some(p) if p >= *target => return Ok(self.stand(Some(p))),
                    Some(_) => {}
                    None => return Ok(self.stand(None)),
                }
            }
        }
        let mut key = self.prefix.clone();
        key.extend_from_slice(target);
        it.seek(&key);
        reader.count(1);
        let found = self.current(&it)?;
        Ok(self.stand(found))
    }

    fn stand(&mut self, at: Option<Pos>) -> Option<Pos> {
        self.head = at;
        self.done = at.is_none();
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
                let mut id = [0u8; 16];
                id.copy_from_slice(&key[24..40]);
                Ok(Some(pos(u64::from_be_bytes(t), Id::from_bytes(id))))
            }
            _ => {
                self.it.status()?;
                Ok(None)
            }
        }
    }

    fn seek(&mut self, reader: &Reader, target: &Pos) -> Result<Option<Pos>> {
        if self.done {
            return Ok(None);
        }
        match self.head {
            Some(head) if head >= *target => return Ok(Some(head)),
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
                Some(p) if p >= *target => {
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
