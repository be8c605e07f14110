//! Numbered posts, for searches that AND two or more terms. Apply gives each post of a channel
//! the channel's next number (0, 1, 2, … in creation order, since post times increase within a
//! channel), and keeps, beside the time blocks of [`super::postings`], a bitset per term, channel
//! and chunk of [`CHUNK`] numbers: `term_channelid_chunk_numbers`. Two common words are then
//! intersected 64 posts at a time, one machine word, instead of walking every post of both, so
//! such a search costs its channels and its page, not the number of posts holding either word.
//! `channelid_number_createat` maps a number back to its post's time (the position every other
//! cursor speaks) and id.
//!
//! Why not RoaringBitmap: it ANDs a machine word at a time only in containers of 65,536 numbers
//! holding over 4,096 of them. A channel's chunk here is 4,096 numbers, where a common word holds
//! a few hundred, which roaring keeps as sorted arrays and intersects by merging; measured on the
//! search bench, that cost more than the time blocks' walk for a phrase (BENCHMARKS.md).
//!
//! Apply never reads a bitset: it writes the same "add n" / "remove n" operands as the time
//! blocks ([`postings::add`], [`postings::combine`]); the merge operator below folds them into a
//! chunk's bitset ([`DENSE`], or [`SPARSE`] when a list is smaller), so every replica reads the
//! same bitsets and a snapshot (which exports merged values) carries them.
//!
//! Posts written before numbering existed have no number: channels from before count from their
//! first post after the upgrade, and number 0's entry says whether older, unnumbered posts exist
//! ([`Numbering`]); a search finds those through the time blocks. A data directory created with
//! numbering has none (`meta` [`ALL_NUMBERED_KEY`]), and a search skips that read. A replica
//! still running an earlier version during a rolling upgrade numbers nothing; its answers stay
//! right (through the time blocks), only slower, until it runs this one — but the numbers it
//! did not give make its state differ from the others', like any change to what apply writes.

use super::index::term_channel_prefix;
use super::postings;
use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;
use crate::id::Id;
use crate::keys::KeyBuf;
use crate::model::{Channel, Post};
use crate::txn::Txn;
use rocksdb::MergeOperands;
use std::collections::{BTreeMap, HashMap};

/// Numbers per chunk: a chunk's bitset is 512 bytes, ANDed in 64 word operations, and a search
/// whose page fills from a channel's newest posts reads that channel's newest chunk only.
pub const CHUNK: u64 = 1 << 12;

/// Encoding tag of a merged value: the chunk's bitset, 64 little-endian u64 words, bit
/// `number % CHUNK` set when the post holds the term. (Operands are [`postings::OPS`].)
pub(crate) const DENSE: u8 = 3;

/// Encoding tag of a merged value with few numbers: `number % CHUNK` as little-endian u16s,
/// ascending.
pub(crate) const SPARSE: u8 = 4;

/// The `meta` key present (value `1`) when every post of the data directory is numbered: it was
/// empty when this version first opened it.
pub(crate) const ALL_NUMBERED_KEY: &[u8] = b"search_all_numbered";

impl Engine {
    /// At open: a data directory with no channel and no post numbers every post it will ever
    /// hold, and says so once ([`ALL_NUMBERED_KEY`]); the marker travels in snapshots.
    pub(crate) fn init_numbering(&self) -> Result<()> {
        let meta = self.cf(Cf::Meta)?;
        if self.db.get_cf(meta, ALL_NUMBERED_KEY)?.is_some() {
            return Ok(());
        }
        let empty = |cf: Cf| -> Result<bool> {
            let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
            it.seek_to_first();
            it.status()?;
            Ok(!it.valid())
        };
        if empty(Cf::ChannelidChannel)? && empty(Cf::PostidPost)? {
            self.db.put_cf(meta, ALL_NUMBERED_KEY, [1])?;
        }
        Ok(())
    }
}

impl Engine {
    /// Rewrites the state as a data directory from before numbering would hold it: no post or
    /// channel numbered, no bitmaps, no number times, no marker. For tests of what an upgraded
    /// directory answers; never called by the server.
    #[doc(hidden)]
    pub fn forget_post_numbering(&self) -> Result<()> {
        let _applying = self.apply_lock.lock();
        let mut batch = rocksdb::WriteBatch::default();
        for cf in [Cf::TermChannelidChunkNumbers, Cf::ChannelidNumberCreateat] {
            self.delete_every_key(&mut batch, cf)?;
        }
        batch.delete_cf(self.cf(Cf::Meta)?, ALL_NUMBERED_KEY);
        let posts = self.cf(Cf::PostidPost)?;
        for item in self.db.iterator_cf(posts, rocksdb::IteratorMode::Start) {
            let (key, value) = item?;
            let mut post: Post = rmp_serde::from_slice(&value)?;
            post.search_number = None;
            batch.put_cf(posts, key, rmp_serde::to_vec(&post)?);
        }
        let channels = self.cf(Cf::ChannelidChannel)?;
        for item in self.db.iterator_cf(channels, rocksdb::IteratorMode::Start) {
            let (key, value) = item?;
            let mut channel: Channel = rmp_serde::from_slice(&value)?;
            channel.next_post_number = None;
            batch.put_cf(channels, key, rmp_serde::to_vec(&channel)?);
        }
        self.db.write(batch)?;
        Ok(())
    }
}

