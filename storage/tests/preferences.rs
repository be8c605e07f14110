//! Preferences on a real RocksDB: save, overwrite, delete, refusals that change nothing, the
//! category and point reads, and a snapshot round trip that carries them to another engine.

mod common;

use common::{create_user, id, TestDb};
use confab_storage::{Command, CommandError, Engine, Outcome, Preference};
use std::io::Cursor;

fn save(user: u64, items: &[(&str, &str, &str)]) -> Command {
    Command::SavePreferences {
        user_id: id(user),
        preferences: items
            .iter()
            .map(|(c, n, v)| (c.to_string(), n.to_string(), v.to_string()))
            .collect(),
    }
}

fn delete(user: u64, items: &[(&str, &str)]) -> Command {
    Command::DeletePreferences {
        user_id: id(user),
        keys: items
            .iter()
            .map(|(c, n)| (c.to_string(), n.to_string()))
            .collect(),
    }
}

fn triples(preferences: &[Preference]) -> Vec<(String, String, String)> {
    preferences
        .iter()
        .map(|p| (p.category.clone(), p.name.clone(), p.value.clone()))
        .collect()
}

fn owned(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(c, n, v)| (c.to_string(), n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn save_overwrite_and_read_back() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    db.ok(create_user(2, "bob", 1));

    let outcome = db.ok(save(
        1,
        &[
            ("display_settings", "use_military_time", "false"),
            ("theme", "", r##"{"sidebarBg":"#145dbf"}"##),
            ("themes", "x", "other category sharing a prefix"),
        ],
    ));
    match outcome {
        Outcome::PreferencesSaved {
            user_id,
            preferences,
        } => {
            assert_eq!(user_id, id(1));
            assert_eq!(preferences.len(), 3);
            assert!(preferences.iter().all(|p| p.user_id == id(1)));
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    db.ok(save(
        2,
        &[("display_settings", "use_military_time", "true")],
    ));

    // Overwrite one value, add another: the rest stays.
    db.ok(save(
        1,
        &[
            ("display_settings", "use_military_time", "true"),
            ("display_settings", "name_format", "username"),
        ],
    ));

    let reader = db.engine.reader();
    assert_eq!(
        triples(&reader.preferences(id(1)).unwrap()),
        owned(&[
            ("theme", "", r##"{"sidebarBg":"#145dbf"}"##),
            ("themes", "x", "other category sharing a prefix"),
            ("display_settings", "name_format", "username"),
            ("display_settings", "use_military_time", "true"),
        ]),
        "all of alice's, by category length then category then name, nobody else's"
    );
    assert_eq!(
        triples(&reader.preferences_in_category(id(1), "theme").unwrap()),
        owned(&[("theme", "", r##"{"sidebarBg":"#145dbf"}"##)]),
        "a category scan does not reach a longer category with the same prefix"
    );
    assert_eq!(
        reader
            .preference(id(1), "display_settings", "use_military_time")
            .unwrap()
            .map(|p| p.value),
        Some("true".to_string())
    );
    assert_eq!(
        triples(&reader.preferences(id(2)).unwrap()),
        owned(&[("display_settings", "use_military_time", "true")])
    );
    assert!(reader.preference(id(1), "nope", "x").unwrap().is_none());
    assert!(reader
        .preferences_in_category(id(1), &"c".repeat(40))
        .unwrap()
        .is_empty());
}

#[test]
fn delete_reports_what_existed() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    db.ok(save(
        1,
        &[
            ("flagged_post", "p1", "true"),
            ("flagged_post", "p2", "true"),
        ],
    ));
    let outcome = db.ok(delete(
        1,
        &[("flagged_post", "p1"), ("flagged_post", "absent")],
    ));
    match outcome {
        Outcome::PreferencesDeleted { preferences, .. } => {
            assert_eq!(
                triples(&preferences),
                owned(&[("flagged_post", "p1", "true")])
            );
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    let reader = db.engine.reader();
    assert_eq!(
        triples(&reader.preferences(id(1)).unwrap()),
        owned(&[("flagged_post", "p2", "true")])
    );
}

#[test]
fn invalid_batches_change_nothing() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    for command in [
        // One bad preference refuses the whole batch, including the good one before it.
        save(1, &[("display_settings", "a", "b"), ("", "name", "v")]),
        save(1, &[("theme", "", "not json")]),
        save(1, &[("sidebar_settings", "limit_visible_dms_gms", "0")]),
        save(1, &[(&"c".repeat(33), "n", "v")]),
        save(1, &[("c", &"n".repeat(33), "v")]),
        save(1, &[("c", "n", &"v".repeat(20_001))]),
        delete(1, &[("", "n")]),
    ] {
        let applied = db.apply(command.clone());
        assert!(
            matches!(applied.result, Err(CommandError::Invalid(_))),
            "{command:?}: {:?}",
            applied.result
        );
    }
    let unknown = db.apply(save(9, &[("c", "n", "v")]));
    assert!(matches!(unknown.result, Err(CommandError::NotFound { .. })));
    let too_many: Vec<(String, String, String)> = (0..1_001)
        .map(|n| ("c".to_string(), n.to_string(), "v".to_string()))
        .collect();
    let applied = db.apply(Command::SavePreferences {
        user_id: id(1),
        preferences: too_many,
    });
    assert!(matches!(applied.result, Err(CommandError::Invalid(_))));
    // Nothing was written: not even the valid preference of the first batch.
    assert!(db.engine.reader().preferences(id(1)).unwrap().is_empty());
}

#[test]
fn replay_of_an_applied_index_is_a_no_op() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    let command = save(1, &[("c", "n", "first")]);
    let index = db.next_index;
    db.ok(command);
    let later = save(1, &[("c", "n", "second")]);
    let replay = db.engine.apply(index, &later).unwrap();
    assert_eq!(replay.result, Ok(Outcome::AlreadyApplied));
    let value = db.engine.reader().preference(id(1), "c", "n").unwrap();
    assert_eq!(value.map(|p| p.value), Some("first".to_string()));
}

#[test]
fn snapshot_round_trip_carries_preferences() {
    let mut db = TestDb::new();
    db.ok(create_user(1, "alice", 1));
    db.ok(save(
        1,
        &[
            ("display_settings", "use_military_time", "true"),
            ("flagged_post", "abc", "true"),
            ("tutorial_step", "", "999"),
        ],
    ));
    let mut stream = Vec::new();
    let summary = db.engine.export_snapshot(&mut stream).unwrap();
    assert!(summary.entries > 0);

    let dir = tempfile::tempdir().unwrap();
    let other = Engine::open(dir.path()).unwrap();
    other.import_snapshot(Cursor::new(stream)).unwrap();
    assert_eq!(
        other.state_digest().unwrap(),
        db.engine.state_digest().unwrap(),
        "byte-identical state"
    );
    assert_eq!(
        triples(&other.reader().preferences(id(1)).unwrap()),
        triples(&db.engine.reader().preferences(id(1)).unwrap())
    );
    assert_eq!(other.reader().preferences(id(1)).unwrap().len(), 3);
}
