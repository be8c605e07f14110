//! Mention keywords: the words besides `@username` that mention a user, as Mattermost's
//! `addMentionKeywordsForUser` makes them — each entry of the user's `mention_keys` notify prop
//! (comma-separated, trimmed, matched in any case) and, with `first_name` set to `"true"`, the
//! first name (matched exactly, case included).
//!
//! Mattermost builds a keyword map from every channel member's profile for each post. Here the
//! map is kept in `mentionkey_userids` (lowercase keyword → the users holding it), maintained
//! when a profile changes, so a post costs one point read per distinct candidate word of its
//! message ([`mentions::keyword_candidates`]) and one membership read per hit, whatever the
//! channel's size; and nothing at all while no user has a keyword (`meta` `"mention_keywords"`
//! counts the family's keys).
//!
//! Not matched: Mattermost also matches a keyword written in a multi-byte script anywhere
//! inside a word (`isKeywordMultibyte`); here a keyword is matched as a whole word only.

use crate::apply::Step;
use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;
use crate::id::Id;
use crate::keys::id2;
use crate::mentions;
use crate::model::User;
use crate::notify::meta_u64;
use crate::txn::Txn;
use rocksdb::IteratorMode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `meta` key: the number of keywords in `mentionkey_userids` (big-endian u64).
const COUNT_KEY: &[u8] = b"mention_keywords";
/// `meta` key: the family was built from the users of a data directory written before it.
const MARKER: &[u8] = b"mention_keywords_indexed";
/// Longest keyword kept, in bytes (lowercased): longer ones could never be a single word of a
/// post anyone writes, and keys stay small.
pub const MAX_KEYWORD_BYTES: usize = 64;

/// One user holding a keyword.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub user_id: Id,
    /// `None`: any case matches (a `mention_keys` entry). `Some(form)`: only this exact form
    /// (the first name).
    pub exact: Option<String>,
}

impl Holder {
    fn matches(&self, word: &str) -> bool {
        self.exact.as_deref().is_none_or(|form| form == word)
    }
}

/// A user's keywords: lowercase keyword → the exact form required (`None` for any case). A
/// word that is both a mention key and the first name matches in any case.
pub fn of_user(user: &User) -> BTreeMap<String, Option<String>> {
    let mut keywords = BTreeMap::new();
    if user.notify_props.get("first_name").map(String::as_str) == Some("true") {
        let first = user.first_name.trim();
        if !first.is_empty() && first.len() <= MAX_KEYWORD_BYTES {
            keywords.insert(first.to_lowercase(), Some(first.to_string()));
        }
    }
    if let Some(keys) = user.notify_props.get("mention_keys") {
        for key in keys.split(',') {
            let key = key.trim().to_lowercase();
            if !key.is_empty() && key.len() <= MAX_KEYWORD_BYTES {
                keywords.insert(key, None);
            }
        }
    }
    keywords
}

/// Whether `message` mentions the holder of `keywords` (from [`of_user`]).
pub fn message_mentions(message: &str, keywords: &BTreeMap<String, Option<String>>) -> bool {
    !keywords.is_empty()
        && mentions::keyword_candidates(message)
            .into_iter()
            .any(|word| match keywords.get(&word.to_lowercase()) {
                Some(exact) => exact.as_deref().is_none_or(|form| form == word),
                None => false,
            })
}

fn load_holders(txn: &mut Txn, keyword: &str) -> Step<Vec<Holder>> {
    Ok(txn
        .get(Cf::MentionkeyUserids, keyword.as_bytes())?
        .unwrap_or_default())
}

/// Keeps the family in step with a profile change (`before` is `None` for a new user).
pub(crate) fn replace_user(txn: &mut Txn, before: Option<&User>, after: &User) -> Step<()> {
    let old = before.map(of_user).unwrap_or_default();
    let new = of_user(after);
    if old == new {
        return Ok(());
    }
    let mut count = meta_u64(txn, COUNT_KEY)?;
    let touched: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for keyword in touched {
        let mut holders = load_holders(txn, keyword)?;
        let had = !holders.is_empty();
        holders.retain(|h| h.user_id != after.id);
        if let Some(exact) = new.get(keyword) {
            holders.push(Holder {
                user_id: after.id,
                exact: exact.clone(),
            });
            // By user id, as the build at open makes them: the bytes are the same on every
            // replica however it got here.
            holders.sort_by_key(|h| h.user_id);
        }
        let key = keyword.as_bytes().to_vec();
        if holders.is_empty() {
            txn.delete(Cf::MentionkeyUserids, key);
            count = count.saturating_sub(u64::from(had));
        } else {
            txn.put(Cf::MentionkeyUserids, key, &holders)?;
            count += u64::from(!had);
        }
    }
    txn.put_raw(Cf::Meta, COUNT_KEY.to_vec(), count.to_be_bytes().to_vec());
    Ok(())
}