impl Engine {
    /// Deletes every term's time blocks, leaving the bitmaps: what a search still finds is what
    /// it finds from the bitmaps alone. For tests that show which path a search takes; never
    /// called by the server.
    #[doc(hidden)]
    pub fn forget_time_blocks(&self) -> Result<()> {
        let _applying = self.apply_lock.lock();
        let mut batch = rocksdb::WriteBatch::default();
        self.delete_every_key(&mut batch, Cf::TermBucketChannelidCreateats)?;
        self.db.write(batch)?;
        Ok(())
    }
}

/// The time of each chunk's first post, remembered across searches: a search that reads a
/// chunk without a match stops at a bound there ([`super::cursor`]), and looking the time up
/// cost a third of the AND of two words that rarely meet at 10M posts. A number keeps its time
/// for good (numbers are never reused, a deleted post's number keeps it), so an entry stays
/// true until the state is replaced wholesale: entries are kept per state generation (the
/// sessions epoch, which a snapshot import advances) and dropped when it moves on.
#[derive(Default)]
pub(crate) struct ChunkStarts {
    inner: parking_lot::Mutex<ChunkStartsInner>,
}

#[derive(Default)]
struct ChunkStartsInner {
    generation: u64,
    times: HashMap<(Id, u32), u64>,
}

/// Chunks remembered at most (about 48 bytes each): past it the map starts over.
const CHUNK_STARTS_MAX: usize = 100_000;

impl ChunkStarts {
    /// The first post time of `chunk` of `channel`, if remembered for `generation`.
    pub fn get(&self, generation: u64, channel: Id, chunk: u32) -> Option<u64> {
        let inner = self.inner.lock();
        if inner.generation != generation {
            return None;
        }
        inner.times.get(&(channel, chunk)).copied()
    }

    /// Remembers a time read by a reader of `generation`; one of an older generation than the
    /// map's is not kept, a newer one starts the map over.
    pub fn insert(&self, generation: u64, channel: Id, chunk: u32, time: u64) {
        let mut inner = self.inner.lock();
        if generation < inner.generation {
            return;
        }
        if generation > inner.generation || inner.times.len() >= CHUNK_STARTS_MAX {
            inner.times.clear();
            inner.generation = generation;
        }
        inner.times.insert((channel, chunk), time);
    }
}

/// The chunk a number falls in.
pub(crate) fn chunk(number: u64) -> u32 {
    u32::try_from(number / CHUNK).unwrap_or(u32::MAX)
}

/// `term · 0x00 · channel · rev(chunk)`: newer chunks sort first under a term and channel.
pub(crate) fn chunk_key(term: &str, channel: Id, chunk: u32) -> Vec<u8> {
    chunk_key_after_prefix(&term_channel_prefix(term, channel), chunk)
}

/// [`chunk_key`] for a `term · 0x00 · channel` prefix already built.
pub(crate) fn chunk_key_after_prefix(prefix: &[u8], chunk: u32) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&(u32::MAX - chunk).to_be_bytes());
    key
}

/// `channel · number`.
pub(crate) fn number_key(channel: Id, number: u64) -> Vec<u8> {
    KeyBuf::new().id(channel).u64(number).build()
}

/// What number 0's entry records: where a channel's numbering starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Numbering {
    /// The creation time of the channel's first numbered post.
    pub since: u64,
    /// The channel has posts from before numbering (found only through the time blocks).
    pub older: bool,
}

/// A `channelid_number_createat` value: the post's time and id (a search needs both, and reads
/// neither `channelid_createat_postid` nor anything else to find the post), and for number 0
/// whether older unnumbered posts exist.
fn number_value(create_at: u64, post: Id, older: Option<bool>) -> Vec<u8> {
    let mut value = create_at.to_be_bytes().to_vec();
    value.extend_from_slice(post.as_bytes());
    if let Some(older) = older {
        value.push(u8::from(older));
    }
    value
}

/// The time and post a `channelid_number_createat` value holds; None when malformed.
pub(crate) fn value_post(value: &[u8]) -> Option<(u64, Id)> {
    let time = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    Some((time, Id::from_slice(value.get(8..24)?)?))
}

/// Number 0's entry read as a [`Numbering`].
pub(crate) fn value_numbering(value: &[u8]) -> Option<Numbering> {
    Some(Numbering {
        since: value_post(value)?.0,
        older: value.get(24).is_some_and(|b| *b == 1),
    })
}

