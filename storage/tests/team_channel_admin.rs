//! Team and channel administration on a real RocksDB: team patches and invite secrets, joining
//! by a secret (and its email-domain rule), team and channel admins, channel privacy; profile
//! images and custom emoji with their refusals; and a snapshot carrying the images and emoji.

mod common;

use common::{create_channel, create_team, create_user, id, TestDb};
use confab_storage::emoji::{Emoji, EmojiOrder};
use confab_storage::teams::TeamPatch;
use confab_storage::{ChannelType, Command, CommandError, Engine, Outcome};
use serde_bytes::ByteBuf;
use std::io::Cursor;

const ALICE: u64 = 1;
const BOB: u64 = 2;
const CAROL: u64 = 3;
const TEAM: u64 = 10;
const TOWN: u64 = 11;
const DEV: u64 = 20;
const SECRET: &str = "abcdefghijklmnopqrstuvwxyz";

fn world() -> TestDb {
    let mut db = TestDb::new();
    db.ok(create_user(ALICE, "alice", 1));
    db.ok(create_user(BOB, "bob", 1));
    db.ok(create_user(CAROL, "carol", 1));
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

fn refusal(db: &mut TestDb, command: Command) -> CommandError {
    match db.apply(command).result {
        Err(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn patch_team(patch: TeamPatch) -> Command {
    Command::PatchTeam {
        team_id: id(TEAM),
        at: 50,
        patch,
    }
}

#[test]
fn a_team_patch_changes_only_what_it_names() {
    let mut db = world();
    let outcome = db.ok(patch_team(TeamPatch {
        display_name: Some("Alpha Squad".into()),
        description: Some("the first team".into()),
        allow_open_invite: Some(false),
        ..TeamPatch::default()
    }));
    let Outcome::TeamUpdated(team) = outcome else {
        panic!("unexpected {outcome:?}");
    };
    assert_eq!(team.display_name, "Alpha Squad");
    assert_eq!(team.description, "the first team");
    assert_eq!(team.name, "alpha");
    assert!(!team.open_invite());
    assert_eq!(team.update_at, 50);
    let stored = db.engine.reader().team(id(TEAM)).unwrap().unwrap();
    assert_eq!(stored, team);

    // Refusals change nothing.
    let too_long = refusal(
        &mut db,
        patch_team(TeamPatch {
            description: Some("x".repeat(256)),
            display_name: Some("Changed".into()),
            ..TeamPatch::default()
        }),
    );
    assert!(matches!(too_long, CommandError::Invalid(_)));
    assert!(matches!(
        refusal(
            &mut db,
            patch_team(TeamPatch {
                invite_id: Some("short".into()),
                ..TeamPatch::default()
            })
        ),
        CommandError::Invalid(_)
    ));
    let unchanged = db.engine.reader().team(id(TEAM)).unwrap().unwrap();
    assert_eq!(unchanged.display_name, "Alpha Squad");
}

#[test]
fn joining_by_invite_follows_the_current_secret_and_allowed_domains() {
    let mut db = world();
    db.ok(patch_team(TeamPatch {
        invite_id: Some(SECRET.into()),
        ..TeamPatch::default()
    }));
    assert_eq!(
        db.engine
            .reader()
            .team_by_invite(SECRET)
            .unwrap()
            .map(|t| t.id),
        Some(id(TEAM))
    );
    let join = |user: u64, secret: &str| Command::JoinTeamByInvite {
        invite_id: secret.into(),
        user_id: id(user),
        at: 60,
    };
    match db.ok(join(BOB, SECRET)) {
        Outcome::TeamMemberAdded {
            member,
            channels,
            existed: false,
        } => {
            assert_eq!(member.team_id, id(TEAM));
            assert_eq!(member.roles, "team_user");
            // The default channels come with it.
            assert_eq!(channels.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    // A regenerated secret ends the old link.
    db.ok(patch_team(TeamPatch {
        invite_id: Some("zyxwvutsrqponmlkjihgfedcba".into()),
        ..TeamPatch::default()
    }));
    assert!(matches!(
        refusal(&mut db, join(CAROL, SECRET)),
        CommandError::NotFound { .. }
    ));
    assert!(matches!(
        refusal(&mut db, join(CAROL, "")),
        CommandError::NotFound { .. }
    ));
    // Only the allowed domains may join.
    db.ok(patch_team(TeamPatch {
        allowed_domains: Some("corp.example".into()),
        ..TeamPatch::default()
    }));
    assert!(matches!(
        refusal(&mut db, join(CAROL, "zyxwvutsrqponmlkjihgfedcba")),
        CommandError::Forbidden(_)
    ));
    assert!(db
        .engine
        .reader()
        .team_member(id(TEAM), id(CAROL))
        .unwrap()
        .is_none());
}

#[test]
fn team_and_channel_admins_are_granted_and_taken() {
    let mut db = world();
    db.ok(Command::AddTeamMember {
        team_id: id(TEAM),
        user_id: id(BOB),
        at: 5,
    });
    let set_team = |admin| Command::SetTeamMemberAdmin {
        team_id: id(TEAM),
        user_id: id(BOB),
        admin,
    };
    match db.ok(set_team(true)) {
        Outcome::TeamMemberUpdated(member) => assert_eq!(member.roles, "team_user team_admin"),
        other => panic!("unexpected {other:?}"),
    }
    match db.ok(set_team(false)) {
        Outcome::TeamMemberUpdated(member) => assert_eq!(member.roles, "team_user"),
        other => panic!("unexpected {other:?}"),
    }
    // Not a member: refused.
    assert!(matches!(
        refusal(
            &mut db,
            Command::SetTeamMemberAdmin {
                team_id: id(TEAM),
                user_id: id(CAROL),
                admin: true
            }
        ),
        CommandError::NotMember { .. }
    ));

    db.ok(Command::AddChannelMember {
        channel_id: id(DEV),
        user_id: id(BOB),
        at: 6,
    });
    let set_channel = |user: u64, admin| Command::SetChannelMemberAdmin {
        channel_id: id(DEV),
        user_id: id(user),
        at: 70,
        admin,
    };
    match db.ok(set_channel(BOB, true)) {
        Outcome::ChannelMemberUpdated { member, .. } => {
            assert!(member
                .roles
                .split_whitespace()
                .any(|r| r == "channel_admin"));
            assert_eq!(member.last_update_at, 70);
        }
        other => panic!("unexpected {other:?}"),
    }
    let stored = db
        .engine
        .reader()
        .channel_member(id(DEV), id(BOB))
        .unwrap()
        .unwrap();
    assert!(stored.roles.contains("channel_admin"));
    db.ok(set_channel(BOB, false));
    let stored = db
        .engine
        .reader()
        .channel_member(id(DEV), id(BOB))
        .unwrap()
        .unwrap();
    assert!(!stored.roles.contains("channel_admin"));
    assert!(matches!(
        refusal(&mut db, set_channel(CAROL, true)),
        CommandError::NotMember { .. }
    ));
}

#[test]
fn channels_change_privacy_except_the_default_and_teamless_ones() {
    let mut db = world();
    let convert = |channel: u64, channel_type| Command::SetChannelPrivacy {
        channel_id: id(channel),
        at: 80,
        channel_type,
    };
    match db.ok(convert(DEV, ChannelType::Private)) {
        Outcome::ChannelPrivacyChanged(channel) => {
            assert_eq!(channel.channel_type, ChannelType::Private);
            assert_eq!(channel.update_at, 80);
        }
        other => panic!("unexpected {other:?}"),
    }
    let reader = db.engine.reader();
    let private = reader
        .team_channels(id(TEAM), ChannelType::Private, 0, 100)
        .unwrap();
    assert_eq!(private.iter().map(|c| c.id).collect::<Vec<_>>(), [id(DEV)]);
    drop(reader);
    // Already private: answered as it is, unchanged (a retry is no error).
    match db.ok(Command::SetChannelPrivacy {
        channel_id: id(DEV),
        at: 85,
        channel_type: ChannelType::Private,
    }) {
        Outcome::ChannelPrivacyChanged(channel) => assert_eq!(channel.update_at, 80),
        other => panic!("unexpected {other:?}"),
    }
    db.ok(convert(DEV, ChannelType::Open));
    // The default channel stays open; a DM has no privacy.
    assert!(matches!(
        refusal(&mut db, convert(TOWN, ChannelType::Private)),
        CommandError::Invalid(_)
    ));
    assert!(matches!(
        refusal(&mut db, convert(DEV, ChannelType::Direct)),
        CommandError::Invalid(_)
    ));
}

#[test]
fn profile_images_are_set_and_reset_with_the_picture_stamp() {
    let mut db = world();
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    match db.ok(Command::SetProfileImage {
        user_id: id(BOB),
        at: 90,
        png: Some(ByteBuf::from(png.clone())),
    }) {
        Outcome::UserUpdated { user, revoked } => {
            assert_eq!(user.last_picture_update, 90);
            assert!(revoked.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        db.engine.reader().profile_image(id(BOB)).unwrap(),
        Some(png)
    );
    db.ok(Command::SetProfileImage {
        user_id: id(BOB),
        at: 95,
        png: None,
    });
    assert_eq!(db.engine.reader().profile_image(id(BOB)).unwrap(), None);
    let bob = db.engine.reader().user(id(BOB)).unwrap().unwrap();
    assert_eq!(bob.last_picture_update, -95);
    // Empty and oversize pictures are refused.
    assert!(matches!(
        refusal(
            &mut db,
            Command::SetProfileImage {
                user_id: id(BOB),
                at: 96,
                png: Some(ByteBuf::from(Vec::new())),
            }
        ),
        CommandError::Invalid(_)
    ));
    assert!(matches!(
        refusal(
            &mut db,
            Command::SetProfileImage {
                user_id: id(99),
                at: 96,
                png: None,
            }
        ),
        CommandError::NotFound { .. }
    ));
}

fn emoji(n: u64, name: &str, at: u64) -> Emoji {
    Emoji {
        id: id(n),
        create_at: at,
        update_at: at,
        delete_at: 0,
        creator_id: id(ALICE),
        name: name.into(),
    }
}

fn create_emoji(n: u64, name: &str, at: u64) -> Command {
    Command::CreateEmoji {
        emoji: emoji(n, name, at),
        image: ByteBuf::from(vec![n as u8; 100]),
    }
}

#[test]
fn custom_emoji_are_created_listed_found_and_deleted() {
    let mut db = world();
    assert_eq!(db.engine.reader().emoji_count().unwrap(), 0);
    db.ok(create_emoji(100, "zebra", 10));
    db.ok(create_emoji(101, "parrot", 11));
    db.ok(create_emoji(102, "party_parrot", 12));
    let reader = db.engine.reader();
    assert_eq!(reader.emoji_count().unwrap(), 3);
    let names = |list: Vec<Emoji>| list.into_iter().map(|e| e.name).collect::<Vec<_>>();
    assert_eq!(
        names(reader.emoji_page(EmojiOrder::Name, 0, 10).unwrap()),
        ["parrot", "party_parrot", "zebra"]
    );
    assert_eq!(
        names(reader.emoji_page(EmojiOrder::Created, 0, 2).unwrap()),
        ["zebra", "parrot"]
    );
    assert_eq!(
        names(reader.emoji_page(EmojiOrder::Created, 1, 2).unwrap()),
        ["party_parrot"]
    );
    assert_eq!(
        names(reader.emoji_with_prefix("par", 10).unwrap()),
        ["parrot", "party_parrot"]
    );
    assert_eq!(reader.emoji(id(101)).unwrap().unwrap().name, "parrot");
    assert_eq!(reader.emoji_image(id(101)).unwrap(), Some(vec![101; 100]));
    drop(reader);

    // A taken name, a bad name, an empty or oversize image: refused.
    assert!(matches!(
        refusal(&mut db, create_emoji(103, "parrot", 13)),
        CommandError::Invalid(_)
    ));
    assert!(matches!(
        refusal(&mut db, create_emoji(103, "bad name", 13)),
        CommandError::Invalid(_)
    ));
    assert!(matches!(
        refusal(
            &mut db,
            Command::CreateEmoji {
                emoji: emoji(103, "huge", 13),
                image: ByteBuf::from(vec![0; confab_storage::emoji::MAX_IMAGE_BYTES + 1]),
            }
        ),
        CommandError::Invalid(_)
    ));
    assert_eq!(db.engine.reader().emoji_count().unwrap(), 3);

    match db.ok(Command::DeleteEmoji {
        id: id(101),
        at: 20,
    }) {
        Outcome::EmojiDeleted(gone) => assert_eq!(gone.delete_at, 20),
        other => panic!("unexpected {other:?}"),
    }
    let reader = db.engine.reader();
    assert_eq!(reader.emoji_count().unwrap(), 2);
    assert!(reader.emoji(id(101)).unwrap().is_none());
    assert!(reader.emoji_by_name("parrot").unwrap().is_none());
    assert!(reader.emoji_image(id(101)).unwrap().is_none());
    drop(reader);
    assert!(matches!(
        refusal(
            &mut db,
            Command::DeleteEmoji {
                id: id(101),
                at: 21
            }
        ),
        CommandError::NotFound { .. }
    ));
    // The name is free again.
    db.ok(create_emoji(104, "parrot", 22));
}

#[test]
fn a_snapshot_carries_images_and_emoji() {
    let mut db = world();
    db.ok(create_emoji(100, "zebra", 10));
    db.ok(Command::SetProfileImage {
        user_id: id(ALICE),
        at: 30,
        png: Some(ByteBuf::from(vec![7; 5000])),
    });
    let mut stream = Vec::new();
    db.engine.export_snapshot(&mut stream).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = Engine::open(dir.path()).unwrap();
    other.import_snapshot(Cursor::new(stream)).unwrap();
    let reader = other.reader();
    assert_eq!(reader.emoji_count().unwrap(), 1);
    assert_eq!(reader.emoji_by_name("zebra").unwrap().unwrap().id, id(100));
    assert_eq!(
        reader.profile_image(id(ALICE)).unwrap(),
        Some(vec![7; 5000])
    );
}
