//! Which pairs of adjacent words a post holds, as a small Bloom filter kept in the value of its
//! `channelid_createat_postid` key (empty before this filter existed).
//!
//! Why: a phrase is found through its words' postings, which say that a post holds every word
//! but not that they stand side by side. When a phrase's words are common, most posts holding
//! them all do not hold the phrase (in the benches' data, about four in five), and each such
//! candidate cost a read of the post and a tokenizing of its text. The search reads this key
//! anyway to map a candidate's time to its post, so the filter comes with no extra read, and a
//! candidate whose filter lacks one of the phrase's pairs is dropped unread. The filter has no
//! false negatives (every pair of adjacent tokens sets its bits), so it never loses a match; a
//! false positive only means the post is read and checked, as before.
//!
//! Format: [`VERSION`], then 16, 32, 48 or 64 bytes of bits (16 bytes for every 16 pairs, at
//! most 64), each pair setting [`HASHES`] bits picked from the CRC-32 of `a · 0x00 · b`. A
//! 12-word post's 11 pairs leave a false positive rate near 1 %. The hash is fixed, so every
//! replica writes the same bytes. A value of another version, or empty, tells nothing: the post
//! is read.

use super::tokenize::Token;
use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;

/// The first byte of a filter this module wrote.
const VERSION: u8 = 1;

/// Bits set per pair.
const HASHES: u32 = 3;

/// Filter bytes per 16 pairs, and at most.
const BYTES_PER_STEP: usize = 16;
const MAX_BYTES: usize = 64;

fn pair_hash(a: &str, b: &str) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(a.as_bytes());
    hasher.update(&[0]);
    hasher.update(b.as_bytes());
    hasher.finalize()
}

/// The bits of a pair in a filter of `bits` bits: three 9-bit fields of its hash.
fn pair_bits(hash: u32, bits: usize) -> impl Iterator<Item = usize> {
    (0..HASHES).map(move |i| ((hash >> (9 * i)) & 0x1ff) as usize % bits)
}

/// The filter of a post's word tokens, in text order.
pub(crate) fn filter_of(words: &[Token]) -> Vec<u8> {
    let pairs = words.len().saturating_sub(1);
    let bytes = (pairs.div_ceil(16) * BYTES_PER_STEP).clamp(BYTES_PER_STEP, MAX_BYTES);
    let mut out = vec![0u8; 1 + bytes];
    out[0] = VERSION;
    let bits = bytes * 8;
    for pair in words.windows(2) {
        for bit in pair_bits(pair_hash(&pair[0].term, &pair[1].term), bits) {
            out[1 + bit / 8] |= 1 << (bit % 8);
        }
    }
    out
}

/// Whether a post whose filter is `value` may hold `phrase` (its terms in order): false only
/// when the filter proves one of the phrase's adjacent pairs absent.
pub(crate) fn may_hold(value: &[u8], phrase: &[String]) -> bool {
    let Some((&VERSION, filter)) = value.split_first() else {
        return true;
    };
    if filter.is_empty() {
        return true;
    }
    let bits = filter.len() * 8;
    phrase.windows(2).all(|pair| {
        pair_bits(pair_hash(&pair[0], &pair[1]), bits).all(|bit| {
            filter
                .get(bit / 8)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        })
    })
}

impl Engine {
    /// Makes the data directory look as one written before the filters: every post's time key
    /// gets an empty value again. For tests of an upgraded directory only.
    #[doc(hidden)]
    pub fn forget_adjacent_filters(&self) -> Result<()> {
        let _applying = self.apply_lock.lock();
        let mut batch = rocksdb::WriteBatch::default();
        let times = self.cf(Cf::ChannelidCreateatPostid)?;
        for item in self.db.iterator_cf(times, rocksdb::IteratorMode::Start) {
            let (key, _) = item?;
            batch.put_cf(times, key, []);
        }
        self.db.write(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::tokenize::{terms, tokens};
    use proptest::prelude::*;

    #[test]
    fn a_phrase_of_the_text_passes_and_words_apart_mostly_do_not() {
        let filter = filter_of(&tokens("the quick brown fox jumps over the lazy dog"));
        assert_eq!(filter.len(), 17);
        assert!(may_hold(&filter, &terms("quick brown fox")));
        assert!(may_hold(&filter, &terms("lazy dogs")));
        assert!(!may_hold(&filter, &terms("fox quick")));
        assert!(!may_hold(&filter, &terms("quick fox")));
    }

    #[test]
    fn an_empty_or_unknown_value_tells_nothing() {
        assert!(may_hold(&[], &terms("quick brown")));
        assert!(may_hold(&[VERSION], &terms("quick brown")));
        assert!(may_hold(&[VERSION + 1, 0, 0], &terms("quick brown")));
    }

    #[test]
    fn long_texts_get_a_bigger_filter_up_to_a_bound() {
        let words = |n: usize| {
            (0..n)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(filter_of(&tokens(&words(17))).len(), 1 + 16);
        assert_eq!(filter_of(&tokens(&words(18))).len(), 1 + 32);
        assert_eq!(filter_of(&tokens(&words(1_000))).len(), 1 + 64);
        assert_eq!(filter_of(&[]).len(), 1 + 16);
    }

    proptest! {
        /// No false negatives: every run of adjacent tokens of a text passes its filter.
        #[test]
        fn every_phrase_of_a_text_passes_its_filter(
            words in prop::collection::vec("[a-e]{1,3}", 1..120),
            start in 0usize..120,
            len in 2usize..6,
        ) {
            let text = words.join(" ");
            let all = terms(&text);
            let filter = filter_of(&tokens(&text));
            if all.len() >= 2 {
                let start = start % (all.len() - 1);
                let end = (start + len).min(all.len());
                prop_assert!(may_hold(&filter, &all[start..end]));
            }
        }
    }
}
