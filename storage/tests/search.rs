//! Post search against real RocksDB: each syntax element, the index kept through edits and
//! deletes, permissions, bounded work, snapshots — and a model-based property test comparing
//! every answer with a naive scan of every post.

mod common;

use common::{create_channel, create_team, create_user, id, post, TestDb};
use confab_storage::search::postings::BUCKET_MS;
use confab_storage::search::tokenize::{author_term, hashtags, tokens, tokens_stemmed_afresh};
use confab_storage::search::{parse, PostSearch, SearchResults, Word, DEFAULT_KEY_BUDGET};
use confab_storage::{ChannelType, Command, Engine, Id, Outcome};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const TEAM: u64 = 100;
const TOWN_SQUARE: u64 = 101;
const PUBLIC: u64 = 200;
const PRIVATE: u64 = 300;

/// Users 1–4 in one team; user 1 created a public and a private channel.
fn fixture() -> TestDb {
    let mut db = TestDb::new();
    for user in 1..=4 {
        db.ok(create_user(user, &format!("user{user}"), 1));
    }
    db.ok(create_team(TEAM, "team", 1, 2));
    for user in 2..=4 {
        db.ok(Command::AddTeamMember {
            team_id: id(TEAM),
            user_id: id(user),
            at: 3,
        });
    }
    db.ok(create_channel(
        PUBLIC,
        TEAM,
        "public",
        ChannelType::Open,
        1,
        4,
    ));
    db.ok(create_channel(
        PRIVATE,
        TEAM,
        "secret",
        ChannelType::Private,
        1,
        4,
    ));
    db
}

fn join(db: &mut TestDb, user: u64, channel: u64) {
    db.ok(Command::AddChannelMember {
        channel_id: id(channel),
        user_id: id(user),
        at: 5,
    });
}

/// A root post.
fn say(n: u64, channel: u64, user: u64, text: &str, at: u64) -> Command {
    post(n, channel, user, None, text, at)
}

fn search_as(
    engine: &Engine,
    user: u64,
    terms: &str,
    is_or: bool,
    page: usize,
    per_page: usize,
) -> SearchResults {
    let search = PostSearch {
        user: id(user),
        is_or,
        page,
        ..team_search(terms, per_page)
    };
    engine.reader().search_posts(&search).expect("search")
}

/// User 1's search in the team, first page, newest first.
fn team_search(terms: &str, per_page: usize) -> PostSearch {
    PostSearch {
        user: id(1),
        team: Some(id(TEAM)),
        query: parse(terms).expect("query parses"),
        is_or: false,
        time_zone_offset_secs: 0,
        include_deleted_channels: false,
        page: 0,
        per_page,
        key_budget: DEFAULT_KEY_BUDGET,
    }
}

/// Post numbers of a search by user 1, newest first.
fn found(db: &TestDb, terms: &str) -> Vec<u64> {
    found_as(db, 1, terms)
}

fn found_as(db: &TestDb, user: u64, terms: &str) -> Vec<u64> {
    ids(&search_as(&db.engine, user, terms, false, 0, 50))
}

fn ids(results: &SearchResults) -> Vec<u64> {
    results.page.order.iter().map(|i| common::num(*i)).collect()
}

#[test]
fn each_syntax_element_finds_what_it_names() {
    let mut db = fixture();
    let posts = [
        (1, PUBLIC, 1, "The runners were running fast", 1_000),
        (2, PUBLIC, 2, "quick brown fox", 2_000),
        (3, TOWN_SQUARE, 3, "brown quick fox", 3_000),
        (4, PUBLIC, 1, "Café au lait #Release-2 please", 4_000),
        (5, TOWN_SQUARE, 2, "東京都に行く", 5_000),
        (6, PUBLIC, 3, "deployment deploys deployed", 86_400_000 + 10),
        (
            7,
            PUBLIC,
            1,
            "release notes without a tag",
            86_400_000 * 2 + 10,
        ),
    ];
    join(&mut db, 2, PUBLIC);
    join(&mut db, 3, PUBLIC);
    for (n, channel, user, text, at) in posts {
        db.ok(say(n, channel, user, text, at));
    }
    assert_eq!(found(&db, "run"), [1], "stemming");
    assert_eq!(found(&db, "RUNNER"), [1], "case and stemming");
    assert_eq!(found(&db, "cafe"), [4], "accents fold");
    assert_eq!(found(&db, "quick fox"), [3, 2], "AND, newest first");
    assert_eq!(found(&db, "\"quick brown\""), [2], "phrase in order");
    assert_eq!(found(&db, "fox -\"brown quick\""), [2], "excluded phrase");
    assert_eq!(
        found(&db, "fox -runners"),
        [3, 2],
        "exclusion that excludes nothing"
    );
    assert_eq!(found(&db, "deploy*"), [6], "prefix");
    assert_eq!(found(&db, "#release-2"), [4], "hashtag");
    assert_eq!(
        found(&db, "#release"),
        Vec::<u64>::new(),
        "hashtags match exactly"
    );
    assert_eq!(
        found(&db, "release"),
        [7, 4],
        "a word also finds the words of a hashtag"
    );
    assert_eq!(found(&db, "京都"), [5], "CJK bigram");
    assert_eq!(found(&db, "東京都"), [5], "CJK phrase of bigrams");
    assert_eq!(found(&db, "from:user2 fox"), [2], "from:");
    assert_eq!(found(&db, "from:@user1"), [7, 4, 1], "from: alone");
    assert_eq!(found(&db, "in:town-square fox"), [3], "in:");
    assert_eq!(found(&db, "-in:town-square fox"), [2], "-in:");
    assert_eq!(found(&db, "in:public"), [7, 6, 4, 2, 1], "in: alone");
    assert_eq!(found(&db, "on:1970-01-02"), [6], "on:");
    assert_eq!(found(&db, "before:1970-01-02"), [5, 4, 3, 2, 1], "before:");
    assert_eq!(found(&db, "after:1970-01-02"), [7], "after:");
    assert_eq!(
        found(&db, "after:1970-01-01 from:user3"),
        [6],
        "date and author"
    );
    assert_eq!(found(&db, "nosuchword"), Vec::<u64>::new());
    let or = search_as(&db.engine, 1, "runners cafe", true, 0, 10);
    assert_eq!(ids(&or), [4, 1], "OR");
    assert_eq!(
        or.matches,
        vec![
            (id(4), vec!["Café".to_string()]),
            (id(1), vec!["runners".to_string()])
        ],
        "matches name the words of the text"
    );
}

