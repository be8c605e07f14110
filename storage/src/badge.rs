//! The push badge as two counters per user kept by apply, so that the notification dispatcher
//! reads a recipient's badge with a bounded number of point reads (two, plus two per channel
//! with channel-wide mentions pending, at most [`MAX_PENDING_CHANNELS`]), however many
//! channels and threads they have.
//!
//! ## What counts
//! Mattermost's `GetUnreadCount`, plus with Collapsed Reply Threads the unread mentions of
//! followed threads. Over the channels the user is a member of and that are not archived:
//! - a direct channel's unread messages (root posts only, in the CRT count);
//! - any other channel's unread mentions, channel-wide ones folded in
//!   ([`ChannelMember::settle`]; root posts only, in the CRT count);
//! - in the CRT count, the unread mentions of each followed thread of those channels whose root
//!   is not deleted.
//!
//! [`Reader::mention_badge`] computes the same by walking the user's channels and followed
//! threads. It is the reference that tests compare the counters with, and the rebuild's source.
//!
//! ## How apply keeps it
//! Commands do not update the counters one by one. After each accepted command,
//! [`reconcile`] reads which keys the command wrote. For each (channel, member) pair and thread
//! membership they touch, it compares what it added to the badge before the command with what
//! it adds after. It merges the difference into the user's counter (`userid_badge`, summed by
//! an add merge operator, so no counter is read at apply). What it looks at:
//! - A written member record: that pair.
//! - A written channel record: both members of a direct channel (its totals moved), and every
//!   member when its archive state or type changed.
//! - A channel-wide mention changes only the channel record ([`Channel::wide_mentions`]), and
//!   every member's count with it. Writing 2,000 counters per `@channel` doubled fan-out
//!   latency in the push benchmark, so such mentions wait: a `meta` list holds, for at most
//!   [`MAX_PENDING_CHANNELS`] channels, the fold mark up to which the counters hold them, and
//!   [`Reader::badge`] adds the rest from the user's member record in each listed channel.
//!   Every [`FOLD_AFTER`] pending mentions, one pass over the channel's members folds them into
//!   the counters. A mention in a channel that finds the list full goes into the counters at
//!   once, from the member keys alone. Only channels under `MaxNotificationsPerChannel`
//!   members count such mentions at all.
//! - A written thread membership or followed-thread entry: that membership's unread mention
//!   times are computed again.
//! - Thread read watermarks clear a channel's or a team's thread mentions without touching the
//!   threads (a channel view by a client without CRT; "mark all threads read"). So that their
//!   mentions can be subtracted, `userid_teamid_channelid_threadid_mentions` holds, for each
//!   followed live thread with unread mentions, those mentions' times. A watermark reads that
//!   range (only threads with unread mentions, each cleared once) and keeps the times after it.
//! - A user who joins or leaves a channel: their followed threads of the channel's team are
//!   read (a channel's watermark goes with its member record), and those of the channel are
//!   computed again.
//!
//! Data directories from before the counters, and snapshots without them, are rebuilt once
//! from the reference ([`Engine::rebuild_badges`]).

use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{id2, id_key, KeyBuf};
use crate::model::{
    Channel, ChannelMember, ChannelType, Thread, ThreadIndexEntry, ThreadMembership,
    ThreadsReadMark, WideMentions,
};
use crate::read::Reader;
use crate::threads::Watermarks;
use crate::txn::Txn;
use rocksdb::{IteratorMode, MergeOperands, WriteBatch};
use std::collections::{BTreeMap, BTreeSet};

/// `meta` key marking a data directory whose badge counters are kept.
pub(crate) const MARKER: &[u8] = b"badge_counters_v1";

/// `meta` key: the channels holding channel-wide mentions not yet in their members' counters,
/// each with its fold mark (the channel's [`Channel::wide_mentions`] the counters hold).
const PENDING_KEY: &[u8] = b"badge_wide_pending";

/// A channel's pending channel-wide mentions are folded into its members' counters once this
/// many are pending.
pub const FOLD_AFTER: u64 = 8;

/// At most this many channels hold pending channel-wide mentions; a badge reads two keys for
/// each. A mention in one more channel is added to its members' counters at once.
pub const MAX_PENDING_CHANNELS: usize = 4;

/// Channel → fold mark.
type Pending = BTreeMap<Id, WideMentions>;

/// A user's two badge counts: without and with Collapsed Reply Threads. Signed, because the
/// merge operands are differences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BadgeCounts {
    pub plain: i64,
    pub crt: i64,
}

impl BadgeCounts {
    fn encode(self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(&self.plain.to_be_bytes());
        bytes.extend_from_slice(&self.crt.to_be_bytes());
        bytes
    }

