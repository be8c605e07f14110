//! Files: uploads staged chunk by chunk through the log, committed into content-addressed blobs,
//! attached to posts, and reclaimed when an upload never commits.
//!
//! A file's bytes travel through the Raft log in [`MAX_CHUNK_BYTES`] pieces (`FileChunk`), so a
//! follower holds every byte the leader acknowledged; one `FileCommit` then records the
//! [`FileInfo`] and the blob in one write. Families:
//!
//! - `uploadid_chunkno_bytes`: `upload_id · u32 chunk` → raw bytes. Chunks are written once under
//!   the id of the upload that brought them and never copied: committing makes them a blob by
//!   recording them in `sha256_blob`, so the commit writes a few small keys whatever the size of
//!   the file. The family uses RocksDB's BlobDB: values past 4 KiB live in blob files, so
//!   compaction moves keys, not megabytes; the space of deleted chunks is freed by
//!   [`Engine::reclaim_blob_garbage`](crate::Engine::reclaim_blob_garbage).
//! - `uploadid_upload`: `0 · upload_id` → [`StagedUpload`] while an upload is in progress;
//!   `1 · t(started) · upload_id` → `()`, the queue the leader's reaper reads oldest first.
//! - `sha256_blob`: sha-256 → [`Blob`] (refcount, size, where the chunks are). The same bytes
//!   uploaded twice are stored once: the second commit finds the hash, deletes its own staged
//!   chunks and bumps the refcount.
//! - `fileid_fileinfo`: file_id → [`FileInfo`].
//! - `fileid_kind_preview`: file_id · kind (`t` thumbnail, `p` preview) → JPEG bytes (BlobDB).
//!
//! An upload that never commits (its node died, the client went away) stays staged, invisible
//! to every read route since no `FileInfo` names it, until `AbortUploads` (proposed by the
//! leader with the time in the command, so every replica deletes the same uploads) deletes its
//! chunks. Each abort command handles at most [`ABORT_PER_COMMAND`] uploads.

use crate::apply::{load_live_channel, load_user, refuse, Step};
use crate::cf::Cf;
use crate::error::{CommandError, Result};
use crate::id::Id;
use crate::keys::{id_key, KeyBuf};
use crate::model::{Channel, Post};
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};

/// Largest chunk of a file one command carries.
pub const MAX_CHUNK_BYTES: usize = 1 << 20;

/// Largest thumbnail or preview a commit may carry.
pub const MAX_PREVIEW_BYTES: usize = 4 << 20;

/// Most files attached to one post (Mattermost's limit).
pub const MAX_FILES_PER_POST: usize = 10;

/// Stale uploads one `AbortUploads` reclaims.
pub const ABORT_PER_COMMAND: usize = 16;

/// `meta` key counting the distinct blobs (for `/metrics`, without a scan).
const BLOBS_KEY: &[u8] = b"file_blobs";

const STAGED: u8 = 0;
const QUEUE: u8 = 1;

/// Which derived image of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreviewKind {
    Thumbnail,
    Preview,
}

impl PreviewKind {
    fn byte(self) -> u8 {
        match self {
            PreviewKind::Thumbnail => b't',
            PreviewKind::Preview => b'p',
        }
    }
}

/// Mattermost's FileInfo, plus the content hash that names its blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub id: Id,
    /// The uploader.
    pub user_id: Id,
    pub channel_id: Id,
    /// [`Id::NONE`] until attached to a post.
    pub post_id: Id,
    pub create_at: u64,
    pub update_at: u64,
    pub delete_at: u64,
    pub name: String,
    /// Lowercase, without the dot.
    pub extension: String,
    pub size: u64,
    pub mime_type: String,
    /// Pixels after EXIF orientation; 0 when not an image.
    pub width: u32,
    pub height: u32,
    pub has_preview_image: bool,
    /// A tiny JPEG (Mattermost's 16×16), empty when none.
    #[serde(with = "serde_bytes")]
    pub mini_preview: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub sha256: Vec<u8>,
}

