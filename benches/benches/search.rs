//! Post search benches (issue 16): a data set of posts whose words follow a Zipf-like draw over a
//! few thousand words, with numbers and hashtags, in 200 channels that the searching user is a
//! member of; the shapes of the issue — a rare word, a common word (in ≈ 8 % of posts), two
//! common words ANDed that rarely meet, a phrase, a prefix, `from:` + a word — measured by
//! criterion with one searcher, then median and p99 with 1 and 8 concurrent searchers.
//!
//! `CONFAB_SEARCH_POSTS` sets the number of posts (default 1,000,000; `CONFAB_BENCH_SMALL=1`
//! makes it 200,000). `CONFAB_SEARCH_SPACING_MS` sets the time between two posts (default 10,
//! as the first runs had: 1M posts within 3 hours; 31,536 spreads 1M posts over a year, the
//! index's blocks then each hold about 25 days of a channel). The data set is compacted before
//! the searches; `CONFAB_SEARCH_COMPACT=0` searches it as loading left it.
//! `CONFAB_SEARCH_SHAPES=AND,phrase` measures only the shapes whose names hold one of those
//! words (for a profile of one shape). `CONFAB_SEARCH_DIR=/path` keeps the data set there and
//! searches it again in later runs instead of loading it anew (a 10M data set takes 20 minutes
//! to load; an A/B of two builds' searches needs it once, as long as both write the same
//! format).

use confab_bench::words::{word, Zipf};
use confab_bench::{id, Loader};
use confab_storage::cf::Cf;
use confab_storage::search::{parse, PostSearch, DEFAULT_KEY_BUDGET};
use confab_storage::{ChannelType, Command, Engine, TeamType};
use criterion::{criterion_group, criterion_main, Criterion};
use hdrhistogram::Histogram;
use rand::distr::Distribution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Instant;

/// The server's allocator (`src/main.rs`): searches run inside a node, so they are measured
/// with what a node allocates with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const TEAM: u64 = 1;
const SEARCHER: u64 = 100;
const WRITERS: u64 = 40;
const CHANNELS: u64 = 200;
const FIRST_CHANNEL: u64 = 1_000;
const VOCABULARY: usize = 4_000;
struct DataSet {
    /// The temporary directory removed at the end, or None for a kept one.
    _dir: Option<tempfile::TempDir>,
    engine: Engine,
    posts: u64,
    common: (String, String),
    rare: String,
    phrase: String,
    prefix: String,
    load_secs: f64,
    index_bytes: u64,
    post_bytes: u64,
}

fn setup_commands() -> Vec<Command> {
    let user = |n: u64| Command::CreateUser {
        id: id(n),
        at: 1,
        username: format!("user{n}"),
        email: format!("user{n}@example.com"),
        password_hash: "x".into(),
        nickname: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        roles: String::new(),
    };
    let mut commands = vec![user(SEARCHER)];
    commands.extend((1..=WRITERS).map(|w| user(SEARCHER + w)));
    commands.push(Command::CreateTeam {
        id: id(TEAM),
        at: 2,
        name: "bench".into(),
        display_name: "Bench".into(),
        team_type: TeamType::Open,
        creator_id: id(SEARCHER),
        town_square_id: id(TEAM + 1),
        off_topic_id: id(TEAM + 2),
        invite_id: String::new(),
    });
    for w in 1..=WRITERS {
        commands.push(Command::AddTeamMember {
            team_id: id(TEAM),
            user_id: id(SEARCHER + w),
            at: 3,
        });
    }
    for c in 0..CHANNELS {
        commands.push(Command::CreateChannel {
            id: id(FIRST_CHANNEL + c),
            at: 4,
            team_id: id(TEAM),
            channel_type: ChannelType::Open,
            name: format!("channel-{c}"),
            display_name: format!("Channel {c}"),
            purpose: String::new(),
            header: String::new(),
            creator_id: id(SEARCHER),
        });
        for w in 1..=WRITERS {
            commands.push(Command::AddChannelMember {
                channel_id: id(FIRST_CHANNEL + c),
                user_id: id(SEARCHER + w),
                at: 5,
            });
        }
    }
    commands
}

