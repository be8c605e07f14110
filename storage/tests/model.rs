//! Model-based property test: random command sequences go to the engine (real RocksDB in a temp
//! dir) and to a plain in-memory model that computes every answer the naive way — scanning every
//! post, touching every thread on a channel view — and every query must agree after every step.

mod common;

use common::{create_channel, create_team, create_user, id, TestDb};
use confab_storage::{mentions, ChannelType, Command, Id, PostsQuery, ThreadPaging, ThreadQuery};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const USERS: [u64; 4] = [1, 2, 3, 4];
const TEAM: u64 = 100;
/// (channel, members): public, private, and a direct channel.
const CHANNELS: [(u64, &[u64]); 3] = [(200, &[1, 2, 3]), (300, &[1, 4]), (400, &[1, 2])];
const EMOJI: [&str; 2] = ["smile", "+1"];

fn username(user: u64) -> String {
    format!("user{user}")
}

#[derive(Debug, Clone)]
enum Op {
    Post {
        user: usize,
        channel: usize,
        reply_to: Option<usize>,
        mentions: u8,
        all: bool,
    },
    Delete {
        post: usize,
    },
    Edit {
        post: usize,
        mentions: u8,
    },
    React {
        user: usize,
        post: usize,
        emoji: usize,
        add: bool,
    },
    View {
        user: usize,
        channel: usize,
        crt: bool,
    },
    SetPostUnread {
        user: usize,
        post: usize,
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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize, 0..3usize, proptest::option::weighted(0.6, 0..64usize), any::<u8>(), proptest::bool::weighted(0.1))
            .prop_map(|(user, channel, reply_to, mentions, all)| Op::Post { user, channel, reply_to, mentions, all }),
        1 => (0..64usize).prop_map(|post| Op::Delete { post }),
        1 => (0..64usize, any::<u8>()).prop_map(|(post, mentions)| Op::Edit { post, mentions }),
        1 => (0..4usize, 0..64usize, 0..2usize, any::<bool>()).prop_map(|(user, post, emoji, add)| Op::React { user, post, emoji, add }),
        2 => (0..4usize, 0..3usize, any::<bool>()).prop_map(|(user, channel, crt)| Op::View { user, channel, crt }),
        1 => (0..4usize, 0..64usize).prop_map(|(user, post)| Op::SetPostUnread { user, post }),
        2 => (0..4usize, 0..32usize, 0..4u8).prop_map(|(user, thread, back)| Op::ReadThread { user, thread, back }),
        1 => (0..4usize, 0..32usize, 0..64usize).prop_map(|(user, thread, post)| Op::SetThreadUnread { user, thread, post }),
        1 => (0..4usize, 0..32usize, any::<bool>()).prop_map(|(user, thread, follow)| Op::Follow { user, thread, follow }),
        1 => (0..4usize).prop_map(|user| Op::ReadAll { user }),
    ]
}

fn message(mentions: u8, all: bool) -> String {
    let mut text = String::from("hello");
    for user in USERS {
        if mentions & (1 << user) != 0 {
            text.push_str(&format!(" @{}", username(user)));
        }
    }
    if all {
        text.push_str(" @all");
    }
    text
}

#[derive(Debug, Clone)]
struct MPost {
    channel: u64,
    user: u64,
    root: Option<u64>,
    create_at: u64,
    deleted: bool,
    message: String,
}

#[derive(Debug, Clone, Default)]
struct MMember {
    last_viewed_at: u64,
    msg_count: u64,
    msg_count_root: u64,
    mention_count: u64,
    mention_count_root: u64,
}

#[derive(Debug, Clone, Default)]
struct MChannel {
    total: u64,
    total_root: u64,
    last_post_at: u64,
}

#[derive(Debug, Clone)]
struct MThreadMember {
    following: bool,
    unfollowed: bool,
    last_viewed: u64,
    mentions: Vec<u64>,
}

