//! Members who do not count channel-wide mentions (`@channel`, `@all`, `@here`).
//!
//! In Mattermost a channel-wide mention is a mention only for members whose `channel` notify
//! prop is on and whose channel `ignore_channel_mentions` is not `"on"`: for the others it
//! raises no mention count, no badge, no `mentions` entry in the `posted` event and (in a
//! reply) no thread follow. Here a channel-wide mention is counted once on the channel and
//! folded into each member's counts when the record is read ([`ChannelMember::settle`]), so the
//! choice lives on the member record itself ([`ChannelMember::ignores_channel_wide`]): `settle`
//! passes over the mentions of a member who ignores them. The flag is kept true wherever either
//! prop changes, settling first so mentions posted before the change keep the old rule:
//! - a member is created ([`on_join`]) with the user's `channel` prop;
//! - a channel member's props change ([`set_for_member`]);
//! - a user's `channel` prop changes ([`on_user_props_changed`]): every membership of the user
//!   is settled and rewritten, O(the user's channels) on a rare command.
//!
//! `channelid_ignorerid` lists the same members by channel (channel_id · user_id → ()), so a
//! post with `@channel` learns who it does not mention from a range that is usually empty,
//! instead of reading every member record of the channel.

use crate::apply::Step;
use crate::cf::Cf;
use crate::engine::Engine;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{id2, id_key, KeyBuf};
use crate::model::{Channel, ChannelMember, NotifyProps, User};
use crate::txn::Txn;
use rocksdb::IteratorMode;
use std::collections::BTreeSet;

/// `meta` key: the family was built from the members of a data directory written before it.
const MARKER: &[u8] = b"channel_wide_ignorers_indexed";

/// Whether a member with these props ignores channel-wide mentions: the user turned them off
/// (`channel` = `"false"`), or the member did in this channel (`ignore_channel_mentions` =
/// `"on"`; `"off"` does not override the user's choice, as in Mattermost's keyword map).
pub fn ignores(user_props: &NotifyProps, channel_props: &NotifyProps) -> bool {
    user_props.get("channel").map(String::as_str) == Some("false")
        || channel_props
            .get("ignore_channel_mentions")
            .map(String::as_str)
            == Some("on")
}

/// Sets the member's flag and its `channelid_ignorerid` key; the caller settled the member
/// first and writes it after.
fn set_flag(txn: &mut Txn, member: &mut ChannelMember, ignores: bool) {
    member.ignores_channel_wide = ignores;
    let key = id2(member.channel_id, member.user_id);
    if ignores {
        txn.put_raw(Cf::ChannelidIgnorerid, key, Vec::new());
    } else {
        txn.delete(Cf::ChannelidIgnorerid, key);
    }
}

/// A new member: their flag from the user's props (the member's own start at `default`).
pub(crate) fn on_join(txn: &mut Txn, member: &mut ChannelMember, user: &User) {
    let ignores = ignores(&user.notify_props, &member.notify_props);
    if ignores {
        set_flag(txn, member, true);
    }
}

/// A member's channel props changed (the member is settled): the flag follows.
pub(crate) fn set_for_member(txn: &mut Txn, member: &mut ChannelMember, user: &User) {
    let ignores = ignores(&user.notify_props, &member.notify_props);
    if ignores != member.ignores_channel_wide {
        set_flag(txn, member, ignores);
    }
}

/// A member left: their key goes with the record.
pub(crate) fn on_leave(txn: &mut Txn, channel: Id, user: Id) {
    txn.delete(Cf::ChannelidIgnorerid, id2(channel, user));
}

/// A user's profile changed: when their `channel` prop flipped, every membership is settled
/// under the old rule and its flag recomputed.
pub(crate) fn on_user_props_changed(txn: &mut Txn, before: &User, after: &User) -> Step<()> {
    let was = before.notify_props.get("channel") == Some(&"false".to_string());
    let is = after.notify_props.get("channel") == Some(&"false".to_string());
    if was == is {
        return Ok(());
    }
    let channels: Vec<Id> = txn
        .scan_prefix(Cf::UseridTeamidChannelid, after.id.as_bytes())?
        .into_iter()
        .filter_map(|(key, _)| key.get(32..).and_then(Id::from_slice))
        .collect();
    for channel_id in channels {
        let key = id2(channel_id, after.id);
        let (Some(channel), Some(mut member)) = (
            txn.get::<Channel>(Cf::ChannelidChannel, &id_key(channel_id))?,
            txn.get::<ChannelMember>(Cf::ChannelidUseridMember, &key)?,
        ) else {
            continue;
        };
        member.settle(&channel);
        let ignores = ignores(&after.notify_props, &member.notify_props);
        if ignores != member.ignores_channel_wide {
            set_flag(txn, &mut member, ignores);
            txn.put(Cf::ChannelidUseridMember, key, &member)?;
        }
    }
    Ok(())
}

/// The members of `channel` who ignore channel-wide mentions.
pub(crate) fn ignorers(txn: &mut Txn, channel: Id) -> Step<BTreeSet<Id>> {
    Ok(txn
        .scan_prefix(Cf::ChannelidIgnorerid, channel.as_bytes())?
        .into_iter()
        .filter_map(|(key, _)| key.get(16..).and_then(Id::from_slice))
        .collect())
}

