//! Who receives an event, and the channel-membership cache that makes audiences cheap.
//!
//! A channel's members are a persistent sorted set ([`imbl::OrdSet`]): a join or leave makes a
//! new version in O(log n) that shares every untouched tree node with the versions before it.
//! Events keep the version their entry produced (so a resume replays exactly what each member
//! was sent), and 8,000 joins to a 100,000-member team cost about 8,000 × a few KiB instead of
//! 8,000 copies of a 1.6 MB member list. Before, every join copied the whole list (O(team) work)
//! and every broad event held its own copy: a node ran out of memory as a big team signed up.

use confab_storage::{Applied, Engine, Id, Outcome, StorageError};
use std::collections::HashMap;

/// A channel's members, as of some log entry. Cloning is O(1).
pub type Members = imbl::OrdSet<Id>;

/// Bytes of one tree node of [`Members`], as an upper estimate: imbl's B-tree nodes hold up to
/// 16 ids (16 × 16 bytes) and 17 child pointers, plus the node's header and its `Arc` counts.
const MEMBERS_NODE_BYTES: usize = 16 * 16 + 17 * 8 + 48;

/// Nodes at least half full (imbl's invariant for non-root nodes): the fan-out that bounds
/// the tree's depth from above.
const MEMBERS_MIN_FANOUT: usize = 8;

/// Bytes that one more version of a set of `len` ids adds beyond the versions it shares with:
/// the root-to-leaf path a single insert or removal copies.
pub fn version_bytes(len: usize) -> usize {
    let mut depth = 1;
    let mut reach = MEMBERS_MIN_FANOUT;
    while reach < len {
        reach = reach.saturating_mul(MEMBERS_MIN_FANOUT);
        depth += 1;
    }
    depth * MEMBERS_NODE_BYTES
}

/// Who receives an event.
#[derive(Debug, Clone)]
pub enum Audience {
    /// The members of a channel (a shared version of its set), minus `omit`.
    Members { members: Members, omit: Option<Id> },
    /// One user.
    User(Id),
    /// Every user (a new custom emoji). Too many to list: the hub offers it to each connection
    /// it holds, as it does any audience broader than its connections.
    Everyone,
}

impl Audience {
    /// Recipients at most (an omitted member is counted).
    pub fn len(&self) -> usize {
        match self {
            Audience::Members { members, .. } => members.len(),
            Audience::User(_) => 1,
            Audience::Everyone => usize::MAX,
        }
    }

    pub fn contains(&self, user: Id) -> bool {
        match self {
            Audience::Members { members, omit } => *omit != Some(user) && members.contains(&user),
            Audience::User(u) => *u == user,
            Audience::Everyone => true,
        }
    }

    /// Calls `visit` for every recipient, in a deterministic (sorted) order.
    pub fn for_each(&self, mut visit: impl FnMut(Id)) {
        match self {
            Audience::Members { members, omit } => {
                for user in members.iter() {
                    if Some(*user) != *omit {
                        visit(*user);
                    }
                }
            }
            Audience::User(user) => visit(*user),
            // Not enumerable; `len` makes every router walk its connections instead.
            Audience::Everyone => {}
        }
    }

    /// Bytes this audience keeps alive beyond what other versions of its channel share: the
    /// tree path of one version. Counted by the hub's byte bounds.
    pub fn retained_bytes(&self) -> usize {
        match self {
            Audience::Members { members, .. } => version_bytes(members.len()),
            Audience::User(_) | Audience::Everyone => 0,
        }
    }
}

/// A membership change an outcome made.
enum MemberChange {
    Added(Id, Id),
    Removed(Id, Id),
    Created(Id, Vec<Id>),
}

fn member_changes(outcome: &Outcome) -> Vec<MemberChange> {
    match outcome {
        Outcome::ChannelMemberAdded {
            channel,
            member,
            existed: false,
        } => vec![MemberChange::Added(channel.id, member.user_id)],
        Outcome::ChannelMemberRemoved { channel, user_id } => {
            vec![MemberChange::Removed(channel.id, *user_id)]
        }
        Outcome::TeamMemberAdded { channels, .. } => channels
            .iter()
            .map(|(channel, member)| MemberChange::Added(channel.id, member.user_id))
            .collect(),
        Outcome::ChannelCreated {
            channel,
            members,
            existed: false,
        } => vec![MemberChange::Created(
            channel.id,
            members.iter().map(|m| m.user_id).collect(),
        )],
        _ => Vec::new(),
    }
}

