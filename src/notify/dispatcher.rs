//! The leader's dispatcher: reads the outbox after the replicated mark, plans and sends the
//! pushes of a batch with bounded concurrency and bounded retries, then commits ONE
//! `NotificationsDispatched` for the batch. Every node runs it; only the current leader works.

use super::email::{self, EmailContext, EmailDue, OutgoingMail};
use super::payload;
use super::plan::{self, BatchReads, Context, Delivery};
use super::proxy::{ProxyClient, Reply};
use super::settings::PushSettings;
use super::status::StatusSource;
use crate::mail::{EmailSettings, Mailer, Site};
use confab_raft::RaftNode;
use confab_storage::email_queue::QueuedEmail;
use confab_storage::notify::{OutboxEntry, MAX_MARK_SPAN};
use confab_storage::{Command, Engine, Id, StorageError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinError, JoinSet};

/// How long an idle or follower dispatcher waits before it looks again.
const IDLE: Duration = Duration::from_millis(50);
const FOLLOWER: Duration = Duration::from_millis(200);
/// Entries whose planned pushes may wait for the sender at most: planning runs ahead of
/// sending by this much, so a batch's first pushes leave while the rest is planned, and memory
/// stays bounded (an `@channel` entry is a push per offline member).
const PLANNED_AHEAD: usize = 8;
/// SMTP sends in flight at most (the mailer's pool holds a few connections).
const MAIL_CONCURRENCY: usize = 8;
/// How far back a round looks for expired mobile sessions at most (Mattermost: one hour).
const SESSION_EXPIRY_WINDOW_MS: u64 = 3_600_000;

pub struct Dispatcher {
    pub raft: RaftNode,
    pub engine: Arc<Engine>,
    pub settings: PushSettings,
    pub status: Arc<dyn StatusSource>,
    /// `None` when push is off.
    pub proxy: Option<ProxyClient>,
    pub server_id: String,
    /// `None` when email notifications are off. With neither push nor email, entries are
    /// marked done unsent.
    pub mailer: Option<Arc<Mailer>>,
    pub email: EmailSettings,
    /// How emails name and link the server.
    pub site: Site,
}

/// What became of one delivery.
enum Sent {
    Ok,
    Removed(Id, String),
    Failed,
}

impl Dispatcher {
    /// Starts the dispatcher task; it lives as long as the runtime.
    pub fn spawn(self) {
        for name in [
            "confab_push_sent_total",
            "confab_push_failed_total",
            "confab_push_retried_total",
            "confab_push_devices_removed_total",
            "confab_push_dropped_total",
            "confab_notify_batches_total",
            "confab_email_sent_total",
            "confab_email_failed_total",
            "confab_email_retried_total",
            "confab_email_queued_total",
        ] {
            metrics::counter!(name).increment(0);
        }
        let dispatcher = Arc::new(self);
        tokio::spawn(async move { dispatcher.run().await });
    }

