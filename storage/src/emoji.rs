//! Custom emoji: a name anyone on the server may use in messages and reactions, with its image.
//!
//! Family `kind_key_emoji`: `n` · name → [`Emoji`] (listing by name and autocomplete are prefix
//! scans), `i` · emoji_id → name (lookup by id). The image lives in `kind_id_image` under
//! [`images::KIND_EMOJI`]. A server holds tens to a few thousand custom emoji, so listings that
//! sort otherwise (by creation) read them all. `meta` `"emoji_count"` counts them, so rendering a
//! post skips every lookup while a server has none.
//!
//! Deleting removes the emoji outright (Mattermost keeps a soft-deleted row, but frees its name
//! the same way): its name may be taken again at once.

use crate::apply::{load_user, refuse, Step};
use crate::cf::Cf;
use crate::engine::decode_u64;
use crate::error::{CommandError, Result, StorageError};
use crate::id::Id;
use crate::images::{self, KIND_EMOJI};
use crate::keys::KeyBuf;
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};

/// Largest emoji image (Mattermost's `MaxEmojiFileSize`, 512 KiB).
pub const MAX_IMAGE_BYTES: usize = 1 << 19;
/// Longest name (Mattermost's `EmojiNameMaxLength`).
pub const MAX_NAME_CHARS: usize = 64;

const BY_NAME: u8 = b'n';
const BY_ID: u8 = b'i';
const COUNT_KEY: &[u8] = b"emoji_count";

/// Mattermost's Emoji.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emoji {
    pub id: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub delete_at: u64,
    pub creator_id: Id,
    pub name: String,
}

/// Mattermost's rule for custom emoji names: 1–64 of letters, digits, `-`, `+` and `_`. (Names of
/// the standard emoji are refused by the server before it proposes the command: that list is
/// the server's, not the state's.)
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'_'))
}

fn name_key(name: &str) -> Vec<u8> {
    KeyBuf::new().byte(BY_NAME).str(name).build()
}

fn id_key(id: Id) -> Vec<u8> {
    KeyBuf::new().byte(BY_ID).id(id).build()
}

/// Applies `CreateEmoji`.
pub(crate) fn create(txn: &mut Txn, emoji: &Emoji, image: &[u8]) -> Step<Outcome> {
    if !valid_name(&emoji.name) {
        return refuse(CommandError::Invalid(format!(
            "invalid emoji name {:?}",
            emoji.name
        )));
    }
    if image.is_empty() || image.len() > MAX_IMAGE_BYTES {
        return refuse(CommandError::Invalid(format!(
            "an emoji image must be 1 to {MAX_IMAGE_BYTES} bytes"
        )));
    }
    let creator = load_user(txn, emoji.creator_id)?;
    if creator.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("user {}", creator.id)));
    }
    if txn.exists(Cf::KindKeyEmoji, &name_key(&emoji.name))? {
        return refuse(CommandError::Invalid(format!(
            "an emoji named {:?} exists",
            emoji.name
        )));
    }
    if txn.exists(Cf::KindKeyEmoji, &id_key(emoji.id))? {
        return refuse(CommandError::IdExists(emoji.id.to_string()));
    }
    let stored = Emoji {
        delete_at: 0,
        ..emoji.clone()
    };
    txn.put(Cf::KindKeyEmoji, name_key(&stored.name), &stored)?;
    txn.put_raw(
        Cf::KindKeyEmoji,
        id_key(stored.id),
        stored.name.clone().into_bytes(),
    );
    images::put(txn, KIND_EMOJI, stored.id, image.to_vec());
    add_to_count(txn, 1)?;
    Ok(Outcome::EmojiAdded(stored))
}

/// Applies `DeleteEmoji`.
pub(crate) fn delete(txn: &mut Txn, id: Id, at: u64) -> Step<Outcome> {
    let Some(name) = txn.get_raw(Cf::KindKeyEmoji, &id_key(id))? else {
        return refuse(CommandError::not_found("emoji", id));
    };
    let name = String::from_utf8(name)
        .map_err(|_| StorageError::Corrupt(format!("emoji {id} has a non-UTF-8 name")))?;
    let Some(mut emoji) = txn.get::<Emoji>(Cf::KindKeyEmoji, &name_key(&name))? else {
        return Err(StorageError::Corrupt(format!("emoji {id} has no record")));
    };
    txn.delete(Cf::KindKeyEmoji, name_key(&name));
    txn.delete(Cf::KindKeyEmoji, id_key(id));
    images::remove(txn, KIND_EMOJI, id);
    add_to_count(txn, -1)?;
    emoji.delete_at = at.max(emoji.create_at);
    emoji.update_at = emoji.delete_at;
    Ok(Outcome::EmojiDeleted(emoji))
}

