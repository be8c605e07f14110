//! The notification outbox as apply keeps it: a post records one entry with who might be
//! notified, in its own write batch; a view that clears something records a clear; the
//! dispatched mark deletes what it covers, never moves back, and detaches devices; channel
//! notify props merge and are checked; batched emails queue with the mark.

mod common;

use common::*;
use confab_storage::email_queue::QueuedEmail;
use confab_storage::notify::{ChannelWide, OutboxEntry};
use confab_storage::{Command, Id, NotifyProps, Outcome};

const TOWN: u64 = 101;

fn team_of_three() -> TestDb {
    let mut db = TestDb::new();
    for (n, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
        db.ok(create_user(n, name, 1));
    }
    db.ok(create_team(100, "team", 1, 2));
    for user in [2, 3] {
        db.ok(Command::AddTeamMember {
            team_id: id(100),
            user_id: id(user),
            at: 3,
        });
    }
    db
}

fn props(pairs: &[(&str, &str)]) -> NotifyProps {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn posts_and_views_fill_the_outbox_and_the_mark_empties_it() {
    let mut db = team_of_three();
    let posted = db.apply(post(
        50,
        TOWN,
        1,
        None,
        "hi @bob @carol @alice @all @nobody",
        10,
    ));
    assert!(matches!(posted.result, Ok(Outcome::Posted(_))));
    let reader = db.engine.reader();
    assert_eq!(reader.notify_backlog().unwrap(), 1);
    let entries = reader.outbox_after(0, 10).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, posted.index);
    let mut mentioned = vec![id(2), id(3)];
    mentioned.sort();
    assert_eq!(
        entries[0].1,
        Some(OutboxEntry::Post {
            post_id: id(50),
            channel_id: id(TOWN),
            sender_id: id(1),
            root_id: Id::NONE,
            mentioned,
            channel_wide: ChannelWide::All,
            followers: Vec::new(),
        }),
        "the author is never a candidate"
    );
    drop(reader);

    // bob had a mention there: his view records a clear; a second view has nothing to clear.
    db.ok(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(TOWN),
        at: 20,
        collapsed_threads_supported: true,
    });
    let entries = db.engine.reader().outbox_after(posted.index, 10).unwrap();
    assert_eq!(
        entries[0].1,
        Some(OutboxEntry::Clear {
            user_id: id(2),
            channel_id: id(TOWN),
            root_id: Id::NONE,
        })
    );
    db.ok(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(TOWN),
        at: 21,
        collapsed_threads_supported: true,
    });
    assert_eq!(db.engine.reader().notify_backlog().unwrap(), 2);

    // A session with a device; the mark covers the post's entry and detaches the device.
    db.ok(Command::CreateSession {
        token: id(90),
        user_id: id(2),
        at: 1,
        expires_at: u64::MAX,
        device_id: String::new(),
    });
    db.ok(Command::AttachDevice {
        token: id(90),
        device_id: "apple:t".into(),
        expires_at: 0,
    });
    let session = db.engine.reader().session(id(90)).unwrap().unwrap();
    assert_eq!(session.device_id, "apple:t");
    let marked = db.ok(Command::NotificationsDispatched {
        through: posted.index,
        detach: vec![(id(90), "apple:t".into())],
        queue_emails: Vec::new(),
    });
    let Outcome::NotificationsDispatched {
        through,
        removed,
        detached,
    } = marked
    else {
        panic!("unexpected {marked:?}");
    };
    assert_eq!((through, removed, detached.len()), (posted.index, 1, 1));
    let reader = db.engine.reader();
    assert_eq!(reader.notify_mark().unwrap(), posted.index);
    assert_eq!(reader.notify_backlog().unwrap(), 1);
    assert_eq!(reader.session(id(90)).unwrap().unwrap().device_id, "");
    drop(reader);
    // A late mark from a deposed leader does not move it back.
    db.ok(Command::NotificationsDispatched {
        through: 1,
        detach: Vec::new(),
        queue_emails: Vec::new(),
    });
    assert_eq!(db.engine.reader().notify_mark().unwrap(), posted.index);
    // System messages record nothing.
    let mut system = post(51, TOWN, 1, None, "@bob joined", 30);
    if let Command::CreatePost { post_type, .. } = &mut system {
        *post_type = "system_join_channel".into();
    }
    db.ok(system);
    assert_eq!(db.engine.reader().notify_backlog().unwrap(), 1);
}

