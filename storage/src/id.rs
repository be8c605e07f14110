//! Identifiers: 16 bytes inside the engine, 26 base32 characters (Mattermost's alphabet) at the
//! API edge. Keys hold the raw bytes so composite keys stay fixed-width and order-preserving.

use data_encoding::{Encoding, Specification};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::OnceLock;

/// Mattermost's base32 alphabet: lowercase, no padding, no easily confused letters.
const ALPHABET: &str = "ybndrfg8ejkmcpqxot1uwisza345h769";

fn encoding() -> &'static Encoding {
    static ENCODING: OnceLock<Encoding> = OnceLock::new();
    ENCODING.get_or_init(|| {
        let mut spec = Specification::new();
        spec.symbols.push_str(ALPHABET);
        // The last character carries 3 bits; a canonical id has the unused 2 bits zero, so
        // every accepted string maps back to itself.
        spec.check_trailing_bits = true;
        spec.encoding()
            .expect("the base32 specification is a valid constant")
    })
}

/// A 128-bit identifier of a user, team, channel, post, session or token.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Id(pub [u8; 16]);

/// A string that is not a 26-character id in Mattermost's alphabet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: expected 26 base32 characters")]
pub struct InvalidId(pub String);

impl Id {
    /// The all-zero id; stands for "no team" in keys of direct and group channels.
    pub const NONE: Id = Id([0; 16]);

    pub fn from_bytes(bytes: [u8; 16]) -> Id {
        Id(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn is_none(&self) -> bool {
        self.0 == [0; 16]
    }

    /// The 26-character form clients see.
    pub fn to_base32(&self) -> String {
        encoding().encode(&self.0)
    }

    /// Parses the 26-character form; anything else is an [`InvalidId`].
    pub fn parse(text: &str) -> Result<Id, InvalidId> {
        if text.len() != 26 {
            return Err(InvalidId(text.to_string()));
        }
        let bytes = encoding()
            .decode(text.as_bytes())
            .map_err(|_| InvalidId(text.to_string()))?;
        let array: [u8; 16] = bytes.try_into().map_err(|_| InvalidId(text.to_string()))?;
        Ok(Id(array))
    }

    /// Reads an id from the first 16 bytes of a key slice.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Id> {
        let array: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
        Some(Id(array))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base32())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.to_base32())
    }
}

impl std::str::FromStr for Id {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Id, InvalidId> {
        Id::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trips_and_is_26_chars() {
        for seed in 0u8..=255 {
            let id = Id([seed.wrapping_mul(37); 16]);
            let text = id.to_base32();
            assert_eq!(text.len(), 26);
            assert_eq!(Id::parse(&text), Ok(id));
        }
    }

    #[test]
    fn rejects_bad_text() {
        assert!(Id::parse("").is_err());
        assert!(Id::parse("short").is_err());
        assert!(Id::parse("0000000000000000000000000!").is_err());
        // uppercase is not in the alphabet
        assert!(Id::parse(&Id([7; 16]).to_base32().to_uppercase()).is_err());
    }
}
