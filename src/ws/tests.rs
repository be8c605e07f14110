//! Tests of the WebSocket hub against a real storage engine: event payloads and audiences from
//! real outcomes, seq splicing, resume, slow consumers, and a real socket end to end.

use super::conn::{Closing, Conn, Identity, Offer, Out, CLOSE_SLOW};
use super::events::{self, Event};
use super::hub::{connection_id, parse_connection_id, Registered, Resume, Stream};
use super::{Hub, HubConfig, Proposer};
use confab_storage::{Applied, ChannelType, Command, Engine, Id, TeamType};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

fn id(n: u64) -> Id {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0x5a;
    Id::from_bytes(bytes)
}

const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;
const TEAM: u64 = 100;
const TOWN: u64 = 101;
const PRIVATE: u64 = 200;

/// An engine in a temp dir, applying commands at consecutive indices and publishing them.
struct Fixture {
    engine: Arc<Engine>,
    hub: Arc<Hub>,
    next: Arc<Mutex<u64>>,
    _dir: tempfile::TempDir,
}

fn apply_and_publish(engine: &Engine, hub: &Hub, next: &Mutex<u64>, command: &Command) -> Applied {
    let mut index = next.lock();
    *index += 1;
    let applied = engine.apply(*index, command).expect("engine failure");
    hub.publish(std::slice::from_ref(&applied));
    applied
}

impl Fixture {
    fn new(window_events: usize) -> Fixture {
        Fixture::with_broad(window_events, usize::MAX)
    }

    /// Audiences above `broad_audience` go to the shared ring instead of per-user windows.
    fn with_broad(window_events: usize, broad_audience: usize) -> Fixture {
        Fixture::with_config(HubConfig {
            queue_frames: 64,
            window_events,
            broad_audience,
            broad_events: 64,
            auth_timeout: Duration::from_millis(400),
            server_version: "test-version".into(),
            ..HubConfig::default()
        })
    }

    fn with_config(config: HubConfig) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Arc::new(Engine::open(dir.path()).expect("open engine"));
        let next = Arc::new(Mutex::new(0u64));
        // The proposer applies typing notices straight to the engine and publishes them, as
        // the Raft apply loop would.
        let hub_slot: Arc<Mutex<Option<std::sync::Weak<Hub>>>> = Arc::new(Mutex::new(None));
        let proposer: Proposer = {
            let engine = engine.clone();
            let next = next.clone();
            let slot = hub_slot.clone();
            Arc::new(move |command: Command| {
                let hub = slot.lock().as_ref().and_then(|w| w.upgrade());
                if let Some(hub) = hub {
                    apply_and_publish(&engine, &hub, &next, &command);
                }
            })
        };
        let hub = Hub::new(engine.clone(), proposer, config);
        *hub_slot.lock() = Some(Arc::downgrade(&hub));
        Fixture {
            engine,
            hub,
            next,
            _dir: dir,
        }
    }

    fn apply(&self, command: Command) -> Applied {
        let applied = apply_and_publish(&self.engine, &self.hub, &self.next, &command);
        assert!(
            applied.result.is_ok(),
            "{command:?} refused: {:?}",
            applied.result
        );
        applied
    }

    fn user(&self, n: u64, name: &str) {
        self.apply(Command::CreateUser {
            id: id(n),
            at: 1_000,
            username: name.into(),
            email: format!("{name}@example.com"),
            password_hash: "hash".into(),
            nickname: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            roles: "system_user".into(),
        });
    }

    /// Users A, B, C in a team; a private channel with A and B only.
    fn world(&self) {
        self.user(A, "alice");
        self.user(B, "bob");
        self.user(C, "carol");
        self.apply(Command::CreateTeam {
            id: id(TEAM),
            at: 2_000,
            name: "team".into(),
            display_name: "Team".into(),
            team_type: TeamType::Open,
            creator_id: id(A),
            town_square_id: id(TOWN),
            off_topic_id: id(TOWN + 1),
            invite_id: String::new(),
        });
        for user in [B, C] {
            self.apply(Command::AddTeamMember {
                team_id: id(TEAM),
                user_id: id(user),
                at: 2_100,
            });
        }
        self.apply(Command::CreateChannel {
            id: id(PRIVATE),
            at: 3_000,
            team_id: id(TEAM),
            channel_type: ChannelType::Private,
            name: "secret".into(),
            display_name: "Secret".into(),
            purpose: String::new(),
            header: String::new(),
            creator_id: id(A),
        });
        self.apply(Command::AddChannelMember {
            channel_id: id(PRIVATE),
            user_id: id(B),
            at: 3_100,
        });
    }

    fn post(&self, post: u64, channel: u64, user: u64, root: Option<u64>, message: &str, at: u64) {
        self.apply(Command::CreatePost {
            file_ids: Vec::new(),
            id: id(post),
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
        });
    }

    /// A registered in-memory connection for `user` (no socket).
    fn connect(&self, user: u64, resume: Option<Resume>) -> (Arc<Conn>, Registered) {
        let conn = Arc::new(Conn::new(self.hub.next_key(), self.hub.config.queue_frames));
        assert!(conn.authenticate(Identity {
            user: id(user),
            token: id(9_000 + user),
        }));
        let registered = self.hub.register(&conn, resume);
        (conn, registered)
    }
}

/// The payload of one server text frame (its header skipped).
fn payload(frame: &[u8]) -> &[u8] {
    let head = match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    &frame[head..]
}

/// The frames a connection has queued, as JSON, as its socket would send them.
fn drain(conn: &Conn) -> Vec<Value> {
    // What the writer does: take everything, which frees the queue's room.
    let frames: Vec<Out> = {
        let mut q = conn.queue.lock();
        q.events = 0;
        q.frames.drain(..).collect()
    };
    frames
        .into_iter()
        .map(|out| match out {
            Out::Event(event, seq) => {
                let mut buf = Vec::new();
                event.write_frame(seq, conn.user(), &mut buf);
                serde_json::from_slice(payload(&buf)).expect("event frame is JSON")
            }
            Out::Reply(bytes) | Out::Raw(bytes) => {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            }
        })
        .collect()
}

fn names(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .map(|f| f["event"].as_str().unwrap_or("?"))
        .collect()
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .map(|f| f["seq"].as_u64().unwrap_or(u64::MAX))
        .collect()
}

#[test]
fn seq_splicing_is_valid_contiguous_json() {
    let event = Event::new(
        "posted",
        json!({"post": "{\"id\":\"x\",\"message\":\"}\\\"seq\\\":\"}", "n": [1, 2]}),
        events::broadcast(None, Some(id(5)), None, None),
        false,
    );
    let mut buf = Vec::new();
    for seq in [0u64, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
        buf.clear();
        event.write_with_seq(seq, &mut buf);
        assert_eq!(buf.len(), event.frame_len(seq));
        let value: Value = serde_json::from_slice(&buf).expect("valid JSON");
        assert_eq!(value["seq"], json!(seq));
        assert_eq!(value["event"], "posted");
        assert_eq!(value["broadcast"]["channel_id"], id(5).to_base32());
        assert_eq!(value["broadcast"]["omit_users"], Value::Null);
    }
    for n in [0u64, 7, 10, 1_000_000, u64::MAX] {
        assert_eq!(events::digits(n), n.to_string().len());
    }
}

