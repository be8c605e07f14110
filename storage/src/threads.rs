//! Thread read state: how a membership's stored read position combines with the O(1) watermarks
//! (a non-CRT channel view, a "mark all threads read") into what the user sees. Shared by apply
//! and queries through [`Source`].

use crate::cf::Cf;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{prefix_end, KeyBuf};
use crate::model::{ChannelMember, ThreadRead, ThreadsReadMark};
use crate::source::Source;

/// The watermarks that may override a thread membership's own read position.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Watermarks {
    pub channel: ThreadsReadMark,
    pub team: ThreadsReadMark,
}

impl Watermarks {
    pub fn load(src: &mut impl Source, user: Id, channel: Id, team: Id) -> Result<Watermarks> {
        let member: Option<ChannelMember> = src.get(
            Cf::ChannelidUseridMember,
            &KeyBuf::new().id(channel).id(user).build(),
        )?;
        let channel = member
            .map(|m| ThreadsReadMark {
                at: m.threads_viewed_at,
                seq: m.threads_viewed_seq,
            })
            .unwrap_or_default();
        let team = src
            .get(
                Cf::UseridTeamidThreadsread,
                &KeyBuf::new().id(user).id(team).build(),
            )?
            .unwrap_or_default();
        Ok(Watermarks { channel, team })
    }

    /// The last-viewed time in force, and whether a watermark moved it past the stored one
    /// (then the stored unread-reply count is stale).
    pub fn resolve(&self, read: &ThreadRead) -> (u64, bool) {
        let mut last_viewed = read.last_viewed;
        for mark in [self.channel, self.team] {
            if mark.seq > read.viewed_seq && mark.at > last_viewed {
                last_viewed = mark.at;
            }
        }
        (last_viewed, last_viewed != read.last_viewed)
    }
}

/// Replies of `thread` created after `after` (deleted replies are not indexed): a range scan
/// bounded to exactly the unread replies.
pub(crate) fn count_replies_after(src: &mut impl Source, thread: Id, after: u64) -> Result<u64> {
    let lower = KeyBuf::new()
        .id(thread)
        .u64(after.saturating_add(1))
        .build();
    let upper = prefix_end(thread.as_bytes()).unwrap_or_else(|| vec![0xff; 17]);
    src.count_range(Cf::RootidCreateatPostid, &lower, &upper)
}

/// What a user sees of a thread: unread replies and mentions after the effective last view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadReadView {
    pub last_viewed: u64,
    pub unread_replies: u64,
    pub unread_mentions: u64,
}

/// Folds the watermarks into `read` (used before a write, so stored state converges) and
/// returns whether it changed.
pub(crate) fn normalize(
    src: &mut impl Source,
    read: &mut ThreadRead,
    marks: &Watermarks,
    thread: Id,
    index: u64,
) -> Result<bool> {
    let (last_viewed, stale) = marks.resolve(read);
    if !stale {
        return Ok(false);
    }
    read.last_viewed = last_viewed;
    read.viewed_seq = index;
    read.unread_replies = count_replies_after(src, thread, last_viewed)?;
    read.mention_times.retain(|t| *t > last_viewed);
    Ok(true)
}

/// The view of `read` under `marks`, recounting replies only when a watermark overrides it or
/// the membership is not following (its counter is kept only while following).
pub(crate) fn view(
    src: &mut impl Source,
    read: &ThreadRead,
    following: bool,
    marks: &Watermarks,
    thread: Id,
) -> Result<ThreadReadView> {
    let (last_viewed, stale) = marks.resolve(read);
    let unread_replies = if stale || !following {
        count_replies_after(src, thread, last_viewed)?
    } else {
        read.unread_replies
    };
    Ok(ThreadReadView {
        last_viewed,
        unread_replies,
        unread_mentions: read
            .mention_times
            .iter()
            .filter(|t| **t > last_viewed)
            .count() as u64,
    })
}