    /// A value that is not 16 bytes counts as zero (no value written by this module is).
    fn decode(bytes: &[u8]) -> BadgeCounts {
        match (
            bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            bytes.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()),
        ) {
            (Some(plain), Some(crt)) if bytes.len() == 16 => BadgeCounts {
                plain: i64::from_be_bytes(plain),
                crt: i64::from_be_bytes(crt),
            },
            _ => BadgeCounts::default(),
        }
    }

    fn add(self, other: BadgeCounts) -> BadgeCounts {
        BadgeCounts {
            plain: self.plain.saturating_add(other.plain),
            crt: self.crt.saturating_add(other.crt),
        }
    }

    fn minus(self, other: BadgeCounts) -> BadgeCounts {
        BadgeCounts {
            plain: self.plain.saturating_sub(other.plain),
            crt: self.crt.saturating_sub(other.crt),
        }
    }

    fn is_zero(self) -> bool {
        self == BadgeCounts::default()
    }
}

/// Counters or differences summed into one operand (apply folds a batch's operands for a
/// user with it; addition is associative).
pub(crate) fn combine<'a>(operands: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    operands
        .into_iter()
        .fold(BadgeCounts::default(), |sum, bytes| {
            sum.add(BadgeCounts::decode(bytes))
        })
        .encode()
}

/// The merge operator of `userid_badge`: the stored counts plus every operand.
pub(crate) fn full_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    Some(combine(existing.into_iter().chain(operands.iter())))
}

/// Operands summed into one.
pub(crate) fn partial_merge(
    _key: &[u8],
    _existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    Some(combine(operands.iter()))
}

/// `user · team · channel · thread`: a followed thread's unread mention times.
fn mentions_key(user: Id, team: Id, channel: Id, thread: Id) -> Vec<u8> {
    KeyBuf::new()
        .id(user)
        .id(team)
        .id(channel)
        .id(thread)
        .build()
}

/// What one channel membership adds to its user's badge counter. `folded` is the channel's
/// fold mark when it holds channel-wide mentions not yet in its members' counters (the
/// counter holds those up to the mark; [`Reader::badge`] adds the rest), `None` when it holds
/// none pending.
fn channel_part(
    member: Option<&ChannelMember>,
    channel: Option<&Channel>,
    folded: Option<&WideMentions>,
) -> BadgeCounts {
    let (Some(member), Some(channel)) = (member, channel) else {
        return BadgeCounts::default();
    };
    if channel.delete_at != 0 {
        return BadgeCounts::default();
    }
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match channel.channel_type {
        ChannelType::Direct => BadgeCounts {
            plain: signed(channel.total_msg_count.saturating_sub(member.msg_count)),
            crt: signed(
                channel
                    .total_msg_count_root
                    .saturating_sub(member.msg_count_root),
            ),
        },
        _ => {
            let (plain, crt) =
                member.mentions_settled_to(folded.copied().unwrap_or(channel.wide_mentions));
            BadgeCounts {
                plain: signed(plain),
                crt: signed(crt),
            }
        }
    }
}

/// Whether a member's threads count in the badge: a member of a live channel.
fn counted(member: Option<&ChannelMember>, channel: Option<&Channel>) -> bool {
    member.is_some() && channel.is_some_and(|c| c.delete_at == 0)
}

/// A change of a channel record that changes what every member adds.
fn affects_every_member(before: Option<&Channel>, after: Option<&Channel>) -> bool {
    match (before, after) {
        (Some(b), Some(a)) => {
            a.channel_type == ChannelType::Direct
                || b.channel_type != a.channel_type
                || b.wide_mentions != a.wide_mentions
                || (b.delete_at == 0) != (a.delete_at == 0)
        }
        (None, Some(a)) => a.channel_type == ChannelType::Direct,
        (Some(_), None) => true,
        (None, None) => false,
    }
}

/// For a change of a live, non-direct channel's record that moves only what its members'
/// counts read of it through channel-wide mentions: what every member who counts them gains.
fn wide_mentions_only(before: Option<&Channel>, after: Option<&Channel>) -> Option<BadgeCounts> {
    let (b, a) = (before?, after?);
    if a.channel_type == ChannelType::Direct
        || b.channel_type != a.channel_type
        || b.delete_at != 0
        || a.delete_at != 0
        || b.wide_mentions == a.wide_mentions
    {
        return None;
    }
    let grew = |new: u64, old: u64| i64::try_from(new.saturating_sub(old)).unwrap_or(i64::MAX);
    Some(BadgeCounts {
        plain: grew(a.wide_mentions.all, b.wide_mentions.all),
        crt: grew(a.wide_mentions.root, b.wide_mentions.root),
    })
}

fn two_ids(key: &[u8]) -> Option<(Id, Id)> {
    Some((
        Id::from_slice(key.get(..16)?)?,
        Id::from_slice(key.get(16..32)?)?,
    ))
}

