//! Replicated statuses on a real RocksDB: manual statuses set and cleared, timed DND read as
//! ended past its end and committed ended (restoring the manual status it replaced), the due
//! queue, custom statuses on the user with their recent list and their expiry, refusals, and a snapshot round
//! trip.

mod common;

use common::{create_user, id, TestDb};
use confab_storage::{Command, CommandError, CustomStatus, Engine, Outcome};
use std::io::Cursor;

fn set(user: u64, status: &str, dnd_end_time: u64) -> Command {
    Command::SetStatus {
        user_id: id(user),
        at: 1_000,
        status: status.into(),
        dnd_end_time,
    }
}

fn expire(user: u64, at: u64) -> Command {
    Command::ExpireDnd {
        user_id: id(user),
        at,
        derived: "away".into(),
    }
}

fn custom(text: &str) -> CustomStatus {
    CustomStatus {
        emoji: "taco".into(),
        text: text.into(),
        duration: String::new(),
        expires_at: String::new(),
    }
}

fn changed(outcome: Outcome) -> String {
    match outcome {
        Outcome::StatusChanged { status, .. } => status,
        other => panic!("not a status change: {other:?}"),
    }
}

#[test]
fn manual_statuses_and_timed_dnd() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    assert_eq!(db.engine.reader().manual_status(id(1)).unwrap(), None);

    assert_eq!(changed(db.ok(set(1, "away", 0))), "away");
    let away = db.engine.reader().manual_status(id(1)).unwrap().unwrap();
    assert_eq!((away.status.as_str(), away.dnd_end_time), ("away", 0));

    // DND ending at 100 s replaces the manual away, and remembers it.
    assert_eq!(changed(db.ok(set(1, "dnd", 100))), "dnd");
    let dnd = db.engine.reader().manual_status(id(1)).unwrap().unwrap();
    assert_eq!(
        (
            dnd.status.as_str(),
            dnd.dnd_end_time,
            dnd.prev_status.as_str()
        ),
        ("dnd", 100, "away")
    );
    assert!(dnd.in_force(99_999) && !dnd.in_force(100_000));
    assert!(db.engine.reader().due_dnd(99, 10).unwrap().is_empty());
    assert_eq!(db.engine.reader().due_dnd(100, 10).unwrap(), vec![id(1)]);

    // Not due yet: nothing changes.
    assert!(matches!(
        db.ok(expire(1, 99_000)),
        Outcome::StatusUnchanged { .. }
    ));
    // Due: the manual away comes back, the queue entry goes.
    assert_eq!(changed(db.ok(expire(1, 100_000))), "away");
    let back = db.engine.reader().manual_status(id(1)).unwrap().unwrap();
    assert_eq!((back.status.as_str(), back.dnd_end_time), ("away", 0));
    assert!(db
        .engine
        .reader()
        .due_dnd(u64::MAX / 2, 10)
        .unwrap()
        .is_empty());
    // A second end is a no-op.
    assert!(matches!(
        db.ok(expire(1, 200_000)),
        Outcome::StatusUnchanged { .. }
    ));

    // Online clears; a DND over a derived status ends to the derived one.
    assert_eq!(changed(db.ok(set(1, "online", 0))), "online");
    assert_eq!(db.engine.reader().manual_status(id(1)).unwrap(), None);
    db.ok(set(1, "dnd", 50));
    assert_eq!(changed(db.ok(expire(1, 50_000))), "away");
    assert_eq!(db.engine.reader().manual_status(id(1)).unwrap(), None);
    // Replacing a timed DND drops its queue entry.
    db.ok(set(1, "dnd", 70));
    db.ok(set(1, "offline", 0));
    assert!(db.engine.reader().due_dnd(1_000, 10).unwrap().is_empty());
    let listed = db.engine.reader().manual_statuses(10).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.status, "offline");

    // Refusals change nothing.
    for command in [
        set(1, "sleeping", 0),
        set(9, "away", 0),
        Command::StatusNotice {
            user_id: id(1),
            status: "dnd".into(),
        },
    ] {
        let applied = db.apply(command.clone());
        assert!(applied.result.is_err(), "{command:?}");
    }
    assert_eq!(
        changed(db.ok(Command::StatusNotice {
            user_id: id(1),
            status: "away".into()
        })),
        "away"
    );
    let still = db.engine.reader().manual_status(id(1)).unwrap().unwrap();
    assert_eq!(still.status, "offline", "a notice changes no state");
}

