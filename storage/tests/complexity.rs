//! Complexity by construction, proven by counting the keys each operation writes and reads.

mod common;

use common::{id, post, TestDb};
use confab_storage::{Command, Outcome};

/// A team with users 1 (author) and 2 (reader) in channel 200, and `threads` threads, each a
/// root by user 2 with `replies` replies by user 1 — all unread for user 2, who follows them.
fn channel_with_threads(threads: u64, replies: u64) -> TestDb {
    let mut db = TestDb::two_users_in_a_channel("big");
    let mut n = 1_000;
    let mut at = 10;
    for _ in 0..threads {
        let root = n;
        db.ok(post(root, 200, 2, None, "root", at));
        n += 1;
        at += 1;
        for _ in 0..replies {
            db.ok(post(n, 200, 1, Some(root), "reply", at));
            n += 1;
            at += 1;
        }
    }
    db
}

fn view_keys_written(db: &mut TestDb, collapsed: bool) -> u64 {
    let applied = db.apply(Command::ViewChannel {
        user_id: id(2),
        channel_id: id(200),
        at: 10_000_000,
        collapsed_threads_supported: collapsed,
    });
    assert!(matches!(applied.result, Ok(Outcome::ChannelViewed { .. })));
    applied.keys_written
}

#[test]
fn channel_view_writes_constant_keys_whatever_the_thread_count() {
    for collapsed in [true, false] {
        let mut small = channel_with_threads(2, 1);
        let mut large = channel_with_threads(2_000, 1);
        let small_keys = view_keys_written(&mut small, collapsed);
        let large_keys = view_keys_written(&mut large, collapsed);
        // The member, and (something was unread) the outbox's clear entry and its counter.
        assert_eq!(
            small_keys, 3,
            "a view writes the member and one outbox entry (collapsed {collapsed})"
        );
        assert_eq!(small_keys, large_keys, "collapsed {collapsed}");
    }
}

#[test]
fn non_crt_view_marks_every_thread_read_without_touching_them() {
    let mut db = channel_with_threads(300, 2);
    let totals = db.engine.reader().thread_totals(id(2), id(100)).unwrap();
    assert_eq!((totals.total, totals.total_unread_threads), (300, 300));
    let written = view_keys_written(&mut db, false);
    assert_eq!(
        written, 3,
        "the member, the outbox's clear entry and its counter"
    );
    let totals = db.engine.reader().thread_totals(id(2), id(100)).unwrap();
    assert_eq!((totals.total, totals.total_unread_threads), (300, 0));
    // A CRT view leaves threads alone.
    let mut db = channel_with_threads(10, 2);
    view_keys_written(&mut db, true);
    let totals = db.engine.reader().thread_totals(id(2), id(100)).unwrap();
    assert_eq!(totals.total_unread_threads, 10);
}

#[test]
fn unread_replies_scan_is_bounded_by_the_unread_replies() {
    // One thread with 500 replies; user 2 reads up to reply 490, then a watermark forces a
    // recount: the scan covers the 10 unread replies, not the 500.
    let mut db = channel_with_threads(1, 500);
    let thread = id(1_000);
    let reply_490_at = 10 + 490; // root at 10, reply k at 10 + k
    db.ok(Command::ReadThread {
        user_id: id(2),
        thread_id: thread,
        timestamp: reply_490_at,
        at: 20_000,
    });
    let reader = db.engine.reader();
    let item = reader.user_thread(id(2), thread).unwrap().unwrap();
    assert_eq!(item.read.unread_replies, 10);
    let followed_read = reader.keys_read();
    assert!(
        followed_read <= 8,
        "a followed thread's unread count is a counter: {followed_read} keys"
    );
    drop(reader);
    // Unfollowed: counted by a range scan over just the unread replies.
    db.ok(Command::FollowThread {
        user_id: id(2),
        thread_id: thread,
        follow: false,
        at: 20_001,
    });
    let reader = db.engine.reader();
    let item = reader.user_thread(id(2), thread).unwrap().unwrap();
    assert_eq!(item.read.unread_replies, 10);
    let keys = reader.keys_read();
    assert!(
        keys <= 10 + 8,
        "scan bounded by the 10 unread replies, read {keys} keys"
    );
}

#[test]
fn thread_totals_never_touch_posts() {
    // Totals read the user's thread index (one key per followed thread) and one watermark pair
    // per channel — the same count whether threads have 1 reply or 20.
    let few = channel_with_threads(50, 1);
    let many = channel_with_threads(50, 20);
    let count = |db: &TestDb| {
        let reader = db.engine.reader();
        let totals = reader.thread_totals(id(2), id(100)).unwrap();
        assert_eq!((totals.total, totals.total_unread_threads), (50, 50));
        reader.keys_read()
    };
    let (a, b) = (count(&few), count(&many));
    assert_eq!(a, b);
    assert!(
        a <= 50 + 4,
        "one key per followed thread plus watermarks, read {a}"
    );
}

#[test]
fn channel_unread_is_two_point_lookups() {
    for posts in [1u64, 400] {
        let db = channel_with_threads(posts, 0);
        let reader = db.engine.reader();
        let unread = reader.channel_unread(id(1), id(200)).unwrap().unwrap();
        assert_eq!(unread.msg_count, posts);
        assert_eq!(reader.keys_read(), 2);
    }
}

#[test]
fn a_page_reads_what_it_returns() {
    let db = channel_with_threads(300, 0);
    let reader = db.engine.reader();
    let page = reader
        .channel_posts(
            id(200),
            confab_storage::PostsQuery::Page {
                page: 0,
                per_page: 60,
            },
            false,
        )
        .unwrap();
    assert_eq!(page.order.len(), 60);
    // 61 index keys (one to know there is more) and 60 posts.
    assert!(
        reader.keys_read() <= 60 + 61 + 1,
        "read {}",
        reader.keys_read()
    );
}

#[test]
fn a_reply_writes_in_proportion_to_followers_not_to_thread_size() {
    let mut small = channel_with_threads(1, 1);
    let mut large = channel_with_threads(1, 300);
    let reply = |db: &mut TestDb| {
        db.apply(post(99_999, 200, 1, Some(1_000), "more", 9_000_000))
            .keys_written
    };
    assert_eq!(reply(&mut small), reply(&mut large));
}

/// The push badge is two point reads whatever the user's threads (and channels): apply keeps
/// it as a counter (`confab_storage::badge`), read with the list of channels whose latest
/// channel-wide mentions are still pending (empty here), where the walk reads every thread.
#[test]
fn the_push_badge_is_two_point_reads_whatever_the_followed_threads() {
    for threads in [1u64, 200] {
        let mut db = TestDb::two_users_in_a_channel("big");
        let mut at = 10;
        for root in 0..threads {
            db.ok(post(1_000 + root, 200, 2, None, "root", at));
            db.ok(post(
                5_000 + root,
                200,
                1,
                Some(1_000 + root),
                "@bob look",
                at + 1,
            ));
            at += 2;
        }
        let reader = db.engine.reader();
        assert_eq!(reader.badge(id(2), true).unwrap(), threads);
        assert_eq!(reader.keys_read(), 2);
        assert_eq!(reader.badge(id(2), false).unwrap(), threads);
        assert_eq!(reader.keys_read(), 4);
        let walked = db.engine.reader();
        assert_eq!(walked.mention_badge(id(2), true).unwrap(), threads);
        assert!(walked.keys_read() > threads, "the walk reads every thread");
    }
}