/// A thread's unread mention times before and after the command.
struct MentionsChange {
    user: Id,
    channel: Id,
    before: Vec<u64>,
    after: Vec<u64>,
}

/// What [`reconcile`] gathers for one command.
#[derive(Default)]
struct Work {
    /// Channel records before and after the command.
    channels: BTreeMap<Id, (Option<Channel>, Option<Channel>)>,
    /// Member records before and after the command, by (channel, user).
    members: BTreeMap<(Id, Id), (Option<ChannelMember>, Option<ChannelMember>)>,
    mentions: BTreeMap<Vec<u8>, MentionsChange>,
    /// Entries computed from their membership with the watermarks after the command, which a
    /// watermark must not filter again.
    exact: BTreeSet<Vec<u8>>,
    deltas: BTreeMap<Id, BadgeCounts>,
}

impl Work {
    fn channel(&mut self, txn: &mut Txn, id: Id) -> Result<(Option<Channel>, Option<Channel>)> {
        if let Some(both) = self.channels.get(&id) {
            return Ok(both.clone());
        }
        let both = (
            txn.get_before(Cf::ChannelidChannel, &id_key(id))?,
            txn.get(Cf::ChannelidChannel, &id_key(id))?,
        );
        self.channels.insert(id, both.clone());
        Ok(both)
    }

    fn member(
        &mut self,
        txn: &mut Txn,
        channel: Id,
        user: Id,
    ) -> Result<(Option<ChannelMember>, Option<ChannelMember>)> {
        if let Some(both) = self.members.get(&(channel, user)) {
            return Ok(both.clone());
        }
        let key = id2(channel, user);
        let after: Option<ChannelMember> = txn.get(Cf::ChannelidUseridMember, &key)?;
        let before = if txn.written_by_command(Cf::ChannelidUseridMember, &key) {
            txn.get_before(Cf::ChannelidUseridMember, &key)?
        } else {
            after.clone()
        };
        self.members
            .insert((channel, user), (before.clone(), after.clone()));
        Ok((before, after))
    }

    /// Whether (channel, user) threads counted before and after the command.
    fn counted(&mut self, txn: &mut Txn, channel: Id, user: Id) -> Result<(bool, bool)> {
        let (channel_before, channel_after) = self.channel(txn, channel)?;
        let (before, after) = self.member(txn, channel, user)?;
        Ok((
            counted(before.as_ref(), channel_before.as_ref()),
            counted(after.as_ref(), channel_after.as_ref()),
        ))
    }

    /// The entry's times as this command leaves them so far.
    fn current(&mut self, txn: &mut Txn, key: &[u8]) -> Result<Vec<u64>> {
        match self.mentions.get(key) {
            Some(change) => Ok(change.after.clone()),
            None => Ok(txn
                .get::<Vec<u64>>(Cf::UseridTeamidChannelidThreadidMentions, key)?
                .unwrap_or_default()),
        }
    }

    fn set(
        &mut self,
        txn: &mut Txn,
        key: Vec<u8>,
        user: Id,
        channel: Id,
        after: Vec<u64>,
    ) -> Result<()> {
        if let Some(change) = self.mentions.get_mut(&key) {
            change.after = after;
            return Ok(());
        }
        let before = txn
            .get::<Vec<u64>>(Cf::UseridTeamidChannelidThreadidMentions, &key)?
            .unwrap_or_default();
        self.mentions.insert(
            key,
            MentionsChange {
                user,
                channel,
                before,
                after,
            },
        );
        Ok(())
    }

    /// Computes a thread membership's unread mention times from its state after the command.
    fn recompute(&mut self, txn: &mut Txn, user: Id, thread: &Thread) -> Result<()> {
        let membership: Option<ThreadMembership> =
            txn.get(Cf::UseridThreadidMembership, &id2(user, thread.root_id))?;
        let times = match membership {
            Some(m) if m.following && thread.delete_at == 0 => {
                let marks = Watermarks::load(txn, user, thread.channel_id, thread.team_id)?;
                let (last_viewed, _) = marks.resolve(&m.read);
                m.read
                    .mention_times
                    .iter()
                    .copied()
                    .filter(|t| *t > last_viewed)
                    .collect()
            }
            _ => Vec::new(),
        };
        let key = mentions_key(user, thread.team_id, thread.channel_id, thread.root_id);
        self.exact.insert(key.clone());
        self.set(txn, key, user, thread.channel_id, times)
    }

