//! The replicated part of presence: what a user set by hand. Live presence (who has a socket,
//! when they were last active) is NOT here — it changes with every connect and is gossiped
//! between nodes outside the log (the server's `presence` module). What must survive restarts
//! and be the same on every node is rare and small, and lives in one column family,
//! `userid_status`, with four kinds of key:
//!
//! - `0 · user_id` → [`ManualStatus`]: a status the user chose (away, offline, dnd, ooo). No
//!   record means "derived": online, away or offline from the live view. Setting `online` by
//!   hand removes the record, as Mattermost stores a manual online as `manual=false`.
//! - `1 · u64(dnd_end_time seconds) · user_id` → `()`: timed DND, soonest first, so the leader
//!   finds the due ones with a bounded range scan ([`Reader::due_dnd`]) and commits
//!   [`Command::ExpireDnd`](crate::Command::ExpireDnd) for each.
//! - `2 · u64(expiry ms) · user_id` → `()` and `3 · user_id` → u64 expiry ms: a custom status
//!   that expires, queued the same way ([`Reader::due_custom_statuses`],
//!   [`Command::ExpireCustomStatus`](crate::Command::ExpireCustomStatus)), so when it ends every
//!   client hears `user_updated` with it gone instead of each hiding it on its own clock.
//!
//! Custom statuses are kept where Mattermost keeps them: in the user record
//! (`user.props.customStatus`, [`User::custom_status`]), so every user JSON carries them and a
//! change is an ordinary `user_updated`. The five most recent ones are the preference
//! `custom_status`/`recent_custom_statuses`, updated in the same command.

use crate::apply::{load_user, refuse, Step};
use crate::cf::Cf;
use crate::command::Command;
use crate::error::{CommandError, Result};
use crate::id::Id;
use crate::keys::KeyBuf;
use crate::model::User;
use crate::outcome::Outcome;
use crate::preferences::Preference;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};

/// Statuses a user may set by hand (`online` clears the manual one).
pub const SETTABLE: [&str; 5] = ["online", "away", "dnd", "offline", "ooo"];
/// The preference holding the recent custom statuses.
pub const RECENT_CATEGORY: &str = "custom_status";
pub const RECENT_NAME: &str = "recent_custom_statuses";
/// Recent custom statuses kept (Mattermost's `MaxRecentCustomStatuses`).
pub const MAX_RECENT: usize = 5;
/// Longest custom status text, in characters (Mattermost's `CustomStatusTextMaxRunes`).
pub const MAX_CUSTOM_TEXT_CHARS: usize = 100;
/// Longest emoji name, in bytes (a bound on what a command stores).
pub const MAX_EMOJI_BYTES: usize = 64;
/// Most due DND ends one scan returns.
pub const DUE_DND_LIMIT: usize = 256;

const RECORD: u8 = 0;
const DND_QUEUE: u8 = 1;
const CUSTOM_QUEUE: u8 = 2;
const CUSTOM_EXPIRY: u8 = 3;

/// A status the user chose by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualStatus {
    /// `away`, `offline`, `dnd` or `ooo`.
    pub status: String,
    /// When a timed DND ends, in seconds since the epoch (0: no end).
    pub dnd_end_time: u64,
    /// For DND: the manual status it replaced (empty: a derived one), restored at its end.
    pub prev_status: String,
    /// When it was set (ms).
    pub set_at: u64,
}

impl ManualStatus {
    /// Whether this status is still in force at `now_ms` (a timed DND past its end is not,
    /// even before the leader committed its end).
    pub fn in_force(&self, now_ms: u64) -> bool {
        !(self.status == "dnd"
            && self.dnd_end_time > 0
            && self.dnd_end_time.saturating_mul(1000) <= now_ms)
    }
}

/// A custom status as Mattermost's JSON names it; `expires_at` is RFC 3339 (the server checked
/// it), `duration` one of Mattermost's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CustomStatus {
    #[serde(default)]
    pub emoji: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub expires_at: String,
}

impl CustomStatus {
    /// Mattermost's identity of a recent entry: emoji, text and duration.
    fn same(&self, other: &CustomStatus) -> bool {
        self.emoji == other.emoji && self.text == other.text && self.duration == other.duration
    }

    fn check(&self) -> Step<()> {
        if self.emoji.is_empty() && self.text.is_empty() {
            return refuse(CommandError::Invalid("custom status is empty".into()));
        }
        if self.text.chars().count() > MAX_CUSTOM_TEXT_CHARS
            || self.emoji.len() > MAX_EMOJI_BYTES
            || self.duration.len() > 32
            || self.expires_at.len() > 64
        {
            return refuse(CommandError::Invalid("custom status is too long".into()));
        }
        Ok(())
    }
}

