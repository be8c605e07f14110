//! Drafts: the message a user has typed but not sent, per channel or thread, kept on the server
//! so that it follows them to their other devices (Mattermost's synced drafts; load-test-ng's
//! mix writes and deletes them constantly).
//!
//! Key: `user_id · channel_id · root_id` (zero for the channel's own box). Value: [`Draft`]. A
//! user's drafts are one prefix scan; saving or deleting one is one key.

use crate::apply::{load_live_channel, load_user, refuse, Step};
use crate::cf::Cf;
use crate::command::MAX_MESSAGE_CHARS;
use crate::error::{CommandError, Result, StorageError};
use crate::id::Id;
use crate::keys::{id2, KeyBuf};
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};

/// Most files one draft may list (Mattermost's per-post limit).
pub const MAX_DRAFT_FILES: usize = 10;
/// Largest `props` text, in bytes.
pub const MAX_DRAFT_PROPS_BYTES: usize = 64 * 1024;

/// One draft, as stored and as Mattermost's JSON names its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub user_id: Id,
    pub channel_id: Id,
    pub root_id: Option<Id>,
    pub create_at: u64,
    pub update_at: u64,
    pub message: String,
    /// The `props` object as JSON text, stored verbatim.
    pub props: String,
    pub file_ids: Vec<String>,
    /// The `priority` metadata as JSON text, empty when none.
    pub priority: String,
}

fn draft_key(user: Id, channel: Id, root: Option<Id>) -> Vec<u8> {
    KeyBuf::new()
        .id(user)
        .id(channel)
        .id(root.unwrap_or(Id::NONE))
        .build()
}

/// Applies `UpsertDraft`: saves the draft of a channel member (an empty one, with no files, is
/// deleted instead, as Mattermost does).
pub(crate) fn upsert(txn: &mut Txn, draft: &Draft) -> Step<Outcome> {
    let chars = draft.message.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return refuse(CommandError::MessageTooLong(chars));
    }
    if draft.file_ids.len() > MAX_DRAFT_FILES {
        return refuse(CommandError::Invalid(format!(
            "at most {MAX_DRAFT_FILES} files in a draft"
        )));
    }
    if draft.props.len() > MAX_DRAFT_PROPS_BYTES || draft.priority.len() > MAX_DRAFT_PROPS_BYTES {
        return refuse(CommandError::Invalid("draft props are too large".into()));
    }
    let owner = load_user(txn, draft.user_id)?;
    if owner.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("user {}", draft.user_id)));
    }
    let channel = load_live_channel(txn, draft.channel_id)?;
    if !txn.exists(Cf::ChannelidUseridMember, &id2(channel.id, draft.user_id))? {
        return refuse(CommandError::NotMember {
            user: draft.user_id.to_string(),
            of: format!("channel {}", channel.id),
        });
    }
    let key = draft_key(draft.user_id, draft.channel_id, draft.root_id);
    let before: Option<Draft> = txn.get(Cf::UseridChannelidRootidDraft, &key)?;
    if draft.message.is_empty() && draft.file_ids.is_empty() {
        if before.is_some() {
            txn.delete(Cf::UseridChannelidRootidDraft, key);
        }
        return Ok(Outcome::DraftDeleted(before.map(Box::new)));
    }
    let saved = Draft {
        create_at: before.as_ref().map_or(draft.update_at, |d| d.create_at),
        ..draft.clone()
    };
    txn.put(Cf::UseridChannelidRootidDraft, key, &saved)?;
    Ok(Outcome::DraftSaved {
        draft: Box::new(saved),
        created: before.is_none(),
    })
}

/// Applies `DeleteDraft`: removes it if there is one (none is no error, as in Mattermost).
pub(crate) fn delete(txn: &mut Txn, user: Id, channel: Id, root: Option<Id>) -> Step<Outcome> {
    let key = draft_key(user, channel, root);
    let before: Option<Draft> = txn.get(Cf::UseridChannelidRootidDraft, &key)?;
    if before.is_some() {
        txn.delete(Cf::UseridChannelidRootidDraft, key);
    }
    Ok(Outcome::DraftDeleted(before.map(Box::new)))
}

impl Reader<'_> {
    /// Every draft of `user`, by channel then thread: one prefix scan.
    pub fn drafts(&self, user: Id) -> Result<Vec<Draft>> {
        let mut found = Vec::new();
        let mut failure = None;
        self.scan_prefix(
            Cf::UseridChannelidRootidDraft,
            user.as_bytes(),
            false,
            |_, value| match rmp_serde::from_slice::<Draft>(value) {
                Ok(draft) => {
                    found.push(draft);
                    true
                }
                Err(e) => {
                    failure = Some(StorageError::from(e));
                    false
                }
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// One draft: a point lookup.
    pub fn draft(&self, user: Id, channel: Id, root: Option<Id>) -> Result<Option<Draft>> {
        self.get(
            Cf::UseridChannelidRootidDraft,
            &draft_key(user, channel, root),
        )
    }
}