#[test]
fn the_time_zone_moves_the_day() {
    let mut db = fixture();
    // 23:00 UTC on day 0 is day 1 two hours east of UTC.
    db.ok(say(1, PUBLIC, 1, "late word", 23 * 3_600_000));
    let query = |offset: i64| {
        let search = PostSearch {
            time_zone_offset_secs: offset,
            ..team_search("on:1970-01-02 word", 10)
        };
        ids(&db.engine.reader().search_posts(&search).expect("search"))
    };
    assert_eq!(query(0), Vec::<u64>::new());
    assert_eq!(query(7_200), [1]);
}

#[test]
fn edits_and_deletes_keep_the_index_in_step() {
    let mut db = fixture();
    join(&mut db, 2, PUBLIC);
    db.ok(say(1, PUBLIC, 1, "original words", 10));
    db.ok(say(2, PUBLIC, 2, "reply words", 20));
    db.ok(say(3, PUBLIC, 2, "a reply", 30));
    db.ok(post(4, PUBLIC, 2, Some(1), "threaded answer", 40));
    db.ok(Command::PatchPost {
        file_ids: None,
        post_id: id(1),
        at: 50,
        message: Some("edited text".into()),
        is_pinned: None,
        props: None,
    });
    assert_eq!(found(&db, "original"), Vec::<u64>::new(), "old terms out");
    assert_eq!(found(&db, "edited"), [1], "new terms in");
    assert_eq!(found(&db, "words"), [2]);
    assert_eq!(found(&db, "answer"), [4]);
    db.ok(Command::DeletePost {
        post_id: id(1),
        at: 60,
    });
    assert_eq!(found(&db, "edited"), Vec::<u64>::new(), "deleted post");
    assert_eq!(
        found(&db, "answer"),
        Vec::<u64>::new(),
        "its replies went with it"
    );
    db.ok(Command::DeletePost {
        post_id: id(2),
        at: 70,
    });
    assert_eq!(found(&db, "words"), Vec::<u64>::new());
    assert_eq!(found(&db, "reply"), [3]);
    // Nothing of the deleted posts is left in the index.
    let term_keys = count_keys(&db.engine, "edited") + count_keys(&db.engine, "answer");
    assert_eq!(term_keys, 0);
}

fn count_keys(engine: &Engine, term: &str) -> usize {
    let results = engine.reader().search_posts(&PostSearch {
        team: None,
        include_deleted_channels: true,
        ..team_search(term, 100)
    });
    results.expect("search").page.order.len()
}

#[test]
fn only_channels_the_user_is_in() {
    let mut db = fixture();
    db.ok(say(1, PRIVATE, 1, "secret plans", 10));
    db.ok(say(2, PUBLIC, 1, "public plans", 20));
    assert_eq!(found_as(&db, 1, "plans"), [2, 1]);
    assert_eq!(
        found_as(&db, 2, "plans"),
        Vec::<u64>::new(),
        "not a member of either"
    );
    let paged = search_as(&db.engine, 2, "plans", false, 0, 1);
    assert!(
        !paged.page.has_next && paged.matches.is_empty(),
        "nothing leaks through paging"
    );
    db.ok(Command::AddChannelMember {
        channel_id: id(PUBLIC),
        user_id: id(2),
        at: 30,
    });
    assert_eq!(found_as(&db, 2, "plans"), [2]);
    assert_eq!(
        found_as(&db, 2, "in:secret plans"),
        Vec::<u64>::new(),
        "in: cannot reach past membership"
    );
    db.ok(Command::RemoveChannelMember {
        channel_id: id(PUBLIC),
        user_id: id(2),
        at: 40,
    });
    assert_eq!(
        found_as(&db, 2, "plans"),
        Vec::<u64>::new(),
        "left the channel"
    );
    db.ok(Command::DeleteChannel {
        channel_id: id(PUBLIC),
        at: 50,
    });
    assert_eq!(
        found_as(&db, 1, "plans"),
        [1],
        "archived channels are left out"
    );
    assert_eq!(found_as(&db, 1, "\"public plans\""), Vec::<u64>::new());
    assert_eq!(found_as(&db, 1, "\"secret plans\""), [1]);
    assert_eq!(
        search_as(&db.engine, 1, "plans", false, 0, 1)
            .page
            .order
            .len(),
        1,
        "a page of one holds the live channel's post"
    );
}