/// Milliseconds between two posts of the data set.
fn spacing_ms() -> u64 {
    std::env::var("CONFAB_SEARCH_SPACING_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// The post search index on disk: the time blocks, and when this build has them, the bitmaps
/// of numbered posts and the numbers' times.
fn index_size(engine: &Engine) -> u64 {
    [
        Cf::TermBucketChannelidCreateats,
        Cf::TermChannelidChunkNumbers,
        Cf::ChannelidNumberCreateat,
    ]
    .into_iter()
    .map(|cf| engine.family_size_bytes(cf).expect("size"))
    .sum()
}

/// Compacts everything (the postings blocks folded at the last level, as background compaction
/// leaves a settled data set) and prints the index's size then.
fn compact_and_report(engine: &Engine, posts: u64) {
    let started = Instant::now();
    engine.compact().expect("compact");
    let compacted = index_size(engine);
    let time_keys = engine
        .family_size_bytes(Cf::ChannelidCreateatPostid)
        .expect("size");
    eprintln!(
        "index after a full compaction ({:.1} s): {:.1} bytes/post; time keys (with their filters of adjacent words): {:.1} bytes/post; searches below run on it",
        started.elapsed().as_secs_f64(),
        compacted as f64 / posts as f64,
        time_keys as f64 / posts as f64
    );
}

/// The file in a kept data set's directory that describes it (`CONFAB_SEARCH_DIR`): what
/// [`DataSet`] holds besides the engine, one field a line.
const KEPT_DESCRIPTION: &str = "confab-search-bench.txt";

/// The data set kept in `dir` by an earlier run with the same number of posts, if any.
fn kept(dir: &std::path::Path, posts: u64) -> Option<DataSet> {
    let text = std::fs::read_to_string(dir.join(KEPT_DESCRIPTION)).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let [kept_posts, a, b, rare, phrase, prefix, load_secs, index_bytes, post_bytes] =
        lines.as_slice()
    else {
        return None;
    };
    if kept_posts.parse::<u64>().ok()? != posts {
        return None;
    }
    let engine = Engine::open(dir).expect("open kept data set");
    eprintln!(
        "data set: {posts} posts kept in {} (loaded by an earlier run)",
        dir.display()
    );
    Some(DataSet {
        _dir: None,
        engine,
        posts,
        common: (a.to_string(), b.to_string()),
        rare: rare.to_string(),
        phrase: phrase.to_string(),
        prefix: prefix.to_string(),
        load_secs: load_secs.parse().ok()?,
        index_bytes: index_bytes.parse().ok()?,
        post_bytes: post_bytes.parse().ok()?,
    })
}

/// Writes [`KEPT_DESCRIPTION`] for a data set built in a kept directory.
fn describe(dir: &std::path::Path, data: &DataSet) {
    let lines = [
        data.posts.to_string(),
        data.common.0.clone(),
        data.common.1.clone(),
        data.rare.clone(),
        data.phrase.clone(),
        data.prefix.clone(),
        data.load_secs.to_string(),
        data.index_bytes.to_string(),
        data.post_bytes.to_string(),
    ];
    std::fs::write(dir.join(KEPT_DESCRIPTION), lines.join("\n")).expect("describe data set");
}

/// The data set: kept from an earlier run (`CONFAB_SEARCH_DIR`), or loaded now.
fn data_set(posts: u64) -> DataSet {
    let Some(dir) = std::env::var_os("CONFAB_SEARCH_DIR").map(std::path::PathBuf::from) else {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("open");
        return build(posts, engine, Some(dir));
    };
    if let Some(data) = kept(&dir, posts) {
        return data;
    }
    std::fs::create_dir_all(&dir).expect("data set dir");
    let engine = Engine::open(&dir).expect("open");
    let data = build(posts, engine, None);
    describe(&dir, &data);
    data
}

fn build(posts: u64, engine: Engine, dir: Option<tempfile::TempDir>) -> DataSet {
    let spacing = spacing_ms();
    let zipf = Zipf::new(VOCABULARY);
    let mut rng = StdRng::seed_from_u64(16);
    // The two "common" words: ranks whose share of posts is near 8 % with ~12 words a post.
    let (a_rank, b_rank) = (9, 10);
    let mut df: HashMap<usize, u64> = HashMap::new();
    let started = Instant::now();
    {
        let mut loader = Loader::new(&engine);
        for command in setup_commands() {
            loader.push(command);
        }
        loader.flush();
        let lengths = rand::distr::Uniform::new_inclusive(6usize, 18).expect("range");
        for n in 0..posts {
            let mut ranks: Vec<usize> = (0..lengths.sample(&mut rng))
                .map(|_| zipf.draw(&mut rng))
                .collect();
            // The two common words rarely meet: one post in 500 that draws both keeps both.
            if ranks.contains(&a_rank) && ranks.contains(&b_rank) && rng.random_range(0..500) != 0 {
                ranks.retain(|r| *r != b_rank);
            }
            let mut words: Vec<String> = ranks.iter().map(|r| word(*r)).collect();
            if rng.random_range(0..10) < 3 {
                words.push(rng.random_range(0..100_000u32).to_string());
            }
            if rng.random_range(0..20) == 0 {
                words.push(format!("#topic{}", rng.random_range(0..200u32)));
            }
            let mut seen = ranks.clone();
            seen.sort_unstable();
            seen.dedup();
            for r in seen {
                *df.entry(r).or_default() += 1;
            }
            let channel = FIRST_CHANNEL + rng.random_range(0..CHANNELS);
            let author = SEARCHER + 1 + rng.random_range(0..WRITERS);
            loader.push(Command::CreatePost {
                file_ids: Vec::new(),
                id: id(10_000_000 + n),
                at: 1_000 + n * spacing,
                channel_id: id(channel),
                user_id: id(author),
                root_id: None,
                message: words.join(" "),
                post_type: String::new(),
                props: "{}".into(),
                pending_post_id: String::new(),
                priority: String::new(),
                requested_ack: false,
                here_online: Vec::new(),
                channel_wide_ignored: false,
            });
        }
        loader.flush();
    }
    let load_secs = started.elapsed().as_secs_f64();
    engine.flush().expect("flush");
    let index_bytes = index_size(&engine);
    let post_bytes = engine.family_size_bytes(Cf::PostidPost).expect("size");
    let share = |r: usize| df.get(&r).copied().unwrap_or(0) as f64 / posts as f64 * 100.0;
    eprintln!(
        "data set: {posts} posts in {load_secs:.1} s ({:.1} µs/post applied in batches of 256, search index included)",
        load_secs * 1e6 / posts as f64
    );
    eprintln!(
        "common words: {:?} in {:.1} % and {:?} in {:.1} % of posts",
        word(a_rank),
        share(a_rank),
        word(b_rank),
        share(b_rank)
    );
    eprintln!(
        "index: {:.1} bytes/post on disk (posts themselves: {:.1} bytes/post), posts {spacing} ms apart",
        index_bytes as f64 / posts as f64,
        post_bytes as f64 / posts as f64
    );
    if std::env::var("CONFAB_SEARCH_COMPACT").as_deref() == Ok("0") {
        eprintln!("not compacted: searches below read the data set as loading left it");
    } else {
        compact_and_report(&engine, posts);
    }
    // A rare word: in about 1 post in 10,000.
    let rare_rank = (0..VOCABULARY)
        .rev()
        .find(|r| (1..=(posts / 5_000).max(2)).contains(df.get(r).unwrap_or(&0)))
        .unwrap_or(VOCABULARY - 1);
    eprintln!(
        "rare word: {:?} in {} posts",
        word(rare_rank),
        df.get(&rare_rank).unwrap_or(&0)
    );
    DataSet {
        _dir: dir,
        engine,
        posts,
        common: (word(a_rank), word(b_rank)),
        rare: word(rare_rank),
        phrase: format!("\"{} {}\"", word(0), word(1)),
        prefix: format!("{}*", &word(3)[..3]),
        load_secs,
        index_bytes,
        post_bytes,
    }
}

fn search(engine: &Engine, terms: &str) -> usize {
    search_with(&engine.reader(), terms)
}

/// [`search`] through a given reader, whose counters then tell what the search read.
fn search_with(reader: &confab_storage::Reader, terms: &str) -> usize {
    let query = parse(terms).expect("query");
    let search = PostSearch {
        user: id(SEARCHER),
        team: Some(id(TEAM)),
        query,
        is_or: false,
        time_zone_offset_secs: 0,
        include_deleted_channels: false,
        page: 0,
        per_page: 20,
        key_budget: DEFAULT_KEY_BUDGET,
    };
    let results = reader.search_posts(&search).expect("search");
    results.page.order.len()
}

/// Median and p99 in ms of `rounds` searches by each of `threads` concurrent searchers.
fn latencies(engine: &Engine, terms: &str, threads: usize, rounds: usize) -> (f64, f64) {
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut h = Histogram::<u64>::new(3).expect("histogram");
                    for _ in 0..rounds {
                        let t = Instant::now();
                        std::hint::black_box(search(engine, terms));
                        h.record(t.elapsed().as_micros() as u64).ok();
                    }
                    h
                })
            })
            .collect();
        for handle in handles {
            if let Ok(h) = handle.join() {
                all.add(h).ok();
            }
        }
    });
    (
        all.value_at_quantile(0.5) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
    )
}

