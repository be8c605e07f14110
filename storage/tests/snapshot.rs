//! Snapshot round trip on a database of 100k posts, and refusal of corrupted streams without
//! touching the live state.

mod common;

use common::{id, post, TestDb};
use confab_storage::{verify_snapshot, Command, Engine};
use std::io::{Cursor, Seek, SeekFrom, Write};

fn populated(posts: u64) -> TestDb {
    let mut db = TestDb::two_users_in_a_channel("general");
    let mut batch = Vec::new();
    for n in 0..posts {
        let root = if n % 4 == 0 {
            None
        } else {
            Some(1_000_000 + (n / 4) * 4)
        };
        let user = 1 + n % 2;
        batch.push(post(
            1_000_000 + n,
            200,
            user,
            root,
            "a message of ordinary length @bob",
            10 + n,
        ));
    }
    let mut index = db.next_index;
    for chunk in batch.chunks(512) {
        let entries: Vec<(u64, Option<&Command>)> = chunk
            .iter()
            .map(|c| {
                index += 1;
                (index, Some(c))
            })
            .collect();
        for applied in db.engine.apply_batch(&entries, None).unwrap() {
            assert!(applied.result.is_ok(), "{:?}", applied.result);
        }
    }
    db.next_index = index + 1;
    db
}

#[test]
fn round_trip_of_100k_posts() {
    let source = populated(100_000);
    let file = tempfile::tempfile().unwrap();
    let mut writer = std::io::BufWriter::new(file);
    let exported = source.engine.export_snapshot(&mut writer).unwrap();
    let mut file = writer.into_inner().unwrap();
    assert!(
        exported.chunks > 10,
        "streamed in many chunks: {exported:?}"
    );
    assert!(exported.entries > 100_000);

    file.seek(SeekFrom::Start(0)).unwrap();
    let target_dir = tempfile::tempdir().unwrap();
    let target = Engine::open(target_dir.path()).unwrap();
    let imported = target
        .import_snapshot(std::io::BufReader::new(&mut file))
        .unwrap();
    assert_eq!(imported, exported);
    assert_eq!(
        target.state_digest().unwrap(),
        source.engine.state_digest().unwrap()
    );
    assert_eq!(
        target.applied_index().unwrap(),
        source.engine.applied_index().unwrap()
    );
    let reader = target.reader();
    let unread = reader.channel_unread(id(2), id(200)).unwrap().unwrap();
    let original = source
        .engine
        .reader()
        .channel_unread(id(2), id(200))
        .unwrap()
        .unwrap();
    assert_eq!(unread, original);
}

#[test]
fn corrupted_or_truncated_streams_are_refused_and_change_nothing() {
    let source = populated(3_000);
    let mut stream = Vec::new();
    source
        .engine
        .export_snapshot_chunked(&mut stream, 4_096)
        .unwrap();
    assert!(verify_snapshot(Cursor::new(&stream)).is_ok());

    let target = populated(10);
    let before = target.engine.state_digest().unwrap();
    // Flip a byte deep inside a data chunk.
    let mut flipped = stream.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    assert!(target
        .engine
        .import_snapshot(Cursor::new(&flipped))
        .is_err());
    assert_eq!(target.engine.state_digest().unwrap(), before);
    // Cut off before the end marker.
    let truncated = &stream[..stream.len() - 30];
    assert!(target
        .engine
        .import_snapshot(Cursor::new(truncated))
        .is_err());
    assert_eq!(target.engine.state_digest().unwrap(), before);
    // Garbage appended after the end.
    let mut extended = stream.clone();
    extended.write_all(b"junk").unwrap();
    assert!(target
        .engine
        .import_snapshot(Cursor::new(&extended))
        .is_err());
    assert_eq!(target.engine.state_digest().unwrap(), before);
    // Empty stream.
    assert!(target
        .engine
        .import_snapshot(Cursor::new(Vec::new()))
        .is_err());
    assert_eq!(target.engine.state_digest().unwrap(), before);
    // And the intact stream imports.
    target.engine.import_snapshot(Cursor::new(&stream)).unwrap();
    assert_eq!(
        target.engine.state_digest().unwrap(),
        source.engine.state_digest().unwrap()
    );
}

#[test]
fn the_sessions_epoch_moves_on_revokes_and_imports_only() {
    let mut source = populated(10);
    let engine = &source.engine;
    let start = engine.sessions_epoch();
    source.ok(Command::CreateSession {
        token: id(900),
        user_id: id(1),
        at: 20,
        expires_at: 0,
        device_id: String::new(),
    });
    source.ok(post(2_000_000, 200, 1, None, "not about sessions", 21));
    assert_eq!(
        source.engine.sessions_epoch(),
        start,
        "creating moves nothing"
    );
    source.ok(Command::RevokeSession { token: id(900) });
    let after_revoke = source.engine.sessions_epoch();
    assert!(after_revoke > start, "a revoke moves it");

    let mut stream = Vec::new();
    source.engine.export_snapshot(&mut stream).unwrap();
    let target = TestDb::new();
    let before_import = target.engine.sessions_epoch();
    target.engine.import_snapshot(Cursor::new(&stream)).unwrap();
    assert!(
        target.engine.sessions_epoch() > before_import,
        "an import moves it"
    );
}