#[test]
fn attaching_a_device_ends_the_other_session_with_it() {
    let mut db = team_of_three();
    for token in [90, 91] {
        db.ok(Command::CreateSession {
            token: id(token),
            user_id: id(2),
            at: 1,
            expires_at: u64::MAX,
            device_id: String::new(),
        });
        db.ok(Command::AttachDevice {
            token: id(token),
            device_id: "android:same".into(),
            expires_at: 0,
        });
    }
    let reader = db.engine.reader();
    assert!(reader.session(id(90)).unwrap().is_none());
    assert_eq!(
        reader.session(id(91)).unwrap().unwrap().device_id,
        "android:same"
    );
}

#[test]
fn channel_notify_props_merge_and_are_checked() {
    let mut db = team_of_three();
    db.ok(Command::SetChannelNotifyProps {
        channel_id: id(TOWN),
        user_id: id(2),
        at: 5,
        props: props(&[("push", "all")]),
    });
    db.ok(Command::SetChannelNotifyProps {
        channel_id: id(TOWN),
        user_id: id(2),
        at: 6,
        props: props(&[("mark_unread", "mention")]),
    });
    let member = db
        .engine
        .reader()
        .channel_member(id(TOWN), id(2))
        .unwrap()
        .unwrap();
    assert_eq!(
        member.notify_props,
        props(&[("mark_unread", "mention"), ("push", "all")])
    );
    let refused = db.apply(Command::SetChannelNotifyProps {
        channel_id: id(TOWN),
        user_id: id(2),
        at: 7,
        props: props(&[("push", "loudly")]),
    });
    assert!(refused.result.is_err());
}

#[test]
fn batched_emails_queue_with_the_mark_once_and_leave_when_sent() {
    let mut db = team_of_three();
    let posted = db.apply(post(60, TOWN, 1, None, "@bob hi", 20));
    assert!(posted.result.is_ok());
    let entry = |user: u64, at: u64, post: u64| QueuedEmail {
        user_id: id(user),
        create_at: at,
        post_id: id(post),
        channel_id: id(TOWN),
    };
    let queue = vec![entry(2, 20, 60), entry(3, 20, 60), entry(2, 20, 60)];
    db.ok(Command::NotificationsDispatched {
        through: posted.index,
        detach: Vec::new(),
        queue_emails: queue,
    });
    let reader = db.engine.reader();
    assert_eq!(
        reader.email_queue_len().unwrap(),
        2,
        "an entry queued twice is stored once"
    );
    let queued = reader.queued_emails(None, 10).unwrap();
    assert_eq!(queued, vec![entry(2, 20, 60), entry(3, 20, 60)]);
    assert_eq!(
        reader.queued_emails(Some(&queued[0]), 10).unwrap(),
        vec![entry(3, 20, 60)],
        "pages start after the last entry"
    );
    drop(reader);
    // A deposed leader's late mark queues nothing.
    db.ok(Command::NotificationsDispatched {
        through: 1,
        detach: Vec::new(),
        queue_emails: vec![entry(1, 20, 60)],
    });
    assert_eq!(db.engine.reader().email_queue_len().unwrap(), 2);
    let sent = db.ok(Command::EmailsSent {
        entries: vec![entry(2, 20, 60), entry(1, 99, 99)],
    });
    assert!(
        matches!(sent, Outcome::EmailsSent { removed: 1 }),
        "{sent:?}"
    );
    let reader = db.engine.reader();
    assert_eq!(reader.email_queue_len().unwrap(), 1);
    assert_eq!(
        reader.queued_emails(None, 10).unwrap(),
        vec![entry(3, 20, 60)]
    );
}

