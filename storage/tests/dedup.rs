//! Idempotent posts: a create-post retry (same author, same `pending_post_id`) applied after the
//! first attempt makes no second post, moves no counter, and names the first post — through
//! batches, reopens and snapshots, until the window has passed.

mod common;

use common::{create_channel, create_team, create_user, id, post, TestDb};
use confab_storage::dedup::WINDOW_MS;
use confab_storage::{
    ChannelType, Command, CommandError, Engine, Id, Outcome, Post, PostsQuery, ThreadQuery,
};
use std::io::{Cursor, Seek, SeekFrom};

const CHANNEL: u64 = 200;
const TEAM: u64 = 100;
const ALICE: u64 = 1;
const BOB: u64 = 2;

/// Alice and Bob in one open channel.
fn setup() -> TestDb {
    let mut db = TestDb::new();
    db.ok(create_user(ALICE, "alice", 1));
    db.ok(create_user(BOB, "bob", 1));
    db.ok(create_team(TEAM, "team", ALICE, 2));
    db.ok(Command::AddTeamMember {
        team_id: id(TEAM),
        user_id: id(BOB),
        at: 3,
    });
    db.ok(create_channel(
        CHANNEL,
        TEAM,
        "general",
        ChannelType::Open,
        ALICE,
        4,
    ));
    db.ok(Command::AddChannelMember {
        channel_id: id(CHANNEL),
        user_id: id(BOB),
        at: 5,
    });
    db
}

/// A post by `user` carrying `pending`, mentioning Bob so mention counters have a reason to move.
fn pending_post(n: u64, user: u64, root: Option<u64>, pending: &str, at: u64) -> Command {
    let mut command = post(n, CHANNEL, user, root, "hello @bob", at);
    if let Command::CreatePost {
        pending_post_id, ..
    } = &mut command
    {
        *pending_post_id = pending.to_string();
    }
    command
}

fn posted(outcome: Outcome) -> Post {
    match outcome {
        Outcome::Posted(posted) => posted.post,
        other => panic!("expected a new post, got {other:?}"),
    }
}

fn existed(outcome: Outcome) -> Post {
    match outcome {
        Outcome::PostExisted { post, .. } => post,
        other => panic!("expected the original post, got {other:?}"),
    }
}

/// Ids of the channel's live posts, newest first.
fn channel_post_ids(engine: &Engine) -> Vec<Id> {
    engine
        .reader()
        .channel_posts(
            id(CHANNEL),
            PostsQuery::Page {
                page: 0,
                per_page: 100,
            },
            false,
        )
        .expect("channel posts")
        .order
}

/// What Bob sees of the channel and what the channel counts.
fn counters(engine: &Engine) -> (u64, u64, u64) {
    let reader = engine.reader();
    let unread = reader
        .channel_unread(id(BOB), id(CHANNEL))
        .expect("unread")
        .expect("bob is a member");
    let channel = reader
        .channel(id(CHANNEL))
        .expect("channel")
        .expect("exists");
    (
        channel.total_msg_count,
        unread.msg_count,
        unread.mention_count,
    )
}

#[test]
fn a_retry_makes_no_second_post_and_names_the_first() {
    let mut db = setup();
    let first = posted(db.ok(pending_post(1000, ALICE, None, "alice:1", 100)));
    let before = counters(&db.engine);
    // A twin that logs an entry without a command at the retry's index: the same state but for
    // what the retry itself would write.
    let mut twin = setup();
    posted(twin.ok(pending_post(1000, ALICE, None, "alice:1", 100)));
    twin.engine
        .apply_batch(&[(twin.next_index, None)], None)
        .expect("blank entry");

    let retry = existed(db.ok(pending_post(1001, ALICE, None, "alice:1", 150)));
    assert_eq!(
        retry, first,
        "the retry answers the original post, unchanged"
    );
    assert_eq!(retry.pending_post_id, "alice:1");
    assert_eq!(retry.create_at, 100);
    assert_eq!(db.engine.reader().post(id(1001)).expect("read"), None);
    assert_eq!(channel_post_ids(&db.engine), vec![id(1000)]);
    assert_eq!(counters(&db.engine), before, "no counter moved");
    assert_eq!(before, (1, 1, 1));
    assert_eq!(
        db.engine.state_digest().expect("digest"),
        twin.engine.state_digest().expect("digest"),
        "the retry changed no key but the applied index"
    );
}

#[test]
fn a_reply_retry_moves_no_thread_count() {
    let mut db = setup();
    posted(db.ok(post(1000, CHANNEL, BOB, None, "root", 100)));
    posted(db.ok(pending_post(1001, ALICE, Some(1000), "alice:2", 110)));
    let totals = |engine: &Engine| {
        let reader = engine.reader();
        let thread = reader.thread(id(1000)).expect("thread").expect("exists");
        let bob = reader
            .thread_totals(id(BOB), id(TEAM))
            .expect("thread totals");
        (
            thread.reply_count,
            bob.total_unread_threads,
            bob.total_unread_mentions,
        )
    };
    let before = totals(&db.engine);
    assert_eq!(before, (1, 1, 1));
    let bob_threads = |engine: &Engine| {
        engine
            .reader()
            .user_threads(
                id(BOB),
                id(TEAM),
                &ThreadQuery {
                    per_page: 10,
                    ..ThreadQuery::default()
                },
            )
            .expect("threads")
            .threads
            .into_iter()
            .map(|item| (item.thread.root_id, item.read.unread_replies))
            .collect::<Vec<_>>()
    };
    let threads_before = bob_threads(&db.engine);

    let outcome = db.ok(pending_post(1002, ALICE, Some(1000), "alice:2", 120));
    let Outcome::PostExisted { post, thread } = outcome else {
        panic!("expected the original reply, got {outcome:?}");
    };
    assert_eq!(post.id, id(1001));
    assert_eq!(thread.map(|t| t.reply_count), Some(1));
    assert_eq!(totals(&db.engine), before);
    assert_eq!(bob_threads(&db.engine), threads_before);
    assert_eq!(channel_post_ids(&db.engine), vec![id(1001), id(1000)]);
}

