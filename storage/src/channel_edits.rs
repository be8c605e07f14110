//! Applying edits to an existing channel: its name, display name, header and purpose, and
//! restoring an archived channel. Kept apart from `apply.rs` so each domain's rules read in one
//! place.

use crate::apply::{load_channel, load_live_channel, refuse, Step};
use crate::cf::Cf;
use crate::error::CommandError;
use crate::id::Id;
use crate::keys::{id_key, KeyBuf};
use crate::outcome::Outcome;
use crate::txn::Txn;
use crate::validate;

/// The fields a channel patch may change; `None` keeps the current value.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub header: Option<String>,
    pub purpose: Option<String>,
}

/// The team's default channel keeps its name: every member's app finds it by it.
const DEFAULT_CHANNEL: &str = "town-square";

pub(crate) fn patch(txn: &mut Txn, channel_id: Id, at: u64, patch: &ChannelPatch) -> Step<Outcome> {
    let mut channel = load_live_channel(txn, channel_id)?;
    let teamless = channel.channel_type.is_teamless();
    if let Some(name) = &patch.name {
        let name = name.to_lowercase();
        if name != channel.name {
            if teamless || channel.name == DEFAULT_CHANNEL {
                return refuse(CommandError::Invalid(format!(
                    "the name of channel {} cannot change",
                    channel.name
                )));
            }
            validate::channel_name(&name)?;
            let new_key = KeyBuf::new().id(channel.team_id).str(&name).build();
            if txn.exists(Cf::TeamidChannelnameChannelid, &new_key)? {
                return refuse(CommandError::ChannelNameTaken(name));
            }
            let old_key = KeyBuf::new().id(channel.team_id).str(&channel.name).build();
            txn.delete(Cf::TeamidChannelnameChannelid, old_key);
            txn.put_raw(Cf::TeamidChannelnameChannelid, new_key, id_key(channel.id));
            channel.name = name;
        }
    }
    if let Some(display_name) = &patch.display_name {
        if *display_name != channel.display_name {
            if teamless {
                return refuse(CommandError::Invalid(
                    "direct and group channels are named after their members".into(),
                ));
            }
            validate::display_name(display_name)?;
            channel.display_name = display_name.clone();
        }
    }
    if let Some(header) = &patch.header {
        validate::text("header", header, 1024)?;
        channel.header = header.clone();
    }
    if let Some(purpose) = &patch.purpose {
        validate::text("purpose", purpose, 250)?;
        channel.purpose = purpose.clone();
    }
    channel.update_at = channel.update_at.max(at);
    txn.put(Cf::ChannelidChannel, id_key(channel.id), &channel)?;
    Ok(Outcome::ChannelUpdated(channel))
}

/// Un-archives a channel; restoring a live channel is refused, as in Mattermost.
pub(crate) fn restore(txn: &mut Txn, channel_id: Id, at: u64) -> Step<Outcome> {
    let mut channel = load_channel(txn, channel_id)?;
    if channel.delete_at == 0 {
        return refuse(CommandError::Invalid(format!(
            "channel {channel_id} is not archived"
        )));
    }
    channel.delete_at = 0;
    channel.update_at = channel.update_at.max(at);
    txn.put(Cf::ChannelidChannel, id_key(channel.id), &channel)?;
    Ok(Outcome::ChannelRestored(channel))
}
