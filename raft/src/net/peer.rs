//! openraft's network: one [`PeerClient`] per target node, speaking the wire protocol through
//! the shared [`HttpClient`]. Snapshots are sent as a sequence of raw chunks read from the
//! snapshot file (bounded memory), then one install call carrying the vote and the metadata.

use super::client::{HttpClient, TransportError};
use super::wire::{self, InstallSnapshot};
use crate::snapshot_store::SnapshotFile;
use crate::types::{Snapshot, TypeConfig, Vote};
use bytes::Bytes;
use openraft::errors::{
    NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, EntryPayload, OptionalSend};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// File content one append request carries at most (a single larger entry still goes alone).
pub(crate) const APPEND_FILE_BYTES: usize = 16 << 20;

/// How many leading entries fit in `budget` bytes of file content (at least one).
fn entries_within_budget(entries: &[crate::types::Entry], budget: usize) -> usize {
    let mut total = 0usize;
    for (n, entry) in entries.iter().enumerate() {
        if let EntryPayload::Normal(proposal) = &entry.payload {
            total = total.saturating_add(proposal.command.payload_bytes());
        }
        if total > budget && n > 0 {
            return n;
        }
    }
    entries.len()
}

#[derive(Clone)]
pub(crate) struct NetworkFactory {
    pub http: HttpClient,
    /// The least time an append may take. openraft gives each append three quarters of the
    /// heartbeat interval (75 ms by default), which a round trip between distant nodes, a
    /// follower's slow fsync or 16 MiB of file chunks can exceed: such an append was cut off
    /// and sent again, and with every round trip past it replication stopped altogether.
    pub append_timeout: Duration,
    pub snapshot_chunk_bytes: usize,
    pub snapshot_chunk_timeout: Duration,
    pub snapshot_install_timeout: Duration,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, _target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            addr: node.addr.clone(),
            factory: self.clone(),
        }
    }
}

pub(crate) struct PeerClient {
    addr: String,
    factory: NetworkFactory,
}

/// Transport failures as openraft classifies them: unreachable peers are backed off.
fn rpc_error(error: TransportError) -> RPCError<TypeConfig> {
    match error {
        TransportError::Unreachable { .. } | TransportError::Status { .. } => {
            RPCError::Unreachable(Unreachable::new(&error))
        }
        _ => RPCError::Network(NetworkError::new(&error)),
    }
}

fn streaming_error(error: TransportError) -> StreamingError<TypeConfig> {
    match error {
        TransportError::Unreachable { .. } | TransportError::Status { .. } => {
            StreamingError::Unreachable(Unreachable::new(&error))
        }
        _ => StreamingError::Network(NetworkError::new(&error)),
    }
}

impl PeerClient {
    async fn rpc<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let answer: Result<Resp, RaftError<TypeConfig>> = self
            .factory
            .http
            .call(&self.addr, path, request, timeout)
            .await
            .map_err(rpc_error)?;
        // The remote Raft is stopped or broken: as good as unreachable.
        answer.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }

    async fn send_snapshot(
        &self,
        vote: Vote,
        snapshot: Snapshot,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let transfer: u64 = rand::random();
        let file: SnapshotFile = snapshot.snapshot;
        let chunk_bytes = self.factory.snapshot_chunk_bytes.max(4096);
        let mut offset = 0u64;
        loop {
            let reading = file.clone();
            let chunk = crate::codec::blocking(move || reading.read_chunk(offset, chunk_bytes))
                .await
                .and_then(|r| r)
                .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
            let len = chunk.len() as u64;
            let path = format!(
                "{}?transfer={transfer}&offset={offset}",
                wire::SNAPSHOT_CHUNK
            );
            self.factory
                .http
                .post(
                    &self.addr,
                    &path,
                    Bytes::from(chunk),
                    self.factory.snapshot_chunk_timeout,
                )
                .await
                .map_err(streaming_error)?;
            offset += len;
            if len == 0 || offset >= file.len {
                break;
            }
        }
        let path = format!("{}?transfer={transfer}", wire::SNAPSHOT_INSTALL);
        let request = InstallSnapshot {
            vote,
            meta: snapshot.meta,
        };
        let answer: Result<SnapshotResponse<TypeConfig>, RaftError<TypeConfig>> = self
            .factory
            .http
            .call(
                &self.addr,
                &path,
                &request,
                self.factory.snapshot_install_timeout,
            )
            .await
            .map_err(streaming_error)?;
        answer.map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotFile;

    /// Sends at most [`APPEND_FILE_BYTES`] of file content per request: openraft bounds an
    /// append by entry count only, and 1024 entries of 1 MiB file chunks would be a gigabyte
    /// in one body (past the receiver's limit, and in memory twice). A cut request answers
    /// `PartialSuccess` up to its last entry, and openraft sends the rest next.
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let timeout = option.soft_ttl().max(self.factory.append_timeout);
        let keep = entries_within_budget(&rpc.entries, APPEND_FILE_BYTES);
        if keep == rpc.entries.len() {
            return self.rpc(wire::APPEND, &rpc, timeout).await;
        }
        rpc.entries.truncate(keep);
        let last = rpc.entries.last().map(|entry| entry.log_id);
        let answer: AppendEntriesResponse<TypeConfig> =
            self.rpc(wire::APPEND, &rpc, timeout).await?;
        Ok(match answer {
            AppendEntriesResponse::Success => AppendEntriesResponse::PartialSuccess(last),
            other => other,
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(wire::VOTE, &rpc, option.soft_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.rpc(wire::PRE_VOTE, &rpc, option.soft_ttl()).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            answer = self.send_snapshot(vote, snapshot) => answer,
        }
    }
}