#[test]
fn custom_statuses_live_on_the_user_with_a_recent_list() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    for n in 0..7 {
        let outcome = db.ok(Command::SetCustomStatus {
            user_id: id(1),
            at: 10 + n,
            custom_status: Some(custom(&format!("s{}", n % 6))),
            expires_at_ms: 0,
        });
        let Outcome::UserUpdated { user, revoked } = outcome else {
            panic!("not a user update");
        };
        assert!(revoked.is_empty());
        let stored: CustomStatus = serde_json::from_str(&user.custom_status).unwrap();
        assert_eq!(stored.text, format!("s{}", n % 6));
    }
    let recent = db
        .engine
        .reader()
        .preference(id(1), "custom_status", "recent_custom_statuses")
        .unwrap()
        .unwrap();
    let list: Vec<CustomStatus> = serde_json::from_str(&recent.value).unwrap();
    let texts: Vec<&str> = list.iter().map(|c| c.text.as_str()).collect();
    // s0 was set again last: first, and not twice; five at most.
    assert_eq!(texts, ["s0", "s5", "s4", "s3", "s2"]);

    db.ok(Command::RemoveRecentCustomStatus {
        user_id: id(1),
        custom_status: custom("s4"),
    });
    let refused = db.apply(Command::RemoveRecentCustomStatus {
        user_id: id(1),
        custom_status: custom("s4"),
    });
    assert!(matches!(refused.result, Err(CommandError::Invalid(_))));
    let empty = db.apply(Command::SetCustomStatus {
        user_id: id(1),
        at: 99,
        custom_status: Some(CustomStatus::default()),
        expires_at_ms: 0,
    });
    assert!(empty.result.is_err(), "neither emoji nor text");

    db.ok(Command::SetCustomStatus {
        user_id: id(1),
        at: 100,
        custom_status: None,
        expires_at_ms: 0,
    });
    let user = db.engine.reader().user(id(1)).unwrap().unwrap();
    assert_eq!(user.custom_status, "");
}

#[test]
fn an_expiring_custom_status_is_queued_and_cleared_when_due() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    db.ok(create_user(2, "bob", 1));
    let timed = |user: u64, text: &str, expires_at_ms: u64| Command::SetCustomStatus {
        user_id: id(user),
        at: 10,
        custom_status: Some(custom(text)),
        expires_at_ms,
    };
    let expire = |user: u64, at: u64| Command::ExpireCustomStatus {
        user_id: id(user),
        at,
    };
    db.ok(timed(1, "lunch", 5_000));
    db.ok(timed(2, "away all week", 9_000));
    assert!(db
        .engine
        .reader()
        .due_custom_statuses(4_999, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        db.engine.reader().due_custom_statuses(9_000, 10).unwrap(),
        [id(1), id(2)]
    );
    assert_eq!(
        db.engine.reader().due_custom_statuses(9_000, 1).unwrap(),
        [id(1)],
        "bounded"
    );

    // Set again with a later expiry: the old queue entry is gone, so it is not due early.
    db.ok(timed(1, "long lunch", 7_000));
    assert_eq!(
        db.engine.reader().due_custom_statuses(6_000, 10).unwrap(),
        Vec::<_>::new()
    );
    let early = db.ok(expire(1, 6_000));
    assert!(
        matches!(early, Outcome::StatusUnchanged { .. }),
        "not due yet"
    );
    assert_ne!(
        db.engine
            .reader()
            .user(id(1))
            .unwrap()
            .unwrap()
            .custom_status,
        ""
    );

    let cleared = db.ok(expire(1, 7_000));
    let Outcome::UserUpdated { user, .. } = cleared else {
        panic!("the expiry clears the status on the user");
    };
    assert_eq!(user.custom_status, "");
    assert_eq!(
        db.engine
            .reader()
            .due_custom_statuses(u64::MAX - 1, 10)
            .unwrap(),
        [id(2)]
    );
    let again = db.ok(expire(1, 8_000));
    assert!(
        matches!(again, Outcome::StatusUnchanged { .. }),
        "once only"
    );

    // Cleared by hand, or replaced by one that never expires: nothing left to expire.
    db.ok(Command::SetCustomStatus {
        user_id: id(2),
        at: 20,
        custom_status: None,
        expires_at_ms: 9_000,
    });
    assert!(db
        .engine
        .reader()
        .due_custom_statuses(u64::MAX - 1, 10)
        .unwrap()
        .is_empty());
    db.ok(timed(2, "forever", 0));
    assert!(db
        .engine
        .reader()
        .due_custom_statuses(u64::MAX - 1, 10)
        .unwrap()
        .is_empty());
    let kept = db.ok(expire(2, 100_000));
    assert!(matches!(kept, Outcome::StatusUnchanged { .. }));
}

#[test]
fn snapshot_round_trip_carries_statuses() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    db.ok(create_user(2, "bob", 1));
    db.ok(set(1, "dnd", 500));
    db.ok(set(2, "away", 0));
    db.ok(Command::SetCustomStatus {
        user_id: id(2),
        at: 5,
        custom_status: Some(custom("lunch")),
        expires_at_ms: 0,
    });
    let mut stream = Vec::new();
    db.engine.export_snapshot(&mut stream).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = Engine::open(dir.path()).unwrap();
    other.import_snapshot(Cursor::new(stream)).unwrap();
    assert_eq!(
        other.state_digest().unwrap(),
        db.engine.state_digest().unwrap()
    );
    assert_eq!(other.reader().due_dnd(500, 10).unwrap(), vec![id(1)]);
    assert_eq!(
        other.reader().manual_status(id(2)).unwrap().unwrap().status,
        "away"
    );
}
