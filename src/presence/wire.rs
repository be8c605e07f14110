//! The presence messages nodes exchange on the `presence` peer topic: compact binary, bounded,
//! decoded defensively (the bytes come from an authenticated peer but are still untrusted: a
//! bad message is refused whole, never a panic).
//!
//! ```text
//! message = version u8 (1) · kind u8 (1 delta, 2 summary) · boot u64 · count u32 · record*
//! record  = flags u8 · user 16 · last_activity_at u64 (ms) · [active_channel 16 if flags & 2]
//! flags   = 1 connected (a socket, or within its offline grace) · 2 has channel · 4 gone
//! ```
//!
//! A record is 25 or 41 bytes; a message holds at most [`RECORDS_PER_MESSAGE`] (≤ 336 KB) and
//! longer lists are split. `boot` is the sender's random id for this run: a new one means the
//! peer restarted, so what it said before is forgotten at once.

use confab_storage::Id;

/// The peer-message topic.
pub const TOPIC: &str = "presence";
/// Records per message at most.
pub const RECORDS_PER_MESSAGE: usize = 8192;
const VERSION: u8 = 1;
const HEADER_BYTES: usize = 1 + 1 + 8 + 4;
const CONNECTED: u8 = 1;
const HAS_CHANNEL: u8 = 2;
const GONE: u8 = 4;

/// Whether a message carries changes or the sender's whole view of its own users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Delta,
    Summary,
}

/// What one node says about one of its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub user: Id,
    /// A socket on the sender (or one closed within the grace period).
    pub connected: bool,
    /// The sender forgot the user (grace over): drop what it said before.
    pub gone: bool,
    pub last_activity: u64,
    pub active_channel: Option<Id>,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub boot: u64,
    pub records: Vec<Record>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("presence message shorter than its header")]
    Short,
    #[error("presence message version {0} is not understood")]
    Version(u8),
    #[error("presence message kind {0} is not understood")]
    Kind(u8),
    #[error("presence message claims {0} records, more than allowed")]
    TooMany(u32),
    #[error("presence message truncated in record {0}")]
    Truncated(usize),
    #[error("presence message has {0} bytes after its records")]
    Trailing(usize),
    #[error("presence record {0} has unknown flags")]
    Flags(usize),
}

/// Encodes `records` as messages of at most [`RECORDS_PER_MESSAGE`] records each. An empty
/// summary is still one message (it tells peers the sender is alive and has nobody).
pub fn encode(kind: Kind, boot: u64, records: &[Record]) -> Vec<Vec<u8>> {
    let chunks: Vec<&[Record]> = if records.is_empty() {
        match kind {
            Kind::Summary => vec![&[]],
            Kind::Delta => Vec::new(),
        }
    } else {
        records.chunks(RECORDS_PER_MESSAGE).collect()
    };
    chunks
        .into_iter()
        .map(|chunk| {
            let mut out = Vec::with_capacity(HEADER_BYTES + chunk.len() * 41);
            out.push(VERSION);
            out.push(match kind {
                Kind::Delta => 1,
                Kind::Summary => 2,
            });
            out.extend_from_slice(&boot.to_be_bytes());
            out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            for r in chunk {
                let mut flags = 0;
                if r.connected {
                    flags |= CONNECTED;
                }
                if r.active_channel.is_some() {
                    flags |= HAS_CHANNEL;
                }
                if r.gone {
                    flags |= GONE;
                }
                out.push(flags);
                out.extend_from_slice(r.user.as_bytes());
                out.extend_from_slice(&r.last_activity.to_be_bytes());
                if let Some(channel) = r.active_channel {
                    out.extend_from_slice(channel.as_bytes());
                }
            }
            out
        })
        .collect()
}

/// A cursor that never reads past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Some(u64::from_be_bytes(buf))
    }

    fn u32(&mut self) -> Option<u32> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Some(u32::from_be_bytes(buf))
    }

    fn id(&mut self) -> Option<Id> {
        let bytes: [u8; 16] = self.take(16)?.try_into().ok()?;
        Some(Id::from_bytes(bytes))
    }
}