impl Engine {
    /// At open: flags the members of a data directory written before the flag existed (one
    /// pass over the memberships; a fresh directory has none and is marked at once). Mentions
    /// already pending for such a member are folded in first, as they were counted then.
    pub(crate) fn init_channel_wide_ignorers(&self) -> Result<()> {
        self.once_at_open(MARKER, |batch| {
            let users = self.cf(Cf::UseridUser)?;
            let channels = self.cf(Cf::ChannelidChannel)?;
            let members = self.cf(Cf::ChannelidUseridMember)?;
            let ignorers = self.cf(Cf::ChannelidIgnorerid)?;
            let mut user: Option<User> = None;
            let mut channel: Option<Channel> = None;
            for item in self.db.iterator_cf(members, IteratorMode::Start) {
                let (key, value) = item?;
                let Ok(mut member) = rmp_serde::from_slice::<ChannelMember>(&value) else {
                    continue;
                };
                if user.as_ref().map(|u| u.id) != Some(member.user_id) {
                    user = match self.db.get_cf(users, id_key(member.user_id))? {
                        Some(bytes) => rmp_serde::from_slice(&bytes).ok(),
                        None => None,
                    };
                }
                let Some(user) = user.as_ref() else {
                    continue;
                };
                if !ignores(&user.notify_props, &member.notify_props) {
                    continue;
                }
                if channel.as_ref().map(|c| c.id) != Some(member.channel_id) {
                    channel = match self.db.get_cf(channels, id_key(member.channel_id))? {
                        Some(bytes) => rmp_serde::from_slice(&bytes).ok(),
                        None => None,
                    };
                }
                if let Some(channel) = channel.as_ref() {
                    member.settle(channel);
                }
                member.ignores_channel_wide = true;
                batch.put_cf(members, &key, rmp_serde::to_vec(&member)?);
                let index_key = KeyBuf::new()
                    .id(member.channel_id)
                    .id(member.user_id)
                    .build();
                batch.put_cf(ignorers, index_key, []);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TeamType, UserProfile};
    use crate::Command;

    fn apply(engine: &Engine, index: u64, command: Command) {
        let applied = engine.apply(index, &command).expect("apply");
        assert!(applied.result.is_ok(), "{command:?}: {:?}", applied.result);
    }

    fn user(engine: &Engine, index: u64, n: u8, channel_prop: &str) -> Id {
        let id = Id::from_bytes([n; 16]);
        let name = format!("user{n}");
        apply(
            engine,
            index,
            Command::CreateUser {
                id,
                at: 1,
                username: name.clone(),
                email: format!("{name}@example.com"),
                password_hash: "hash".into(),
                nickname: String::new(),
                first_name: String::new(),
                last_name: String::new(),
                roles: "system_user".into(),
            },
        );
        let current = engine.reader().user(id).expect("read").expect("user");
        let mut profile = UserProfile::of(&current);
        profile
            .notify_props
            .insert("channel".into(), channel_prop.into());
        apply(
            engine,
            index + 1,
            Command::UpdateUser {
                user_id: id,
                at: 2,
                profile,
            },
        );
        id
    }

    /// A data directory from before the flag has its ignoring members flagged and listed at
    /// open, to the very bytes apply keeps, so replicas that upgraded and replicas that
    /// applied agree.
    #[test]
    fn the_build_at_open_equals_what_apply_keeps() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("open");
        let off = user(&engine, 1, 1, "false");
        let on = user(&engine, 3, 2, "true");
        let team = Id::from_bytes([9; 16]);
        let town = Id::from_bytes([10; 16]);
        apply(
            &engine,
            5,
            Command::CreateTeam {
                id: team,
                at: 3,
                name: "team".into(),
                display_name: "team".into(),
                team_type: TeamType::Open,
                creator_id: on,
                town_square_id: town,
                off_topic_id: Id::from_bytes([11; 16]),
                invite_id: String::new(),
            },
        );
        apply(
            &engine,
            6,
            Command::AddTeamMember {
                team_id: team,
                user_id: off,
                at: 4,
            },
        );
        let reader = engine.reader();
        let record = reader
            .channel_member_record(town, off)
            .expect("read")
            .expect("member");
        assert!(record.ignores_channel_wide);
        drop(reader);
        let kept = engine.state_digest().expect("digest");

        // As a data directory written before the flag: unflagged records, no list, no marker.
        let members = engine.cf(Cf::ChannelidUseridMember).expect("cf");
        let list = engine.cf(Cf::ChannelidIgnorerid).expect("cf");
        let meta = engine.cf(Cf::Meta).expect("meta");
        for channel in [town, Id::from_bytes([11; 16])] {
            let key = id2(channel, off);
            let bytes = engine
                .db
                .get_cf(members, &key)
                .expect("read")
                .expect("member");
            let mut member: ChannelMember = rmp_serde::from_slice(&bytes).expect("member");
            member.ignores_channel_wide = false;
            let old = rmp_serde::to_vec(&member).expect("encode");
            engine.db.put_cf(members, &key, old).expect("write");
            engine.db.delete_cf(list, &key).expect("delete");
        }
        engine.db.delete_cf(meta, MARKER).expect("delete");
        assert_ne!(engine.state_digest().expect("digest"), kept);
        drop(engine);

        let reopened = Engine::open(dir.path()).expect("reopen");
        assert_eq!(reopened.state_digest().expect("digest"), kept);
    }
}
