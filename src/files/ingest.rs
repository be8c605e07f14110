//! One file of an upload, streamed into the log: 1 MiB `FileChunk` commands, a running
//! sha-256, and a temp copy of files that may be images; then the `FileCommit`.

use super::{images, SPOOL_MAX_BYTES};
use crate::app::App;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use confab_storage::files::MAX_CHUNK_BYTES;
use confab_storage::{Command, FileInfo, Id, Outcome};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Mattermost's 413 for a file or request past `MaxFileSize`.
pub fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "api.file.upload_file.too_large_detailed.app_error",
        format!("Unable to upload file. File is larger than the maximum of {max} bytes."),
    )
}

/// A temp file removed when dropped, whatever happened to the upload.
struct Spool {
    path: PathBuf,
    file: Option<tokio::fs::File>,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A file being received.
pub struct Ingest<'a> {
    app: &'a App,
    upload_id: Id,
    at: u64,
    name: String,
    extension: String,
    next_chunk: u32,
    buf: Vec<u8>,
    hasher: Sha256,
    size: u64,
    spool: Option<Spool>,
    /// Whether the first bytes were looked at for an image signature.
    sniffed: bool,
}

/// A file whose bytes are all staged in the log.
pub struct Staged {
    upload_id: Id,
    at: u64,
    name: String,
    extension: String,
    chunks: u32,
    size: u64,
    sha256: Vec<u8>,
    spool: Option<Spool>,
}

/// Mattermost's extension: after the last dot, lowercase; none without a dot.
pub fn extension_of(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() => ext.to_lowercase(),
        _ => String::new(),
    }
}

/// The name as stored: the last path segment, at most 255 characters.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let base: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if base.is_empty() {
        "file".into()
    } else {
        base
    }
}

impl<'a> Ingest<'a> {
    pub fn new(app: &'a App, name: &str) -> Ingest<'a> {
        let name = clean_name(name);
        let extension = extension_of(&name);
        let upload_id = Id::from_bytes(rand::random());
        Ingest {
            app,
            upload_id,
            at: now_ms(),
            spool: images::is_image_extension(&extension).then(|| Spool {
                path: app.files.spool_dir.join(upload_id.to_base32()),
                file: None,
            }),
            name,
            extension,
            next_chunk: 0,
            buf: Vec::with_capacity(MAX_CHUNK_BYTES),
            hasher: Sha256::new(),
            size: 0,
            sniffed: false,
        }
    }

    /// Takes the next bytes of the file; a full chunk is committed before this returns.
    pub async fn push(&mut self, mut data: &[u8]) -> ApiResult<()> {
        let max = self.app.files.settings.max_file_size;
        self.size += data.len() as u64;
        if self.size > max {
            return Err(too_large(max));
        }
        self.hasher.update(data);
        if !self.sniffed && !data.is_empty() {
            self.sniffed = true;
            if self.spool.is_none() && images::looks_like_image(data) {
                self.spool = Some(Spool {
                    path: self.app.files.spool_dir.join(self.upload_id.to_base32()),
                    file: None,
                });
            }
        }
        self.spool_bytes(data).await;
        while !data.is_empty() {
            let take = (MAX_CHUNK_BYTES - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == MAX_CHUNK_BYTES {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Copies bytes to the temp file while the file may still get a preview; past the spool
    /// limit, or on a disk error, the file just gets none.
    async fn spool_bytes(&mut self, data: &[u8]) {
        let Some(spool) = &mut self.spool else { return };
        if self.size > SPOOL_MAX_BYTES {
            self.spool = None;
            return;
        }
        if spool.file.is_none() {
            match tokio::fs::File::create(&spool.path).await {
                Ok(file) => spool.file = Some(file),
                Err(e) => {
                    tracing::warn!("spooling an upload for previews: {e}");
                    self.spool = None;
                    return;
                }
            }
        }
        let failed = match &mut spool.file {
            Some(file) => file.write_all(data).await.is_err(),
            None => true,
        };
        if failed {
            self.spool = None;
        }
    }

    async fn flush(&mut self) -> ApiResult<()> {
        let bytes = std::mem::replace(&mut self.buf, Vec::with_capacity(MAX_CHUNK_BYTES));
        self.app
            .write(Command::FileChunk {
                upload_id: self.upload_id,
                at: self.at,
                index: self.next_chunk,
                bytes,
            })
            .await?;
        self.next_chunk += 1;
        Ok(())
    }

    /// Commits the last piece (an empty file is one empty chunk).
    pub async fn finish(mut self) -> ApiResult<Staged> {
        if !self.buf.is_empty() || self.next_chunk == 0 {
            self.buf.shrink_to_fit();
            self.flush().await?;
        }
        let mut spool = self.spool.take();
        if let Some(open) = &mut spool {
            let flushed = match &mut open.file {
                Some(file) => file.flush().await.is_ok(),
                None => false,
            };
            open.file = None;
            if !flushed {
                spool = None;
            }
        }
        Ok(Staged {
            upload_id: self.upload_id,
            at: self.at,
            name: std::mem::take(&mut self.name),
            extension: std::mem::take(&mut self.extension),
            chunks: self.next_chunk,
            size: self.size,
            sha256: self.hasher.clone().finalize().to_vec(),
            spool,
        })
    }
}

impl Staged {
    /// Makes the previews (off the runtime) and commits the file to `channel_id` for `user`.
    pub async fn commit(mut self, app: &App, user: Id, channel_id: Id) -> ApiResult<FileInfo> {
        let derived = match self.spool.take() {
            Some(spool) => {
                let max_pixels = app.files.settings.max_image_resolution;
                tokio::task::spawn_blocking(move || {
                    let derived = images::derive(&spool.path, max_pixels);
                    drop(spool);
                    derived
                })
                .await
                .map_err(|_| ApiError::internal("preview task failed"))?
            }
            None => None,
        };
        let derived = derived.unwrap_or_default();
        let limit = confab_storage::files::MAX_PREVIEW_BYTES;
        let fits = |bytes: Option<Vec<u8>>| bytes.filter(|b| b.len() <= limit).map(ByteBuf::from);
        let (thumbnail, preview) = (fits(derived.thumbnail), fits(derived.preview));
        let (thumbnail, preview) = match (thumbnail, preview) {
            (Some(t), Some(p)) => (Some(t), Some(p)),
            _ => (None, None),
        };
        let mime_type = mime_guess::from_ext(&self.extension)
            .first_raw()
            .unwrap_or("")
            .to_string();
        let info = FileInfo {
            id: Id::from_bytes(rand::random()),
            user_id: user,
            channel_id,
            post_id: Id::NONE,
            create_at: self.at,
            update_at: self.at,
            delete_at: 0,
            name: self.name,
            extension: self.extension,
            size: self.size,
            mime_type,
            width: derived.width,
            height: derived.height,
            has_preview_image: preview.is_some(),
            mini_preview: derived.mini_preview,
            sha256: self.sha256,
        };
        let (_, outcome) = app
            .write(Command::FileCommit {
                upload_id: self.upload_id,
                chunks: self.chunks,
                info,
                thumbnail,
                preview,
            })
            .await?;
        match outcome {
            Outcome::FileCommitted { info, .. } => Ok(*info),
            _ => Err(ApiError::internal("unexpected outcome")),
        }
    }
}