    /// A watermark at `at` over the entries under `prefix` (a user's team or channel): the
    /// mentions at or before it are read, except in threads computed in full.
    fn clear_up_to(&mut self, txn: &mut Txn, prefix: &[u8], at: u64) -> Result<()> {
        for (key, _) in txn.scan_prefix(Cf::UseridTeamidChannelidThreadidMentions, prefix)? {
            if self.exact.contains(&key) {
                continue;
            }
            let Some((user, channel)) = entry_user_channel(&key) else {
                continue;
            };
            let current = self.current(txn, &key)?;
            let kept: Vec<u64> = current.iter().copied().filter(|t| *t > at).collect();
            if kept != current {
                self.set(txn, key, user, channel, kept)?;
            }
        }
        Ok(())
    }

    /// Makes every stored entry under `prefix` part of the changes (their counting changes).
    fn include(&mut self, txn: &mut Txn, prefix: &[u8]) -> Result<()> {
        for (key, _) in txn.scan_prefix(Cf::UseridTeamidChannelidThreadidMentions, prefix)? {
            let Some((user, channel)) = entry_user_channel(&key) else {
                continue;
            };
            let current = self.current(txn, &key)?;
            self.set(txn, key, user, channel, current)?;
        }
        Ok(())
    }

    fn add(&mut self, user: Id, delta: BadgeCounts) {
        let entry = self.deltas.entry(user).or_default();
        *entry = entry.add(delta);
    }
}

fn entry_user_channel(key: &[u8]) -> Option<(Id, Id)> {
    Some((
        Id::from_slice(key.get(..16)?)?,
        Id::from_slice(key.get(32..48)?)?,
    ))
}

/// Whether a membership change can change its unread mentions.
fn read_changed(
    before: Option<&ThreadMembership>,
    after: Option<&ThreadMembership>,
    thread_deleted_before: bool,
    thread_deleted_after: bool,
) -> bool {
    if thread_deleted_before != thread_deleted_after {
        return true;
    }
    match (before, after) {
        (Some(b), Some(a)) => {
            b.following != a.following
                || b.read.last_viewed != a.read.last_viewed
                || b.read.viewed_seq != a.read.viewed_seq
                || b.read.mention_times != a.read.mention_times
        }
        (None, None) => false,
        _ => true,
    }
}

/// A channel-wide mention in a channel that cannot hold it pending: every member who counts
/// such mentions and whose record the command did not write (`written`) gains `delta`, read
/// from the member keys alone (a record not written since holds no later mention).
fn gain_every_member(
    txn: &mut Txn,
    written: &BTreeSet<(Id, Id)>,
    channel: Id,
    delta: BadgeCounts,
) -> Result<()> {
    let ignorers = crate::wide_ignore::ignorers(txn, channel)?;
    let mut gained = Vec::new();
    txn.for_each_key_with_prefix(Cf::ChannelidUseridMember, channel.as_bytes(), |key| {
        if let Some(pair) = two_ids(key) {
            if !written.contains(&pair) && !ignorers.contains(&pair.1) {
                gained.push(pair.1);
            }
        }
    })?;
    // One operand each, straight to the batch: a channel's worth of members.
    let operand = delta.encode();
    for user in gained {
        txn.merge(Cf::UseridBadge, id_key(user), operand.clone());
    }
    Ok(())
}

/// Folds a channel's pending channel-wide mentions (those after `mark`, up to `wide`) into the
/// counters of its members whose records the command did not write (`written`): one pass over
/// the channel's member records, once per [`FOLD_AFTER`] such mentions.
fn fold(
    txn: &mut Txn,
    written: &BTreeSet<(Id, Id)>,
    channel: Id,
    mark: WideMentions,
    wide: WideMentions,
) -> Result<()> {
    for (key, value) in txn.scan_prefix(Cf::ChannelidUseridMember, channel.as_bytes())? {
        let Some(pair) = two_ids(&key) else { continue };
        if written.contains(&pair) {
            continue;
        }
        let Ok(member) = rmp_serde::from_slice::<ChannelMember>(&value) else {
            continue;
        };
        let (plain_now, crt_now) = member.mentions_settled_to(wide);
        let (plain_then, crt_then) = member.mentions_settled_to(mark);
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let delta = BadgeCounts {
            plain: signed(plain_now) - signed(plain_then),
            crt: signed(crt_now) - signed(crt_then),
        };
        if !delta.is_zero() {
            txn.merge(Cf::UseridBadge, id_key(pair.1), delta.encode());
        }
    }
    Ok(())
}

