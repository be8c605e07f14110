//! The coordinator's side of the worker processes: starts them (`confab-load worker`), hands
//! each its sockets and source addresses, follows their progress lines, and collects their
//! windows. Sockets are split so that no process comes near the 20,000-files limit.

use crate::proto::{Command, ConnSpec, FinalReport, Report, Target, WorkerSpec};
use crate::report;
use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

/// Source addresses per worker: 127.0.<worker+1>.1 ..= .<n>.
const SOURCES_PER_WORKER: u8 = 4;

#[derive(Default)]
struct Live {
    deliveries: AtomicU64,
    open: AtomicU64,
    reconnects: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// Live totals of all workers, readable from another task.
#[derive(Clone)]
pub struct Counter(Vec<Arc<Live>>);

impl Counter {
    fn sum(&self, field: impl Fn(&Live) -> &AtomicU64) -> u64 {
        self.0
            .iter()
            .map(|l| field(l).load(Ordering::Relaxed))
            .sum()
    }

    pub fn deliveries(&self) -> u64 {
        self.sum(|l| &l.deliveries)
    }

    pub fn open(&self) -> u64 {
        self.sum(|l| &l.open)
    }

    pub fn reconnects(&self) -> u64 {
        self.sum(|l| &l.reconnects)
    }

    /// mix: (requests, errors) so far.
    pub fn requests(&self) -> (u64, u64) {
        (self.sum(|l| &l.requests), self.sum(|l| &l.errors))
    }
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    finals: mpsc::UnboundedReceiver<FinalReport>,
    live: Arc<Live>,
}

/// What the workers reported once every socket was tried.
#[derive(Debug, Default)]
pub struct Opened {
    pub opened: u64,
    pub failed_users: Vec<u32>,
    pub first_error: Option<String>,
}

pub struct Pool {
    workers: Vec<Worker>,
    /// mix: request latencies of the progress intervals since the last `take_interval`.
    interval: Arc<Mutex<Histogram<u64>>>,
}

/// Splits sockets over workers of at most `per_worker` each.
pub fn split(conns: Vec<ConnSpec>, per_worker: usize) -> Vec<Vec<ConnSpec>> {
    let per_worker = per_worker.max(1);
    let mut out: Vec<Vec<ConnSpec>> = Vec::new();
    for conn in conns {
        match out.last_mut() {
            Some(last) if last.len() < per_worker => last.push(conn),
            _ => out.push(vec![conn]),
        }
    }
    out
}

pub fn source_ips(worker: u32) -> Vec<Ipv4Addr> {
    let third = (worker % 250 + 1) as u8;
    (1..=SOURCES_PER_WORKER)
        .map(|last| Ipv4Addr::new(127, 0, third, last))
        .collect()
}

impl Pool {
    /// Starts one worker per group and waits until each has tried all its sockets.
    pub async fn start(
        groups: Vec<Vec<ConnSpec>>,
        target: Target,
        run: u32,
        mix: Option<crate::mix::MixSpec>,
        first_worker: u32,
        on_progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> anyhow::Result<(Pool, Opened)> {
        let me = std::env::current_exe()?;
        let interval = Arc::new(Mutex::new(report::new_histogram()));
        let mut workers = Vec::new();
        let mut readies = Vec::new();
        let on_progress = Arc::new(on_progress);
        for (i, conns) in groups.into_iter().enumerate() {
            let worker = first_worker + i as u32;
            let spec = WorkerSpec {
                worker,
                target,
                run,
                source_ips: source_ips(worker),
                conns,
                connect_concurrency: 256,
                mix: mix.clone(),
            };
            let mut child = tokio::process::Command::new(&me)
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("starting a worker")?;
            let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("worker stdin"))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| anyhow!("worker stdout"))?;
            let mut line = serde_json::to_string(&spec)?;
            line.push('\n');
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await?;
            let live = Arc::new(Live::default());
            let (final_tx, finals) = mpsc::unbounded_channel();
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let (live2, interval2, on_progress) =
                (live.clone(), interval.clone(), on_progress.clone());
            tokio::spawn(async move {
                let mut ready_tx = Some(ready_tx);
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Ok(report) = serde_json::from_str::<Report>(&line) else {
                        eprintln!("worker {worker}: {line}");
                        continue;
                    };
                    match report {
                        Report::Ready {
                            opened,
                            failed_users,
                            first_error,
                        } => {
                            live2.open.store(opened, Ordering::Relaxed);
                            if let Some(tx) = ready_tx.take() {
                                let _ = tx.send(Opened {
                                    opened,
                                    failed_users,
                                    first_error,
                                });
                            }
                        }
                        Report::Progress {
                            deliveries,
                            open,
                            reconnects,
                            requests,
                            errors,
                            interval_hist,
                        } => {
                            live2.deliveries.store(deliveries, Ordering::Relaxed);
                            live2.open.store(open, Ordering::Relaxed);
                            live2.reconnects.store(reconnects, Ordering::Relaxed);
                            live2.requests.store(requests, Ordering::Relaxed);
                            live2.errors.store(errors, Ordering::Relaxed);
                            if let Some(Ok(hist)) = interval_hist.as_deref().map(report::decode) {
                                let mut total = interval2.lock().unwrap_or_else(|e| e.into_inner());
                                let _ = total.add(&hist);
                            }
                            on_progress(open);
                        }
                        Report::Final(report) => {
                            let _ = final_tx.send(*report);
                        }
                    }
                }
            });
            workers.push(Worker {
                child,
                stdin,
                finals,
                live,
            });
            readies.push(ready_rx);
        }
        let mut opened = Opened::default();
        for ready in readies {
            let ready = ready
                .await
                .map_err(|_| anyhow!("a worker exited before opening its sockets"))?;
            opened.opened += ready.opened;
            opened.failed_users.extend(ready.failed_users);
            if opened.first_error.is_none() {
                opened.first_error = ready.first_error;
            }
        }
        Ok((Pool { workers, interval }, opened))
    }

    /// A handle on the live totals, also for a progress task.
    pub fn counter(&self) -> Counter {
        Counter(self.workers.iter().map(|w| w.live.clone()).collect())
    }

    /// mix: the request latencies since the previous call.
    pub fn take_interval(&self) -> Histogram<u64> {
        let mut total = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *total, report::new_histogram())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().filter_map(|w| w.child.id()).collect()
    }

    async fn ask(&mut self, command: Command) -> anyhow::Result<Vec<FinalReport>> {
        let mut line = serde_json::to_string(&command)?;
        line.push('\n');
        for worker in &mut self.workers {
            worker.stdin.write_all(line.as_bytes()).await?;
            worker.stdin.flush().await?;
        }
        let mut out = Vec::new();
        for worker in &mut self.workers {
            match tokio::time::timeout(Duration::from_secs(60), worker.finals.recv()).await {
                Ok(Some(report)) => out.push(report),
                _ => bail!("a worker did not answer {command:?}"),
            }
        }
        Ok(out)
    }

    /// Every socket closes and reopens, each within `spread_ms` (no answer to wait for: the
    /// reopened sockets show in [`Counter::reconnects`]).
    pub async fn reconnect_all(&mut self, spread_ms: u64) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(&Command::Reconnect { spread_ms })?;
        line.push('\n');
        for worker in &mut self.workers {
            worker.stdin.write_all(line.as_bytes()).await?;
            worker.stdin.flush().await?;
        }
        Ok(())
    }

    /// Every worker's window since the previous collect.
    pub async fn collect(&mut self) -> anyhow::Result<Vec<FinalReport>> {
        self.ask(Command::Collect).await
    }

    /// Last windows, then the workers exit.
    pub async fn stop(mut self) -> anyhow::Result<Vec<FinalReport>> {
        let out = self.ask(Command::Stop).await;
        for worker in &mut self.workers {
            let _ = tokio::time::timeout(Duration::from_secs(10), worker.child.wait()).await;
        }
        out
    }
}
