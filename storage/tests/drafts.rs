//! Drafts on a real RocksDB: saved per channel and per thread, overwritten keeping their
//! creation time, an empty save deleting, refusals (non-members, deleted channels, oversize)
//! changing nothing, and a snapshot carrying them.

mod common;

use common::{create_channel, create_team, create_user, id, TestDb};
use confab_storage::drafts::Draft;
use confab_storage::{ChannelType, Command, CommandError, Engine, Outcome};
use std::io::Cursor;

const ALICE: u64 = 1;
const BOB: u64 = 2;
const TEAM: u64 = 10;
const DEV: u64 = 20;

fn draft(user: u64, channel: u64, root: Option<u64>, message: &str, at: u64) -> Draft {
    Draft {
        user_id: id(user),
        channel_id: id(channel),
        root_id: root.map(id),
        create_at: at,
        update_at: at,
        message: message.into(),
        props: "{}".into(),
        file_ids: Vec::new(),
        priority: String::new(),
    }
}

fn upsert(d: Draft) -> Command {
    Command::UpsertDraft { draft: d }
}

fn world() -> TestDb {
    let mut db = TestDb::new();
    db.ok(create_user(ALICE, "alice", 1));
    db.ok(create_user(BOB, "bob", 1));
    db.ok(create_team(TEAM, "alpha", ALICE, 2));
    db.ok(create_channel(
        DEV,
        TEAM,
        "dev",
        ChannelType::Open,
        ALICE,
        3,
    ));
    db
}

#[test]
fn drafts_per_channel_and_thread_are_saved_overwritten_and_deleted() {
    let mut db = world();
    match db.ok(upsert(draft(ALICE, DEV, None, "half a thought", 10))) {
        Outcome::DraftSaved { created, draft } => {
            assert!(created);
            assert_eq!(draft.message, "half a thought");
        }
        other => panic!("unexpected {other:?}"),
    }
    db.ok(upsert(draft(ALICE, DEV, Some(99), "a reply", 11)));
    match db.ok(upsert(draft(ALICE, DEV, None, "a whole thought", 20))) {
        Outcome::DraftSaved { created, draft } => {
            assert!(!created);
            assert_eq!((draft.create_at, draft.update_at), (10, 20));
        }
        other => panic!("unexpected {other:?}"),
    }
    let reader = db.engine.reader();
    let all = reader.drafts(id(ALICE)).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].message, "a whole thought",
        "the channel's box sorts first"
    );
    assert_eq!(all[1].root_id, Some(id(99)));
    assert!(reader.drafts(id(BOB)).unwrap().is_empty());
    drop(reader);

    // An empty save deletes; deleting what is not there is no error.
    match db.ok(upsert(draft(ALICE, DEV, Some(99), "", 30))) {
        Outcome::DraftDeleted(Some(gone)) => assert_eq!(gone.message, "a reply"),
        other => panic!("unexpected {other:?}"),
    }
    let delete = |root: Option<u64>| Command::DeleteDraft {
        user_id: id(ALICE),
        channel_id: id(DEV),
        root_id: root.map(id),
    };
    assert_eq!(db.ok(delete(Some(99))), Outcome::DraftDeleted(None));
    assert!(matches!(
        db.ok(delete(None)),
        Outcome::DraftDeleted(Some(_))
    ));
    assert!(db.engine.reader().drafts(id(ALICE)).unwrap().is_empty());
}

#[test]
fn refusals_change_nothing() {
    let mut db = world();
    // Bob is not in dev (he is not even in the team).
    let outsider = db.apply(upsert(draft(BOB, DEV, None, "hi", 5)));
    assert!(matches!(
        outsider.result,
        Err(CommandError::NotMember { .. })
    ));
    let long = db.apply(upsert(draft(ALICE, DEV, None, &"x".repeat(16_384), 5)));
    assert!(matches!(long.result, Err(CommandError::MessageTooLong(_))));
    let mut many = draft(ALICE, DEV, None, "files", 5);
    many.file_ids = (0..11).map(|n| n.to_string()).collect();
    assert!(matches!(
        db.apply(upsert(many)).result,
        Err(CommandError::Invalid(_))
    ));
    let nowhere = db.apply(upsert(draft(ALICE, 77, None, "hi", 5)));
    assert!(matches!(nowhere.result, Err(CommandError::NotFound { .. })));
    db.ok(Command::DeleteChannel {
        channel_id: id(DEV),
        at: 6,
    });
    let archived = db.apply(upsert(draft(ALICE, DEV, None, "hi", 7)));
    assert!(matches!(archived.result, Err(CommandError::Deleted(_))));
    assert!(db.engine.reader().drafts(id(ALICE)).unwrap().is_empty());
    assert!(db.engine.reader().drafts(id(BOB)).unwrap().is_empty());
}

#[test]
fn snapshot_carries_drafts() {
    let mut db = world();
    db.ok(upsert(draft(ALICE, DEV, None, "kept", 10)));
    let mut stream = Vec::new();
    db.engine.export_snapshot(&mut stream).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = Engine::open(dir.path()).unwrap();
    other.import_snapshot(Cursor::new(stream)).unwrap();
    assert_eq!(
        other.state_digest().unwrap(),
        db.engine.state_digest().unwrap()
    );
    let copied = other
        .reader()
        .draft(id(ALICE), id(DEV), None)
        .unwrap()
        .expect("copied");
    assert_eq!(copied.message, "kept");
}