#[test]
fn hello_then_contiguous_seqs_and_private_channel_stays_private() {
    let fx = Fixture::new(512);
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let (b, _) = fx.connect(B, None);
    let (c, _) = fx.connect(C, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("expected a fresh stream")
    };

    fx.post(300, PRIVATE, A, None, "secret plans @bob", 10_000);
    fx.post(301, TOWN, A, None, "hello town", 10_100);

    let a_frames = drain(&a);
    assert_eq!(names(&a_frames), ["hello", "posted", "posted"]);
    assert_eq!(seqs(&a_frames), [0, 1, 2]);
    let hello = &a_frames[0];
    assert_eq!(hello["data"]["connection_id"], connection_id);
    assert_eq!(hello["data"]["server_version"], "test-version");
    assert_eq!(hello["broadcast"]["user_id"], id(A).to_base32());
    assert_eq!(hello["broadcast"]["omit_users"], Value::Null);

    let posted = &a_frames[1];
    let post: Value =
        serde_json::from_str(posted["data"]["post"].as_str().expect("post is a string"))
            .expect("post string is JSON");
    assert_eq!(post["id"], id(300).to_base32());
    assert_eq!(post["channel_id"], id(PRIVATE).to_base32());
    assert_eq!(post["message"], "secret plans @bob");
    assert_eq!(posted["data"]["channel_type"], "P");
    assert_eq!(posted["data"]["channel_name"], "secret");
    assert_eq!(posted["data"]["channel_display_name"], "Secret");
    assert_eq!(posted["data"]["sender_name"], "@alice");
    assert_eq!(posted["data"]["team_id"], id(TEAM).to_base32());
    assert_eq!(posted["data"]["set_online"], true);
    assert_eq!(posted["broadcast"]["channel_id"], id(PRIVATE).to_base32());
    // The author is not mentioned: no `mentions` key in their frame.
    assert!(posted["data"].get("mentions").is_none());

    let b_frames = drain(&b);
    assert_eq!(names(&b_frames), ["hello", "posted", "posted"]);
    assert_eq!(seqs(&b_frames), [0, 1, 2]);
    // Bob's frame names him, as Mattermost's `add_mentions` hook does.
    assert_eq!(mentioned_in(&b_frames[1]), [id(B).to_base32()]);
    // No mentions in the second post: no `mentions` key.
    assert!(b_frames[2]["data"].get("mentions").is_none());

    // Carol is not in the private channel: she sees only the town-square post.
    let c_frames = drain(&c);
    assert_eq!(names(&c_frames), ["hello", "posted"]);
    assert_eq!(seqs(&c_frames), [0, 1]);
    let post: Value = serde_json::from_str(c_frames[1]["data"]["post"].as_str().unwrap_or(""))
        .expect("post JSON");
    assert_eq!(post["id"], id(301).to_base32());
    assert!(!c_frames
        .iter()
        .any(|f| f.to_string().contains("secret plans")));
}

#[test]
fn reply_sends_thread_updated_to_followers_but_not_the_replier() {
    let fx = Fixture::new(512);
    fx.world();
    fx.post(400, TOWN, A, None, "root by alice", 20_000);
    let (a, _) = fx.connect(A, None);
    let (b, _) = fx.connect(B, None);
    fx.post(401, TOWN, B, Some(400), "reply by bob", 20_100);

    let a_frames = drain(&a);
    assert_eq!(names(&a_frames), ["hello", "posted", "thread_updated"]);
    assert_eq!(seqs(&a_frames), [0, 1, 2]);
    let posted = &a_frames[1];
    // Each follower's frame names that follower only (Mattermost's `add_followers` hook).
    assert_eq!(id_list_in(posted, "followers"), [id(A).to_base32()]);
    let reply: Value =
        serde_json::from_str(posted["data"]["post"].as_str().unwrap_or("")).expect("post JSON");
    assert_eq!(reply["root_id"], id(400).to_base32());

    let updated = &a_frames[2];
    assert_eq!(updated["broadcast"]["user_id"], id(A).to_base32());
    let thread: Value =
        serde_json::from_str(updated["data"]["thread"].as_str().expect("thread string"))
            .expect("thread JSON");
    assert_eq!(thread["id"], id(400).to_base32());
    assert_eq!(thread["reply_count"], 1);
    assert_eq!(thread["unread_replies"], 1);
    assert_eq!(thread["post"]["id"], id(400).to_base32());
    assert_eq!(updated["data"]["previous_unread_replies"], 0);
    assert_eq!(updated["data"]["previous_unread_mentions"], 0);

    // Bob replied: he gets the post, not a thread_updated.
    let b_frames = drain(&b);
    assert_eq!(names(&b_frames), ["hello", "posted"]);
    assert_eq!(id_list_in(&b_frames[1], "followers"), [id(B).to_base32()]);
}

/// The ids in a frame's `data.<key>`, a JSON text holding an array (empty when absent).
fn id_list_in(frame: &Value, key: &str) -> Vec<String> {
    frame["data"][key]
        .as_str()
        .and_then(|text| serde_json::from_str::<Vec<String>>(text).ok())
        .unwrap_or_default()
}

fn mentioned_in(frame: &Value) -> Vec<String> {
    id_list_in(frame, "mentions")
}

#[test]
fn a_channel_wide_mention_names_each_member_but_the_author_in_their_own_frame() {
    let fx = Fixture::new(512);
    fx.world();
    let (a, _) = fx.connect(A, None);
    let (b, _) = fx.connect(B, None);
    let (c, _) = fx.connect(C, None);
    // Alice says @channel and names carol too; then a plain post.
    fx.post(500, TOWN, A, None, "@channel look, and @carol too", 30_000);
    fx.post(501, TOWN, A, None, "nothing for anyone", 30_100);

    let a_frames = drain(&a);
    assert_eq!(names(&a_frames), ["hello", "posted", "posted"]);
    assert!(a_frames[1]["data"].get("mentions").is_none(), "the author");
    for (conn, user) in [(&b, B), (&c, C)] {
        let frames = drain(conn);
        assert_eq!(names(&frames), ["hello", "posted", "posted"]);
        assert_eq!(mentioned_in(&frames[1]), [id(user).to_base32()]);
        assert!(frames[2]["data"].get("mentions").is_none());
        // The rest of the frame is the shared one.
        assert_eq!(frames[1]["data"]["post"], a_frames[1]["data"]["post"]);
        assert_eq!(frames[1]["broadcast"], a_frames[1]["broadcast"]);
        assert_eq!(frames[1]["seq"], 1);
    }
}

/// A member who set `ignore_channel_mentions` is not named by `@channel` in their frame (as
/// Mattermost leaves them out of its keyword map); a name still mentions them.
#[test]
fn a_channel_wide_mention_does_not_name_a_member_who_ignores_them() {
    let fx = Fixture::new(512);
    fx.world();
    fx.apply(Command::SetChannelNotifyProps {
        channel_id: id(TOWN),
        user_id: id(C),
        at: 29_000,
        props: [("ignore_channel_mentions".to_string(), "on".to_string())]
            .into_iter()
            .collect(),
    });
    let (b, _) = fx.connect(B, None);
    let (c, _) = fx.connect(C, None);
    fx.post(500, TOWN, A, None, "@channel look", 30_000);
    fx.post(501, TOWN, A, None, "@channel and @carol", 30_100);
    let b_frames = drain(&b);
    assert_eq!(mentioned_in(&b_frames[1]), [id(B).to_base32()]);
    let c_frames = drain(&c);
    assert_eq!(names(&c_frames), ["hello", "posted", "posted"]);
    assert!(c_frames[1]["data"].get("mentions").is_none(), "ignored");
    assert_eq!(mentioned_in(&c_frames[2]), [id(C).to_base32()], "named");
}

