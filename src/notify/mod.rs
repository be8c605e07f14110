//! Push and email notifications, sent once from a cluster.
//!
//! ## The outbox
//! Every node applies every post, but a notification must leave once. So nothing is sent while
//! applying. `apply` (storage, `confab_storage::notify`) records, in the SAME write batch as the
//! post, an outbox entry in the `seq_notification` family keyed by the post's log index: who
//! MIGHT be notified — the members mentioned by `@username` or by a keyword (a `mention_keys`
//! entry, the first name: `confab_storage::keywords`), whether `@channel`/`@all`/`@here` was used, the
//! thread's followers. It is deterministic, so every replica holds the same outbox. A channel
//! view or thread read that clears something records a `Clear` entry the same way.
//!
//! ## The dispatcher (`dispatcher.rs`)
//! Every node runs one; only the current Raft leader works. On becoming leader it first applies
//! everything committed (a read barrier), so it sees the previous leader's last mark. Then, in a
//! loop: read up to `push_batch` entries after the replicated `notify_dispatched` mark; decide
//! per candidate with CURRENT state (`plan.rs`: notify props, membership, mute, devices, badge;
//! `rules.rs`: Mattermost's rules; [`StatusSource`]: presence; each member's reads made once
//! per batch, `plan::BatchReads`); send (`proxy.rs`, at most `push_concurrency` requests in
//! flight, transport errors and 5xx retried with doubling delays up to `push_retry_attempts`
//! tries) as each entry is planned, so sending overlaps planning and at most a few entries'
//! pushes wait in memory; mail (`email.rs`) once the batch is planned; then commit ONE
//! `NotificationsDispatched { through, detach, queue_emails }` Raft write for the whole batch,
//! which advances the mark, deletes the batch's entries, detaches the devices the proxy
//! answered `REMOVE` for, and queues the batch's batched emails.
//!
//! ## What can repeat, what can be lost
//! - A push is sent before its batch's mark commits. If the leader dies (or is deposed) between
//!   sending and committing, the next leader resends that batch: **at most one batch
//!   (`push_batch` entries) per leader change is delivered twice**. The same holds when
//!   planning fails part-way (a storage read error): the pushes already sent go again with the
//!   retried batch. Nothing else repeats: a mark never moves back, so a deposed leader's late
//!   mark is harmless.
//! - Nothing due is lost to a crash: an entry leaves the outbox only with a committed mark
//!   written after its pushes were attempted. A push whose retries are exhausted is counted in
//!   `confab_push_failed_total` and not retried later (Mattermost's hub does the same).
//!
//! ## Bounds and visibility
//! Dispatching never runs on the posting or fan-out path: it is its own task, plans on a
//! blocking thread, and sends with bounded concurrency. A slow or dead proxy only slows the
//! dispatcher, so the outbox grows; past `push_max_backlog` entries (default 100,000) the oldest
//! are marked done unsent and counted in `confab_push_dropped_total`. `/metrics` shows the
//! backlog (`confab_notify_outbox_backlog`, an O(1) counter kept by apply), the mark, pushes
//! sent, failed, retried, devices removed, entries dropped, and batches committed. With push off
//! the dispatcher still drains the outbox (one write per batch) without sending.
//!
//! ## Email, the second channel (`email.rs`)
//! [`plan::plan`] answers both a batch's pushes and its emails from the same entries, in the
//! same pass over the channel's members (email has its own rules: `email` props, away or
//! offline status). Immediate emails are sent with the batch's pushes before the one mark
//! write, so they share its bound; batched ones are queued by that mark write (only when it
//! advances the mark) and mailed as digests by the leader's `email::Batcher`.
//!
//! ## Expired sessions
//! With push on, the leader also makes a round every `session_expiry_check_secs`: each session
//! with a device whose expiry lies after the replicated `session_expiry_notified` mark (at most
//! an hour back) and by now gets one `type: session` push, then ONE
//! `SessionExpiriesNotified { through: now }` write moves the mark. As with batches, a leader
//! change can repeat at most the round that was sent and not yet committed
//! (`confab_storage::session_expiry`).
//!
//! ## Badge
//! `badge` is Mattermost's unread count: over the user's live channels, a direct channel's
//! unread messages and any other channel's unread mentions (root posts only with Collapsed Reply
//! Threads, plus the unread mentions of followed threads). Apply keeps it as two counters per
//! user, without and with CRT (`confab_storage::badge`), so the planner reads a recipient's
//! badge with a few point reads (`Reader::badge`: the counter, and a member record per channel
//! whose latest channel-wide mentions are not folded in yet, at most 4), cached for the batch,
//! never a walk of their channels or threads.

pub mod dispatcher;
pub mod email;
pub mod payload;
pub mod plain;
pub mod plan;
pub mod proxy;
pub mod rules;
pub mod settings;
pub mod status;

pub use dispatcher::Dispatcher;
pub use proxy::ProxyClient;
pub use settings::{PushArgs, PushSettings};
