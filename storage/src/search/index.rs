//! The post search index, `term_bucket_channelid_createats`: for each distinct term of a post,
//! its creation time in the block `term · 0x00 · rev(bucket(create_at)) · channel_id`, written at
//! apply as a merge operand in the same batch as the post ([`super::postings`] holds the block
//! format and the merge operator). Under one term the blocks are newest bucket first, and within
//! a bucket in channel order: the term's newest blocks in all of a user's channels lie together
//! (a row), so a search reads them with one seek and steps, where one seek per channel cost it
//! half its time, and it stops after the rows a page needs.
//!
//! A post's terms are its words' terms, its hashtags and its author (`from:`). System messages
//! are not indexed (Mattermost never finds them). Terms hold no NUL byte (words, `#tags` and
//! `@author` cannot), so the NUL ends the variable-length part and keys of one term group
//! together before any longer term.

use super::adjacent;
use super::numbered;
use super::postings::{self, bucket};
use super::tokenize::{author_term, hashtags, tokens, Token};
use crate::cf::Cf;
use crate::id::Id;
use crate::keys::{post_time_key, KeyBuf};
use crate::model::{Channel, Post};
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

/// Whether `term` is one of [`terms_of`] the same tokens, without building the set: a check of a
/// candidate asks this of a dozen tokens, where the set would cost an allocation per term.
pub(crate) fn holds_term(words: &[Token], tags: &[Token], author: Id, term: &str) -> bool {
    !term.is_empty()
        && !term.contains('\0')
        && (words.iter().chain(tags).any(|t| t.term == term)
            || (term.starts_with('@') && term == author_term(author)))
}

/// `term · 0x00 · channel`: the prefix of a term's bitmaps in one channel
/// ([`numbered`]).
pub(crate) fn term_channel_prefix(term: &str, channel: Id) -> Vec<u8> {
    KeyBuf::new().str(term).byte(0).id(channel).build()
}

/// `term · 0x00`: the prefix of all of a term's keys.
pub(crate) fn term_prefix(term: &str) -> Vec<u8> {
    KeyBuf::new().str(term).byte(0).build()
}

/// `term · 0x00 · rev(bucket)`: the prefix of a term's row of blocks in one bucket.
pub(crate) fn row_prefix(term_prefix: &[u8], bucket: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(term_prefix.len() + 4 + 16);
    key.extend_from_slice(term_prefix);
    key.extend_from_slice(&(u32::MAX - bucket).to_be_bytes());
    key
}

/// The block holding `create_at` for `term` in `channel`.
pub(crate) fn block_key(term: &str, channel: Id, create_at: u64) -> Vec<u8> {
    let mut key = row_prefix(&term_prefix(term), bucket(create_at));
    key.extend_from_slice(channel.as_bytes());
    key
}

/// The bucket and channel of a block's key, given its term's prefix; None for a key of another
/// shape.
pub(crate) fn block_of_key(term_prefix: &[u8], key: &[u8]) -> Option<(u32, Id)> {
    let rest = key.strip_prefix(term_prefix)?;
    if rest.len() != 20 {
        return None;
    }
    let rev = u32::from_be_bytes(rest[..4].try_into().ok()?);
    Some((u32::MAX - rev, Id::from_slice(&rest[4..])?))
}

/// Writes that `post` holds (`present`) or no longer holds each of `terms`: in the term's time
/// block and, when the post is numbered, in its chunk's bitset. The terms are worked out once by
/// the caller and serve both.
fn write_terms<'t>(
    txn: &mut Txn,
    terms: impl Iterator<Item = &'t String> + Clone,
    post: &Post,
    present: bool,
) {
    let operand = if present {
        postings::add(post.create_at)
    } else {
        postings::remove(post.create_at)
    };
    for term in terms.clone() {
        let key = block_key(term, post.channel_id, post.create_at);
        txn.merge(Cf::TermBucketChannelidCreateats, key, operand.clone());
    }
    numbered::write_bits(txn, terms, post, present);
}

/// Numbers a new post in its channel ([`numbered::number_new_post`]) and indexes it. Returns the
/// value of its `channelid_createat_postid` key: the filter of its adjacent words
/// ([`adjacent`]), empty for a post the index leaves out.
pub(crate) fn add(txn: &mut Txn, channel: &mut Channel, post: &mut Post) -> Vec<u8> {
    numbered::number_new_post(txn, channel, post);
    if !is_searchable(post) {
        return Vec::new();
    }
    let words = tokens(&post.message);
    let terms = terms_of(&words, &hashtags(&post.message), post.user_id);
    write_terms(txn, terms.iter(), post, true);
    adjacent::filter_of(&words)
}

/// Takes a deleted post out of the index (its number keeps its time: numbers are never reused).
pub(crate) fn remove(txn: &mut Txn, post: &Post) {
    if is_searchable(post) {
        let terms = message_terms(&post.message, post.user_id);
        write_terms(txn, terms.iter(), post, false);
    }
}

/// An edit of a live post: the terms only the old message had go, the new message's new terms
/// come in, and its time key gets the new message's filter of adjacent words.
pub(crate) fn replace(txn: &mut Txn, old_message: &str, post: &Post) {
    if !is_searchable(post) {
        return;
    }
    let old = message_terms(old_message, post.user_id);
    let words = tokens(&post.message);
    let new = terms_of(&words, &hashtags(&post.message), post.user_id);
    write_terms(txn, old.difference(&new), post, false);
    write_terms(txn, new.difference(&old), post, true);
    txn.put_raw(
        Cf::ChannelidCreateatPostid,
        post_time_key(post),
        adjacent::filter_of(&words),
    );
}
