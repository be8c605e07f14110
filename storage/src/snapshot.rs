//! Snapshots for Raft: a consistent export of the whole replicated state as a stream of framed
//! chunks, each with a crc32, and an import that verifies the entire stream before it touches
//! the live state. Memory stays bounded by one chunk whatever the database size.
//!
//! Frame: `[u32 payload length][u32 crc32 of payload][payload]`, big-endian.
//! Payload: `[u64 chunk sequence][u8 kind]` then by kind —
//! `0` header: `[u32 format version][u64 applied index]`;
//! `1` data: `[u8 column family position]` and entries `[u32 key len][key][u32 value len][value]`…;
//! `2` end: `[u64 total entries]`.
//!
//! Format 2 keys the post search's time blocks bucket before channel
//! (`term_bucket_channelid_createats`). A format-1 snapshot, from a node of an earlier version,
//! holds them channel before bucket at the same position: its import leaves them out and starts
//! the search backfill's pass over posts again, which writes them anew.

use crate::cf::Cf;
use crate::engine::{meta_key, Engine};
use crate::error::{Result, StorageError};
use std::io::{Read, Seek, SeekFrom, Write};

const FORMAT_VERSION: u32 = 2;
/// The format before the time blocks' keys changed order; still imported.
const FORMAT_CHANNEL_BEFORE_BUCKET: u32 = 1;
const KIND_HEADER: u8 = 0;
const KIND_DATA: u8 = 1;
const KIND_END: u8 = 2;
/// Target payload size of a data chunk.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;
/// Frames larger than this are refused on import (bounded memory against a hostile stream).
const MAX_FRAME_BYTES: usize = 64 << 20;

/// What an export or import covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub applied_index: u64,
    /// The replication layer's bytes stored with the exported state, read from the same
    /// RocksDB snapshot, so they describe exactly what was exported.
    pub replication_meta: Option<Vec<u8>>,
    pub chunks: u64,
    pub entries: u64,
    pub bytes: u64,
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Corrupt(format!("snapshot: {}", what.into()))
}

struct FrameWriter<W: Write> {
    out: W,
    sequence: u64,
    bytes: u64,
}

impl<W: Write> FrameWriter<W> {
    fn payload(&self, kind: u8) -> Vec<u8> {
        let mut payload = Vec::with_capacity(DEFAULT_CHUNK_BYTES + 64);
        payload.extend_from_slice(&self.sequence.to_be_bytes());
        payload.push(kind);
        payload
    }

    fn write(&mut self, payload: &[u8]) -> Result<()> {
        let crc = crc32fast::hash(payload);
        self.out.write_all(&(payload.len() as u32).to_be_bytes())?;
        self.out.write_all(&crc.to_be_bytes())?;
        self.out.write_all(payload)?;
        self.sequence += 1;
        self.bytes += 8 + payload.len() as u64;
        Ok(())
    }
}

impl Engine {
    /// Streams the replicated state, as of one RocksDB snapshot, into `out`.
    pub fn export_snapshot(&self, out: impl Write) -> Result<SnapshotSummary> {
        self.export_snapshot_chunked(out, DEFAULT_CHUNK_BYTES)
    }