/// Median and p99 in ms of `rounds` searches by each of `clients` concurrent searchers whose
/// searches run on `workers` threads, first come first served, as the server runs them: a
/// search runs to its end on one of the runtime's worker threads (one per core), so
/// concurrent searchers queue behind each other instead of being preempted mid-search by the
/// kernel as `latencies`' one thread per searcher are. The time counts the wait in the queue.
fn pooled_latencies(
    engine: &Engine,
    terms: &str,
    clients: usize,
    workers: usize,
    rounds: usize,
) -> (f64, f64) {
    type Job = (Instant, std::sync::mpsc::Sender<u64>);
    let (submit, queue) = std::sync::mpsc::channel::<Job>();
    let queue = std::sync::Mutex::new(queue);
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    std::thread::scope(|s| {
        for _ in 0..workers {
            let queue = &queue;
            s.spawn(move || loop {
                let job = match queue.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                let Ok((asked, answer)) = job else { return };
                std::hint::black_box(search(engine, terms));
                answer.send(asked.elapsed().as_micros() as u64).ok();
            });
        }
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let submit = submit.clone();
                s.spawn(move || {
                    let mut h = Histogram::<u64>::new(3).expect("histogram");
                    for _ in 0..rounds {
                        let (answer, answered) = std::sync::mpsc::channel();
                        if submit.send((Instant::now(), answer)).is_err() {
                            break;
                        }
                        if let Ok(us) = answered.recv() {
                            h.record(us).ok();
                        }
                    }
                    h
                })
            })
            .collect();
        for handle in handles {
            if let Ok(h) = handle.join() {
                all.add(h).ok();
            }
        }
        drop(submit);
    });
    (
        all.value_at_quantile(0.5) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
    )
}

