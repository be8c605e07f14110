//! People and channel search: prefix matches on names. Users have their own small index,
//! `nameterm_userid` (folded username and each word of first name, last name and nickname), so
//! typing `@jo` reads the keys under `jo` and no user record it cannot show; the scan is
//! bounded. Channels are matched by a bounded scan of the team's channel-name index, which a
//! team keeps small.

use super::tokenize::{cap, fold};
use crate::cf::Cf;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{id2, KeyBuf};
use crate::model::{Channel, ChannelType, User};
use crate::read::Reader;
use crate::txn::Txn;
use std::collections::BTreeSet;
use unicode_segmentation::UnicodeSegmentation;

/// Index keys read at most for one people search.
pub const MAX_NAME_KEYS: usize = 20_000;
/// Channels of a team looked at at most for one channel search.
pub const MAX_TEAM_CHANNELS: usize = 20_000;

/// The folded terms a user is found by.
pub fn user_terms(user: &User) -> BTreeSet<String> {
    let mut terms = BTreeSet::new();
    terms.insert(cap(fold(&user.username)));
    for field in [
        &user.username,
        &user.first_name,
        &user.last_name,
        &user.nickname,
    ] {
        for word in field.unicode_words() {
            terms.insert(cap(fold(word)));
        }
    }
    terms.retain(|t| !t.is_empty() && !t.contains('\0'));
    terms
}

fn name_key(term: &str, user: Id) -> Vec<u8> {
    KeyBuf::new().str(term).byte(0).id(user).build()
}

/// Indexes a new user.
pub(crate) fn add_user(txn: &mut Txn, user: &User) {
    for term in user_terms(user) {
        txn.put_raw(Cf::NametermUserid, name_key(&term, user.id), Vec::new());
    }
}

/// Re-indexes a user whose names changed: the terms only the old names had go, the new ones
/// come.
pub(crate) fn replace_user(txn: &mut Txn, old: &User, new: &User) {
    let (before, after) = (user_terms(old), user_terms(new));
    for term in before.difference(&after) {
        txn.delete(Cf::NametermUserid, name_key(term, old.id));
    }
    for term in after.difference(&before) {
        txn.put_raw(Cf::NametermUserid, name_key(term, new.id), Vec::new());
    }
}

/// The words of a search term, folded (`@` and surrounding space dropped).
pub fn query_words(term: &str) -> Vec<String> {
    let term = term.trim().trim_start_matches('@');
    let folded = fold(term);
    let mut words: Vec<String> = folded
        .split_whitespace()
        .map(|w| cap(w.to_string()))
        .filter(|w| !w.is_empty())
        .collect();
    words.dedup();
    words
}

/// Whether a user's names have a term starting with each word.
pub fn user_matches(user: &User, words: &[String]) -> bool {
    let terms = user_terms(user);
    words.iter().all(|word| {
        terms
            .range(word.clone()..)
            .take_while(|t| t.starts_with(word.as_str()))
            .next()
            .is_some()
    })
}

/// Whether a channel's name or a word of its display name starts with each word.
pub fn channel_matches(channel: &Channel, words: &[String]) -> bool {
    let name = fold(&channel.name);
    let display = fold(&channel.display_name);
    let mut terms: Vec<&str> = display.unicode_words().collect();
    terms.push(&name);
    terms.extend(name.split(['-', '_']));
    words.iter().all(|word| {
        terms.iter().any(|t| t.starts_with(word.as_str())) || display.starts_with(word.as_str())
    })
}

impl Reader<'_> {
    /// Users whose names match `term` (every word a prefix of one of their names) and whom
    /// `keep` accepts, at most `limit`, by username. Deleted users only with `allow_inactive`.
    pub fn search_users(
        &self,
        term: &str,
        limit: usize,
        allow_inactive: bool,
        mut keep: impl FnMut(&Reader, &User) -> Result<bool>,
    ) -> Result<Vec<User>> {
        let words = query_words(term);
        let mut ids: Vec<Id> = Vec::new();
        let mut seen = BTreeSet::new();
        match words.first() {
            // No term: users in id order, as Mattermost lists them.
            None => {
                self.scan(Cf::UseridUser, &[], None, false, |key, _| {
                    ids.extend(Id::from_slice(key));
                    ids.len() < MAX_NAME_KEYS
                })?;
            }
            Some(first) => {
                let mut read = 0usize;
                self.scan_prefix(Cf::NametermUserid, first.as_bytes(), false, |key, _| {
                    read += 1;
                    if let Some(id) = key
                        .get(key.len().saturating_sub(16)..)
                        .and_then(Id::from_slice)
                    {
                        if seen.insert(id) {
                            ids.push(id);
                        }
                    }
                    read < MAX_NAME_KEYS
                })?;
            }
        }
        let mut users = Vec::new();
        for id in ids {
            if users.len() >= limit {
                break;
            }
            let Some(user) = self.user(id)? else { continue };
            if user.delete_at != 0 && !allow_inactive {
                continue;
            }
            if !user_matches(&user, &words) || !keep(self, &user)? {
                continue;
            }
            users.push(user);
        }
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    /// Whether `user` is an active member of `team`.
    pub fn is_team_member(&self, team: Id, user: Id) -> Result<bool> {
        Ok(self
            .team_member(team, user)?
            .is_some_and(|m| m.delete_at == 0))
    }

    /// Whether `user` is a member of `channel`.
    pub fn is_channel_member(&self, channel: Id, user: Id) -> Result<bool> {
        Ok(self
            .get_raw(Cf::ChannelidUseridMember, &id2(channel, user))?
            .is_some())
    }

    /// A team's channels whose name or display name matches `term`, among those `visible`
    /// (archived ones only with `include_archived`), by name, at most `limit`.
    pub fn search_team_channels(
        &self,
        team: Id,
        term: &str,
        include_archived: bool,
        limit: usize,
        mut visible: impl FnMut(&Reader, &Channel) -> Result<bool>,
    ) -> Result<Vec<Channel>> {
        let words = query_words(term);
        let mut ids = Vec::new();
        self.scan_prefix(
            Cf::TeamidChannelnameChannelid,
            team.as_bytes(),
            false,
            |_, value| {
                ids.extend(Id::from_slice(value));
                ids.len() < MAX_TEAM_CHANNELS
            },
        )?;
        let mut channels = Vec::new();
        for id in ids {
            if channels.len() >= limit {
                break;
            }
            let Some(channel) = self.channel(id)? else {
                continue;
            };
            if matches!(
                channel.channel_type,
                ChannelType::Direct | ChannelType::Group
            ) || (channel.delete_at != 0 && !include_archived)
                || !channel_matches(&channel, &words)
                || !visible(self, &channel)?
            {
                continue;
            }
            channels.push(channel);
        }
        Ok(channels)
    }
}
