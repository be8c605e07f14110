//! File commands: chunks staged through the log, committed into content-addressed blobs,
//! deduplicated, reclaimed when abandoned, and attached to posts by Mattermost's rules.

mod common;

use common::*;
use confab_storage::files::MAX_CHUNK_BYTES;
use confab_storage::{ChannelType, Command, FileInfo, Id, Outcome};

const ALICE: u64 = 1;
const BOB: u64 = 2;
const TEAM: u64 = 10;
const TOWN: u64 = 11;
const OTHER: u64 = 20;

fn setup() -> TestDb {
    let mut db = TestDb::new();
    db.ok(create_user(ALICE, "alice", 1));
    db.ok(create_user(BOB, "bob", 2));
    db.ok(create_team(TEAM, "team", ALICE, 3));
    db.ok(Command::AddTeamMember {
        team_id: id(TEAM),
        user_id: id(BOB),
        at: 4,
    });
    db.ok(create_channel(
        OTHER,
        TEAM,
        "other",
        ChannelType::Open,
        ALICE,
        5,
    ));
    db
}

/// Deterministic content of `len` bytes.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn sha256_of(seed: u8) -> Vec<u8> {
    // The engine trusts the proposer's hash; any 32 distinct bytes per content do.
    vec![seed; 32]
}

/// Stages `bytes` as upload `upload` in 1 MiB chunks; returns the chunk count.
fn stage(db: &mut TestDb, upload: u64, bytes: &[u8], at: u64) -> u32 {
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(MAX_CHUNK_BYTES).collect()
    };
    for (index, piece) in pieces.iter().enumerate() {
        db.ok(Command::FileChunk {
            upload_id: id(upload),
            at,
            index: index as u32,
            bytes: piece.to_vec(),
        });
    }
    pieces.len() as u32
}

fn info(file: u64, user: u64, channel: u64, size: usize, seed: u8) -> FileInfo {
    FileInfo {
        id: id(file),
        user_id: id(user),
        channel_id: id(channel),
        post_id: Id::NONE,
        create_at: 100,
        update_at: 100,
        delete_at: 0,
        name: format!("f{file}.bin"),
        extension: "bin".into(),
        size: size as u64,
        mime_type: String::new(),
        width: 0,
        height: 0,
        has_preview_image: false,
        mini_preview: Vec::new(),
        sha256: sha256_of(seed),
    }
}

fn commit(upload: u64, chunks: u32, info: FileInfo) -> Command {
    Command::FileCommit {
        upload_id: id(upload),
        chunks,
        info,
        thumbnail: None,
        preview: None,
    }
}

/// Upload and commit in one go; true when the bytes were already stored.
fn upload(
    db: &mut TestDb,
    upload: u64,
    file: u64,
    user: u64,
    channel: u64,
    bytes: &[u8],
    seed: u8,
) -> bool {
    let chunks = stage(db, upload, bytes, 100);
    match db.ok(commit(
        upload,
        chunks,
        info(file, user, channel, bytes.len(), seed),
    )) {
        Outcome::FileCommitted { deduplicated, .. } => deduplicated,
        other => panic!("unexpected {other:?}"),
    }
}

fn read_back(db: &TestDb, file: u64) -> Vec<u8> {
    let r = db.engine.reader();
    let info = r.file_info(id(file)).unwrap().expect("file info");
    let blob = r.blob(&info.sha256).unwrap().expect("blob");
    let mut out = Vec::new();
    for index in 0..blob.chunks {
        out.extend(r.blob_chunk(&blob, index).unwrap().expect("chunk"));
    }
    out
}

#[test]
fn staged_chunks_become_the_files_bytes_on_commit() {
    let mut db = setup();
    let bytes = content(2 * MAX_CHUNK_BYTES + 10, 1);
    let chunks = stage(&mut db, 500, &bytes, 100);
    assert_eq!(chunks, 3);
    assert_eq!(db.engine.reader().staged_uploads().unwrap(), 1);
    assert!(db.engine.reader().file_info(id(600)).unwrap().is_none());
    assert!(!upload_commit(
        &mut db,
        500,
        chunks,
        info(600, ALICE, TOWN, bytes.len(), 1)
    ));
    assert_eq!(read_back(&db, 600), bytes);
    let r = db.engine.reader();
    assert_eq!(r.staged_uploads().unwrap(), 0);
    assert_eq!(r.stored_chunks().unwrap(), 3);
    let stored = r.file_info(id(600)).unwrap().unwrap();
    assert!(stored.post_id.is_none());
    assert_eq!(stored.size, bytes.len() as u64);
}