#[test]
fn direct_channels_by_in_at_user() {
    let mut db = fixture();
    let mut names = [id(1).to_base32(), id(2).to_base32()];
    names.sort();
    db.ok(Command::CreateDirectOrGroup {
        id: id(500),
        at: 5,
        channel_type: ChannelType::Direct,
        name: format!("{}__{}", names[0], names[1]),
        display_name: String::new(),
        members: vec![id(1), id(2)],
        creator_id: id(1),
    });
    db.ok(say(1, 500, 2, "hello there", 10));
    db.ok(say(2, PUBLIC, 1, "hello all", 20));
    assert_eq!(
        found(&db, "hello"),
        [2, 1],
        "team search includes direct channels"
    );
    assert_eq!(found(&db, "in:@user2 hello"), [1]);
    assert_eq!(found_as(&db, 3, "hello"), Vec::<u64>::new());
}

#[test]
fn a_common_word_reads_one_page_not_every_match() {
    let mut db = fixture();
    for n in 0..3_000u64 {
        let channel = if n % 2 == 0 { PUBLIC } else { TOWN_SQUARE };
        db.ok(say(
            1_000 + n,
            channel,
            1,
            &format!("common word {n}"),
            10 + n,
        ));
    }
    let reader = db.engine.reader();
    let results = reader
        .search_posts(&team_search("common", 20))
        .expect("search");
    assert_eq!(results.page.order.len(), 20);
    assert!(results.page.has_next);
    assert_eq!(results.page.order[0], id(1_000 + 2_999), "newest first");
    assert!(
        reader.keys_read() < 120,
        "read {} keys for a page of 20 out of 3000",
        reader.keys_read()
    );
}

/// `count` open channels of the team, 1000 on, that user 1 creates and user 4 joins.
fn open_channels(db: &mut TestDb, count: u64) -> Vec<u64> {
    let channels: Vec<u64> = (0..count).map(|n| 1_000 + n).collect();
    for channel in &channels {
        db.ok(create_channel(
            *channel,
            TEAM,
            &format!("c{channel}"),
            ChannelType::Open,
            1,
            4,
        ));
    }
    channels
}

/// A word that few of the user's channels hold costs the keys of its few blocks, not one per
/// channel searched: its rows (one span, every channel) hold only the channels that have it, and
/// a rare word's rows come in one pass.
#[test]
fn a_rare_word_costs_the_channels_that_hold_it_not_every_channel() {
    let mut db = fixture();
    let channels = open_channels(&mut db, 150);
    for channel in &channels {
        // Every channel has posts (and so terms); only two hold the rare word.
        db.ok(say(10_000 + channel, *channel, 1, "ordinary chatter", 10));
    }
    db.ok(say(20_001, channels[40], 1, "zyzzyva here", 20));
    db.ok(say(20_002, channels[120], 1, "zyzzyva there", 30));
    let reader = db.engine.reader();
    let results = reader
        .search_posts(&team_search("zyzzyva", 20))
        .expect("search");
    assert_eq!(ids(&results), [20_002, 20_001]);
    // The user's membership list is read whole (one key per channel); then a few seeks and
    // the two posts. A seek per channel would read 150 keys more.
    let memberships = channels.len() as u64 + 4;
    assert!(
        reader.keys_read() < memberships + 30,
        "read {} keys over {memberships} channels",
        reader.keys_read(),
    );
}

/// A word's blocks are read a row (one span, every channel) at a time, and an older row only
/// when the merge of the channels' candidates reaches it: a word in every channel and every
/// span, whose page fills from its newest posts, costs its newest row, not every block.
#[test]
fn a_common_word_in_many_channels_reads_its_newest_row_only() {
    let mut db = fixture();
    let channels = open_channels(&mut db, 60);
    let spans = 8u64;
    for span in 0..spans {
        for channel in &channels {
            let at = 10 + span * BUCKET_MS + channel;
            db.ok(say(
                100_000 + span * 1_000 + channel,
                *channel,
                1,
                "common chatter",
                at,
            ));
        }
    }
    let reader = db.engine.reader();
    let results = reader
        .search_posts(&team_search("common", 20))
        .expect("search");
    let newest_span: Vec<u64> = channels
        .iter()
        .rev()
        .take(20)
        .map(|channel| 100_000 + (spans - 1) * 1_000 + channel)
        .collect();
    assert_eq!(ids(&results), newest_span);
    assert!(results.page.has_next);
    // The memberships, one row (a seek, a step per channel), and the page's 21 candidates (a
    // few keys each: time key, post, channel record). One more row would be 60 keys more;
    // every row, 8 × 60.
    let memberships = channels.len() as u64 + 4;
    let row = channels.len() as u64 + 2;
    assert!(
        reader.keys_read() < memberships + row + 21 * 8,
        "read {} keys over {memberships} channels",
        reader.keys_read(),
    );
    // The row costs one seek, then a step per channel: not a seek per channel.
    assert_eq!(reader.time_block_seeks(), 1);
}

