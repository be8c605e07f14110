//! Mention keywords as apply uses them: a custom `mention_keys` entry (any case, `@` kept) and
//! the first name with `first_name: "true"` (exact case) mention a channel member — in the
//! outbox entry the dispatcher reads, in the member's mention counts, and in the recount a
//! mark-unread makes — and stop when the user drops them or is not in the channel.

mod common;

use common::*;
use confab_storage::notify::OutboxEntry;
use confab_storage::{Command, Id};

const TOWN: u64 = 101;

/// alice (1), bob (2) and carol (3) in team 100 and its town square; dave (4) in no team.
fn team() -> TestDb {
    let mut db = TestDb::new();
    for (n, name) in [(1, "alice"), (2, "bob"), (3, "carol"), (4, "dave")] {
        db.ok(create_user(n, name, 1));
    }
    db.ok(create_team(100, "team", 1, 2));
    for user in [2, 3] {
        db.ok(Command::AddTeamMember {
            team_id: id(100),
            user_id: id(user),
            at: 3,
        });
    }
    db
}

fn set_profile(db: &mut TestDb, user: u64, first_name: &str, props: &[(&str, &str)]) {
    db.update_profile(user, 4, |profile| {
        profile.first_name = first_name.to_string();
        profile.notify_props = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    });
}

/// Posts `message` as `author` into the town square and returns who its outbox entry names.
fn mentioned_by(db: &mut TestDb, n: u64, author: u64, message: &str) -> Vec<Id> {
    let applied = db.apply(post(n, TOWN, author, None, message, 10 + n));
    assert!(applied.result.is_ok(), "{message}: {:?}", applied.result);
    let entries = db
        .engine
        .reader()
        .outbox_after(applied.index - 1, 1)
        .expect("outbox");
    match &entries[..] {
        [(index, Some(OutboxEntry::Post { mentioned, .. }))] if *index == applied.index => {
            mentioned.clone()
        }
        other => panic!("no outbox entry for {message}: {other:?}"),
    }
}

fn mention_count(db: &TestDb, user: u64) -> u64 {
    db.engine
        .reader()
        .channel_member(id(TOWN), id(user))
        .expect("read")
        .expect("member")
        .mention_count
}

#[test]
fn custom_keys_match_in_any_case_and_first_names_exactly() {
    let mut db = team();
    set_profile(
        &mut db,
        2,
        "Robert",
        &[("mention_keys", " Oncall,@Support ,, ")],
    );
    set_profile(
        &mut db,
        3,
        "Carol",
        &[("first_name", "true"), ("mention_keys", "")],
    );

    assert_eq!(
        mentioned_by(&mut db, 50, 1, "ONCALL: the db is down"),
        vec![id(2)]
    );
    assert_eq!(mentioned_by(&mut db, 51, 1, "ask @support."), vec![id(2)]);
    // A bare word is not the `@` key, nor the first name without `first_name: "true"`.
    assert_eq!(
        mentioned_by(&mut db, 52, 1, "support Robert"),
        Vec::<Id>::new()
    );
    assert_eq!(mentioned_by(&mut db, 53, 1, "Carol, look"), vec![id(3)]);
    assert_eq!(
        mentioned_by(&mut db, 54, 1, "carol, look"),
        Vec::<Id>::new()
    );
    // In a code-like word, after punctuation, and never the author.
    assert_eq!(mentioned_by(&mut db, 55, 1, "see db-oncall."), vec![id(2)]);
    assert_eq!(
        mentioned_by(&mut db, 56, 2, "I am oncall"),
        Vec::<Id>::new()
    );
    // An emoji shortcode is skipped.
    assert_eq!(mentioned_by(&mut db, 57, 1, ":oncall:"), Vec::<Id>::new());
    let both = mentioned_by(&mut db, 58, 1, "Carol and oncall");
    assert_eq!(both.len(), 2);

    assert_eq!(mention_count(&db, 2), 4);
    assert_eq!(mention_count(&db, 3), 2);
}

#[test]
fn keywords_follow_profile_changes_and_channel_membership() {
    let mut db = team();
    set_profile(&mut db, 2, "", &[("mention_keys", "deploy")]);
    // Dave holds the key too but is not in the town square... until he joins.
    set_profile(&mut db, 4, "", &[("mention_keys", "deploy")]);
    let before = mentioned_by(&mut db, 50, 1, "deploy now");
    assert_eq!(before, vec![id(2)]);
    db.ok(Command::AddTeamMember {
        team_id: id(100),
        user_id: id(4),
        at: 60,
    });
    let mut both = vec![id(2), id(4)];
    both.sort();
    assert_eq!(mentioned_by(&mut db, 51, 1, "deploy now"), both);

    // Bob drops the key: only dave is left.
    set_profile(&mut db, 2, "", &[("mention_keys", "release")]);
    assert_eq!(mentioned_by(&mut db, 52, 1, "deploy now"), vec![id(4)]);
    assert_eq!(mentioned_by(&mut db, 53, 1, "release now"), vec![id(2)]);
    // Everyone drops theirs: nothing.
    set_profile(&mut db, 2, "", &[]);
    set_profile(&mut db, 4, "", &[]);
    assert_eq!(
        mentioned_by(&mut db, 54, 1, "deploy release"),
        Vec::<Id>::new()
    );
}

#[test]
fn marking_a_post_unread_recounts_keyword_mentions() {
    let mut db = team();
    set_profile(&mut db, 2, "", &[("mention_keys", "oncall")]);
    for (n, message) in [(50, "oncall?"), (51, "plain"), (52, "Oncall again")] {
        mentioned_by(&mut db, n, 1, message);
    }
    db.ok(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(TOWN),
        at: 100,
        collapsed_threads_supported: false,
    });
    assert_eq!(mention_count(&db, 2), 0);
    db.ok(Command::SetPostUnread {
        user_id: id(2),
        post_id: id(50),
        at: 101,
        collapsed_threads: false,
    });
    assert_eq!(mention_count(&db, 2), 2);
}
