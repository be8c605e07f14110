//! Small images kept whole: users' profile pictures and custom emoji. Family `kind_id_image`:
//! kind · id → the image bytes (BlobDB past 4 KiB, like file chunks). Unlike uploads they are
//! small (a profile picture is a 128×128 PNG the server made; an emoji image is at most 512 KiB)
//! and never shared, so each travels in one command and is stored as it came.

use crate::apply::{load_user, refuse, Step};
use crate::cf::Cf;
use crate::error::{CommandError, Result};
use crate::id::Id;
use crate::keys::{id_key, KeyBuf};
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;

/// A user's profile picture (PNG).
pub const KIND_PROFILE: u8 = b'u';
/// A custom emoji's image, as uploaded (PNG, JPEG, GIF…).
pub const KIND_EMOJI: u8 = b'e';
/// Largest profile picture a command may carry.
pub const MAX_PROFILE_IMAGE_BYTES: usize = 1 << 20;

fn key(kind: u8, id: Id) -> Vec<u8> {
    KeyBuf::new().byte(kind).id(id).build()
}

pub(crate) fn put(txn: &mut Txn, kind: u8, id: Id, bytes: Vec<u8>) {
    txn.put_raw(Cf::KindIdImage, key(kind, id), bytes);
}

pub(crate) fn remove(txn: &mut Txn, kind: u8, id: Id) {
    txn.delete(Cf::KindIdImage, key(kind, id));
}

pub(crate) fn get(reader: &Reader, kind: u8, id: Id) -> Result<Option<Vec<u8>>> {
    reader.get_raw(Cf::KindIdImage, &key(kind, id))
}

/// Applies `SetProfileImage`: stores the picture and stamps `last_picture_update` with the time,
/// or, going back to the generated picture, deletes it and stamps minus the time (Mattermost's
/// convention: the URL still changes, and the sign says the picture is the default one).
pub(crate) fn set_profile_image(
    txn: &mut Txn,
    user_id: Id,
    at: u64,
    png: Option<&[u8]>,
) -> Step<Outcome> {
    let mut user = load_user(txn, user_id)?;
    if user.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("user {user_id}")));
    }
    let stamp = i64::try_from(at).unwrap_or(i64::MAX);
    match png {
        Some(bytes) => {
            if bytes.is_empty() || bytes.len() > MAX_PROFILE_IMAGE_BYTES {
                return refuse(CommandError::Invalid(format!(
                    "a profile image must be 1 to {MAX_PROFILE_IMAGE_BYTES} bytes"
                )));
            }
            put(txn, KIND_PROFILE, user_id, bytes.to_vec());
            user.last_picture_update = stamp;
        }
        None => {
            remove(txn, KIND_PROFILE, user_id);
            user.last_picture_update = -stamp;
        }
    }
    user.update_at = user.update_at.max(at);
    txn.put(Cf::UseridUser, id_key(user_id), &user)?;
    Ok(Outcome::UserUpdated {
        user,
        revoked: Vec::new(),
    })
}

impl Reader<'_> {
    /// The profile picture a user set, if any (else the server draws the default one).
    pub fn profile_image(&self, user: Id) -> Result<Option<Vec<u8>>> {
        get(self, KIND_PROFILE, user)
    }
}