#[test]
fn two_common_words_that_rarely_meet_leapfrog() {
    let mut db = fixture();
    // 1500 posts with "alpha", then 1500 with "beta"; only the oldest holds both.
    db.ok(say(999, PUBLIC, 1, "alpha beta", 5));
    for n in 0..1_500u64 {
        db.ok(say(1_000 + n, PUBLIC, 1, "alpha only", 10 + n));
    }
    for n in 0..1_500u64 {
        db.ok(say(3_000 + n, PUBLIC, 1, "beta only", 2_000 + n));
    }
    let reader = db.engine.reader();
    let results = reader
        .search_posts(&team_search("alpha beta", 20))
        .expect("search");
    assert_eq!(ids(&results), [999]);
    assert!(reader.keys_read() < 100, "read {} keys", reader.keys_read());
}

#[test]
fn required_words_past_one_bitmap_chunk_are_anded_chunk_by_chunk() {
    let mut db = fixture();
    // Post n of the channel is its number n: 4,096 numbers per bitmap chunk; matches in chunks
    // 0 and 2, none in chunk 1.
    let special = |n: u64| match n {
        3 | 8_200 => "alpha beta",
        5 => "gamma delta",
        8_201 => "delta",
        8_202 => "alpha",
        _ => "filler",
    };
    for n in 0..8_300u64 {
        db.ok(say(n + 1, PUBLIC, 1, special(n), 10 + n));
    }
    let reader = db.engine.reader();
    let results = reader
        .search_posts(&team_search("alpha beta", 20))
        .expect("search");
    assert_eq!(ids(&results), [8_201, 4], "chunks 2 and 0");
    assert!(reader.keys_read() < 30, "read {} keys", reader.keys_read());
    // "gamma" has no chunk 2: the AND steps to chunk 0, where "delta" also is.
    assert_eq!(found(&db, "gamma delta"), [6]);
    assert_eq!(found(&db, "alpha delta"), Vec::<u64>::new());
    assert_eq!(found(&db, "from:user1 alpha beta"), [8_201, 4]);
    assert_eq!(found(&db, "from:user2 alpha beta"), Vec::<u64>::new());
}

#[test]
fn ands_over_channels_of_several_chunks_find_every_match_newest_first() {
    let mut db = fixture();
    // Three channels of 8,200 posts each (chunks 0, 1 and 2), posted in turn, so that each
    // channel's chunk covers the same time as the others'. "alpha" and "beta" never meet but
    // in posts 0 (chunk 0) and 5,000 (chunk 1) of each channel.
    let channels = [TOWN_SQUARE, PUBLIC, PRIVATE];
    for n in 0..8_200u64 {
        for (c, channel) in channels.iter().enumerate() {
            let text = match n {
                0 | 5_000 => "alpha beta",
                n if n % 2 == 0 => "alpha",
                _ => "beta",
            };
            let k = n * 3 + c as u64;
            db.ok(say(k + 1, *channel, 1, text, 10 + k));
        }
    }
    let newest_first = [15_003, 15_002, 15_001, 3, 2, 1];
    assert_eq!(found(&db, "alpha beta"), newest_first);
    assert_eq!(found(&db, "alpha beta from:user1"), newest_first);
    // Page by page: each page goes on from the bound or match the last one stopped at.
    for (page, expected) in newest_first.chunks(2).enumerate() {
        let results = search_as(&db.engine, 1, "alpha beta", false, page, 2);
        assert_eq!(ids(&results), expected, "page {page}");
    }
}

#[test]
fn a_channel_whose_newest_chunks_miss_is_read_only_as_far_as_the_page_needs() {
    let mut db = fixture();
    // PUBLIC: 8 chunks of posts where "alpha" and "beta" meet only in its first post;
    // TOWN_SQUARE: five newer posts holding both.
    for n in 0..(7 * 4_096 + 10u64) {
        let text = match n {
            0 => "alpha beta",
            n if n % 2 == 0 => "alpha",
            _ => "beta",
        };
        db.ok(say(n + 1, PUBLIC, 1, text, 10 + n));
    }
    for k in 0..5u64 {
        db.ok(say(
            100_000 + k,
            TOWN_SQUARE,
            1,
            "alpha beta",
            1_000_000 + k,
        ));
    }
    let reader = db.engine.reader();
    let results = reader
        .search_posts(&team_search("alpha beta", 3))
        .expect("search");
    assert_eq!(ids(&results), [100_004, 100_003, 100_002]);
    // PUBLIC's newest chunk of each word (and the next one, read ahead), then a bound at
    // that chunk's first post, older than the page: 22 keys in all, where reading on to its
    // match read 12 more (its eight chunks of each word).
    let first = reader.keys_read();
    assert!(first <= 24, "read {first} keys");
    // The bound's time is remembered: the same search again looks it up no more.
    let again = db.engine.reader();
    again
        .search_posts(&team_search("alpha beta", 3))
        .expect("search");
    assert_eq!(again.keys_read(), first - 1);
    // A page that needs PUBLIC's match reads on past the bound, down to its chunk 0.
    assert_eq!(
        found(&db, "alpha beta"),
        [100_004, 100_003, 100_002, 100_001, 100_000, 1]
    );
}