/// Content stored once, shared by every file with the same sha-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub refcount: u64,
    pub size: u64,
    pub chunks: u32,
    /// The upload whose chunks hold the bytes (`uploadid_chunkno_bytes`).
    pub upload_id: Id,
}

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedUpload {
    pub started_at: u64,
    /// The index the next chunk must carry (= chunks stored so far).
    pub next_chunk: u32,
    pub bytes: u64,
}

fn staged_key(upload: Id) -> Vec<u8> {
    KeyBuf::new().byte(STAGED).id(upload).build()
}

fn queue_key(started: u64, upload: Id) -> Vec<u8> {
    KeyBuf::new().byte(QUEUE).u64(started).id(upload).build()
}

pub(crate) fn chunk_key(upload: Id, index: u32) -> Vec<u8> {
    KeyBuf::new().id(upload).raw(&index.to_be_bytes()).build()
}

fn preview_key(file: Id, kind: PreviewKind) -> Vec<u8> {
    KeyBuf::new().id(file).byte(kind.byte()).build()
}

/// `FileChunk`: stores chunk `index` of an upload; chunks arrive in order, the first starts it.
pub(crate) fn chunk(txn: &mut Txn, upload: Id, at: u64, index: u32, bytes: &[u8]) -> Step<Outcome> {
    if bytes.len() > MAX_CHUNK_BYTES {
        return refuse(CommandError::Invalid(format!(
            "a file chunk is at most {MAX_CHUNK_BYTES} bytes"
        )));
    }
    let key = staged_key(upload);
    let staged = match txn.get::<StagedUpload>(Cf::UploadidUpload, &key)? {
        Some(staged) if staged.next_chunk == index => StagedUpload {
            next_chunk: index + 1,
            bytes: staged.bytes + bytes.len() as u64,
            ..staged
        },
        None if index == 0 => {
            // An upload id is used once: a committed upload keeps its chunks under it.
            if txn.exists(Cf::UploadidChunknoBytes, &chunk_key(upload, 0))? {
                return refuse(CommandError::IdExists(upload.to_string()));
            }
            txn.put_raw(Cf::UploadidUpload, queue_key(at, upload), Vec::new());
            StagedUpload {
                started_at: at,
                next_chunk: 1,
                bytes: bytes.len() as u64,
            }
        }
        _ => {
            return refuse(CommandError::Invalid(format!(
                "chunk {index} of upload {upload} is out of order"
            )))
        }
    };
    txn.put(Cf::UploadidUpload, key, &staged)?;
    txn.put_raw(
        Cf::UploadidChunknoBytes,
        chunk_key(upload, index),
        bytes.to_vec(),
    );
    Ok(Outcome::FileChunkStored {
        upload_id: upload,
        index,
    })
}

/// What `FileCommit` carries besides the ids.
pub(crate) struct Commit<'a> {
    pub upload: Id,
    pub chunks: u32,
    pub info: &'a FileInfo,
    pub thumbnail: Option<&'a [u8]>,
    pub preview: Option<&'a [u8]>,
}