#[test]
fn user_events_go_to_that_user_only() {
    let fx = Fixture::new(512);
    fx.world();
    fx.post(500, TOWN, A, None, "root", 30_000);
    fx.post(501, TOWN, B, Some(500), "reply", 30_100);
    let (a, _) = fx.connect(A, None);
    let (b, _) = fx.connect(B, None);
    fx.apply(Command::ViewChannel {
        user_id: id(A),
        channel_id: id(TOWN),
        at: 30_200,
        collapsed_threads_supported: true,
    });
    fx.apply(Command::ReadThread {
        user_id: id(A),
        thread_id: id(500),
        timestamp: 30_300,
        at: 30_300,
    });
    fx.apply(Command::FollowThread {
        user_id: id(A),
        thread_id: id(500),
        follow: false,
        at: 30_400,
    });
    fx.apply(Command::AddReaction {
        post_id: id(500),
        user_id: id(B),
        emoji_name: "smile".into(),
        at: 30_500,
    });
    let a_frames = drain(&a);
    assert_eq!(
        names(&a_frames),
        [
            "hello",
            "multiple_channels_viewed",
            "thread_read_changed",
            "thread_follow_changed",
            "reaction_added"
        ]
    );
    assert_eq!(seqs(&a_frames), [0, 1, 2, 3, 4]);
    let times = &a_frames[1]["data"]["channel_times"];
    assert!(times[id(TOWN).to_base32()].as_u64().is_some());
    let read = &a_frames[2]["data"];
    assert_eq!(read["thread_id"], id(500).to_base32());
    assert_eq!(read["timestamp"], 30_300);
    assert_eq!(read["unread_replies"], 0);
    assert_eq!(read["channel_id"], id(TOWN).to_base32());
    assert_eq!(a_frames[3]["data"]["state"], false);
    assert_eq!(a_frames[3]["data"]["reply_count"], 1);
    let reaction: Value =
        serde_json::from_str(a_frames[4]["data"]["reaction"].as_str().unwrap_or(""))
            .expect("reaction JSON");
    assert_eq!(reaction["emoji_name"], "smile");
    assert_eq!(reaction["post_id"], id(500).to_base32());

    let b_frames = drain(&b);
    assert_eq!(names(&b_frames), ["hello", "reaction_added"]);
}

#[test]
fn membership_and_channel_events() {
    let fx = Fixture::new(512);
    fx.world();
    let (a, _) = fx.connect(A, None);
    let (c, _) = fx.connect(C, None);
    fx.apply(Command::CreateChannel {
        id: id(600),
        at: 40_000,
        team_id: id(TEAM),
        channel_type: ChannelType::Open,
        name: "new-one".into(),
        display_name: "New".into(),
        purpose: String::new(),
        header: String::new(),
        creator_id: id(A),
    });
    fx.apply(Command::AddChannelMember {
        channel_id: id(PRIVATE),
        user_id: id(C),
        at: 40_100,
    });
    // Carol is a member now: she receives the private channel's posts from here on.
    fx.post(601, PRIVATE, A, None, "welcome carol", 40_200);
    let a_frames = drain(&a);
    assert_eq!(
        names(&a_frames),
        ["hello", "channel_created", "user_added", "posted"]
    );
    assert_eq!(a_frames[1]["data"]["channel_id"], id(600).to_base32());
    assert_eq!(a_frames[2]["data"]["user_id"], id(C).to_base32());
    assert_eq!(a_frames[2]["data"]["team_id"], id(TEAM).to_base32());
    let c_frames = drain(&c);
    assert_eq!(names(&c_frames), ["hello", "user_added", "posted"]);
    assert_eq!(seqs(&c_frames), [0, 1, 2]);
}

#[test]
fn a_cold_cache_sees_membership_as_of_each_entry_of_a_batch() {
    let fx = Fixture::new(512);
    fx.world();
    // A second hub over the same engine: its membership cache is empty.
    let hub = Hub::new(
        fx.engine.clone(),
        Arc::new(|_| {}),
        HubConfig {
            queue_frames: 64,
            window_events: 512,
            auth_timeout: Duration::from_secs(5),
            server_version: "v".into(),
            ..HubConfig::default()
        },
    );
    let conn = Arc::new(Conn::new(hub.next_key(), 64));
    assert!(conn.authenticate(Identity {
        user: id(C),
        token: id(1),
    }));
    hub.register(&conn, None);
    // The replica applies a private post and THEN adds Carol, before the hub sees either.
    let mut next = fx.next.lock();
    let post = Command::CreatePost {
        file_ids: Vec::new(),
        id: id(1_200),
        at: 120_000,
        channel_id: id(PRIVATE),
        user_id: id(A),
        root_id: None,
        message: "before carol".into(),
        post_type: String::new(),
        props: "{}".into(),
        pending_post_id: String::new(),
        priority: String::new(),
        requested_ack: false,
        here_online: Vec::new(),
        channel_wide_ignored: false,
    };
    let add = Command::AddChannelMember {
        channel_id: id(PRIVATE),
        user_id: id(C),
        at: 120_100,
    };
    let first = fx.engine.apply(*next + 1, &post).expect("apply");
    let second = fx.engine.apply(*next + 2, &add).expect("apply");
    *next += 2;
    drop(next);
    hub.publish(&[first, second]);
    let frames = drain(&conn);
    assert_eq!(names(&frames), ["hello", "user_added"]);
    assert!(!frames
        .iter()
        .any(|f| f.to_string().contains("before carol")));
}

#[test]
fn lag_closes_connections_and_refuses_to_resume_across_the_gap() {
    let fx = Fixture::new(512);
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("fresh expected")
    };
    fx.hub.lagged();
    assert!(a.is_closing());
    assert_eq!(fx.hub.conns_of(id(A)), 0);
    // An entry this hub never sees (the lag), then one it does.
    {
        let mut next = fx.next.lock();
        *next += 1;
        let missed = Command::CreatePost {
            file_ids: Vec::new(),
            id: id(1_299),
            at: 129_000,
            channel_id: id(TOWN),
            user_id: id(B),
            root_id: None,
            message: "missed".into(),
            post_type: String::new(),
            props: "{}".into(),
            pending_post_id: String::new(),
            priority: String::new(),
            requested_ack: false,
            here_online: Vec::new(),
            channel_wide_ignored: false,
        };
        fx.engine.apply(*next, &missed).expect("apply");
    }
    fx.post(1_300, TOWN, B, None, "after the gap", 130_000);
    let stream = parse_connection_id(id(A), &connection_id).expect("id");
    let (b, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 1,
        }),
    );
    assert!(matches!(reg, Registered::Fresh { .. }));

    // A snapshot install: connections closed, the published index jumps to the snapshot.
    let before = fx.hub.published_index();
    fx.hub.snapshot_installed(before + 10);
    assert!(b.is_closing());
    assert_eq!(fx.hub.published_index(), before + 10);
}

#[test]
fn typing_goes_through_the_proposer_and_omits_the_typist() {
    let fx = Fixture::new(512);
    fx.world();
    let (a, _) = fx.connect(A, None);
    let (b, _) = fx.connect(B, None);
    let (c, _) = fx.connect(C, None);
    (fx.hub.proposer)(Command::UserTyping {
        user_id: id(A),
        channel_id: id(PRIVATE),
        parent_id: None,
        at: 50_000,
    });
    assert_eq!(names(&drain(&a)), ["hello"]);
    let b_frames = drain(&b);
    assert_eq!(names(&b_frames), ["hello", "typing"]);
    assert_eq!(b_frames[1]["data"]["user_id"], id(A).to_base32());
    assert_eq!(b_frames[1]["data"]["parent_id"], "");
    assert_eq!(
        b_frames[1]["broadcast"]["omit_users"][id(A).to_base32()],
        true
    );
    assert_eq!(names(&drain(&c)), ["hello"]);
}

