//! Postings in blocks: the post search index keeps one value per term, channel and span of
//! [`BUCKET_MS`] — the creation times of the posts of that channel holding that term, newest
//! first, delta-coded varints. A search then steps through a term's posts in memory, a few
//! nanoseconds each, and reads RocksDB once per block instead of once per post; two common words
//! that rarely meet are intersected at that speed instead of one iterator step per position.
//!
//! Apply never reads a block. It writes a RocksDB merge operand, "add t" or "remove t", and the
//! merge operator below folds operands into blocks when RocksDB reads, flushes or compacts. The
//! fold is a pure function of the operands in log order (for each time, the last operand wins),
//! so every replica reads the same blocks, and a snapshot (which exports merged values) carries
//! them. Within a channel post times are unique (apply makes them so), so a time names a post;
//! the search maps it back to the post id through `channelid_createat_postid`.
//!
//! Two encodings, told apart by the first byte:
//! - [`SET`]: times present, newest first: `varint(t0)`, then `varint(t[i-1] - t[i])` (≥ 1). What a
//!   full merge writes and what every read sees.
//! - [`OPS`]: `varint(delta)` and a flag byte per time (`1` add, `0` remove), newest first. An
//!   operand, or several operands folded without the older value (a partial merge): removes are
//!   kept, since the older value may hold the time.
//!
//! The span bounds a block's size by time, with no read at apply: a busy channel's common word
//! fills a larger block, a quiet channel's a small one.

use integer_encoding::VarInt;
use rocksdb::MergeOperands;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Posts of one channel created within the same 2^31 ms (≈ 24.9 days) share a block.
pub(crate) const BUCKET_SHIFT: u32 = 31;

/// The span of one block, in milliseconds.
pub const BUCKET_MS: u64 = 1 << BUCKET_SHIFT;

/// Encoding tag: a sorted set of present times.
pub(crate) const SET: u8 = 1;

/// Encoding tag: times with add / remove flags.
pub(crate) const OPS: u8 = 2;

/// The block a creation time falls in.
pub(crate) fn bucket(create_at: u64) -> u32 {
    u32::try_from(create_at >> BUCKET_SHIFT).unwrap_or(u32::MAX)
}

/// The operand that puts `create_at` in its block.
pub(crate) fn add(create_at: u64) -> Vec<u8> {
    encode_ops([(create_at, true)])
}

/// The operand that takes `create_at` out of its block.
pub(crate) fn remove(create_at: u64) -> Vec<u8> {
    encode_ops([(create_at, false)])
}

/// Appends `t` as a varint: whole for the first time, else its distance below the previous.
fn push_time(out: &mut Vec<u8>, previous: &mut Option<u64>, t: u64) {
    let value = previous.map_or(t, |p| p.saturating_sub(t));
    let mut buf = [0u8; 10];
    let n = value.encode_var(&mut buf);
    out.extend_from_slice(&buf[..n]);
    *previous = Some(t);
}

/// `(time, present)` pairs, newest first, as [`OPS`].
fn encode_ops(entries: impl IntoIterator<Item = (u64, bool)>) -> Vec<u8> {
    let mut out = vec![OPS];
    let mut previous: Option<u64> = None;
    for (t, present) in entries {
        push_time(&mut out, &mut previous, t);
        out.push(u8::from(present));
    }
    out
}

/// Present times, newest first, as [`SET`].
pub(crate) fn encode_set(times: impl IntoIterator<Item = u64>) -> Vec<u8> {
    let mut out = vec![SET];
    let mut previous: Option<u64> = None;
    for t in times {
        push_time(&mut out, &mut previous, t);
    }
    out
}

/// Reads the times of a [`SET`] value one by one, newest first. A value that is not a well-formed
/// set ends early: the index can never make a read fail or panic.
#[derive(Debug, Clone)]
pub(crate) struct SetReader {
    /// Shared with the row a search read it from ([`SetReader::shared`]): a common word's
    /// block is a few kilobytes, and copying it for each channel's cursor cost a search at
    /// 10M posts about 2 MB of copies and allocations.
    bytes: Rc<[u8]>,
    offset: usize,
    previous: Option<u64>,
}

impl SetReader {
    /// A reader over a stored value; an [`OPS`] value (a raw operand, never what RocksDB returns
    /// for a read of a merged key) is folded to its present times first.
    pub fn new(value: &[u8]) -> SetReader {
        match value.first() {
            Some(&SET) => SetReader::over(Rc::from(value)),
            _ => SetReader::shared(&Rc::from(value)),
        }
    }

    /// [`SetReader::new`] over a value already held in an `Rc`, without copying a [`SET`].
    pub fn shared(value: &Rc<[u8]>) -> SetReader {
        let bytes = match value.first() {
            Some(&SET) => value.clone(),
            Some(&OPS) => Rc::from(fold_to_set([&value[..]])),
            _ => Rc::from(Vec::new()),
        };
        SetReader::over(bytes)
    }

    fn over(bytes: Rc<[u8]>) -> SetReader {
        SetReader {
            bytes,
            offset: 1,
            previous: None,
        }
    }
}

impl Iterator for SetReader {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let rest = self.bytes.get(self.offset..)?;
        let (delta, used) = u64::decode_var(rest)?;
        let t = match self.previous {
            None => delta,
            Some(p) if delta > 0 => p.checked_sub(delta)?,
            // Not strictly descending: not a set this module wrote.
            Some(_) => return None,
        };
        self.offset += used;
        self.previous = Some(t);
        Some(t)
    }
}