/// Decodes one message; anything malformed is refused whole.
pub fn decode(body: &[u8]) -> Result<Message, DecodeError> {
    let mut cursor = Cursor { bytes: body };
    let version = cursor.u8().ok_or(DecodeError::Short)?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let kind = match cursor.u8().ok_or(DecodeError::Short)? {
        1 => Kind::Delta,
        2 => Kind::Summary,
        other => return Err(DecodeError::Kind(other)),
    };
    let boot = cursor.u64().ok_or(DecodeError::Short)?;
    let count = cursor.u32().ok_or(DecodeError::Short)?;
    if count as usize > RECORDS_PER_MESSAGE {
        return Err(DecodeError::TooMany(count));
    }
    let mut records = Vec::with_capacity(count as usize);
    for n in 0..count as usize {
        let flags = cursor.u8().ok_or(DecodeError::Truncated(n))?;
        if flags & !(CONNECTED | HAS_CHANNEL | GONE) != 0 {
            return Err(DecodeError::Flags(n));
        }
        let user = cursor.id().ok_or(DecodeError::Truncated(n))?;
        let last_activity = cursor.u64().ok_or(DecodeError::Truncated(n))?;
        let active_channel = if flags & HAS_CHANNEL != 0 {
            Some(cursor.id().ok_or(DecodeError::Truncated(n))?)
        } else {
            None
        };
        records.push(Record {
            user,
            connected: flags & CONNECTED != 0,
            gone: flags & GONE != 0,
            last_activity,
            active_channel,
        });
    }
    if !cursor.bytes.is_empty() {
        return Err(DecodeError::Trailing(cursor.bytes.len()));
    }
    Ok(Message {
        kind,
        boot,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> Record {
        Record {
            user: Id::from_bytes([(n % 251) as u8; 16]),
            connected: n.is_multiple_of(2),
            gone: n.is_multiple_of(5),
            last_activity: n * 1000,
            active_channel: n.is_multiple_of(3).then(|| Id::from_bytes([7; 16])),
        }
    }

    #[test]
    fn messages_round_trip_and_split() {
        let records: Vec<Record> = (0..RECORDS_PER_MESSAGE as u64 + 10).map(record).collect();
        let messages = encode(Kind::Summary, 42, &records);
        assert_eq!(messages.len(), 2);
        let mut back = Vec::new();
        for m in &messages {
            let decoded = decode(m).expect("valid message");
            assert_eq!((decoded.kind, decoded.boot), (Kind::Summary, 42));
            back.extend(decoded.records);
        }
        assert_eq!(back, records);
        assert!(messages[0].len() <= HEADER_BYTES + RECORDS_PER_MESSAGE * 41);
        assert!(encode(Kind::Delta, 1, &[]).is_empty());
        let empty = encode(Kind::Summary, 1, &[]);
        assert_eq!(empty.len(), 1);
        assert_eq!(decode(&empty[0]).expect("empty summary").records, vec![]);
    }

    #[test]
    fn malformed_messages_are_refused_without_panicking() {
        let good = encode(Kind::Delta, 9, &[record(3), record(4)]).remove(0);
        assert_eq!(decode(&[]), Err(DecodeError::Short));
        assert_eq!(decode(&[2]), Err(DecodeError::Version(2)));
        assert_eq!(decode(&[1, 9]), Err(DecodeError::Kind(9)));
        // Every truncation is an error, never a panic.
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(DecodeError::Trailing(1)));
        let mut flags = good.clone();
        flags[HEADER_BYTES] = 0x80;
        assert_eq!(decode(&flags), Err(DecodeError::Flags(0)));
        let mut huge = good[..HEADER_BYTES].to_vec();
        huge[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&huge), Err(DecodeError::TooMany(u32::MAX)));
        // Arbitrary bytes: refused or decoded, never a panic.
        let mut seed = 0x1234_5678u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 56) as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
    }
}
