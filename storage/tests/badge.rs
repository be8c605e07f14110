//! The push badge counters apply keeps (`Reader::badge`, one point read) against the badge
//! computed the long way over the user's channels and followed threads
//! (`Reader::mention_badge`), after every step of random command sequences on real RocksDB:
//! posts and replies with named, channel-wide and `@here` mentions in open, private, direct
//! and group channels, deletes, edits, channel views with and without Collapsed Reply Threads,
//! marking posts and threads unread, reading and following threads, "mark all threads read",
//! leaving and joining channels, archiving and restoring them, and turning channel-wide
//! mentions off.

mod common;

use common::{create_channel, create_team, create_user, id, post, TestDb};
use confab_storage::{ChannelType, Command, Id, NotifyProps};
use proptest::prelude::*;

const USERS: [u64; 4] = [1, 2, 3, 4];
const TEAM: u64 = 100;
/// Open, private, direct (1, 2), group (1, 2, 3), and two more open ones: channel-wide
/// mentions in five channels, one more than may hold them pending
/// (`confab_storage::badge::MAX_PENDING_CHANNELS`).
const CHANNELS: [u64; 6] = [200, 300, 400, 500, 600, 700];
/// The team channels a user may leave, join, archive and restore.
const TEAM_CHANNELS: [u64; 4] = [200, 300, 600, 700];

#[derive(Debug, Clone)]
enum Op {
    Post {
        user: usize,
        channel: usize,
        reply_to: Option<usize>,
        mentions: u8,
        wide: u8,
    },
    Delete {
        post: usize,
    },
    Edit {
        post: usize,
        mentions: u8,
    },
    View {
        user: usize,
        channel: usize,
        crt: bool,
    },
    SetPostUnread {
        user: usize,
        post: usize,
        crt: bool,
    },
    ReadThread {
        user: usize,
        thread: usize,
        back: u8,
    },
    SetThreadUnread {
        user: usize,
        thread: usize,
        post: usize,
    },
    Follow {
        user: usize,
        thread: usize,
        follow: bool,
    },
    ReadAll {
        user: usize,
    },
    Membership {
        user: usize,
        channel: usize,
        join: bool,
    },
    Archive {
        channel: usize,
        restore: bool,
    },
    IgnoreWide {
        user: usize,
        channel: usize,
        on: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..4usize, 0..6usize, proptest::option::weighted(0.5, 0..64usize), any::<u8>(), 0..8u8)
            .prop_map(|(user, channel, reply_to, mentions, wide)| Op::Post { user, channel, reply_to, mentions, wide }),
        1 => (0..64usize).prop_map(|post| Op::Delete { post }),
        1 => (0..64usize, any::<u8>()).prop_map(|(post, mentions)| Op::Edit { post, mentions }),
        3 => (0..4usize, 0..6usize, any::<bool>()).prop_map(|(user, channel, crt)| Op::View { user, channel, crt }),
        1 => (0..4usize, 0..64usize, any::<bool>()).prop_map(|(user, post, crt)| Op::SetPostUnread { user, post, crt }),
        2 => (0..4usize, 0..32usize, 0..4u8).prop_map(|(user, thread, back)| Op::ReadThread { user, thread, back }),
        1 => (0..4usize, 0..32usize, 0..64usize).prop_map(|(user, thread, post)| Op::SetThreadUnread { user, thread, post }),
        1 => (0..4usize, 0..32usize, any::<bool>()).prop_map(|(user, thread, follow)| Op::Follow { user, thread, follow }),
        1 => (0..4usize).prop_map(|user| Op::ReadAll { user }),
        1 => (0..4usize, 0..4usize, any::<bool>()).prop_map(|(user, channel, join)| Op::Membership { user, channel, join }),
        1 => (0..4usize, any::<bool>()).prop_map(|(channel, restore)| Op::Archive { channel, restore }),
        1 => (0..4usize, 0..6usize, any::<bool>()).prop_map(|(user, channel, on)| Op::IgnoreWide { user, channel, on }),
    ]
}

/// "hello", the users named by `mentions`' bits, and by `wide`: `@all` (1), `@channel` (2),
/// `@here` (4).
fn message(mentions: u8, wide: u8) -> String {
    let mut text = String::from("hello");
    for user in USERS {
        if mentions & (1 << user) != 0 {
            text.push_str(&format!(" @user{user}"));
        }
    }
    for (bit, word) in [(1, " @all"), (2, " @channel"), (4, " @here")] {
        if wide & bit != 0 {
            text.push_str(word);
        }
    }
    text
}

