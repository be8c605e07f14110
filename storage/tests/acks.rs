//! Post priority on a real RocksDB. Acknowledgements: given once (a repeat keeps the first time),
//! counted on the post, listed, taken back only within five minutes, refused on missing posts.
//! Urgent posts: unread mentions in their threads count as urgent in the thread totals.

mod common;

use common::{create_team, create_user, id, post, TestDb};
use confab_storage::acks::UNDO_WINDOW_MS;
use confab_storage::{Command, CommandError, Outcome, ThreadQuery};

const ALICE: u64 = 1;
const BOB: u64 = 2;
const TEAM: u64 = 10;
const TOWN: u64 = 11;
const POST: u64 = 100;

fn world() -> TestDb {
    let mut db = TestDb::new();
    db.ok(create_user(ALICE, "alice", 1));
    db.ok(create_user(BOB, "bob", 1));
    db.ok(create_team(TEAM, "alpha", ALICE, 2));
    db.ok(post(POST, TOWN, ALICE, None, "please ack", 10));
    db
}

fn ack(user: u64, at: u64) -> Command {
    Command::AckPost {
        post_id: id(POST),
        user_id: id(user),
        at,
    }
}

fn unack(user: u64, at: u64) -> Command {
    Command::UnackPost {
        post_id: id(POST),
        user_id: id(user),
        at,
    }
}

fn refusal(db: &mut TestDb, command: Command) -> CommandError {
    match db.apply(command).result {
        Err(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn acknowledgements_are_kept_counted_and_taken_back_in_time() {
    let mut db = world();
    match db.ok(ack(BOB, 1_000)) {
        Outcome::AckChanged { ack, added, .. } => {
            assert!(added);
            assert_eq!(ack.acknowledged_at, 1_000);
        }
        other => panic!("unexpected {other:?}"),
    }
    // A repeat keeps the first time and does not count twice.
    match db.ok(ack(BOB, 2_000)) {
        Outcome::AckChanged { ack, .. } => assert_eq!(ack.acknowledged_at, 1_000),
        other => panic!("unexpected {other:?}"),
    }
    db.ok(ack(ALICE, 3_000));
    let reader = db.engine.reader();
    let post = reader.post(id(POST)).unwrap().unwrap();
    assert_eq!(post.ack_count, 2);
    assert_eq!(post.update_at, 3_000, "an acknowledgement touches the post");
    let acks = reader.acknowledgements(id(POST)).unwrap();
    assert_eq!(
        acks.iter()
            .map(|a| (a.user_id, a.acknowledged_at))
            .collect::<Vec<_>>(),
        [(id(ALICE), 3_000), (id(BOB), 1_000)]
    );
    drop(reader);

    // Past five minutes it stays; within them it goes.
    assert!(matches!(
        refusal(&mut db, unack(BOB, 1_000 + UNDO_WINDOW_MS + 1)),
        CommandError::Forbidden(_)
    ));
    match db.ok(unack(ALICE, 3_000 + UNDO_WINDOW_MS)) {
        Outcome::AckChanged { added, .. } => assert!(!added),
        other => panic!("unexpected {other:?}"),
    }
    let reader = db.engine.reader();
    assert_eq!(reader.post(id(POST)).unwrap().unwrap().ack_count, 1);
    assert_eq!(reader.acknowledgements(id(POST)).unwrap().len(), 1);
    drop(reader);
    assert!(matches!(
        refusal(&mut db, unack(ALICE, 4_000)),
        CommandError::NotFound { .. }
    ));
    assert!(matches!(
        refusal(
            &mut db,
            Command::AckPost {
                post_id: id(999),
                user_id: id(BOB),
                at: 5_000
            }
        ),
        CommandError::NotFound { .. }
    ));
}

#[test]
fn mentions_in_threads_of_urgent_posts_count_as_urgent() {
    let mut db = world();
    let mut urgent = post(200, TOWN, ALICE, None, "all hands", 20);
    if let Command::CreatePost { priority, .. } = &mut urgent {
        *priority = "urgent".into();
    }
    db.ok(urgent);
    db.ok(Command::AddTeamMember {
        team_id: id(TEAM),
        user_id: id(BOB),
        at: 20,
    });
    // Bob follows both threads by replying; alice mentions him in each.
    db.ok(post(201, TOWN, BOB, Some(200), "on it", 21));
    db.ok(post(101, TOWN, BOB, Some(POST), "me too", 22));
    db.ok(post(202, TOWN, ALICE, Some(200), "thanks @bob", 23));
    db.ok(post(102, TOWN, ALICE, Some(POST), "and @bob here", 24));
    let list = db
        .engine
        .reader()
        .user_threads(
            id(BOB),
            id(TEAM),
            &ThreadQuery {
                since: None,
                unread_only: false,
                include_deleted: false,
                before: None,
                after: None,
                per_page: 10,
            },
        )
        .unwrap();
    assert_eq!(list.total, 2);
    assert_eq!(list.total_unread_mentions, 2);
    assert_eq!(list.total_unread_urgent_mentions, 1);
    let totals = db.engine.reader().thread_totals(id(BOB), id(TEAM)).unwrap();
    assert_eq!(totals.total_unread_urgent_mentions, 1);
    assert!(db.engine.reader().thread(id(200)).unwrap().unwrap().urgent);
    assert!(!db.engine.reader().thread(id(POST)).unwrap().unwrap().urgent);
}