    async fn run(self: Arc<Self>) {
        // Whether this node has applied everything committed before it became leader (so the
        // mark it reads is the last leader's).
        let mut caught_up = false;
        let mut last_expiry_round: Option<std::time::Instant> = None;
        loop {
            if !self.raft.is_leader() {
                caught_up = false;
                last_expiry_round = None;
                tokio::time::sleep(FOLLOWER).await;
                continue;
            }
            if !caught_up {
                match self.raft.linearizable_read_barrier().await {
                    Ok(index) => {
                        if self
                            .raft
                            .wait_applied(index, Duration::from_secs(10))
                            .await
                            .is_err()
                        {
                            continue;
                        }
                        caught_up = true;
                    }
                    Err(e) => {
                        tracing::debug!("dispatcher: not leader after all: {e}");
                        tokio::time::sleep(FOLLOWER).await;
                        continue;
                    }
                }
            }
            if let Some(proxy) = &self.proxy {
                if last_expiry_round
                    .is_none_or(|at| at.elapsed() >= self.settings.session_expiry_every)
                {
                    last_expiry_round = Some(std::time::Instant::now());
                    if let Err(e) = self.notify_expired_sessions(proxy).await {
                        tracing::warn!("expired-session pushes: {e}");
                    }
                }
            }
            match self.step().await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(IDLE).await,
                Err(e) => {
                    tracing::warn!("notification dispatch: {e}");
                    caught_up = false;
                    tokio::time::sleep(FOLLOWER).await;
                }
            }
        }
    }

    /// One batch. `Ok(false)` when the outbox is empty.
    async fn step(self: &Arc<Self>) -> Result<bool, StepError> {
        let (mark, backlog) = {
            let reader = self.engine.reader();
            (reader.notify_mark()?, reader.notify_backlog()?)
        };
        if backlog > self.settings.max_backlog {
            // A dead proxy must not grow the outbox without bound: drop the oldest, counted.
            let excess = (backlog - self.settings.max_backlog).min(MAX_MARK_SPAN as u64) as usize;
            let entries = self.engine.reader().outbox_after(mark, excess)?;
            if let Some((through, _)) = entries.last() {
                self.mark(*through, Vec::new(), Vec::new()).await?;
                metrics::counter!("confab_push_dropped_total").increment(entries.len() as u64);
                tracing::warn!(
                    dropped = entries.len(),
                    "notification outbox over its bound"
                );
            }
            return Ok(true);
        }
        let entries = self
            .engine
            .reader()
            .outbox_after(mark, self.settings.batch)?;
        let Some((through, _)) = entries.last() else {
            return Ok(false);
        };
        let through = *through;
        let (mut detach, mut queue_emails) = (Vec::new(), Vec::new());
        if self.proxy.is_some() || self.mailer.is_some() {
            // Planning streams each entry's pushes to the sender as it goes; the immediate
            // emails leave once the whole batch is planned.
            let (planned, to_send) = mpsc::channel(PLANNED_AHEAD);
            let plan_then_mail = async {
                let emails = self.plan(entries, planned).await?;
                let mut send_now = Vec::new();
                let mut queued = Vec::new();
                for due in emails {
                    match due {
                        EmailDue::Now(mail) => send_now.push(mail),
                        EmailDue::Queued(entry) => queued.push(entry),
                    }
                }
                metrics::counter!("confab_email_queued_total").increment(queued.len() as u64);
                if let Some(mailer) = &self.mailer {
                    self.mail_all(mailer, send_now).await;
                }
                Ok::<_, StepError>(queued)
            };
            let pushes = async {
                match &self.proxy {
                    Some(proxy) => self.send_stream(proxy, to_send).await,
                    None => Vec::new(),
                }
            };
            let queued;
            (queued, detach) = tokio::join!(plan_then_mail, pushes);
            queue_emails = queued?;
        }
        self.mark(through, detach, queue_emails).await?;
        Ok(true)
    }

    /// One round of `session` pushes: every session with a device that expired after the
    /// replicated mark (at most an hour back) and by now is told, then the mark moves to now
    /// (`confab_storage::session_expiry` says what can repeat). The sessions are over, so a
    /// `REMOVE` answer detaches nothing.
    async fn notify_expired_sessions(
        self: &Arc<Self>,
        proxy: &ProxyClient,
    ) -> Result<(), StepError> {
        let now = crate::clock::now_ms();
        let engine = self.engine.clone();
        let sessions = tokio::task::spawn_blocking(move || {
            let reader = engine.reader();
            let after = reader
                .session_expiry_mark()?
                .max(now.saturating_sub(SESSION_EXPIRY_WINDOW_MS));
            reader.expired_mobile_sessions(after, now)
        })
        .await
        .map_err(|e| StepError::Task(e.to_string()))??;
        let hours = self.settings.session_length_mobile.as_secs_f64() / 3600.0;
        let push = payload::session_expired(&self.server_id, &self.site.name, hours);
        let deliveries = sessions
            .into_iter()
            .map(|session| Delivery {
                user: session.user_id,
                token: session.token,
                push: payload::for_device(push.clone(), &session.device_id),
                device_id: session.device_id,
            })
            .collect();
        self.send_all(proxy, deliveries).await;
        self.raft
            .write(Command::SessionExpiriesNotified { through: now })
            .await
            .map_err(|e| StepError::Mark(e.to_string()))?;
        Ok(())
    }

    /// Plans a batch on a blocking thread (it reads the replica), handing each entry's pushes
    /// to `planned` as soon as they are decided; answers the batch's emails.
    async fn plan(
        self: &Arc<Self>,
        entries: Vec<(u64, Option<OutboxEntry>)>,
        planned: mpsc::Sender<Vec<Delivery>>,
    ) -> Result<Vec<EmailDue>, StepError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let reader = me.engine.reader();
            let queued = reader.email_queue_len()?;
            let cx = Context {
                settings: &me.settings,
                push: me.proxy.is_some(),
                email: me.mailer.as_ref().map(|_| EmailContext {
                    settings: &me.email,
                    queued,
                }),
                status: me.status.as_ref(),
                server_id: &me.server_id,
                now: crate::clock::now_ms(),
            };
            let mut reads = BatchReads::default();
            let mut emails = Vec::new();
            for (index, entry) in &entries {
                let Some(entry) = entry else {
                    tracing::warn!(index, "outbox entry of an unknown format skipped");
                    continue;
                };
                let one = plan::plan(&reader, entry, &cx, &mut reads)?;
                // The sender is gone only when this step is over; nothing is left to send.
                if !one.pushes.is_empty() && planned.blocking_send(one.pushes).is_err() {
                    break;
                }
                emails.extend(one.emails);
            }
            Ok::<_, StorageError>(emails)
        })
        .await
        .map_err(|e| StepError::Task(e.to_string()))?
        .map_err(StepError::from)
    }

    /// Sends every delivery, at most `concurrency` at once; answers the devices to detach.
    async fn send_all(&self, proxy: &ProxyClient, deliveries: Vec<Delivery>) -> Vec<(Id, String)> {
        let (planned, to_send) = mpsc::channel(1);
        // The channel is empty and its receiver alive, so this cannot fail.
        let _ = planned.try_send(deliveries);
        drop(planned);
        self.send_stream(proxy, to_send).await
    }

    /// Sends the deliveries as they are planned, at most `concurrency` at once, until planning
    /// is over; answers the devices to detach.
    async fn send_stream(
        &self,
        proxy: &ProxyClient,
        mut planned: mpsc::Receiver<Vec<Delivery>>,
    ) -> Vec<(Id, String)> {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let settings = Arc::new(self.settings.clone());
        let mut tasks = JoinSet::new();
        let mut detach = Vec::new();
        while let Some(deliveries) = planned.recv().await {
            for delivery in deliveries {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                while let Some(done) = tasks.try_join_next() {
                    count_sent(done, &mut detach);
                }
                let proxy = proxy.clone();
                let settings = settings.clone();
                tasks.spawn(async move {
                    let sent = send_one(&proxy, &settings, delivery).await;
                    drop(permit);
                    sent
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            count_sent(done, &mut detach);
        }
        detach
    }

    /// Sends the batch's immediate emails, at most `MAIL_CONCURRENCY` at once.
    async fn mail_all(&self, mailer: &Arc<Mailer>, mails: Vec<OutgoingMail>) {
        let permits = Arc::new(Semaphore::new(MAIL_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for mail in mails {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (mailer, site) = (mailer.clone(), self.site.clone());
            tasks.spawn(async move {
                email::send_one(&mailer, &site, &mail).await;
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Commits the batch: one Raft write, which also queues the batch's batched emails.
    async fn mark(
        &self,
        through: u64,
        detach: Vec<(Id, String)>,
        queue_emails: Vec<QueuedEmail>,
    ) -> Result<(), StepError> {
        self.raft
            .write(Command::NotificationsDispatched {
                through,
                detach,
                queue_emails,
            })
            .await
            .map_err(|e| StepError::Mark(e.to_string()))?;
        metrics::counter!("confab_notify_batches_total").increment(1);
        Ok(())
    }
}

/// Counts one finished delivery; a device the proxy answered `REMOVE` for goes to `detach`.
fn count_sent(done: Result<Sent, JoinError>, detach: &mut Vec<(Id, String)>) {
    match done {
        Ok(Sent::Ok) => metrics::counter!("confab_push_sent_total").increment(1),
        Ok(Sent::Removed(token, device)) => {
            metrics::counter!("confab_push_devices_removed_total").increment(1);
            detach.push((token, device));
        }
        Ok(Sent::Failed) | Err(_) => metrics::counter!("confab_push_failed_total").increment(1),
    }
}

/// One push with bounded retries: transport errors and 5xx/429 answers are retried with a
/// doubling delay up to `retry_max`, at most `retry_attempts` tries in all.
async fn send_one(proxy: &ProxyClient, settings: &PushSettings, delivery: Delivery) -> Sent {
    let mut delay = settings.retry_initial;
    for attempt in 1..=settings.retry_attempts {
        match proxy.send(&delivery.push).await {
            Ok(Reply::Ok) => return Sent::Ok,
            Ok(Reply::Remove) => return Sent::Removed(delivery.token, delivery.device_id),
            Ok(Reply::Fail(why)) => {
                tracing::info!(user = %delivery.user, "push proxy FAIL: {why}");
                return Sent::Failed;
            }
            Err(e) if e.is_transient() && attempt < settings.retry_attempts => {
                metrics::counter!("confab_push_retried_total").increment(1);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(settings.retry_max);
            }
            Err(e) => {
                tracing::info!(user = %delivery.user, "push not delivered: {e}");
                return Sent::Failed;
            }
        }
    }
    Sent::Failed
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("reading the outbox: {0}")]
    Storage(#[from] StorageError),
    #[error("planning task: {0}")]
    Task(String),
    #[error("committing the mark: {0}")]
    Mark(String),
}
