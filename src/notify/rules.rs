//! Who gets a push for a post: Mattermost's `SendNotifications` rules as a pure function of the
//! post's facts and one candidate's settings and status, so that every rule is testable without
//! a cluster. Props are read with their defaults filled in (`confab_storage::notify`).

use super::status::{StatusKind, UserStatus};
use confab_storage::notify::ChannelWide;
use confab_storage::{ChannelType, Id, NotifyProps};

/// Mattermost's `StatusChannelTimeout`: an online user looking at the channel is skipped only
/// if they were active in it within this long.
pub const STATUS_CHANNEL_TIMEOUT_MS: u64 = 20_000;

/// The post's side of the decision.
#[derive(Debug, Clone, Copy)]
pub struct PostFacts {
    pub channel_id: Id,
    pub channel_type: ChannelType,
    pub sender: Id,
    pub is_reply: bool,
    pub is_system: bool,
    pub channel_wide: ChannelWide,
    pub member_count: usize,
    /// `MaxNotificationsPerChannel`.
    pub cap: usize,
}

/// One candidate recipient.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub user: Id,
    pub user_props: &'a NotifyProps,
    pub channel_props: &'a NotifyProps,
    pub status: UserStatus,
    /// Collapsed Reply Threads on for this user.
    pub crt: bool,
    /// Named with `@username`.
    pub explicit: bool,
    /// Follows the thread the post replies to.
    pub follower: bool,
}

/// Why a push goes out; the generic message wording depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Send {
    pub explicit: bool,
    pub channel_wide: bool,
    /// A reply pushed to a CRT follower.
    pub crt_reply: bool,
}

/// The decision, with the reason a push was not sent (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send(Send),
    Skip(&'static str),
}

pub(crate) fn prop<'a>(props: &'a NotifyProps, key: &str) -> &'a str {
    props.get(key).map(String::as_str).unwrap_or("")
}

/// Whether `@channel`/`@all`/`@here` in the post counts as a mention of this candidate: not
/// past `MaxNotificationsPerChannel`, not for users who turned channel mentions off (in their
/// props or the channel's), and `@here` only for the online.
pub fn channel_wide_counts(post: &PostFacts, c: &Candidate) -> bool {
    match post.channel_wide {
        ChannelWide::None => false,
        _ if post.member_count >= post.cap => false,
        _ if confab_storage::wide_ignore::ignores(c.user_props, c.channel_props) => false,
        ChannelWide::All => true,
        ChannelWide::Here => c.status.status == StatusKind::Online,
    }
}

/// Decides for one candidate at time `now` (ms).
pub fn decide(post: &PostFacts, c: &Candidate, now: u64) -> Decision {
    if c.user == post.sender {
        return Decision::Skip("sender");
    }
    if post.is_system {
        return Decision::Skip("system message");
    }
    let dm = post.channel_type == ChannelType::Direct;
    let gm = post.channel_type == ChannelType::Group;
    let channel_wide = channel_wide_counts(post, c);
    // Mentions strong enough for the `mention` level; a group message's "mention" is not one.
    let was_mentioned = c.explicit || dm || channel_wide;
    let muted = prop(c.channel_props, "mark_unread") == "mention";

    // Collapsed Reply Threads followers are judged by the thread rules alone.
    if post.is_reply && c.crt && c.follower {
        if muted {
            return Decision::Skip("muted");
        }
        let user_push = prop(c.user_props, "push");
        let allowed = match prop(c.channel_props, "push") {
            "" | "default" => {
                user_push != "none"
                    && (was_mentioned
                        || prop(c.user_props, "push_threads") == "all"
                        || user_push == "all")
            }
            "all" => true,
            "mention" => was_mentioned,
            _ => false,
        };
        if !allowed {
            return Decision::Skip("thread notify props");
        }
        if !status_allows(c.user_props, &c.status, post.channel_id, now) {
            return Decision::Skip("status");
        }
        return Decision::Send(Send {
            explicit: c.explicit,
            channel_wide,
            crt_reply: true,
        });
    }

    let mentioned = was_mentioned || gm;
    let level_all = prop(c.user_props, "push") == "all" || prop(c.channel_props, "push") == "all";
    let all_activity = !dm && level_all && !(post.is_reply && c.crt);
    if !mentioned && !all_activity {
        return Decision::Skip("not mentioned");
    }
    if !props_allow(c, gm, was_mentioned) {
        return Decision::Skip("notify props");
    }
    if !status_allows(c.user_props, &c.status, post.channel_id, now) {
        return Decision::Skip("status");
    }
    Decision::Send(Send {
        explicit: c.explicit,
        channel_wide,
        crt_reply: false,
    })
}

