//! The one-time index of a data directory written before search existed. Posts are indexed in
//! key order (their terms, and the filter of adjacent words in their time key), a bounded step at a time, each step one write batch that also records how far it
//! got (`meta` key `search_backfill`), so a restart resumes where it stopped. Steps hold the
//! engine's apply lock: an edit or delete applied meanwhile can never be overwritten by a step
//! that read the post before it. The marker travels in snapshots, so a node that installs one
//! mid-backfill carries on from the same place; a fresh data directory is marked done at open.

use super::adjacent;
use super::index::{block_key, is_searchable, terms_of};
use super::people::user_terms;
use super::postings;
use super::tokenize::{hashtags, tokens};
use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;
use crate::keys::{post_time_key, KeyBuf};
use crate::model::{Post, User};
use rocksdb::{Direction, IteratorMode, WriteBatch};
use std::sync::atomic::Ordering;

/// The `meta` key: `done`, or `p` · the last post id indexed (`p` alone: posts from the first),
/// or `u` · the last user id.
pub(crate) const BACKFILL_KEY: &[u8] = b"search_backfill";
const DONE: &[u8] = b"done";

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillStep {
    /// Indexed this many records; more may follow.
    Indexed(u64),
    /// Nothing left to index.
    Done,
}

impl Engine {
    /// At open: a data directory with no marker and no posts or users needs no backfill. When
    /// `posts_again` (the post index of an earlier version was just dropped), the backfill's
    /// pass over posts starts over ([`Engine::restart_post_backfill`]): the posts it had passed
    /// were indexed in the dropped family.
    pub(crate) fn init_search_backfill(&self, posts_again: bool) -> Result<()> {
        let meta = self.cf(Cf::Meta)?;
        let marker = self.db.get_cf(meta, BACKFILL_KEY)?;
        if posts_again && marker.is_some() {
            let mut batch = WriteBatch::default();
            self.restart_post_backfill(&mut batch)?;
            self.db.write(batch)?;
            return Ok(());
        }
        if marker.is_some() {
            return Ok(());
        }
        let empty = |cf: Cf| -> Result<bool> {
            Ok(self
                .db
                .iterator_cf(self.cf(cf)?, IteratorMode::Start)
                .next()
                .transpose()?
                .is_none())
        };
        if empty(Cf::PostidPost)? && empty(Cf::UseridUser)? {
            self.db.put_cf(meta, BACKFILL_KEY, DONE)?;
        }
        Ok(())
    }

    /// Makes the backfill index every post again, in `batch`: after an import whose time blocks
    /// were left out (a snapshot of format 1), a finished backfill, or one under way in posts,
    /// starts over at the first post; one still in users carries on into posts anyway.
    pub(crate) fn restart_post_backfill(&self, batch: &mut WriteBatch) -> Result<()> {
        let meta = self.cf(Cf::Meta)?;
        let marker = self.db.get_cf(meta, BACKFILL_KEY)?;
        if marker.as_deref() == Some(DONE)
            || marker.as_deref().is_some_and(|m| m.first() == Some(&b'p'))
        {
            tracing::info!("the post search index is rebuilt in the background");
            batch.put_cf(meta, BACKFILL_KEY, b"p");
        }
        Ok(())
    }

    /// Whether a backfill is still to run (or under way).
    pub fn search_backfill_pending(&self) -> Result<bool> {
        let marker = self.db.get_cf(self.cf(Cf::Meta)?, BACKFILL_KEY)?;
        Ok(marker.as_deref() != Some(DONE))
    }