fn record_key(user: Id) -> Vec<u8> {
    let mut key = vec![RECORD];
    key.extend_from_slice(user.as_bytes());
    key
}

/// An entry of a due queue (`DND_QUEUE`, `CUSTOM_QUEUE`): the queue, when, the user.
fn due_key(queue: u8, at: u64, user: Id) -> Vec<u8> {
    let mut key = vec![queue];
    key.extend(KeyBuf::new().u64(at).id(user).build());
    key
}

fn queue_key(end_secs: u64, user: Id) -> Vec<u8> {
    due_key(DND_QUEUE, end_secs, user)
}

fn custom_queue_key(expires_ms: u64, user: Id) -> Vec<u8> {
    due_key(CUSTOM_QUEUE, expires_ms, user)
}

fn custom_expiry_key(user: Id) -> Vec<u8> {
    let mut key = vec![CUSTOM_EXPIRY];
    key.extend_from_slice(user.as_bytes());
    key
}

/// The expiry (ms) of the user's custom status, if it has one.
fn custom_expiry(txn: &mut Txn, user: Id) -> Step<Option<u64>> {
    Ok(txn
        .get_raw(Cf::UseridStatus, &custom_expiry_key(user))?
        .and_then(|raw| raw.try_into().ok().map(u64::from_be_bytes)))
}

/// Replaces the user's custom-status expiry (0: none) and its queue entry.
fn set_custom_expiry(txn: &mut Txn, user: Id, expires_ms: u64) -> Step<()> {
    if let Some(old) = custom_expiry(txn, user)? {
        txn.delete(Cf::UseridStatus, custom_queue_key(old, user));
        txn.delete(Cf::UseridStatus, custom_expiry_key(user));
    }
    if expires_ms > 0 {
        txn.put_raw(
            Cf::UseridStatus,
            custom_queue_key(expires_ms, user),
            Vec::new(),
        );
        txn.put_raw(
            Cf::UseridStatus,
            custom_expiry_key(user),
            expires_ms.to_be_bytes().to_vec(),
        );
    }
    Ok(())
}

/// Applies the status commands (the one dispatch line in `apply.rs` lands here).
pub(crate) fn apply(txn: &mut Txn, command: &Command) -> Step<Outcome> {
    match command {
        Command::SetStatus {
            user_id,
            at,
            status,
            dnd_end_time,
        } => set(txn, *user_id, *at, status, *dnd_end_time),
        Command::ExpireDnd {
            user_id,
            at,
            derived,
        } => expire_dnd(txn, *user_id, *at, derived),
        Command::StatusNotice { user_id, status } => {
            if !matches!(status.as_str(), "online" | "away" | "offline") {
                return refuse(CommandError::Invalid(format!("status {status:?}")));
            }
            load_user(txn, *user_id)?;
            Ok(Outcome::StatusChanged {
                user_id: *user_id,
                status: status.clone(),
            })
        }
        Command::SetCustomStatus {
            user_id,
            at,
            custom_status,
            expires_at_ms,
        } => set_custom(txn, *user_id, *at, custom_status.as_ref(), *expires_at_ms),
        Command::ExpireCustomStatus { user_id, at } => expire_custom(txn, *user_id, *at),
        Command::RemoveRecentCustomStatus {
            user_id,
            custom_status,
        } => remove_recent(txn, *user_id, custom_status),
        other => refuse(CommandError::Invalid(format!(
            "not a status command: {other:?}"
        ))),
    }
}

/// Removes a user's manual status and its DND queue entry; returns what it was.
fn clear(txn: &mut Txn, user: Id) -> Step<Option<ManualStatus>> {
    let old: Option<ManualStatus> = txn.get(Cf::UseridStatus, &record_key(user))?;
    if let Some(old) = &old {
        if old.dnd_end_time > 0 {
            txn.delete(Cf::UseridStatus, queue_key(old.dnd_end_time, user));
        }
        txn.delete(Cf::UseridStatus, record_key(user));
    }
    Ok(old)
}