/// Gives a new post its channel's next number and records the number's time and post; the
/// post's terms reach the bitmaps through [`write_bits`]. A channel record from before numbering
/// starts at 0, marked as having older posts.
pub(crate) fn number_new_post(txn: &mut Txn, channel: &mut Channel, post: &mut Post) {
    let (number, older) = match channel.next_post_number {
        Some(n) => (n, false),
        None => (0, true),
    };
    channel.next_post_number = Some(number.saturating_add(1));
    post.search_number = Some(number);
    let older = (number == 0).then_some(older);
    txn.put_raw(
        Cf::ChannelidNumberCreateat,
        number_key(channel.id, number),
        number_value(post.create_at, post.id, older),
    );
}

/// Writes that a numbered `post` holds (`present`) or no longer holds each of `terms` to their
/// chunks' bitsets; a post from before numbering has none to write.
pub(crate) fn write_bits<'t>(
    txn: &mut Txn,
    terms: impl IntoIterator<Item = &'t String>,
    post: &Post,
    present: bool,
) {
    let Some(number) = post.search_number else {
        return;
    };
    let operand = if present {
        postings::add(number % CHUNK)
    } else {
        postings::remove(number % CHUNK)
    };
    for term in terms {
        let key = chunk_key(term, post.channel_id, chunk(number));
        txn.merge(Cf::TermChannelidChunkNumbers, key, operand.clone());
    }
}

/// The numbers of one chunk holding a term, as a bitset in memory: ANDing two chunks is 64
/// machine-word ANDs, whatever their density.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ChunkBits([u64; WORDS]);

impl std::fmt::Debug for ChunkBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.ascending()).finish()
    }
}

impl Default for ChunkBits {
    fn default() -> ChunkBits {
        ChunkBits([0; WORDS])
    }
}

impl ChunkBits {
    pub fn set(&mut self, n: u32, present: bool) {
        let n = n as usize;
        if n >= CHUNK as usize {
            return;
        }
        if present {
            self.0[n / 64] |= 1 << (n % 64);
        } else {
            self.0[n / 64] &= !(1 << (n % 64));
        }
    }

    pub fn and_with(&mut self, other: &ChunkBits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    pub fn or_with(&mut self, other: &ChunkBits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// The numbers present, ascending.
    pub fn ascending(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, word) in self.0.iter().enumerate() {
            let mut w = *word;
            while w != 0 {
                out.push(i as u32 * 64 + w.trailing_zeros());
                w &= w - 1;
            }
        }
        out
    }
}

/// Words of a chunk's bitset.
const WORDS: usize = (CHUNK / 64) as usize;

/// At or below this many numbers a chunk is stored as a list (2 bytes each), above as the
/// bitset (512 bytes): whichever is smaller.
const SPARSE_MAX: u32 = (WORDS * 8 / 2) as u32;

/// A stored value as a bitset: [`DENSE`] or [`SPARSE`] decoded, an operand folded from empty;
/// anything else (a damaged value) reads as empty, so the index never makes a read fail.
pub(crate) fn decode(value: &[u8]) -> ChunkBits {
    let mut bits = ChunkBits::default();
    match value.split_first() {
        Some((&DENSE, rest)) if rest.len() == WORDS * 8 => {
            for (word, bytes) in bits.0.iter_mut().zip(rest.chunks_exact(8)) {
                let mut le = [0u8; 8];
                le.copy_from_slice(bytes);
                *word = u64::from_le_bytes(le);
            }
        }
        Some((&SPARSE, rest)) => {
            for pair in rest.chunks_exact(2) {
                bits.set(u32::from(u16::from_le_bytes([pair[0], pair[1]])), true);
            }
        }
        Some((&postings::OPS, _)) => apply_ops(&mut bits, [value]),
        _ => {}
    }
    bits
}

/// Applies operands, in order, to `bits` (for each number the last operand wins).
fn apply_ops<'a>(bits: &mut ChunkBits, operands: impl IntoIterator<Item = &'a [u8]>) {
    let mut folded = BTreeMap::new();
    for operand in operands {
        postings::fold_into(&mut folded, operand);
    }
    for (number, present) in folded {
        if let Ok(number) = u32::try_from(number) {
            bits.set(number, present);
        }
    }
}