/// `FileCommit`: the staged chunks become the file's blob (or are dropped for an existing one
/// with the same hash), and the FileInfo is recorded, in one write.
pub(crate) fn commit(txn: &mut Txn, commit: Commit) -> Step<Outcome> {
    let info = commit.info;
    let Some(staged) = txn.get::<StagedUpload>(Cf::UploadidUpload, &staged_key(commit.upload))?
    else {
        return refuse(CommandError::not_found("upload", commit.upload));
    };
    if staged.next_chunk != commit.chunks || staged.bytes != info.size {
        return refuse(CommandError::Invalid(format!(
            "upload {} holds {} chunks and {} bytes, the commit names {} and {}",
            commit.upload, staged.next_chunk, staged.bytes, commit.chunks, info.size
        )));
    }
    if info.sha256.len() != 32 {
        return refuse(CommandError::Invalid("a sha-256 is 32 bytes".into()));
    }
    for bytes in [commit.thumbnail, commit.preview].into_iter().flatten() {
        if bytes.len() > MAX_PREVIEW_BYTES {
            return refuse(CommandError::Invalid("preview too large".into()));
        }
    }
    crate::validate::text("file name", &info.name, 255)?;
    if txn.exists(Cf::FileidFileinfo, &id_key(info.id))? {
        return refuse(CommandError::IdExists(info.id.to_string()));
    }
    load_user(txn, info.user_id)?;
    let channel = load_live_channel(txn, info.channel_id)?;
    if !txn.exists(
        Cf::ChannelidUseridMember,
        &crate::keys::id2(channel.id, info.user_id),
    )? {
        return refuse(CommandError::NotMember {
            user: info.user_id.to_string(),
            of: format!("channel {}", channel.id),
        });
    }

    let deduplicated = match txn.get::<Blob>(Cf::Sha256Blob, &info.sha256)? {
        Some(mut blob) => {
            blob.refcount += 1;
            txn.put(Cf::Sha256Blob, info.sha256.clone(), &blob)?;
            for index in 0..commit.chunks {
                txn.delete(Cf::UploadidChunknoBytes, chunk_key(commit.upload, index));
            }
            true
        }
        None => {
            let blob = Blob {
                refcount: 1,
                size: info.size,
                chunks: commit.chunks,
                upload_id: commit.upload,
            };
            txn.put(Cf::Sha256Blob, info.sha256.clone(), &blob)?;
            let blobs = match txn.get_raw(Cf::Meta, BLOBS_KEY)? {
                Some(raw) => crate::engine::decode_u64(&raw)?,
                None => 0,
            };
            txn.put_raw(
                Cf::Meta,
                BLOBS_KEY.to_vec(),
                (blobs + 1).to_be_bytes().to_vec(),
            );
            false
        }
    };
    txn.delete(Cf::UploadidUpload, staged_key(commit.upload));
    txn.delete(
        Cf::UploadidUpload,
        queue_key(staged.started_at, commit.upload),
    );
    let mut info = info.clone();
    info.post_id = Id::NONE;
    info.delete_at = 0;
    info.has_preview_image = commit.preview.is_some();
    for (kind, bytes) in [
        (PreviewKind::Thumbnail, commit.thumbnail),
        (PreviewKind::Preview, commit.preview),
    ] {
        if let Some(bytes) = bytes {
            txn.put_raw(
                Cf::FileidKindPreview,
                preview_key(info.id, kind),
                bytes.to_vec(),
            );
        }
    }
    txn.put(Cf::FileidFileinfo, id_key(info.id), &info)?;
    Ok(Outcome::FileCommitted {
        info: Box::new(info),
        deduplicated,
    })
}

/// `AbortUploads`: deletes uploads started before `before` that never committed.
pub(crate) fn abort(txn: &mut Txn, before: u64) -> Step<Outcome> {
    let lower = KeyBuf::new().byte(QUEUE).build();
    let upper = queue_key(before, Id::NONE);
    let due = txn.scan_range_first(Cf::UploadidUpload, &lower, &upper, ABORT_PER_COMMAND)?;
    let mut aborted = Vec::new();
    for (key, _) in due {
        // `1 · t(started) · upload_id`
        let Some(upload) = key.get(9..25).and_then(Id::from_slice) else {
            continue;
        };
        txn.delete(Cf::UploadidUpload, key.clone());
        if let Some(staged) = txn.get::<StagedUpload>(Cf::UploadidUpload, &staged_key(upload))? {
            for index in 0..staged.next_chunk {
                txn.delete(Cf::UploadidChunknoBytes, chunk_key(upload, index));
            }
            txn.delete(Cf::UploadidUpload, staged_key(upload));
        }
        aborted.push(upload);
    }
    Ok(Outcome::UploadsAborted(aborted))
}