    /// [`Engine::export_snapshot`] with a chosen chunk size.
    pub fn export_snapshot_chunked(
        &self,
        out: impl Write,
        chunk_bytes: usize,
    ) -> Result<SnapshotSummary> {
        let reader = self.reader();
        let applied_index = reader
            .get_raw(Cf::Meta, meta_key::APPLIED_INDEX)?
            .as_deref()
            .map(crate::engine::decode_u64)
            .transpose()?
            .unwrap_or(0);
        let replication_meta = reader.get_raw(Cf::Meta, meta_key::REPLICATION)?;
        let mut frames = FrameWriter {
            out,
            sequence: 0,
            bytes: 0,
        };
        let mut header = frames.payload(KIND_HEADER);
        header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        header.extend_from_slice(&applied_index.to_be_bytes());
        frames.write(&header)?;
        let mut entries = 0u64;
        for (position, cf) in Cf::STATE.iter().enumerate() {
            let mut chunk = frames.payload(KIND_DATA);
            chunk.push(position as u8);
            let mut empty = true;
            let mut failure = None;
            reader.scan_all(*cf, |key, value| {
                chunk.extend_from_slice(&(key.len() as u32).to_be_bytes());
                chunk.extend_from_slice(key);
                chunk.extend_from_slice(&(value.len() as u32).to_be_bytes());
                chunk.extend_from_slice(value);
                entries += 1;
                empty = false;
                if chunk.len() >= chunk_bytes {
                    if let Err(e) = frames.write(&chunk) {
                        failure = Some(e);
                        return false;
                    }
                    chunk = frames.payload(KIND_DATA);
                    chunk.push(position as u8);
                    empty = true;
                }
                true
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
            if !empty {
                frames.write(&chunk)?;
            }
        }
        let mut end = frames.payload(KIND_END);
        end.extend_from_slice(&entries.to_be_bytes());
        frames.write(&end)?;
        frames.out.flush()?;
        Ok(SnapshotSummary {
            applied_index,
            replication_meta,
            chunks: frames.sequence,
            entries,
            bytes: frames.bytes,
        })
    }

    /// Replaces the replicated state with a snapshot stream. The whole stream is verified first
    /// (every crc, the sequence, the framing, the end marker); a corrupted stream is refused
    /// and the live state is untouched. A crash during the second pass leaves a marker that
    /// makes the next open clear the half-imported state.
    pub fn import_snapshot<S: Read + Seek>(&self, mut source: S) -> Result<SnapshotSummary> {
        let _applying = self.apply_lock.lock();
        let start = source.stream_position()?;
        let summary = verify_snapshot(&mut source)?;
        source.seek(SeekFrom::Start(start))?;

        let meta = self.cf(Cf::Meta)?;
        let mut batch = rocksdb::WriteBatch::default();
        for cf in Cf::STATE {
            batch.delete_range_cf(self.cf(cf)?, [0u8].as_slice(), [0xffu8; 256].as_slice());
        }
        batch.put_cf(meta, meta_key::IMPORTING, []);
        self.db.write(batch)?;
        // Sessions read before, during or after a failed import are all suspect.
        self.advance_sessions_epoch();
        let _sessions_changed = SessionsChanged(self);

        let mut frames = FrameReader::new(&mut source);
        while let Some(chunk) = frames.next_chunk()? {
            if let Chunk::Data { cf, entries } = chunk {
                if frames.version == Some(FORMAT_CHANNEL_BEFORE_BUCKET)
                    && cf == Cf::TermBucketChannelidCreateats
                {
                    continue;
                }
                let handle = self.cf(cf)?;
                let mut batch = rocksdb::WriteBatch::default();
                for (key, value) in entries {
                    batch.put_cf(handle, key, value);
                }
                self.db.write(batch)?;
            }
        }
        if !self.badges_kept()? {
            // A snapshot of a node from before the badge counters: built here, under the
            // import's hold on apply.
            let mut badges = rocksdb::WriteBatch::default();
            self.rebuild_badges(&mut badges)?;
            badges.put_cf(meta, crate::badge::MARKER, b"done");
            self.db.write(badges)?;
        }
        let mut done = rocksdb::WriteBatch::default();
        if frames.version == Some(FORMAT_CHANNEL_BEFORE_BUCKET) {
            self.restart_post_backfill(&mut done)?;
        }
        done.delete_cf(meta, meta_key::IMPORTING);
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(done, &opts)?;
        Ok(summary)
    }
}

/// Advances the sessions epoch when the import ends, however it ends.
struct SessionsChanged<'a>(&'a Engine);

impl Drop for SessionsChanged<'_> {
    fn drop(&mut self) {
        self.0.advance_sessions_epoch();
    }
}

enum Chunk {
    Header {
        applied_index: u64,
    },
    Data {
        cf: Cf,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    },
    End {
        entries: u64,
    },
}

struct FrameReader<R: Read> {
    source: R,
    sequence: u64,
    bytes: u64,
    ended: bool,
    /// The header's format, once read.
    version: Option<u32>,
}

impl<R: Read> FrameReader<R> {
    fn new(source: R) -> FrameReader<R> {
        FrameReader {
            source,
            sequence: 0,
            bytes: 0,
            ended: false,
            version: None,
        }
    }

