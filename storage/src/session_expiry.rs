//! Telling a mobile device its session ended (Mattermost's `NotifySessionsExpired` job, which
//! pushes `type: session` to each mobile session that expired within the last hour and flags
//! it). Here the leader's dispatcher reads the sessions with a device whose expiry lies in
//! `(mark, now]`, pushes to each, and commits [`Command::SessionExpiriesNotified`](crate::Command)
//! with `now`, which moves the replicated mark (`meta` `"session_expiry_notified"`, ms) forward
//! only. A new leader starts from the mark: what can repeat after a leader crash is the one
//! round it had sent but not yet committed, and a session that expired while no leader looked
//! is told on the next round if that is within the hour.

use crate::apply::Step;
use crate::cf::Cf;
use crate::error::Result;
use crate::model::Session;
use crate::notify::meta_u64;
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;

/// `meta` key of the newest expiry time (ms) whose sessions were told.
pub const MARK_KEY: &[u8] = b"session_expiry_notified";

/// Moves the mark to `through` (never back: a deposed leader's late round changes nothing).
pub(crate) fn notified(txn: &mut Txn, through: u64) -> Step<Outcome> {
    let mark = meta_u64(txn, MARK_KEY)?.max(through);
    txn.put_raw(Cf::Meta, MARK_KEY.to_vec(), mark.to_be_bytes().to_vec());
    Ok(Outcome::SessionExpiriesNotified { through: mark })
}

impl Reader<'_> {
    /// The mark: sessions that expired at or before it were told.
    pub fn session_expiry_mark(&self) -> Result<u64> {
        self.meta_u64(MARK_KEY)
    }

    /// Sessions with a device that expired in `(after, through]`. One pass over the sessions,
    /// which the leader makes once per round (every few minutes), never per request.
    pub fn expired_mobile_sessions(&self, after: u64, through: u64) -> Result<Vec<Session>> {
        let mut expired = Vec::new();
        self.scan(Cf::TokenSession, &[], None, false, |_, value| {
            if let Ok(session) = rmp_serde::from_slice::<Session>(value) {
                if !session.device_id.is_empty()
                    && session.expires_at > after
                    && session.expires_at <= through
                {
                    expired.push(session);
                }
            }
            true
        })?;
        Ok(expired)
    }
}
