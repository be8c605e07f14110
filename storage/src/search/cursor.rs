//! Cursors over one channel's candidates, newest first. A position is `u64::MAX - create_at`:
//! post times are unique within a channel (apply makes them so), so a position names a post of
//! the channel, and ascending positions are newest first. Every cursor answers `seek(target)`:
//! its first position at or after `target`. Words are leaves over the index's blocks, stepped
//! through in memory; AND is a leapfrog (each child seeks to the largest position any child
//! stands on, until they agree), so two common words that rarely meet skip whole blocks where
//! one of them has none and walk the rest at in-memory speed; OR is the smallest position of its
//! children.
//!
//! A word's blocks are read a row at a time ([`TermRows`]: one bucket, every searched channel),
//! shared by the cursors of all channels. A cursor whose channel has no block in the rows read
//! so far does not read further on its own: it stands at a bound ([`Head::exact`] false), the
//! newest instant of the first bucket not read yet, where nothing newer can match. The search
//! merges bounds with candidates by position and seeks a cursor again when its bound comes
//! first, so older rows are read only when the merge reaches them.

use super::index::{block_of_key, row_prefix, term_channel_prefix, term_prefix};
use super::numbered;
use super::postings::{bucket, SetReader, BUCKET_SHIFT};
use crate::cf::Cf;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{prefix_end, KeyBuf};
use crate::read::Reader;
use rocksdb::DBRawIterator;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
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

/// Where a cursor stands: on a candidate (`exact`), or at a bound: no candidate lies before
/// `pos`, and where one lies is not read yet (seeking `pos` again reads on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub pos: Pos,
    pub exact: bool,
}

impl Head {
    fn exact(pos: Pos) -> Head {
        Head { pos, exact: true }
    }

    /// Whether a seek of `target` is answered by this head as it is: a candidate at or after
    /// `target`, or a bound after it.
    fn answers(self, target: Pos) -> bool {
        self.pos > target || (self.pos == target && self.exact)
    }
}