#[test]
fn resume_replays_exactly_the_missed_events() {
    let fx = Fixture::new(512);
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("fresh expected")
    };
    for n in 0..5 {
        fx.post(700 + n, TOWN, B, None, &format!("m{n}"), 60_000 + n);
    }
    let first = drain(&a);
    assert_eq!(seqs(&first), [0, 1, 2, 3, 4, 5]);
    // The client saw up to seq 2, then the socket died.
    fx.hub.unregister(&a);
    fx.post(705, TOWN, B, None, "m5", 60_010);

    let stream = parse_connection_id(id(A), &connection_id).expect("our id");
    let (again, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 3,
        }),
    );
    assert_eq!(reg, Registered::Resumed { replayed: 4 });
    fx.post(706, TOWN, B, None, "m6", 60_020);
    let frames = drain(&again);
    assert_eq!(names(&frames), ["posted"; 5]);
    assert_eq!(seqs(&frames), [3, 4, 5, 6, 7]);
    let messages: Vec<String> = frames
        .iter()
        .map(|f| {
            let post: Value =
                serde_json::from_str(f["data"]["post"].as_str().unwrap_or("")).unwrap_or_default();
            post["message"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(messages, ["m2", "m3", "m4", "m5", "m6"]);
    // Same events, same numbers as the first connection gave them.
    assert_eq!(frames[0], first[3]);

    // Another user's connection id does not resume this user's stream.
    assert_eq!(parse_connection_id(id(B), &connection_id), None);
}

#[test]
fn posted_json_is_built_only_when_a_frame_needs_it_and_is_the_same_then() {
    let fx = Fixture::new(512);
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("fresh expected")
    };
    fx.post(800, TOWN, B, None, "seen live", 70_000);
    let live = drain(&a);
    assert_eq!(names(&live), ["hello", "posted"]);
    fx.hub.unregister(&a);
    // Nobody connected: the event waits in the windows unrendered.
    fx.post(801, TOWN, B, None, "while away", 70_010);
    assert_eq!(
        fx.hub.window_rendered(id(A)).last(),
        Some(&("posted", false))
    );
    assert_eq!(
        fx.hub.window_rendered(id(C)).last(),
        Some(&("posted", false))
    );

    // Resuming renders it, with everything a live frame has.
    let stream = parse_connection_id(id(A), &connection_id).expect("our id");
    let (again, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 2,
        }),
    );
    assert_eq!(reg, Registered::Resumed { replayed: 1 });
    let resumed = drain(&again);
    assert_eq!(names(&resumed), ["posted"]);
    assert_eq!(
        fx.hub.window_rendered(id(C)).last(),
        Some(&("posted", true))
    );
    let post: Value =
        serde_json::from_str(resumed[0]["data"]["post"].as_str().unwrap_or("")).expect("post JSON");
    assert_eq!(post["message"], "while away");
    let keys = |frame: &Value| {
        let mut keys: Vec<String> = frame["data"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    assert_eq!(keys(&resumed[0]), keys(&live[1]));
    assert_eq!(resumed[0]["broadcast"], live[1]["broadcast"]);
    assert_eq!(
        resumed[0]["data"]["sender_name"],
        live[1]["data"]["sender_name"]
    );
}

#[test]
fn resume_on_another_node_from_the_same_log() {
    // Two hubs over two engines fed the same commands: node 2 resumes node 1's stream.
    let n1 = Fixture::new(512);
    let n2 = Fixture::new(512);
    let both = |f: &dyn Fn(&Fixture)| {
        f(&n1);
        f(&n2);
    };
    both(&|fx| fx.world());
    let (a1, reg) = n1.connect(A, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("fresh expected")
    };
    both(&|fx| fx.post(800, PRIVATE, B, None, "one", 70_000));
    both(&|fx| fx.post(801, TOWN, C, None, "two", 70_100));
    let seen = drain(&a1);
    assert_eq!(seqs(&seen), [0, 1, 2]);
    n1.hub.unregister(&a1);
    both(&|fx| fx.post(802, PRIVATE, B, None, "three", 70_200));
    let stream = parse_connection_id(id(A), &connection_id).expect("id");
    let (a2, reg) = n2.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 2,
        }),
    );
    assert_eq!(reg, Registered::Resumed { replayed: 2 });
    let frames = drain(&a2);
    assert_eq!(seqs(&frames), [2, 3]);
    assert_eq!(frames[0], seen[2]);
}

#[test]
fn broad_audiences_resume_on_another_node_in_order_without_per_user_windows() {
    // Every channel event is "broad" here (audience > 1): kept once in the shared ring. A
    // reply adds a per-user thread event in the same entry, so the merge order is tested too.
    let n1 = Fixture::with_broad(512, 1);
    let n2 = Fixture::with_broad(512, 1);
    let both = |f: &dyn Fn(&Fixture)| {
        f(&n1);
        f(&n2);
    };
    both(&|fx| fx.world());
    let (window_a, window_c) = (n2.hub.window_len(id(A)), n2.hub.window_len(id(C)));
    let (a1, reg) = n1.connect(A, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("fresh expected")
    };
    both(&|fx| fx.post(900, TOWN, A, None, "root by A", 80_000));
    both(&|fx| fx.post(901, TOWN, B, None, "other", 80_100));
    let seen = drain(&a1);
    assert_eq!(names(&seen), ["hello", "posted", "posted"]);
    n1.hub.unregister(&a1);
    // Missed while away: a reply to A's thread (posted to the channel + thread_updated to A),
    // then a post in the private channel.
    both(&|fx| fx.post(902, TOWN, B, Some(900), "reply", 80_200));
    both(&|fx| fx.post(903, PRIVATE, B, None, "private", 80_300));
    let stream = parse_connection_id(id(A), &connection_id).expect("id");
    let (a2, reg) = n2.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 3,
        }),
    );
    assert_eq!(reg, Registered::Resumed { replayed: 3 });
    let frames = drain(&a2);
    assert_eq!(names(&frames), ["posted", "thread_updated", "posted"]);
    assert_eq!(seqs(&frames), [3, 4, 5]);
    // The same stream node 1 would have sent: resume there gives identical frames.
    let (a1b, _) = n1.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 3,
        }),
    );
    assert_eq!(drain(&a1b), frames);
    // Channel events never entered the per-user windows; the thread event did.
    assert_eq!(n2.hub.window_len(id(C)), window_c);
    assert_eq!(n2.hub.window_len(id(A)), window_a + 1);
}

#[test]
fn evicted_broad_ring_gives_a_new_hello() {
    let fx = Fixture::with_broad(512, 1);
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("fresh expected")
    };
    drain(&a);
    fx.hub.unregister(&a);
    // More broad events than the ring keeps (64).
    for n in 0..70 {
        fx.post(1000 + n, TOWN, B, None, "flood", 90_000 + n);
    }
    let stream = parse_connection_id(id(A), &connection_id).expect("id");
    let (again, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 2,
        }),
    );
    assert!(
        matches!(reg, Registered::Fresh { .. }),
        "cannot number what fell out"
    );
    let frames = drain(&again);
    assert_eq!(names(&frames), ["hello"]);
}

