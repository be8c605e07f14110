//! Applying edits to an existing channel: its name, display name, header and purpose, its
//! privacy, its admins, and restoring an archived channel. Kept apart from `apply.rs` so each domain's rules read in one
//! place.

use crate::apply::{load_channel, load_live_channel, refuse, Step};
use crate::cf::Cf;
use crate::error::CommandError;
use crate::id::Id;
use crate::keys::{id2, id_key, KeyBuf};
use crate::model::{ChannelMember, ChannelType};
use crate::outcome::Outcome;
use crate::teams::with_role;
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

/// Applies `SetChannelPrivacy`: open ↔ private. The team's default channel stays open (every
/// member must be able to find it), and direct and group channels have no privacy to change.
pub(crate) fn set_privacy(
    txn: &mut Txn,
    channel_id: Id,
    at: u64,
    channel_type: ChannelType,
) -> Step<Outcome> {
    let mut channel = load_live_channel(txn, channel_id)?;
    if channel.channel_type.is_teamless() || channel_type.is_teamless() {
        return refuse(CommandError::Invalid(
            "only open and private channels change privacy".into(),
        ));
    }
    if channel.name == DEFAULT_CHANNEL && channel_type == ChannelType::Private {
        return refuse(CommandError::Invalid(
            "the team's default channel cannot be made private".into(),
        ));
    }
    if channel.channel_type == channel_type {
        // Mattermost answers the channel as it is: a retried request is no error.
        return Ok(Outcome::ChannelPrivacyChanged(channel));
    }
    channel.channel_type = channel_type;
    channel.update_at = channel.update_at.max(at);
    txn.put(Cf::ChannelidChannel, id_key(channel.id), &channel)?;
    Ok(Outcome::ChannelPrivacyChanged(channel))
}

/// Applies `SetChannelMemberAdmin`: direct and group channels have no admins.
pub(crate) fn set_member_admin(
    txn: &mut Txn,
    channel_id: Id,
    user_id: Id,
    at: u64,
    admin: bool,
) -> Step<Outcome> {
    let channel = load_live_channel(txn, channel_id)?;
    if channel.channel_type.is_teamless() {
        return refuse(CommandError::Invalid(
            "direct and group channels have no admins".into(),
        ));
    }
    let key = id2(channel.id, user_id);
    let Some(mut member) = txn.get::<ChannelMember>(Cf::ChannelidUseridMember, &key)? else {
        return refuse(CommandError::NotMember {
            user: user_id.to_string(),
            of: format!("channel {channel_id}"),
        });
    };
    member.settle(&channel);
    member.roles = with_role(&member.roles, "channel_admin", admin);
    member.last_update_at = member.last_update_at.max(at);
    txn.put(Cf::ChannelidUseridMember, key, &member)?;
    Ok(Outcome::ChannelMemberUpdated { channel, member })
}
