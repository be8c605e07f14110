//! The post search index, `term_channelid_bucket_createats`: for each distinct term of a post,
//! its creation time in the block `term · 0x00 · channel_id · rev(bucket(create_at))`, written at
//! apply as a merge operand in the same batch as the post ([`super::postings`] holds the block
//! format and the merge operator). Under one term the blocks of a channel are newest first, so
//! the newest matches of a user come from one seek per (term, channel) and stop after a page.
//!
//! A post's terms are its words' terms, its hashtags and its author (`from:`). System messages
//! are not indexed (Mattermost never finds them). Terms hold no NUL byte (words, `#tags` and
//! `@author` cannot), so the NUL ends the variable-length part and keys of one term group
//! together before any longer term.

use super::numbered;
use super::postings::{self, bucket};
use super::tokenize::{author_term, hashtags, tokens, Token};
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
    terms_of(&tokens(message), &hashtags(message), author)
}

/// The index terms of a message already split into its word tokens and its hashtags.
pub(crate) fn terms_of(words: &[Token], tags: &[Token], author: Id) -> BTreeSet<String> {
    let mut terms: BTreeSet<String> = words.iter().map(|t| t.term.clone()).collect();
    terms.extend(tags.iter().map(|t| t.term.clone()));
    terms.insert(author_term(author));
    terms.retain(|t| !t.is_empty() && !t.contains('\0'));
    terms
}

/// `term · 0x00 · channel`: the prefix of a term's blocks in one channel.
pub(crate) fn term_channel_prefix(term: &str, channel: Id) -> Vec<u8> {
    KeyBuf::new().str(term).byte(0).id(channel).build()
}

/// `rev(bucket)`: newer blocks sort first.
pub(crate) fn rev_bucket(create_at: u64) -> [u8; 4] {
    (u32::MAX - bucket(create_at)).to_be_bytes()
}

/// The block holding `create_at` for `term` in `channel`.
pub(crate) fn block_key(term: &str, channel: Id, create_at: u64) -> Vec<u8> {
    KeyBuf::new()
        .str(term)
        .byte(0)
        .id(channel)
        .raw(&rev_bucket(create_at))
        .build()
}

/// Writes `operand` (an add or a remove of `post`'s time) to each term's block.
fn write_to_blocks(
    txn: &mut Txn,
    terms: impl IntoIterator<Item = impl AsRef<str>>,
    post: &Post,
    operand: &[u8],
) {
    for term in terms {
        let key = block_key(term.as_ref(), post.channel_id, post.create_at);
        txn.merge(Cf::TermChannelidBucketCreateats, key, operand.to_vec());
    }
}

/// Indexes a new post in the time blocks (apply numbers it first: [`numbered::number_new_post`]).
pub(crate) fn add(txn: &mut Txn, post: &Post) {
    if is_searchable(post) {
        let terms = message_terms(&post.message, post.user_id);
        write_to_blocks(txn, terms, post, &postings::add(post.create_at));
    }
}

/// Takes a deleted post out of the index (time blocks and bitmaps).
pub(crate) fn remove(txn: &mut Txn, post: &Post) {
    numbered::remove(txn, post);
    if is_searchable(post) {
        let terms = message_terms(&post.message, post.user_id);
        write_to_blocks(txn, terms, post, &postings::remove(post.create_at));
    }
}

/// An edit: the terms only the old message had go, the new message's new terms come in (time
/// blocks and bitmaps).
pub(crate) fn replace(txn: &mut Txn, old_message: &str, post: &Post) {
    numbered::replace(txn, old_message, post);
    if !is_searchable(post) {
        return;
    }
    let old = message_terms(old_message, post.user_id);
    let new = message_terms(&post.message, post.user_id);
    let (remove, add) = (
        postings::remove(post.create_at),
        postings::add(post.create_at),
    );
    write_to_blocks(txn, old.difference(&new), post, &remove);
    write_to_blocks(txn, new.difference(&old), post, &add);
}
