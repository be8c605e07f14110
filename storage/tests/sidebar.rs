//! Sidebar layouts on a real RocksDB: a stored layout with a custom category, the favourites
//! mirrored into `favorite_channel` preferences both ways, channels the user is not in dropped,
//! refusals that change nothing, what each change reports, and a snapshot that carries it.

mod common;

use common::{create_channel, create_team, create_user, id, TestDb};
use confab_storage::sidebar::{CategoryKind, SidebarCategory, SidebarChange, Sorting};
use confab_storage::{ChannelType, Command, CommandError, Engine, Outcome};
use std::io::Cursor;

const ALICE: u64 = 1;
const BOB: u64 = 2;
const TEAM: u64 = 10; // town square 11, off-topic 12
const DEV: u64 = 20;
const SECRET: u64 = 21; // Bob's private channel: Alice is not in it
const DM: u64 = 30;

fn world() -> TestDb {
    let mut db = TestDb::new();
    db.ok(create_user(ALICE, "alice", 1));
    db.ok(create_user(BOB, "bob", 1));
    db.ok(create_team(TEAM, "alpha", ALICE, 2));
    db.ok(Command::AddTeamMember {
        team_id: id(TEAM),
        user_id: id(BOB),
        at: 3,
    });
    db.ok(create_channel(
        DEV,
        TEAM,
        "dev",
        ChannelType::Open,
        ALICE,
        4,
    ));
    db.ok(create_channel(
        SECRET,
        TEAM,
        "secret",
        ChannelType::Private,
        BOB,
        4,
    ));
    db.ok(Command::CreateDirectOrGroup {
        id: id(DM),
        at: 5,
        channel_type: ChannelType::Direct,
        name: "dm".into(),
        display_name: String::new(),
        members: vec![id(ALICE), id(BOB)],
        creator_id: id(ALICE),
    });
    db
}

fn category(name: &str, kind: CategoryKind, sorting: Sorting, channels: &[u64]) -> SidebarCategory {
    SidebarCategory {
        id: format!("{}_{name}", kind.as_str()),
        kind,
        display_name: name.into(),
        sorting,
        muted: false,
        collapsed: false,
        channel_ids: channels.iter().map(|&n| id(n)).collect(),
    }
}

fn set(user: u64, categories: Vec<SidebarCategory>) -> Command {
    Command::SetSidebar {
        user_id: id(user),
        team_id: id(TEAM),
        categories,
    }
}

