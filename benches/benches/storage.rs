//! Storage engine benches (issue 2): apply posts one by one and in batches of 64, read a 60-post
//! page, list unread threads with totals for a user following 10,000 threads in a database of
//! 1M posts, and view a channel with 10,000 unread threads.
//!
//! `CONFAB_BENCH_SMALL=1` shrinks the 1M-post data set tenfold for a quick run.

use confab_bench::*;
use confab_storage::{Command, Engine, PostsQuery, ThreadQuery};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::cell::Cell;

fn apply_posts(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut loader = Loader::new(&engine);
    base(&mut loader, 20);
    let next_index = Cell::new(loader.next_index);
    let next_post = Cell::new(10_000_000u64);
    let clock = Cell::new(1_000u64);
    // Roots to reply to.
    let mut roots = Vec::new();
    for _ in 0..64 {
        let n = next_post.get();
        next_post.set(n + 1);
        let i = next_index.get();
        next_index.set(i + 1);
        engine
            .apply(i, &post(n, BUSY_CHANNEL, READER + 1, None, 500))
            .unwrap();
        roots.push(n);
    }
    let make = |reply: bool| {
        let n = next_post.get();
        next_post.set(n + 1);
        let at = clock.get();
        clock.set(at + 1);
        let root = reply.then(|| roots[(n % 64) as usize]);
        post(n, BUSY_CHANNEL, READER + 1 + n % 20, root, at)
    };
    let mut group = c.benchmark_group("apply");
    for reply in [false, true] {
        let name = if reply { "reply" } else { "root" };
        group.bench_function(format!("{name}_one"), |b| {
            b.iter_batched(
                || make(reply),
                |command| {
                    let i = next_index.get();
                    next_index.set(i + 1);
                    engine.apply(i, &command).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        group.throughput(criterion::Throughput::Elements(64));
        group.bench_function(format!("{name}_batch64"), |b| {
            b.iter_batched(
                || (0..64).map(|_| make(reply)).collect::<Vec<Command>>(),
                |commands| {
                    let start = next_index.get();
                    next_index.set(start + 64);
                    let entries: Vec<(u64, Option<&Command>)> = commands
                        .iter()
                        .enumerate()
                        .map(|(k, c)| (start + k as u64, Some(c)))
                        .collect();
                    engine.apply_batch(&entries, None).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        group.throughput(criterion::Throughput::Elements(1));
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let small = std::env::var("CONFAB_BENCH_SMALL").is_ok();
    let (threads, followed) = if small {
        (10_000, 1_000)
    } else {
        (100_000, 10_000)
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let started = std::time::Instant::now();
    let at = threads_fixture(&engine, threads, 9, followed);
    eprintln!(
        "fixture: {} posts, {threads} threads, reader follows {followed}: built in {:.1?}",
        threads * 10,
        started.elapsed()
    );
    let reader = engine.reader();
    let totals = reader.thread_totals(id(READER), id(TEAM)).unwrap();
    eprintln!(
        "reader: {} followed, {} unread, {} unread mentions",
        totals.total, totals.total_unread_threads, totals.total_unread_mentions
    );
    drop(reader);

    let mut group = c.benchmark_group("read");
    group.bench_function("channel_page_60", |b| {
        b.iter(|| {
            engine
                .reader()
                .channel_posts(
                    id(BUSY_CHANNEL),
                    PostsQuery::Page {
                        page: 0,
                        per_page: 60,
                    },
                    false,
                )
                .unwrap()
        })
    });
    group.bench_function("threads_first_page_25_with_totals", |b| {
        let query = ThreadQuery {
            per_page: 25,
            ..Default::default()
        };
        b.iter(|| {
            engine
                .reader()
                .user_threads(id(READER), id(TEAM), &query)
                .unwrap()
        })
    });
    group.bench_function("unread_threads_page_25_with_totals", |b| {
        let query = ThreadQuery {
            per_page: 25,
            unread_only: true,
            ..Default::default()
        };
        b.iter(|| {
            engine
                .reader()
                .user_threads(id(READER), id(TEAM), &query)
                .unwrap()
        })
    });
    group.bench_function("thread_totals_only", |b| {
        b.iter(|| engine.reader().thread_totals(id(READER), id(TEAM)).unwrap())
    });
    group.finish();

    let next_index = Cell::new(engine.applied_index().unwrap() + 1);
    let clock = Cell::new(at);
    c.bench_function("view/non_crt_channel_with_unread_threads", |b| {
        b.iter(|| {
            let i = next_index.get();
            next_index.set(i + 1);
            let t = clock.get();
            clock.set(t + 1);
            let applied = engine
                .apply(
                    i,
                    &Command::ViewChannel {
                        user_id: id(READER),
                        channel_id: id(BUSY_CHANNEL),
                        at: t,
                        collapsed_threads_supported: false,
                    },
                )
                .unwrap();
            assert_eq!(applied.keys_written, 1);
            applied
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = apply_posts, reads
}
criterion_main!(benches);
