//! Channel-wide mentions (`@channel`, `@all`) are counted once on the channel and folded into
//! each member's counts when read: a root post that says `@channel` leaves every member record
//! but its author's (and the named) untouched, however big the channel, while every read path —
//! one member, a channel's page, all members, a team's members of a user, the unread counts and
//! the push badge — shows what eager counting showed. `@here` counts only for the members the
//! proposing node saw online (the command's `here_online`), in their records.

mod common;

use common::*;
use confab_storage::{ChannelMember, Command, Engine, Outcome};

const TEAM: u64 = 100;
const TOWN: u64 = 101;
/// alice (1) and bob (2) and `others` more, all in team 100 and its town square.
const FIRST_OTHER: u64 = 10;

fn team_of(others: u64) -> TestDb {
    let mut db = TestDb::two_users_in_a_team();
    db.ok(create_user(3, "carol", 1));
    db.ok(Command::AddTeamMember {
        team_id: id(TEAM),
        user_id: id(3),
        at: 3,
    });
    for n in FIRST_OTHER..FIRST_OTHER + others {
        db.ok(create_user(n, &format!("user{n}"), 1));
        db.ok(Command::AddTeamMember {
            team_id: id(TEAM),
            user_id: id(n),
            at: 3,
        });
    }
    db
}

fn member(engine: &Engine, user: u64) -> ChannelMember {
    engine
        .reader()
        .channel_member(id(TOWN), id(user))
        .expect("read")
        .expect("a member")
}

fn record(engine: &Engine, user: u64) -> ChannelMember {
    engine
        .reader()
        .channel_member_record(id(TOWN), id(user))
        .expect("read")
        .expect("a member")
}

/// (mentions, root mentions, urgent mentions) of a member, as read.
fn counts(engine: &Engine, user: u64) -> (u64, u64, u64) {
    let m = member(engine, user);
    (
        m.mention_count,
        m.mention_count_root,
        m.urgent_mention_count,
    )
}

fn post_with_priority(db: &mut TestDb, n: u64, author: u64, message: &str, priority: &str) {
    let mut command = post(n, TOWN, author, None, message, 1_000 + n);
    if let Command::CreatePost { priority: p, .. } = &mut command {
        *p = priority.to_string();
    }
    db.ok(command);
}

/// A post saying `@here`, which the proposing node saw `online` reach.
fn here_post(n: u64, author: u64, root: Option<u64>, message: &str, online: &[u64]) -> Command {
    here_post_at(n, author, root, message, online, 1_000 + n)
}

fn here_post_at(
    n: u64,
    author: u64,
    root: Option<u64>,
    message: &str,
    online: &[u64],
    at: u64,
) -> Command {
    let mut command = post(n, TOWN, author, root, message, at);
    if let Command::CreatePost { here_online, .. } = &mut command {
        *here_online = online.iter().map(|u| id(*u)).collect();
    }
    command
}

#[test]
fn here_counts_only_for_the_members_its_node_saw_online() {
    let mut db = team_of(2);
    // bob and user10 online; carol and user11 not; the author (alice) listed too, and skipped.
    let outcome = db.ok(here_post(
        500,
        1,
        None,
        "@here lunch?",
        &[1, 2, FIRST_OTHER],
    ));
    let Outcome::Posted(posted) = outcome else {
        panic!("not posted: {outcome:?}")
    };
    assert_eq!(
        posted.channel.wide_mentions.all, 0,
        "not counted channel-wide"
    );
    assert_eq!(counts(&db.engine, 2), (1, 1, 0));
    assert_eq!(counts(&db.engine, FIRST_OTHER), (1, 1, 0));
    assert_eq!(counts(&db.engine, 3), (0, 0, 0), "carol was offline");
    assert_eq!(counts(&db.engine, FIRST_OTHER + 1), (0, 0, 0));
    assert_eq!(counts(&db.engine, 1), (0, 0, 0), "the author");
    let reader = db.engine.reader();
    assert_eq!(reader.badge(id(2), false).expect("badge"), 1);
    assert_eq!(reader.badge(id(3), false).expect("badge"), 0);
    // A listed user who is not a member is not counted (nor made one).
    let mut db = team_of(0);
    db.ok(Command::RemoveChannelMember {
        channel_id: id(TOWN),
        user_id: id(3),
        at: 1_400,
    });
    db.ok(here_post(501, 1, None, "@here again", &[2, 3, 999]));
    assert_eq!(counts(&db.engine, 2), (1, 1, 0));
    assert!(db
        .engine
        .reader()
        .channel_member(id(TOWN), id(3))
        .expect("read")
        .is_none());
    // `@here` with `@all` in the same post is channel-wide: everyone, whatever the list.
    db.ok(here_post(502, 1, None, "@here and @all", &[]));
    assert_eq!(counts(&db.engine, 2), (2, 2, 0));
    // A reply's `@here` counts for the online, not as a root mention.
    db.ok(here_post(503, 2, Some(502), "@here in the thread", &[1]));
    assert_eq!(counts(&db.engine, 1), (1, 0, 0));
}

