//! Email batching (Mattermost's `EmailBatchingJob`): when a user's queued notification emails
//! are due, and which of them still deserve a mail.
//!
//! A user picks how often they get notification email with the preference
//! `notifications`/`email_interval`: `"30"` immediately, `"900"` every 15 minutes, `"3600"`
//! hourly, `"0"` never; unset or anything else means the server's default interval (900 s in
//! Mattermost, `email_batching_default_interval` here). A user's batch is due once its oldest
//! entry has waited the interval. Then every entry whose channel the user has viewed since
//! the post is dropped — they have seen it — and the rest go out as one digest. (Mattermost
//! drops the whole batch when any channel of the team was viewed; per channel keeps the mail
//! about channels the user did not look at.)

use confab_storage::email_queue::QueuedEmail;
use confab_storage::Id;
use std::time::Duration;

/// How often a user wants notification email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Immediate,
    Every(Duration),
    Never,
}

/// The preference category and name holding a user's interval.
pub const PREFERENCE_CATEGORY: &str = "notifications";
pub const PREFERENCE_NAME: &str = "email_interval";

/// A user's interval from their preference value (`None` when unset).
pub fn interval(preference: Option<&str>, default: Duration) -> Interval {
    match preference.map(str::trim) {
        Some("30") => Interval::Immediate,
        Some("0") => Interval::Never,
        Some("900") => Interval::Every(Duration::from_secs(900)),
        Some("3600") => Interval::Every(Duration::from_secs(3600)),
        _ => Interval::Every(default),
    }
}

/// What to do with one user's queued entries now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Entries for the digest, oldest first (empty: send nothing).
    pub send: Vec<QueuedEmail>,
    /// Entries to take off the queue (those sent and those dropped).
    pub remove: Vec<QueuedEmail>,
}

/// Decides for one user's entries (oldest first). `viewed_at(channel)` is when the user last
/// viewed the channel (ms), `None` when they are no longer a member: then nothing is mailed
/// about it.
pub fn decide(
    entries: &[QueuedEmail],
    interval: Interval,
    now_ms: u64,
    mut viewed_at: impl FnMut(Id) -> Option<u64>,
) -> Decision {
    let Some(first) = entries.first() else {
        return Decision::default();
    };
    let wait = match interval {
        Interval::Never => {
            return Decision {
                send: Vec::new(),
                remove: entries.to_vec(),
            }
        }
        Interval::Immediate => 0,
        Interval::Every(every) => every.as_millis() as u64,
    };
    if now_ms.saturating_sub(first.create_at) < wait {
        return Decision::default();
    }
    let send = entries
        .iter()
        .filter(|entry| viewed_at(entry.channel_id).is_some_and(|seen| seen < entry.create_at))
        .copied()
        .collect();
    Decision {
        send,
        remove: entries.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 16])
    }

    fn entry(at: u64, post: u8, channel: u8) -> QueuedEmail {
        QueuedEmail {
            user_id: id(1),
            create_at: at,
            post_id: id(post),
            channel_id: id(channel),
        }
    }

    #[test]
    fn the_preference_picks_the_interval() {
        let default = Duration::from_secs(900);
        assert_eq!(interval(Some("30"), default), Interval::Immediate);
        assert_eq!(interval(Some("0"), default), Interval::Never);
        assert_eq!(
            interval(Some("3600"), default),
            Interval::Every(Duration::from_secs(3600))
        );
        assert_eq!(interval(None, default), Interval::Every(default));
        assert_eq!(interval(Some("banana"), default), Interval::Every(default));
    }

    #[test]
    fn a_batch_waits_its_interval_then_drops_what_was_read() {
        let entries = [
            entry(1_000, 10, 7),
            entry(2_000, 11, 8),
            entry(3_000, 12, 7),
        ];
        let every = Interval::Every(Duration::from_secs(10));
        assert_eq!(
            decide(&entries, every, 10_999, |_| Some(0)),
            Decision::default()
        );
        // Channel 7 viewed at 1,500: post 10 was seen, post 12 was not.
        let due = decide(&entries, every, 11_000, |c| {
            Some(if c == id(7) { 1_500 } else { 0 })
        });
        assert_eq!(due.send, vec![entries[1], entries[2]]);
        assert_eq!(due.remove, entries.to_vec());
        // A channel the user left is not mailed about.
        let left = decide(&entries, Interval::Immediate, 0, |c| {
            (c != id(8)).then_some(0)
        });
        assert_eq!(left.send, vec![entries[0], entries[2]]);
        let never = decide(&entries, Interval::Never, 0, |_| Some(0));
        assert!(never.send.is_empty());
        assert_eq!(never.remove.len(), 3);
    }
}