#[test]
fn remembered_stems_give_the_tokens_a_fresh_stemming_gives() {
    let mut texts: Vec<String> = [
        "Running RUNS ran runner",
        "release 1.2.3 build42 running",
        "Ångström café CAFÉ",
        "東京タワー 東京 running",
        "#topic-1 nation's nationalization",
        "",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    // More distinct words than a thread remembers: it starts over on the way.
    let letters = |mut n: usize| {
        let mut word = String::from("walking");
        while n > 0 {
            word.push(char::from(b'a' + (n % 26) as u8));
            n /= 26;
        }
        word
    };
    texts.extend((0..20_000).map(|n| format!("{} talks{n}", letters(n))));
    texts.push("Running nationalization walking7x".into());
    // Words longer than a term are stemmed each time, not remembered.
    texts.push(format!("{}ings running", "nationalization".repeat(10)));
    for _pass in 0..2 {
        for text in &texts {
            assert_eq!(tokens(text), tokens_stemmed_afresh(text), "{text:?}");
        }
    }
}

#[test]
fn two_words_or_more_are_answered_from_the_bitmaps_alone() {
    let mut db = fixture();
    join(&mut db, 2, PUBLIC);
    db.ok(say(1, PUBLIC, 1, "alpha beta", 10));
    db.ok(say(2, PUBLIC, 2, "alpha", 20));
    db.ok(say(3, TOWN_SQUARE, 1, "beta gamma alpha", 30));
    db.ok(say(4, PUBLIC, 2, "beta alpha delta", 40));
    db.ok(say(5, PRIVATE, 1, "alpha beta", 50));
    let before = found(&db, "alpha beta");
    assert_eq!(before, [5, 4, 3, 1]);
    db.engine.forget_time_blocks().expect("forget");
    for compacted in [false, true] {
        if compacted {
            db.engine.compact().expect("compact");
        }
        // One word, a phrase alone and `from:` with one word walk the time blocks, now gone.
        assert_eq!(found(&db, "alpha"), Vec::<u64>::new());
        assert_eq!(found(&db, "\"beta alpha\""), Vec::<u64>::new());
        assert_eq!(found(&db, "from:user2 alpha"), Vec::<u64>::new());
        // Two words or more, authors included, are ANDed on the bitmaps: nothing is lost.
        assert_eq!(found(&db, "alpha beta"), before, "compacted: {compacted}");
        assert_eq!(found(&db, "alpha beta delta"), [4]);
        assert_eq!(found(&db, "from:user2 alpha beta"), [4]);
        assert_eq!(
            found_as(&db, 2, "beta alpha"),
            [4, 3, 1],
            "not user 1's private post"
        );
    }
}

#[test]
fn an_upgraded_directory_finds_posts_from_before_numbering_too() {
    let mut db = fixture();
    join(&mut db, 2, PUBLIC);
    db.ok(say(1, PUBLIC, 1, "alpha beta", 10));
    db.ok(say(2, PUBLIC, 2, "alpha", 20));
    db.ok(say(3, TOWN_SQUARE, 1, "alpha beta", 30));
    db.ok(say(4, PRIVATE, 1, "beta alpha", 35));
    db.engine.forget_post_numbering().expect("forget");
    // Numbering starts at each channel's next post; TOWN_SQUARE has none after the upgrade.
    db.ok(say(5, PUBLIC, 1, "alpha beta", 40));
    db.ok(say(6, PUBLIC, 1, "beta", 50));
    db.ok(say(7, PRIVATE, 1, "alpha beta gamma", 60));
    // An edit and a delete of posts from before numbering reach the time blocks alone.
    db.ok(Command::PatchPost {
        file_ids: None,
        post_id: id(4),
        at: 70,
        message: Some("beta only".into()),
        is_pinned: None,
        props: None,
    });
    for compacted in [false, true] {
        if compacted {
            db.engine.compact().expect("compact");
        }
        assert_eq!(
            found(&db, "alpha beta"),
            [7, 5, 3, 1],
            "compacted: {compacted}"
        );
        assert_eq!(found(&db, "alpha beta \"alpha beta\""), [7, 5, 3, 1]);
        assert_eq!(found(&db, "from:user1 alpha beta"), [7, 5, 3, 1]);
        assert_eq!(found(&db, "from:user2 alpha beta"), Vec::<u64>::new());
        assert_eq!(found(&db, "from:user2 alpha"), [2]);
    }
    db.ok(Command::DeletePost {
        post_id: id(1),
        at: 80,
    });
    db.ok(Command::DeletePost {
        post_id: id(5),
        at: 80,
    });
    assert_eq!(found(&db, "alpha beta"), [7, 3]);
}

#[test]
fn a_phrase_whose_words_stand_apart_is_ruled_out_without_reading_the_posts() {
    let mut db = fixture();
    db.ok(say(1, PUBLIC, 1, "alpha beta at last", 10));
    // 400 newer posts hold both words, never side by side.
    for n in 0..400u64 {
        db.ok(say(
            1_000 + n,
            PUBLIC,
            1,
            &format!("alpha then beta {n}"),
            100 + n,
        ));
    }
    {
        let reader = db.engine.reader();
        let results = reader
            .search_posts(&team_search("\"alpha beta\"", 20))
            .expect("search");
        assert_eq!(ids(&results), [1]);
        // Each candidate costs its time key and the step past it, read anyway to find the
        // post (two keys); reading every post as well would make it three.
        assert!(
            reader.keys_read() < 2 * 400 + 100,
            "read {} keys for 401 candidates",
            reader.keys_read()
        );
    }
    // An edit writes the new text's filter: one post gains the phrase, the first loses it.
    db.ok(Command::PatchPost {
        file_ids: None,
        post_id: id(1_007),
        at: 1_000,
        message: Some("now alpha beta side by side".into()),
        is_pinned: None,
        props: None,
    });
    db.ok(Command::PatchPost {
        file_ids: None,
        post_id: id(1),
        at: 1_001,
        message: Some("beta alpha".into()),
        is_pinned: None,
        props: None,
    });
    assert_eq!(found(&db, "\"alpha beta\""), [1_007]);
    assert_eq!(found(&db, "\"beta alpha\""), [1]);
    // An OR search may answer through its other word: the filter rules nothing out there.
    let or = search_as(&db.engine, 1, "\"beta alpha\" side", true, 0, 50);
    assert_eq!(ids(&or), [1_007, 1]);
}

#[test]
fn posts_from_before_the_adjacent_word_filters_are_read_and_checked() {
    let mut db = fixture();
    db.ok(say(1, PUBLIC, 1, "alpha beta", 10));
    db.ok(say(2, PUBLIC, 1, "beta alpha", 20));
    db.ok(say(3, TOWN_SQUARE, 1, "one alpha beta two", 30));
    db.engine.forget_adjacent_filters().expect("forget");
    db.ok(say(4, PUBLIC, 1, "alpha and beta", 40));
    db.ok(say(5, PUBLIC, 1, "the alpha beta", 50));
    for compacted in [false, true] {
        if compacted {
            db.engine.compact().expect("compact");
        }
        assert_eq!(
            found(&db, "\"alpha beta\""),
            [5, 3, 1],
            "compacted: {compacted}"
        );
        assert_eq!(found(&db, "\"beta alpha\""), [2]);
    }
}

#[test]
fn posts_of_the_same_millisecond_come_in_id_order() {
    let mut db = fixture();
    db.ok(say(5, PUBLIC, 1, "tie", 10));
    db.ok(say(4, TOWN_SQUARE, 1, "tie", 10));
    db.ok(say(6, PRIVATE, 1, "tie", 10));
    db.ok(say(3, PUBLIC, 1, "tie", 11));
    assert_eq!(found(&db, "tie"), [3, 4, 5, 6]);
    assert_eq!(
        found(&db, "on:1970-01-01"),
        [3, 4, 5, 6],
        "a date alone: every live post"
    );
}

#[test]
fn interleaved_common_words_are_intersected_a_block_at_a_time() {
    let mut db = fixture();
    // The hard case for a leapfrog over single posts: the two words alternate, post by post,
    // over 8 postings blocks, and meet in the oldest post only.
    db.ok(say(999, PUBLIC, 1, "alpha beta", 5));
    let step = BUCKET_MS / 250;
    for n in 0..2_000u64 {
        let text = if n % 2 == 0 { "alpha one" } else { "beta two" };
        db.ok(say(1_000 + n, PUBLIC, 1, text, 10 + n * step));
    }
    for compacted in [false, true] {
        if compacted {
            db.engine.compact().expect("compact");
        }
        let reader = db.engine.reader();
        let results = reader
            .search_posts(&team_search("alpha beta", 20))
            .expect("search");
        assert_eq!(ids(&results), [999], "compacted: {compacted}");
        // Two words' blocks in one channel (9 spans each), the one post and its lookup; one
        // key per post would be 2,000.
        assert!(
            reader.keys_read() < 40,
            "read {} keys (compacted: {compacted})",
            reader.keys_read()
        );
    }
}

#[test]
fn the_key_budget_stops_a_search() {
    let mut db = fixture();
    for n in 0..500u64 {
        db.ok(say(
            1_000 + n,
            PUBLIC,
            1,
            &format!("word{} filler", n % 2),
            10 + n,
        ));
    }
    // Excluding every candidate makes the search walk them all, until the budget ends it.
    let search = PostSearch {
        key_budget: 100,
        ..team_search("filler -word0 -word1", 20)
    };
    let reader = db.engine.reader();
    let results = reader.search_posts(&search).expect("search");
    assert!(results.truncated && results.page.order.is_empty());
    assert!(reader.keys_read() < 150);
}

#[test]
fn a_snapshot_carries_the_index() {
    let mut db = fixture();
    db.ok(say(1, PUBLIC, 1, "snapshotted words", 10));
    let mut bytes = Vec::new();
    db.engine.export_snapshot(&mut bytes).expect("export");
    let other = TestDb::new();
    other
        .engine
        .import_snapshot(std::io::Cursor::new(bytes))
        .expect("import");
    assert_eq!(found(&other, "snapshot"), [1]);
}

#[test]
fn people_search_by_name_prefix() {
    let mut db = TestDb::new();
    let mut john = create_user(1, "john.smith", 1);
    if let Command::CreateUser {
        first_name,
        last_name,
        nickname,
        ..
    } = &mut john
    {
        *first_name = "Jöhn".into();
        *last_name = "Smith".into();
        *nickname = "jsmith".into();
    }
    db.ok(john);
    db.ok(create_user(2, "johanna", 1));
    db.ok(create_user(3, "bob", 1));
    let reader = db.engine.reader();
    let names = |term: &str| -> Vec<String> {
        reader
            .search_users(term, 10, false, |_, _| Ok(true))
            .expect("search")
            .into_iter()
            .map(|u| u.username)
            .collect()
    };
    assert_eq!(names("jo"), ["johanna", "john.smith"]);
    assert_eq!(names("@JOHN"), ["john.smith"]);
    assert_eq!(names("smi"), ["john.smith"]);
    assert_eq!(names("john smi"), ["john.smith"], "every word a prefix");
    assert_eq!(names("zed"), Vec::<String>::new());
    let only_bob = reader
        .search_users("", 10, false, |_, u| Ok(u.username == "bob"))
        .expect("search");
    assert_eq!(only_bob.len(), 1);
}

// ---- The model ----

#[derive(Debug, Clone)]
struct ModelPost {
    id: Id,
    channel: u64,
    user: u64,
    create_at: u64,
    message: String,
    deleted: bool,
    root: Option<usize>,
}

/// Channels of the model (all in the team): public, private, town square.
const CHANNELS: [u64; 3] = [PUBLIC, PRIVATE, TOWN_SQUARE];
const VOCABULARY: [&str; 12] = [
    "apple",
    "apples",
    "banana",
    "cherry",
    "running",
    "run",
    "café",
    "cafe",
    "#tag",
    "#tag2",
    "東京都",
    "京都",
];

#[derive(Debug, Clone)]
enum Op {
    Post {
        user: u64,
        channel: usize,
        words: Vec<usize>,
        reply_to: Option<usize>,
    },
    Edit {
        post: usize,
        words: Vec<usize>,
    },
    Delete {
        post: usize,
    },
    Join {
        user: u64,
        channel: usize,
    },
    Leave {
        user: u64,
        channel: usize,
    },
    Search {
        user: u64,
        query: usize,
        is_or: bool,
        page: usize,
        per_page: usize,
    },
    /// Flush and compact: the postings' merge operator folds what is stored.
    Compact,
    /// Archive a channel: its posts are no longer found.
    Archive {
        channel: usize,
    },
}

const QUERIES: [&str; 19] = [
    "apple",
    "apples banana",
    "from:user2 apple banana",
    "banana run \"cherry run\"",
    "app* banana cherry",
    "run",
    "cafe",
    "\"banana cherry\"",
    "app*",
    "ch*",
    "banana -cherry",
    "#tag",
    "#tag2 run",
    "京都",
    "from:user2",
    "from:user3 apple",
    "in:public",
    "-in:public cherry",
    "after:1970-01-01 banana",
];

fn words_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..VOCABULARY.len(), 1..5)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=4u64, 0..3usize, words_strategy(), prop::option::of(0..40usize))
            .prop_map(|(user, channel, words, reply_to)| Op::Post { user, channel, words, reply_to }),
        1 => (0..40usize, words_strategy()).prop_map(|(post, words)| Op::Edit { post, words }),
        1 => (0..40usize).prop_map(|post| Op::Delete { post }),
        1 => (1..=4u64, 0..3usize).prop_map(|(user, channel)| Op::Join { user, channel }),
        1 => (1..=4u64, 0..3usize).prop_map(|(user, channel)| Op::Leave { user, channel }),
        3 => (1..=4u64, 0..QUERIES.len(), any::<bool>(), 0..3usize, 1..4usize)
            .prop_map(|(user, query, is_or, page, per_page)| Op::Search { user, query, is_or, page, per_page }),
        1 => Just(Op::Compact),
        1 => (0..3usize).prop_map(|channel| Op::Archive { channel }),
    ]
}

