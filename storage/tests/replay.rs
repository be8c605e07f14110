//! Crash and replay: applying a prefix, reopening the database and applying the whole sequence
//! again ends in byte-identical state to applying it once; so does any batching.

mod common;

use common::{create_channel, create_team, create_user, id, post};
use confab_storage::{ChannelType, Command, Engine, Outcome};

fn script() -> Vec<Command> {
    let mut commands = vec![
        create_user(1, "alice", 1),
        create_user(2, "bob", 1),
        create_user(3, "carol", 1),
        create_team(100, "team", 1, 2),
        Command::AddTeamMember {
            team_id: id(100),
            user_id: id(2),
            at: 3,
        },
        Command::AddTeamMember {
            team_id: id(100),
            user_id: id(3),
            at: 3,
        },
        create_channel(200, 100, "general", ChannelType::Open, 1, 4),
        Command::AddChannelMember {
            channel_id: id(200),
            user_id: id(2),
            at: 5,
        },
        Command::AddChannelMember {
            channel_id: id(200),
            user_id: id(3),
            at: 5,
        },
        // A refused command is part of the sequence too.
        create_user(4, "alice", 6),
    ];
    let mut at = 10;
    for root in 0..40u64 {
        let root_id = 1_000 + root * 10;
        commands.push(post(root_id, 200, 1 + root % 3, None, "root @bob", at));
        for r in 1..4 {
            at += 1;
            commands.push(post(
                root_id + r,
                200,
                1 + (root + r) % 3,
                Some(root_id),
                "reply @carol",
                at,
            ));
        }
        at += 1;
        commands.push(Command::ViewChannel {
            user_id: id(2),
            channel_id: id(200),
            at,
            collapsed_threads_supported: root % 2 == 0,
        });
        commands.push(Command::AddReaction {
            post_id: id(root_id),
            user_id: id(3),
            emoji_name: "smile".into(),
            at,
        });
        if root % 5 == 0 {
            commands.push(Command::DeletePost {
                post_id: id(root_id + 1),
                at,
            });
        }
        at += 1;
    }
    commands
}

fn apply_all(engine: &Engine, commands: &[Command], from: usize) {
    for (i, command) in commands.iter().enumerate().skip(from) {
        engine.apply(i as u64 + 1, command).expect("engine");
    }
}

#[test]
fn replay_after_reopen_equals_single_application() {
    let commands = script();
    let once = tempfile::tempdir().unwrap();
    let reference = Engine::open(once.path()).unwrap();
    apply_all(&reference, &commands, 0);
    let expected = reference.state_digest().unwrap();

    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path()).unwrap();
        apply_all(&engine, &commands[..commands.len() / 2], 0);
        // Dropped without any shutdown step: a crash as far as the engine is concerned.
    }
    let engine = Engine::open(dir.path()).unwrap();
    assert_eq!(engine.applied_index().unwrap(), (commands.len() / 2) as u64);
    // The log is replayed from the start: applied entries are no-ops.
    for (i, command) in commands.iter().enumerate() {
        let applied = engine.apply(i as u64 + 1, command).unwrap();
        if i < commands.len() / 2 {
            assert_eq!(applied.result, Ok(Outcome::AlreadyApplied));
            assert_eq!(applied.keys_written, 0);
        }
    }
    assert_eq!(engine.state_digest().unwrap(), expected);
    assert_eq!(engine.applied_index().unwrap(), commands.len() as u64);
}

#[test]
fn batching_does_not_change_the_state() {
    let commands = script();
    let entries: Vec<(u64, Option<&Command>)> = commands
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, Some(c)))
        .collect();
    let digest_with_batches = |size: usize| {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        for chunk in entries.chunks(size) {
            let results = engine.apply_batch(chunk, Some(b"raft-meta")).unwrap();
            assert_eq!(results.len(), chunk.len());
        }
        engine.state_digest().unwrap()
    };
    let one_by_one = digest_with_batches(1);
    assert_eq!(one_by_one, digest_with_batches(37));
    assert_eq!(one_by_one, digest_with_batches(entries.len()));
}