impl MThreadMember {
    /// Moves the read position forward; mentions before it are read.
    fn read_up_to(&mut self, at: u64) {
        self.last_viewed = self.last_viewed.max(at);
        let lv = self.last_viewed;
        self.mentions.retain(|t| *t > lv);
    }
}

/// The naive model.
#[derive(Default)]
struct Model {
    posts: BTreeMap<u64, MPost>,
    channels: BTreeMap<u64, MChannel>,
    members: BTreeMap<(u64, u64), MMember>,
    thread_members: BTreeMap<(u64, u64), MThreadMember>,
    threads: BTreeMap<u64, Vec<u64>>,
    reactions: BTreeSet<(u64, u64, &'static str)>,
    /// Watermarks that apply to users without a thread membership.
    channel_marks: BTreeMap<(u64, u64), u64>,
    team_marks: BTreeMap<u64, u64>,
}

impl Model {
    fn is_member(&self, channel: u64, user: u64) -> bool {
        self.members.contains_key(&(channel, user))
    }

    fn channel_members(&self, channel: u64) -> Vec<u64> {
        self.members
            .keys()
            .filter(|(c, _)| *c == channel)
            .map(|(_, u)| *u)
            .collect()
    }

    /// Channel members a message mentions, without the author.
    fn mentioned(&self, channel: u64, text: &str, author: u64) -> BTreeSet<u64> {
        let found = mentions::parse(text);
        self.channel_members(channel)
            .into_iter()
            .filter(|u| {
                *u != author && (found.channel_wide || found.usernames.contains(&username(*u)))
            })
            .collect()
    }

    fn replies(&self, root: u64) -> Vec<(u64, &MPost)> {
        self.posts
            .iter()
            .filter(|(_, p)| p.root == Some(root) && !p.deleted)
            .map(|(id, p)| (*id, p))
            .collect()
    }

    fn last_reply_at(&self, root: u64) -> u64 {
        self.replies(root)
            .iter()
            .map(|(_, p)| p.create_at)
            .max()
            .unwrap_or(0)
    }

    fn post(
        &mut self,
        pid: u64,
        user: u64,
        channel: u64,
        root: Option<u64>,
        text: &str,
        at: u64,
    ) -> bool {
        if !self.is_member(channel, user) {
            return false;
        }
        if let Some(root) = root {
            match self.posts.get(&root) {
                Some(r) if !r.deleted && r.root.is_none() && r.channel == channel => {}
                _ => return false,
            }
        }
        self.posts.insert(
            pid,
            MPost {
                channel,
                user,
                root,
                create_at: at,
                deleted: false,
                message: text.into(),
            },
        );
        let ch = self.channels.entry(channel).or_default();
        ch.total += 1;
        ch.last_post_at = at;
        if root.is_none() {
            ch.total_root += 1;
        }
        let (total, total_root) = (ch.total, ch.total_root);
        let m = self
            .members
            .get_mut(&(channel, user))
            .expect("author is a member");
        m.last_viewed_at = at;
        m.msg_count = total;
        m.msg_count_root = total_root;
        let mentioned = self.mentioned(channel, text, user);
        for u in &mentioned {
            let m = self
                .members
                .get_mut(&(channel, *u))
                .expect("mentioned are members");
            m.mention_count += 1;
            if root.is_none() {
                m.mention_count_root += 1;
            }
        }
        let Some(root) = root else { return true };
        let root_post = self.posts[&root].clone();
        let first = !self.threads.contains_key(&root);
        let participants = self.threads.entry(root).or_default();
        participants.retain(|p| *p != user);
        participants.push(user);
        let mut mentioned_here = mentioned.clone();
        if first {
            mentioned_here.extend(self.mentioned(channel, &root_post.message, root_post.user));
        }
        let mut candidates: BTreeSet<u64> = self
            .thread_members
            .iter()
            .filter(|((_, t), m)| *t == root && m.following)
            .map(|((u, _), _)| *u)
            .collect();
        candidates.insert(user);
        candidates.insert(root_post.user);
        candidates.extend(mentioned_here.iter().copied());
        for c in candidates {
            if !self.thread_members.contains_key(&(c, root)) {
                if c != user && !self.is_member(channel, c) {
                    continue;
                }
                self.thread_members.insert(
                    (c, root),
                    MThreadMember {
                        following: false,
                        unfollowed: false,
                        last_viewed: 0,
                        mentions: vec![],
                    },
                );
            }
            let tm = self
                .thread_members
                .get_mut(&(c, root))
                .expect("just ensured");
            if tm.unfollowed && !mentioned_here.contains(&c) && c != user {
                continue;
            }
            tm.following = true;
            tm.unfollowed = false;
            if c == user {
                tm.last_viewed = at;
                tm.mentions.clear();
            } else if mentioned.contains(&c) {
                // Only the reply's own mentions count in the thread.
                tm.mentions.push(at);
            }
        }
        true
    }

