//! The leader's outgoing-webhook dispatcher.
//!
//! Apply records, in a post's own write batch, which outgoing hooks it triggered (the outbox in
//! `confab_storage::integrations`). Every node runs this task; only the Raft leader works: it
//! reads the outbox after the replicated `hooks_dispatched` mark into per-hook queues and starts
//! each call as soon as its hook has a free slot, like Mattermost's goroutine per call but
//! bounded: at most [`HOOK_IN_FLIGHT`] calls of one hook and [`DISPATCH_IN_FLIGHT`] in all run at
//! once. A call tries every callback URL of its hook concurrently (bounded by
//! [`super::outbound`]), retries transport errors, 429 and 5xx answers with doubling delays up
//! to `outgoing_webhook_attempts` tries, and posts the replies. Finished calls are committed in
//! [`Command::HookCallsDone`] as they finish, so a slow endpoint holds back only its own calls.
//!
//! Posting never waits for any of this. A call is made once per trigger; only if the leader
//! dies (or is deposed) between calling and committing does the next leader call it again, and
//! then only the calls that were running or not yet committed. Calls read but not started are
//! kept in memory up to [`MAX_QUEUED`]; past that the outbox waits on disk, so an endpoint that
//! is slower than its triggers for long enough to queue that many calls delays the others.

use super::message::{self, Message};
use super::outbound::Outbound;
use super::post::{self, Poster};
use crate::app::App;
use crate::views;
use confab_storage::integrations::{HookCall, OutgoingHook};
use confab_storage::{Channel, Command, Id, Post, Team, User};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

const IDLE: Duration = Duration::from_millis(50);
const FOLLOWER: Duration = Duration::from_millis(200);
/// Outbox entries read at a time.
const READ: usize = 256;
/// Calls of one hook running at once: a 5 s endpoint then gets up to ≈ 13 calls/s.
pub const HOOK_IN_FLIGHT: usize = 64;
/// Calls running at once over all hooks (each holds a task and, per callback URL, a socket).
pub const DISPATCH_IN_FLIGHT: usize = 256;
/// Calls read from the outbox and not yet started, at most.
pub const MAX_QUEUED: usize = 20_000;
/// First retry delay; it doubles per try.
const RETRY_DELAY: Duration = Duration::from_millis(500);

pub struct HookDispatcher {
    pub app: Arc<App>,
    pub outbound: Outbound,
}

/// Everything one call needs, read once from the replica.
struct Due {
    hook: OutgoingHook,
    post: Post,
    channel: Channel,
    team: Team,
    author: User,
    trigger_word: String,
}

/// What the leader has read from the outbox and not yet committed as done. Dropping it aborts
/// the calls still running (leadership lost: the next leader makes them).
struct Pipeline {
    /// The last outbox index read.
    cursor: u64,
    /// The mark last committed.
    committed: u64,
    /// Outbox entries with calls not finished: index → calls left.
    open: BTreeMap<u64, usize>,
    /// Calls not started, per hook, oldest first.
    queued: HashMap<Id, VecDeque<(u64, HookCall)>>,
    queued_total: usize,
    /// Calls running per hook.
    running: HashMap<Id, usize>,
    /// Which call each running task makes (a task that panicked still finishes its call).
    tasks: JoinSet<()>,
    calls: HashMap<tokio::task::Id, (u64, Id)>,
    /// Calls finished and not yet committed.
    finished: Vec<(u64, Id)>,
}

impl Pipeline {
    fn new(mark: u64) -> Pipeline {
        Pipeline {
            cursor: mark,
            committed: mark,
            open: BTreeMap::new(),
            queued: HashMap::new(),
            queued_total: 0,
            running: HashMap::new(),
            tasks: JoinSet::new(),
            calls: HashMap::new(),
            finished: Vec::new(),
        }
    }

    /// Reads the next outbox entries into the queues (unless [`MAX_QUEUED`] are waiting);
    /// whether any were read.
    fn read(&mut self, app: &App) -> Result<bool, confab_storage::StorageError> {
        if self.queued_total >= MAX_QUEUED {
            return Ok(false);
        }
        let entries = app.engine.reader().hook_calls_after(self.cursor, READ)?;
        let Some((last, _)) = entries.last() else {
            return Ok(false);
        };
        self.cursor = *last;
        for (index, calls) in entries {
            if calls.is_empty() {
                continue;
            }
            self.open.insert(index, calls.len());
            for call in calls {
                self.queued
                    .entry(call.hook_id)
                    .or_default()
                    .push_back((index, call));
                self.queued_total += 1;
            }
        }
        Ok(true)
    }

