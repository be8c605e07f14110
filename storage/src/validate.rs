//! Input rules shared by apply and the server: bad input is a typed refusal, never a panic.

use crate::command::MAX_MESSAGE_CHARS;
use crate::error::CommandError;

type Check = Result<(), CommandError>;

fn invalid(what: String) -> Check {
    Err(CommandError::Invalid(what))
}

/// Mattermost's rule: 3–22 characters, starts with a letter, then letters, digits, `.`, `-`, `_`.
pub fn username(name: &str) -> Check {
    let ok = (3..=22).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if ok && !matches!(name, "channel" | "all" | "here") {
        Ok(())
    } else {
        invalid(format!("invalid username {name:?}"))
    }
}

pub fn email(email: &str) -> Check {
    let parts: Vec<&str> = email.split('@').collect();
    if email.len() <= 128 && parts.len() == 2 && !parts[0].is_empty() && !parts[1].is_empty() {
        Ok(())
    } else {
        invalid(format!("invalid email {email:?}"))
    }
}

/// Team names: 2–64 of lowercase letters, digits and `-`.
pub fn team_name(name: &str) -> Check {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        invalid(format!("invalid team name {name:?}"))
    }
}

/// Channel names: 1–64 of lowercase letters, digits, `-` and `_`.
pub fn channel_name(name: &str) -> Check {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        invalid(format!("invalid channel name {name:?}"))
    }
}

pub fn display_name(name: &str) -> Check {
    if name.trim().is_empty() || name.chars().count() > 64 {
        invalid(format!("invalid display name {name:?}"))
    } else {
        Ok(())
    }
}

/// Emoji names: 1–64 of letters, digits, `_`, `-`, `+`.
pub fn emoji(name: &str) -> Check {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'));
    if ok {
        Ok(())
    } else {
        invalid(format!("invalid emoji name {name:?}"))
    }
}

pub fn message(message: &str) -> Check {
    let chars = message.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        Err(CommandError::MessageTooLong(chars))
    } else {
        Ok(())
    }
}

/// Longest `pending_post_id` accepted, in characters. Mattermost's clients send
/// `user_id:millis` (40); Mattermost drops longer than 64.
pub const MAX_PENDING_POST_ID_CHARS: usize = 64;

/// A post's `pending_post_id`: empty (no retry dedup) or at most
/// [`MAX_PENDING_POST_ID_CHARS`] characters. It is part of a stored key, so it is bounded.
pub fn pending_post_id(value: &str) -> Check {
    text("pending_post_id", value, MAX_PENDING_POST_ID_CHARS)
}

pub fn text(field: &str, value: &str, max_chars: usize) -> Check {
    if value.chars().count() > max_chars {
        invalid(format!("{field} is longer than {max_chars} characters"))
    } else {
        Ok(())
    }
}
