//! A worker process (`confab-load worker`, started by the coordinator): holds its share of the
//! WebSocket sockets — at most ~18k per process under the 20,000-files limit — spread over its
//! 127.x source addresses, records every load post it receives (post→receive latency from the
//! scheduled time inside the message, per-post counts, duplicates), and in `mix` mode runs its
//! users' behaviour. It reads its spec and commands on stdin and answers on stdout, one JSON
//! object per line.

use crate::proto::{self, Command, ConnSpec, FinalReport, Report, Target, WorkerSpec};
use crate::report;
use crate::wsclient;
use crate::wsctl::{Outbound, SocketControl};
use anyhow::Context;
use fastwebsockets::OpCode;
use hdrhistogram::Histogram;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Semaphore;

/// Attempts to reopen a socket that closed before it is counted as lost.
const RECONNECT_ATTEMPTS: u32 = 5;

/// Deliveries of one window.
pub struct Window {
    pub receive: Histogram<u64>,
    pub deliveries: u64,
    pub duplicates: u64,
    pub per_post: HashMap<u64, u32>,
    /// (socket, post) pairs seen, for duplicates.
    seen: HashSet<u64>,
}

impl Window {
    fn new() -> Window {
        Window {
            receive: report::new_histogram(),
            deliveries: 0,
            duplicates: 0,
            per_post: HashMap::new(),
            seen: HashSet::new(),
        }
    }
}

/// State every socket task of this worker shares.
pub struct Shared {
    pub run: u32,
    pub deliveries: AtomicU64,
    pub events: AtomicU64,
    pub open: AtomicU64,
    pub reconnects: AtomicU64,
    pub lost: AtomicU64,
    pub stopping: AtomicBool,
    pub window: Mutex<Window>,
    pub errors: Mutex<Vec<String>>,
    pub closes: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Shared {
    fn record(&self, socket: u32, post_no: u64, scheduled_ns: u64) {
        let latency_us = proto::unix_ns().saturating_sub(scheduled_ns) / 1000;
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if !window
            .seen
            .insert(((socket as u64) << 32) | (post_no & 0xffff_ffff))
        {
            window.duplicates += 1;
            return;
        }
        window.deliveries += 1;
        report::record(&mut window.receive, latency_us);
        *window.per_post.entry(post_no).or_insert(0) += 1;
    }

    pub fn note_error(&self, error: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < 5 {
            errors.push(error);
        }
    }

    /// Counts why sockets closed (close code and reason, or the read error).
    fn note_close(&self, why: String) {
        *self
            .closes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(why)
            .or_insert(0) += 1;
    }

    fn take_window(&self) -> Window {
        std::mem::replace(
            &mut *self.window.lock().unwrap_or_else(|e| e.into_inner()),
            Window::new(),
        )
    }
}

/// One socket: open it, read until it closes, reopen (resuming the confab stream) unless the
/// worker is stopping.
async fn run_socket(
    index: u32,
    spec: ConnSpec,
    target: Target,
    source: IpAddr,
    shared: Arc<Shared>,
    control: Arc<SocketControl>,
    opened: tokio::sync::oneshot::Sender<Result<(), String>>,
) {
    let mut opened = Some(opened);
    let mut connection_id = String::new();
    let mut next_seq: u64 = 0;
    let mut failures = 0;
    loop {
        let path = match target {
            Target::Baseline => format!("/ws?user={}", spec.user),
            Target::Confab if connection_id.is_empty() => "/api/v4/websocket".to_string(),
            Target::Confab => format!(
                "/api/v4/websocket?connection_id={connection_id}&sequence_number={next_seq}"
            ),
        };
        let (mut read, write) =
            match wsclient::connect(source, &spec.addr, &path, spec.token.as_deref()).await {
                Ok(halves) => halves,
                Err(e) => {
                    if let Some(tx) = opened.take() {
                        let _ = tx.send(Err(format!("{e:#}")));
                        return;
                    }
                    failures += 1;
                    if failures >= RECONNECT_ATTEMPTS || shared.stopping.load(Ordering::Relaxed) {
                        shared.lost.fetch_add(1, Ordering::Relaxed);
                        shared.note_error(format!("socket of user {} lost: {e:#}", spec.user));
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200 * failures as u64)).await;
                    continue;
                }
            };
        // The write half is shared: frames the reader must answer (a ping, a close) and the
        // user's own pings (`mix`) go through it.
        let writer = Arc::new(tokio::sync::Mutex::new(Outbound::new(write)));
        control.opened(writer.clone());
        let mut obliged = |frame| {
            let writer = writer.clone();
            async move { writer.lock().await.write_frame(frame).await }
        };
        if let Some(tx) = opened.take() {
            let _ = tx.send(Ok(()));
        } else {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        failures = 0;
        shared.open.fetch_add(1, Ordering::Relaxed);
        loop {
            let frame = tokio::select! {
                frame = read.read_frame(&mut obliged) => frame,
                _ = control.reconnect.notified() => break,
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    if !shared.stopping.load(Ordering::Relaxed) {
                        shared.note_close(format!("read error: {e}"));
                    }
                    break;
                }
            };
            match frame.opcode {
                OpCode::Text => {
                    let payload: &[u8] = &frame.payload;
                    shared.events.fetch_add(1, Ordering::Relaxed);
                    control.on_text(payload);
                    if target == Target::Confab {
                        if let Some(seq) = wsclient::frame_seq(payload) {
                            if seq == 0 {
                                if let Some(id) = wsclient::hello_connection_id(payload) {
                                    connection_id = id;
                                }
                            }
                            next_seq = seq + 1;
                        }
                    }
                    if let Some((post_no, scheduled)) = proto::parse_marker(payload, shared.run) {
                        if memchr::memmem::find(payload, b"\"event\":\"posted\"").is_some() {
                            shared.record(index, post_no, scheduled);
                        }
                    }
                }
                OpCode::Close => {
                    let payload: &[u8] = &frame.payload;
                    let code = match payload {
                        [a, b, ..] => u16::from_be_bytes([*a, *b]),
                        _ => 1005,
                    };
                    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or(&[]));
                    shared.note_close(format!("{code} {reason}"));
                    break;
                }
                _ => {}
            }
        }
        control.closed();
        shared.open.fetch_sub(1, Ordering::Relaxed);
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
    }
}