pub(crate) enum Cursor<'r> {
    /// Posts of one channel holding one term.
    Term(TermCursor<'r>),
    /// Every live post of one channel (filter-only searches).
    Live(LiveCursor<'r>),
    /// Posts of one channel holding every part, from the bitmaps of numbered posts.
    Numbered(Box<NumberedCursor<'r>>),
    And(Vec<Cursor<'r>>),
    Or(Vec<Cursor<'r>>),
    /// Matches nothing (a prefix no term has).
    Empty,
}

/// What the cursors of every channel share per term: creating a RocksDB iterator costs far more
/// than a seek, and a search over 200 channels would otherwise create 200 per word. A term's
/// time blocks are read as rows ([`TermRows`]); its bitmaps of numbered posts through one
/// iterator.
pub(crate) struct TermIterators<'r> {
    bitmaps: HashMap<String, Rc<RefCell<SharedIter<'r>>>>,
    rows: HashMap<String, Rc<RefCell<TermRows<'r>>>>,
    /// The channels searched, ascending: the rows keep their blocks only.
    channels: Rc<[Id]>,
    /// Over `channelid_number_createat`, for every numbered cursor: a channel's candidates are
    /// nearby keys, which a seek from the last finds in the block already read, where a point
    /// lookup starts over each time.
    numbers: Option<Rc<RefCell<DBRawIterator<'r>>>>,
}

impl<'r> TermIterators<'r> {
    pub fn new(channels: &[Id]) -> TermIterators<'r> {
        let mut sorted = channels.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        TermIterators {
            bitmaps: HashMap::new(),
            rows: HashMap::new(),
            channels: sorted.into(),
            numbers: None,
        }
    }

    fn rows(&mut self, reader: &'r Reader, term: &str) -> Result<Rc<RefCell<TermRows<'r>>>> {
        if let Some(rows) = self.rows.get(term) {
            return Ok(rows.clone());
        }
        let prefix = term_prefix(term);
        let upper = KeyBuf::new().str(term).byte(1).build();
        let it = reader.raw_iter(Cf::TermBucketChannelidCreateats, &prefix, Some(&upper))?;
        let rows = Rc::new(RefCell::new(TermRows {
            it,
            prefix,
            channels: self.channels.clone(),
            rows: BTreeMap::new(),
            known: BTreeMap::new(),
        }));
        self.rows.insert(term.to_string(), rows.clone());
        Ok(rows)
    }

    fn numbers(&mut self, reader: &'r Reader) -> Result<Rc<RefCell<DBRawIterator<'r>>>> {
        if let Some(it) = &self.numbers {
            return Ok(it.clone());
        }
        let it = Rc::new(RefCell::new(reader.raw_iter(
            Cf::ChannelidNumberCreateat,
            &[],
            None,
        )?));
        self.numbers = Some(it.clone());
        Ok(it)
    }

    /// The iterator over `term`'s bitmaps of numbered posts.
    fn bitmaps(&mut self, reader: &'r Reader, term: &str) -> Result<Rc<RefCell<SharedIter<'r>>>> {
        if let Some(it) = self.bitmaps.get(term) {
            return Ok(it.clone());
        }
        let lower = term_prefix(term);
        let upper = KeyBuf::new().str(term).byte(1).build();
        let it = reader.raw_iter(Cf::TermChannelidChunkNumbers, &lower, Some(&upper))?;
        let it = Rc::new(RefCell::new(SharedIter { it, gap_from: None }));
        self.bitmaps.insert(term.to_string(), it.clone());
        Ok(it)
    }
}

/// A term's iterator over its bitmaps (keyed channel first) that remembers the gap it just
/// crossed, so that a seek whose answer it already knows costs nothing. The channels' cursors
/// seek in channel order, so for a word
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
    fn seek(&mut self, reader: &Reader, target: &[u8]) -> bool {
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
        reader.count_bitmap_seek();
        self.it.seek(target);
        let gap = self.gap_from.get_or_insert_with(Vec::new);
        gap.clear();
        gap.extend_from_slice(target);
        true
    }

    /// Like [`SharedIter::seek`], but when the iterator stands before `target` it first steps
    /// once: a cursor moving on to its next chunk, or to the next channel's, most often finds
    /// its key right after the current one, and a step costs a fraction of a seek. True when
    /// RocksDB was asked.
    fn seek_near(&mut self, reader: &Reader, target: &[u8]) -> bool {
        if self.it.key().is_some_and(|key| key < target) {
            self.next();
            self.seek(reader, target);
            return true;
        }
        self.seek(reader, target)
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

/// Steps a row's reader takes towards the next searched channel's block before it seeks: a
/// step costs a fraction of a seek, and where the searched channels are most of the row (a
/// user in most of the busy channels) each block is one step away; where they are a few among
/// many, a seek each bounds the cost at what one seek per channel cost before rows.
const STEPS_BEFORE_SEEK: usize = 8;

/// Keys a [`TermRows::read`] reads before it stops at a row's end: a rare word's rows hold a
/// few blocks each, and all of them come in one pass; a common word's first row is more than
/// this, and the next row waits until a cursor needs it.
const ROWS_READ_BUDGET: usize = 64;

/// One term's time blocks in the searched channels, read a row at a time (one bucket: the
/// blocks of all channels, in channel order) and kept for the search, so that the cursors of
/// 200 channels cost one seek and 200 steps where each cost a seek of its own.
pub(crate) struct TermRows<'r> {
    /// Over `term · 0x00 …`.
    it: DBRawIterator<'r>,
    /// `term · 0x00`.
    prefix: Vec<u8>,
    /// The channels searched, ascending.
    channels: Rc<[Id]>,
    /// Rows read: bucket → the searched channels' blocks in it.
    rows: BTreeMap<u32, Row>,
    /// Spans of buckets, lowest → highest (inclusive), whose every row is in `rows`: a bucket in
    /// a span with no row has no block of this term.
    known: BTreeMap<u32, u32>,
}

/// The searched channels' blocks of one bucket, in channel order: channel and value.
type Row = Vec<(Id, Rc<[u8]>)>;

/// What the rows read so far say about a channel's next block.
enum Found {
    /// Its newest block at or before the bucket asked: bucket and value.
    Block(u32, Rc<[u8]>),
    /// None in the rows read down to this bucket, which is not read yet.
    Unread(u32),
    /// None at all.
    End,
}

impl TermRows<'_> {
    /// The lowest bucket of the known span holding `bucket`.
    fn known_from(&self, bucket: u32) -> Option<u32> {
        self.known
            .range(..=bucket)
            .next_back()
            .filter(|(_, high)| **high >= bucket)
            .map(|(low, _)| *low)
    }

    fn mark_known(&mut self, mut low: u32, mut high: u32) {
        let touching: Vec<u32> = self
            .known
            .range(..=high.saturating_add(1))
            .filter(|(_, h)| h.saturating_add(1) >= low)
            .map(|(l, _)| *l)
            .collect();
        for l in touching {
            if let Some(h) = self.known.remove(&l) {
                low = low.min(l);
                high = high.max(h);
            }
        }
        self.known.insert(low, high);
    }

    /// `channel`'s newest block at or before bucket `from`, as far as the rows read tell.
    fn find(&self, channel: Id, from: u32) -> Found {
        let mut at = from;
        loop {
            let Some(low) = self.known_from(at) else {
                return Found::Unread(at);
            };
            for (bucket, blocks) in self.rows.range(low..=at).rev() {
                if let Ok(i) = blocks.binary_search_by(|(c, _)| c.cmp(&channel)) {
                    return Found::Block(*bucket, blocks[i].1.clone());
                }
            }
            match low.checked_sub(1) {
                Some(below) => at = below,
                None => return Found::End,
            }
        }
    }

    /// Reads the newest row at or before bucket `from`, and the rows after it while they are
    /// small ([`ROWS_READ_BUDGET`]); marks what it passed as known.
    fn read(&mut self, reader: &Reader, from: u32) -> Result<()> {
        let mut high = from;
        self.it.seek(row_prefix(&self.prefix, from));
        reader.count(1);
        reader.count_time_block_seek();
        let mut keys = 0usize;
        loop {
            let Some(key) = self.it.key() else {
                self.it.status()?;
                self.mark_known(0, high);
                return Ok(());
            };
            // A key of another shape under this term is not a block: passed over.
            let Some((bucket, _)) = block_of_key(&self.prefix, key).filter(|(b, _)| *b <= high)
            else {
                self.it.next();
                reader.count(1);
                continue;
            };
            if bucket < high {
                self.mark_known(bucket + 1, high);
            }
            if keys >= ROWS_READ_BUDGET {
                return Ok(());
            }
            keys += self.read_row(reader, bucket)?;
            self.mark_known(bucket, bucket);
            match bucket.checked_sub(1) {
                Some(below) => high = below,
                None => return Ok(()),
            }
        }
    }

    /// Reads the row of `bucket`, the iterator standing on its first key; leaves it on the first
    /// key after the row. Returns the keys it read.
    fn read_row(&mut self, reader: &Reader, bucket: u32) -> Result<usize> {
        let row = row_prefix(&self.prefix, bucket);
        let mut target = row.clone();
        let mut blocks = Vec::new();
        let mut keys = 0usize;
        for channel in self.channels.iter() {
            target.truncate(row.len());
            target.extend_from_slice(channel.as_bytes());
            let mut steps = 0;
            while let Some(key) = self.it.key() {
                if !key.starts_with(&row) || key >= target.as_slice() {
                    break;
                }
                if steps < STEPS_BEFORE_SEEK {
                    self.it.next();
                    steps += 1;
                } else {
                    self.it.seek(&target);
                    reader.count_time_block_seek();
                }
                keys += 1;
                reader.count(1);
            }
            match self.it.key() {
                Some(key) if key == target.as_slice() => {
                    let value = self.it.value().unwrap_or_default();
                    blocks.push((*channel, Rc::from(value)));
                    self.it.next();
                    keys += 1;
                    reader.count(1);
                }
                Some(key) if key.starts_with(&row) => {}
                _ => break,
            }
        }
        // Blocks of other channels after the last searched one: skipped with one seek.
        if self.it.key().is_some_and(|key| key.starts_with(&row)) {
            if let Some(next) = prefix_end(&row) {
                self.it.seek(&next);
                keys += 1;
                reader.count(1);
                reader.count_time_block_seek();
            }
        }
        self.it.status()?;
        self.rows.insert(bucket, blocks);
        Ok(keys)
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
            rows: iterators.rows(reader, term)?,
            channel,
            block: None,
            head: None,
            done: false,
        }))
    }

    /// Posts of `channel` holding, for every part, at least one of its terms. `older` finds the
    /// same among posts from before numbering; None when the data directory has none.
    pub fn numbered(
        reader: &'r Reader,
        iterators: &mut TermIterators<'r>,
        channel: Id,
        parts: &[Vec<String>],
        older: Option<Cursor<'r>>,
    ) -> Result<Cursor<'r>> {
        let mut leaves = Vec::with_capacity(parts.len());
        for part in parts {
            let mut terms = Vec::with_capacity(part.len());
            for term in part {
                terms.push(NumberedLeaf {
                    it: iterators.bitmaps(reader, term)?,
                    prefix: term_channel_prefix(term, channel),
                    ahead: VecDeque::new(),
                    ahead_to_end: false,
                });
            }
            leaves.push(terms);
        }
        Ok(Cursor::Numbered(Box::new(NumberedCursor {
            channel,
            numbers: iterators.numbers(reader)?,
            parts: leaves,
            next_chunk: Some(u32::MAX),
            chunk: 0,
            candidates: Vec::new(),
            head: None,
            head_post: None,
            older: match older {
                Some(cursor) => Older::Unknown(Box::new(cursor)),
                None => Older::None,
            },
        })))
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

    /// The post at position `at` where the cursor stands on it and knows it without a read
    /// (a numbered candidate); None otherwise, and the caller finds it by its time.
    pub fn post_at(&self, at: Pos) -> Option<Id> {
        match self {
            Cursor::Numbered(c) if c.head == Some(Head::exact(at)) => c.head_post,
            Cursor::And(children) => children.iter().find_map(|c| c.post_at(at)),
            _ => None,
        }
    }

    /// The first candidate at or after `target`, or a bound at or after it with no candidate
    /// before it; None when there is none.
    pub fn seek(&mut self, reader: &Reader, target: Pos) -> Result<Option<Head>> {
        match self {
            Cursor::Term(c) => c.seek(reader, target),
            Cursor::Live(c) => Ok(c.seek(reader, target)?.map(Head::exact)),
            Cursor::Numbered(c) => c.seek(reader, target),
            Cursor::Empty => Ok(None),
            Cursor::Or(children) => {
                // The first child's head; a candidate where a bound stands at the same place.
                let mut best: Option<Head> = None;
                for child in children.iter_mut() {
                    if let Some(h) = child.seek(reader, target)? {
                        best = Some(match best {
                            Some(b) if b.pos < h.pos => b,
                            Some(b) if b.pos == h.pos => Head {
                                pos: b.pos,
                                exact: b.exact || h.exact,
                            },
                            _ => h,
                        });
                    }
                }
                Ok(best)
            }
            Cursor::And(children) => {
                // A child at a bound has nothing before it, so neither has the AND: the bound
                // is the AND's, and the other children read nothing for it until the search
                // gets there (seeking them to it would read their rows there, and the bound's
                // child read on to a candidate, however far back the channel's first one lies).
                let mut candidate = target;
                'agree: loop {
                    for child in children.iter_mut() {
                        match child.seek(reader, candidate)? {
                            None => return Ok(None),
                            Some(h) if !h.exact => return Ok(Some(h)),
                            Some(h) if h.pos > candidate => {
                                candidate = h.pos;
                                continue 'agree;
                            }
                            Some(_) => {}
                        }
                    }
                    return Ok(Some(Head::exact(candidate)));
                }
            }
        }
    }
}