fn change(outcome: Outcome) -> SidebarChange {
    match outcome {
        Outcome::SidebarChanged(change) => *change,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn favorite_names(db: &TestDb, user: u64) -> Vec<String> {
    db.engine
        .reader()
        .preferences_in_category(id(user), "favorite_channel")
        .unwrap()
        .into_iter()
        .filter(|p| p.value == "true")
        .map(|p| p.name)
        .collect()
}

fn name(n: u64) -> String {
    id(n).to_base32()
}

#[test]
fn a_layout_is_stored_with_favorites_mirrored_into_preferences() {
    let mut db = world();
    assert!(db
        .engine
        .reader()
        .sidebar(id(ALICE), id(TEAM))
        .unwrap()
        .is_none());

    // A custom category on top; dev and the DM in Favorites; Bob's private channel (Alice is
    // not in it) is dropped rather than stored.
    let first = change(db.ok(set(
        ALICE,
        vec![
            category("Work", CategoryKind::Custom, Sorting::Manual, &[12]),
            category(
                "Favorites",
                CategoryKind::Favorites,
                Sorting::Default,
                &[DEV, DM],
            ),
            category(
                "Channels",
                CategoryKind::Channels,
                Sorting::Alpha,
                &[11, SECRET],
            ),
            category(
                "Direct Messages",
                CategoryKind::DirectMessages,
                Sorting::Recent,
                &[],
            ),
        ],
    )));
    assert_eq!(first.created, ["custom_Work"]);
    assert!(first.deleted.is_empty());
    assert!(first.order_changed);
    let saved: Vec<&str> = first
        .favorites_saved
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(saved, [name(DEV), name(DM)]);
    assert!(first.favorites_deleted.is_empty());
    let stored = db
        .engine
        .reader()
        .sidebar(id(ALICE), id(TEAM))
        .unwrap()
        .expect("stored");
    assert_eq!(stored.categories.len(), 4);
    assert_eq!(
        stored.categories[2].channel_ids,
        vec![id(11)],
        "secret dropped"
    );
    assert_eq!(stored.categories[0].sorting, Sorting::Manual);
    let mut favorites = favorite_names(&db, ALICE);
    favorites.sort();
    let mut expected = vec![name(DEV), name(DM)];
    expected.sort();
    assert_eq!(favorites, expected);

    // dev leaves Favorites for the custom category, the categories swap places, the custom one
    // is renamed: its preference is deleted, only what differs is reported.
    let second = change(db.ok(set(
        ALICE,
        vec![
            category(
                "Favorites",
                CategoryKind::Favorites,
                Sorting::Default,
                &[DM],
            ),
            SidebarCategory {
                display_name: "Work stuff".into(),
                ..category("Work", CategoryKind::Custom, Sorting::Manual, &[DEV, 12])
            },
            category("Channels", CategoryKind::Channels, Sorting::Alpha, &[11]),
            category(
                "Direct Messages",
                CategoryKind::DirectMessages,
                Sorting::Recent,
                &[],
            ),
        ],
    )));
    assert!(second.created.is_empty());
    assert!(second.order_changed);
    assert_eq!(second.updated, ["favorites_Favorites", "custom_Work"]);
    assert_eq!(second.favorites_deleted.len(), 1);
    assert_eq!(second.favorites_deleted[0].name, name(DEV));
    assert_eq!(favorite_names(&db, ALICE), [name(DM)]);

    // Deleting the custom category: reported as deleted; dev goes back to Channels.
    let third = change(db.ok(set(
        ALICE,
        vec![
            category(
                "Favorites",
                CategoryKind::Favorites,
                Sorting::Default,
                &[DM],
            ),
            category(
                "Channels",
                CategoryKind::Channels,
                Sorting::Alpha,
                &[11, 12, DEV],
            ),
            category(
                "Direct Messages",
                CategoryKind::DirectMessages,
                Sorting::Recent,
                &[],
            ),
        ],
    )));
    assert_eq!(third.deleted, ["custom_Work"]);
    assert_eq!(third.updated, ["channels_Channels"]);

    // Bob's layout is his own.
    assert!(db
        .engine
        .reader()
        .sidebar(id(BOB), id(TEAM))
        .unwrap()
        .is_none());
}

#[test]
fn refusals_change_nothing() {
    let mut db = world();
    let good = || {
        vec![
            category("Favorites", CategoryKind::Favorites, Sorting::Default, &[]),
            category("Channels", CategoryKind::Channels, Sorting::Default, &[11]),
            category(
                "Direct Messages",
                CategoryKind::DirectMessages,
                Sorting::Recent,
                &[DM],
            ),
        ]
    };
    let mut two_channels = good();
    two_channels.push(category(
        "Other",
        CategoryKind::Channels,
        Sorting::Default,
        &[],
    ));
    let mut twice = good();
    twice.push(category(
        "Dup",
        CategoryKind::Custom,
        Sorting::Default,
        &[11],
    ));
    let mut unnamed = good();
    unnamed.push(category("", CategoryKind::Custom, Sorting::Default, &[]));
    let mut dm_in_channels = good();
    dm_in_channels[1].channel_ids.push(id(DM));
    dm_in_channels[2].channel_ids.clear();
    let mut channel_in_dms = good();
    channel_in_dms[2].channel_ids.push(id(12));
    let mut too_many = good();
    for n in 0..200 {
        too_many.push(category(
            &format!("c{n}"),
            CategoryKind::Custom,
            Sorting::Default,
            &[],
        ));
    }
    for categories in [
        good()[..2].to_vec(),
        two_channels,
        twice,
        unnamed,
        dm_in_channels,
        channel_in_dms,
        too_many,
    ] {
        let applied = db.apply(set(ALICE, categories.clone()));
        assert!(
            matches!(applied.result, Err(CommandError::Invalid(_))),
            "{categories:?}: {:?}",
            applied.result
        );
    }
    // Not in the team, or no such user.
    db.ok(create_user(3, "carol", 1));
    let outsider = db.apply(set(3, good()));
    assert!(matches!(
        outsider.result,
        Err(CommandError::NotMember { .. })
    ));
    let nobody = db.apply(set(9, good()));
    assert!(matches!(nobody.result, Err(CommandError::NotFound { .. })));
    assert!(db
        .engine
        .reader()
        .sidebar(id(ALICE), id(TEAM))
        .unwrap()
        .is_none());
    assert!(favorite_names(&db, ALICE).is_empty());
}

#[test]
fn snapshot_carries_layouts() {
    let mut db = world();
    db.ok(set(
        ALICE,
        vec![
            category(
                "Favorites",
                CategoryKind::Favorites,
                Sorting::Default,
                &[DEV],
            ),
            category("Later", CategoryKind::Custom, Sorting::Default, &[12]),
            category("Channels", CategoryKind::Channels, Sorting::Default, &[11]),
            category(
                "Direct Messages",
                CategoryKind::DirectMessages,
                Sorting::Recent,
                &[DM],
            ),
        ],
    ));
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
        .sidebar(id(ALICE), id(TEAM))
        .unwrap()
        .expect("copied");
    assert_eq!(copied.categories[1].display_name, "Later");
    assert_eq!(copied.categories[1].channel_ids, vec![id(12)]);
}