/// The members of `channel` that `message` mentions by keyword, its author included (callers
/// drop the author as they do for `@username`).
pub(crate) fn mentioned_members(txn: &mut Txn, channel: Id, message: &str) -> Step<BTreeSet<Id>> {
    let mut users = BTreeSet::new();
    if meta_u64(txn, COUNT_KEY)? == 0 {
        return Ok(users);
    }
    for word in mentions::keyword_candidates(message) {
        let keyword = word.to_lowercase();
        if keyword.len() > MAX_KEYWORD_BYTES {
            continue;
        }
        for holder in load_holders(txn, &keyword)? {
            if holder.matches(word)
                && !users.contains(&holder.user_id)
                && txn.exists(Cf::ChannelidUseridMember, &id2(channel, holder.user_id))?
            {
                users.insert(holder.user_id);
            }
        }
    }
    Ok(users)
}

impl Engine {
    /// At open: builds the family from the users of a data directory written before it (one
    /// pass over the users; a fresh directory has none and is marked at once).
    pub(crate) fn init_mention_keywords(&self) -> Result<()> {
        self.once_at_open(MARKER, |batch| {
            let mut index: BTreeMap<String, Vec<Holder>> = BTreeMap::new();
            for item in self
                .db
                .iterator_cf(self.cf(Cf::UseridUser)?, IteratorMode::Start)
            {
                let (_, value) = item?;
                let Ok(user) = rmp_serde::from_slice::<User>(&value) else {
                    continue;
                };
                for (keyword, exact) in of_user(&user) {
                    index.entry(keyword).or_default().push(Holder {
                        user_id: user.id,
                        exact,
                    });
                }
            }
            let family = self.cf(Cf::MentionkeyUserids)?;
            for (keyword, holders) in &index {
                batch.put_cf(family, keyword.as_bytes(), rmp_serde::to_vec(holders)?);
            }
            let meta = self.cf(Cf::Meta)?;
            batch.put_cf(meta, COUNT_KEY, (index.len() as u64).to_be_bytes());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserProfile;
    use crate::Command;

    fn user(engine: &Engine, index: u64, n: u8, first: &str, props: &[(&str, &str)]) {
        let id = Id::from_bytes([n; 16]);
        let name = format!("user{n}");
        let create = Command::CreateUser {
            id,
            at: 1,
            username: name.clone(),
            email: format!("{name}@example.com"),
            password_hash: "hash".into(),
            nickname: String::new(),
            first_name: first.into(),
            last_name: String::new(),
            roles: "system_user".into(),
        };
        assert!(engine.apply(index, &create).expect("apply").result.is_ok());
        let current = engine.reader().user(id).expect("read").expect("user");
        let mut profile = UserProfile::of(&current);
        profile.notify_props = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let update = Command::UpdateUser {
            user_id: id,
            at: 2,
            profile,
        };
        assert!(engine
            .apply(index + 1, &update)
            .expect("apply")
            .result
            .is_ok());
    }

    /// A data directory from before the family is indexed at open to the very bytes apply
    /// keeps, so replicas that upgraded and replicas that applied agree.
    #[test]
    fn the_build_at_open_equals_what_apply_keeps() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("open");
        user(
            &engine,
            1,
            3,
            "Zed",
            &[("first_name", "true"), ("mention_keys", "ops")],
        );
        user(&engine, 3, 1, "Ann", &[("mention_keys", "Ops, db")]);
        user(&engine, 5, 2, "Bo", &[]);
        let kept = engine.state_digest().expect("digest");
        let ops = engine
            .db
            .get_cf(engine.cf(Cf::MentionkeyUserids).expect("cf"), b"ops")
            .expect("read")
            .expect("ops is a keyword");
        let holders: Vec<Holder> = rmp_serde::from_slice(&ops).expect("holders");
        let ids: Vec<Id> = holders.iter().map(|h| h.user_id).collect();
        assert_eq!(ids, vec![Id::from_bytes([1; 16]), Id::from_bytes([3; 16])]);

        // As a data directory written before the family: no keywords, no marker.
        let family = engine.cf(Cf::MentionkeyUserids).expect("cf");
        let meta = engine.cf(Cf::Meta).expect("meta");
        for keyword in ["ops", "db", "zed"] {
            engine.db.delete_cf(family, keyword).expect("delete");
        }
        engine.db.delete_cf(meta, COUNT_KEY).expect("delete");
        engine.db.delete_cf(meta, MARKER).expect("delete");
        assert_ne!(engine.state_digest().expect("digest"), kept);
        drop(engine);

        let reopened = Engine::open(dir.path()).expect("reopen");
        assert_eq!(reopened.state_digest().expect("digest"), kept);
    }

    #[test]
    fn a_users_keywords_and_what_mentions_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("open");
        let props = [("first_name", "true"), ("mention_keys", "DB, @ops,,")];
        user(&engine, 1, 1, "Ann", &props);
        let ann = engine.reader().user(Id::from_bytes([1; 16])).expect("read");
        let keywords = of_user(&ann.expect("user"));
        assert_eq!(keywords.len(), 3);
        assert!(message_mentions("the db.", &keywords));
        assert!(message_mentions("hi @OPS", &keywords));
        assert!(message_mentions("Ann?", &keywords));
        assert!(!message_mentions("ann? ops", &keywords));
        assert!(!message_mentions("anything", &BTreeMap::new()));
    }
}