pub(crate) struct TermCursor<'r> {
    rows: Rc<RefCell<TermRows<'r>>>,
    channel: Id,
    /// The block the head is in, and its times after the head.
    block: Option<Block>,
    head: Option<Head>,
    done: bool,
}

/// A postings block being read.
struct Block {
    bucket: u32,
    times: SetReader,
}

impl TermCursor<'_> {
    /// The first position at or after `target`: first in the rest of the current block when
    /// `target` falls in it, else in the channel's newest block at or before `target`'s bucket
    /// among the rows read. The row of `target`'s bucket is read when it is not yet; a block
    /// further back, in a row not read yet, is not looked for: the cursor stands at that row's
    /// bound. Stepping within a block allocates nothing.
    fn seek(&mut self, reader: &Reader, target: Pos) -> Result<Option<Head>> {
        if self.done {
            return Ok(None);
        }
        if let Some(head) = self.head.filter(|head| head.answers(target)) {
            return Ok(Some(head));
        }
        let target_bucket = bucket(pos_create_at(target));
        let mut from = target_bucket;
        if let Some(block) = self.block.as_mut().filter(|b| b.bucket == target_bucket) {
            if let Some(t) = block.times.by_ref().find(|t| pos(*t) >= target) {
                return Ok(self.stand(Some(Head::exact(pos(t)))));
            }
            match target_bucket.checked_sub(1) {
                Some(below) => from = below,
                None => return Ok(self.stand(None)),
            }
        }
        self.block = None;
        let rows = self.rows.clone();
        let mut rows = rows.borrow_mut();
        loop {
            match rows.find(self.channel, from) {
                Found::End => return Ok(self.stand(None)),
                Found::Block(bucket, value) => {
                    let mut times = SetReader::shared(&value);
                    if let Some(t) = times.by_ref().find(|t| pos(*t) >= target) {
                        self.block = Some(Block { bucket, times });
                        return Ok(self.stand(Some(Head::exact(pos(t)))));
                    }
                    match bucket.checked_sub(1) {
                        Some(below) => from = below,
                        None => return Ok(self.stand(None)),
                    }
                }
                Found::Unread(bucket) if bucket == target_bucket => rows.read(reader, bucket)?,
                Found::Unread(bucket) => {
                    // Nothing of the channel before this bucket's newest instant.
                    let newest = ((u64::from(bucket) + 1) << BUCKET_SHIFT) - 1;
                    return Ok(self.stand(Some(Head {
                        pos: pos(newest),
                        exact: false,
                    })));
                }
            }
        }
    }

    fn stand(&mut self, at: Option<Head>) -> Option<Head> {
        self.head = at;
        self.done = at.is_none();
        if at.is_none() {
            self.block = None;
        }
        at
    }
}

