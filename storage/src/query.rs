//! Queries. Each runs on one snapshot ([`Reader`]) and scans no more keys than it returns plus a
//! constant — except where a query's meaning is a count over a set (unread-thread totals scan the
//! user's followed-thread index, never a post).

use crate::cf::Cf;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{id2, id_key, prefix_end, KeyBuf, KeyReader};
use crate::model::*;
use crate::read::Reader;
use crate::threads::{self, ThreadReadView, Watermarks};
use std::collections::BTreeMap;

/// Mattermost's thread paging parameters (`perPage`, `fromCreateAt` + `fromPost`, `direction`).
#[derive(Debug, Clone, Default)]
pub struct ThreadPaging {
    /// None: the whole thread.
    pub per_page: Option<usize>,
    /// Posts strictly beyond (create_at, post id); without an id, beyond create_at alone.
    pub from: Option<(u64, Option<Id>)>,
    /// `direction=up`: newest first; otherwise oldest first.
    pub up: bool,
}

/// Posts in display order (newest first) with the posts they need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostPage {
    /// Ids newest first.
    pub order: Vec<Id>,
    /// The posts of `order`, plus the root posts of replies in it (for context).
    pub posts: Vec<Post>,
    /// More posts exist beyond this page in the direction of paging.
    pub has_next: bool,
}

/// A member's unread state in a channel (Mattermost's ChannelUnread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelUnread {
    pub team_id: Id,
    pub channel_id: Id,
    pub msg_count: u64,
    pub msg_count_root: u64,
    pub mention_count: u64,
    pub mention_count_root: u64,
    pub urgent_mention_count: u64,
}

/// Filters of a user's thread list (GET …/threads).
#[derive(Debug, Clone, Default)]
pub struct ThreadQuery {
    /// Only threads with a reply or membership change after this time.
    pub since: Option<u64>,
    pub unread_only: bool,
    pub include_deleted: bool,
    /// Threads older than this thread (the next page).
    pub before: Option<Id>,
    /// Threads newer than this thread.
    pub after: Option<Id>,
    pub per_page: usize,
}

/// One thread as a user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadItem {
    pub thread: Thread,
    pub root: Post,
    pub following: bool,
    pub read: ThreadReadView,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadList {
    pub total: u64,
    pub total_unread_threads: u64,
    pub total_unread_mentions: u64,
    /// Unread mentions in threads whose root is urgent.
    pub total_unread_urgent_mentions: u64,
    pub threads: Vec<ThreadItem>,
}

/// Channel paging anchors.
#[derive(Debug, Clone, Copy)]
pub enum PostsQuery {
    /// Offset paging, newest first.
    Page { page: usize, per_page: usize },
    /// Posts created or changed after a time (deleted ones included, so clients drop them).
    Since { since: u64, limit: usize },
    /// Posts older than a post.
    Before { post_id: Id, per_page: usize },
    /// Posts newer than a post.
    After { post_id: Id, per_page: usize },
}

fn id_at(key: &[u8], offset: usize) -> Option<Id> {
    key.get(offset..).and_then(Id::from_slice)
}