fn upload_commit(db: &mut TestDb, upload: u64, chunks: u32, info: FileInfo) -> bool {
    match db.ok(commit(upload, chunks, info)) {
        Outcome::FileCommitted { deduplicated, .. } => deduplicated,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_same_bytes_twice_are_stored_once_with_a_refcount() {
    let mut db = setup();
    let bytes = content(MAX_CHUNK_BYTES + 5, 2);
    assert!(!upload(&mut db, 500, 600, ALICE, TOWN, &bytes, 2));
    assert!(upload(&mut db, 501, 601, BOB, TOWN, &bytes, 2));
    let r = db.engine.reader();
    assert_eq!(r.blob_count().unwrap(), 1);
    assert_eq!(
        r.stored_chunks().unwrap(),
        2,
        "the second upload's chunks are dropped"
    );
    assert_eq!(r.blob(&sha256_of(2)).unwrap().unwrap().refcount, 2);
    drop(r);
    assert_eq!(read_back(&db, 600), bytes);
    assert_eq!(read_back(&db, 601), bytes);
    // Different bytes make a second blob.
    assert!(!upload(&mut db, 502, 602, ALICE, TOWN, &content(10, 3), 3));
    assert_eq!(db.engine.reader().blob_count().unwrap(), 2);
}

#[test]
fn an_abandoned_upload_is_reclaimed_by_abort_and_cannot_commit_after() {
    let mut db = setup();
    let bytes = content(MAX_CHUNK_BYTES + 1, 4);
    let chunks = stage(&mut db, 500, &bytes, 1_000);
    // Not old enough yet: nothing happens.
    assert_eq!(
        db.ok(Command::AbortUploads { before: 1_000 }),
        Outcome::UploadsAborted(Vec::new())
    );
    assert_eq!(db.engine.reader().stored_chunks().unwrap(), 2);
    assert_eq!(
        db.ok(Command::AbortUploads { before: 1_001 }),
        Outcome::UploadsAborted(vec![id(500)])
    );
    let r = db.engine.reader();
    assert_eq!(r.staged_uploads().unwrap(), 0);
    assert_eq!(r.stored_chunks().unwrap(), 0);
    drop(r);
    assert!(db
        .apply(commit(500, chunks, info(600, ALICE, TOWN, bytes.len(), 4)))
        .result
        .is_err());
    assert!(db.engine.reader().file_info(id(600)).unwrap().is_none());
    // A committed upload is not touched by later aborts.
    upload(&mut db, 501, 601, ALICE, TOWN, &bytes, 4);
    db.ok(Command::AbortUploads { before: u64::MAX });
    assert_eq!(read_back(&db, 601), bytes);
}

/// Chunks of aborted and deduplicated uploads are garbage in the blob files until
/// `reclaim_blob_garbage` moves the live blobs out: then the space is freed and every committed
/// file still reads back whole. Too little garbage is left alone.
#[test]
fn deleted_chunks_space_is_reclaimed_and_live_files_survive() {
    let mut db = setup();
    let kept = content(3 * MAX_CHUNK_BYTES, 7);
    upload(&mut db, 700, 800, ALICE, TOWN, &kept, 7);
    // The same bytes again: its own staged chunks are deleted at commit (here before any
    // flush, so they never reach a blob file).
    assert!(upload(&mut db, 701, 801, ALICE, TOWN, &kept, 7));
    let lost = content(4 * MAX_CHUNK_BYTES, 9);
    stage(&mut db, 702, &lost, 1_000);
    db.engine.flush().unwrap();
    assert_eq!(
        db.ok(Command::AbortUploads { before: 1_001 }),
        Outcome::UploadsAborted(vec![id(702)])
    );
    let family = confab_storage::cf::Cf::UploadidChunknoBytes;
    let (live_before, _) = db.engine.blob_file_bytes(family).unwrap();
    assert!(live_before >= (7 * MAX_CHUNK_BYTES) as u64, "{live_before}");

    // Not enough garbage for the threshold: counted, not collected.
    assert!(db.engine.reclaim_blob_garbage(u64::MAX).unwrap().is_empty());
    let (live, garbage) = db.engine.blob_file_bytes(family).unwrap();
    assert_eq!(live, live_before);
    assert!(
        garbage >= (4 * MAX_CHUNK_BYTES) as u64,
        "{garbage} of {live} garbage"
    );

    let reclaimed = db.engine.reclaim_blob_garbage(1 << 20).unwrap();
    assert_eq!(reclaimed.len(), 1, "{reclaimed:?}");
    assert_eq!(reclaimed[0].family, "uploadid_chunkno_bytes");
    let (live_after, garbage_after) = db.engine.blob_file_bytes(family).unwrap();
    assert_eq!(garbage_after, 0);
    assert!(
        live_after < (4 * MAX_CHUNK_BYTES) as u64 && live_after >= (3 * MAX_CHUNK_BYTES) as u64,
        "{live_after} bytes live after"
    );
    assert_eq!(read_back(&db, 800), kept);
    assert_eq!(read_back(&db, 801), kept);
    assert_eq!(db.engine.reader().stored_chunks().unwrap(), 3);
}

#[test]
fn chunks_out_of_order_and_commits_that_do_not_match_are_refused() {
    let mut db = setup();
    let first = Command::FileChunk {
        upload_id: id(500),
        at: 1,
        index: 1,
        bytes: vec![1, 2, 3],
    };
    assert!(
        db.apply(first).result.is_err(),
        "an upload starts at chunk 0"
    );
    stage(&mut db, 500, &[1, 2, 3], 1);
    let repeated = Command::FileChunk {
        upload_id: id(500),
        at: 1,
        index: 0,
        bytes: vec![1],
    };
    assert!(db.apply(repeated).result.is_err());
    let too_big = Command::FileChunk {
        upload_id: id(501),
        at: 1,
        index: 0,
        bytes: vec![0; MAX_CHUNK_BYTES + 1],
    };
    assert!(db.apply(too_big).result.is_err());
    // Size or chunk count different from what was staged.
    assert!(db
        .apply(commit(500, 1, info(600, ALICE, TOWN, 4, 5)))
        .result
        .is_err());
    assert!(db
        .apply(commit(500, 2, info(600, ALICE, TOWN, 3, 5)))
        .result
        .is_err());
    // A user outside the channel cannot commit into it.
    db.ok(create_channel(
        30,
        TEAM,
        "private",
        ChannelType::Private,
        ALICE,
        6,
    ));
    assert!(db
        .apply(commit(500, 1, info(600, BOB, 30, 3, 5)))
        .result
        .is_err());
    assert!(!upload_commit(
        &mut db,
        500,
        1,
        info(600, ALICE, TOWN, 3, 5)
    ));
}

#[test]
fn files_attach_only_to_their_uploaders_posts_in_their_channel_once() {
    let mut db = setup();
    upload(&mut db, 500, 600, ALICE, TOWN, b"a", 6);
    upload(&mut db, 501, 601, ALICE, TOWN, b"b", 7);
    upload(&mut db, 502, 602, BOB, TOWN, b"c", 8);
    let with_files = |n: u64, channel: u64, user: u64, files: &[u64]| {
        let mut command = post(n, channel, user, None, "files", 200 + n);
        if let Command::CreatePost { file_ids, .. } = &mut command {
            *file_ids = files.iter().map(|f| id(*f)).collect();
        }
        command
    };
    // Another channel: nothing attaches.
    let Outcome::Posted(posted) = db.ok(with_files(700, OTHER, ALICE, &[600])) else {
        panic!("not posted")
    };
    assert!(posted.post.file_ids.is_empty());
    // Alice's post takes her files, not Bob's, and ignores unknown ids.
    let Outcome::Posted(posted) = db.ok(with_files(701, TOWN, ALICE, &[600, 602, 999, 601])) else {
        panic!("not posted")
    };
    assert_eq!(posted.post.file_ids, vec![id(600), id(601)]);
    assert_eq!(posted.files.len(), 2);
    assert_eq!(posted.files[0].post_id, id(701));
    // Attached files do not attach again.
    let Outcome::Posted(again) = db.ok(with_files(702, TOWN, ALICE, &[600])) else {
        panic!("not posted")
    };
    assert!(again.post.file_ids.is_empty());
    let r = db.engine.reader();
    let stored = r.post(id(701)).unwrap().unwrap();
    assert_eq!(r.post_files(&stored).unwrap().len(), 2);
    drop(r);
    // An edit drops a file (deleted) and keeps the other.
    db.ok(Command::PatchPost {
        post_id: id(701),
        at: 300,
        message: None,
        is_pinned: None,
        props: None,
        file_ids: Some(vec![id(601)]),
    });
    let r = db.engine.reader();
    assert_eq!(r.file_info(id(600)).unwrap().unwrap().delete_at, 300);
    let stored = r.post(id(701)).unwrap().unwrap();
    assert_eq!(stored.file_ids, vec![id(601)]);
    drop(r);
    // Deleting the post deletes its files.
    db.ok(Command::DeletePost {
        post_id: id(701),
        at: 400,
    });
    assert_eq!(
        db.engine
            .reader()
            .file_info(id(601))
            .unwrap()
            .unwrap()
            .delete_at,
        400
    );
}

#[test]
fn files_travel_in_snapshots() {
    let mut db = setup();
    let bytes = content(MAX_CHUNK_BYTES * 2 + 3, 9);
    upload(&mut db, 500, 600, ALICE, TOWN, &bytes, 9);
    stage(&mut db, 501, b"half", 100);
    let mut snapshot = Vec::new();
    db.engine.export_snapshot(&mut snapshot).unwrap();
    let other = TestDb::new();
    other
        .engine
        .import_snapshot(std::io::Cursor::new(snapshot))
        .unwrap();
    assert_eq!(read_back(&other, 600), bytes);
    assert_eq!(other.engine.reader().staged_uploads().unwrap(), 1);
    assert_eq!(
        other.engine.state_digest().unwrap(),
        db.engine.state_digest().unwrap()
    );
}