    fn read_exact_or_eof(&mut self, buf: &mut [u8]) -> Result<bool> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.source.read(&mut buf[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(corrupt("truncated frame header")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// The next verified chunk, or None at the end of a complete stream.
    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut head = [0u8; 8];
        if !self.read_exact_or_eof(&mut head)? {
            if !self.ended {
                return Err(corrupt("stream ends before its end marker"));
            }
            return Ok(None);
        }
        if self.ended {
            return Err(corrupt("data after the end marker"));
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if !(9..=MAX_FRAME_BYTES).contains(&len) {
            return Err(corrupt(format!("frame of {len} bytes")));
        }
        let mut payload = vec![0u8; len];
        self.source
            .read_exact(&mut payload)
            .map_err(|_| corrupt("truncated frame"))?;
        if crc32fast::hash(&payload) != crc {
            return Err(corrupt(format!("chunk {} fails its crc32", self.sequence)));
        }
        self.bytes += 8 + len as u64;
        let sequence = u64::from_be_bytes(payload[..8].try_into().map_err(|_| corrupt("seq"))?);
        if sequence != self.sequence {
            return Err(corrupt(format!(
                "chunk {sequence} where {} was due",
                self.sequence
            )));
        }
        self.sequence += 1;
        let body = &payload[9..];
        let chunk = match payload[8] {
            KIND_HEADER if sequence == 0 && body.len() == 12 => {
                let version = u32::from_be_bytes(body[..4].try_into().map_err(|_| corrupt("v"))?);
                if version != FORMAT_VERSION && version != FORMAT_CHANNEL_BEFORE_BUCKET {
                    return Err(corrupt(format!("format version {version}")));
                }
                self.version = Some(version);
                Chunk::Header {
                    applied_index: u64::from_be_bytes(
                        body[4..12].try_into().map_err(|_| corrupt("index"))?,
                    ),
                }
            }
            KIND_DATA if sequence > 0 && !body.is_empty() => {
                let cf = *Cf::STATE
                    .get(body[0] as usize)
                    .ok_or_else(|| corrupt("unknown column family"))?;
                Chunk::Data {
                    cf,
                    entries: decode_entries(&body[1..])?,
                }
            }
            KIND_END if sequence > 0 && body.len() == 8 => {
                self.ended = true;
                Chunk::End {
                    entries: u64::from_be_bytes(body.try_into().map_err(|_| corrupt("end"))?),
                }
            }
            kind => {
                return Err(corrupt(format!(
                    "unexpected chunk kind {kind} at {sequence}"
                )))
            }
        };
        Ok(Some(chunk))
    }
}

pub(crate) fn decode_entries(mut body: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut entries = Vec::new();
    let take = |body: &mut &[u8]| -> Result<Vec<u8>> {
        if body.len() < 4 {
            return Err(corrupt("entry length"));
        }
        let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        let bytes = body
            .get(4..4 + len)
            .ok_or_else(|| corrupt("entry overruns its chunk"))?
            .to_vec();
        *body = &body[4 + len..];
        Ok(bytes)
    };
    while !body.is_empty() {
        let key = take(&mut body)?;
        let value = take(&mut body)?;
        entries.push((key, value));
    }
    Ok(entries)
}

/// Reads a whole snapshot stream and checks it without touching any database.
pub fn verify_snapshot(source: impl Read) -> Result<SnapshotSummary> {
    let mut frames = FrameReader::new(source);
    let mut applied_index = None;
    let mut entries = 0u64;
    let mut declared = None;
    let mut replication_meta = None;
    while let Some(chunk) = frames.next_chunk()? {
        match chunk {
            Chunk::Header { applied_index: i } => applied_index = Some(i),
            Chunk::Data { cf, entries: e } => {
                entries += e.len() as u64;
                if cf == Cf::Meta {
                    if let Some((_, value)) =
                        e.into_iter().find(|(k, _)| k == meta_key::REPLICATION)
                    {
                        replication_meta = Some(value);
                    }
                }
            }
            Chunk::End { entries: e } => declared = Some(e),
        }
    }
    let applied_index = applied_index.ok_or_else(|| corrupt("no header"))?;
    if declared != Some(entries) {
        return Err(corrupt(format!(
            "{entries} entries where the end marker says {declared:?}"
        )));
    }
    Ok(SnapshotSummary {
        applied_index,
        replication_meta,
        chunks: frames.sequence,
        entries,
        bytes: frames.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;

    #[test]
    fn an_interrupted_import_is_cleared_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(dir.path()).unwrap();
            let command = Command::RevokeSession {
                token: crate::Id([1; 16]),
            };
            engine.apply(7, &command).unwrap();
            assert_eq!(engine.applied_index().unwrap(), 7);
            // What a crash in the middle of an import's second pass leaves behind.
            let meta = engine.cf(Cf::Meta).unwrap();
            engine.db.put_cf(meta, meta_key::IMPORTING, []).unwrap();
        }
        let engine = Engine::open(dir.path()).unwrap();
        assert_eq!(
            engine.applied_index().unwrap(),
            0,
            "half-imported state was cleared"
        );
    }
}