/// Channel memberships, following the applied log exactly once a channel is cached. Bounded
/// by the ids it holds (`max_ids`, across all channels): past it, the cache starts over and
/// channels are read again from the replica when next needed.
pub struct MemberCache {
    channels: HashMap<Id, Members>,
    /// Ids held across all cached channels (the sum of their sizes).
    ids: usize,
    max_ids: usize,
}

impl MemberCache {
    pub fn new(max_ids: usize) -> MemberCache {
        MemberCache {
            channels: HashMap::new(),
            ids: 0,
            max_ids: max_ids.max(1),
        }
    }

    /// Ids held across all cached channels.
    pub fn cached_ids(&self) -> usize {
        self.ids
    }

    /// Members of `channel` as of entry `position` of `batch`. A cache miss reads the replica,
    /// which may already include later entries of the batch; those are undone.
    pub fn members(
        &mut self,
        engine: &Engine,
        channel: Id,
        batch: &[Applied],
        position: usize,
    ) -> Result<Members, StorageError> {
        if let Some(set) = self.channels.get(&channel) {
            return Ok(set.clone());
        }
        let reader = engine.reader();
        let mut set: Members = reader.channel_member_ids(channel)?.into_iter().collect();
        for later in batch.iter().skip(position + 1).rev() {
            let Ok(outcome) = &later.result else { continue };
            for change in member_changes(outcome) {
                match change {
                    MemberChange::Added(c, u) if c == channel => {
                        set.remove(&u);
                    }
                    MemberChange::Removed(c, u) if c == channel => {
                        set.insert(u);
                    }
                    _ => {}
                }
            }
        }
        if self.ids + set.len() > self.max_ids {
            self.channels.clear();
            self.ids = 0;
        }
        self.ids += set.len();
        self.channels.insert(channel, set.clone());
        Ok(set)
    }

    /// Follows the membership changes of an applied outcome. Each change makes a new version
    /// of the channel's set; versions held by earlier events are untouched.
    pub fn follow(&mut self, outcome: &Outcome) {
        for change in member_changes(outcome) {
            match change {
                MemberChange::Added(c, u) => {
                    if let Some(set) = self.channels.get_mut(&c) {
                        if set.insert(u).is_none() {
                            self.ids += 1;
                        }
                    }
                }
                MemberChange::Removed(c, u) => {
                    if let Some(set) = self.channels.get_mut(&c) {
                        if set.remove(&u).is_some() {
                            self.ids = self.ids.saturating_sub(1);
                        }
                    }
                }
                MemberChange::Created(c, users) => {
                    let set: Members = users.into_iter().collect();
                    self.ids += set.len();
                    if let Some(old) = self.channels.insert(c, set) {
                        self.ids = self.ids.saturating_sub(old.len());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_bytes_grow_with_depth_not_size() {
        assert_eq!(version_bytes(1), MEMBERS_NODE_BYTES);
        assert!(version_bytes(100_000) <= 6 * MEMBERS_NODE_BYTES);
        assert!(version_bytes(100_000) < 100_000 * 16 / 100);
    }

    #[test]
    fn audience_versions_are_independent() {
        let ids: Vec<Id> = (0..1000u128)
            .map(|n| Id::from_bytes(n.to_be_bytes()))
            .collect();
        let before: Members = ids.iter().copied().collect();
        let mut after = before.clone();
        let newcomer = Id::from_bytes(5000u128.to_be_bytes());
        after.insert(newcomer);
        let old = Audience::Members {
            members: before,
            omit: None,
        };
        let new = Audience::Members {
            members: after,
            omit: Some(ids[0]),
        };
        assert!(!old.contains(newcomer));
        assert!(new.contains(newcomer));
        assert!(!new.contains(ids[0]), "omitted");
        assert_eq!(old.len(), 1000);
        assert_eq!(new.len(), 1001);
        let mut visited = Vec::new();
        new.for_each(|u| visited.push(u));
        assert_eq!(visited.len(), 1000);
        assert!(visited.windows(2).all(|w| w[0] < w[1]), "sorted order");
    }
}
