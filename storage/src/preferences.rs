//! User preferences: Mattermost's free-form `(user, category, name) → value` settings (theme,
//! display options, saved posts, DM visibility, …). The apps read them all at login and write
//! them one small batch at a time, so the family is laid out for exactly that: one prefix scan
//! per user or per category, one point lookup per preference, and a write touches only the keys
//! it names.
//!
//! Key: `user_id · len(category) as u8 · category · name`. Mattermost keys a preference by two
//! strings; the length byte keeps the category a fixed-width prefix part, so a category scan
//! never runs into a longer category that shares its prefix (`theme` vs `themes`). Value: the
//! preference value as raw UTF-8 (not rmp-serde: it is an opaque string).

use crate::apply::{load_user, refuse, Step};
use crate::cf::Cf;
use crate::error::{CommandError, Result, StorageError};
use crate::id::Id;
use crate::keys::KeyBuf;
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};

/// Longest category and name, in bytes (Mattermost's column widths).
pub const MAX_PREFERENCE_KEY_BYTES: usize = 32;
/// Longest value, in characters (Mattermost's `MaxPreferenceValueLength`).
pub const MAX_PREFERENCE_VALUE_CHARS: usize = 20_000;
/// Most preferences one command may save or delete: a bound on the work of one log entry.
pub const MAX_PREFERENCES_PER_COMMAND: usize = 1_000;
/// The category whose names are the ids of a user's saved ("flagged") posts.
pub const FLAGGED_POST_CATEGORY: &str = "flagged_post";

/// One preference, as Mattermost's JSON names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preference {
    pub user_id: Id,
    pub category: String,
    pub name: String,
    pub value: String,
}

/// Why a preference is refused, one variant per rule Mattermost checks (`Preference.IsValid`),
/// so the server can answer each with Mattermost's own error id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferenceError {
    #[error("category must be 1 to 32 bytes, got {0:?}")]
    Category(String),
    #[error("name must be at most 32 bytes, got {0:?}")]
    Name(String),
    #[error("value is {0} characters, more than the 20000 allowed")]
    Value(usize),
    #[error("a theme must be a JSON object of strings")]
    Theme,
    #[error("limit_visible_dms_gms must be a number from 1 to 40, got {0:?}")]
    LimitVisibleDmsGms(String),
    #[error("at most 1000 preferences at once, got {0}")]
    TooMany(usize),
}

impl From<PreferenceError> for CommandError {
    fn from(error: PreferenceError) -> CommandError {
        CommandError::Invalid(error.to_string())
    }
}

/// Checks a preference as Mattermost does before saving it.
pub fn validate(
    category: &str,
    name: &str,
    value: &str,
) -> std::result::Result<(), PreferenceError> {
    validate_key(category, name)?;
    let chars = value.chars().count();
    if chars > MAX_PREFERENCE_VALUE_CHARS {
        return Err(PreferenceError::Value(chars));
    }
    if category == "theme"
        && serde_json::from_str::<std::collections::BTreeMap<String, String>>(value).is_err()
    {
        return Err(PreferenceError::Theme);
    }
    if category == "sidebar_settings" && name == "limit_visible_dms_gms" {
        let in_range = value.parse::<u32>().is_ok_and(|n| (1..=40).contains(&n));
        if !in_range {
            return Err(PreferenceError::LimitVisibleDmsGms(value.to_string()));
        }
    }
    Ok(())
}

/// Checks a category and name (what a delete or a lookup needs).
pub fn validate_key(category: &str, name: &str) -> std::result::Result<(), PreferenceError> {
    if category.is_empty() || category.len() > MAX_PREFERENCE_KEY_BYTES {
        return Err(PreferenceError::Category(category.to_string()));
    }
    if name.len() > MAX_PREFERENCE_KEY_BYTES {
        return Err(PreferenceError::Name(name.to_string()));
    }
    Ok(())
}

/// Checks how many preferences one command carries.
pub fn validate_count(count: usize) -> std::result::Result<(), PreferenceError> {
    if count > MAX_PREFERENCES_PER_COMMAND {
        Err(PreferenceError::TooMany(count))
    } else {
        Ok(())
    }
}

/// The prefix of every preference of `user` in `category` (the category is at most 32 bytes,
/// so its length fits the byte).
fn category_prefix(user: Id, category: &str) -> Vec<u8> {
    let mut key = KeyBuf::new().id(user).build();
    key.push(category.len().min(u8::MAX as usize) as u8);
    key.extend_from_slice(category.as_bytes());
    key
}

fn preference_key(user: Id, category: &str, name: &str) -> Vec<u8> {
    let mut key = category_prefix(user, category);
    key.extend_from_slice(name.as_bytes());
    key
}

/// Decodes a stored entry of `user`'s preferences.
fn decode(user: Id, key: &[u8], value: &[u8]) -> Result<Preference> {
    let corrupt = || StorageError::Corrupt("preference key".into());
    let rest = key.get(16..).ok_or_else(corrupt)?;
    let (&len, rest) = rest.split_first().ok_or_else(corrupt)?;
    let category = rest.get(..len as usize).ok_or_else(corrupt)?;
    let name = rest.get(len as usize..).ok_or_else(corrupt)?;
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| StorageError::Corrupt("preference is not UTF-8".into()))
    };
    Ok(Preference {
        user_id: user,
        category: text(category)?,
        name: text(name)?,
        value: text(value)?,
    })
}