/// A device attach restarts a session's lifetime (a session that never expires keeps never
/// expiring); the expired-session mark finds the sessions with a device in its window and only
/// moves forward.
#[test]
fn device_sessions_expire_and_the_expiry_mark_moves_forward() {
    let mut db = team_of_three();
    for (token, expires_at) in [(90, 1_000), (91, 0), (92, 1_000)] {
        db.ok(Command::CreateSession {
            token: id(token),
            user_id: id(2),
            at: 1,
            expires_at,
            device_id: String::new(),
        });
    }
    for (token, device) in [(90, "apple:a"), (91, "apple:b")] {
        db.ok(Command::AttachDevice {
            token: id(token),
            device_id: device.into(),
            expires_at: 5_000,
        });
    }
    let reader = db.engine.reader();
    assert_eq!(reader.session(id(90)).unwrap().unwrap().expires_at, 5_000);
    assert_eq!(reader.session(id(91)).unwrap().unwrap().expires_at, 0);
    // 92 expired at 1,000 but has no device; 91 never expires.
    let tokens = |after, through| -> Vec<Id> {
        let reader = db.engine.reader();
        let sessions = reader.expired_mobile_sessions(after, through).unwrap();
        sessions.iter().map(|s| s.token).collect()
    };
    assert_eq!(tokens(0, 4_999), Vec::<Id>::new());
    assert_eq!(tokens(0, 5_000), vec![id(90)]);
    assert_eq!(tokens(5_000, 9_000), Vec::<Id>::new());
    drop(reader);

    db.ok(Command::SessionExpiriesNotified { through: 6_000 });
    assert_eq!(db.engine.reader().session_expiry_mark().unwrap(), 6_000);
    db.ok(Command::SessionExpiriesNotified { through: 2_000 });
    assert_eq!(db.engine.reader().session_expiry_mark().unwrap(), 6_000);
}

/// The badge is Mattermost's unread count: a direct channel's unread messages, other channels'
/// unread mentions, nothing from an archived channel; with Collapsed Reply Threads, root posts
/// only, plus the unread mentions of followed threads.
#[test]
fn the_badge_counts_direct_messages_mentions_and_thread_mentions() {
    let mut db = team_of_three();
    let mut names = [id(1).to_base32(), id(2).to_base32()];
    names.sort();
    db.ok(Command::CreateDirectOrGroup {
        id: id(500),
        at: 5,
        channel_type: confab_storage::ChannelType::Direct,
        name: format!("{}__{}", names[0], names[1]),
        display_name: String::new(),
        members: vec![id(1), id(2)],
        creator_id: id(1),
    });
    db.ok(create_channel(
        600,
        100,
        "side",
        confab_storage::ChannelType::Open,
        1,
        6,
    ));
    db.ok(Command::AddChannelMember {
        channel_id: id(600),
        user_id: id(2),
        at: 7,
    });
    let badge = |db: &TestDb, crt: bool| db.engine.reader().badge(id(2), crt).unwrap();
    assert_eq!((badge(&db, false), badge(&db, true)), (0, 0));

    // Two DMs to bob, one a reply: 2 without CRT, 1 root with it.
    db.ok(post(50, 500, 1, None, "hi bob", 10));
    db.ok(post(51, 500, 1, Some(50), "still there?", 11));
    assert_eq!((badge(&db, false), badge(&db, true)), (2, 1));
    // A plain post in the town square is not counted; a mention is.
    db.ok(post(52, TOWN, 1, None, "morning", 12));
    db.ok(post(53, TOWN, 1, None, "@bob look", 13));
    assert_eq!((badge(&db, false), badge(&db, true)), (3, 2));
    // A mention in a reply of a thread bob follows: a thread mention with CRT.
    db.ok(post(54, TOWN, 2, None, "my question", 14));
    db.ok(post(55, TOWN, 1, Some(54), "@bob answered", 15));
    assert_eq!((badge(&db, false), badge(&db, true)), (4, 3));
    // A mention in a channel that is then archived stops counting.
    db.ok(post(56, 600, 1, None, "@bob side", 16));
    assert_eq!((badge(&db, false), badge(&db, true)), (5, 4));
    db.ok(Command::DeleteChannel {
        channel_id: id(600),
        at: 17,
    });
    assert_eq!((badge(&db, false), badge(&db, true)), (4, 3));
    // Reading the DM takes its messages off.
    db.ok(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(500),
        at: 18,
        collapsed_threads_supported: true,
    });
    assert_eq!((badge(&db, false), badge(&db, true)), (2, 2));
}
