//! Fixtures shared by the storage tests: a fresh engine in a temp dir and id helpers.
#![allow(dead_code)]

use confab_storage::{Applied, ChannelType, Command, Engine, Id, Outcome, TeamType, UserProfile};

pub struct TestDb {
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    pub next_index: u64,
}

impl Default for TestDb {
    fn default() -> TestDb {
        TestDb::new()
    }
}

impl TestDb {
    pub fn new() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("open engine");
        TestDb {
            engine,
            dir,
            next_index: 1,
        }
    }

    /// Applies a command at the next index and returns its result.
    pub fn apply(&mut self, command: Command) -> Applied {
        let index = self.next_index;
        self.next_index += 1;
        self.engine.apply(index, &command).expect("engine failure")
    }

    /// Users 1 (alice, who creates team 100) and 2 (bob), both members of team 100.
    pub fn two_users_in_a_team() -> TestDb {
        let mut db = TestDb::new();
        db.ok(create_user(1, "alice", 1));
        db.ok(create_user(2, "bob", 1));
        db.ok(create_team(100, "team", 1, 2));
        db.ok(Command::AddTeamMember {
            team_id: id(100),
            user_id: id(2),
            at: 3,
        });
        db
    }

    /// [`TestDb::two_users_in_a_team`] with open channel 200 (`name`, made by alice) that
    /// bob joined too.
    pub fn two_users_in_a_channel(name: &str) -> TestDb {
        let mut db = TestDb::two_users_in_a_team();
        db.ok(create_channel(200, 100, name, ChannelType::Open, 1, 4));
        db.ok(Command::AddChannelMember {
            channel_id: id(200),
            user_id: id(2),
            at: 5,
        });
        db
    }

    /// Changes a user's profile as `PUT /users/{id}/patch` does (the current one, changed).
    pub fn update_profile(&mut self, user: u64, at: u64, change: impl FnOnce(&mut UserProfile)) {
        let current = self
            .engine
            .reader()
            .user(id(user))
            .expect("read")
            .expect("user");
        let mut profile = UserProfile::of(&current);
        change(&mut profile);
        self.ok(Command::UpdateUser {
            user_id: id(user),
            at,
            profile,
        });
    }

    /// Applies a command that must succeed.
    pub fn ok(&mut self, command: Command) -> Outcome {
        let applied = self.apply(command.clone());
        match applied.result {
            Ok(outcome) => outcome,
            Err(e) => panic!("{command:?} refused: {e}"),
        }
    }
}

/// A deterministic id from a number (tests need stable, distinct ids).
pub fn id(n: u64) -> Id {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0x5a;
    Id::from_bytes(bytes)
}

/// The number behind an id made by [`id`].
pub fn num(id: Id) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&id.as_bytes()[..8]);
    u64::from_be_bytes(bytes)
}

pub fn create_user(n: u64, name: &str, at: u64) -> Command {
    Command::CreateUser {
        id: id(n),
        at,
        username: name.into(),
        email: format!("{name}@example.com"),
        password_hash: "hash".into(),
        nickname: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        roles: "system_user".into(),
    }
}

pub fn create_team(n: u64, name: &str, creator: u64, at: u64) -> Command {
    Command::CreateTeam {
        id: id(n),
        at,
        name: name.into(),
        display_name: name.into(),
        team_type: TeamType::Open,
        creator_id: id(creator),
        town_square_id: id(n + 1),
        off_topic_id: id(n + 2),
        invite_id: String::new(),
    }
}

pub fn create_channel(
    n: u64,
    team: u64,
    name: &str,
    kind: ChannelType,
    creator: u64,
    at: u64,
) -> Command {
    Command::CreateChannel {
        id: id(n),
        at,
        team_id: id(team),
        channel_type: kind,
        name: name.into(),
        display_name: name.into(),
        purpose: String::new(),
        header: String::new(),
        creator_id: id(creator),
    }
}

pub fn post(n: u64, channel: u64, user: u64, root: Option<u64>, message: &str, at: u64) -> Command {
    Command::CreatePost {
        file_ids: Vec::new(),
        id: id(n),
        at,
        channel_id: id(channel),
        user_id: id(user),
        root_id: root.map(id),
        message: message.into(),
        post_type: String::new(),
        props: "{}".into(),
        pending_post_id: String::new(),
        priority: String::new(),
        requested_ack: false,
        here_online: Vec::new(),
        channel_wide_ignored: false,
    }
}
