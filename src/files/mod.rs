//! Files: upload, attach, preview and download, with the bytes replicated through Raft.
//!
//! **Upload** (`ingest`): the node that takes a request streams each file's body, never holding
//! more than one [`MAX_CHUNK_BYTES`] piece of it: each piece is proposed as a `FileChunk`
//! command (awaited before the next is read, so a slow cluster slows the client instead of
//! filling memory) while a sha-256 runs over the bytes. A file that may be an image (by
//! extension or magic bytes) and is at most [`SPOOL_MAX_BYTES`] is also written to a temp file
//! under the data dir, so `images` can decode it after the stream ends. Then one `FileCommit`
//! records the FileInfo, the thumbnail and preview, and content-addresses the bytes (storage's
//! `files` module: the same bytes twice are stored once). The answer (201) goes out only after
//! every commit is applied on this node. Multipart files may come before `channel_id` (the
//! legacy shape): chunks need no channel, so they are streamed all the same and committed once
//! the form is read — nothing is buffered whole.
//!
//! **Interrupted uploads** leave staged chunks that no FileInfo names, so no read can reach
//! them; the leader's reaper ([`spawn_reaper`]) proposes `AbortUploads` with a cut-off time for
//! uploads older than `abandon_after`, and every replica deletes the same chunks.
//!
//! **Space of deleted chunks** (aborted uploads, the second copy of deduplicated bytes): each
//! node's [`spawn_blob_reclaimer`] asks storage to collect the garbage of its blob files when
//! there is enough of it (`Engine::reclaim_blob_garbage`); physical space only, not replicated.
//!
//! **Limits**: `MaxFileSize` (request `Content-Length` and every file's bytes, 413 in
//! Mattermost's shape); at most `max_concurrent_uploads` requests stream at once per node —
//! more wait up to `upload_wait` for a slot, then get 429; images past `MaxImageResolution`
//! (read from the header, before any decoding) or past the decoder's allocation limit upload
//! without previews.
//!
//! **Reads** stream the blob chunk by chunk from the local replica (Range requests start at the
//! chunk holding the first byte), so memory does not grow with the file either.
//!
//! **Public links** are `sha256(salt · file_id)` in base64url, Mattermost's scheme; the salt is
//! derived from the cluster secret, so every node checks the same links and none is stored.

pub mod config;
pub mod images;
pub mod ingest;

pub use confab_storage::files::MAX_CHUNK_BYTES;
pub use config::{FileArgs, FileSettings};

use crate::clock::now_ms;
use confab_raft::RaftNode;
use confab_storage::{Command, Engine};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Largest file kept in a temp file to make previews from; larger images get none.
pub const SPOOL_MAX_BYTES: u64 = 64 << 20;

/// How often the leader looks for abandoned uploads.
const REAP_EVERY: Duration = Duration::from_secs(30);

/// The files state a node shares between requests.
pub struct Files {
    pub settings: FileSettings,
    /// One permit per upload request streaming now.
    pub slots: Semaphore,
    /// Temp files of images being uploaded (emptied at start).
    pub spool_dir: PathBuf,
    public_link_salt: [u8; 32],
    /// Blob-file bytes freed by the reclaimer since start (for `/metrics`).
    pub blob_bytes_reclaimed: AtomicU64,
}

impl Files {
    pub fn new(settings: FileSettings, data_dir: &std::path::Path, secret: &str) -> Arc<Files> {
        let spool_dir = data_dir.join("upload-spool");
        // Leftovers of a crash are of uploads that never answered.
        let _ = std::fs::remove_dir_all(&spool_dir);
        if let Err(e) = std::fs::create_dir_all(&spool_dir) {
            tracing::warn!("cannot create {}: {e}", spool_dir.display());
        }
        let salt: [u8; 32] = Sha256::digest(format!("confab-public-link-salt:{secret}")).into();
        Arc::new(Files {
            slots: Semaphore::new(settings.max_concurrent_uploads),
            settings,
            spool_dir,
            public_link_salt: salt,
            blob_bytes_reclaimed: AtomicU64::new(0),
        })
    }

    /// Mattermost's public link hash: base64url (no padding) of sha256(salt · file id).
    pub fn public_link_hash(&self, file_id: &str) -> String {
        use base64::Engine as _;
        let mut hasher = Sha256::new();
        hasher.update(self.public_link_salt);
        hasher.update(file_id.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.finalize())
    }
}

/// On the leader, every [`REAP_EVERY`]: if an upload older than `abandon_after` is still
/// staged, propose `AbortUploads` for it (the cut-off time travels in the command).
pub fn spawn_reaper(raft: RaftNode, engine: Arc<Engine>, abandon_after: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REAP_EVERY.min(abandon_after));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !raft.is_leader() {
                continue;
            }
            let before = now_ms().saturating_sub(abandon_after.as_millis() as u64);
            let stale = engine.reader().has_stale_uploads(before);
            match stale {
                Ok(true) => {
                    if let Err(e) = raft.write(Command::AbortUploads { before }).await {
                        tracing::warn!("reclaiming abandoned uploads: {e}");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("reading staged uploads: {e}"),
            }
        }
    });
}

/// On every node, every `blob_reclaim_every`: collects the garbage of deleted chunks in this
/// node's blob files once there is at least `blob_reclaim_min_bytes` of it (see
/// `Engine::reclaim_blob_garbage`), on a blocking thread.
pub fn spawn_blob_reclaimer(engine: Arc<Engine>, files: Arc<Files>) {
    let every = files.settings.blob_reclaim_every;
    let min_bytes = files.settings.blob_reclaim_min_bytes;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let engine = engine.clone();
            let done =
                tokio::task::spawn_blocking(move || engine.reclaim_blob_garbage(min_bytes)).await;
            match done {
                Ok(Ok(collected)) => {
                    for c in collected {
                        let freed = c.blob_bytes_before.saturating_sub(c.blob_bytes_after);
                        files
                            .blob_bytes_reclaimed
                            .fetch_add(freed, Ordering::Relaxed);
                        tracing::info!(
                            "blob garbage of {} collected: {} of {} bytes were garbage, {} bytes \
                             of blob files now",
                            c.family,
                            c.garbage_bytes_before,
                            c.blob_bytes_before,
                            c.blob_bytes_after
                        );
                    }
                }
                Ok(Err(e)) => tracing::warn!("collecting blob garbage: {e}"),
                Err(e) => tracing::warn!("collecting blob garbage: {e}"),
            }
        }
    });
}