/// Older chunks a [`NumberedLeaf`] reads ahead of the one asked for. A cursor that found no
/// match in a chunk stops at a bound ([`NumberedCursor::seek`]), and the merge then reads the
/// chunks of all channels in time order: each read of a channel's chunk is a seek out of the
/// last channel's chunks. The next older chunk, a step away when the iterator stands on the
/// asked one, is most often the channel's next read: kept, it saves that read its seek.
const CHUNKS_READ_AHEAD: usize = 1;

/// One term of a [`NumberedCursor`] part.
pub(crate) struct NumberedLeaf<'r> {
    it: Rc<RefCell<SharedIter<'r>>>,
    /// `term · 0x00 · channel`.
    prefix: Vec<u8>,
    /// Chunks read ahead with their stored values, newest first: every chunk of the term in
    /// this channel from the newest at or before the last chunk asked for down to the last
    /// entry (a cursor asks for ever older chunks, so the newer ones were dropped).
    ahead: VecDeque<(u32, Vec<u8>)>,
    /// `ahead` runs to the channel's oldest chunk: below its last entry there is none.
    ahead_to_end: bool,
}

impl NumberedLeaf<'_> {
    /// The newest chunk at or before `chunk` holding the term, with its bitmap. A cursor asks
    /// for chunks newest first, never for a newer one than it asked for before.
    fn chunk_at_or_before(
        &mut self,
        reader: &Reader,
        chunk: u32,
    ) -> Result<Option<(u32, numbered::ChunkBits)>> {
        while self.ahead.front().is_some_and(|(c, _)| *c > chunk) {
            self.ahead.pop_front();
        }
        if let Some((found, value)) = self.ahead.front() {
            return Ok(Some((*found, numbered::decode(value))));
        }
        if self.ahead_to_end {
            return Ok(None);
        }
        let target = numbered::chunk_key_after_prefix(&self.prefix, chunk);
        let shared = self.it.clone();
        let mut it = shared.borrow_mut();
        if it.seek_near(reader, &target) {
            reader.count(1);
        }
        loop {
            let Some(key) = it.key().filter(|key| key.starts_with(&self.prefix)) else {
                it.status()?;
                return Ok(None);
            };
            let Some(found) = self.chunk_of(key) else {
                // A key of another shape under this prefix is not a chunk: passed over.
                it.next();
                reader.count(1);
                continue;
            };
            let value = it.value().unwrap_or_default();
            let bits = numbered::decode(value);
            self.ahead.push_back((found, value.to_vec()));
            self.read_ahead(reader, &mut it)?;
            return Ok(Some((found, bits)));
        }
    }

    /// Steps on past the chunk just read, [`CHUNKS_READ_AHEAD`] keys, keeping the older
    /// chunks it finds.
    fn read_ahead(&mut self, reader: &Reader, it: &mut SharedIter<'_>) -> Result<()> {
        for _ in 0..CHUNKS_READ_AHEAD {
            it.next();
            reader.count(1);
            let Some(key) = it.key().filter(|key| key.starts_with(&self.prefix)) else {
                it.status()?;
                self.ahead_to_end = true;
                return Ok(());
            };
            if let Some(found) = self.chunk_of(key) {
                let value = it.value().unwrap_or_default().to_vec();
                self.ahead.push_back((found, value));
            }
        }
        Ok(())
    }

    /// The chunk a key under this leaf's prefix stands for; None for a key of another shape.
    fn chunk_of(&self, key: &[u8]) -> Option<u32> {
        let rev = <[u8; 4]>::try_from(key.get(self.prefix.len()..)?).ok()?;
        Some(u32::MAX - u32::from_be_bytes(rev))
    }
}