fn benches(c: &mut Criterion) {
    let posts = std::env::var("CONFAB_SEARCH_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::var("CONFAB_BENCH_SMALL").is_ok() {
            200_000
        } else {
            1_000_000
        });
    let data = data_set(posts);
    let shapes = [
        ("rare word", data.rare.clone()),
        ("common word", data.common.0.clone()),
        (
            "two common words ANDed",
            format!("{} {}", data.common.0, data.common.1),
        ),
        ("phrase", data.phrase.clone()),
        ("prefix", data.prefix.clone()),
        (
            "from: + word",
            format!("from:user{} {}", SEARCHER + 7, data.common.0),
        ),
    ];
    let only = std::env::var("CONFAB_SEARCH_SHAPES").unwrap_or_default();
    let wanted: Vec<&str> = only.split(',').filter(|w| !w.is_empty()).collect();
    let shapes: Vec<_> = shapes
        .into_iter()
        .filter(|(name, _)| wanted.is_empty() || wanted.iter().any(|w| name.contains(w)))
        .collect();
    let mut group = c.benchmark_group(format!("search_{}k_posts", data.posts / 1000));
    for (name, terms) in &shapes {
        let reader = data.engine.reader();
        let results = search_with(&reader, terms);
        eprintln!(
            "{name}: {terms:?} → {results} results on the first page; {} keys read, {} seeks \
             into time blocks, {} into bitmaps",
            reader.keys_read(),
            reader.time_block_seeks(),
            reader.bitmap_seeks()
        );
        group.bench_function(*name, |b| b.iter(|| search(&data.engine, terms)));
    }
    group.finish();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!(
        "| shape | query | 1 searcher median / p99 | 8 searchers, a thread each, median / p99 \
         | 8 searchers on {workers} worker threads, median / p99 |"
    );
    eprintln!("|---|---|---|---|---|");
    for (name, terms) in &shapes {
        let (m1, p1) = latencies(&data.engine, terms, 1, 200);
        let (m8, p8) = latencies(&data.engine, terms, 8, 50);
        let (q8, r8) = pooled_latencies(&data.engine, terms, 8, workers, 100);
        eprintln!(
            "| {name} | `{terms}` | {m1:.2} / {p1:.2} ms | {m8:.2} / {p8:.2} ms \
             | {q8:.2} / {r8:.2} ms |"
        );
    }
    eprintln!(
        "load {:.1} s; index {} bytes, posts {} bytes",
        data.load_secs, data.index_bytes, data.post_bytes
    );
}

criterion_group! {
    name = search_benches;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(search_benches);