/// `DoesNotifyPropsAllowPushNotification`; in a group message a user's `mention` counts as `all`.
fn props_allow(c: &Candidate, gm: bool, was_mentioned: bool) -> bool {
    let mut user_notify = prop(c.user_props, "push");
    if gm && user_notify == "mention" {
        user_notify = "all";
    }
    let channel_notify = match prop(c.channel_props, "push") {
        "" => "default",
        other => other,
    };
    if prop(c.channel_props, "mark_unread") == "mention" {
        return false;
    }
    if channel_notify == "none" {
        return false;
    }
    if channel_notify == "mention" && !was_mentioned {
        return false;
    }
    if user_notify == "mention" && channel_notify == "default" && !was_mentioned {
        return false;
    }
    if user_notify == "all" || channel_notify == "all" {
        return true;
    }
    !(user_notify == "none" && channel_notify == "default")
}

/// `DoesStatusAllowPushNotification`.
pub fn status_allows(user_props: &NotifyProps, status: &UserStatus, channel: Id, now: u64) -> bool {
    if matches!(status.status, StatusKind::Dnd | StatusKind::Ooo) {
        return false;
    }
    let push_status = user_props.get("push_status").map(String::as_str);
    if matches!(push_status, None | Some("online"))
        && (status.active_channel != Some(channel)
            || now.saturating_sub(status.last_activity_at) > STATUS_CHANNEL_TIMEOUT_MS)
    {
        return true;
    }
    if push_status == Some("away")
        && matches!(status.status, StatusKind::Away | StatusKind::Offline)
    {
        return true;
    }
    push_status == Some("offline") && status.status == StatusKind::Offline
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_storage::notify::{with_defaults, CHANNEL_DEFAULTS, USER_DEFAULTS};

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 16])
    }

    fn offline() -> UserStatus {
        UserStatus {
            user_id: id(1),
            status: StatusKind::Offline,
            manual: false,
            last_activity_at: 0,
            dnd_end_time: 0,
            active_channel: None,
        }
    }

    fn facts(channel_type: ChannelType, wide: ChannelWide) -> PostFacts {
        PostFacts {
            channel_id: id(9),
            channel_type,
            sender: id(1),
            is_reply: false,
            is_system: false,
            channel_wide: wide,
            member_count: 3,
            cap: 1000,
        }
    }

    fn props(defaults: &[(&str, &str)], set: &[(&str, &str)]) -> NotifyProps {
        let given: NotifyProps = set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        with_defaults(&given, defaults)
    }

    fn run(
        post: &PostFacts,
        user: &[(&str, &str)],
        channel: &[(&str, &str)],
        explicit: bool,
        status: UserStatus,
    ) -> Decision {
        let user_props = props(&USER_DEFAULTS, user);
        let channel_props = props(&CHANNEL_DEFAULTS, channel);
        decide(
            post,
            &Candidate {
                user: id(2),
                user_props: &user_props,
                channel_props: &channel_props,
                status,
                crt: false,
                explicit,
                follower: false,
            },
            1_000_000,
        )
    }

    #[test]
    fn mention_level_needs_a_mention() {
        let post = facts(ChannelType::Open, ChannelWide::None);
        assert!(matches!(
            run(&post, &[], &[], true, offline()),
            Decision::Send(_)
        ));
        assert_eq!(
            run(&post, &[], &[], false, offline()),
            Decision::Skip("not mentioned")
        );
        assert!(matches!(
            run(&post, &[("push", "all")], &[], false, offline()),
            Decision::Send(_)
        ));
        assert!(matches!(
            run(&post, &[], &[("push", "all")], false, offline()),
            Decision::Send(_)
        ));
        assert_eq!(
            run(&post, &[("push", "none")], &[], true, offline()),
            Decision::Skip("notify props")
        );
        assert_eq!(
            run(&post, &[], &[("mark_unread", "mention")], true, offline()),
            Decision::Skip("notify props")
        );
    }

    #[test]
    fn direct_and_group_messages() {
        let dm = facts(ChannelType::Direct, ChannelWide::None);
        assert!(matches!(
            run(&dm, &[], &[], false, offline()),
            Decision::Send(_)
        ));
        let gm = facts(ChannelType::Group, ChannelWide::None);
        assert!(matches!(
            run(&gm, &[], &[], false, offline()),
            Decision::Send(_)
        ));
        assert_eq!(
            run(&gm, &[("push", "none")], &[], false, offline()),
            Decision::Skip("notify props")
        );
    }

    #[test]
    fn channel_wide_cap_and_opt_outs() {
        let mut post = facts(ChannelType::Open, ChannelWide::All);
        assert!(
            matches!(run(&post, &[], &[], false, offline()), Decision::Send(s) if s.channel_wide)
        );
        assert_eq!(
            run(&post, &[("channel", "false")], &[], false, offline()),
            Decision::Skip("not mentioned")
        );
        assert_eq!(
            run(
                &post,
                &[],
                &[("ignore_channel_mentions", "on")],
                false,
                offline()
            ),
            Decision::Skip("not mentioned")
        );
        post.member_count = 1000;
        assert_eq!(
            run(&post, &[], &[], false, offline()),
            Decision::Skip("not mentioned")
        );
        let here = facts(ChannelType::Open, ChannelWide::Here);
        assert_eq!(
            run(&here, &[], &[], false, offline()),
            Decision::Skip("not mentioned")
        );
    }

    #[test]
    fn status_rules() {
        let post = facts(ChannelType::Open, ChannelWide::None);
        let online = UserStatus {
            user_id: id(1),
            status: StatusKind::Online,
            manual: false,
            last_activity_at: 1_000_000,
            dnd_end_time: 0,
            active_channel: Some(id(9)),
        };
        // Default push_status "away": an online user gets nothing.
        assert_eq!(run(&post, &[], &[], true, online), Decision::Skip("status"));
        // push_status online: only when not looking at this channel right now.
        assert_eq!(
            run(&post, &[("push_status", "online")], &[], true, online),
            Decision::Skip("status")
        );
        let elsewhere = UserStatus {
            active_channel: None,
            ..online
        };
        assert!(matches!(
            run(&post, &[("push_status", "online")], &[], true, elsewhere),
            Decision::Send(_)
        ));
        let dnd = UserStatus {
            status: StatusKind::Dnd,
            ..offline()
        };
        assert_eq!(
            run(&post, &[("push_status", "online")], &[], true, dnd),
            Decision::Skip("status")
        );
        let away = UserStatus {
            status: StatusKind::Away,
            ..offline()
        };
        assert!(matches!(
            run(&post, &[], &[], true, away),
            Decision::Send(_)
        ));
        assert_eq!(
            run(&post, &[("push_status", "offline")], &[], true, away),
            Decision::Skip("status")
        );
    }

    #[test]
    fn sender_and_crt_followers() {
        let mut post = facts(ChannelType::Open, ChannelWide::None);
        let user_props = props(&USER_DEFAULTS, &[]);
        let channel_props = props(&CHANNEL_DEFAULTS, &[]);
        let mut candidate = Candidate {
            user: id(1),
            user_props: &user_props,
            channel_props: &channel_props,
            status: offline(),
            crt: true,
            explicit: false,
            follower: true,
        };
        assert_eq!(decide(&post, &candidate, 0), Decision::Skip("sender"));
        candidate.user = id(2);
        post.is_reply = true;
        assert!(matches!(decide(&post, &candidate, 0), Decision::Send(s) if s.crt_reply));
        let quiet = props(&USER_DEFAULTS, &[("push_threads", "mention")]);
        candidate.user_props = &quiet;
        assert_eq!(
            decide(&post, &candidate, 0),
            Decision::Skip("thread notify props")
        );
    }
}