/// Attaches files to a new or edited post by Mattermost's rule: a file attaches only if it is
/// live, its uploader wrote the post, it is in the post's channel and no post has it yet. Ids
/// that do not attach are dropped silently; at most [`MAX_FILES_PER_POST`] are kept. `keep` are
/// ids the post already has (an edit keeps them without checks). Returns the files attached.
pub(crate) fn attach(
    txn: &mut Txn,
    post: &Post,
    channel: &Channel,
    wanted: &[Id],
    keep: &[Id],
    at: u64,
) -> Step<Vec<FileInfo>> {
    let mut attached: Vec<FileInfo> = Vec::new();
    for id in wanted {
        if attached.len() == MAX_FILES_PER_POST {
            break;
        }
        if attached.iter().any(|f| f.id == *id) {
            continue;
        }
        let Some(mut info) = txn.get::<FileInfo>(Cf::FileidFileinfo, &id_key(*id))? else {
            continue;
        };
        if keep.contains(id) && info.post_id == post.id {
            attached.push(info);
            continue;
        }
        if info.delete_at != 0
            || !info.post_id.is_none()
            || info.user_id != post.user_id
            || info.channel_id != channel.id
        {
            continue;
        }
        info.post_id = post.id;
        info.update_at = at;
        txn.put(Cf::FileidFileinfo, id_key(info.id), &info)?;
        attached.push(info);
    }
    Ok(attached)
}

/// Marks files removed from a post (an edit dropped them) deleted, as Mattermost does.
pub(crate) fn detach(txn: &mut Txn, removed: &[Id], at: u64) -> Step<()> {
    for id in removed {
        if let Some(mut info) = txn.get::<FileInfo>(Cf::FileidFileinfo, &id_key(*id))? {
            info.delete_at = at;
            info.update_at = at;
            txn.put(Cf::FileidFileinfo, id_key(info.id), &info)?;
        }
    }
    Ok(())
}

/// Soft-deletes the files of a deleted post.
pub(crate) fn delete_with_post(txn: &mut Txn, post: &Post, at: u64) -> Step<()> {
    detach(txn, &post.file_ids, at)
}

impl Reader<'_> {
    pub fn file_info(&self, id: Id) -> Result<Option<FileInfo>> {
        self.get(Cf::FileidFileinfo, &id_key(id))
    }

    /// The live files of a post, in the post's order.
    pub fn post_files(&self, post: &Post) -> Result<Vec<FileInfo>> {
        let mut files = Vec::with_capacity(post.file_ids.len());
        for id in &post.file_ids {
            if let Some(info) = self.file_info(*id)? {
                if info.delete_at == 0 {
                    files.push(info);
                }
            }
        }
        Ok(files)
    }

    pub fn blob(&self, sha256: &[u8]) -> Result<Option<Blob>> {
        self.get(Cf::Sha256Blob, sha256)
    }

    /// One chunk of a blob's bytes.
    pub fn blob_chunk(&self, blob: &Blob, index: u32) -> Result<Option<Vec<u8>>> {
        self.get_raw(Cf::UploadidChunknoBytes, &chunk_key(blob.upload_id, index))
    }

    pub fn file_preview(&self, id: Id, kind: PreviewKind) -> Result<Option<Vec<u8>>> {
        self.get_raw(Cf::FileidKindPreview, &preview_key(id, kind))
    }

    /// Whether any upload started before `before` is still staged (the reaper proposes an abort
    /// only then).
    pub fn has_stale_uploads(&self, before: u64) -> Result<bool> {
        let lower = KeyBuf::new().byte(QUEUE).build();
        let upper = queue_key(before, Id::NONE);
        let mut found = false;
        self.scan(
            Cf::UploadidUpload,
            &lower,
            Some(upper.as_slice()),
            false,
            |_, _| {
                found = true;
                false
            },
        )?;
        Ok(found)
    }

    /// Uploads in progress (staged, not committed): as many keys as uploads in flight.
    pub fn staged_uploads(&self) -> Result<u64> {
        let mut count = 0;
        self.scan_prefix(Cf::UploadidUpload, &[STAGED], false, |_, _| {
            count += 1;
            true
        })?;
        Ok(count)
    }

    /// Keys in the chunk family (staged and committed chunks): what dedup and reclaim save.
    /// Scans the family: for tests and tools, not for every request.
    pub fn stored_chunks(&self) -> Result<u64> {
        let mut count = 0;
        self.scan_all(Cf::UploadidChunknoBytes, |_, _| {
            count += 1;
            true
        })?;
        Ok(count)
    }

    /// Distinct blobs stored (a counter in `meta`).
    pub fn blob_count(&self) -> Result<u64> {
        match self.get_raw(Cf::Meta, BLOBS_KEY)? {
            Some(raw) => crate::engine::decode_u64(&raw),
            None => Ok(0),
        }
    }
}