impl Reader<'_> {
    pub fn user(&self, id: Id) -> Result<Option<User>> {
        self.get(Cf::UseridUser, &id_key(id))
    }

    fn lookup_id(&self, cf: Cf, key: &[u8]) -> Result<Option<Id>> {
        Ok(self.get_raw(cf, key)?.and_then(|raw| Id::from_slice(&raw)))
    }

    pub fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        match self.lookup_id(Cf::UsernameUserid, username.to_lowercase().as_bytes())? {
            Some(id) => self.user(id),
            None => Ok(None),
        }
    }

    pub fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        match self.lookup_id(Cf::EmailUserid, email.to_lowercase().as_bytes())? {
            Some(id) => self.user(id),
            None => Ok(None),
        }
    }

    /// All users, a page at a time, in id order.
    pub fn users(&self, page: usize, per_page: usize) -> Result<Vec<User>> {
        self.page_of_records(Cf::UseridUser, &[], page, per_page)
    }

    /// All teams, a page at a time.
    pub fn teams(&self, page: usize, per_page: usize) -> Result<Vec<Team>> {
        self.page_of_records(Cf::TeamidTeam, &[], page, per_page)
    }

    /// Records under `prefix`, decoded, a page at a time (offset paging skips keys, reading
    /// no values).
    fn page_of_records<T: serde::de::DeserializeOwned>(
        &self,
        cf: Cf,
        prefix: &[u8],
        page: usize,
        per_page: usize,
    ) -> Result<Vec<T>> {
        let mut records = Vec::new();
        let mut skip = page.saturating_mul(per_page);
        let mut failure = None;
        self.scan_prefix(cf, prefix, false, |_, value| {
            if skip > 0 {
                skip -= 1;
                return true;
            }
            match rmp_serde::from_slice::<T>(value) {
                Ok(record) => records.push(record),
                Err(e) => {
                    failure = Some(e);
                    return false;
                }
            }
            records.len() < per_page
        })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(records),
        }
    }

    /// The team's live channels of one type (open or private), by name order, a page of them.
    pub fn team_channels(
        &self,
        team: Id,
        kind: ChannelType,
        page: usize,
        per_page: usize,
    ) -> Result<Vec<Channel>> {
        let mut ids = Vec::new();
        let mut skip = page.saturating_mul(per_page);
        self.scan_prefix(
            Cf::TeamidChannelnameChannelid,
            team.as_bytes(),
            false,
            |_, value| {
                if let Some(id) = Id::from_slice(value) {
                    ids.push(id);
                }
                true
            },
        )?;
        let mut channels = Vec::new();
        for id in ids {
            if let Some(channel) = self.channel(id)? {
                if channel.channel_type == kind && channel.delete_at == 0 {
                    if skip > 0 {
                        skip -= 1;
                        continue;
                    }
                    channels.push(channel);
                    if channels.len() == per_page {
                        break;
                    }
                }
            }
        }
        Ok(channels)
    }

    /// A user's sessions, through the user → token index (bounded by that user's logins).
    pub fn sessions_of(&self, user: Id) -> Result<Vec<Session>> {
        let mut tokens = Vec::new();
        self.scan_prefix(Cf::UseridToken, user.as_bytes(), false, |key, _| {
            tokens.extend(id_at(key, 16));
            true
        })?;
        let mut sessions = Vec::new();
        for token in tokens {
            if let Some(session) = self.session(token)? {
                sessions.push(session);
            }
        }
        Ok(sessions)
    }

    pub fn session(&self, token: Id) -> Result<Option<Session>> {
        self.get(Cf::TokenSession, &id_key(token))
    }

    pub fn team(&self, id: Id) -> Result<Option<Team>> {
        self.get(Cf::TeamidTeam, &id_key(id))
    }

    pub fn team_by_name(&self, name: &str) -> Result<Option<Team>> {
        match self.lookup_id(Cf::TeamnameTeamid, name.to_lowercase().as_bytes())? {
            Some(id) => self.team(id),
            None => Ok(None),
        }
    }

    pub fn team_member(&self, team: Id, user: Id) -> Result<Option<TeamMember>> {
        self.get(Cf::TeamidUseridMember, &id2(team, user))
    }

    /// The teams a user belongs to.
    pub fn teams_of_user(&self, user: Id) -> Result<Vec<Team>> {
        let mut ids = Vec::new();
        self.scan_prefix(Cf::UseridTeamid, user.as_bytes(), false, |key, _| {
            ids.extend(id_at(key, 16));
            true
        })?;
        let mut teams = Vec::with_capacity(ids.len());
        for id in ids {
            teams.extend(self.team(id)?);
        }
        Ok(teams)
    }

    /// Members of a team, a page at a time.
    pub fn team_members(&self, team: Id, page: usize, per_page: usize) -> Result<Vec<TeamMember>> {
        self.page_of_records(Cf::TeamidUseridMember, team.as_bytes(), page, per_page)
    }

    /// Team members who are not members of `channel`, a page at a time in user id order (a
    /// member picker's list). Reads the team's member keys up to the page's end plus one
    /// membership lookup each.
    pub fn team_members_not_in_channel(
        &self,
        team: Id,
        channel: Id,
        page: usize,
        per_page: usize,
    ) -> Result<Vec<Id>> {
        let mut candidates = Vec::new();
        self.scan_prefix(Cf::TeamidUseridMember, team.as_bytes(), false, |key, _| {
            candidates.extend(id_at(key, 16));
            true
        })?;
        let mut skip = page.saturating_mul(per_page);
        let mut ids = Vec::new();
        for user in candidates {
            if ids.len() >= per_page {
                break;
            }
            if self.is_channel_member(channel, user)? {
                continue;
            }
            if skip > 0 {
                skip -= 1;
            } else {
                ids.push(user);
            }
        }
        Ok(ids)
    }

    pub fn channel(&self, id: Id) -> Result<Option<Channel>> {
        self.get(Cf::ChannelidChannel, &id_key(id))
    }

    /// A channel by name in a team ([`Id::NONE`] for direct and group channels).
    pub fn channel_by_name(&self, team: Id, name: &str) -> Result<Option<Channel>> {
        let key = KeyBuf::new().id(team).str(&name.to_lowercase()).build();
        match self.lookup_id(Cf::TeamidChannelnameChannelid, &key)? {
            Some(id) => self.channel(id),
            None => Ok(None),
        }
    }

    /// A member's read state, with the channel's channel-wide mentions folded in (two point
    /// reads). Whether someone is a member at all is [`Reader::is_channel_member`].
    pub fn channel_member(&self, channel: Id, user: Id) -> Result<Option<ChannelMember>> {
        let Some(member) = self.channel_member_record(channel, user)? else {
            return Ok(None);
        };
        Ok(Some(match self.channel(channel)? {
            Some(channel) => member.settled(&channel),
            None => member,
        }))
    }

    /// A member's record as stored: its roles, notify props and read position are current,
    /// its mention counts may lack the channel-wide mentions since it was last written.
    pub fn channel_member_record(&self, channel: Id, user: Id) -> Result<Option<ChannelMember>> {
        self.get(Cf::ChannelidUseridMember, &id2(channel, user))
    }

    /// Members of a channel, a page at a time.
    pub fn channel_members(
        &self,
        channel: Id,
        page: usize,
        per_page: usize,
    ) -> Result<Vec<ChannelMember>> {
        let members: Vec<ChannelMember> = self.page_of_records(
            Cf::ChannelidUseridMember,
            channel.as_bytes(),
            page,
            per_page,
        )?;
        Ok(match self.channel(channel)? {
            Some(channel) => members.into_iter().map(|m| m.settled(&channel)).collect(),
            None => members,
        })
    }

    /// The ids of a channel's members, from the keys of its member range alone: no record is
    /// decoded and the channel is not read, for callers that want only who is in it (the
    /// WebSocket fan-out's audience of a channel not cached yet).
    pub fn channel_member_ids(&self, channel: Id) -> Result<Vec<Id>> {
        self.channel_member_ids_up_to(channel, usize::MAX)
    }

    /// [`Reader::channel_member_ids`], the first `limit` of them at most: enough to tell whether
    /// a channel has at least `limit` members without reading a big channel's whole range.
    pub fn channel_member_ids_up_to(&self, channel: Id, limit: usize) -> Result<Vec<Id>> {
        let mut ids = Vec::new();
        if limit == 0 {
            return Ok(ids);
        }
        self.scan_prefix(
            Cf::ChannelidUseridMember,
            channel.as_bytes(),
            false,
            |key, _| {
                ids.extend(key.get(16..).and_then(Id::from_slice));
                ids.len() < limit
            },
        )?;
        Ok(ids)
    }

    /// The ids of a user's channels in a team, with their direct and group channels.
    fn channel_ids_of_user_in_team(&self, user: Id, team: Id) -> Result<Vec<Id>> {
        let mut ids = Vec::new();
        let mut teams = vec![team];
        if !team.is_none() {
            teams.push(Id::NONE);
        }
        for team in teams {
            self.scan_prefix(
                Cf::UseridTeamidChannelid,
                &id2(user, team),
                false,
                |key, _| {
                    ids.extend(id_at(key, 32));
                    true
                },
            )?;
        }
        Ok(ids)
    }

    /// Every channel of a user, as (team id, channel id): each team's, then direct and group
    /// channels (team [`Id::NONE`]); one range of the user's membership index.
    pub fn channel_ids_of_user(&self, user: Id) -> Result<Vec<(Id, Id)>> {
        let mut ids = Vec::new();
        self.scan_prefix(
            Cf::UseridTeamidChannelid,
            user.as_bytes(),
            false,
            |key, _| {
                if let (Some(team), Some(channel)) = (id_at(key, 16), id_at(key, 32)) {
                    ids.push((team, channel));
                }
                true
            },
        )?;
        Ok(ids)
    }

    /// A user's channels in a team (and their direct and group channels).
    pub fn channels_of_user_in_team(&self, user: Id, team: Id) -> Result<Vec<Channel>> {
        let mut channels = Vec::new();
        for id in self.channel_ids_of_user_in_team(user, team)? {
            channels.extend(self.channel(id)?);
        }
        Ok(channels)
    }

    /// A user's channel members (read state) in a team (and direct and group channels).
    pub fn channel_members_of_user_in_team(
        &self,
        user: Id,
        team: Id,
    ) -> Result<Vec<ChannelMember>> {
        let mut members = Vec::new();
        for id in self.channel_ids_of_user_in_team(user, team)? {
            members.extend(self.channel_member(id, user)?);
        }
        Ok(members)
    }

    /// Unread counts of a member: two point lookups.
    pub fn channel_unread(&self, user: Id, channel: Id) -> Result<Option<ChannelUnread>> {
        let Some(channel) = self.channel(channel)? else {
            return Ok(None);
        };
        let Some(member) = self.channel_member_record(channel.id, user)? else {
            return Ok(None);
        };
        let member = member.settled(&channel);
        Ok(Some(ChannelUnread {
            team_id: channel.team_id,
            channel_id: channel.id,
            msg_count: channel.total_msg_count.saturating_sub(member.msg_count),
            msg_count_root: channel
                .total_msg_count_root
                .saturating_sub(member.msg_count_root),
            mention_count: member.mention_count,
            mention_count_root: member.mention_count_root,
            urgent_mention_count: member.urgent_mention_count,
        }))
    }

    pub fn post(&self, id: Id) -> Result<Option<Post>> {
        self.get(Cf::PostidPost, &id_key(id))
    }

    /// Turns ordered ids into a page, adding the roots of replies for context.
    pub(crate) fn page_of(&self, order: Vec<Id>, has_next: bool) -> Result<PostPage> {
        let mut posts = Vec::with_capacity(order.len());
        for id in &order {
            posts.extend(self.post(*id)?);
        }
        self.page_with(order, posts, has_next)
    }

    /// [`Reader::page_of`] for a caller that already holds the posts of `order`.
    pub(crate) fn page_with(
        &self,
        order: Vec<Id>,
        held: Vec<Post>,
        has_next: bool,
    ) -> Result<PostPage> {
        let mut posts: BTreeMap<Id, Post> = held.into_iter().map(|p| (p.id, p)).collect();
        let roots: Vec<Id> = posts
            .values()
            .filter(|p| !p.is_root() && !posts.contains_key(&p.root_id))
            .map(|p| p.root_id)
            .collect();
        for root in roots {
            if let Some(post) = self.post(root)? {
                posts.insert(post.id, post);
            }
        }
        Ok(PostPage {
            order,
            posts: posts.into_values().collect(),
            has_next,
        })
    }

    /// Collects up to `limit` post ids from a time index range, and whether more exist.
    fn collect_ids(
        &self,
        cf: Cf,
        lower: &[u8],
        upper: Option<&[u8]>,
        reverse: bool,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<Id>, bool)> {
        let mut ids = Vec::new();
        let mut skip = skip;
        let mut more = false;
        self.scan(cf, lower, upper, reverse, |key, _| {
            if skip > 0 {
                skip -= 1;
                return true;
            }
            if ids.len() == limit {
                more = true;
                return false;
            }
            ids.extend(id_at(key, 24));
            true
        })?;
        Ok((ids, more))
    }

    /// A channel's posts. `collapsed` lists root posts only (Collapsed Reply Threads).
    pub fn channel_posts(
        &self,
        channel: Id,
        query: PostsQuery,
        collapsed: bool,
    ) -> Result<PostPage> {
        let cf = if collapsed {
            Cf::ChannelidRootcreateatPostid
        } else {
            Cf::ChannelidCreateatPostid
        };
        let prefix = id_key(channel);
        let end = prefix_end(&prefix);
        match query {
            PostsQuery::Page { page, per_page } => {
                let (ids, more) = self.collect_ids(
                    cf,
                    &prefix,
                    end.as_deref(),
                    true,
                    page.saturating_mul(per_page),
                    per_page,
                )?;
                self.page_of(ids, more)
            }
            PostsQuery::Since { since, limit } => {
                let lower = KeyBuf::new()
                    .id(channel)
                    .u64(since.saturating_add(1))
                    .build();
                let (mut ids, more) = self.collect_ids(
                    Cf::ChannelidUpdateatPostid,
                    &lower,
                    end.as_deref(),
                    false,
                    0,
                    limit,
                )?;
                let mut page = self.page_of(Vec::new(), more)?;
                // Newest first by creation, as Mattermost orders a since-list.
                let mut posts = Vec::new();
                for id in &ids {
                    if let Some(post) = self.post(*id)? {
                        if collapsed && !post.is_root() {
                            continue;
                        }
                        posts.push(post);
                    }
                }
                posts.sort_by(|a, b| b.create_at.cmp(&a.create_at).then(b.id.cmp(&a.id)));
                ids = posts.iter().map(|p| p.id).collect();
                page.order = ids;
                page.posts = posts;
                Ok(page)
            }
            PostsQuery::Before { post_id, per_page } => {
                let Some(anchor) = self.post(post_id)? else {
                    return Ok(PostPage::default());
                };
                let upper = KeyBuf::new()
                    .id(channel)
                    .u64(anchor.create_at)
                    .id(post_id)
                    .build();
                let (ids, more) = self.collect_ids(cf, &prefix, Some(&upper), true, 0, per_page)?;
                self.page_of(ids, more)
            }
            PostsQuery::After { post_id, per_page } => {
                let Some(anchor) = self.post(post_id)? else {
                    return Ok(PostPage::default());
                };
                let mut lower = KeyBuf::new()
                    .id(channel)
                    .u64(anchor.create_at)
                    .id(post_id)
                    .build();
                lower.push(0);
                let (mut ids, more) =
                    self.collect_ids(cf, &lower, end.as_deref(), false, 0, per_page)?;
                ids.reverse();
                self.page_of(ids, more)
            }
        }
    }

    /// One page of a thread the way Mattermost's `GET /posts/{id}/thread` pages it (the mobile
    /// app asks `perPage=60&direction=up`): the thread's posts, root included, ordered by
    /// (create_at, id) — newest first going `up` — strictly beyond the `from` cursor, at most
    /// `per_page` of them with `has_next` when more exist. `first` (the post the client asked
    /// for) leads the order whether or not it fell in the page; it still counts toward the page
    /// when it did, as in Mattermost. Reads at most `per_page + 1` index keys past the cursor.
    pub fn thread_page(&self, root: Id, first: Id, paging: &ThreadPaging) -> Result<PostPage> {
        let Some(root_post) = self.post(root)? else {
            return Ok(PostPage::default());
        };
        let cap = paging.per_page.map_or(usize::MAX, |n| n.saturating_add(1));
        let after_cursor = |at: u64, id: Id| match paging.from {
            None => true,
            Some((from_at, from_id)) => {
                let ord = (at, from_id.map(|_| id)).cmp(&(from_at, from_id));
                if paging.up {
                    ord == std::cmp::Ordering::Less
                } else {
                    ord == std::cmp::Ordering::Greater
                }
            }
        };
        let mut picked: Vec<Id> = Vec::new();
        let root_fits = after_cursor(root_post.create_at, root);
        if !paging.up && root_fits {
            picked.push(root);
        }
        // Bounds on the reply index: the cursor starts the scan, so the page costs its own size.
        let prefix = root.as_bytes().to_vec();
        let end = prefix_end(&prefix);
        let cursor_key = paging.from.map(|(at, id)| {
            let key = KeyBuf::new().id(root).u64(at);
            match id {
                Some(id) => key.id(id).build(),
                None if paging.up => key.build(),
                None => KeyBuf::new().id(root).u64(at.saturating_add(1)).build(),
            }
        });
        let (lower, upper) = match (&cursor_key, paging.up) {
            (Some(key), false) => (key.clone(), end),
            (Some(key), true) => (prefix, Some(key.clone())),
            (None, _) => (prefix, end),
        };
        if picked.len() < cap {
            self.scan(
                Cf::RootidCreateatPostid,
                &lower,
                upper.as_deref(),
                paging.up,
                |key, _| {
                    let mut reader = KeyReader::new(key);
                    let (Some(()), Some(at), Some(id)) =
                        (reader.skip(16), reader.u64(), id_at(key, 24))
                    else {
                        return true;
                    };
                    if after_cursor(at, id) {
                        picked.push(id);
                    }
                    picked.len() < cap
                },
            )?;
        }
        if paging.up && root_fits && picked.len() < cap {
            picked.push(root);
        }
        let has_next = picked.len() > paging.per_page.unwrap_or(usize::MAX);
        picked.truncate(paging.per_page.unwrap_or(usize::MAX));
        let mut order = vec![first];
        order.extend(picked.into_iter().filter(|id| *id != first));
        self.page_of(order, has_next)
    }

    /// Posts around a member's read cursor: up to `limit_before` read ones and `limit_after`
    /// unread ones, newest first.
    pub fn posts_around_unread(
        &self,
        user: Id,
        channel: Id,
        limit_before: usize,
        limit_after: usize,
        collapsed: bool,
    ) -> Result<Option<PostPage>> {
        let Some(member) = self.channel_member_record(channel, user)? else {
            return Ok(None);
        };
        let cf = if collapsed {
            Cf::ChannelidRootcreateatPostid
        } else {
            Cf::ChannelidCreateatPostid
        };
        let prefix = id_key(channel);
        let end = prefix_end(&prefix);
        let pivot = KeyBuf::new()
            .id(channel)
            .u64(member.last_viewed_at.saturating_add(1))
            .build();
        let (mut after, more_after) =
            self.collect_ids(cf, &pivot, end.as_deref(), false, 0, limit_after)?;
        let (before, _) = self.collect_ids(cf, &prefix, Some(&pivot), true, 0, limit_before)?;
        after.reverse();
        after.extend(before);
        self.page_of(after, more_after).map(Some)
    }

    pub fn reactions(&self, post: Id) -> Result<Vec<Reaction>> {
        let mut reactions = Vec::new();
        self.scan_prefix(
            Cf::PostidUseridEmojiReaction,
            post.as_bytes(),
            false,
            |_, value| {
                if let Ok(reaction) = rmp_serde::from_slice::<Reaction>(value) {
                    reactions.push(reaction);
                }
                true
            },
        )?;
        reactions.sort_by_key(|r| r.create_at);
        Ok(reactions)
    }

    pub fn thread(&self, root: Id) -> Result<Option<Thread>> {
        self.get(Cf::ThreadidThread, &id_key(root))
    }

    pub fn thread_membership(&self, user: Id, thread: Id) -> Result<Option<ThreadMembership>> {
        self.get(Cf::UseridThreadidMembership, &id2(user, thread))
    }

    /// One thread as `user` sees it; None when the thread does not exist.
    pub fn user_thread(&self, user: Id, thread: Id) -> Result<Option<ThreadItem>> {
        let Some(thread) = self.thread(thread)? else {
            return Ok(None);
        };
        let Some(root) = self.post(thread.root_id)? else {
            return Ok(None);
        };
        let membership = self.thread_membership(user, thread.root_id)?;
        let (following, read) = match &membership {
            Some(m) => (m.following, m.read.clone()),
            None => (false, ThreadRead::default()),
        };
        let mut src = self;
        let marks = Watermarks::load(&mut src, user, thread.channel_id, thread.team_id)?;
        let read = if membership.is_some() {
            threads::view(&mut src, &read, following, &marks, thread.root_id)?
        } else {
            // Never followed nor read: every reply is unread, as for a new follower.
            let (last_viewed, _) = marks.resolve(&read);
            ThreadReadView {
                last_viewed,
                unread_replies: threads::count_replies_after(
                    &mut src,
                    thread.root_id,
                    last_viewed,
                )?,
                unread_mentions: 0,
            }
        };
        Ok(Some(ThreadItem {
            thread,
            root,
            following,
            read,
        }))
    }

    /// A user's followed threads in a team (with their direct and group channels), newest
    /// reply first, with totals. Reads the user's thread index and the listed threads' records;
    /// never a post beyond the listed roots.
    pub fn user_threads(&self, user: Id, team: Id, query: &ThreadQuery) -> Result<ThreadList> {
        if query.per_page == 0 {
            return self.thread_totals(user, team);
        }
        let per_page = query.per_page.clamp(1, 200);
        let mut list = ThreadList::default();
        let mut marks_by_channel: BTreeMap<Id, Watermarks> = BTreeMap::new();
        let mut src = self;
        let teams = if team.is_none() {
            vec![team]
        } else {
            vec![team, Id::NONE]
        };

        let totals = self.thread_totals_with(user, &teams, &mut marks_by_channel)?;
        list.total = totals.total;
        list.total_unread_threads = totals.total_unread_threads;
        list.total_unread_mentions = totals.total_unread_mentions;
        list.total_unread_urgent_mentions = totals.total_unread_urgent_mentions;

        // The page: from each index prefix, entries after the cursor, merged newest first.
        let cursor = match (query.before, query.after) {
            (Some(id), _) | (None, Some(id)) => match self.thread(id)? {
                Some(thread) => Some(KeyBuf::new().rev_u64(thread.last_reply_at).id(id).build()),
                None => None,
            },
            _ => None,
        };
        let newer = query.after.is_some() && query.before.is_none();
        let mut candidates: Vec<(Vec<u8>, Id, ThreadIndexEntry, Id)> = Vec::new();
        for t in &teams {
            let prefix = id2(user, *t);
            let end = prefix_end(&prefix);
            let (lower, upper, reverse) = match (&cursor, newer) {
                (Some(pos), false) => {
                    let mut lower = [prefix.clone(), pos.clone()].concat();
                    lower.push(0);
                    (lower, end.clone(), false)
                }
                (Some(pos), true) => (
                    prefix.clone(),
                    Some([prefix.clone(), pos.clone()].concat()),
                    true,
                ),
                (None, _) => (prefix.clone(), end.clone(), false),
            };
            let mut found = 0usize;
            let mut rows = Vec::new();
            self.scan(
                Cf::UseridTeamidReplyatThreadid,
                &lower,
                upper.as_deref(),
                reverse,
                |key, value| {
                    let Ok(entry) = rmp_serde::from_slice::<ThreadIndexEntry>(value) else {
                        return true;
                    };
                    let mut reader = KeyReader::new(key);
                    let last_reply_at = reader.skip(32).and_then(|_| reader.rev_u64()).unwrap_or(0);
                    let Some(thread_id) = id_at(key, 40) else {
                        return true;
                    };
                    if entry.thread_deleted && !query.include_deleted {
                        return true;
                    }
                    if query.since.is_some_and(|since| last_reply_at <= since) {
                        // Ordered by last reply: nothing further on is newer (descending scans).
                        return reverse;
                    }
                    if query.unread_only {
                        // The totals pass loaded the watermarks of every channel in the index.
                        let marks = marks_by_channel
                            .get(&entry.channel_id)
                            .copied()
                            .unwrap_or_default();
                        if last_reply_at <= marks.resolve(&entry.read).0 {
                            return true;
                        }
                    }
                    rows.push((key[32..].to_vec(), thread_id, entry));
                    found += 1;
                    found <= per_page
                },
            )?;
            candidates.extend(rows.into_iter().map(|(k, id, e)| (k, id, e, *t)));
        }
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        if newer {
            // Closest newer threads first, then shown newest first.
            candidates.reverse();
        }
        let mut picked = Vec::new();
        for (_, thread_id, entry, t) in candidates {
            if picked.len() == per_page {
                break;
            }
            let marks = match marks_by_channel.get(&entry.channel_id) {
                Some(marks) => *marks,
                None => Watermarks::load(&mut src, user, entry.channel_id, t)?,
            };
            let Some(thread) = self.thread(thread_id)? else {
                continue;
            };
            let read = threads::view(&mut src, &entry.read, true, &marks, thread_id)?;
            if query.unread_only && thread.last_reply_at <= read.last_viewed {
                continue;
            }
            let Some(root) = self.post(thread_id)? else {
                continue;
            };
            picked.push(ThreadItem {
                thread,
                root,
                following: true,
                read,
            });
        }
        if newer {
            picked.reverse();
        }
        list.threads = picked;
        Ok(list)
    }

    /// Totals of a user's followed threads in a team (and direct/group channels): one pass over
    /// the user's thread index plus one watermark lookup per channel; never a post.
    pub fn thread_totals(&self, user: Id, team: Id) -> Result<ThreadList> {
        let teams = if team.is_none() {
            vec![team]
        } else {
            vec![team, Id::NONE]
        };
        self.thread_totals_with(user, &teams, &mut BTreeMap::new())
    }

    pub(crate) fn thread_totals_with(
        &self,
        user: Id,
        teams: &[Id],
        marks_by_channel: &mut BTreeMap<Id, Watermarks>,
    ) -> Result<ThreadList> {
        let mut list = ThreadList::default();
        let mut src = self;
        // Totals: one pass over the followed-thread index.
        for t in teams {
            let mut entries = Vec::new();
            self.scan_prefix(
                Cf::UseridTeamidReplyatThreadid,
                &id2(user, *t),
                false,
                |key, value| {
                    let mut reader = KeyReader::new(key);
                    let last_reply_at = reader.skip(32).and_then(|_| reader.rev_u64());
                    if let (Some(last_reply_at), Ok(entry)) = (
                        last_reply_at,
                        rmp_serde::from_slice::<ThreadIndexEntry>(value),
                    ) {
                        entries.push((last_reply_at, entry));
                    }
                    true
                },
            )?;
            for (last_reply_at, entry) in entries {
                if entry.thread_deleted {
                    continue;
                }
                list.total += 1;
                let marks = match marks_by_channel.get(&entry.channel_id) {
                    Some(marks) => *marks,
                    None => {
                        let marks = Watermarks::load(&mut src, user, entry.channel_id, *t)?;
                        marks_by_channel.insert(entry.channel_id, marks);
                        marks
                    }
                };
                let (last_viewed, _) = marks.resolve(&entry.read);
                if last_reply_at > last_viewed {
                    list.total_unread_threads += 1;
                }
                let unread_mentions = entry
                    .read
                    .mention_times
                    .iter()
                    .filter(|t| **t > last_viewed)
                    .count() as u64;
                list.total_unread_mentions += unread_mentions;
                if entry.urgent {
                    list.total_unread_urgent_mentions += unread_mentions;
                }
            }
        }

        Ok(list)
    }
}