#[test]
fn evicted_window_gives_a_new_hello_with_a_new_id() {
    let fx = Fixture::new(3);
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let Registered::Fresh { connection_id: old } = reg else {
        panic!("fresh expected")
    };
    drain(&a);
    fx.hub.unregister(&a);
    for n in 0..5 {
        fx.post(900 + n, TOWN, B, None, "x", 80_000 + n);
    }
    let stream = parse_connection_id(id(A), &old).expect("id");
    let (again, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 1,
        }),
    );
    let Registered::Fresh { connection_id: new } = reg else {
        panic!("the window no longer covers the gap: a new stream is expected")
    };
    assert_ne!(new, old);
    let frames = drain(&again);
    assert_eq!(names(&frames), ["hello"]);
    assert_eq!(seqs(&frames), [0]);
    assert_eq!(frames[0]["data"]["connection_id"], new);

    // A stream that started after the evicted events still resumes.
    let stream = parse_connection_id(id(A), &new).expect("id");
    fx.post(910, TOWN, B, None, "y", 80_100);
    let (third, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 1,
        }),
    );
    assert_eq!(reg, Registered::Resumed { replayed: 1 });
    assert_eq!(seqs(&drain(&third)), [1]);
    // An unknown or foreign connection id is a fresh stream too.
    let (_, reg) = fx.connect(
        A,
        Some(Resume {
            stream: Stream {
                id: id(77),
                start: 0,
            },
            next_seq: 5,
        }),
    );
    assert!(matches!(reg, Registered::Fresh { .. }));
}

#[test]
fn lagging_node_skips_what_the_client_already_has() {
    let fx = Fixture::new(512);
    fx.world();
    let published = fx.hub.published_index();
    let cid = connection_id(id(A), published, 7);
    let stream = parse_connection_id(id(A), &cid).expect("id");
    // The client saw seq 1 and 2 elsewhere; this node has not applied them yet.
    let (a, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 3,
        }),
    );
    assert_eq!(reg, Registered::Resumed { replayed: 0 });
    for n in 0..4 {
        fx.post(950 + n, TOWN, B, None, "z", 90_000 + n);
    }
    let frames = drain(&a);
    assert_eq!(seqs(&frames), [3, 4]);
}