    /// Starts queued calls while their hooks and the dispatcher have free slots, one hook
    /// after another so that no hook's queue starves the others.
    fn start(&mut self, dispatcher: &Arc<HookDispatcher>) {
        loop {
            let mut started = false;
            let hooks: Vec<Id> = self.queued.keys().copied().collect();
            for hook_id in hooks {
                if self.tasks.len() >= DISPATCH_IN_FLIGHT {
                    return;
                }
                let running = self.running.entry(hook_id).or_default();
                if *running >= HOOK_IN_FLIGHT {
                    continue;
                }
                let Some(queue) = self.queued.get_mut(&hook_id) else {
                    continue;
                };
                let Some((index, call)) = queue.pop_front() else {
                    continue;
                };
                if queue.is_empty() {
                    self.queued.remove(&hook_id);
                }
                *running += 1;
                self.queued_total -= 1;
                let this = dispatcher.clone();
                let task = self.tasks.spawn(async move { this.make(call).await });
                self.calls.insert(task.id(), (index, hook_id));
                started = true;
            }
            if !started {
                return;
            }
        }
    }

    /// Notes a finished task's call.
    fn finish(&mut self, task: tokio::task::Id) {
        let Some((index, hook_id)) = self.calls.remove(&task) else {
            return;
        };
        if let Some(running) = self.running.get_mut(&hook_id) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                self.running.remove(&hook_id);
            }
        }
        if let Some(left) = self.open.get_mut(&index) {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.open.remove(&index);
            }
        }
        self.finished.push((index, hook_id));
    }

    /// Waits up to `wait` for a call to finish, then notes every finished one.
    async fn collect(&mut self, wait: Duration) {
        if self.tasks.is_empty() {
            tokio::time::sleep(wait).await;
            return;
        }
        if let Ok(Some(done)) = tokio::time::timeout(wait, self.tasks.join_next_with_id()).await {
            self.finish(task_id(&done));
        }
        while let Some(done) = self.tasks.try_join_next_with_id() {
            self.finish(task_id(&done));
        }
    }

    /// The mark to commit and the command that commits it with what finished, if anything
    /// did.
    fn done(&self) -> Option<(u64, Command)> {
        let through = match self.open.first_key_value() {
            Some((first, _)) => first.saturating_sub(1),
            None => self.cursor,
        };
        let calls: Vec<(u64, Id)> = self
            .finished
            .iter()
            .filter(|(index, _)| *index > through)
            .copied()
            .collect();
        (through > self.committed || !calls.is_empty())
            .then_some((through, Command::HookCallsDone { through, calls }))
    }
}

fn task_id(done: &Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, ())) => *id,
        Err(e) => e.id(),
    }
}

impl HookDispatcher {
    pub fn spawn(self) {
        for name in [
            "confab_outgoing_webhook_calls_total",
            "confab_outgoing_webhook_failed_total",
            "confab_outgoing_webhook_retried_total",
        ] {
            metrics::counter!(name).increment(0);
        }
        metrics::gauge!("confab_outgoing_webhook_queued").set(0.0);
        let dispatcher = Arc::new(self);
        tokio::spawn(async move { dispatcher.run().await });
    }