#[test]
fn a_channel_wide_mention_the_taking_node_ignored_counts_for_nobody() {
    let mut db = team_of(2);
    let ignored = |n: u64, root: Option<u64>, message: &str| {
        let mut command = post(n, TOWN, 1, root, message, 1_000 + n);
        if let Command::CreatePost {
            channel_wide_ignored,
            here_online,
            ..
        } = &mut command
        {
            *channel_wide_ignored = true;
            // Even a list that came along is not counted.
            *here_online = vec![id(2)];
        }
        command
    };
    let outcome = db.ok(ignored(500, None, "@channel too many of us"));
    let Outcome::Posted(posted) = outcome else {
        panic!("not posted: {outcome:?}")
    };
    assert!(!posted.channel_wide);
    assert_eq!(posted.channel.wide_mentions.all, 0);
    db.ok(ignored(501, None, "@here anyone?"));
    db.ok(ignored(502, Some(500), "@all in the thread, and @carol"));
    for user in [2, FIRST_OTHER, FIRST_OTHER + 1] {
        assert_eq!(counts(&db.engine, user), (0, 0, 0), "user {user}");
    }
    // A name in the same post still counts.
    assert_eq!(counts(&db.engine, 3), (1, 0, 0));
}

#[test]
fn a_root_channel_wide_mention_rewrites_only_the_authors_record_in_any_channel_size() {
    for others in [1, 300] {
        let mut db = team_of(others);
        let before: Vec<ChannelMember> = (FIRST_OTHER..FIRST_OTHER + others)
            .map(|n| record(&db.engine, n))
            .collect();
        let outcome = db.ok(post(500, TOWN, 1, None, "@channel standup now", 2_000));
        let Outcome::Posted(posted) = outcome else {
            panic!("not posted: {outcome:?}")
        };
        assert!(posted.channel_wide);
        assert!(posted.mentions.is_empty(), "nobody is named");
        assert_eq!(
            posted.channel_members.len(),
            1,
            "only the author's record is written ({others} others)"
        );
        assert_eq!(posted.channel.wide_mentions.all, 1);
        for (n, was) in (FIRST_OTHER..FIRST_OTHER + others).zip(&before) {
            assert_eq!(&record(&db.engine, n), was, "user{n}'s stored record");
            let read = member(&db.engine, n);
            assert_eq!((read.mention_count, read.mention_count_root), (1, 1));
            assert_eq!(read.last_update_at, posted.post.create_at);
        }
        assert_eq!(counts(&db.engine, 1), (0, 0, 0), "the author");
        // Every read path shows the folded counts.
        let reader = db.engine.reader();
        let page = reader.channel_members(id(TOWN), 0, 1_000).expect("page");
        assert_eq!(page.len() as u64, others + 3);
        for m in &page {
            let expected = u64::from(m.user_id != id(1));
            assert_eq!(m.mention_count, expected, "channel_members");
        }
        let all = reader.all_channel_members(id(TOWN)).expect("all");
        assert_eq!(all, page, "all_channel_members");
        let unread = reader
            .channel_unread(id(2), id(TOWN))
            .expect("read")
            .expect("unread");
        assert_eq!((unread.mention_count, unread.mention_count_root), (1, 1));
        let of_user = reader
            .channel_members_of_user_in_team(id(2), id(TEAM))
            .expect("members of bob");
        let town = of_user
            .iter()
            .find(|m| m.channel_id == id(TOWN))
            .expect("town square");
        assert_eq!(town.mention_count, 1);
        assert_eq!(reader.badge(id(2), false).expect("badge"), 1);
        assert_eq!(reader.badge(id(1), false).expect("badge"), 0);
    }
}