#[test]
fn slow_consumer_drops_droppable_first_then_closes() {
    let conn = Conn::new(1, 8);
    let durable = Arc::new(Event::new("posted", json!({}), json!({}), false));
    let typing = Arc::new(Event::new("typing", json!({}), json!({}), true));
    let mut index = 0;
    let mut offer = |event: &Arc<Event>| {
        index += 1;
        conn.offer(index, event)
    };
    // High water is 6 of 8.
    for _ in 0..6 {
        assert_eq!(offer(&durable), Offer::Queued);
    }
    assert_eq!(offer(&typing), Offer::Dropped);
    assert_eq!(offer(&durable), Offer::Queued);
    assert_eq!(offer(&typing), Offer::Dropped);
    assert_eq!(offer(&durable), Offer::Queued);
    assert_eq!(offer(&durable), Offer::ClosedSlow);
    assert_eq!(offer(&durable), Offer::Closed);
    let q = conn.queue.lock();
    assert_eq!(q.dropped, 2);
    assert!(q.frames.is_empty());
    match &q.closing {
        Some(Closing::Close(code, reason)) => {
            assert_eq!(*code, CLOSE_SLOW);
            assert!(reason.contains("slow"));
        }
        other => panic!("expected a close, got {other:?}"),
    }
    drop(q);

    // Seqs stay contiguous across drops.
    let conn = Conn::new(2, 8);
    let mut seqs = Vec::new();
    for (i, event) in [
        &durable, &durable, &durable, &durable, &durable, &durable, &typing, &durable,
    ]
    .into_iter()
    .enumerate()
    {
        conn.offer(i as u64 + 1, event);
        if conn.queue.lock().frames.len() == 6 {
            // The writer drains: room again.
            let mut q = conn.queue.lock();
            for out in q.frames.drain(..) {
                if let Out::Event(_, seq) = out {
                    seqs.push(seq);
                }
            }
            q.events = 0;
        }
    }
    for out in conn.queue.lock().frames.drain(..) {
        if let Out::Event(_, seq) = out {
            seqs.push(seq);
        }
    }
    assert_eq!(seqs, [0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn publish_with_a_slow_connection_does_not_block_others() {
    let fx = Fixture::new(512);
    fx.world();
    let (slow, _) = fx.connect(A, None);
    let (fast, _) = fx.connect(B, None);
    // Nobody drains `slow`; `fast` is drained after every post.
    let mut fast_count = 0;
    for n in 0..100 {
        fx.post(1_000 + n, TOWN, C, None, "flood", 100_000 + n);
        fast_count += drain(&fast).len();
    }
    assert_eq!(fast_count, 101);
    assert!(slow.is_closing());
    assert_eq!(fx.hub.conns_of(id(A)), 1);
    fx.hub.unregister(&slow);
    assert_eq!(fx.hub.conns_of(id(A)), 0);
}

#[test]
fn revoked_session_closes_its_sockets() {
    let fx = Fixture::new(512);
    fx.world();
    fx.apply(Command::CreateSession {
        token: id(9_000 + A),
        user_id: id(A),
        at: 1,
        expires_at: 0,
        device_id: String::new(),
    });
    let (a, _) = fx.connect(A, None);
    assert!(!a.is_closing());
    fx.apply(Command::RevokeSession {
        token: id(9_000 + A),
    });
    assert!(a.is_closing());
}

// ---- a real socket -------------------------------------------------------------------------

mod socket {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    type Client = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn serve(fx: &Fixture) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = fx.hub.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        addr
    }

    fn session(fx: &Fixture, user: u64) -> String {
        let token = id(9_000 + user);
        fx.apply(Command::CreateSession {
            token,
            user_id: id(user),
            at: 1,
            expires_at: 0,
            device_id: String::new(),
        });
        token.to_base32()
    }

    async fn connect(addr: std::net::SocketAddr, query: &str, bearer: Option<&str>) -> Client {
        let url = format!("ws://{addr}/api/v4/websocket{query}");
        let mut request = url.into_client_request().expect("request");
        if let Some(token) = bearer {
            request.headers_mut().insert(
                "Authorization",
                format!("BEARER {token}").parse().expect("header"),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        ws
    }

    /// The next text message as JSON (skipping pings/pongs), within 5 s.
    async fn next_json(ws: &mut Client) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("a message in time")
                .expect("stream open")
                .expect("no error");
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("server sends JSON")
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    async fn send(ws: &mut Client, value: Value) {
        ws.send(Message::text(value.to_string()))
            .await
            .expect("send");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn challenge_ping_hello_and_delivery_over_a_real_socket() {
        let fx = Fixture::new(512);
        fx.world();
        let token_a = session(&fx, A);
        let token_c = session(&fx, C);
        let addr = serve(&fx).await;

        // Client4 style: no credentials on the URL, challenge then ping at once.
        let mut a = connect(
            addr,
            "?connection_id=&sequence_number=0&posted_ack=true",
            None,
        )
        .await;
        send(
            &mut a,
            json!({"seq": 1, "action": "authentication_challenge", "data": {"token": token_a}}),
        )
        .await;
        send(&mut a, json!({"seq": 2, "action": "ping"})).await;
        let first = next_json(&mut a).await;
        assert_eq!(first, json!({"status": "OK", "seq_reply": 1}));
        let hello = next_json(&mut a).await;
        assert_eq!(hello["event"], "hello");
        assert_eq!(hello["seq"], 0);
        let connection_id = hello["data"]["connection_id"]
            .as_str()
            .expect("id")
            .to_string();
        let pong = next_json(&mut a).await;
        assert_eq!(pong["status"], "OK");
        assert_eq!(pong["seq_reply"], 2);
        assert_eq!(pong["data"]["text"], "pong");
        assert_eq!(pong["data"]["version"], "test-version");
        assert!(pong["data"]["server_time"].as_u64().is_some());

        // Header auth: hello straight away.
        let mut c = connect(addr, "", Some(&token_c)).await;
        let hello_c = next_json(&mut c).await;
        assert_eq!(hello_c["event"], "hello");
        assert_eq!(hello_c["seq"], 0);

        // Garbage, a binary frame, a WebSocket ping and an unknown action: no crash.
        a.send(Message::text("{not json")).await.expect("send");
        a.send(Message::binary(vec![0u8, 159, 146, 150]))
            .await
            .expect("send");
        a.send(Message::Ping(vec![1, 2, 3].into()))
            .await
            .expect("send");
        send(&mut a, json!({"seq": 3, "action": "fly_to_the_moon"})).await;
        let fail = next_json(&mut a).await;
        assert_eq!(fail["status"], "FAIL");
        assert_eq!(fail["seq_reply"], 3);
        assert!(fail["error"]["id"].as_str().is_some());

        // A private post reaches Alice, not Carol; a public one reaches both, seq contiguous.
        fx.post(1_100, PRIVATE, B, None, "for alice", 110_000);
        fx.post(1_101, TOWN, B, None, "for all", 110_100);
        let p1 = next_json(&mut a).await;
        let p2 = next_json(&mut a).await;
        assert_eq!((p1["seq"].as_u64(), p2["seq"].as_u64()), (Some(1), Some(2)));
        let c1 = next_json(&mut c).await;
        assert_eq!(c1["event"], "posted");
        assert_eq!(c1["seq"], 1);
        assert!(c1["data"]["post"]
            .as_str()
            .unwrap_or("")
            .contains("for all"));

        // Typing from Alice reaches Bob's channel-mates except Alice: Carol is not in PRIVATE,
        // so use town square; Carol gets typing, Alice gets the reply only.
        send(&mut a, json!({"seq": 4, "action": "user_typing", "data": {"channel_id": id(TOWN).to_base32(), "parent_id": ""}})).await;
        let typed = next_json(&mut a).await;
        assert_eq!(typed, json!({"status": "OK", "seq_reply": 4}));
        let typing = next_json(&mut c).await;
        assert_eq!(typing["event"], "typing");
        assert_eq!(typing["seq"], 2);
        assert_eq!(typing["data"]["user_id"], id(A).to_base32());
        // Typing in a thread of the same channel at once is a new place, not a repeat: it is
        // not swallowed by the once-a-second limit of the channel's composer.
        send(&mut a, json!({"seq": 5, "action": "user_typing", "data": {"channel_id": id(TOWN).to_base32(), "parent_id": id(1_101).to_base32()}})).await;
        assert_eq!(
            next_json(&mut a).await,
            json!({"status": "OK", "seq_reply": 5})
        );
        let in_thread = next_json(&mut c).await;
        assert_eq!(in_thread["event"], "typing");
        assert_eq!(in_thread["data"]["parent_id"], id(1_101).to_base32());
        // A repeat in the channel within the second is acknowledged but not sent again; the
        // `presence` action the apps send is acknowledged too.
        send(&mut a, json!({"seq": 6, "action": "user_typing", "data": {"channel_id": id(TOWN).to_base32(), "parent_id": ""}})).await;
        assert_eq!(
            next_json(&mut a).await,
            json!({"status": "OK", "seq_reply": 6})
        );
        send(
            &mut a,
            json!({"seq": 8, "action": "presence", "data": {"channel_id": id(TOWN).to_base32()}}),
        )
        .await;
        assert_eq!(
            next_json(&mut a).await,
            json!({"status": "OK", "seq_reply": 8})
        );
        // Not a member of the private channel: refused, nothing proposed.
        send(&mut c, json!({"seq": 7, "action": "user_typing", "data": {"channel_id": id(PRIVATE).to_base32()}})).await;
        let refused = next_json(&mut c).await;
        assert_eq!(refused["status"], "FAIL");
        assert_eq!(refused["seq_reply"], 7);
        assert_eq!(refused["error"]["status_code"], 403);

        // Alice drops; two posts happen; she comes back with the next seq she expects.
        drop(a);
        fx.post(1_102, TOWN, B, None, "missed one", 110_200);
        fx.post(1_103, TOWN, B, None, "missed two", 110_300);
        let query = format!("?connection_id={connection_id}&sequence_number=3&posted_ack=true&disconnect_err_code=1006");
        let mut a = connect(addr, &query, Some(&token_a)).await;
        let r1 = next_json(&mut a).await;
        let r2 = next_json(&mut a).await;
        assert_eq!(r1["event"], "posted");
        assert_eq!((r1["seq"].as_u64(), r2["seq"].as_u64()), (Some(3), Some(4)));
        assert!(r1["data"]["post"]
            .as_str()
            .unwrap_or("")
            .contains("missed one"));
        assert!(r2["data"]["post"]
            .as_str()
            .unwrap_or("")
            .contains("missed two"));
        let mut waited = 0;
        while fx.hub.connection_count() != 2 && waited < 50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        assert_eq!(fx.hub.connection_count(), 2);
    }

    async fn close_code(ws: &mut Client) -> Option<u16> {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .expect("closed in time")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_frames_close_only_their_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let fx = Fixture::new(512);
        fx.world();
        let token = session(&fx, A);
        let addr = serve(&fx).await;

        // An oversized message: closed with 1009.
        let mut big = connect(addr, "", Some(&token)).await;
        assert_eq!(next_json(&mut big).await["event"], "hello");
        big.send(Message::text("x".repeat(200_000)))
            .await
            .expect("send");
        assert_eq!(close_code(&mut big).await, Some(1009));

        // Raw garbage after a valid handshake: closed with a protocol error.
        let mut raw = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        raw.write_all(
            b"GET /api/v4/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = raw.read(&mut byte).await.expect("read");
            assert_eq!(n, 1, "response head");
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"));
        raw.write_all(&[0xff; 64]).await.expect("write garbage");
        let mut reply = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), raw.read_exact(&mut reply))
            .await
            .expect("answer in time")
            .expect("a close frame");
        assert_eq!(reply[0], 0x88, "close frame");

        // The server keeps serving.
        let mut ok = connect(addr, "", Some(&token)).await;
        assert_eq!(next_json(&mut ok).await["event"], "hello");
        send(&mut ok, json!({"seq": 1, "action": "ping"})).await;
        assert_eq!(next_json(&mut ok).await["data"]["text"], "pong");
    }

    /// A raw TCP connection upgraded with a bearer token, the 101 head read byte by byte.
    async fn raw_upgrade(addr: std::net::SocketAddr, token: &str) -> tokio::net::TcpStream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut raw = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let head = format!(
            "GET /api/v4/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        raw.write_all(head.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = raw.read(&mut byte).await.expect("read");
            assert_eq!(n, 1, "response head");
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"));
        raw
    }

    /// A client frame (masked, as RFC 6455 requires of clients).
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![0x80 | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// The next server frame: (opcode, payload).
    async fn server_frame(raw: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let read = async {
            let mut head = [0u8; 2];
            raw.read_exact(&mut head).await.expect("frame head");
            let len = match head[1] & 0x7f {
                126 => {
                    let mut ext = [0u8; 2];
                    raw.read_exact(&mut ext).await.expect("length");
                    u16::from_be_bytes(ext) as usize
                }
                127 => {
                    let mut ext = [0u8; 8];
                    raw.read_exact(&mut ext).await.expect("length");
                    u64::from_be_bytes(ext) as usize
                }
                short => short as usize,
            };
            let mut payload = vec![0u8; len];
            raw.read_exact(&mut payload).await.expect("payload");
            (head[0] & 0x0f, payload)
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("a frame in time")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_arriving_together_or_byte_by_byte_are_all_answered_in_order() {
        use tokio::io::AsyncWriteExt;
        let fx = Fixture::new(512);
        fx.world();
        let token = session(&fx, A);
        let addr = serve(&fx).await;
        let mut raw = raw_upgrade(addr, &token).await;
        let (opcode, hello) = server_frame(&mut raw).await;
        assert_eq!(opcode, 1);
        assert!(String::from_utf8_lossy(&hello).contains("\"hello\""));

        // A ping, two actions (one longer than 125 bytes) and another ping in one write.
        let action = |seq: u64, pad: usize| {
            json!({"seq": seq, "action": "ping", "data": {"pad": "p".repeat(pad)}}).to_string()
        };
        let mut burst = client_frame(0x9, b"one");
        burst.extend(client_frame(0x1, action(1, 10).as_bytes()));
        burst.extend(client_frame(0x1, action(2, 300).as_bytes()));
        burst.extend(client_frame(0x9, b"two"));
        raw.write_all(&burst).await.expect("write burst");
        // The same again, one byte per write.
        let mut trickle = client_frame(0x1, action(3, 0).as_bytes());
        trickle.extend(client_frame(0x9, b"three"));
        for byte in trickle {
            raw.write_all(&[byte]).await.expect("write byte");
            raw.flush().await.expect("flush");
        }

        let mut got = Vec::new();
        for _ in 0..6 {
            let (opcode, payload) = server_frame(&mut raw).await;
            got.push(match opcode {
                0xa => format!("pong {}", String::from_utf8_lossy(&payload)),
                0x1 => {
                    let reply: Value = serde_json::from_slice(&payload).expect("JSON reply");
                    assert_eq!(reply["status"], "OK");
                    format!("reply {}", reply["seq_reply"])
                }
                other => panic!("unexpected opcode {other}"),
            });
        }
        assert_eq!(
            got,
            [
                "pong one",
                "reply 1",
                "reply 2",
                "pong two",
                "reply 3",
                "pong three"
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_authentication_in_time_closes() {
        let fx = Fixture::new(512);
        fx.world();
        let addr = serve(&fx).await;
        let mut ws = connect(addr, "", None).await;
        send(&mut ws, json!({"seq": 1, "action": "ping"})).await;
        let refused = next_json(&mut ws).await;
        assert_eq!(refused["status"], "FAIL");
        send(
            &mut ws,
            json!({"seq": 2, "action": "authentication_challenge", "data": {"token": "nope"}}),
        )
        .await;
        let bad = next_json(&mut ws).await;
        assert_eq!(bad["status"], "FAIL");
        assert_eq!(bad["seq_reply"], 2);
        assert_eq!(close_code(&mut ws).await, Some(1008));
    }
}

/// `count` new users sign up and join the team one by one, as a big team does; `after_each`
/// runs after every join.
fn join_team(fx: &Fixture, count: u64, mut after_each: impl FnMut(&Fixture)) {
    for n in 0..count {
        let user = 10_000 + n;
        fx.user(user, &format!("member{n}"));
        fx.apply(Command::AddTeamMember {
            team_id: id(TEAM),
            user_id: id(user),
            at: 5_000 + n,
        });
        after_each(fx);
    }
}

#[test]
fn joins_to_a_big_team_keep_the_broad_ring_within_its_bytes_and_cost_a_tree_path_each() {
    let bound = 16 << 20;
    let fx = Fixture::with_config(HubConfig {
        broad_audience: 8,
        broad_events: 1_000_000,
        broad_bytes: bound,
        ..HubConfig::default()
    });
    let joins = 2_000;
    fx.world();
    join_team(&fx, joins, |_| {});
    let memory = fx.hub.memory();
    assert!(memory.broad_bytes <= bound, "{memory:?}");
    // Each join tells the town square and off-topic: two broad events per join, every one
    // still held. A copied member list per event (the old audiences) would have cost
    // ~16 KB each on average here and pushed most of them out of the bound.
    assert!(
        memory.broad_events as u64 >= 2 * (joins - 8),
        "joins evicted: {memory:?}"
    );
    assert!(
        memory.broad_bytes / memory.broad_events < 4096,
        "an audience version should cost a tree path: {memory:?}"
    );
    // The member cache holds each channel's current members once.
    assert!(
        memory.member_cache_ids as u64 <= 2 * (joins + 3) + 2,
        "{memory:?}"
    );
}

#[test]
fn the_broad_byte_bound_evicts_and_refuses_resumes_past_it() {
    let bound = 64 << 10;
    let fx = Fixture::with_config(HubConfig {
        broad_audience: 8,
        broad_events: 1_000_000,
        broad_bytes: bound,
        ..HubConfig::default()
    });
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("fresh expected")
    };
    drain(&a);
    fx.hub.unregister(&a);
    join_team(&fx, 300, |fx| assert!(fx.hub.memory().broad_bytes <= bound));
    let memory = fx.hub.memory();
    assert!(memory.broad_events < 600, "the bound evicted: {memory:?}");
    let stream = parse_connection_id(id(A), &connection_id).expect("id");
    let (again, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 1,
        }),
    );
    assert!(matches!(reg, Registered::Fresh { .. }), "{reg:?}");
    assert_eq!(names(&drain(&again)), ["hello"]);
}

#[test]
fn the_window_byte_bound_evicts_the_oldest_first_and_refuses_resumes_past_it() {
    let bound = 16 << 10;
    let fx = Fixture::with_config(HubConfig {
        window_events: 512,
        broad_audience: usize::MAX,
        window_bytes: bound,
        ..HubConfig::default()
    });
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let Registered::Fresh { connection_id: old } = reg else {
        panic!("fresh expected")
    };
    drain(&a);
    fx.hub.unregister(&a);
    for n in 0..200 {
        fx.post(900 + n, TOWN, B, None, "a post of some length", 80_000 + n);
        let memory = fx.hub.memory();
        assert!(memory.window_bytes <= bound, "after post {n}: {memory:?}");
    }
    let memory = fx.hub.memory();
    assert!(memory.window_slots < 3 * 200, "evicted: {memory:?}");
    assert!(memory.window_slots > 0, "the newest are kept: {memory:?}");
    let stream = parse_connection_id(id(A), &old).expect("id");
    let (again, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 1,
        }),
    );
    let Registered::Fresh { connection_id: new } = reg else {
        panic!("the oldest events left: a new stream is expected")
    };
    drain(&again);
    fx.hub.unregister(&again);
    // A stream that started after the evictions resumes.
    fx.post(2_000, TOWN, B, None, "after", 90_000);
    let stream = parse_connection_id(id(A), &new).expect("id");
    let (third, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 1,
        }),
    );
    assert_eq!(reg, Registered::Resumed { replayed: 1 });
    assert_eq!(names(&drain(&third)), ["posted"]);
}

#[test]
fn windows_beyond_the_user_bound_are_dropped_and_older_streams_refused() {
    let fx = Fixture::with_config(HubConfig {
        broad_audience: usize::MAX,
        window_users: 100,
        ..HubConfig::default()
    });
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let Registered::Fresh { connection_id } = reg else {
        panic!("fresh expected")
    };
    drain(&a);
    fx.hub.unregister(&a);
    // Each join puts `added_to_team` in the new member's own window.
    join_team(&fx, 300, |fx| {
        assert!(fx.hub.memory().windows <= 100, "{:?}", fx.hub.memory())
    });
    let stream = parse_connection_id(id(A), &connection_id).expect("id");
    let (again, reg) = fx.connect(
        A,
        Some(Resume {
            stream,
            next_seq: 1,
        }),
    );
    assert!(matches!(reg, Registered::Fresh { .. }), "{reg:?}");
    drain(&again);
}

/// The stream of `connection_id` resumed on `fx` from `next_seq`.
fn resume(fx: &Fixture, user: u64, connection_id: &str, next_seq: u64) -> (Arc<Conn>, Registered) {
    let stream = parse_connection_id(id(user), connection_id).expect("our connection id");
    fx.connect(user, Some(Resume { stream, next_seq }))
}

/// What `from` would send its peers now, delivered to each of `to`.
fn share_checkpoints(from: &Fixture, to: &[&Fixture]) {
    let taken = from.hub.take_checkpoints();
    for batch in super::checkpoints::encode(&taken) {
        for peer in to {
            peer.hub
                .receive_checkpoints(&batch)
                .expect("a batch we encoded decodes");
        }
    }
}

fn fresh_id(registered: Registered) -> String {
    match registered {
        Registered::Fresh { connection_id } => connection_id,
        other => panic!("fresh stream expected, got {other:?}"),
    }
}

#[test]
fn a_stream_far_older_than_its_window_resumes_on_another_node_from_a_checkpoint() {
    // Windows of 16 events; the stream lives through 61 before its socket dies.
    let n1 = Fixture::new(16);
    let n2 = Fixture::new(16);
    let n3 = Fixture::new(16);
    let all = |f: &dyn Fn(&Fixture)| [&n1, &n2, &n3].iter().for_each(|fx| f(fx));
    all(&|fx| fx.world());
    let (a1, reg) = n1.connect(A, None);
    let connection_id = fresh_id(reg);
    all(&|fx| {
        for n in 0..50 {
            fx.post(2000 + n, TOWN, B, None, &format!("m{n}"), 100_000 + n);
        }
    });
    // Node 1's periodic checkpoint reaches node 2 (not node 3).
    share_checkpoints(&n1, &[&n2]);
    all(&|fx| {
        for n in 50..60 {
            fx.post(2000 + n, TOWN, B, None, &format!("m{n}"), 100_000 + n);
        }
    });
    let live = drain(&a1);
    assert_eq!(seqs(&live), (0..=60).collect::<Vec<u64>>());
    // The client read through seq 57, then node 1 died (no final checkpoint went out).
    all(&|fx| fx.post(2060, TOWN, B, None, "m60", 100_060));

    // Node 3 knows only the stream's start, 61 events ago: it cannot number the gap.
    let (_, reg) = resume(&n3, A, &connection_id, 58);
    assert!(matches!(reg, Registered::Fresh { .. }));
    // Node 2 numbers from node 1's checkpoint at seq 50.
    let (a2, reg) = resume(&n2, A, &connection_id, 58);
    assert_eq!(reg, Registered::Resumed { replayed: 4 });
    let frames = drain(&a2);
    assert_eq!(seqs(&frames), [58, 59, 60, 61]);
    // The same frames node 1 gave those seqs.
    assert_eq!(frames[..3], live[58..]);
    assert_eq!(
        frames[3]["data"]["post"]
            .as_str()
            .map(|p| p.contains("m60")),
        Some(true)
    );

    // The resumed stream goes on numbering and checkpointing: node 2's checkpoint lets node 3
    // resume it after another 12 events.
    all(&|fx| fx.post(2061, TOWN, B, None, "m61", 100_061));
    assert_eq!(seqs(&drain(&a2)), [62]);
    share_checkpoints(&n2, &[&n1, &n3]);
    n2.hub.unregister(&a2);
    all(&|fx| {
        for n in 62..74 {
            fx.post(2000 + n, TOWN, B, None, &format!("m{n}"), 100_000 + n);
        }
    });
    let (a3, reg) = resume(&n3, A, &connection_id, 63);
    assert_eq!(reg, Registered::Resumed { replayed: 12 });
    assert_eq!(seqs(&drain(&a3)), (63..75).collect::<Vec<u64>>());
}

#[test]
fn a_client_behind_the_newest_checkpoint_resumes_from_an_older_one() {
    let n1 = Fixture::new(16);
    let n2 = Fixture::new(16);
    let both = |f: &dyn Fn(&Fixture)| [&n1, &n2].iter().for_each(|fx| f(fx));
    both(&|fx| fx.world());
    let (a1, reg) = n1.connect(A, None);
    let connection_id = fresh_id(reg);
    both(&|fx| {
        for n in 0..20 {
            fx.post(3000 + n, TOWN, B, None, "x", 110_000 + n);
        }
    });
    share_checkpoints(&n1, &[&n2]);
    both(&|fx| {
        for n in 20..25 {
            fx.post(3000 + n, TOWN, B, None, "y", 110_000 + n);
        }
    });
    // Node 1 queued seqs 21..25 and made its final checkpoint at 25 on close, but the client
    // only got through seq 22.
    drain(&a1);
    n1.hub.unregister(&a1);
    share_checkpoints(&n1, &[&n2]);
    let (a2, reg) = resume(&n2, A, &connection_id, 23);
    assert_eq!(reg, Registered::Resumed { replayed: 3 });
    assert_eq!(seqs(&drain(&a2)), [23, 24, 25]);
    // A client claiming less than any checkpoint the window covers gets a new stream.
    let (_, reg) = resume(&n2, A, &connection_id, 5);
    assert!(matches!(reg, Registered::Fresh { .. }));
}

#[test]
fn the_final_checkpoint_of_a_closed_socket_resumes_on_the_same_node_past_its_window() {
    let fx = Fixture::new(4);
    fx.world();
    let (a, reg) = fx.connect(A, None);
    let connection_id = fresh_id(reg);
    for n in 0..30 {
        fx.post(4000 + n, TOWN, B, None, "x", 120_000 + n);
    }
    assert_eq!(seqs(&drain(&a)).last(), Some(&30));
    // No periodic checkpoint was taken: the one made on close is what numbers the stream.
    fx.hub.unregister(&a);
    fx.post(4030, TOWN, B, None, "after", 120_030);
    let (again, reg) = resume(&fx, A, &connection_id, 31);
    assert_eq!(reg, Registered::Resumed { replayed: 1 });
    assert_eq!(seqs(&drain(&again)), [31]);
    let memory = fx.hub.memory();
    assert_eq!(memory.checkpoint_streams, 1);
    assert!(memory.checkpoint_bytes > 0);
}

#[test]
fn a_connection_that_dropped_events_makes_no_more_checkpoints() {
    let fx = Fixture::new(512);
    fx.world();
    let (a, _) = fx.connect(A, None);
    let (b, _) = fx.connect(B, None);
    drain(&a);
    drain(&b);
    fx.post(5000, PRIVATE, B, None, "one", 130_000);
    let taken = fx.hub.take_checkpoints();
    assert_eq!(taken.len(), 2, "both streams moved: {taken:?}");
    // Fill B's queue past its high-water mark (48 of 64), then A types: B drops the notice.
    for n in 0..50 {
        fx.post(5001 + n, PRIVATE, A, None, "fill", 130_001 + n);
    }
    (fx.hub.proposer)(Command::UserTyping {
        user_id: id(A),
        channel_id: id(PRIVATE),
        parent_id: None,
        at: 140_000,
    });
    assert_eq!(b.queue.lock().dropped, 1);
    let taken = fx.hub.take_checkpoints();
    let users: Vec<Id> = taken.iter().map(|c| c.user).collect();
    assert_eq!(
        users,
        [id(A)],
        "B's seqs no longer match its stream's numbering"
    );
    for _ in 0..20 {
        assert!(fx.hub.take_checkpoints().iter().all(|c| c.user == id(A)));
    }
    assert_eq!(seqs(&drain(&a)), (1..=51).collect::<Vec<u64>>());
}