/// Applies `SetStatus`: `online` clears the manual status; the others replace it. A DND
/// remembers the manual status it replaced (away, offline, ooo; empty for a derived one), which
/// comes back when a timed DND ends.
pub(crate) fn set(
    txn: &mut Txn,
    user: Id,
    at: u64,
    status: &str,
    dnd_end_time: u64,
) -> Step<Outcome> {
    if !SETTABLE.contains(&status) {
        return refuse(CommandError::Invalid(format!("status {status:?}")));
    }
    load_user(txn, user)?;
    let old = clear(txn, user)?;
    if status != "online" {
        let prev_status = match (&old, status) {
            (Some(old), "dnd") if old.status == "dnd" => old.prev_status.clone(),
            (Some(old), "dnd") => old.status.clone(),
            _ => String::new(),
        };
        let dnd_end_time = if status == "dnd" { dnd_end_time } else { 0 };
        let record = ManualStatus {
            status: status.to_string(),
            dnd_end_time,
            prev_status,
            set_at: at,
        };
        txn.put(Cf::UseridStatus, record_key(user), &record)?;
        if dnd_end_time > 0 {
            txn.put_raw(Cf::UseridStatus, queue_key(dnd_end_time, user), Vec::new());
        }
    }
    Ok(Outcome::StatusChanged {
        user_id: user,
        status: status.to_string(),
    })
}

/// Applies `ExpireDnd`: ends the user's timed DND if it is due at `at` (ms); otherwise (ended
/// already, changed since, not due) nothing happens. A manual status DND replaced comes back;
/// else the status is derived again, and `derived` (the leader's live view, carried in the
/// command so every replica announces the same) is what `status_change` says.
pub(crate) fn expire_dnd(txn: &mut Txn, user: Id, at: u64, derived: &str) -> Step<Outcome> {
    let current: Option<ManualStatus> = txn.get(Cf::UseridStatus, &record_key(user))?;
    match current {
        Some(record) if record.status == "dnd" && !record.in_force(at) => {
            clear(txn, user)?;
            let restored = record.prev_status;
            if SETTABLE.contains(&restored.as_str())
                && !matches!(restored.as_str(), "online" | "dnd")
            {
                let back = ManualStatus {
                    status: restored.clone(),
                    dnd_end_time: 0,
                    prev_status: String::new(),
                    set_at: at,
                };
                txn.put(Cf::UseridStatus, record_key(user), &back)?;
                return Ok(Outcome::StatusChanged {
                    user_id: user,
                    status: restored,
                });
            }
            let status = if matches!(derived, "online" | "away" | "offline") {
                derived
            } else {
                "online"
            };
            Ok(Outcome::StatusChanged {
                user_id: user,
                status: status.to_string(),
            })
        }
        _ => Ok(Outcome::StatusUnchanged { user_id: user }),
    }
}

fn recent_key(user: Id) -> Vec<u8> {
    let mut key = KeyBuf::new().id(user).build();
    key.push(RECENT_CATEGORY.len() as u8);
    key.extend_from_slice(RECENT_CATEGORY.as_bytes());
    key.extend_from_slice(RECENT_NAME.as_bytes());
    key
}

fn load_recent(txn: &mut Txn, user: Id) -> Step<Vec<CustomStatus>> {
    let stored = txn.get_raw(Cf::UseridPreference, &recent_key(user))?;
    // A value the client wrote through the preferences API may be anything: start over.
    Ok(stored
        .and_then(|bytes| serde_json::from_slice::<Vec<CustomStatus>>(&bytes).ok())
        .unwrap_or_default())
}

fn save_recent(txn: &mut Txn, user: Id, recent: &[CustomStatus]) -> Preference {
    let value = serde_json::to_string(recent).unwrap_or_else(|_| "[]".into());
    txn.put_raw(
        Cf::UseridPreference,
        recent_key(user),
        value.as_bytes().to_vec(),
    );
    Preference {
        user_id: user,
        category: RECENT_CATEGORY.into(),
        name: RECENT_NAME.into(),
        value,
    }
}

/// Applies `SetCustomStatus`: sets (and adds to the recent list, newest first, at most
/// [`MAX_RECENT`]) or clears the user's custom status, with its expiry (0: none) queued.
pub(crate) fn set_custom(
    txn: &mut Txn,
    user_id: Id,
    at: u64,
    custom: Option<&CustomStatus>,
    expires_ms: u64,
) -> Step<Outcome> {
    let mut user = load_user(txn, user_id)?;
    if let Some(custom) = custom {
        custom.check()?;
    }
    set_custom_expiry(txn, user_id, if custom.is_some() { expires_ms } else { 0 })?;
    match custom {
        Some(custom) => {
            let mut recent = load_recent(txn, user_id)?;
            recent.retain(|r| !r.same(custom));
            recent.insert(0, custom.clone());
            recent.truncate(MAX_RECENT);
            save_recent(txn, user_id, &recent);
            user.custom_status = serde_json::to_string(custom).unwrap_or_default();
        }
        None => user.custom_status.clear(),
    }
    save_user(txn, user, at)
}