/// Applies one value (either encoding) over `folded`: later values override earlier ones time by
/// time. Stops quietly at the first malformed byte.
pub(crate) fn fold_into(folded: &mut BTreeMap<u64, bool>, value: &[u8]) {
    match value.first() {
        Some(&SET) => {
            for t in SetReader::new(value) {
                folded.insert(t, true);
            }
        }
        Some(&OPS) => {
            let mut offset = 1;
            let mut previous: Option<u64> = None;
            while let Some((delta, used)) = value.get(offset..).and_then(u64::decode_var) {
                let Some(&flag) = value.get(offset + used) else {
                    break;
                };
                let t = match previous {
                    None => delta,
                    Some(p) => match p.checked_sub(delta) {
                        Some(t) => t,
                        None => break,
                    },
                };
                folded.insert(t, flag == 1);
                previous = Some(t);
                offset += used + 1;
            }
        }
        _ => {}
    }
}

fn present_newest_first(folded: &BTreeMap<u64, bool>) -> impl Iterator<Item = u64> + '_ {
    folded
        .iter()
        .rev()
        .filter(|(_, present)| **present)
        .map(|(t, _)| *t)
}

/// Values (either encoding, oldest first) folded into one [`SET`].
fn fold_to_set<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut folded = BTreeMap::new();
    for value in values {
        fold_into(&mut folded, value);
    }
    encode_set(present_newest_first(&folded))
}

/// The full merge: the older value (if any) and every operand, in order, to a [`SET`]. Never
/// fails, since a failed merge is a read error for RocksDB.
pub(crate) fn full_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    Some(fold_to_set(existing.into_iter().chain(operands.iter())))
}

/// The partial merge: operands folded without the older value, removes kept, as [`OPS`].
pub(crate) fn partial_merge(
    _key: &[u8],
    _existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    Some(combine(operands.iter()))
}

/// Operands (in order) folded into one [`OPS`] operand. Apply uses it to write one operand per
/// block and batch.
pub(crate) fn combine<'a>(operands: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut folded = BTreeMap::new();
    for operand in operands {
        fold_into(&mut folded, operand);
    }
    encode_ops(folded.iter().rev().map(|(t, present)| (*t, *present)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(value: &[u8]) -> Vec<u64> {
        SetReader::new(value).collect()
    }

    /// The full merge as RocksDB would call it, with the operands as plain slices.
    fn merge(existing: Option<&[u8]>, operands: &[Vec<u8>]) -> Vec<u64> {
        set_of(&fold_to_set(
            existing
                .into_iter()
                .chain(operands.iter().map(Vec::as_slice)),
        ))
    }

    #[test]
    fn a_set_reads_back_newest_first() {
        let value = encode_set([900, 500, 499, 3]);
        assert_eq!(set_of(&value), [900, 500, 499, 3]);
        assert_eq!(set_of(&encode_set([])), Vec::<u64>::new());
        assert_eq!(set_of(&encode_set([u64::MAX, 0])), [u64::MAX, 0]);
    }

    #[test]
    fn the_last_operand_for_a_time_wins() {
        let base = encode_set([30, 20, 10]);
        let ops = vec![remove(20), add(40), add(20), remove(20), remove(99)];
        assert_eq!(merge(Some(&base), &ops), [40, 30, 10]);
        assert_eq!(merge(None, &[add(5), add(5), add(7)]), [7, 5]);
    }

    #[test]
    fn a_partial_merge_keeps_removes_for_the_older_value() {
        let base = encode_set([30, 20, 10]);
        let folded = combine([remove(20).as_slice(), add(50).as_slice()]);
        assert_eq!(merge(Some(&base), &[folded]), [50, 30, 10]);
        // Folding in any grouping gives the same result as the operands one by one.
        let ops = [add(1), add(2), remove(1), add(3), remove(3), add(1)];
        let one_by_one = merge(Some(&base), &ops);
        let left = combine(ops[..3].iter().map(Vec::as_slice));
        let right = combine(ops[3..].iter().map(Vec::as_slice));
        assert_eq!(merge(Some(&base), &[left, right]), one_by_one);
        assert_eq!(one_by_one, [30, 20, 10, 2, 1]);
    }

    proptest::proptest! {
        /// Any bytes, as a stored value or as operands, read and merge without a panic, and a
        /// merge always gives a well-formed set.
        #[test]
        fn any_bytes_fold_to_a_well_formed_set(
            values in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24), 0..6)
        ) {
            let mut folded = BTreeMap::new();
            for value in &values {
                let _ = SetReader::new(value).count();
                fold_into(&mut folded, value);
            }
            let merged = encode_set(present_newest_first(&folded));
            let times: Vec<u64> = SetReader::new(&merged).collect();
            let want: Vec<u64> = present_newest_first(&folded).collect();
            proptest::prop_assert_eq!(times, want);
            let _ = combine(values.iter().map(Vec::as_slice));
        }
    }

    #[test]
    fn malformed_values_read_as_what_precedes_the_damage() {
        assert_eq!(set_of(&[]), Vec::<u64>::new());
        assert_eq!(set_of(&[7, 1, 2]), Vec::<u64>::new(), "unknown tag");
        let mut value = encode_set([300, 200]);
        value.push(0xff); // a varint that never ends
        assert_eq!(set_of(&value), [300, 200]);
        // A zero delta or one past zero is not a set this module wrote.
        assert_eq!(set_of(&[SET, 5, 0]), [5]);
        assert_eq!(set_of(&[SET, 5, 6]), [5]);
        let mut ops = add(10);
        ops.push(3); // a delta without its flag byte
        assert_eq!(set_of(&ops), [10]);
        assert_eq!(bucket(u64::MAX), u32::MAX);
        assert_eq!(bucket(BUCKET_MS - 1), 0);
        assert_eq!(bucket(BUCKET_MS), 1);
    }
}