struct Harness {
    db: TestDb,
    /// (post, channel, root) of every post made.
    posts: Vec<(u64, u64, Option<u64>)>,
    next_post: u64,
    clock: u64,
}

impl Harness {
    fn new() -> Harness {
        let mut db = TestDb::new();
        for user in USERS {
            db.ok(create_user(user, &format!("user{user}"), 1));
        }
        db.ok(create_team(TEAM, "team", 1, 2));
        for user in [2, 3, 4] {
            db.ok(Command::AddTeamMember {
                team_id: id(TEAM),
                user_id: id(user),
                at: 3,
            });
        }
        for (channel, kind, members) in [
            (200, ChannelType::Open, &[2u64, 3][..]),
            (300, ChannelType::Private, &[4][..]),
            (600, ChannelType::Open, &[2, 3, 4][..]),
            (700, ChannelType::Open, &[3, 4][..]),
        ] {
            db.ok(create_channel(
                channel,
                TEAM,
                &format!("c{channel}"),
                kind,
                1,
                4,
            ));
            for user in members {
                db.ok(Command::AddChannelMember {
                    channel_id: id(channel),
                    user_id: id(*user),
                    at: 5,
                });
            }
        }
        for (channel, kind, members) in [
            (400, ChannelType::Direct, &[1u64, 2][..]),
            (500, ChannelType::Group, &[1, 2, 3][..]),
        ] {
            db.ok(Command::CreateDirectOrGroup {
                id: id(channel),
                at: 6,
                channel_type: kind,
                name: format!("g{channel}"),
                display_name: String::new(),
                members: members.iter().map(|u| id(*u)).collect(),
                creator_id: id(1),
            });
        }
        Harness {
            db,
            posts: Vec::new(),
            next_post: 10_000,
            clock: 100,
        }
    }

    fn pick_post(&self, n: usize) -> Option<(u64, u64, Option<u64>)> {
        if self.posts.is_empty() {
            None
        } else {
            Some(self.posts[n % self.posts.len()])
        }
    }

    fn pick_thread(&self, n: usize) -> Option<u64> {
        let roots: Vec<u64> = self
            .posts
            .iter()
            .filter(|(_, _, root)| root.is_none())
            .map(|(post, _, _)| *post)
            .collect();
        if roots.is_empty() {
            None
        } else {
            Some(roots[n % roots.len()])
        }
    }