/// Applies `ExpireCustomStatus`: clears the custom status when its expiry is due at `at`;
/// otherwise (changed since, cleared, not due) nothing happens.
pub(crate) fn expire_custom(txn: &mut Txn, user_id: Id, at: u64) -> Step<Outcome> {
    match custom_expiry(txn, user_id)? {
        Some(expires) if expires <= at => {
            let mut user = load_user(txn, user_id)?;
            set_custom_expiry(txn, user_id, 0)?;
            user.custom_status.clear();
            save_user(txn, user, at)
        }
        _ => Ok(Outcome::StatusUnchanged { user_id }),
    }
}

/// Applies `RemoveRecentCustomStatus`: refused when the entry is not in the list.
pub(crate) fn remove_recent(txn: &mut Txn, user: Id, custom: &CustomStatus) -> Step<Outcome> {
    load_user(txn, user)?;
    let mut recent = load_recent(txn, user)?;
    let before = recent.len();
    recent.retain(|r| !r.same(custom));
    if recent.len() == before {
        return refuse(CommandError::Invalid(
            "the custom status is not among the recent ones".into(),
        ));
    }
    let preference = save_recent(txn, user, &recent);
    Ok(Outcome::PreferencesSaved {
        user_id: user,
        preferences: vec![preference],
    })
}

fn save_user(txn: &mut Txn, mut user: User, at: u64) -> Step<Outcome> {
    user.update_at = user.update_at.max(at);
    txn.put(Cf::UseridUser, crate::keys::id_key(user.id), &user)?;
    Ok(Outcome::UserUpdated {
        user,
        revoked: Vec::new(),
    })
}

impl Reader<'_> {
    /// A user's manual status as stored (a timed DND past its end included; see
    /// [`ManualStatus::in_force`]): one point lookup.
    pub fn manual_status(&self, user: Id) -> Result<Option<ManualStatus>> {
        self.get(Cf::UseridStatus, &record_key(user))
    }

    /// Users whose timed DND ended at or before `now_secs`, soonest first, at most `limit`.
    pub fn due_dnd(&self, now_secs: u64, limit: usize) -> Result<Vec<Id>> {
        self.due_in(DND_QUEUE, now_secs, limit)
    }

    /// Users whose custom status expired at or before `now_ms`, soonest first, at most `limit`.
    pub fn due_custom_statuses(&self, now_ms: u64, limit: usize) -> Result<Vec<Id>> {
        self.due_in(CUSTOM_QUEUE, now_ms, limit)
    }

    /// The users of a due queue whose time is at or before `now`, soonest first, at most
    /// `limit`: one bounded range scan.
    fn due_in(&self, queue: u8, now: u64, limit: usize) -> Result<Vec<Id>> {
        let lower = vec![queue];
        let upper = due_key(queue, now.saturating_add(1), Id::from_bytes([0; 16]));
        let mut due = Vec::new();
        self.scan(Cf::UseridStatus, &lower, Some(&upper), false, |key, _| {
            if let Some(user) = key.get(9..25).and_then(Id::from_slice) {
                due.push(user);
            }
            due.len() < limit
        })?;
        Ok(due)
    }

    /// Every manual status (bounded by `limit`), for the WebSocket `get_statuses` answer.
    pub fn manual_statuses(&self, limit: usize) -> Result<Vec<(Id, ManualStatus)>> {
        let mut out = Vec::new();
        let mut failure = None;
        self.scan_prefix(Cf::UseridStatus, &[RECORD], false, |key, value| {
            let Some(user) = key.get(1..17).and_then(Id::from_slice) else {
                return true;
            };
            match rmp_serde::from_slice::<ManualStatus>(value) {
                Ok(status) => out.push((user, status)),
                Err(e) => failure = Some(e),
            }
            out.len() < limit && failure.is_none()
        })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_dnd_is_in_force_until_its_end() {
        let dnd = ManualStatus {
            status: "dnd".into(),
            dnd_end_time: 100,
            prev_status: "online".into(),
            set_at: 0,
        };
        assert!(dnd.in_force(99_999));
        assert!(!dnd.in_force(100_000));
        let forever = ManualStatus {
            dnd_end_time: 0,
            ..dnd.clone()
        };
        assert!(forever.in_force(u64::MAX));
        let away = ManualStatus {
            status: "away".into(),
            ..dnd
        };
        assert!(away.in_force(u64::MAX));
    }

    #[test]
    fn queue_keys_sort_by_end_time() {
        let a = queue_key(5, Id([9; 16]));
        let b = queue_key(6, Id([1; 16]));
        assert!(a < b);
        assert_eq!(a.len(), 25);
        assert_eq!(a.get(9..25), Some(&[9u8; 16][..]));
    }
}
