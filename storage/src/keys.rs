//! Key codec: every composite key is a concatenation of fixed-width big-endian parts (ids are 16
//! raw bytes, times and counters 8 bytes) with at most one variable-length string, always last.
//! Byte order therefore equals logical order, so "newest first" and "everything after t" are plain
//! RocksDB range scans. Descending orders store `u64::MAX - t`.

use crate::id::Id;

/// Builds a composite key part by part.
#[derive(Default, Clone)]
pub(crate) struct KeyBuf(Vec<u8>);

impl KeyBuf {
    pub fn new() -> KeyBuf {
        KeyBuf(Vec::with_capacity(48))
    }
    pub fn id(mut self, id: Id) -> KeyBuf {
        self.0.extend_from_slice(id.as_bytes());
        self
    }
    pub fn u64(mut self, value: u64) -> KeyBuf {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    /// Descending order for times: larger values sort first.
    pub fn rev_u64(self, value: u64) -> KeyBuf {
        self.u64(u64::MAX - value)
    }
    /// Bytes taken as they are (a key part read back from a key).
    pub fn raw(mut self, bytes: &[u8]) -> KeyBuf {
        self.0.extend_from_slice(bytes);
        self
    }
    /// A single separator byte (ends a variable-length part that cannot contain it).
    pub fn byte(mut self, value: u8) -> KeyBuf {
        self.0.push(value);
        self
    }
    pub fn str(mut self, text: &str) -> KeyBuf {
        self.0.extend_from_slice(text.as_bytes());
        self
    }
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

pub(crate) fn id_key(id: Id) -> Vec<u8> {
    id.as_bytes().to_vec()
}

pub(crate) fn id2(a: Id, b: Id) -> Vec<u8> {
    KeyBuf::new().id(a).id(b).build()
}

/// `channel_id · t(create) · post_id`: a post's key in its channel's time indexes
/// (`channelid_createat_postid` and the families shaped like it).
pub(crate) fn post_time_key(post: &crate::model::Post) -> Vec<u8> {
    KeyBuf::new()
        .id(post.channel_id)
        .u64(post.create_at)
        .id(post.id)
        .build()
}

/// A cursor over a composite key, reading its parts in order.
pub(crate) struct KeyReader<'a>(&'a [u8]);

impl<'a> KeyReader<'a> {
    pub fn new(key: &'a [u8]) -> KeyReader<'a> {
        KeyReader(key)
    }
    pub fn u64(&mut self) -> Option<u64> {
        let bytes: [u8; 8] = self.0.get(..8)?.try_into().ok()?;
        self.0 = &self.0[8..];
        Some(u64::from_be_bytes(bytes))
    }
    pub fn rev_u64(&mut self) -> Option<u64> {
        self.u64().map(|v| u64::MAX - v)
    }
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }
}

/// The smallest key greater than every key starting with `prefix` (None if there is none).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_preserved() {
        let a = Id([1; 16]);
        let k1 = KeyBuf::new().id(a).u64(5).build();
        let k2 = KeyBuf::new().id(a).u64(300).build();
        assert!(k1 < k2);
        let r1 = KeyBuf::new().id(a).rev_u64(5).build();
        let r2 = KeyBuf::new().id(a).rev_u64(300).build();
        assert!(r2 < r1);
        let mut reader = KeyReader::new(&r2);
        assert_eq!(reader.skip(16), Some(()));
        assert_eq!(reader.rev_u64(), Some(300));
    }

    #[test]
    fn prefix_end_is_exclusive_upper_bound() {
        assert_eq!(prefix_end(&[1, 2, 0xff]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
