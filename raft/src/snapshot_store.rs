//! The snapshot directory of a node: at most one complete snapshot (a storage export stream
//! `snap-<index>.data` plus its openraft metadata `snap-<index>.meta`), temporary files being
//! built or received, nothing else. The metadata file is written last, so a snapshot without one
//! is incomplete and ignored. Snapshot data is handed around as an open file, so memory stays
//! bounded whatever the database size, and a snapshot being sent survives its replacement
//! (the open handle keeps the old file alive).

use crate::codec::{decode, encode};
use crate::types::SnapshotMeta;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DATA_SUFFIX: &str = ".data";
const META_SUFFIX: &str = ".meta";
const TEMP_SUFFIX: &str = ".tmp";

/// An open snapshot stream: what openraft passes between the state machine and the network.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotFile {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub len: u64,
}

impl SnapshotFile {
    pub(crate) fn open(path: &Path) -> io::Result<SnapshotFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(SnapshotFile {
            file: Arc::new(file),
            path: path.to_path_buf(),
            len,
        })
    }

    /// Up to `max` bytes at `offset` (positional read: concurrent readers do not interfere).
    pub(crate) fn read_chunk(&self, offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let want = max.min(self.len.saturating_sub(offset) as usize);
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let n = self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "snapshot file shorter than its length",
                ));
            }
            filled += n;
        }
        Ok(buf)
    }
}

pub(crate) struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens the directory, creating it, and removes leftovers of interrupted builds/transfers.
    pub(crate) fn open(dir: &Path) -> io::Result<SnapshotStore> {
        fs::create_dir_all(dir)?;
        let store = SnapshotStore {
            dir: dir.to_path_buf(),
        };
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if name_of(&path).ends_with(TEMP_SUFFIX) {
                fs::remove_file(&path)?;
            }
        }
        Ok(store)
    }

    /// A fresh temporary path in the directory (removed at the next open if left behind).
    pub(crate) fn temp_path(&self, what: &str) -> PathBuf {
        self.dir.join(format!(
            "{what}-{:016x}{TEMP_SUFFIX}",
            rand::random::<u64>()
        ))
    }

    pub(crate) fn is_temp_here(&self, path: &Path) -> bool {
        path.parent() == Some(self.dir.as_path()) && name_of(path).ends_with(TEMP_SUFFIX)
    }

    /// Makes the complete stream at `data` (a temp file of this directory, or any file, which is
    /// then copied) the current snapshot described by `meta`, and deletes every other snapshot.
    pub(crate) fn commit(&self, data: &Path, meta: &SnapshotMeta) -> io::Result<SnapshotFile> {
        let stem = match &meta.last_log_id {
            Some(id) => format!("snap-{:020}", id.index),
            None => "snap-none".to_string(),
        };
        let data_path = self.dir.join(format!("{stem}{DATA_SUFFIX}"));
        let meta_path = self.dir.join(format!("{stem}{META_SUFFIX}"));
        if self.is_temp_here(data) {
            File::open(data)?.sync_all()?;
            fs::rename(data, &data_path)?;
        } else {
            let temp = self.temp_path("copy");
            fs::copy(data, &temp)?;
            File::open(&temp)?.sync_all()?;
            fs::rename(&temp, &data_path)?;
        }
        let meta_temp = self.temp_path("meta");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&meta_temp)?;
        file.write_all(&encode(meta)?)?;
        file.sync_all()?;
        fs::rename(&meta_temp, &meta_path)?;
        File::open(&self.dir)?.sync_all()?;
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let name = name_of(&path);
            let other_snapshot = name.starts_with("snap-")
                && !name.ends_with(TEMP_SUFFIX)
                && path != data_path
                && path != meta_path;
            if other_snapshot {
                fs::remove_file(&path)?;
            }
        }
        SnapshotFile::open(&data_path)
    }

    /// The current snapshot, if a complete one exists.
    pub(crate) fn current(&self) -> io::Result<Option<(SnapshotMeta, SnapshotFile)>> {
        let mut best: Option<(SnapshotMeta, PathBuf)> = None;
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let name = name_of(&path);
            let Some(stem) = name.strip_suffix(META_SUFFIX) else {
                continue;
            };
            let data_path = self.dir.join(format!("{stem}{DATA_SUFFIX}"));
            if !data_path.exists() {
                continue;
            }
            let meta: SnapshotMeta = decode(&fs::read(&path)?)?;
            if best
                .as_ref()
                .is_none_or(|(b, _)| b.last_log_id < meta.last_log_id)
            {
                best = Some((meta, data_path));
            }
        }
        match best {
            Some((meta, data)) => Ok(Some((meta, SnapshotFile::open(&data)?))),
            None => Ok(None),
        }
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