    fn thread_channel(&self, thread: u64) -> u64 {
        self.posts[&thread].channel
    }

    fn view(&mut self, user: u64, channel: u64, crt: bool, at: u64) -> bool {
        if !self.is_member(channel, user) {
            return false;
        }
        let ch = self.channels.get(&channel).cloned().unwrap_or_default();
        let m = self.members.get_mut(&(channel, user)).expect("member");
        m.last_viewed_at = m.last_viewed_at.max(ch.last_post_at);
        m.msg_count = ch.total;
        m.msg_count_root = ch.total_root;
        m.mention_count = 0;
        m.mention_count_root = 0;
        if !crt {
            // The write storm the engine avoids: every thread of the channel, one by one.
            let mark = at.max(ch.last_post_at);
            self.channel_marks.insert((user, channel), mark);
            let threads: Vec<u64> = self
                .threads
                .keys()
                .copied()
                .filter(|t| self.thread_channel(*t) == channel)
                .collect();
            for t in threads {
                if let Some(tm) = self.thread_members.get_mut(&(user, t)) {
                    tm.read_up_to(mark);
                }
            }
        }
        true
    }

    fn read_all(&mut self, user: u64, at: u64) {
        self.team_marks.insert(user, at);
        for ((u, _), tm) in self.thread_members.iter_mut() {
            if *u == user {
                tm.read_up_to(at);
            }
        }
    }

    /// (unread replies, unread mentions, following) of a thread for a user.
    fn thread_view(&self, user: u64, thread: u64) -> (u64, u64, bool) {
        match self.thread_members.get(&(user, thread)) {
            Some(tm) => {
                let unread = self
                    .replies(thread)
                    .iter()
                    .filter(|(_, p)| p.create_at > tm.last_viewed)
                    .count() as u64;
                let mentions = tm.mentions.iter().filter(|t| **t > tm.last_viewed).count() as u64;
                (unread, mentions, tm.following)
            }
            None => {
                let channel = self.thread_channel(thread);
                let lv = self
                    .channel_marks
                    .get(&(user, channel))
                    .copied()
                    .unwrap_or(0)
                    .max(self.team_marks.get(&user).copied().unwrap_or(0));
                let unread = self
                    .replies(thread)
                    .iter()
                    .filter(|(_, p)| p.create_at > lv)
                    .count() as u64;
                (unread, 0, false)
            }
        }
    }
}

struct Harness {
    db: TestDb,
    model: Model,
    /// Post ids in creation order (accepted ones).
    created: Vec<u64>,
    next_post: u64,
    clock: u64,
}

impl Harness {
    fn new() -> Harness {
        let mut db = TestDb::new();
        let mut model = Model::default();
        for user in USERS {
            db.ok(create_user(user, &username(user), 1));
        }
        db.ok(create_team(TEAM, "team", 1, 2));
        for user in [2, 3, 4] {
            db.ok(Command::AddTeamMember {
                team_id: id(TEAM),
                user_id: id(user),
                at: 3,
            });
        }
        for (channel, members) in CHANNELS {
            if channel == 400 {
                db.ok(Command::CreateDirectOrGroup {
                    id: id(channel),
                    at: 4,
                    channel_type: ChannelType::Direct,
                    name: "dm".into(),
                    display_name: String::new(),
                    members: members.iter().map(|u| id(*u)).collect(),
                    creator_id: id(1),
                });
            } else {
                let kind = if channel == 200 {
                    ChannelType::Open
                } else {
                    ChannelType::Private
                };
                db.ok(create_channel(
                    channel,
                    TEAM,
                    &format!("c{channel}"),
                    kind,
                    1,
                    4,
                ));
                for user in members.iter().skip(1) {
                    db.ok(Command::AddChannelMember {
                        channel_id: id(channel),
                        user_id: id(*user),
                        at: 5,
                    });
                }
            }
            model.channels.insert(
                channel,
                MChannel {
                    last_post_at: 4,
                    ..Default::default()
                },
            );
            for user in members {
                model.members.insert((channel, *user), MMember::default());
            }
        }
        Harness {
            db,
            model,
            created: Vec::new(),
            next_post: 10_000,
            clock: 100,
        }
    }

