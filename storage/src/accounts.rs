//! Applying the commands that change an existing user account: profile, password, roles,
//! deactivation, and revoking all of a user's sessions. Kept apart from `apply.rs` so that each
//! domain's rules read in one place.

use crate::apply::{load_user, refuse, Step};
use crate::cf::Cf;
use crate::error::CommandError;
use crate::id::Id;
use crate::keys::{id2, id_key};
use crate::model::{Session, User, UserProfile};
use crate::outcome::Outcome;
use crate::search;
use crate::txn::Txn;
use crate::validate;

/// Longest profile text field (nickname, names, position), in characters, as Mattermost's.
pub const MAX_PROFILE_FIELD_CHARS: usize = 64;

/// Replaces the profile fields, keeping the username and email indexes unique and the people
/// search index current.
pub(crate) fn update_profile(
    txn: &mut Txn,
    user_id: Id,
    at: u64,
    profile: &UserProfile,
) -> Step<Outcome> {
    let mut user = load_user(txn, user_id)?;
    let before = user.clone();
    let username = profile.username.to_lowercase();
    let email = profile.email.to_lowercase();
    validate::username(&username)?;
    validate::email(&email)?;
    for (field, value) in [
        ("nickname", &profile.nickname),
        ("first_name", &profile.first_name),
        ("last_name", &profile.last_name),
        ("position", &profile.position),
    ] {
        if value.chars().count() > MAX_PROFILE_FIELD_CHARS {
            return refuse(CommandError::Invalid(format!("{field} is too long")));
        }
    }
    if profile.locale.len() > 5 {
        return refuse(CommandError::Invalid("locale".into()));
    }
    if username != user.username {
        if txn.exists(Cf::UsernameUserid, username.as_bytes())? {
            return refuse(CommandError::UsernameTaken(username));
        }
        txn.delete(Cf::UsernameUserid, user.username.as_bytes().to_vec());
        txn.put_raw(
            Cf::UsernameUserid,
            username.as_bytes().to_vec(),
            id_key(user_id),
        );
    }
    if email != user.email {
        if txn.exists(Cf::EmailUserid, email.as_bytes())? {
            return refuse(CommandError::EmailTaken(email));
        }
        txn.delete(Cf::EmailUserid, user.email.as_bytes().to_vec());
        txn.put_raw(Cf::EmailUserid, email.as_bytes().to_vec(), id_key(user_id));
    }
    user.username = username;
    user.email = email;
    user.nickname = profile.nickname.clone();
    user.first_name = profile.first_name.clone();
    user.last_name = profile.last_name.clone();
    user.position = profile.position.clone();
    if !profile.locale.is_empty() {
        user.locale = profile.locale.clone();
    }
    crate::notify::validate_user_props(&profile.notify_props)?;
    user.notify_props = profile.notify_props.clone();
    let zone = &profile.timezone;
    for (name, value) in [
        ("automaticTimezone", &zone.automatic),
        ("manualTimezone", &zone.manual),
    ] {
        validate::text(name, value, MAX_TIMEZONE_CHARS)?;
    }
    user.timezone = zone.clone();
    search::people::replace_user(txn, &before, &user);
    crate::keywords::replace_user(txn, Some(&before), &user)?;
    crate::wide_ignore::on_user_props_changed(txn, &before, &user)?;
    save(txn, user, at, Vec::new())
}

/// Longest timezone name kept (IANA names are under 40 characters).
const MAX_TIMEZONE_CHARS: usize = 64;

/// A new password hash (computed by the node that took the request). Every session but
/// `keep` (the one that changed it) ends, so a stolen session does not outlive the change.
pub(crate) fn set_password(
    txn: &mut Txn,
    user_id: Id,
    at: u64,
    password_hash: &str,
    keep: Option<Id>,
) -> Step<Outcome> {
    let mut user = load_user(txn, user_id)?;
    user.password_hash = password_hash.to_string();
    let revoked = revoke_sessions(txn, user_id, keep)?;
    save(txn, user, at, revoked)
}

/// The user's system roles: `system_user`, optionally with `system_admin`.
pub(crate) fn set_roles(txn: &mut Txn, user_id: Id, at: u64, roles: &str) -> Step<Outcome> {
    let mut user = load_user(txn, user_id)?;
    let mut names: Vec<&str> = roles.split_whitespace().collect();
    names.sort_unstable();
    names.dedup();
    if !names.contains(&"system_user")
        || names
            .iter()
            .any(|r| !matches!(*r, "system_user" | "system_admin"))
    {
        return refuse(CommandError::Invalid(format!("roles {roles:?}")));
    }
    let roles = if names.contains(&"system_admin") {
        "system_user system_admin"
    } else {
        "system_user"
    };
    if user.roles == roles {
        return save(txn, user, at, Vec::new());
    }
    user.roles = roles.into();
    match save(txn, user, at, Vec::new())? {
        Outcome::UserUpdated { user, revoked } => Ok(Outcome::UserRolesChanged { user, revoked }),
        other => Ok(other),
    }
}

/// Deactivates (every session ends) or reactivates a user.
pub(crate) fn set_active(txn: &mut Txn, user_id: Id, at: u64, active: bool) -> Step<Outcome> {
    let mut user = load_user(txn, user_id)?;
    let revoked = if active {
        user.delete_at = 0;
        Vec::new()
    } else {
        if user.delete_at == 0 {
            user.delete_at = at;
        }
        revoke_sessions(txn, user_id, None)?
    };
    save(txn, user, at, revoked)
}

/// Ends every session of the user (`POST /users/{id}/sessions/revoke/all`).
pub(crate) fn revoke_all(txn: &mut Txn, user_id: Id) -> Step<Outcome> {
    load_user(txn, user_id)?;
    Ok(Outcome::SessionsRevoked(revoke_sessions(
        txn, user_id, None,
    )?))
}

fn save(txn: &mut Txn, mut user: User, at: u64, revoked: Vec<Session>) -> Step<Outcome> {
    user.update_at = user.update_at.max(at);
    txn.put(Cf::UseridUser, id_key(user.id), &user)?;
    Ok(Outcome::UserUpdated { user, revoked })
}

/// Deletes the user's sessions except `keep`, and answers them (their sockets close on every
/// node). Bounded by the user's own session count.
fn revoke_sessions(txn: &mut Txn, user_id: Id, keep: Option<Id>) -> Step<Vec<Session>> {
    let mut revoked = Vec::new();
    for (key, _) in txn.scan_prefix(Cf::UseridToken, user_id.as_bytes())? {
        let Some(token) = key.get(16..).and_then(Id::from_slice) else {
            continue;
        };
        if Some(token) == keep {
            continue;
        }
        if let Some(session) = txn.get::<Session>(Cf::TokenSession, &id_key(token))? {
            revoked.push(session);
        }
        txn.delete(Cf::TokenSession, id_key(token));
        txn.delete(Cf::UseridToken, id2(user_id, token));
    }
    Ok(revoked)
}
