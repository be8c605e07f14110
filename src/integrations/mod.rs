//! Integrations: incoming and outgoing webhooks, slash commands, bots and personal access
//! tokens, as Mattermost has them.
//!
//! - Settings (`[integrations]`, flags, `CONFAB_*`) with Mattermost's defaults: [`settings`].
//! - Every call to a URL someone else configured goes through [`outbound`]: timeouts, bounded
//!   concurrency and response size, and no loopback, link-local or private address unless
//!   `allowed_untrusted_internal_connections` lists it (server-side request forgery).
//! - Outgoing webhooks leave the cluster once, from the leader: apply records which hooks a post
//!   triggered in an outbox (`confab_storage::integrations`), and [`dispatcher`] sends them,
//!   retried with backoff, then commits a mark. Posting never waits for a callback.
//! - The HTTP routes are in `crate::api` (`tokens`, `bots`, `webhooks`, `commands`).

pub mod dispatcher;
pub mod message;
pub mod outbound;
pub mod post;
pub mod settings;

pub use settings::{IntegrationArgs, IntegrationSettings};