    fn pick_post(&self, n: usize) -> Option<u64> {
        if self.created.is_empty() {
            None
        } else {
            Some(self.created[n % self.created.len()])
        }
    }

    fn pick_thread(&self, n: usize) -> Option<u64> {
        let threads: Vec<u64> = self.model.threads.keys().copied().collect();
        if threads.is_empty() {
            None
        } else {
            Some(threads[n % threads.len()])
        }
    }

    fn run(&mut self, op: &Op) {
        self.clock += 10;
        let at = self.clock;
        let (command, expect_ok) = match *op {
            Op::Post {
                user,
                channel,
                reply_to,
                mentions,
                all,
            } => {
                let user = USERS[user];
                let channel = CHANNELS[channel].0;
                let root = reply_to.and_then(|n| self.pick_post(n)).map(|p| {
                    // Reply to the root of whatever was picked, in its channel.
                    self.model.posts[&p].root.unwrap_or(p)
                });
                let channel = root
                    .map(|r| self.model.posts[&r].channel)
                    .unwrap_or(channel);
                let text = message(mentions, all);
                let pid = self.next_post;
                self.next_post += 1;
                let ok = self.model.post(pid, user, channel, root, &text, at);
                if ok {
                    self.created.push(pid);
                }
                (common::post(pid, channel, user, root, &text, at), ok)
            }
            Op::Delete { post } => {
                let Some(pid) = self.pick_post(post) else {
                    return;
                };
                let ok = !self.model.posts[&pid].deleted;
                if ok {
                    let is_root = self.model.posts[&pid].root.is_none();
                    for (id, p) in self.model.posts.iter_mut() {
                        if *id == pid || (is_root && p.root == Some(pid)) {
                            p.deleted = true;
                        }
                    }
                }
                (
                    Command::DeletePost {
                        post_id: id(pid),
                        at,
                    },
                    ok,
                )
            }
            Op::Edit { post, mentions } => {
                let Some(pid) = self.pick_post(post) else {
                    return;
                };
                let ok = !self.model.posts[&pid].deleted;
                let text = message(mentions, false);
                if ok {
                    self.model.posts.get_mut(&pid).expect("picked").message = text.clone();
                }
                (
                    Command::PatchPost {
                        file_ids: None,
                        post_id: id(pid),
                        at,
                        message: Some(text),
                        is_pinned: None,
                        props: None,
                    },
                    ok,
                )
            }
            Op::React {
                user,
                post,
                emoji,
                add,
            } => {
                let Some(pid) = self.pick_post(post) else {
                    return;
                };
                let user = USERS[user];
                let key = (pid, user, EMOJI[emoji]);
                let emoji_name = EMOJI[emoji].to_string();
                if add {
                    let ok = !self.model.posts[&pid].deleted;
                    if ok {
                        self.model.reactions.insert(key);
                    }
                    (
                        Command::AddReaction {
                            post_id: id(pid),
                            user_id: id(user),
                            emoji_name,
                            at,
                        },
                        ok,
                    )
                } else {
                    let ok = self.model.reactions.remove(&key);
                    (
                        Command::RemoveReaction {
                            post_id: id(pid),
                            user_id: id(user),
                            emoji_name,
                            at,
                        },
                        ok,
                    )
                }
            }
            Op::View { user, channel, crt } => {
                let (user, channel) = (USERS[user], CHANNELS[channel].0);
                let ok = self.model.view(user, channel, crt, at);
                (
                    Command::ViewChannel {
                        user_id: id(user),
                        channel_id: id(channel),
                        at,
                        collapsed_threads_supported: crt,
                    },
                    ok,
                )
            }
            Op::SetPostUnread { user, post } => {
                let Some(pid) = self.pick_post(post) else {
                    return;
                };
                let user = USERS[user];
                let p = self.model.posts[&pid].clone();
                let ok = !p.deleted && self.model.is_member(p.channel, user);
                if ok {
                    let unread: Vec<MPost> = self
                        .model
                        .posts
                        .values()
                        .filter(|q| {
                            q.channel == p.channel && !q.deleted && q.create_at >= p.create_at
                        })
                        .cloned()
                        .collect();
                    let ch = self.model.channels[&p.channel].clone();
                    let m = self
                        .model
                        .members
                        .get_mut(&(p.channel, user))
                        .expect("member");
                    m.last_viewed_at = p.create_at - 1;
                    m.msg_count = ch.total - unread.len() as u64;
                    m.msg_count_root =
                        ch.total_root - unread.iter().filter(|q| q.root.is_none()).count() as u64;
                    let mentioning: Vec<&MPost> = unread
                        .iter()
                        .filter(|q| {
                            let f = mentions::parse(&q.message);
                            q.user != user
                                && (f.channel_wide || f.usernames.contains(&username(user)))
                        })
                        .collect();
                    m.mention_count = mentioning.len() as u64;
                    m.mention_count_root =
                        mentioning.iter().filter(|q| q.root.is_none()).count() as u64;
                }
                (
                    Command::SetPostUnread {
                        user_id: id(user),
                        post_id: id(pid),
                        at,
                        collapsed_threads: false,
                    },
                    ok,
                )
            }
            Op::ReadThread { user, thread, back } => {
                let Some(t) = self.pick_thread(thread) else {
                    return;
                };
                let user = USERS[user];
                let ts = at.saturating_sub(back as u64 * 25);
                let ok = self.model.is_member(self.model.thread_channel(t), user);
                if ok {
                    let tm = self
                        .model
                        .thread_members
                        .entry((user, t))
                        .or_insert(MThreadMember {
                            following: false,
                            unfollowed: false,
                            last_viewed: 0,
                            mentions: vec![],
                        });
                    tm.last_viewed = ts;
                    tm.mentions.retain(|m| *m > ts);
                }
                (
                    Command::ReadThread {
                        user_id: id(user),
                        thread_id: id(t),
                        timestamp: ts,
                        at,
                    },
                    ok,
                )
            }
            Op::SetThreadUnread { user, thread, post } => {
                let Some(t) = self.pick_thread(thread) else {
                    return;
                };
                let Some(pid) = self.pick_post(post) else {
                    return;
                };
                let user = USERS[user];
                let p = self.model.posts[&pid].clone();
                let ok = !p.deleted
                    && (p.root == Some(t) || pid == t)
                    && self.model.is_member(p.channel, user);
                if ok {
                    let tm = self
                        .model
                        .thread_members
                        .entry((user, t))
                        .or_insert(MThreadMember {
                            following: false,
                            unfollowed: false,
                            last_viewed: 0,
                            mentions: vec![],
                        });
                    tm.last_viewed = p.create_at - 1;
                }
                (
                    Command::SetThreadUnread {
                        user_id: id(user),
                        thread_id: id(t),
                        post_id: id(pid),
                        at,
                    },
                    ok,
                )
            }
            Op::Follow {
                user,
                thread,
                follow,
            } => {
                let Some(t) = self.pick_thread(thread) else {
                    return;
                };
                let user = USERS[user];
                let ok = self.model.is_member(self.model.thread_channel(t), user);
                if ok {
                    let tm = self
                        .model
                        .thread_members
                        .entry((user, t))
                        .or_insert(MThreadMember {
                            following: false,
                            unfollowed: false,
                            last_viewed: at,
                            mentions: vec![],
                        });
                    tm.following = follow;
                    tm.unfollowed = !follow;
                }
                (
                    Command::FollowThread {
                        user_id: id(user),
                        thread_id: id(t),
                        follow,
                        at,
                    },
                    ok,
                )
            }
            Op::ReadAll { user } => {
                let user = USERS[user];
                self.model.read_all(user, at);
                (
                    Command::ReadAllThreads {
                        user_id: id(user),
                        team_id: id(TEAM),
                        at,
                    },
                    true,
                )
            }
        };
        let applied = self.db.apply(command.clone());
        assert_eq!(
            applied.result.is_ok(),
            expect_ok,
            "{command:?} → {:?}",
            applied.result
        );
    }

