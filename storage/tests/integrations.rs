//! Integrations as apply keeps them: a post records the outgoing hooks it triggers in its own
//! write batch (open channels only, not webhook posts), the mark deletes what it covers and
//! never moves back; access tokens are sessions that disable, enable, revoke and survive a
//! "revoke all"; bots are users with `is_bot`; command triggers are unique per team; a command
//! hook is usable five times.

mod common;

use common::*;
use confab_storage::integrations::{
    AccessToken, Bot, CommandHook, HookCall, OutgoingHook, SlashCommand, COMMAND_HOOK_USES,
};
use confab_storage::{ChannelType, Command, Id, Outcome};

const TOWN: u64 = 101;

fn setup() -> TestDb {
    TestDb::two_users_in_a_team()
}

fn hook(n: u64, channel: Option<u64>, words: &[&str]) -> OutgoingHook {
    OutgoingHook {
        id: id(n),
        token: id(n + 1000),
        create_at: 5,
        update_at: 5,
        creator_id: id(1),
        channel_id: channel.map(id).unwrap_or(Id::NONE),
        team_id: id(100),
        trigger_words: words.iter().map(|w| w.to_string()).collect(),
        trigger_when: 0,
        callback_urls: vec!["http://example.com/hook".into()],
        display_name: String::new(),
        description: String::new(),
        content_type: "application/json".into(),
        username: String::new(),
        icon_url: String::new(),
    }
}

#[test]
fn posts_record_the_hooks_they_trigger_and_the_mark_empties_the_outbox() {
    let mut db = setup();
    db.ok(create_channel(
        200,
        100,
        "secret",
        ChannelType::Private,
        1,
        4,
    ));
    db.ok(Command::PutOutgoingHook {
        hook: hook(10, None, &["deploy"]),
    });
    db.ok(Command::PutOutgoingHook {
        hook: hook(11, Some(TOWN), &[]),
    });
    // A team-wide hook needs trigger words; a private channel takes no hook.
    assert!(db
        .apply(Command::PutOutgoingHook {
            hook: hook(12, None, &[])
        })
        .result
        .is_err());
    assert!(db
        .apply(Command::PutOutgoingHook {
            hook: hook(13, Some(200), &["x"])
        })
        .result
        .is_err());

    let first = db.apply(post(50, TOWN, 2, None, "deploy now", 10)).index;
    let second = db.apply(post(51, TOWN, 2, None, "hello", 11)).index;
    db.ok(post(52, 200, 1, None, "deploy secretly", 12));
    let mut from_hook = post(53, TOWN, 1, None, "deploy from a hook", 13);
    if let Command::CreatePost { props, .. } = &mut from_hook {
        *props = r#"{"from_webhook":"true"}"#.into();
    }
    db.ok(from_hook);

    let entries = db.engine.reader().hook_calls_after(0, 10).unwrap();
    let call = |hook: u64, post: u64, word: &str| HookCall {
        hook_id: id(hook),
        post_id: id(post),
        trigger_word: word.into(),
    };
    assert_eq!(
        entries,
        vec![
            (first, vec![call(10, 50, "deploy"), call(11, 50, "")]),
            (second, vec![call(11, 51, "")]),
        ]
    );
    db.ok(Command::OutgoingHooksDispatched { through: first });
    {
        let reader = db.engine.reader();
        assert_eq!(reader.hooks_mark().unwrap(), first);
        assert_eq!(reader.hook_calls_after(first, 10).unwrap().len(), 1);
        assert!(reader
            .hook_calls_after(0, 10)
            .unwrap()
            .iter()
            .all(|(i, _)| *i > first));
    }
    // A late mark below the current one changes nothing.
    db.ok(Command::OutgoingHooksDispatched { through: 1 });
    assert_eq!(db.engine.reader().hooks_mark().unwrap(), first);
}

#[test]
fn finished_calls_leave_the_outbox_one_by_one_and_the_mark_passes_finished_entries() {
    let mut db = setup();
    db.ok(Command::PutOutgoingHook {
        hook: hook(10, None, &["deploy"]),
    });
    db.ok(Command::PutOutgoingHook {
        hook: hook(11, Some(TOWN), &[]),
    });
    // Each post triggers both hooks.
    let first = db.apply(post(50, TOWN, 2, None, "deploy a", 10)).index;
    let second = db.apply(post(51, TOWN, 2, None, "deploy b", 11)).index;
    let third = db.apply(post(52, TOWN, 2, None, "deploy c", 12)).index;
    let hooks_of = |db: &TestDb| -> Vec<(u64, Vec<u64>)> {
        db.engine
            .reader()
            .hook_calls_after(0, 10)
            .unwrap()
            .into_iter()
            .map(|(index, calls)| {
                let hooks = calls
                    .iter()
                    .map(|c| if c.hook_id == id(10) { 10 } else { 11 })
                    .collect();
                (index, hooks)
            })
            .collect()
    };
    assert_eq!(
        hooks_of(&db),
        vec![
            (first, vec![10, 11]),
            (second, vec![10, 11]),
            (third, vec![10, 11])
        ]
    );

    // Hook 11 is slow: hook 10's calls finished on the second and third posts, and both
    // calls of the third. Only hook 11's calls on the first two remain.
    db.ok(Command::HookCallsDone {
        through: 0,
        calls: vec![(second, id(10)), (third, id(10)), (third, id(11))],
    });
    assert_eq!(
        hooks_of(&db),
        vec![(first, vec![10, 11]), (second, vec![11])]
    );
    assert_eq!(db.engine.reader().hooks_mark().unwrap(), 0);

    // The first entry finishes: the mark passes it and deletes it; a call already taken out
    // (or of an entry already gone) changes nothing when it comes again.
    db.ok(Command::HookCallsDone {
        through: first,
        calls: vec![(third, id(11)), (second, id(10))],
    });
    assert_eq!(hooks_of(&db), vec![(second, vec![11])]);
    assert_eq!(db.engine.reader().hooks_mark().unwrap(), first);

    db.ok(Command::HookCallsDone {
        through: first,
        calls: vec![(second, id(11))],
    });
    assert!(hooks_of(&db).is_empty());
    // Calls at or below the mark are covered by it; a late lower mark changes nothing.
    db.ok(Command::HookCallsDone {
        through: 1,
        calls: vec![(first, id(10))],
    });
    assert_eq!(db.engine.reader().hooks_mark().unwrap(), first);
}