/// Applies `SavePreferences`: every preference is validated before any is written, so a batch
/// is saved whole or not at all.
pub(crate) fn save(
    txn: &mut Txn,
    user: Id,
    preferences: &[(String, String, String)],
) -> Step<Outcome> {
    validate_count(preferences.len()).map_err(CommandError::from)?;
    for (category, name, value) in preferences {
        validate(category, name, value).map_err(CommandError::from)?;
    }
    let owner = load_user(txn, user)?;
    if owner.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("user {user}")));
    }
    let mut saved = Vec::with_capacity(preferences.len());
    for (category, name, value) in preferences {
        txn.put_raw(
            Cf::UseridPreference,
            preference_key(user, category, name),
            value.as_bytes().to_vec(),
        );
        saved.push(Preference {
            user_id: user,
            category: category.clone(),
            name: name.clone(),
            value: value.clone(),
        });
    }
    Ok(Outcome::PreferencesSaved {
        user_id: user,
        preferences: saved,
    })
}

/// Applies `DeletePreferences`: removes the named preferences (absent ones are no error, as in
/// Mattermost) and reports those that existed, with the values they had.
pub(crate) fn delete(txn: &mut Txn, user: Id, keys: &[(String, String)]) -> Step<Outcome> {
    validate_count(keys.len()).map_err(CommandError::from)?;
    for (category, name) in keys {
        validate_key(category, name).map_err(CommandError::from)?;
    }
    load_user(txn, user)?;
    let mut deleted = Vec::new();
    for (category, name) in keys {
        let key = preference_key(user, category, name);
        if let Some(value) = txn.get_raw(Cf::UseridPreference, &key)? {
            deleted.push(decode(user, &key, &value)?);
            txn.delete(Cf::UseridPreference, key);
        }
    }
    Ok(Outcome::PreferencesDeleted {
        user_id: user,
        preferences: deleted,
    })
}

impl Reader<'_> {
    /// Every preference of `user`, ordered by category then name: one prefix scan.
    pub fn preferences(&self, user: Id) -> Result<Vec<Preference>> {
        self.preferences_under(user, user.as_bytes())
    }

    /// The preferences of `user` in `category`: one prefix scan of exactly those.
    pub fn preferences_in_category(&self, user: Id, category: &str) -> Result<Vec<Preference>> {
        if validate_key(category, "").is_err() {
            return Ok(Vec::new());
        }
        self.preferences_under(user, &category_prefix(user, category))
    }

    /// One preference: a point lookup.
    pub fn preference(&self, user: Id, category: &str, name: &str) -> Result<Option<Preference>> {
        if validate_key(category, name).is_err() {
            return Ok(None);
        }
        let key = preference_key(user, category, name);
        match self.get_raw(Cf::UseridPreference, &key)? {
            Some(value) => Ok(Some(decode(user, &key, &value)?)),
            None => Ok(None),
        }
    }

    fn preferences_under(&self, user: Id, prefix: &[u8]) -> Result<Vec<Preference>> {
        let mut found = Vec::new();
        let mut failure = None;
        self.scan_prefix(
            Cf::UseridPreference,
            prefix,
            false,
            |key, value| match decode(user, key, value) {
                Ok(preference) => {
                    found.push(preference);
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mattermost_rules() {
        assert!(validate("display_settings", "use_military_time", "true").is_ok());
        assert!(
            validate("tutorial_step", "", "0").is_ok(),
            "an empty name is allowed"
        );
        assert_eq!(
            validate("", "x", "v"),
            Err(PreferenceError::Category(String::new()))
        );
        assert!(matches!(
            validate(&"c".repeat(33), "x", "v"),
            Err(PreferenceError::Category(_))
        ));
        assert!(matches!(
            validate("c", &"n".repeat(33), "v"),
            Err(PreferenceError::Name(_))
        ));
        assert_eq!(
            validate("c", "n", &"é".repeat(20_001)),
            Err(PreferenceError::Value(20_001))
        );
        assert!(
            validate("c", "n", &"é".repeat(20_000)).is_ok(),
            "counted in characters"
        );
        assert_eq!(
            validate("theme", "", "not json"),
            Err(PreferenceError::Theme)
        );
        assert!(validate("theme", "", r##"{"sidebarBg":"#145dbf"}"##).is_ok());
        assert!(matches!(
            validate("sidebar_settings", "limit_visible_dms_gms", "41"),
            Err(PreferenceError::LimitVisibleDmsGms(_))
        ));
        assert!(validate("sidebar_settings", "limit_visible_dms_gms", "40").is_ok());
        assert_eq!(validate_count(1_001), Err(PreferenceError::TooMany(1_001)));
    }

    #[test]
    fn keys_decode_back() {
        let user = Id([7; 16]);
        let key = preference_key(user, "theme", "team1");
        let preference = decode(user, &key, b"{}").expect("decode");
        assert_eq!(
            (preference.category.as_str(), preference.name.as_str()),
            ("theme", "team1")
        );
        assert!(key.starts_with(&category_prefix(user, "theme")));
        assert!(
            !preference_key(user, "themes", "").starts_with(&category_prefix(user, "theme")),
            "a longer category never falls under a shorter one's prefix"
        );
    }
}