/// Where the posts from before a channel's numbering stand.
enum Older<'r> {
    /// Not looked up yet (read when the numbered posts run out).
    Unknown(Box<Cursor<'r>>),
    /// Searched from this position on (the channel's posts older than its first numbered one).
    From(Box<Cursor<'r>>, Pos),
    None,
}

/// Posts of one channel holding every part (a part: any of its terms), newest first: each
/// chunk's bitmaps ANDed (a part's terms ORed), the numbers that remain mapped to their times.
pub(crate) struct NumberedCursor<'r> {
    channel: Id,
    /// Shared by the search's numbered cursors ([`TermIterators`]).
    numbers: Rc<RefCell<DBRawIterator<'r>>>,
    parts: Vec<Vec<NumberedLeaf<'r>>>,
    /// The newest chunk not read yet; None when every chunk was read.
    next_chunk: Option<u32>,
    /// The chunk `candidates` come from.
    chunk: u32,
    /// The chunk's numbers (within it) holding every part, ascending: the next is the last.
    candidates: Vec<u32>,
    head: Option<Head>,
    /// The post at `head` when it is a numbered one (an older one is found by its time).
    head_post: Option<Id>,
    older: Older<'r>,
}

impl NumberedCursor<'_> {
    /// The first candidate at or after `target`. A chunk read that offers none stops at a
    /// bound (the chunk's first post: every later candidate is older) instead of reading the
    /// next chunk: the search reads the channel on only when the merge gets there. Where two
    /// words rarely meet, a channel's newest match may lie many chunks back, and a page of
    /// the newest matches of 200 channels needs few of them.
    fn seek(&mut self, reader: &Reader, target: Pos) -> Result<Option<Head>> {
        if let Some(head) = self.head.filter(|head| head.answers(target)) {
            return Ok(Some(head));
        }
        let mut read = false;
        loop {
            while let Some((p, post)) = self.next_candidate(reader)? {
                if p >= target {
                    self.head = Some(Head::exact(p));
                    self.head_post = Some(post);
                    return Ok(self.head);
                }
            }
            let Some(from) = self.next_chunk else {
                break;
            };
            if read {
                if let Some(bound) = self.chunk_bound(reader)?.filter(|b| *b > target) {
                    self.head = Some(Head {
                        pos: bound,
                        exact: false,
                    });
                    self.head_post = None;
                    return Ok(self.head);
                }
            }
            match self.read_chunk(reader, from)? {
                Some(chunk) => self.next_chunk = chunk.checked_sub(1),
                None => self.next_chunk = None,
            }
            read = true;
        }
        let at = self.older_seek(reader, target)?;
        self.head = at;
        self.head_post = None;
        Ok(at)
    }

    /// The next candidate of the chunk read last, with its position and post.
    fn next_candidate(&mut self, reader: &Reader) -> Result<Option<(Pos, Id)>> {
        while let Some(within) = self.candidates.pop() {
            let number = u64::from(self.chunk) * numbered::CHUNK + u64::from(within);
            if let Some((time, post)) = self.number_post(reader, number)? {
                return Ok(Some((pos(time), post)));
            }
        }
        Ok(None)
    }

    /// The bound below the chunk read last: just past its first post, older than which every
    /// candidate still to come lies. None when that number's entry is missing.
    fn chunk_bound(&mut self, reader: &Reader) -> Result<Option<Pos>> {
        let time = match reader.chunk_start(self.channel, self.chunk) {
            Some(time) => time,
            None => {
                let first = u64::from(self.chunk) * numbered::CHUNK;
                let Some((time, _)) = self.number_post(reader, first)? else {
                    return Ok(None);
                };
                reader.remember_chunk_start(self.channel, self.chunk, time);
                time
            }
        };
        Ok(Some(pos(time).saturating_add(1)))
    }

    /// The time and post of `number` in this channel.
    fn number_post(&mut self, reader: &Reader, number: u64) -> Result<Option<(u64, Id)>> {
        let key = numbered::number_key(self.channel, number);
        let mut it = self.numbers.borrow_mut();
        it.seek(&key);
        reader.count(1);
        match (it.key(), it.value()) {
            (Some(k), Some(value)) if k == key.as_slice() => Ok(numbered::value_post(value)),
            _ => {
                it.status()?;
                Ok(None)
            }
        }
    }

    /// Fills `candidates` from the newest chunk at or before `from` that every part has;
    /// returns that chunk, or None when there is none.
    fn read_chunk(&mut self, reader: &Reader, from: u32) -> Result<Option<u32>> {
        // Nothing required would match every chunk; the planner never asks for it.
        if self.parts.is_empty() {
            return Ok(None);
        }
        let mut chunk = from;
        'agree: loop {
            let mut all: Option<numbered::ChunkBits> = None;
            for part in &mut self.parts {
                let mut union: Option<(u32, numbered::ChunkBits)> = None;
                for leaf in part.iter_mut() {
                    let Some((found, bits)) = leaf.chunk_at_or_before(reader, chunk)? else {
                        continue;
                    };
                    union = match union {
                        Some((c, u)) if c > found => Some((c, u)),
                        Some((c, mut u)) if c == found => {
                            u.or_with(&bits);
                            Some((c, u))
                        }
                        _ => Some((found, bits)),
                    };
                }
                let Some((found, bits)) = union else {
                    return Ok(None);
                };
                if found < chunk {
                    chunk = found;
                    continue 'agree;
                }
                all = Some(match all {
                    Some(mut a) => {
                        a.and_with(&bits);
                        a
                    }
                    None => bits,
                });
            }
            self.chunk = chunk;
            self.candidates = all.map(|a| a.ascending()).unwrap_or_default();
            return Ok(Some(chunk));
        }
    }

    /// Posts from before numbering, at or after `target`.
    fn older_seek(&mut self, reader: &Reader, target: Pos) -> Result<Option<Head>> {
        if let Older::Unknown(_) = self.older {
            let key = numbered::number_key(self.channel, 0);
            let numbering = reader
                .get_raw(Cf::ChannelidNumberCreateat, &key)?
                .and_then(|value| numbered::value_numbering(&value));
            let Older::Unknown(cursor) = std::mem::replace(&mut self.older, Older::None) else {
                return Ok(None);
            };
            self.older = match numbering {
                None => Older::From(cursor, 0),
                Some(n) if n.older => Older::From(cursor, pos(n.since).saturating_add(1)),
                Some(_) => Older::None,
            };
        }
        match &mut self.older {
            Older::From(cursor, from) => cursor.seek(reader, target.max(*from)),
            _ => Ok(None),
        }
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
