//! Entry points for the fuzz targets (`fuzz/`, `cargo +nightly fuzz run raft_wire`) and the
//! corpus replay test (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes and returns nothing;
//! each must never panic on any input: a decoder answers garbage with an error. The assertions
//! here are properties of successful decodes (a decoded message re-encodes, the re-encoding
//! decodes, and encoding it again gives the same bytes).

use crate::codec::{decode, encode};
use crate::net::wire::{self, Committed, InstallSnapshot, LocalStatus, MembershipOp, WireResult};
use crate::state_machine::ReplicationMeta;
use crate::types::{Entry, Proposal, TypeConfig};
use openraft::errors::RaftError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The wire messages, chosen by the first byte of a `raft_wire` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WireKind {
    /// `/raft/append`'s body (the entries are then stored as log records).
    Append = 0,
    /// `/raft/vote` and `/raft/pre-vote`'s body.
    Vote = 1,
    /// `/raft/snapshot/install`'s body.
    InstallSnapshot = 2,
    /// `/cluster/write`'s body.
    ForwardWrite = 3,
    /// `/cluster/membership`'s body.
    Membership = 4,
    /// A `raft_log` record as the log store reads it back.
    LogEntry = 5,
    /// The query string of `/raft/snapshot/chunk` and `/cluster/message`.
    Query = 6,
    /// The replication metadata a snapshot stream carries in its `meta` family.
    ReplicationMeta = 7,
    /// Answers a node decodes from a peer.
    AppendAnswer = 8,
    VoteAnswer = 9,
    InstallAnswer = 10,
    ForwardWriteAnswer = 11,
    ReadIndexAnswer = 12,
    MembershipAnswer = 13,
    StatusAnswer = 14,
}

impl WireKind {
    pub const ALL: [WireKind; 15] = [
        WireKind::Append,
        WireKind::Vote,
        WireKind::InstallSnapshot,
        WireKind::ForwardWrite,
        WireKind::Membership,
        WireKind::LogEntry,
        WireKind::Query,
        WireKind::ReplicationMeta,
        WireKind::AppendAnswer,
        WireKind::VoteAnswer,
        WireKind::InstallAnswer,
        WireKind::ForwardWriteAnswer,
        WireKind::ReadIndexAnswer,
        WireKind::MembershipAnswer,
        WireKind::StatusAnswer,
    ];
}

/// A decoded message re-encodes, decodes again and encodes to the same bytes.
fn roundtrip<T: Serialize + DeserializeOwned>(body: &[u8]) -> Option<T> {
    let value: T = decode(body).ok()?;
    let bytes = encode(&value).expect("a decoded message re-encodes");
    let again: T = decode(&bytes).expect("a re-encoded message decodes");
    assert_eq!(
        encode(&again).expect("a decoded message re-encodes"),
        bytes,
        "encoding is stable"
    );
    Some(value)
}

/// `[u8 kind][body]`: the body decoded as the node-to-node message of that kind
/// ([`WireKind`], the kind byte taken modulo their number).
pub fn raft_wire(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let kind = WireKind::ALL[kind as usize % WireKind::ALL.len()];
    match kind {
        WireKind::Append => {
            if let Some(request) = roundtrip::<AppendEntriesRequest<TypeConfig>>(body) {
                // What the log store writes for each entry it reads back.
                for entry in &request.entries {
                    let stored = encode(entry).expect("an entry encodes");
                    decode::<Entry>(&stored).expect("a stored entry decodes");
                }
            }
        }
        WireKind::Vote => {
            roundtrip::<VoteRequest<TypeConfig>>(body);
        }
        WireKind::InstallSnapshot => {
            roundtrip::<InstallSnapshot>(body);
        }
        WireKind::ForwardWrite => {
            roundtrip::<Proposal>(body);
        }
        WireKind::Membership => {
            roundtrip::<MembershipOp>(body);
        }
        WireKind::LogEntry => {
            roundtrip::<Entry>(body);
        }
        WireKind::Query => {
            if let Ok(query) = std::str::from_utf8(body) {
                let _ = wire::query_u64(Some(query), "transfer");
                let _ = wire::query_u64(Some(query), "offset");
                let _ = wire::query_u64(Some(query), "from");
                if let Some(topic) = wire::query_str(Some(query), "topic") {
                    let _ = crate::messages::valid_topic(topic);
                }
            }
        }
        WireKind::ReplicationMeta => {
            roundtrip::<ReplicationMeta>(body);
        }
        WireKind::AppendAnswer => {
            roundtrip::<Result<AppendEntriesResponse<TypeConfig>, RaftError<TypeConfig>>>(body);
        }
        WireKind::VoteAnswer => {
            roundtrip::<Result<VoteResponse<TypeConfig>, RaftError<TypeConfig>>>(body);
        }
        WireKind::InstallAnswer => {
            roundtrip::<Result<SnapshotResponse<TypeConfig>, RaftError<TypeConfig>>>(body);
        }
        WireKind::ForwardWriteAnswer => {
            roundtrip::<WireResult<Committed>>(body);
        }
        WireKind::ReadIndexAnswer => {
            roundtrip::<WireResult<u64>>(body);
        }
        WireKind::MembershipAnswer => {
            roundtrip::<WireResult<()>>(body);
        }
        WireKind::StatusAnswer => {
            roundtrip::<LocalStatus>(body);
        }
    }
}