    async fn run(self: Arc<Self>) {
        let raft = &self.app.raft;
        loop {
            if !raft.is_leader() {
                tokio::time::sleep(FOLLOWER).await;
                continue;
            }
            // Apply everything committed before leading, so the mark read is the last leader's.
            let caught_up = match raft.linearizable_read_barrier().await {
                Ok(index) => raft
                    .wait_applied(index, Duration::from_secs(10))
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            if !caught_up {
                tokio::time::sleep(FOLLOWER).await;
                continue;
            }
            if let Err(e) = self.lead().await {
                tracing::warn!("outgoing webhooks: {e}");
                tokio::time::sleep(FOLLOWER).await;
            }
            metrics::gauge!("confab_outgoing_webhook_queued").set(0.0);
        }
    }

    /// Dispatches while this node leads; returns when it no longer does (or on an error).
    async fn lead(self: &Arc<Self>) -> Result<(), String> {
        let mark = self
            .app
            .engine
            .reader()
            .hooks_mark()
            .map_err(|e| e.to_string())?;
        let mut pipe = Pipeline::new(mark);
        while self.app.raft.is_leader() {
            let read = pipe.read(&self.app).map_err(|e| e.to_string())?;
            pipe.start(self);
            metrics::gauge!("confab_outgoing_webhook_queued").set(pipe.queued_total as f64);
            if let Some((through, command)) = pipe.done() {
                self.app
                    .raft
                    .write(command)
                    .await
                    .map_err(|e| e.to_string())?;
                pipe.committed = through;
                pipe.finished.clear();
            }
            pipe.collect(if read { Duration::ZERO } else { IDLE }).await;
        }
        Ok(())
    }

    /// One call: reads what it needs and delivers it (nothing when its hook, post or channel
    /// is gone, or outgoing webhooks were switched off).
    async fn make(self: Arc<Self>, call: HookCall) {
        match self.due(&call) {
            Ok(Some(due)) => self.deliver(due).await,
            Ok(None) => {}
            Err(e) => {
                metrics::counter!("confab_outgoing_webhook_failed_total").increment(1);
                tracing::warn!(hook = %call.hook_id, "outgoing webhook not read: {e}");
            }
        }
    }

    /// Reads what a call needs; `None` when its hook, post or channel is gone.
    fn due(&self, call: &HookCall) -> Result<Option<Due>, confab_storage::StorageError> {
        if !self.app.integrations.enable_outgoing_webhooks {
            return Ok(None);
        }
        let r = self.app.engine.reader();
        let Some(hook) = r.outgoing_hook(call.hook_id)? else {
            return Ok(None);
        };
        let Some(post) = r.post(call.post_id)?.filter(|p| p.delete_at == 0) else {
            return Ok(None);
        };
        let Some(channel) = r.channel(post.channel_id)? else {
            return Ok(None);
        };
        let (Some(team), Some(author)) = (r.team(channel.team_id)?, r.user(post.user_id)?) else {
            return Ok(None);
        };
        Ok(Some(Due {
            hook,
            post,
            channel,
            team,
            author,
            trigger_word: call.trigger_word.clone(),
        }))
    }

    /// Calls every callback URL of the hook (concurrently) and posts what they answer.
    async fn deliver(self: Arc<Self>, due: Due) {
        let due = Arc::new(due);
        let mut tasks = tokio::task::JoinSet::new();
        for url in due.hook.callback_urls.clone() {
            let (this, due) = (self.clone(), due.clone());
            tasks.spawn(async move {
                if let Some(reply) = this.call(&due, &url).await {
                    if let Err(e) = this.post_reply(&due, &reply).await {
                        tracing::warn!(hook = %due.hook.id, "outgoing webhook reply not posted: {e}");
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// One callback URL with bounded retries; the parsed reply, if any.
    async fn call(&self, due: &Due, url: &str) -> Option<Message> {
        let outbound = &self.outbound;
        let target = match outbound.url(url) {
            Ok(target) => target,
            Err(e) => {
                metrics::counter!("confab_outgoing_webhook_failed_total").increment(1);
                tracing::warn!(hook = %due.hook.id, "outgoing webhook refused: {e}");
                return None;
            }
        };
        let attempts = self.app.integrations.attempts;
        let mut delay = RETRY_DELAY;
        for attempt in 1..=attempts {
            let request = request(outbound, target.clone(), due);
            metrics::counter!("confab_outgoing_webhook_calls_total").increment(1);
            let retry = match outbound.send(request).await {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    if answer.body.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    return match message::parse_json(&answer.body) {
                        Ok(reply) => Some(reply),
                        Err(e) => {
                            tracing::debug!(hook = %due.hook.id, "outgoing webhook reply is not JSON: {e}");
                            None
                        }
                    };
                }
                Ok(answer) => answer.status >= 500 || answer.status == 429,
                Err(super::outbound::OutboundError::Request(_)) => true,
                Err(_) => false,
            };
            if !retry || attempt == attempts {
                break;
            }
            metrics::counter!("confab_outgoing_webhook_retried_total").increment(1);
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        metrics::counter!("confab_outgoing_webhook_failed_total").increment(1);
        None
    }

    /// Posts a reply as the hook's creator; `response_type: comment` replies in the thread.
    async fn post_reply(&self, due: &Due, reply: &Message) -> Result<(), crate::error::ApiError> {
        if !reply.has_content() {
            return Ok(());
        }
        let root_id = (reply.response_type == "comment").then(|| {
            if due.post.root_id.is_none() {
                due.post.id
            } else {
                due.post.root_id
            }
        });
        post::post(
            &self.app,
            &Poster {
                user_id: due.hook.creator_id,
                channel_id: due.channel.id,
                root_id,
                from_webhook: true,
                fallback_username: &due.hook.username,
                fallback_icon: &due.hook.icon_url,
                default_username: None,
                webhook_display_name: None,
            },
            reply,
        )
        .await?;
        Ok(())
    }
}

/// Mattermost's outgoing request: the same fields as a form (timestamp in seconds) or JSON
/// (timestamp in milliseconds), `Accept: application/json`.
fn request(outbound: &Outbound, url: reqwest::Url, due: &Due) -> reqwest::RequestBuilder {
    let fields = [
        ("token", views::id(due.hook.token)),
        ("team_id", views::id(due.team.id)),
        ("team_domain", due.team.name.clone()),
        ("channel_id", views::id(due.channel.id)),
        ("channel_name", due.channel.name.clone()),
        ("user_id", views::id(due.author.id)),
        ("user_name", due.author.username.clone()),
        ("post_id", views::id(due.post.id)),
        ("text", due.post.message.clone()),
        ("trigger_word", due.trigger_word.clone()),
        ("file_ids", String::new()),
    ];
    let builder = outbound
        .client()
        .post(url)
        .header("Accept", "application/json");
    if due.hook.content_type == "application/json" {
        let mut body = serde_json::Map::new();
        for (name, value) in fields {
            body.insert(name.into(), serde_json::Value::String(value));
        }
        body.insert("timestamp".into(), serde_json::json!(due.post.create_at));
        builder.json(&body)
    } else {
        let mut form: Vec<(&str, String)> = fields.to_vec();
        form.push(("timestamp", (due.post.create_at / 1000).to_string()));
        builder.form(&form)
    }
}