fn emit(report: &Report) {
    if let Ok(line) = serde_json::to_string(report) {
        use std::io::Write;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn final_report(shared: &Shared, mix: Option<&crate::mix::MixStats>) -> FinalReport {
    let window = shared.take_window();
    let mut per_post: Vec<(u64, u32)> = window.per_post.into_iter().collect();
    per_post.sort_unstable();
    let (requests, errors) = match mix {
        Some(stats) => stats.take_totals(),
        None => (Vec::new(), 0),
    };
    FinalReport {
        receive_hist: report::encode(&window.receive),
        deliveries: window.deliveries,
        duplicates: window.duplicates,
        per_post,
        reconnects: shared.reconnects.load(Ordering::Relaxed),
        lost: shared.lost.load(Ordering::Relaxed),
        requests,
        errors,
        first_errors: shared.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        closes: shared.closes.lock().map(|c| c.clone()).unwrap_or_default(),
    }
}

/// The worker's main: spec, sockets, then commands until `Stop`.
pub async fn run() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let spec_line = lines.next_line().await?.context("no spec on stdin")?;
    let spec: WorkerSpec = serde_json::from_str(&spec_line).context("parsing the worker spec")?;
    let shared = Arc::new(Shared {
        run: spec.run,
        deliveries: AtomicU64::new(0),
        events: AtomicU64::new(0),
        open: AtomicU64::new(0),
        reconnects: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        window: Mutex::new(Window::new()),
        errors: Mutex::new(Vec::new()),
        closes: Mutex::new(std::collections::BTreeMap::new()),
    });
    let sources: Vec<IpAddr> = if spec.source_ips.is_empty() {
        vec![IpAddr::from([127, 0, 0, 1])]
    } else {
        spec.source_ips.iter().map(|&ip| IpAddr::V4(ip)).collect()
    };

    // Open every socket, `connect_concurrency` at a time.
    let permits = Arc::new(Semaphore::new(spec.connect_concurrency.max(1)));
    let mut pending = Vec::with_capacity(spec.conns.len());
    let mut controls = Vec::with_capacity(spec.conns.len());
    for (i, conn) in spec.conns.iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let control = Arc::new(SocketControl::default());
        controls.push(control.clone());
        let permit = permits.clone().acquire_owned().await?;
        let source = sources[i % sources.len()];
        let (shared, conn, target) = (shared.clone(), conn.clone(), spec.target);
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        tokio::spawn(run_socket(
            i as u32, conn, target, source, shared, control, gate_tx,
        ));
        // Hold the permit until this socket opened (or failed), then pass the result on.
        tokio::spawn(async move {
            let result = gate_rx.await.unwrap_or(Err("socket task ended".into()));
            drop(permit);
            let _ = tx.send(result);
        });
        pending.push(rx);
    }
    let mut opened = 0;
    let mut failed_users = Vec::new();
    let mut first_error = None;
    for (rx, conn) in pending.into_iter().zip(&spec.conns) {
        match rx.await {
            Ok(Ok(())) => opened += 1,
            Ok(Err(e)) => {
                failed_users.push(conn.user);
                first_error.get_or_insert(e);
            }
            Err(_) => failed_users.push(conn.user),
        }
    }
    emit(&Report::Ready {
        opened,
        failed_users,
        first_error,
    });

    let all_controls = controls.clone();
    let mix_stats = match &spec.mix {
        Some(mix) => Some(crate::mix::start(
            mix.clone(),
            spec.conns.clone(),
            controls,
            sources.clone(),
        )?),
        None => None,
    };

    let progress_shared = shared.clone();
    let progress_mix = mix_stats.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let (requests, errors, interval_hist) = match &progress_mix {
                Some(stats) => stats.progress(),
                None => (0, 0, None),
            };
            emit(&Report::Progress {
                deliveries: progress_shared.deliveries.load(Ordering::Relaxed),
                open: progress_shared.open.load(Ordering::Relaxed),
                reconnects: progress_shared.reconnects.load(Ordering::Relaxed),
                requests,
                errors,
                interval_hist,
            });
        }
    });

    while let Some(line) = lines.next_line().await? {
        let command: Command = match serde_json::from_str(&line) {
            Ok(command) => command,
            Err(e) => {
                eprintln!("worker {}: unknown command {line:?}: {e}", spec.worker);
                continue;
            }
        };
        match command {
            Command::Collect => emit(&Report::Final(Box::new(final_report(
                &shared,
                mix_stats.as_deref(),
            )))),
            Command::Reconnect { spread_ms } => {
                for control in &all_controls {
                    let control = control.clone();
                    let delay = rand::random_range(0..=spread_ms);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        control.reconnect.notify_one();
                    });
                }
            }
            Command::Stop => {
                shared.stopping.store(true, Ordering::Relaxed);
                emit(&Report::Final(Box::new(final_report(
                    &shared,
                    mix_stats.as_deref(),
                ))));
                return Ok(());
            }
        }
    }
    Ok(())
}