fn add_to_count(txn: &mut Txn, delta: i64) -> Result<()> {
    let count = match txn.get_raw(Cf::Meta, COUNT_KEY)? {
        Some(bytes) => decode_u64(&bytes)?,
        None => 0,
    };
    let count = count.saturating_add_signed(delta);
    txn.put_raw(Cf::Meta, COUNT_KEY.to_vec(), count.to_be_bytes().to_vec());
    Ok(())
}

/// How a listing of custom emoji is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmojiOrder {
    /// Oldest first (Mattermost's default listing).
    Created,
    Name,
}

impl Reader<'_> {
    /// How many custom emoji the server has.
    pub fn emoji_count(&self) -> Result<u64> {
        match self.get_raw(Cf::Meta, COUNT_KEY)? {
            Some(bytes) => decode_u64(&bytes),
            None => Ok(0),
        }
    }

    pub fn emoji_by_name(&self, name: &str) -> Result<Option<Emoji>> {
        self.get(Cf::KindKeyEmoji, &name_key(name))
    }

    pub fn emoji(&self, id: Id) -> Result<Option<Emoji>> {
        match self.get_raw(Cf::KindKeyEmoji, &id_key(id))? {
            Some(name) => self.emoji_by_name(&String::from_utf8_lossy(&name)),
            None => Ok(None),
        }
    }

    /// The emoji whose names start with `prefix`, by name, at most `limit`.
    pub fn emoji_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<Emoji>> {
        let mut found = Vec::new();
        let mut failure = None;
        let key = name_key(prefix);
        self.scan_prefix(Cf::KindKeyEmoji, &key, false, |_, value| {
            if found.len() >= limit {
                return false;
            }
            match rmp_serde::from_slice::<Emoji>(value) {
                Ok(emoji) => {
                    found.push(emoji);
                    true
                }
                Err(e) => {
                    failure = Some(StorageError::from(e));
                    false
                }
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// One page of every custom emoji in `order`.
    pub fn emoji_page(
        &self,
        order: EmojiOrder,
        page: usize,
        per_page: usize,
    ) -> Result<Vec<Emoji>> {
        let skip = page.saturating_mul(per_page);
        let mut all = self.emoji_with_prefix("", usize::MAX)?;
        if order == EmojiOrder::Created {
            all.sort_by_key(|e| (e.create_at, e.id));
        }
        Ok(all.into_iter().skip(skip).take(per_page).collect())
    }

    /// The custom emoji a post uses, in its text (`:name:`) or its reactions, for its
    /// `metadata.emojis`: the apps draw a custom emoji only when it is listed there. One lookup
    /// per distinct candidate name, none at all while the server has no custom emoji.
    pub fn emoji_used_in(
        &self,
        message: &str,
        reactions: &[crate::model::Reaction],
    ) -> Result<Vec<Emoji>> {
        let mut names: Vec<&str> = named_in(message);
        names.extend(reactions.iter().map(|r| r.emoji_name.as_str()));
        if names.is_empty() || self.emoji_count()? == 0 {
            return Ok(Vec::new());
        }
        names.sort_unstable();
        names.dedup();
        let mut found = Vec::new();
        for name in names {
            if valid_name(name) {
                found.extend(self.emoji_by_name(name)?);
            }
        }
        Ok(found)
    }

    /// A custom emoji's image bytes.
    pub fn emoji_image(&self, id: Id) -> Result<Option<Vec<u8>>> {
        images::get(self, KIND_EMOJI, id)
    }
}

/// The `:name:` candidates in a message (a post without any needs no emoji lookup).
pub fn named_in(message: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = message;
    while let Some(start) = rest.find(':') {
        let after = &rest[start + 1..];
        match after.find(':') {
            Some(end) if end > 0 && valid_name(&after[..end]) => {
                names.push(&after[..end]);
                rest = &after[end + 1..];
            }
            Some(end) => rest = &after[end..],
            None => break,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::{named_in, valid_name};

    #[test]
    fn emoji_names_are_found_between_colons() {
        assert_eq!(named_in("hi :parrot: and :+1: ok"), ["parrot", "+1"]);
        assert_eq!(named_in("time 10:30:00"), ["30"]);
        assert_eq!(named_in("a: b :c d: :e:"), ["e"]);
        assert!(named_in("no emoji here").is_empty());
        assert!(named_in("::").is_empty());
    }

    #[test]
    fn names_follow_mattermosts_rule() {
        assert!(valid_name("party_parrot"));
        assert!(valid_name("+1-ok"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name("colon:"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