fn encode(bits: &ChunkBits) -> Vec<u8> {
    if bits.len() <= SPARSE_MAX {
        let mut out = vec![SPARSE];
        for n in bits.ascending() {
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        out
    } else {
        let mut out = Vec::with_capacity(1 + WORDS * 8);
        out.push(DENSE);
        for word in &bits.0 {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }
}

/// The full merge: the older value (if any) and every operand, in order, to [`DENSE`] or
/// [`SPARSE`]. Never fails, since a failed merge is a read error for RocksDB.
pub(crate) fn full_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut bits = existing.map(decode).unwrap_or_default();
    apply_ops(&mut bits, operands.iter());
    Some(encode(&bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(existing: Option<&[u8]>, operands: &[Vec<u8>]) -> Vec<u32> {
        let mut bits = existing.map(decode).unwrap_or_default();
        apply_ops(&mut bits, operands.iter().map(Vec::as_slice));
        decode(&encode(&bits)).ascending()
    }

    fn stored(numbers: impl IntoIterator<Item = u32>) -> Vec<u8> {
        let mut bits = ChunkBits::default();
        for n in numbers {
            bits.set(n, true);
        }
        encode(&bits)
    }

    #[test]
    fn operands_fold_in_order_over_the_stored_bitset() {
        let first = merged(
            None,
            &[postings::add(5), postings::add(4_095), postings::add(9)],
        );
        assert_eq!(first, vec![5, 9, 4_095]);
        let value = stored(first);
        assert_eq!(value[0], SPARSE);
        let later = merged(
            Some(&value),
            &[
                postings::remove(9),
                postings::add(1),
                postings::remove(9),
                postings::add(9),
            ],
        );
        assert_eq!(later, vec![1, 5, 9, 4_095]);
        // A partial merge (operands combined without the value) keeps removes.
        let combined = postings::combine([postings::remove(5).as_slice(), &postings::add(2)]);
        assert_eq!(merged(Some(&value), &[combined]), vec![2, 9, 4_095]);
    }

    #[test]
    fn a_chunk_is_stored_in_its_smaller_form_and_reads_back() {
        let few: Vec<u32> = (0..SPARSE_MAX).map(|n| n * 3).collect();
        let value = stored(few.clone());
        assert_eq!((value[0], value.len()), (SPARSE, 1 + 2 * few.len()));
        assert_eq!(decode(&value).ascending(), few);
        let many: Vec<u32> = (0..=SPARSE_MAX).map(|n| n * 3).collect();
        let value = stored(many.clone());
        assert_eq!((value[0], value.len()), (DENSE, 1 + 512));
        assert_eq!(decode(&value).ascending(), many);
        let (mut a, b) = (decode(&value), decode(&stored([3, 4, 6, 4_000])));
        a.and_with(&b);
        assert_eq!(a.ascending(), vec![3, 6]);
    }

    #[test]
    fn chunk_starts_are_kept_for_one_state_generation() {
        let starts = ChunkStarts::default();
        let (a, b) = (Id::from_bytes([1; 16]), Id::from_bytes([2; 16]));
        starts.insert(3, a, 7, 700);
        assert_eq!(starts.get(3, a, 7), Some(700));
        assert_eq!(starts.get(3, a, 6), None);
        assert_eq!(starts.get(3, b, 7), None);
        // A reader of another generation neither sees the times nor files its own there.
        assert_eq!(starts.get(4, a, 7), None);
        assert_eq!(starts.get(2, a, 7), None);
        starts.insert(2, b, 1, 100);
        assert_eq!(starts.get(2, b, 1), None);
        assert_eq!(starts.get(3, b, 1), None);
        // A newer generation (a snapshot imported) starts over.
        starts.insert(4, b, 1, 111);
        assert_eq!(starts.get(4, b, 1), Some(111));
        assert_eq!(starts.get(4, a, 7), None);
        assert_eq!(starts.get(3, a, 7), None);
        // Full, it starts over rather than grow.
        for chunk in 0..CHUNK_STARTS_MAX as u32 {
            starts.insert(4, a, chunk, u64::from(chunk));
        }
        assert_eq!(starts.get(4, b, 1), None);
        assert_eq!(starts.get(4, a, 0), None);
        let last = CHUNK_STARTS_MAX as u32 - 1;
        assert_eq!(starts.get(4, a, last), Some(u64::from(last)));
        assert!(starts.inner.lock().times.len() <= CHUNK_STARTS_MAX);
    }

    #[test]
    fn damaged_values_read_as_empty() {
        assert_eq!(decode(&[]).len(), 0);
        assert_eq!(decode(&[DENSE, 1, 2, 3]).len(), 0);
        assert_eq!(decode(&[SPARSE, 1]).len(), 0);
        assert_eq!(decode(&[99, 1]).len(), 0);
        assert_eq!(value_post(&[1, 2]), None);
        let post = Id::from_bytes([5; 16]);
        assert_eq!(value_post(&number_value(7, post, None)), Some((7, post)));
        assert_eq!(
            value_numbering(&number_value(7, post, Some(true))),
            Some(Numbering {
                since: 7,
                older: true
            })
        );
        assert_eq!(
            value_numbering(&number_value(7, post, None)).map(|n| n.older),
            Some(false)
        );
    }
}