    fn check(&self) {
        let reader = self.db.engine.reader();
        // The push badge counters apply keeps agree with the badge walked over channels and
        // threads (`tests/badge.rs` checks more shapes).
        for user in USERS {
            for crt in [false, true] {
                assert_eq!(
                    reader.badge(id(user), crt).unwrap(),
                    reader.mention_badge(id(user), crt).unwrap(),
                    "badge of {user}, crt {crt}"
                );
            }
        }
        // Channel read state.
        for ((channel, user), m) in &self.model.members {
            let unread = reader
                .channel_unread(id(*user), id(*channel))
                .unwrap()
                .expect("member");
            let ch = &self.model.channels[channel];
            assert_eq!(
                unread.msg_count,
                ch.total - m.msg_count,
                "unread of {user} in {channel}"
            );
            assert_eq!(unread.msg_count_root, ch.total_root - m.msg_count_root);
            assert_eq!(
                unread.mention_count, m.mention_count,
                "mentions of {user} in {channel}"
            );
            assert_eq!(unread.mention_count_root, m.mention_count_root);
            let member = reader
                .channel_member(id(*channel), id(*user))
                .unwrap()
                .expect("member");
            assert_eq!(member.last_viewed_at, m.last_viewed_at);
        }
        // Channel pages, both with and without collapsed threads.
        for (channel, _) in CHANNELS {
            let mut ids = reader.channel_member_ids(id(channel)).unwrap();
            ids.sort();
            let mut expected: Vec<Id> = self
                .model
                .channel_members(channel)
                .into_iter()
                .map(id)
                .collect();
            expected.sort();
            assert_eq!(ids, expected, "member ids of {channel}");
            for collapsed in [false, true] {
                let mut expected: Vec<(u64, u64)> = self
                    .model
                    .posts
                    .iter()
                    .filter(|(_, p)| {
                        p.channel == channel && !p.deleted && (!collapsed || p.root.is_none())
                    })
                    .map(|(id, p)| (p.create_at, *id))
                    .collect();
                expected.sort_by(|a, b| b.cmp(a));
                let expected: Vec<Id> = expected.into_iter().take(30).map(|(_, p)| id(p)).collect();
                let page = reader
                    .channel_posts(
                        id(channel),
                        PostsQuery::Page {
                            page: 0,
                            per_page: 30,
                        },
                        collapsed,
                    )
                    .unwrap();
                assert_eq!(
                    page.order, expected,
                    "channel {channel} page, collapsed {collapsed}"
                );
            }
        }
        // Threads: posts, and each user's view of each.
        for (&root, participants) in &self.model.threads {
            let thread = reader.thread(id(root)).unwrap().expect("thread exists");
            assert_eq!(
                thread.participants,
                participants.iter().map(|u| id(*u)).collect::<Vec<_>>()
            );
            assert_eq!(
                thread.reply_count,
                self.model.replies(root).len() as u64,
                "reply count of {root}"
            );
            if !self.model.posts[&root].deleted {
                assert_eq!(thread.last_reply_at, self.model.last_reply_at(root));
            }
            let mut replies: Vec<(u64, u64)> = self
                .model
                .replies(root)
                .iter()
                .map(|(id, p)| (p.create_at, *id))
                .collect();
            replies.sort_by(|a, b| b.cmp(a));
            // The whole thread, newest first, led by the post asked for (here the root).
            let mut expected = vec![id(root)];
            expected.extend(replies.into_iter().map(|(_, p)| id(p)));
            let whole = ThreadPaging {
                up: true,
                ..ThreadPaging::default()
            };
            let page = reader.thread_page(id(root), id(root), &whole).unwrap();
            assert_eq!(page.order, expected);
            for user in USERS {
                let item = reader
                    .user_thread(id(user), id(root))
                    .unwrap()
                    .expect("thread");
                let (unread, mentions, following) = self.model.thread_view(user, root);
                assert_eq!(
                    (
                        item.read.unread_replies,
                        item.read.unread_mentions,
                        item.following
                    ),
                    (unread, mentions, following),
                    "user {user} thread {root}"
                );
            }
        }
        // Each user's thread list and totals.
        for user in USERS {
            let mut followed: Vec<(u64, u64)> = self
                .model
                .thread_members
                .iter()
                .filter(|((u, t), tm)| *u == user && tm.following && !self.model.posts[t].deleted)
                .map(|((_, t), _)| (self.model.last_reply_at(*t), *t))
                .collect();
            followed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let unread: Vec<u64> = followed
                .iter()
                .filter(|(_, t)| {
                    let tm = &self.model.thread_members[&(user, *t)];
                    self.model.last_reply_at(*t) > tm.last_viewed
                })
                .map(|(_, t)| *t)
                .collect();
            let mentions: u64 = followed
                .iter()
                .map(|(_, t)| self.model.thread_view(user, *t).1)
                .sum();
            let list = reader
                .user_threads(
                    id(user),
                    id(TEAM),
                    &ThreadQuery {
                        per_page: 200,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert_eq!(list.total, followed.len() as u64, "total threads of {user}");
            assert_eq!(
                list.total_unread_threads,
                unread.len() as u64,
                "unread threads of {user}"
            );
            assert_eq!(
                list.total_unread_mentions, mentions,
                "unread mentions of {user}"
            );
            let listed: Vec<Id> = list.threads.iter().map(|t| t.thread.root_id).collect();
            assert_eq!(
                listed,
                followed.iter().map(|(_, t)| id(*t)).collect::<Vec<_>>(),
                "threads of {user}"
            );
            for item in &list.threads {
                let (unread, mentions, _) = self
                    .model
                    .thread_view(user, common::num(item.thread.root_id));
                assert_eq!(
                    (item.read.unread_replies, item.read.unread_mentions),
                    (unread, mentions)
                );
            }
            let only_unread = reader
                .user_threads(
                    id(user),
                    id(TEAM),
                    &ThreadQuery {
                        per_page: 200,
                        unread_only: true,
                        ..Default::default()
                    },
                )
                .unwrap();
            let listed: Vec<Id> = only_unread
                .threads
                .iter()
                .map(|t| t.thread.root_id)
                .collect();
            assert_eq!(
                listed,
                unread.iter().map(|t| id(*t)).collect::<Vec<_>>(),
                "unread threads of {user}"
            );
        }
        // Reactions.
        for pid in &self.created {
            let mut expected: Vec<(Id, String)> = self
                .model
                .reactions
                .iter()
                .filter(|(p, _, _)| p == pid)
                .map(|(_, u, e)| (id(*u), e.to_string()))
                .collect();
            expected.sort();
            let mut got: Vec<(Id, String)> = reader
                .reactions(id(*pid))
                .unwrap()
                .into_iter()
                .map(|r| (r.user_id, r.emoji_name))
                .collect();
            got.sort();
            assert_eq!(got, expected, "reactions of {pid}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_naive_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.run(op);
            harness.check();
        }
    }
}