/// Brings the badge counters and the thread mention entries in step with what the command
/// being applied wrote (see the module doc). Runs inside apply, after the command and before
/// its writes are accepted.
pub(crate) fn reconcile(txn: &mut Txn) -> Result<()> {
    let mut work = Work::default();
    // Written by this function only, at its end: what `get` reads is the state before.
    let pending_before: Pending = txn.get(Cf::Meta, PENDING_KEY)?.unwrap_or_default();
    let mut pending = pending_before.clone();
    let mut pairs: BTreeSet<(Id, Id)> = txn
        .command_keys(Cf::ChannelidUseridMember)
        .iter()
        .filter_map(|key| two_ids(key))
        .collect();
    for key in txn.command_keys(Cf::ChannelidChannel) {
        let Some(channel) = Id::from_slice(&key) else {
            continue;
        };
        let (before, after) = work.channel(txn, channel)?;
        let wide = wide_mentions_only(before.as_ref(), after.as_ref())
            .zip(before.as_ref().zip(after.as_ref()));
        if let Some((delta, (b, a))) = wide {
            // The records the command wrote (the author, those it named) are compared below
            // like any other; `pairs` holds them all by now.
            match pending.get(&channel).copied() {
                Some(mark) if a.wide_mentions.all.saturating_sub(mark.all) < FOLD_AFTER => {}
                Some(mark) => {
                    pending.remove(&channel);
                    fold(txn, &pairs, channel, mark, a.wide_mentions)?;
                }
                None if pending.len() < MAX_PENDING_CHANNELS => {
                    pending.insert(channel, b.wide_mentions);
                }
                None => gain_every_member(txn, &pairs, channel, delta)?,
            }
        } else if affects_every_member(before.as_ref(), after.as_ref()) {
            for (key, value) in txn.scan_prefix(Cf::ChannelidUseridMember, channel.as_bytes())? {
                let Some(pair) = two_ids(&key) else { continue };
                pairs.insert(pair);
                // A record the command did not write is the same before and after: the scan's
                // copy serves both, not two more reads per member.
                if !txn.written_by_command(Cf::ChannelidUseridMember, &key) {
                    if let Ok(member) = rmp_serde::from_slice::<ChannelMember>(&value) {
                        work.members
                            .insert(pair, (Some(member.clone()), Some(member)));
                    }
                }
            }
        }
    }
    let mut threads: BTreeSet<(Id, Id)> = txn
        .command_keys(Cf::UseridThreadidMembership)
        .iter()
        .filter_map(|key| two_ids(key))
        .collect();
    for key in txn.command_keys(Cf::UseridTeamidReplyatThreadid) {
        let user = key.get(..16).and_then(Id::from_slice);
        let thread = key
            .len()
            .checked_sub(16)
            .and_then(|start| key.get(start..))
            .and_then(Id::from_slice);
        if let (Some(user), Some(thread)) = (user, thread) {
            threads.insert((user, thread));
        }
    }
    let team_marks: Vec<(Id, Id)> = txn
        .command_keys(Cf::UseridTeamidThreadsread)
        .iter()
        .filter_map(|key| two_ids(key))
        .collect();

    // Threads whose membership this command wrote: computed in full.
    let mut thread_records: BTreeMap<Id, (bool, Option<Thread>)> = BTreeMap::new();
    for (user, thread_id) in threads {
        let (deleted_before, thread) = match thread_records.get(&thread_id) {
            Some(both) => both.clone(),
            None => {
                let before: Option<Thread> =
                    txn.get_before(Cf::ThreadidThread, &id_key(thread_id))?;
                let both = (
                    before.is_some_and(|t| t.delete_at != 0),
                    txn.get::<Thread>(Cf::ThreadidThread, &id_key(thread_id))?,
                );
                thread_records.insert(thread_id, both.clone());
                both
            }
        };
        let Some(thread) = thread else {
            continue;
        };
        let key = id2(user, thread_id);
        let after: Option<ThreadMembership> = txn.get(Cf::UseridThreadidMembership, &key)?;
        if thread.delete_at != 0
            || after
                .as_ref()
                .is_none_or(|m| !m.following || m.read.mention_times.is_empty())
        {
            // No unread mention after the command, whatever the watermarks: most followers of
            // a reply, settled without reading their state before it.
            let entry = mentions_key(user, thread.team_id, thread.channel_id, thread_id);
            work.exact.insert(entry.clone());
            work.set(txn, entry, user, thread.channel_id, Vec::new())?;
            continue;
        }
        let before: Option<ThreadMembership> =
            txn.get_before(Cf::UseridThreadidMembership, &key)?;
        if read_changed(
            before.as_ref(),
            after.as_ref(),
            deleted_before,
            thread.delete_at != 0,
        ) {
            work.recompute(txn, user, &thread)?;
        }
    }

    // Pairs: their channel part, their channel watermark, and whether their threads count.
    for (channel_id, user) in pairs {
        let (channel_before, channel_after) = work.channel(txn, channel_id)?;
        let (before, after) = work.member(txn, channel_id, user)?;
        work.add(
            user,
            channel_part(
                after.as_ref(),
                channel_after.as_ref(),
                pending.get(&channel_id),
            )
            .minus(channel_part(
                before.as_ref(),
                channel_before.as_ref(),
                pending_before.get(&channel_id),
            )),
        );
        let Some(team) = channel_after
            .as_ref()
            .or(channel_before.as_ref())
            .map(|c| c.team_id)
        else {
            continue;
        };
        let scope = KeyBuf::new().id(user).id(team).id(channel_id).build();
        if before.is_some() != after.is_some() {
            // Joined or left: the channel's watermark came or went with the record, so its
            // followed threads are computed again.
            for (index_key, value) in
                txn.scan_prefix(Cf::UseridTeamidReplyatThreadid, &id2(user, team))?
            {
                let Ok(entry) = rmp_serde::from_slice::<ThreadIndexEntry>(&value) else {
                    continue;
                };
                if entry.channel_id != channel_id {
                    continue;
                }
                let thread_id = index_key
                    .len()
                    .checked_sub(16)
                    .and_then(|start| index_key.get(start..))
                    .and_then(Id::from_slice);
                let Some(thread_id) = thread_id else { continue };
                if let Some(thread) = txn.get::<Thread>(Cf::ThreadidThread, &id_key(thread_id))? {
                    work.recompute(txn, user, &thread)?;
                }
            }
        } else if let (Some(b), Some(a)) = (&before, &after) {
            let mark = |m: &ChannelMember| (m.threads_viewed_at, m.threads_viewed_seq);
            if mark(a) != mark(b) {
                work.clear_up_to(txn, &scope, a.threads_viewed_at)?;
            }
        }
        let (counted_before, counted_after) = work.counted(txn, channel_id, user)?;
        if counted_before != counted_after {
            work.include(txn, &scope)?;
        }
    }

    // "All threads read" in a team (and in direct and group channels).
    for (user, team) in team_marks {
        let key = id2(user, team);
        let before: Option<ThreadsReadMark> = txn.get_before(Cf::UseridTeamidThreadsread, &key)?;
        let after: Option<ThreadsReadMark> = txn.get(Cf::UseridTeamidThreadsread, &key)?;
        if let Some(mark) = after.filter(|a| Some(*a) != before) {
            work.clear_up_to(txn, &key, mark.at)?;
        }
    }

    let changes = std::mem::take(&mut work.mentions);
    for (key, change) in changes {
        if change.after == change.before
            && !work.members.contains_key(&(change.channel, change.user))
        {
            // Unchanged, and counted as before (the command wrote no member record of it).
            continue;
        }
        let (counted_before, counted_after) = work.counted(txn, change.channel, change.user)?;
        let size = |counts: bool, times: &[u64]| {
            if counts {
                i64::try_from(times.len()).unwrap_or(i64::MAX)
            } else {
                0
            }
        };
        work.add(
            change.user,
            BadgeCounts {
                plain: 0,
                crt: size(counted_after, &change.after) - size(counted_before, &change.before),
            },
        );
        if change.after == change.before {
            continue;
        }
        if change.after.is_empty() {
            txn.delete(Cf::UseridTeamidChannelidThreadidMentions, key);
        } else {
            txn.put(
                Cf::UseridTeamidChannelidThreadidMentions,
                key,
                &change.after,
            )?;
        }
    }
    for (user, delta) in work.deltas {
        if !delta.is_zero() {
            txn.merge(Cf::UseridBadge, id_key(user), delta.encode());
        }
    }
    if pending != pending_before {
        if pending.is_empty() {
            txn.delete(Cf::Meta, PENDING_KEY.to_vec());
        } else {
            txn.put(Cf::Meta, PENDING_KEY.to_vec(), &pending)?;
        }
    }
    Ok(())
}

