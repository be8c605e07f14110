//! Acknowledgements on a real RocksDB: given once (a repeat keeps the first time), counted on the
//! post, listed, taken back only within five minutes, and refused on missing posts.

mod common;

use common::{create_team, create_user, id, post, TestDb};
use confab_storage::acks::UNDO_WINDOW_MS;
use confab_storage::{Command, CommandError, Outcome};

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