/// Real encodings of each [`WireKind`], `[u8 kind][body]`, named: the seed corpus of
/// `raft_wire`, written by `tests/fuzz_corpus.rs`.
pub fn raft_wire_seeds() -> Vec<(String, Vec<u8>)> {
    use confab_storage::{Command, Id};
    use openraft::entry::RaftEntry;
    use openraft::testing::log_id;
    use openraft::{BasicNode, Membership};
    use std::collections::{BTreeMap, BTreeSet};

    let id = |n: u8| Id::from_bytes([n; 16]);
    let vote = crate::types::Vote::new(3, 1);
    let committed_vote = crate::types::Vote::new_committed(3, 1);
    let nodes: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|n| (n, BasicNode::new(format!("10.0.0.{n}:9065"))))
        .collect();
    let voters: BTreeSet<u64> = nodes.keys().copied().collect();
    let membership = Membership::new(vec![voters], nodes).expect("membership");
    let stored = crate::types::StoredMembership::new(
        Some(log_id::<TypeConfig>(1, 1, 1)),
        membership.clone(),
    );
    let proposal = Proposal {
        id: crate::types::RequestId {
            node: 1,
            epoch: 0x5eed,
            seq: 7,
        },
        command: Command::CreatePost {
            id: id(1),
            at: 1_700_000_000_000,
            channel_id: id(2),
            user_id: id(3),
            root_id: None,
            message: "hello @bob".into(),
            post_type: String::new(),
            props: "{}".into(),
            pending_post_id: String::new(),
            priority: String::new(),
            file_ids: Vec::new(),
            requested_ack: false,
            here_online: Vec::new(),
            channel_wide_ignored: false,
        },
    };
    let entries = vec![
        Entry::new_blank(log_id::<TypeConfig>(3, 1, 10)),
        Entry::new_normal(log_id::<TypeConfig>(3, 1, 11), proposal.clone()),
        Entry::new_membership(log_id::<TypeConfig>(3, 1, 12), membership),
    ];
    let append = AppendEntriesRequest::<TypeConfig> {
        vote: committed_vote,
        prev_log_id: Some(log_id::<TypeConfig>(2, 1, 9)),
        entries: entries.clone(),
        leader_commit: Some(log_id::<TypeConfig>(2, 1, 9)),
    };
    let heartbeat = AppendEntriesRequest::<TypeConfig> {
        vote: committed_vote,
        prev_log_id: Some(log_id::<TypeConfig>(3, 1, 12)),
        entries: Vec::new(),
        leader_commit: Some(log_id::<TypeConfig>(3, 1, 12)),
    };
    let vote_request = VoteRequest::<TypeConfig> {
        vote,
        last_log_id: Some(log_id::<TypeConfig>(2, 1, 9)),
        leadership_transfer: false,
    };
    let install = InstallSnapshot {
        vote: committed_vote,
        meta: crate::types::SnapshotMeta {
            last_log_id: Some(log_id::<TypeConfig>(3, 1, 12)),
            last_membership: stored.clone(),
        },
    };
    let replication = ReplicationMeta {
        last_applied: Some(log_id::<TypeConfig>(3, 1, 12)),
        membership: stored,
    };
    let status = LocalStatus {
        id: 1,
        state: "Leader".into(),
        term: 3,
        leader: Some(1),
        last_log_index: Some(12),
        applied_index: 12,
        snapshot_index: Some(10),
        purged_index: None,
    };

    fn enc<T: Serialize>(value: &T) -> Vec<u8> {
        encode(value).expect("a seed encodes")
    }
    let mut seeds = Vec::new();
    let mut add = |name: &str, kind: WireKind, body: Vec<u8>| {
        let mut bytes = vec![kind as u8];
        bytes.extend_from_slice(&body);
        seeds.push((name.to_string(), bytes));
    };
    add("append", WireKind::Append, enc(&append));
    add("heartbeat", WireKind::Append, enc(&heartbeat));
    add("vote", WireKind::Vote, enc(&vote_request));
    add(
        "pre_vote_transfer",
        WireKind::Vote,
        enc(&VoteRequest::<TypeConfig> {
            leadership_transfer: true,
            ..vote_request
        }),
    );
    add("install_snapshot", WireKind::InstallSnapshot, enc(&install));
    add("forward_write", WireKind::ForwardWrite, enc(&proposal));
    for (name, op) in [
        (
            "add_learner",
            MembershipOp::AddLearner {
                id: 4,
                addr: "10.0.0.4:9065".into(),
            },
        ),
        ("promote", MembershipOp::Promote { id: 4 }),
        ("remove_voter", MembershipOp::RemoveVoter { id: 2 }),
        (
            "replace_voters",
            MembershipOp::ReplaceVoters { ids: vec![1, 3, 4] },
        ),
    ] {
        add(name, WireKind::Membership, enc(&op));
    }
    for (n, entry) in entries.iter().enumerate() {
        add(&format!("log_entry_{n}"), WireKind::LogEntry, enc(entry));
    }
    add(
        "query_chunk",
        WireKind::Query,
        b"transfer=1234567890&offset=1048576".to_vec(),
    );
    add(
        "query_message",
        WireKind::Query,
        b"topic=presence&from=2".to_vec(),
    );
    add(
        "replication_meta",
        WireKind::ReplicationMeta,
        enc(&replication),
    );
    let ok_append: Result<AppendEntriesResponse<TypeConfig>, RaftError<TypeConfig>> =
        Ok(AppendEntriesResponse::Success);
    add("append_answer", WireKind::AppendAnswer, enc(&ok_append));
    let ok_vote: Result<VoteResponse<TypeConfig>, RaftError<TypeConfig>> = Ok(VoteResponse::new(
        vote,
        Some(log_id::<TypeConfig>(2, 1, 9)),
        true,
    ));
    add("vote_answer", WireKind::VoteAnswer, enc(&ok_vote));
    let ok_install: Result<SnapshotResponse<TypeConfig>, RaftError<TypeConfig>> =
        Ok(SnapshotResponse::new(committed_vote));
    add("install_answer", WireKind::InstallAnswer, enc(&ok_install));
    let committed: WireResult<Committed> = Ok(Committed {
        index: 11,
        applied: None,
    });
    add(
        "write_answer",
        WireKind::ForwardWriteAnswer,
        enc(&committed),
    );
    let not_leader: WireResult<Committed> = Err(wire::WireError::NotLeader { leader: Some(2) });
    add(
        "write_answer_not_leader",
        WireKind::ForwardWriteAnswer,
        enc(&not_leader),
    );
    let read_index: WireResult<u64> = Ok(12);
    add(
        "read_index_answer",
        WireKind::ReadIndexAnswer,
        enc(&read_index),
    );
    let refused: WireResult<()> = Err(wire::WireError::Refused("no such node".into()));
    add(
        "membership_answer",
        WireKind::MembershipAnswer,
        enc(&refused),
    );
    add("status_answer", WireKind::StatusAnswer, enc(&status));
    seeds
}