/// Time between two operations: none (posts of different channels at the same millisecond), a
/// second (the same postings block), or a third of a block's span (blocks over many spans).
fn gap_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1_000), Just(BUCKET_MS / 3)]
}

fn message(words: &[usize]) -> String {
    words
        .iter()
        .map(|w| VOCABULARY[*w])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as the model checks it: on the post's terms and term sequence, independently of the
/// engine's matcher.
fn model_word(word: &Word, terms: &BTreeSet<String>, sequence: &[String]) -> bool {
    match word {
        Word::Term(t) | Word::Hashtag(t) => terms.contains(t),
        Word::Phrase(p) => (0..sequence.len()).any(|i| sequence[i..].starts_with(p)),
        Word::Prefix(p) => terms.iter().any(|t| t.starts_with(p.as_str())),
    }
}

fn model_search(
    posts: &[ModelPost],
    members: &BTreeMap<u64, BTreeSet<u64>>,
    archived: &BTreeSet<u64>,
    user: u64,
    text: &str,
    is_or: bool,
) -> Vec<Id> {
    let query = parse(text).expect("parse");
    let name_of = |channel: u64| match channel {
        PUBLIC => "public",
        PRIVATE => "secret",
        _ => "town-square",
    };
    let from: Vec<u64> = query
        .from
        .iter()
        .filter_map(|n| n.strip_prefix("user")?.parse().ok())
        .collect();
    let mut hits: Vec<&ModelPost> = posts
        .iter()
        .filter(|p| !p.deleted && !archived.contains(&p.channel))
        .filter(|p| members.get(&p.channel).is_some_and(|m| m.contains(&user)))
        .filter(|p| {
            query.in_channels.is_empty()
                || query.in_channels.iter().any(|c| c == name_of(p.channel))
        })
        .filter(|p| !query.not_in.iter().any(|c| c == name_of(p.channel)))
        .filter(|p| query.from.is_empty() || from.contains(&p.user))
        .filter(|p| {
            query
                .after
                .is_none_or(|d| p.create_at >= (d as u64 + 1) * 86_400_000)
        })
        .filter(|p| {
            let mut terms: BTreeSet<String> =
                tokens(&p.message).into_iter().map(|t| t.term).collect();
            terms.extend(hashtags(&p.message).into_iter().map(|t| t.term));
            terms.insert(author_term(id(p.user)));
            let sequence: Vec<String> = tokens(&p.message).into_iter().map(|t| t.term).collect();
            let mut words = query.words.iter().map(|w| model_word(w, &terms, &sequence));
            let ok = if query.words.is_empty() {
                true
            } else if is_or {
                words.any(|m| m)
            } else {
                words.all(|m| m)
            };
            ok && !query
                .excluded
                .iter()
                .any(|w| model_word(w, &terms, &sequence))
        })
        .collect();
    hits.sort_by(|a, b| b.create_at.cmp(&a.create_at).then(a.id.cmp(&b.id)));
    hits.into_iter().map(|p| p.id).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn search_agrees_with_a_scan_of_every_post(ops in prop::collection::vec((op_strategy(), gap_strategy()), 1..60)) {
        let mut db = fixture();
        let mut members: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        members.insert(PUBLIC, [1].into());
        members.insert(PRIVATE, [1].into());
        members.insert(TOWN_SQUARE, [1, 2, 3, 4].into());
        let mut archived: BTreeSet<u64> = BTreeSet::new();
        let mut posts: Vec<ModelPost> = Vec::new();
        let mut at = 1_000u64;
        for (op, gap) in ops {
            at += gap;
            match op {
                Op::Post { user, channel, words, reply_to } => {
                    let channel = CHANNELS[channel];
                    let n = 10_000 + posts.len() as u64;
                    let root = reply_to.filter(|r| posts.get(*r).is_some_and(|p| p.channel == channel && p.root.is_none()));
                    let mut command = post(n, channel, user, None, &message(&words), at);
                    if let (Command::CreatePost { root_id, .. }, Some(r)) = (&mut command, root) {
                        *root_id = Some(posts[r].id);
                    }
                    if let Ok(Outcome::Posted(posted)) = db.apply(command).result {
                        posts.push(ModelPost {
                            id: posted.post.id,
                            channel,
                            user,
                            create_at: posted.post.create_at,
                            message: posted.post.message.clone(),
                            deleted: false,
                            root,
                        });
                    }
                }
                Op::Edit { post, words } => {
                    let Some(target) = posts.get(post) else { continue };
                    let command = Command::PatchPost {
                        file_ids: None,
                        post_id: target.id, at, message: Some(message(&words)), is_pinned: None, props: None,
                    };
                    if db.apply(command).result.is_ok() {
                        posts[post].message = message(&words);
                    }
                }
                Op::Delete { post } => {
                    let Some(target) = posts.get(post) else { continue };
                    if db.apply(Command::DeletePost { post_id: target.id, at }).result.is_ok() {
                        posts[post].deleted = true;
                        for p in posts.iter_mut().filter(|p| p.root == Some(post)) {
                            p.deleted = true;
                        }
                    }
                }
                Op::Join { user, channel } => {
                    let channel = CHANNELS[channel];
                    let command = Command::AddChannelMember { channel_id: id(channel), user_id: id(user), at };
                    if db.apply(command).result.is_ok() {
                        members.entry(channel).or_default().insert(user);
                    }
                }
                Op::Leave { user, channel } => {
                    let channel = CHANNELS[channel];
                    let command = Command::RemoveChannelMember { channel_id: id(channel), user_id: id(user), at };
                    if db.apply(command).result.is_ok() {
                        members.entry(channel).or_default().remove(&user);
                    }
                }
                Op::Search { user, query, is_or, page, per_page } => {
                    let all = model_search(&posts, &members, &archived, user, QUERIES[query], is_or);
                    let want: Vec<Id> = all.iter().skip(page * per_page).take(per_page).copied().collect();
                    let want_more = all.len() > (page + 1) * per_page;
                    let got = search_as(&db.engine, user, QUERIES[query], is_or, page, per_page);
                    prop_assert_eq!(&got.page.order, &want, "{} (or: {}) by user{}", QUERIES[query], is_or, user);
                    prop_assert_eq!(got.page.has_next, want_more);
                    prop_assert!(!got.truncated);
                    let matched: Vec<Id> = got.matches.iter().map(|(i, _)| *i).collect();
                    prop_assert_eq!(matched, want);
                }
                Op::Compact => db.engine.compact().expect("compact"),
                Op::Archive { channel } => {
                    let channel = CHANNELS[channel];
                    if db.apply(Command::DeleteChannel { channel_id: id(channel), at }).result.is_ok() {
                        archived.insert(channel);
                    }
                }
            }
        }
    }
}
