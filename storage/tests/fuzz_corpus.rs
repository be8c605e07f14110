//! The fuzz corpora (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) replayed through the
//! same `confab_storage::fuzzing` entry points as the fuzz targets, on the stable toolchain, so
//! `make test` keeps every seed and every past finding passing without running a fuzzer.
//!
//! `write_seed_corpus` (ignored) writes the seeds from real encodings:
//! `cargo test --release -p confab-storage --test fuzz_corpus -- --ignored`.

mod common;

use common::{create_channel, create_team, create_user, id, post, TestDb};
use confab_storage::fuzzing;
use confab_storage::teams::TeamPatch;
use confab_storage::{ChannelPatch, ChannelType, Command, CustomStatus, UserProfile};
use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    confab_storage::fuzzing::package_dir(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn replay(target: &str, run: fn(&[u8])) {
    fuzzing::replay_corpus(&fuzz_dir(), target, run);
}

#[test]
fn log_entry_corpus() {
    replay("log_entry", fuzzing::log_entry);
}

#[test]
fn command_corpus() {
    replay("command", fuzzing::command);
}

#[test]
fn snapshot_import_corpus() {
    replay("snapshot_import", fuzzing::snapshot_import);
}

#[test]
fn snapshot_stream_corpus() {
    replay("snapshot_stream", fuzzing::snapshot_stream);
}

/// A variety of commands, built as the storage tests build them.
fn commands() -> Vec<(&'static str, Command)> {
    vec![
        ("create_user", create_user(1, "alice", 1)),
        (
            "create_session",
            Command::CreateSession {
                token: id(9),
                user_id: id(1),
                at: 2,
                expires_at: 86_400_000,
                device_id: "android:abc".into(),
            },
        ),
        ("revoke_session", Command::RevokeSession { token: id(9) }),
        (
            "update_user",
            Command::UpdateUser {
                user_id: id(1),
                at: 3,
                profile: UserProfile {
                    username: "alice".into(),
                    email: "alice@example.com".into(),
                    nickname: "al".into(),
                    first_name: "Alice".into(),
                    last_name: "Liddell".into(),
                    position: "engineer".into(),
                    locale: "en".into(),
                    ..Default::default()
                },
            },
        ),
        (
            "set_password",
            Command::SetPassword {
                user_id: id(1),
                at: 4,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                keep: Some(id(9)),
            },
        ),
        ("create_team", create_team(100, "team", 1, 5)),
        (
            "add_team_member",
            Command::AddTeamMember {
                team_id: id(100),
                user_id: id(2),
                at: 6,
            },
        ),
        (
            "patch_team",
            Command::PatchTeam {
                team_id: id(100),
                at: 7,
                patch: TeamPatch {
                    display_name: Some("Team".into()),
                    allow_open_invite: Some(true),
                    ..Default::default()
                },
            },
        ),
        (
            "create_channel",
            create_channel(200, 100, "general", ChannelType::Open, 1, 8),
        ),
        (
            "create_direct",
            Command::CreateDirectOrGroup {
                id: id(300),
                at: 9,
                channel_type: ChannelType::Direct,
                name: "a__b".into(),
                display_name: String::new(),
                members: vec![id(1), id(2)],
                creator_id: id(1),
            },
        ),
        (
            "patch_channel",
            Command::PatchChannel {
                channel_id: id(200),
                at: 10,
                patch: ChannelPatch {
                    header: Some("**header** :tada:".into()),
                    ..Default::default()
                },
            },
        ),
        (
            "add_channel_member",
            Command::AddChannelMember {
                channel_id: id(200),
                user_id: id(2),
                at: 11,
            },
        ),
        (
            "create_post",
            post(1000, 200, 1, None, "hello @bob, see #rust 日本語", 12),
        ),
        (
            "create_reply",
            post(1001, 200, 2, Some(1000), "a reply", 13),
        ),
        (
            "create_post_files",
            Command::CreatePost {
                file_ids: vec![id(7), id(8)],
                id: id(1002),
                at: 14,
                channel_id: id(200),
                user_id: id(1),
                root_id: None,
                message: "files".into(),
                post_type: String::new(),
                props: r#"{"attachments":[]}"#.into(),
                pending_post_id: "user:1234".into(),
                priority: "urgent".into(),
                requested_ack: true,
                here_online: Vec::new(),
                channel_wide_ignored: false,
            },
        ),
        (
            "patch_post",
            Command::PatchPost {
                post_id: id(1000),
                at: 15,
                message: Some("edited".into()),
                is_pinned: Some(true),
                props: None,
                file_ids: Some(vec![]),
            },
        ),
        (
            "add_reaction",
            Command::AddReaction {
                post_id: id(1000),
                user_id: id(2),
                emoji_name: "+1".into(),
                at: 16,
            },
        ),
        (
            "view_channel",
            Command::ViewChannel {
                user_id: id(2),
                channel_id: id(200),
                at: 17,
                collapsed_threads_supported: true,
            },
        ),
        (
            "read_thread",
            Command::ReadThread {
                user_id: id(2),
                thread_id: id(1000),
                timestamp: 13,
                at: 18,
            },
        ),
        (
            "save_preferences",
            Command::SavePreferences {
                user_id: id(1),
                preferences: vec![
                    (
                        "display_settings".into(),
                        "use_military_time".into(),
                        "true".into(),
                    ),
                    ("theme".into(), String::new(), "{}".into()),
                ],
            },
        ),
        (
            "set_status",
            Command::SetStatus {
                user_id: id(1),
                at: 19,
                status: "dnd".into(),
                dnd_end_time: 1_000_000,
            },
        ),
        (
            "set_custom_status",
            Command::SetCustomStatus {
                user_id: id(1),
                at: 20,
                custom_status: Some(CustomStatus {
                    emoji: "palm_tree".into(),
                    text: "on holiday".into(),
                    duration: "this_week".into(),
                    expires_at: "2026-12-07T00:00:00Z".into(),
                }),
                expires_at_ms: 1_796_601_600_000,
            },
        ),
        (
            "expire_custom_status",
            Command::ExpireCustomStatus {
                user_id: id(1),
                at: 1_796_601_600_000,
            },
        ),
        (
            "notifications_dispatched",
            Command::NotificationsDispatched {
                through: 21,
                detach: vec![(id(9), "android:abc".into())],
                queue_emails: Vec::new(),
            },
        ),
        (
            "file_chunk",
            Command::FileChunk {
                upload_id: id(500),
                at: 22,
                index: 0,
                bytes: (0..=255u8).collect(),
            },
        ),
        (
            "set_profile_image",
            Command::SetProfileImage {
                user_id: id(1),
                at: 23,
                png: Some(serde_bytes::ByteBuf::from(b"\x89PNG\r\n\x1a\n".to_vec())),
            },
        ),
        (
            "delete_post",
            Command::DeletePost {
                post_id: id(1001),
                at: 24,
            },
        ),
        (
            "delete_channel",
            Command::DeleteChannel {
                channel_id: id(200),
                at: 25,
            },
        ),
        ("abort_uploads", Command::AbortUploads { before: 26 }),
    ]
}

/// `crc32(index · payload) · payload`, a `raft_log` value (`confab_storage::log`).
fn log_value(index: u64, payload: &[u8]) -> Vec<u8> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_be_bytes());
    hasher.update(payload);
    let mut value = hasher.finalize().to_be_bytes().to_vec();
    value.extend_from_slice(payload);
    value
}