#[test]
fn counts_stay_right_through_views_joins_leaves_named_mentions_and_mark_unread() {
    let mut db = team_of(0);
    // A post both channel-wide and naming bob counts once for bob.
    db.ok(post(500, TOWN, 1, None, "@all and especially @bob", 2_000));
    assert_eq!(counts(&db.engine, 2), (1, 1, 0));
    assert_eq!(counts(&db.engine, 3), (1, 1, 0));
    // A reply's channel-wide mention counts, not as a root mention.
    db.ok(here_post_at(
        501,
        2,
        Some(500),
        "@here in the thread",
        &[1, 3],
        2_100,
    ));
    assert_eq!(counts(&db.engine, 2), (1, 1, 0), "bob wrote it");
    assert_eq!(counts(&db.engine, 3), (2, 1, 0));
    assert_eq!(counts(&db.engine, 1), (1, 0, 0));
    // An urgent one.
    post_with_priority(&mut db, 502, 3, "@channel fire", "urgent");
    assert_eq!(counts(&db.engine, 2), (2, 2, 1));
    assert_eq!(counts(&db.engine, 3), (2, 1, 0), "carol wrote it");

    // Viewing clears, and the next channel-wide mention counts from zero.
    db.ok(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(TOWN),
        at: 3_000,
        collapsed_threads_supported: true,
    });
    assert_eq!(counts(&db.engine, 2), (0, 0, 0));
    db.ok(post(503, TOWN, 1, None, "@channel again", 3_100));
    assert_eq!(counts(&db.engine, 2), (1, 1, 0));

    // A member who joins later has none of the earlier ones.
    db.ok(create_user(4, "dave", 1));
    db.ok(Command::AddTeamMember {
        team_id: id(TEAM),
        user_id: id(4),
        at: 3_200,
    });
    assert_eq!(counts(&db.engine, 4), (0, 0, 0));
    db.ok(post(504, TOWN, 1, None, "welcome @all", 3_300));
    assert_eq!(counts(&db.engine, 4), (1, 1, 0));

    // Leaving and rejoining starts over.
    db.ok(Command::RemoveChannelMember {
        channel_id: id(TOWN),
        user_id: id(4),
        at: 3_400,
    });
    db.ok(post(
        505,
        TOWN,
        1,
        None,
        "@channel while dave is away",
        3_500,
    ));
    db.ok(Command::AddChannelMember {
        channel_id: id(TOWN),
        user_id: id(4),
        at: 3_600,
    });
    assert_eq!(counts(&db.engine, 4), (0, 0, 0));

    // Marking unread recounts from the posts: bob's mentions from post 503 on are 503, 504,
    // 505 (all channel-wide); then a later one adds to that recount exactly once.
    db.ok(Command::SetPostUnread {
        user_id: id(2),
        post_id: id(503),
        at: 3_700,
        collapsed_threads: false,
    });
    assert_eq!(counts(&db.engine, 2), (3, 3, 0));
    db.ok(here_post_at(506, 3, None, "@here last call", &[2], 3_800));
    assert_eq!(counts(&db.engine, 2), (4, 4, 0));
    assert_eq!(db.engine.reader().badge(id(2), false).expect("badge"), 4);
    // A change to the record (notify props) keeps the counts.
    db.ok(Command::SetChannelNotifyProps {
        channel_id: id(TOWN),
        user_id: id(2),
        at: 3_900,
        props: [("push".to_string(), "all".to_string())]
            .into_iter()
            .collect(),
    });
    assert_eq!(counts(&db.engine, 2), (4, 4, 0));
    db.ok(post(507, TOWN, 1, None, "@channel one more", 4_000));
    assert_eq!(counts(&db.engine, 2), (5, 5, 0));
}

/// Sets one of a user's notify props through a profile update, as `PUT /users/{id}/patch` does.
fn set_user_prop(db: &mut TestDb, user: u64, key: &str, value: &str, at: u64) {
    db.update_profile(user, at, |profile| {
        profile.notify_props.insert(key.into(), value.into());
    });
}

fn set_member_prop(db: &mut TestDb, user: u64, key: &str, value: &str, at: u64) {
    db.ok(Command::SetChannelNotifyProps {
        channel_id: id(TOWN),
        user_id: id(user),
        at,
        props: [(key.to_string(), value.to_string())].into_iter().collect(),
    });
}

fn posted(outcome: Outcome) -> Box<confab_storage::Posted> {
    match outcome {
        Outcome::Posted(posted) => posted,
        other => panic!("not posted: {other:?}"),
    }
}