#[test]
fn two_retries_in_one_batch_make_one_post() {
    let db = setup();
    let first = pending_post(1000, ALICE, None, "alice:3", 100);
    let second = pending_post(1001, ALICE, None, "alice:3", 101);
    let index = db.next_index;
    let applied = db
        .engine
        .apply_batch(&[(index, Some(&first)), (index + 1, Some(&second))], None)
        .expect("apply");
    let first = posted(applied[0].result.clone().expect("first posts"));
    let second = existed(applied[1].result.clone().expect("second finds it"));
    assert_eq!(first, second);
    assert_eq!(channel_post_ids(&db.engine), vec![id(1000)]);
}

#[test]
fn the_same_pending_id_from_two_users_makes_two_posts() {
    let mut db = setup();
    posted(db.ok(pending_post(1000, ALICE, None, "shared", 100)));
    posted(db.ok(pending_post(1001, BOB, None, "shared", 101)));
    assert_eq!(channel_post_ids(&db.engine), vec![id(1001), id(1000)]);
}

#[test]
fn posts_without_a_pending_id_never_dedup() {
    let mut db = setup();
    posted(db.ok(pending_post(1000, ALICE, None, "", 100)));
    posted(db.ok(pending_post(1001, ALICE, None, "", 101)));
    assert_eq!(channel_post_ids(&db.engine).len(), 2);
}

#[test]
fn the_raft_level_duplicate_of_a_command_still_makes_one_post() {
    let mut db = setup();
    let command = pending_post(1000, ALICE, None, "alice:4", 100);
    let first = posted(db.ok(command.clone()));
    assert_eq!(existed(db.ok(command)), first);
    // Without a pending id the duplicate is refused by its post id, as before.
    let plain = post(1001, CHANNEL, ALICE, None, "plain", 200);
    posted(db.ok(plain.clone()));
    assert!(matches!(
        db.apply(plain).result,
        Err(CommandError::IdExists(_))
    ));
    assert_eq!(channel_post_ids(&db.engine).len(), 2);
}

#[test]
fn dedup_survives_a_reopen() {
    let mut db = setup();
    let first = posted(db.ok(pending_post(1000, ALICE, None, "alice:5", 100)));
    let path = db.dir.path().to_path_buf();
    let TestDb {
        engine,
        dir,
        next_index,
    } = db;
    drop(engine);
    let engine = Engine::open(&path).expect("reopen");
    let mut db = TestDb {
        engine,
        dir,
        next_index,
    };
    assert_eq!(
        existed(db.ok(pending_post(1001, ALICE, None, "alice:5", 200))),
        first
    );
    assert_eq!(channel_post_ids(&db.engine), vec![id(1000)]);
}

#[test]
fn dedup_travels_in_a_snapshot() {
    let mut source = setup();
    let first = posted(source.ok(pending_post(1000, ALICE, None, "alice:6", 100)));
    let mut stream = Cursor::new(Vec::new());
    source.engine.export_snapshot(&mut stream).expect("export");
    stream.seek(SeekFrom::Start(0)).expect("rewind");

    let mut target = TestDb::new();
    target.engine.import_snapshot(&mut stream).expect("import");
    target.next_index = source.next_index;
    assert_eq!(
        target.engine.state_digest().expect("digest"),
        source.engine.state_digest().expect("digest")
    );
    assert_eq!(
        existed(target.ok(pending_post(1001, ALICE, None, "alice:6", 200))),
        first
    );
    assert_eq!(channel_post_ids(&target.engine), vec![id(1000)]);
}

#[test]
fn an_entry_older_than_the_window_no_longer_dedups() {
    let mut db = setup();
    posted(db.ok(pending_post(1000, ALICE, None, "alice:7", 100)));
    // One millisecond inside the window: still the original.
    existed(db.ok(pending_post(
        1001,
        ALICE,
        None,
        "alice:7",
        100 + WINDOW_MS - 1,
    )));
    // At the window's end the pending id is free again, and the new post takes it over.
    let later = posted(db.ok(pending_post(1002, ALICE, None, "alice:7", 100 + WINDOW_MS)));
    assert_eq!(later.id, id(1002));
    assert_eq!(
        existed(db.ok(pending_post(1003, ALICE, None, "alice:7", 101 + WINDOW_MS))),
        later
    );
    assert_eq!(channel_post_ids(&db.engine), vec![id(1002), id(1000)]);
}

#[test]
fn an_absurdly_long_pending_id_is_refused() {
    let mut db = setup();
    let long = "x".repeat(65);
    assert!(matches!(
        db.apply(pending_post(1000, ALICE, None, &long, 100)).result,
        Err(CommandError::Invalid(_))
    ));
    posted(db.ok(pending_post(1001, ALICE, None, &"x".repeat(64), 100)));
}

#[test]
fn a_retry_of_a_deleted_post_is_refused_not_posted_again() {
    let mut db = setup();
    posted(db.ok(pending_post(1000, ALICE, None, "alice:8", 100)));
    db.ok(Command::DeletePost {
        post_id: id(1000),
        at: 150,
    });
    assert!(matches!(
        db.apply(pending_post(1001, ALICE, None, "alice:8", 200))
            .result,
        Err(CommandError::Deleted(_))
    ));
    assert_eq!(db.engine.reader().post(id(1001)).expect("read"), None);
    assert!(channel_post_ids(&db.engine).is_empty());
}
