//! The post search index, `term_channelid_createat_postid`: one empty-valued key per distinct
//! term of a post — `term · 0x00 · channel_id · rev(create_at) · post_id` — written at apply in
//! the same batch as the post. Under one term the keys of a channel are newest first, so the
//! newest matches of a user come from one seek per (term, channel) and stop after a page, and the
//! same key answers "does post P hold term T" with one point lookup.
//!
//! A post's terms are its words' terms, its hashtags and its author (`from:`). System messages
//! are not indexed (Mattermost never finds them). Terms hold no NUL byte (words, `#tags` and
//! `@author` cannot), so the NUL ends the variable-length part and keys of one term group
//! together before any longer term.

use super::tokenize::{author_term, hashtags, tokens};
use crate::cf::Cf;
use crate::id::Id;
use crate::keys::KeyBuf;
use crate::model::Post;
use crate::txn::Txn;
use std::collections::BTreeSet;

/// Whether a post belongs in the index at all.
pub fn is_searchable(post: &Post) -> bool {
    !post.post_type.starts_with("system_")
}

/// Every term a message by `author` is found by.
pub fn message_terms(message: &str, author: Id) -> BTreeSet<String> {
    let mut terms: BTreeSet<String> = tokens(message).into_iter().map(|t| t.term).collect();
    terms.extend(hashtags(message).into_iter().map(|t| t.term));
    terms.insert(author_term(author));
    terms.retain(|t| !t.is_empty() && !t.contains('\0'));
    terms
}

/// `term · 0x00 · channel`: the prefix of a term's keys in one channel.
pub(crate) fn term_channel_prefix(term: &str, channel: Id) -> Vec<u8> {
    KeyBuf::new().str(term).byte(0).id(channel).build()
}

pub(crate) fn term_key(term: &str, channel: Id, create_at: u64, post: Id) -> Vec<u8> {
    KeyBuf::new()
        .str(term)
        .byte(0)
        .id(channel)
        .rev_u64(create_at)
        .id(post)
        .build()
}

/// Indexes a new post.
pub(crate) fn add(txn: &mut Txn, post: &Post) {
    if !is_searchable(post) {
        return;
    }
    for term in message_terms(&post.message, post.user_id) {
        txn.put_raw(
            Cf::TermChannelidCreateatPostid,
            term_key(&term, post.channel_id, post.create_at, post.id),
            Vec::new(),
        );
    }
}

/// Takes a deleted post out of the index.
pub(crate) fn remove(txn: &mut Txn, post: &Post) {
    if !is_searchable(post) {
        return;
    }
    for term in message_terms(&post.message, post.user_id) {
        txn.delete(
            Cf::TermChannelidCreateatPostid,
            term_key(&term, post.channel_id, post.create_at, post.id),
        );
    }
}

/// An edit: the terms only the old message had go, the new message's new terms come in.
pub(crate) fn replace(txn: &mut Txn, old_message: &str, post: &Post) {
    if !is_searchable(post) {
        return;
    }
    let old = message_terms(old_message, post.user_id);
    let new = message_terms(&post.message, post.user_id);
    for term in old.difference(&new) {
        txn.delete(
            Cf::TermChannelidCreateatPostid,
            term_key(term, post.channel_id, post.create_at, post.id),
        );
    }
    for term in new.difference(&old) {
        txn.put_raw(
            Cf::TermChannelidCreateatPostid,
            term_key(term, post.channel_id, post.create_at, post.id),
            Vec::new(),
        );
    }
}
