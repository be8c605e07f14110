//! Shared fixtures for confab's criterion benches (in `benches/benches/`) and the `confab-load`
//! tool: deterministic databases of a chosen shape, built through the engine's own commands.

pub mod words;

use confab_storage::{ChannelType, Command, Engine, Id, TeamType};

/// A deterministic id from a number.
pub fn id(n: u64) -> Id {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0xb1;
    Id::from_bytes(bytes)
}

pub const TEAM: u64 = 1;
pub const BUSY_CHANNEL: u64 = 10;
pub const OTHER_CHANNEL: u64 = 11;
/// The user whose threads and views are measured.
pub const READER: u64 = 100;
const FIRST_POST: u64 = 1_000_000;

/// Applies commands in batches, assigning consecutive log indexes.
pub struct Loader<'a> {
    pub engine: &'a Engine,
    pub next_index: u64,
    pending: Vec<Command>,
}

impl<'a> Loader<'a> {
    pub fn new(engine: &'a Engine) -> Loader<'a> {
        let next_index = engine.applied_index().unwrap_or(0) + 1;
        Loader {
            engine,
            next_index,
            pending: Vec::new(),
        }
    }

    pub fn push(&mut self, command: Command) {
        self.pending.push(command);
        if self.pending.len() == 256 {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        let start = self.next_index;
        let entries: Vec<(u64, Option<&Command>)> = self
            .pending
            .iter()
            .enumerate()
            .map(|(i, c)| (start + i as u64, Some(c)))
            .collect();
        let results = self
            .engine
            .apply_batch(&entries, None)
            .expect("fixture apply");
        for applied in results {
            if let Err(e) = applied.result {
                panic!("fixture command refused: {e}");
            }
        }
        self.next_index += self.pending.len() as u64;
        self.pending.clear();
    }
}

pub fn user(n: u64, at: u64) -> Command {
    Command::CreateUser {
        id: id(n),
        at,
        username: format!("user{n}"),
        email: format!("user{n}@example.com"),
        password_hash: "x".into(),
        nickname: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        roles: "system_user".into(),
    }
}

pub fn post(n: u64, channel: u64, user: u64, root: Option<u64>, at: u64) -> Command {
    Command::CreatePost {
        file_ids: Vec::new(),
        id: id(n),
        at,
        channel_id: id(channel),
        user_id: id(user),
        root_id: root.map(id),
        message: "The quick brown fox jumps over the lazy dog, as posts of ordinary length do."
            .into(),
        post_type: String::new(),
        props: "{}".into(),
        pending_post_id: String::new(),
        priority: String::new(),
        requested_ack: false,
        here_online: Vec::new(),
        channel_wide_ignored: false,
    }
}

/// Users `READER` and `READER+1..=READER+writers` in one team with two channels, all members.
pub fn base_commands(writers: u64) -> Vec<Command> {
    let mut commands = vec![user(READER, 1)];
    for w in 1..=writers {
        commands.push(user(READER + w, 1));
    }
    commands.push(Command::CreateTeam {
        id: id(TEAM),
        at: 2,
        name: "bench".into(),
        display_name: "Bench".into(),
        team_type: TeamType::Open,
        creator_id: id(READER),
        town_square_id: id(TEAM + 1),
        off_topic_id: id(TEAM + 2),
        invite_id: String::new(),
    });
    for (channel, name) in [(BUSY_CHANNEL, "busy"), (OTHER_CHANNEL, "other")] {
        commands.push(Command::CreateChannel {
            id: id(channel),
            at: 3,
            team_id: id(TEAM),
            channel_type: ChannelType::Open,
            name: name.into(),
            display_name: name.into(),
            purpose: String::new(),
            header: String::new(),
            creator_id: id(READER),
        });
    }
    for w in 1..=writers {
        commands.push(Command::AddTeamMember {
            team_id: id(TEAM),
            user_id: id(READER + w),
            at: 4,
        });
        for channel in [BUSY_CHANNEL, OTHER_CHANNEL] {
            commands.push(Command::AddChannelMember {
                channel_id: id(channel),
                user_id: id(READER + w),
                at: 5,
            });
        }
    }
    commands
}

/// Applies [`base_commands`] directly to an engine.
pub fn base(loader: &mut Loader, writers: u64) {
    for command in base_commands(writers) {
        loader.push(command);
    }
    loader.flush();
}

/// Mattermost's comparison data set: `threads` threads of `replies_per_thread` replies
/// (1M posts for 100k × 9). The reader authors `followed` roots in the busy channel (so follows
/// them); other writers reply; the reader then replies last in every other followed thread,
/// leaving half unread. Returns the next free time.
pub fn threads_fixture(
    engine: &Engine,
    threads: u64,
    replies_per_thread: u64,
    followed: u64,
) -> u64 {
    let writers = 20;
    let mut loader = Loader::new(engine);
    base(&mut loader, writers);
    let mut at = 100;
    let mut n = FIRST_POST;
    let every = (threads / followed.max(1)).max(1);
    let mut reader_roots = Vec::new();
    for t in 0..threads {
        let ours = t % every == 0 && (reader_roots.len() as u64) < followed;
        let (author, channel) = if ours {
            (READER, BUSY_CHANNEL)
        } else {
            (READER + 1 + t % writers, OTHER_CHANNEL)
        };
        let root = n;
        loader.push(post(root, channel, author, None, at));
        n += 1;
        at += 1;
        for r in 0..replies_per_thread {
            loader.push(post(
                n,
                channel,
                READER + 1 + (t + r) % writers,
                Some(root),
                at,
            ));
            n += 1;
            at += 1;
        }
        if ours {
            reader_roots.push(root);
        }
    }
    for (i, root) in reader_roots.iter().enumerate() {
        if i % 2 == 0 {
            loader.push(post(n, BUSY_CHANNEL, READER, Some(*root), at));
            n += 1;
            at += 1;
        }
    }
    loader.flush();
    at
}