#[test]
fn access_tokens_are_sessions_that_disable_enable_and_revoke() {
    let mut db = setup();
    let token = AccessToken {
        id: id(70),
        token: id(71),
        user_id: id(2),
        description: "ci".into(),
        is_active: true,
    };
    db.ok(Command::CreateAccessToken {
        token: token.clone(),
        at: 20,
    });
    let session = |db: &TestDb| db.engine.reader().session(id(71)).unwrap();
    assert_eq!(session(&db).map(|s| s.user_id), Some(id(2)));
    let disabled = db.ok(Command::SetAccessTokenActive {
        id: id(70),
        active: false,
        at: 21,
    });
    assert!(matches!(disabled, Outcome::SessionsRevoked(ref s) if s.len() == 1));
    assert!(session(&db).is_none());
    assert_eq!(
        db.engine
            .reader()
            .access_token(id(70))
            .unwrap()
            .map(|t| t.is_active),
        Some(false)
    );
    db.ok(Command::SetAccessTokenActive {
        id: id(70),
        active: true,
        at: 22,
    });
    assert!(session(&db).is_some());
    // "Revoke all sessions" and a deactivation do not end an active token for good.
    db.ok(Command::RevokeAllSessions { user_id: id(2) });
    assert!(session(&db).is_some());
    db.ok(Command::SetUserActive {
        user_id: id(2),
        at: 23,
        active: false,
    });
    assert!(session(&db).is_none());
    db.ok(Command::SetUserActive {
        user_id: id(2),
        at: 24,
        active: true,
    });
    assert!(session(&db).is_some());
    db.ok(Command::RevokeAccessToken { id: id(70) });
    assert!(session(&db).is_none());
    assert!(db.engine.reader().access_token(id(70)).unwrap().is_none());
    assert!(db
        .apply(Command::RevokeAccessToken { id: id(70) })
        .result
        .is_err());
}

#[test]
fn bots_are_users_and_triggers_are_unique_per_team() {
    let mut db = setup();
    let bot = Bot {
        user_id: id(80),
        description: "builds".into(),
        owner_id: id(1),
        create_at: 30,
        update_at: 30,
    };
    let created = db.ok(Command::CreateBot {
        bot: bot.clone(),
        username: "Builder".into(),
        display_name: "The Builder".into(),
    });
    let Outcome::UserCreated(user) = created else {
        panic!("a bot is a user");
    };
    assert!(user.is_bot);
    assert_eq!(
        (
            user.username.as_str(),
            user.email.as_str(),
            user.first_name.as_str(),
            user.roles.as_str()
        ),
        ("builder", "builder@localhost", "The Builder", "system_user")
    );
    assert_eq!(db.engine.reader().bot(id(80)).unwrap(), Some(bot.clone()));
    // A bot's name is a username like any other.
    let other = Bot {
        user_id: id(81),
        ..bot
    };
    assert!(db
        .apply(Command::CreateBot {
            bot: other,
            username: "alice".into(),
            display_name: String::new(),
        })
        .result
        .is_err());

    let command = |n: u64, trigger: &str| SlashCommand {
        id: id(n),
        token: id(n + 1000),
        create_at: 40,
        update_at: 40,
        creator_id: id(1),
        team_id: id(100),
        trigger: trigger.into(),
        method: "P".into(),
        username: String::new(),
        icon_url: String::new(),
        auto_complete: false,
        auto_complete_desc: String::new(),
        auto_complete_hint: String::new(),
        display_name: String::new(),
        description: String::new(),
        url: "http://example.com".into(),
    };
    db.ok(Command::PutSlashCommand {
        command: command(90, "deploy"),
    });
    assert!(db
        .apply(Command::PutSlashCommand {
            command: command(91, "deploy")
        })
        .result
        .is_err());
    // Replacing a command keeps its own trigger.
    db.ok(Command::PutSlashCommand {
        command: command(90, "deploy"),
    });

    let hook = CommandHook {
        id: id(95),
        command_id: id(90),
        user_id: id(1),
        channel_id: id(TOWN),
        root_id: Id::NONE,
        create_at: 50,
        use_count: 0,
    };
    db.ok(Command::CreateCommandHook { hook });
    for _ in 0..COMMAND_HOOK_USES {
        db.ok(Command::UseCommandHook { id: id(95), at: 60 });
    }
    assert!(db
        .apply(Command::UseCommandHook { id: id(95), at: 61 })
        .result
        .is_err());
}