    /// Applies the op's command; refusals (a non-member posting, a deleted root) are part of
    /// the sequence and must change no counter.
    fn run(&mut self, op: &Op) {
        self.clock += 7;
        let at = self.clock;
        let command = match op {
            Op::Post {
                user,
                channel,
                reply_to,
                mentions,
                wide,
            } => {
                let channel = CHANNELS[*channel];
                let root = reply_to.and_then(|n| {
                    let roots: Vec<u64> = self
                        .posts
                        .iter()
                        .filter(|(_, c, root)| *c == channel && root.is_none())
                        .map(|(post, _, _)| *post)
                        .collect();
                    (!roots.is_empty()).then(|| roots[n % roots.len()])
                });
                let n = self.next_post;
                self.next_post += 1;
                let mut command = post(
                    n,
                    channel,
                    USERS[*user],
                    root,
                    &message(*mentions, *wide),
                    at,
                );
                if let Command::CreatePost { here_online, .. } = &mut command {
                    // `@here` reaches the members its node saw online: users 2 and 3 here.
                    *here_online = vec![id(2), id(3)];
                }
                let applied = self.db.apply(command);
                if applied.result.is_ok() {
                    self.posts.push((n, channel, root));
                }
                return;
            }
            Op::Delete { post } => {
                let Some((post, _, _)) = self.pick_post(*post) else {
                    return;
                };
                Command::DeletePost {
                    post_id: id(post),
                    at,
                }
            }
            Op::Edit { post, mentions } => {
                let Some((post, _, _)) = self.pick_post(*post) else {
                    return;
                };
                Command::PatchPost {
                    file_ids: None,
                    post_id: id(post),
                    at,
                    message: Some(message(*mentions, 0)),
                    is_pinned: None,
                    props: None,
                }
            }
            Op::View { user, channel, crt } => Command::ViewChannel {
                user_id: id(USERS[*user]),
                channel_id: id(CHANNELS[*channel]),
                at,
                collapsed_threads_supported: *crt,
            },
            Op::SetPostUnread { user, post, crt } => {
                let Some((post, _, _)) = self.pick_post(*post) else {
                    return;
                };
                Command::SetPostUnread {
                    user_id: id(USERS[*user]),
                    post_id: id(post),
                    at,
                    collapsed_threads: *crt,
                }
            }
            Op::ReadThread { user, thread, back } => {
                let Some(thread) = self.pick_thread(*thread) else {
                    return;
                };
                Command::ReadThread {
                    user_id: id(USERS[*user]),
                    thread_id: id(thread),
                    timestamp: at.saturating_sub(u64::from(*back) * 20),
                    at,
                }
            }
            Op::SetThreadUnread { user, thread, post } => {
                let (Some(thread), Some((post, _, _))) =
                    (self.pick_thread(*thread), self.pick_post(*post))
                else {
                    return;
                };
                Command::SetThreadUnread {
                    user_id: id(USERS[*user]),
                    thread_id: id(thread),
                    post_id: id(post),
                    at,
                }
            }
            Op::Follow {
                user,
                thread,
                follow,
            } => {
                let Some(thread) = self.pick_thread(*thread) else {
                    return;
                };
                Command::FollowThread {
                    user_id: id(USERS[*user]),
                    thread_id: id(thread),
                    follow: *follow,
                    at,
                }
            }
            Op::ReadAll { user } => Command::ReadAllThreads {
                user_id: id(USERS[*user]),
                team_id: id(TEAM),
                at,
            },
            Op::Membership {
                user,
                channel,
                join,
            } => {
                let channel_id = id(TEAM_CHANNELS[*channel]);
                let user_id = id(USERS[*user]);
                if *join {
                    Command::AddChannelMember {
                        channel_id,
                        user_id,
                        at,
                    }
                } else {
                    Command::RemoveChannelMember {
                        channel_id,
                        user_id,
                        at,
                    }
                }
            }
            Op::Archive { channel, restore } => {
                let channel_id = id(TEAM_CHANNELS[*channel]);
                if *restore {
                    Command::RestoreChannel { channel_id, at }
                } else {
                    Command::DeleteChannel { channel_id, at }
                }
            }
            Op::IgnoreWide { user, channel, on } => {
                let mut props = NotifyProps::new();
                props.insert(
                    "ignore_channel_mentions".into(),
                    if *on { "on" } else { "off" }.into(),
                );
                Command::SetChannelNotifyProps {
                    channel_id: id(CHANNELS[*channel]),
                    user_id: id(USERS[*user]),
                    at,
                    props,
                }
            }
        };
        self.db.apply(command);
    }