    /// Indexes up to `max` more users, then posts, in one write batch with the new position.
    pub fn search_backfill_step(&self, max: usize) -> Result<BackfillStep> {
        let _applying = self.apply_lock.lock();
        let meta = self.cf(Cf::Meta)?;
        let marker = self.db.get_cf(meta, BACKFILL_KEY)?;
        let (phase, after) = match marker.as_deref() {
            Some(DONE) => return Ok(BackfillStep::Done),
            Some([b'p']) => (Cf::PostidPost, None),
            Some([b'p', last @ ..]) => (Cf::PostidPost, Some(last.to_vec())),
            Some([b'u', last @ ..]) => (Cf::UseridUser, Some(last.to_vec())),
            _ => (Cf::UseridUser, None),
        };
        let start = match &after {
            Some(last) => KeyBuf::new().raw(last).byte(0).build(),
            None => Vec::new(),
        };
        let mut batch = WriteBatch::default();
        let mut read = 0usize;
        let mut last = None;
        let mode = IteratorMode::From(&start, Direction::Forward);
        for item in self.db.iterator_cf(self.cf(phase)?, mode).take(max.max(1)) {
            let (key, value) = item?;
            read += 1;
            if phase == Cf::PostidPost {
                let post: Post = rmp_serde::from_slice(&value)?;
                if post.delete_at == 0 && is_searchable(&post) {
                    let add = postings::add(post.create_at);
                    let words = tokens(&post.message);
                    for term in terms_of(&words, &hashtags(&post.message), post.user_id) {
                        let key = block_key(&term, post.channel_id, post.create_at);
                        batch.merge_cf(self.cf(Cf::TermBucketChannelidCreateats)?, key, &add);
                    }
                    batch.put_cf(
                        self.cf(Cf::ChannelidCreateatPostid)?,
                        post_time_key(&post),
                        adjacent::filter_of(&words),
                    );
                }
            } else {
                let user: User = rmp_serde::from_slice(&value)?;
                for term in user_terms(&user) {
                    let key = KeyBuf::new().str(&term).byte(0).id(user.id).build();
                    batch.put_cf(self.cf(Cf::NametermUserid)?, key, []);
                }
            }
            last = Some(key.to_vec());
        }
        let next_marker = match (phase, last) {
            (Cf::UseridUser, Some(last)) if read >= max.max(1) => [b"u".as_slice(), &last].concat(),
            (Cf::UseridUser, _) => b"p".to_vec(),
            (_, Some(last)) if read >= max.max(1) => [b"p".as_slice(), &last].concat(),
            _ => DONE.to_vec(),
        };
        batch.put_cf(meta, BACKFILL_KEY, &next_marker);
        self.db.write(batch)?;
        self.stats
            .search_backfilled
            .fetch_add(read as u64, Ordering::Relaxed);
        if next_marker == DONE && read == 0 {
            return Ok(BackfillStep::Done);
        }
        Ok(BackfillStep::Indexed(read as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::id::Id;
    use crate::model::TeamType;
    use crate::search::{parse, PostSearch, DEFAULT_KEY_BUDGET};

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 16])
    }

    fn found(engine: &Engine, terms: &str) -> usize {
        let search = PostSearch {
            user: id(1),
            team: None,
            query: parse(terms).expect("parse"),
            is_or: false,
            time_zone_offset_secs: 0,
            include_deleted_channels: false,
            page: 0,
            per_page: 100,
            key_budget: DEFAULT_KEY_BUDGET,
        };
        let results = engine.reader().search_posts(&search).expect("search");
        results.page.order.len()
    }

    /// A user, a team and `posts` posts "old message n" in its town square.
    fn user_team_and_posts(engine: &Engine, posts: u8) {
        let mut index = 1;
        let mut apply = |command: Command| {
            engine
                .apply(index, &command)
                .expect("apply")
                .result
                .expect("accepted");
            index += 1;
        };
        apply(Command::CreateUser {
            id: id(1),
            at: 1,
            username: "ann".into(),
            email: "ann@example.com".into(),
            password_hash: "h".into(),
            nickname: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            roles: String::new(),
        });
        apply(Command::CreateTeam {
            id: id(2),
            at: 2,
            name: "team".into(),
            display_name: "Team".into(),
            team_type: TeamType::Open,
            creator_id: id(1),
            town_square_id: id(3),
            off_topic_id: id(4),
            invite_id: String::new(),
        });
        for n in 0..posts {
            apply(Command::CreatePost {
                file_ids: Vec::new(),
                id: id(100 + n),
                at: 10 + u64::from(n),
                channel_id: id(3),
                user_id: id(1),
                root_id: None,
                message: format!("old message {n}"),
                post_type: String::new(),
                props: "{}".into(),
                pending_post_id: String::new(),
                priority: String::new(),
                requested_ack: false,
                here_online: Vec::new(),
                channel_wide_ignored: false,
            });
        }
    }

    #[test]
    fn the_post_index_of_an_earlier_version_is_dropped_and_rebuilt() {
        for retired in Cf::RETIRED {
            // Done, or under way in posts: at the first, or past the last.
            let past_every_post = [b"p".as_slice(), &[0xff; 16]].concat();
            for marker in [DONE, b"p".as_slice(), &past_every_post] {
                post_index_dropped_and_rebuilt(retired, marker);
            }
        }
    }

