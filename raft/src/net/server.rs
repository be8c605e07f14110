//! The raft-port HTTP server: checks the cluster secret, decodes the body and hands the call to
//! openraft (append, vote, snapshot) or to the node (forwarded writes, read index, membership,
//! status). Incoming snapshot chunks are appended to a temp file of the snapshot directory, so a
//! transfer never holds more than one chunk in memory.

use super::wire::{self, InstallSnapshot, SECRET_HEADER};
use crate::codec::{blocking, decode, encode};
use crate::core::NodeCore;
use crate::snapshot_store::SnapshotFile;
use crate::types::Snapshot;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use openraft::errors::RaftError;
use serde::Serialize;
use std::convert::Infallible;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Largest request body accepted (an append of many large posts stays well below).
const MAX_BODY_BYTES: usize = 256 << 20;

/// A snapshot being received.
struct Incoming {
    transfer: u64,
    path: PathBuf,
    file: File,
    received: u64,
}

pub(crate) struct RaftServer {
    core: Arc<NodeCore>,
    incoming: tokio::sync::Mutex<Option<Incoming>>,
}

type Reply = Response<Full<Bytes>>;

fn text(status: StatusCode, message: impl Into<String>) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(message.into())));
    *response.status_mut() = status;
    response
}

fn answer<T: Serialize>(value: &T) -> Reply {
    match encode(value) {
        Ok(body) => Response::new(Full::new(Bytes::from(body))),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

impl RaftServer {
    pub(crate) fn new(core: Arc<NodeCore>) -> Arc<RaftServer> {
        Arc::new(RaftServer {
            core,
            incoming: tokio::sync::Mutex::new(None),
        })
    }

    /// Serves connections until the task is aborted.
    pub(crate) async fn run(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("raft port accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(request).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("raft connection ended: {e}");
                }
            });
        }
    }

    async fn handle(&self, request: Request<Body>) -> Reply {
        let authorized = request
            .headers()
            .get(SECRET_HEADER)
            .is_some_and(|v| same_secret(v.as_bytes(), self.core.secret.as_bytes()));
        if !authorized {
            return text(StatusCode::UNAUTHORIZED, "missing or wrong cluster secret");
        }
        if request.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "POST only");
        }
        let path = request.uri().path().to_string();
        let query = request.uri().query().map(str::to_string);
        let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
        };
        match self.route(&path, query.as_deref(), body).await {
            Ok(reply) | Err(reply) => reply,
        }
    }

    async fn route(&self, path: &str, query: Option<&str>, body: Bytes) -> Result<Reply, Reply> {
        let bad = |e: std::io::Error| text(StatusCode::BAD_REQUEST, e.to_string());
        let raft = &self.core.raft;
        Ok(match path {
            wire::APPEND => answer(&raft.append_entries(decode(&body).map_err(bad)?).await),
            wire::VOTE => answer(&raft.vote(decode(&body).map_err(bad)?).await),
            wire::PRE_VOTE => answer(&raft.pre_vote(decode(&body).map_err(bad)?).await),
            wire::SNAPSHOT_CHUNK => self.snapshot_chunk(query, body).await?,
            wire::SNAPSHOT_INSTALL => {
                let request: InstallSnapshot = decode(&body).map_err(bad)?;
                self.snapshot_install(query, request).await?
            }
            wire::FORWARD_WRITE => {
                answer(&self.core.propose_local(decode(&body).map_err(bad)?).await)
            }
            wire::READ_INDEX => answer(&self.core.read_index_local().await),
            wire::MEMBERSHIP => answer(
                &self
                    .core
                    .membership_local(decode(&body).map_err(bad)?)
                    .await,
            ),
            wire::STATUS => answer(&self.core.local_status()),
            wire::PEER_MESSAGE => self.peer_message(query, body),
            _ => text(StatusCode::NOT_FOUND, "no such path"),
        })
    }

    /// A topic-tagged message from a peer, handed to its topic's handler.
    fn peer_message(&self, query: Option<&str>, body: Bytes) -> Reply {
        let (Some(topic), Some(from)) = (
            wire::query_str(query, "topic").filter(|t| crate::messages::valid_topic(t)),
            wire::query_u64(query, "from"),
        ) else {
            return text(StatusCode::BAD_REQUEST, "topic and from required");
        };
        let message = crate::messages::PeerMessage {
            from,
            topic: topic.to_string(),
            body,
        };
        if !self.core.messenger.deliver(message) {
            return text(StatusCode::NOT_FOUND, "no handler for this topic");
        }
        answer(&())
    }

    async fn snapshot_chunk(&self, query: Option<&str>, body: Bytes) -> Result<Reply, Reply> {
        let (Some(transfer), Some(offset)) = (
            wire::query_u64(query, "transfer"),
            wire::query_u64(query, "offset"),
        ) else {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "transfer and offset required",
            ));
        };
        let mut incoming = self.incoming.lock().await;
        let same = incoming.as_ref().is_some_and(|i| i.transfer == transfer);
        if !same {
            if offset != 0 {
                return Err(text(StatusCode::CONFLICT, "unknown transfer; restart at 0"));
            }
            if let Some(old) = incoming.take() {
                let _ = std::fs::remove_file(&old.path);
            }
            let path = self.core.snapshots_dir_temp("incoming");
            let file = File::create(&path)
                .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            *incoming = Some(Incoming {
                transfer,
                path,
                file,
                received: 0,
            });
        }
        let Some(mut current) = incoming.take() else {
            return Err(text(StatusCode::INTERNAL_SERVER_ERROR, "no transfer"));
        };
        if current.received != offset {
            let expected = current.received;
            *incoming = Some(current);
            return Err(text(
                StatusCode::CONFLICT,
                format!("offset {offset} where {expected} was due"),
            ));
        }
        let written = blocking(move || {
            let result = current.file.write_all(&body);
            current.received += body.len() as u64;
            (current, result)
        })
        .await;
        match written {
            Ok((current, Ok(()))) => {
                *incoming = Some(current);
                Ok(answer(&()))
            }
            Ok((current, Err(e))) => {
                let _ = std::fs::remove_file(&current.path);
                Err(text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
            }
            Err(e) => Err(text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        }
    }

    async fn snapshot_install(
        &self,
        query: Option<&str>,
        request: InstallSnapshot,
    ) -> Result<Reply, Reply> {
        let transfer = wire::query_u64(query, "transfer")
            .ok_or_else(|| text(StatusCode::BAD_REQUEST, "transfer required"))?;
        let current = {
            let mut incoming = self.incoming.lock().await;
            match incoming.take() {
                Some(current) if current.transfer == transfer => current,
                other => {
                    *incoming = other;
                    return Err(text(StatusCode::CONFLICT, "unknown transfer"));
                }
            }
        };
        let path = current.path.clone();
        let opened = blocking(move || {
            current.file.sync_all()?;
            drop(current.file);
            SnapshotFile::open(&current.path)
        })
        .await
        .and_then(|r| r)
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let snapshot = Snapshot {
            meta: request.meta,
            snapshot: opened,
        };
        let result = self
            .core
            .raft
            .install_full_snapshot(request.vote, snapshot)
            .await
            .map_err(RaftError::<crate::types::TypeConfig>::Fatal);
        // Installed snapshots were moved into place; a refused one is dropped here.
        let _ = std::fs::remove_file(&path);
        Ok(answer(&result))
    }
}
