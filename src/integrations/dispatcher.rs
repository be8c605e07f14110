//! The leader's outgoing-webhook dispatcher.
//!
//! Apply records, in a post's own write batch, which outgoing hooks it triggered (the outbox in
//! `confab_storage::integrations`). Every node runs this task; only the Raft leader works: it
//! reads the entries after the replicated `hooks_dispatched` mark, calls every callback URL of
//! every triggered hook concurrently (bounded by [`super::outbound`]), retries transport errors
//! and 5xx answers with doubling delays up to `outgoing_webhook_attempts` tries, posts the
//! replies, and then commits ONE `OutgoingHooksDispatched` for the batch.
//!
//! Posting never waits for any of this. A call is made once per trigger; only if the leader
//! dies (or is deposed) between calling and committing its mark does the next leader call that
//! batch again (at most [`BATCH`] entries per leader change). A slow endpoint delays later
//! hook calls, never posts, pushes or emails (they have their own outbox).

use super::message::{self, Message};
use super::outbound::Outbound;
use super::post::{self, Poster};
use crate::app::App;
use crate::views;
use confab_storage::integrations::{HookCall, OutgoingHook};
use confab_storage::{Channel, Command, Post, Team, User};
use std::sync::Arc;
use std::time::Duration;

const IDLE: Duration = Duration::from_millis(50);
const FOLLOWER: Duration = Duration::from_millis(200);
/// Outbox entries per batch (one mark write each).
pub const BATCH: usize = 32;
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

impl HookDispatcher {
    pub fn spawn(self) {
        for name in [
            "confab_outgoing_webhook_calls_total",
            "confab_outgoing_webhook_failed_total",
            "confab_outgoing_webhook_retried_total",
        ] {
            metrics::counter!(name).increment(0);
        }
        let dispatcher = Arc::new(self);
        tokio::spawn(async move { dispatcher.run().await });
    }

    async fn run(self: Arc<Self>) {
        let raft = &self.app.raft;
        let mut caught_up = false;
        loop {
            if !raft.is_leader() {
                caught_up = false;
                tokio::time::sleep(FOLLOWER).await;
                continue;
            }
            if !caught_up {
                // Apply everything committed before leading, so the mark read is the last
                // leader's.
                match raft.linearizable_read_barrier().await {
                    Ok(index) => {
                        if raft
                            .wait_applied(index, Duration::from_secs(10))
                            .await
                            .is_err()
                        {
                            continue;
                        }
                        caught_up = true;
                    }
                    Err(_) => {
                        tokio::time::sleep(FOLLOWER).await;
                        continue;
                    }
                }
            }
            match self.step().await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(IDLE).await,
                Err(e) => {
                    tracing::warn!("outgoing webhooks: {e}");
                    caught_up = false;
                    tokio::time::sleep(FOLLOWER).await;
                }
            }
        }
    }

    /// One batch; `Ok(false)` when the outbox is empty.
    async fn step(self: &Arc<Self>) -> Result<bool, String> {
        let entries = {
            let reader = self.app.engine.reader();
            let mark = reader.hooks_mark().map_err(|e| e.to_string())?;
            reader
                .hook_calls_after(mark, BATCH)
                .map_err(|e| e.to_string())?
        };
        let Some((through, _)) = entries.last() else {
            return Ok(false);
        };
        let through = *through;
        let calls: Vec<HookCall> = entries.into_iter().flat_map(|(_, calls)| calls).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for call in calls {
            let Some(due) = self.due(&call).map_err(|e| e.to_string())? else {
                continue;
            };
            let this = self.clone();
            tasks.spawn(async move { this.deliver(due).await });
        }
        while tasks.join_next().await.is_some() {}
        self.app
            .raft
            .write(Command::OutgoingHooksDispatched { through })
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
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