/// The bodies of a snapshot stream's data chunks (what `decode_entries` reads).
fn data_chunk_bodies(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let mut at = 0;
    while at + 8 <= stream.len() {
        let len = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        let payload = &stream[at + 8..at + 8 + len];
        if payload[8] == 1 {
            bodies.push(payload[10..].to_vec());
        }
        at += 8 + len;
    }
    bodies
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus"]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };

    let commands = commands();
    for (name, command) in &commands {
        let bytes = command.encode();
        assert_eq!(&Command::decode(&bytes).expect("seed decodes"), command);
        write("command", name, &bytes);
    }

    for (n, (name, command)) in commands.iter().enumerate().take(6) {
        let index = n as u64 + 1;
        let mut seed = index.to_be_bytes().to_vec();
        seed.extend_from_slice(&log_value(index, &command.encode()));
        write("log_entry", name, &seed);
    }
    let mut empty = u64::MAX.to_be_bytes().to_vec();
    empty.extend_from_slice(&log_value(u64::MAX, &[]));
    write("log_entry", "empty_payload", &empty);

    let mut db = TestDb::two_users_in_a_channel("general");
    for n in 0..5 {
        let root = (n > 0).then_some(1000);
        db.ok(post(
            1000 + n,
            200,
            1 + n % 2,
            root,
            "a post @bob #tag",
            10 + n,
        ));
    }
    for (name, chunk_bytes) in [("small_chunks", 512), ("one_chunk_per_family", 1 << 20)] {
        let mut stream = Vec::new();
        db.engine
            .export_snapshot_chunked(&mut stream, chunk_bytes)
            .expect("export");
        confab_storage::verify_snapshot(stream.as_slice()).expect("seed verifies");
        write("snapshot_stream", name, &stream);
        write("snapshot_import", name, &stream);
        if chunk_bytes == 512 {
            for (n, body) in data_chunk_bodies(&stream).iter().enumerate().take(4) {
                write("snapshot_stream", &format!("data_chunk_body_{n}"), body);
            }
        }
    }
    let mut empty = Vec::new();
    TestDb::new()
        .engine
        .export_snapshot(&mut empty)
        .expect("export");
    write("snapshot_stream", "empty_database", &empty);
    write("snapshot_import", "empty_database", &empty);
}