    /// An earlier version's post index in `retired`, its backfill at `marker` (done, or under
    /// way in posts): the family is dropped at open and every post indexed again.
    fn post_index_dropped_and_rebuilt(retired: &str, marker: &[u8]) {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let engine = Engine::open(dir.path()).expect("open");
            user_team_and_posts(&engine, 5);
            assert_eq!(found(&engine, "old"), 5);
            let meta = engine.cf(Cf::Meta).expect("meta");
            engine
                .db
                .put_cf(meta, BACKFILL_KEY, marker)
                .expect("marker");
            // As an earlier version left it: no blocks, the index in its old family.
            let mut wipe = WriteBatch::default();
            let postings = engine.cf(Cf::TermBucketChannelidCreateats).expect("cf");
            wipe.delete_range_cf(postings, [0u8].as_slice(), [0xffu8; 8].as_slice());
            engine.db.write(wipe).expect("wipe");
            engine.compact().expect("compact");
        }
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).expect("list");
        {
            let mut db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), &names)
                .expect("raw open");
            db.create_cf(retired, &rocksdb::Options::default())
                .expect("old family");
        }
        let engine = Engine::open(dir.path()).expect("reopen");
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).expect("list");
        assert!(!names.iter().any(|name| name == retired), "dropped");
        assert!(engine.search_backfill_pending().expect("marker"));
        assert_eq!(found(&engine, "old"), 0, "not indexed yet");
        let mut indexed = 0;
        while let BackfillStep::Indexed(n) = engine.search_backfill_step(2).expect("step") {
            indexed += n;
        }
        assert_eq!(indexed, 5, "posts only: the users were indexed already");
        assert_eq!(found(&engine, "old"), 5);
        assert_eq!(found(&engine, "message 3"), 1);
    }

    #[test]
    fn an_old_data_directory_is_indexed_in_resumable_steps() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let engine = Engine::open(dir.path()).expect("open");
            user_team_and_posts(&engine, 25);
            assert!(!engine.search_backfill_pending().expect("marker"));
            // As a data directory from before search: no index, no marker.
            let mut wipe = WriteBatch::default();
            for cf in [Cf::TermBucketChannelidCreateats, Cf::NametermUserid] {
                wipe.delete_range_cf(
                    engine.cf(cf).expect("cf"),
                    [0u8].as_slice(),
                    [0xffu8; 8].as_slice(),
                );
            }
            wipe.delete_cf(engine.cf(Cf::Meta).expect("meta"), BACKFILL_KEY);
            engine.db.write(wipe).expect("wipe");
            assert_eq!(found(&engine, "old"), 0);
        }
        let engine = Engine::open(dir.path()).expect("reopen");
        assert!(engine.search_backfill_pending().expect("marker"));
        assert_eq!(
            engine.search_backfill_step(10).expect("users"),
            BackfillStep::Indexed(1)
        );
        assert_eq!(
            engine.search_backfill_step(10).expect("posts"),
            BackfillStep::Indexed(10)
        );
        drop(engine);
        // A restart resumes after the last post indexed.
        let engine = Engine::open(dir.path()).expect("reopen");
        assert_eq!(found(&engine, "old"), 10);
        let mut steps = 0;
        while let BackfillStep::Indexed(_) = engine.search_backfill_step(10).expect("step") {
            steps += 1;
        }
        assert_eq!(steps, 2, "the rest of 25 posts in steps of 10");
        assert!(!engine.search_backfill_pending().expect("marker"));
        assert_eq!(found(&engine, "old"), 25);
        assert_eq!(found(&engine, "message 7"), 1);
        let users = engine
            .reader()
            .search_users("an", 10, false, |_, _| Ok(true))
            .expect("users");
        assert_eq!(users.len(), 1);
    }

    /// A snapshot of format 1 (an earlier version's node) keys the time blocks channel before
    /// bucket: its import leaves them out and indexes every post again.
    #[test]
    fn a_snapshot_of_the_earlier_format_is_imported_and_its_posts_indexed_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("open");
        user_team_and_posts(&engine, 5);
        let mut stream = Vec::new();
        engine.export_snapshot(&mut stream).expect("export");
        // The header frame: [len][crc][sequence 8][kind 1][version 4][applied index 8].
        let len = u32::from_be_bytes(stream[..4].try_into().expect("len")) as usize;
        assert_eq!(&stream[17..21], &2u32.to_be_bytes(), "exported as format 2");
        stream[17..21].copy_from_slice(&1u32.to_be_bytes());
        let crc = crc32fast::hash(&stream[8..8 + len]);
        stream[4..8].copy_from_slice(&crc.to_be_bytes());

        let other = tempfile::tempdir().expect("temp dir");
        let imported = Engine::open(other.path()).expect("open");
        imported
            .import_snapshot(std::io::Cursor::new(stream))
            .expect("import");
        let blocks = imported
            .db
            .iterator_cf(
                imported.cf(Cf::TermBucketChannelidCreateats).expect("cf"),
                IteratorMode::Start,
            )
            .count();
        assert_eq!(blocks, 0, "the old layout's blocks are left out");
        assert!(imported.search_backfill_pending().expect("marker"));
        let mut indexed = 0;
        while let BackfillStep::Indexed(n) = imported.search_backfill_step(2).expect("step") {
            indexed += n;
        }
        assert_eq!(indexed, 5);
        assert_eq!(found(&imported, "old"), 5);
        assert_eq!(found(&imported, "old"), found(&engine, "old"));
    }
}