impl Reader<'_> {
    /// The push badge of `user` (see the module doc): the counter and the pending list, and
    /// for each pending channel the user's member record and the channel.
    pub fn badge(&self, user: Id, crt: bool) -> Result<u64> {
        let mut counts = self
            .get_raw(Cf::UseridBadge, &id_key(user))?
            .map(|bytes| BadgeCounts::decode(&bytes))
            .unwrap_or_default();
        // The channel-wide mentions past a pending channel's fold mark.
        let pending: Pending = self.get(Cf::Meta, PENDING_KEY)?.unwrap_or_default();
        for (channel_id, mark) in pending {
            let member = self.channel_member_record(channel_id, user)?;
            if member.is_none() {
                continue;
            }
            let channel = self.channel(channel_id)?;
            counts = counts
                .add(channel_part(member.as_ref(), channel.as_ref(), None))
                .minus(channel_part(member.as_ref(), channel.as_ref(), Some(&mark)));
        }
        let count = if crt { counts.crt } else { counts.plain };
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

impl Engine {
    /// At open: builds the counters of a data directory from before them (a fresh one has
    /// nothing to count and is marked at once).
    pub(crate) fn init_badges(&self) -> Result<()> {
        self.once_at_open(MARKER, |batch| self.rebuild_badges(batch))
    }

    /// Whether the state holds the counters (an imported snapshot from a node without them
    /// does not).
    pub(crate) fn badges_kept(&self) -> Result<bool> {
        Ok(self.db.get_cf(self.cf(Cf::Meta)?, MARKER)?.is_some())
    }

    /// Writes into `batch` every user's counters and every followed thread's unread mention
    /// times, computed from the state by the reference walk. The caller holds the apply lock.
    pub(crate) fn rebuild_badges(&self, batch: &mut WriteBatch) -> Result<()> {
        self.delete_every_key(batch, Cf::UseridBadge)?;
        self.delete_every_key(batch, Cf::UseridTeamidChannelidThreadidMentions)?;
        // Built from the walk, the counters hold every channel-wide mention: none pending.
        batch.delete_cf(self.cf(Cf::Meta)?, PENDING_KEY);
        let counters = self.cf(Cf::UseridBadge)?;
        let mentions = self.cf(Cf::UseridTeamidChannelidThreadidMentions)?;
        let reader = self.reader();
        let mut built = 0u64;
        for item in self
            .db
            .iterator_cf(self.cf(Cf::UseridUser)?, IteratorMode::Start)
        {
            let (key, _) = item?;
            let Some(user) = Id::from_slice(&key) else {
                continue;
            };
            let counts = BadgeCounts {
                plain: i64::try_from(reader.mention_badge(user, false)?).unwrap_or(i64::MAX),
                crt: i64::try_from(reader.mention_badge(user, true)?).unwrap_or(i64::MAX),
            };
            if !counts.is_zero() {
                batch.put_cf(counters, id_key(user), counts.encode());
            }
            for unread in reader.unread_thread_mentions(user)? {
                batch.put_cf(
                    mentions,
                    mentions_key(user, unread.team, unread.channel, unread.thread),
                    rmp_serde::to_vec(&unread.times)?,
                );
            }
            built += 1;
        }
        tracing::info!(users = built, "push badge counters built");
        Ok(())
    }
}

/// A followed live thread's unread mentions.
pub(crate) struct UnreadThreadMentions {
    pub team: Id,
    pub channel: Id,
    pub thread: Id,
    pub times: Vec<u64>,
}

impl Reader<'_> {
    /// Every followed live thread of `user` with unread mentions: a walk of the user's
    /// followed-thread index.
    pub(crate) fn unread_thread_mentions(&self, user: Id) -> Result<Vec<UnreadThreadMentions>> {
        let mut followed = Vec::new();
        self.scan_prefix(
            Cf::UseridTeamidReplyatThreadid,
            user.as_bytes(),
            false,
            |key, value| {
                let team = key.get(16..32).and_then(Id::from_slice);
                let thread = key
                    .len()
                    .checked_sub(16)
                    .and_then(|start| key.get(start..))
                    .and_then(Id::from_slice);
                if let (Some(team), Some(thread), Ok(entry)) = (
                    team,
                    thread,
                    rmp_serde::from_slice::<ThreadIndexEntry>(value),
                ) {
                    followed.push((team, thread, entry));
                }
                true
            },
        )?;
        let mut unread = Vec::new();
        let mut src = self;
        for (team, thread, entry) in followed {
            if entry.thread_deleted {
                continue;
            }
            let marks = Watermarks::load(&mut src, user, entry.channel_id, team)?;
            let (last_viewed, _) = marks.resolve(&entry.read);
            let times: Vec<u64> = entry
                .read
                .mention_times
                .iter()
                .copied()
                .filter(|t| *t > last_viewed)
                .collect();
            if !times.is_empty() {
                unread.push(UnreadThreadMentions {
                    team,
                    channel: entry.channel_id,
                    thread,
                    times,
                });
            }
        }
        Ok(unread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::model::{ChannelType, TeamType};

    fn apply(engine: &Engine, index: u64, command: Command) {
        let applied = engine.apply(index, &command).expect("apply");
        assert!(applied.result.is_ok(), "{command:?}: {:?}", applied.result);
    }

    /// Users 1–3's badges, without and with CRT.
    fn badges(engine: &Engine) -> Vec<(u64, u64)> {
        let reader = engine.reader();
        (1..=3)
            .map(|n| {
                (
                    reader.badge(id(n), false).expect("badge"),
                    reader.badge(id(n), true).expect("badge"),
                )
            })
            .collect()
    }

    fn mention_entries(engine: &Engine) -> Vec<(Vec<u8>, Vec<u8>)> {
        let handle = engine
            .cf(Cf::UseridTeamidChannelidThreadidMentions)
            .expect("cf");
        engine
            .db
            .iterator_cf(handle, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.expect("read");
                (key.to_vec(), value.to_vec())
            })
            .collect()
    }

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 16])
    }

    fn post(n: u8, channel: Id, user: Id, root: Option<Id>, message: &str, at: u64) -> Command {
        Command::CreatePost {
            id: id(n),
            at,
            channel_id: channel,
            user_id: user,
            root_id: root,
            message: message.into(),
            post_type: String::new(),
            props: "{}".into(),
            pending_post_id: String::new(),
            priority: String::new(),
            file_ids: Vec::new(),
            requested_ack: false,
            here_online: Vec::new(),
            channel_wide_ignored: false,
        }
    }

    /// Mentions, a DM, a thread mention and a channel-wide one, then views that clear some:
    /// counters built from the state (at open, for a data directory from before them, and at
    /// the import of a snapshot without them) give the badges apply kept, so upgraded replicas
    /// and replicas that applied answer alike (the built ones hold no mention pending).
    #[test]
    fn the_build_at_open_gives_the_badges_apply_keeps() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("open");
        let mut index = 0;
        let mut next = |command: Command| {
            index += 1;
            apply(&engine, index, command);
        };
        for (n, name) in [(1u8, "ann"), (2, "bob"), (3, "cid")] {
            next(Command::CreateUser {
                id: id(n),
                at: 1,
                username: name.into(),
                email: format!("{name}@example.com"),
                password_hash: "hash".into(),
                nickname: String::new(),
                first_name: String::new(),
                last_name: String::new(),
                roles: "system_user".into(),
            });
        }
        let (team, town) = (id(9), id(10));
        next(Command::CreateTeam {
            id: team,
            at: 3,
            name: "team".into(),
            display_name: "team".into(),
            team_type: TeamType::Open,
            creator_id: id(1),
            town_square_id: town,
            off_topic_id: id(11),
            invite_id: String::new(),
        });
        for user in [id(2), id(3)] {
            next(Command::AddTeamMember {
                team_id: team,
                user_id: user,
                at: 4,
            });
        }
        let dm = id(12);
        next(Command::CreateDirectOrGroup {
            id: dm,
            at: 5,
            channel_type: ChannelType::Direct,
            name: "dm".into(),
            display_name: String::new(),
            members: vec![id(1), id(2)],
            creator_id: id(1),
        });
        next(post(20, town, id(1), None, "hi @bob", 10));
        next(post(21, dm, id(1), None, "psst", 11));
        next(post(22, town, id(2), None, "root", 12));
        next(post(23, town, id(1), Some(id(22)), "reply @bob @cid", 13));
        next(post(24, town, id(3), None, "@all look", 14));
        next(Command::ViewChannel {
            user_id: id(3),
            channel_id: town,
            at: 15,
            collapsed_threads_supported: false,
        });
        next(Command::ViewChannel {
            user_id: id(2),
            channel_id: dm,
            at: 16,
            collapsed_threads_supported: true,
        });
        let kept = badges(&engine);
        // bob: his mention, the reply's, and the `@all` (CRT: the root ones and the thread's).
        assert_eq!(kept[1], (3, 3));
        // cid viewed town square without CRT: nothing left.
        assert_eq!(kept[2], (0, 0));
        // The `@all` is still pending in town square: not in the counters yet.
        assert!(engine
            .db
            .get_cf(engine.cf(Cf::Meta).expect("meta"), PENDING_KEY)
            .expect("read")
            .is_some());
        let threads = mention_entries(&engine);
        assert_eq!(
            threads.len(),
            1,
            "bob's thread mention (cid read his with the view)"
        );

        // As a data directory written before the counters: none, and no marker.
        let mut batch = WriteBatch::default();
        engine
            .delete_every_key(&mut batch, Cf::UseridBadge)
            .expect("delete");
        engine
            .delete_every_key(&mut batch, Cf::UseridTeamidChannelidThreadidMentions)
            .expect("delete");
        batch.delete_cf(engine.cf(Cf::Meta).expect("meta"), MARKER);
        engine.db.write(batch).expect("write");
        assert_ne!(badges(&engine), kept);
        // A snapshot of it, installed on a node that keeps the counters, gets them built.
        let mut stream = Vec::new();
        engine.export_snapshot(&mut stream).expect("export");
        let other_dir = tempfile::tempdir().expect("temp dir");
        let other = Engine::open(other_dir.path()).expect("open");
        other
            .import_snapshot(std::io::Cursor::new(stream))
            .expect("import");
        assert_eq!(badges(&other), kept);
        assert_eq!(mention_entries(&other), threads);
        drop(engine);

        // Built at open: the same badges, every channel-wide mention in the counters.
        let reopened = Engine::open(dir.path()).expect("reopen");
        assert_eq!(badges(&reopened), kept);
        assert_eq!(mention_entries(&reopened), threads);
        assert!(reopened
            .db
            .get_cf(reopened.cf(Cf::Meta).expect("meta"), PENDING_KEY)
            .expect("read")
            .is_none());
    }
}