/// Mattermost's keyword map leaves `@channel`, `@all` and `@here` out for a member whose
/// `channel` prop is off or who set `ignore_channel_mentions` in the channel: no count, no
/// badge, no `mentions` entry, no follow. The rule in force when a mention is posted decides.
#[test]
fn members_who_turned_channel_mentions_off_are_not_counted_or_named_by_them() {
    let mut db = team_of(1);
    let user10 = FIRST_OTHER;
    // A mention pending in bob's record when he turns them off still counts: it was posted
    // under the old rule.
    db.ok(post(600, TOWN, 1, None, "@channel before", 2_000));
    set_user_prop(&mut db, 2, "channel", "false", 2_010);
    set_member_prop(&mut db, 3, "ignore_channel_mentions", "on", 2_020);
    assert_eq!(counts(&db.engine, 2), (1, 1, 0));
    assert_eq!(counts(&db.engine, 3), (1, 1, 0));

    let root = posted(db.ok(post(601, TOWN, 1, None, "@channel standup", 2_100)));
    assert!(root.channel_wide);
    assert_eq!(root.wide_ignored, vec![id(2), id(3)]);
    assert_eq!(counts(&db.engine, 2), (1, 1, 0), "bob's user prop is off");
    assert_eq!(counts(&db.engine, 3), (1, 1, 0), "carol ignores them here");
    assert_eq!(counts(&db.engine, user10), (2, 2, 0));
    let reader = db.engine.reader();
    assert_eq!(reader.badge(id(2), false).expect("badge"), 1);
    assert_eq!(reader.badge(id(user10), false).expect("badge"), 2);
    drop(reader);

    // `@here` reaches only the online members who count it; they are named one by one.
    let here = posted(db.ok(here_post_at(
        602,
        1,
        None,
        "@here anyone?",
        &[2, 3, user10],
        2_200,
    )));
    assert!(!here.channel_wide);
    assert_eq!(here.mentions, vec![id(user10)]);
    assert_eq!(counts(&db.engine, 2), (1, 1, 0));
    assert_eq!(counts(&db.engine, user10), (3, 3, 0));

    // A name still mentions them.
    db.ok(post(603, TOWN, 1, None, "@bob and @carol, look", 2_300));
    assert_eq!(counts(&db.engine, 2), (2, 2, 0));
    assert_eq!(counts(&db.engine, 3), (2, 2, 0));

    // A reply's `@channel` makes followers of the members it mentions only.
    let reply = posted(db.ok(post(
        604,
        TOWN,
        1,
        Some(601),
        "@channel in the thread",
        2_400,
    )));
    assert!(reply.followers.contains(&id(user10)));
    assert!(!reply.followers.contains(&id(2)));
    assert!(!reply.followers.contains(&id(3)));

    // Turned back on: later mentions count again, the ones posted meanwhile do not.
    set_user_prop(&mut db, 2, "channel", "true", 2_500);
    set_member_prop(&mut db, 3, "ignore_channel_mentions", "off", 2_510);
    let again = posted(db.ok(post(605, TOWN, 1, None, "@all again", 2_600)));
    assert!(again.wide_ignored.is_empty());
    assert_eq!(counts(&db.engine, 2), (3, 3, 0));
    assert_eq!(counts(&db.engine, 3), (3, 3, 0));
    // `off` in the channel does not override the user's own choice.
    set_user_prop(&mut db, 3, "channel", "false", 2_700);
    db.ok(post(606, TOWN, 1, None, "@channel once more", 2_800));
    assert_eq!(counts(&db.engine, 3), (3, 3, 0));
    assert_eq!(counts(&db.engine, 2), (4, 4, 0));
}

/// The list of members who ignore channel-wide mentions follows joins and leaves: a channel
/// prop goes with the membership, a user prop comes back with the next one.
#[test]
fn leaving_and_rejoining_resets_a_channel_choice_but_keeps_a_users() {
    let mut db = team_of(0);
    set_user_prop(&mut db, 2, "channel", "false", 2_000);
    set_member_prop(&mut db, 3, "ignore_channel_mentions", "on", 2_010);
    for user in [2, 3] {
        db.ok(Command::RemoveChannelMember {
            channel_id: id(TOWN),
            user_id: id(user),
            at: 2_100,
        });
        let gone = posted(db.ok(post(700 + user, TOWN, 1, None, "@channel", 2_200 + user)));
        assert!(!gone.wide_ignored.contains(&id(user)), "left: not listed");
        db.ok(Command::AddChannelMember {
            channel_id: id(TOWN),
            user_id: id(user),
            at: 2_300 + user,
        });
    }
    let back = posted(db.ok(post(710, TOWN, 1, None, "@channel", 2_400)));
    assert_eq!(back.wide_ignored, vec![id(2)], "bob's user prop stays off");
    assert_eq!(counts(&db.engine, 2), (0, 0, 0));
    assert_eq!(counts(&db.engine, 3), (1, 1, 0));
    assert!(!member(&db.engine, 3).ignores_channel_wide);
    assert!(record(&db.engine, 2).ignores_channel_wide);
}