    /// Every user's counters equal the long way's count, in both modes.
    fn check(&self, step: usize, op: &Op) {
        let reader = self.db.engine.reader();
        for user in USERS {
            for crt in [false, true] {
                let kept = reader.badge(id(user), crt).expect("badge");
                let walked = reader.mention_badge(id(user), crt).expect("mention badge");
                assert_eq!(
                    kept, walked,
                    "user {user} crt {crt} after step {step} ({op:?})"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn kept_badge_counters_equal_the_walked_badge_after_every_step(ops in proptest::collection::vec(op(), 1..90)) {
        let mut harness = Harness::new();
        for (step, op) in ops.iter().enumerate() {
            harness.run(op);
            harness.check(step, op);
        }
    }
}

/// The counters read the same as the walk in a plain scenario, and a deleted user id (no
/// counter) reads 0.
#[test]
fn a_mention_a_direct_message_and_a_thread_mention_count_and_views_clear_them() {
    let mut harness = Harness::new();
    let db = &mut harness.db;
    // user 1 mentions user 2 in the open channel, sends a DM, and replies in a thread naming 2.
    db.ok(post(1, 200, 1, None, "hi @user2", 10));
    db.ok(post(2, 400, 1, None, "psst", 11));
    db.ok(post(3, 200, 2, None, "root by 2", 12));
    db.ok(post(4, 200, 1, Some(3), "reply @user2", 13));
    let badge = |db: &TestDb, crt: bool| db.engine.reader().badge(id(2), crt).expect("badge");
    // Without CRT: the mention, the DM, the reply's mention. With CRT: the root mention, the
    // DM root, and the followed thread's unread mention.
    assert_eq!(badge(db, false), 3);
    assert_eq!(badge(db, true), 3);
    // A view without CRT reads the channel and its threads.
    db.ok(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(200),
        at: 20,
        collapsed_threads_supported: false,
    });
    assert_eq!(badge(db, false), 1);
    assert_eq!(badge(db, true), 1);
    db.ok(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(400),
        at: 21,
        collapsed_threads_supported: true,
    });
    assert_eq!(badge(db, false), 0);
    assert_eq!(badge(db, true), 0);
    assert_eq!(
        db.engine
            .reader()
            .badge(Id::from_bytes([9; 16]), true)
            .expect("badge"),
        0
    );
}

/// A channel's thread watermark goes with its member record: a thread mention read by a view
/// without CRT counts again once the user leaves and joins the channel again, as the walk
/// finds it (the rejoined member has no watermark).
#[test]
fn a_thread_mention_read_by_a_channel_view_counts_again_after_leaving_and_joining() {
    let mut harness = Harness::new();
    let db = &mut harness.db;
    db.ok(post(1, 200, 2, None, "root by 2", 10));
    db.ok(post(2, 200, 1, Some(1), "reply @user2", 11));
    let both = |db: &TestDb| {
        let reader = db.engine.reader();
        (
            reader.badge(id(2), true).expect("badge"),
            reader.mention_badge(id(2), true).expect("walk"),
        )
    };
    assert_eq!(both(db), (1, 1));
    db.ok(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(200),
        at: 20,
        collapsed_threads_supported: false,
    });
    assert_eq!(both(db), (0, 0));
    db.ok(Command::RemoveChannelMember {
        channel_id: id(200),
        user_id: id(2),
        at: 21,
    });
    assert_eq!(both(db), (0, 0));
    db.ok(Command::AddChannelMember {
        channel_id: id(200),
        user_id: id(2),
        at: 22,
    });
    assert_eq!(both(db), (1, 1));
}

/// A channel's channel-wide mentions wait pending (not written into each member's counter)
/// until `FOLD_AFTER` of them, then are folded in with one pass over its members; with more
/// channels than may hold them pending, a mention goes into the counters at once. Each
/// member's badge equals the walk after every post, whatever the member did in between.
#[test]
fn channel_wide_mentions_are_folded_into_the_counters_in_batches() {
    let mut harness = Harness::new();
    let db = &mut harness.db;
    let mut n = 100;
    let mut at = 10;
    let check = |db: &TestDb, step: &str| {
        let reader = db.engine.reader();
        for user in USERS {
            for crt in [false, true] {
                assert_eq!(
                    reader.badge(id(user), crt).expect("badge"),
                    reader.mention_badge(id(user), crt).expect("walk"),
                    "user {user} crt {crt} after {step}"
                );
            }
        }
    };
    let posts = confab_storage::badge::FOLD_AFTER * 2 + 3;
    for i in 0..posts {
        db.ok(post(n, 200, 1, None, "@all standup", at));
        n += 1;
        at += 1;
        check(db, &format!("@all {i} in 200"));
        if i % 5 == 2 {
            // A member who reads while mentions are pending, and one who stops counting them.
            db.ok(Command::ViewChannel {
                user_id: id(3),
                channel_id: id(200),
                at,
                collapsed_threads_supported: i % 2 == 0,
            });
            at += 1;
            check(db, &format!("view after {i}"));
        }
        if i == 4 {
            let mut props = NotifyProps::new();
            props.insert("ignore_channel_mentions".into(), "on".into());
            db.ok(Command::SetChannelNotifyProps {
                channel_id: id(200),
                user_id: id(2),
                at,
                props,
            });
            at += 1;
            check(db, "user 2 ignores");
        }
    }
    let reader = db.engine.reader();
    assert_eq!(
        reader.badge(id(2), false).expect("badge"),
        5,
        "before ignoring"
    );
    drop(reader);
    // Channel-wide mentions in more channels than may hold them pending at once.
    for channel in [300, 500, 600, 700, 200] {
        db.ok(post(n, channel, 1, None, "@channel", at));
        n += 1;
        at += 1;
        check(db, &format!("@channel in {channel}"));
    }
}
