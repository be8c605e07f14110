//! `apply`: the one function that turns committed commands into state. It reads no clock and
//! draws no randomness; every command of a batch lands in ONE `WriteBatch` with the applied index,
//! and an index at or below the stored one is a no-op, so replay after a crash is safe.

use crate::accounts;
use crate::acks;
use crate::cf::Cf;
use crate::channel_edits;
use crate::command::Command;
use crate::dedup;
use crate::drafts;
use crate::email_queue;
use crate::emoji;
use crate::engine::{meta_key, Engine};
use crate::error::{CommandError, Result, StorageError};
use crate::files;
use crate::id::Id;
use crate::images;
use crate::integrations;
use crate::keys::{id2, id_key, post_time_key, KeyBuf};
use crate::keywords;
use crate::mentions;
use crate::model::*;
use crate::notify::{self, ChannelWide, OutboxEntry};
use crate::outcome::{Applied, MembershipView, Outcome, Posted};
use crate::pinned;
use crate::preferences;
use crate::search;
use crate::session_expiry;
use crate::sidebar;
use crate::status;
use crate::teams;
use crate::threads::{self, count_replies_after, Watermarks};
use crate::txn::Txn;
use crate::validate;
use crate::wide_ignore;
use rocksdb::WriteOptions;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

/// A command's result inside apply: a refusal, or a failure of the engine itself.
pub(crate) type Step<T> = std::result::Result<T, StorageError>;

pub(crate) fn refuse<T>(error: CommandError) -> Step<T> {
    Err(StorageError::Command(error))
}

impl Engine {
    /// Applies one command at log index `index`.
    pub fn apply(&self, index: u64, command: &Command) -> Result<Applied> {
        let mut applied = self.apply_batch(&[(index, Some(command))], None)?;
        applied
            .pop()
            .ok_or_else(|| StorageError::Corrupt("apply_batch returned nothing".into()))
    }

    /// Applies a batch of committed entries in one atomic write together with the last applied
    /// index and the replication layer's `replication_meta`. Entries without a command (Raft's
    /// blank and membership entries) only advance the index. Entries at or below the applied
    /// index are skipped.
    pub fn apply_batch(
        &self,
        entries: &[(u64, Option<&Command>)],
        replication_meta: Option<&[u8]>,
    ) -> Result<Vec<Applied>> {
        let _applying = self.apply_lock.lock();
        let mut applied_index = self.applied_index()?;
        let mut txn = Txn::new(self);
        let mut results = Vec::with_capacity(entries.len());
        for (index, command) in entries {
            let index = *index;
            if index <= applied_index {
                results.push(Applied {
                    index,
                    result: Ok(Outcome::AlreadyApplied),
                    keys_read: 0,
                    keys_written: 0,
                });
                continue;
            }
            applied_index = index;
            let Some(command) = command else { continue };
            txn.begin(index);
            let result = match apply_command(&mut txn, command) {
                Ok(outcome) => {
                    crate::badge::reconcile(&mut txn)?;
                    txn.commit_command();
                    Ok(outcome)
                }
                Err(StorageError::Command(error)) => {
                    txn.abort_command();
                    Err(error)
                }
                Err(other) => return Err(other),
            };
            results.push(Applied {
                index,
                result,
                keys_read: txn.keys_read,
                keys_written: txn.keys_written,
            });
        }
        let stats = &self.stats;
        for applied in &results {
            stats
                .keys_written
                .fetch_add(applied.keys_written, Ordering::Relaxed);
            let counter = match applied.result {
                Ok(_) => &stats.commands_applied,
                Err(_) => &stats.commands_refused,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        stats.write_batches.fetch_add(1, Ordering::Relaxed);
        let mut batch = txn.into_write_batch()?;
        let meta = self.cf(Cf::Meta)?;
        batch.put_cf(meta, meta_key::APPLIED_INDEX, applied_index.to_be_bytes());
        if let Some(replication_meta) = replication_meta {
            batch.put_cf(meta, meta_key::REPLICATION, replication_meta);
        }
        // The Raft log is the durable record; the state may trail it after a crash and is
        // replayed, so the state write needs the WAL but no sync of its own.
        let mut opts = WriteOptions::default();
        opts.set_sync(false);
        self.db.write_opt(batch, &opts)?;
        let revokes = entries.iter().any(|(_, command)| {
            command
                .as_ref()
                .is_some_and(|c| c.ends_or_changes_sessions())
        });
        if revokes {
            self.advance_sessions_epoch();
        }
        Ok(results)
    }
}

fn apply_command(txn: &mut Txn, command: &Command) -> Step<Outcome> {
    match command {
        Command::CreateUser {
            id,
            at,
            username,
            email,
            password_hash,
            nickname,
            first_name,
            last_name,
            roles,
        } => {
            let username = username.to_lowercase();
            let email = email.to_lowercase();
            validate::username(&username)?;
            validate::email(&email)?;
            if txn.exists(Cf::UseridUser, &id_key(*id))? {
                return refuse(CommandError::IdExists(id.to_string()));
            }
            if txn.exists(Cf::UsernameUserid, username.as_bytes())? {
                return refuse(CommandError::UsernameTaken(username));
            }
            if txn.exists(Cf::EmailUserid, email.as_bytes())? {
                return refuse(CommandError::EmailTaken(email));
            }
            let first = !txn.any_live(Cf::UseridUser)?;
            let user = User {
                id: *id,
                create_at: *at,
                update_at: *at,
                delete_at: 0,
                username: username.clone(),
                email: email.clone(),
                nickname: nickname.clone(),
                first_name: first_name.clone(),
                last_name: last_name.clone(),
                position: String::new(),
                roles: new_user_roles(roles, first),
                locale: "en".into(),
                is_bot: false,
                password_hash: password_hash.clone(),
                notify_props: NotifyProps::new(),
                custom_status: String::new(),
                last_picture_update: 0,
                timezone: Timezone::default(),
            };
            txn.put(Cf::UseridUser, id_key(*id), &user)?;
            txn.put_raw(Cf::UsernameUserid, username.into_bytes(), id_key(*id));
            txn.put_raw(Cf::EmailUserid, email.into_bytes(), id_key(*id));
            search::people::add_user(txn, &user);
            Ok(Outcome::UserCreated(user))
        }
        Command::CreateSession {
            token,
            user_id,
            at,
            expires_at,
            device_id,
        } => {
            let user = load_user(txn, *user_id)?;
            if user.delete_at != 0 {
                return refuse(CommandError::Deleted(format!("user {user_id}")));
            }
            if txn.exists(Cf::TokenSession, &id_key(*token))? {
                return refuse(CommandError::IdExists(token.to_string()));
            }
            let session = Session {
                token: *token,
                user_id: *user_id,
                create_at: *at,
                expires_at: *expires_at,
                device_id: device_id.clone(),
            };
            txn.put(Cf::TokenSession, id_key(*token), &session)?;
            txn.put_raw(Cf::UseridToken, id2(*user_id, *token), Vec::new());
            Ok(Outcome::SessionCreated(session))
        }
        Command::RevokeSession { token } => {
            let Some(session) = txn.get::<Session>(Cf::TokenSession, &id_key(*token))? else {
                return refuse(CommandError::not_found("session", token));
            };
            txn.delete(Cf::TokenSession, id_key(*token));
            txn.delete(Cf::UseridToken, id2(session.user_id, *token));
            Ok(Outcome::SessionRevoked(session))
        }
        Command::RevokeAllSessions { user_id } => {
            let outcome = accounts::revoke_all(txn, *user_id)?;
            // Active access tokens keep working (Mattermost re-creates their sessions).
            integrations::restore_token_sessions(txn, *user_id, 0)?;
            Ok(outcome)
        }
        Command::UpdateUser {
            user_id,
            at,
            profile,
        } => accounts::update_profile(txn, *user_id, *at, profile),
        Command::SetPassword {
            user_id,
            at,
            password_hash,
            keep,
        } => {
            let outcome = accounts::set_password(txn, *user_id, *at, password_hash, *keep)?;
            integrations::restore_token_sessions(txn, *user_id, *at)?;
            Ok(outcome)
        }
        Command::SetUserRoles { user_id, at, roles } => {
            accounts::set_roles(txn, *user_id, *at, roles)
        }
        Command::SetUserActive {
            user_id,
            at,
            active,
        } => {
            let outcome = accounts::set_active(txn, *user_id, *at, *active)?;
            if *active {
                integrations::restore_token_sessions(txn, *user_id, *at)?;
            }
            Ok(outcome)
        }
        Command::CreateTeam {
            id,
            at,
            name,
            display_name,
            team_type,
            creator_id,
            town_square_id,
            off_topic_id,
            invite_id,
        } => {
            let name = name.to_lowercase();
            validate::team_name(&name)?;
            validate::display_name(display_name)?;
            load_user(txn, *creator_id)?;
            if txn.exists(Cf::TeamidTeam, &id_key(*id))? {
                return refuse(CommandError::IdExists(id.to_string()));
            }
            if txn.exists(Cf::TeamnameTeamid, name.as_bytes())? {
                return refuse(CommandError::TeamNameTaken(name));
            }
            let distinct: BTreeSet<Id> = [*id, *town_square_id, *off_topic_id].into();
            if distinct.len() != 3 {
                return refuse(CommandError::Invalid(
                    "team and channel ids must differ".into(),
                ));
            }
            let team = Team {
                id: *id,
                create_at: *at,
                update_at: *at,
                delete_at: 0,
                name: name.clone(),
                display_name: display_name.clone(),
                team_type: *team_type,
                description: String::new(),
                company_name: String::new(),
                allowed_domains: String::new(),
                invite_id: invite_id.clone(),
                allow_open_invite: Some(*team_type == TeamType::Open),
            };
            txn.put(Cf::TeamidTeam, id_key(*id), &team)?;
            txn.put_raw(Cf::TeamnameTeamid, name.into_bytes(), id_key(*id));
            let member = put_team_member(txn, *id, *creator_id, "team_user team_admin")?;
            let mut channels = Vec::new();
            for (channel_id, channel_name, channel_display) in [
                (*town_square_id, "town-square", "Town Square"),
                (*off_topic_id, "off-topic", "Off-Topic"),
            ] {
                let channel = new_channel(
                    channel_id,
                    *at,
                    *id,
                    ChannelType::Open,
                    channel_name.into(),
                    channel_display.into(),
                    *creator_id,
                );
                insert_channel(txn, &channel)?;
                put_new_channel_member(txn, &channel, *creator_id, *at)?;
                channels.push(channel);
            }
            Ok(Outcome::TeamCreated {
                team,
                member,
                channels,
            })
        }
        Command::AddTeamMember {
            team_id,
            user_id,
            at,
        } => {
            let team = load_team(txn, *team_id)?;
            add_team_member(txn, &team, *user_id, *at)
        }
        Command::CreateChannel {
            id,
            at,
            team_id,
            channel_type,
            name,
            display_name,
            purpose,
            header,
            creator_id,
        } => {
            if !matches!(channel_type, ChannelType::Open | ChannelType::Private) {
                return refuse(CommandError::Invalid(
                    "team channels are open (O) or private (P)".into(),
                ));
            }
            let name = name.to_lowercase();
            validate::channel_name(&name)?;
            validate::display_name(display_name)?;
            validate::text("purpose", purpose, 250)?;
            validate::text("header", header, 1024)?;
            let team = load_team(txn, *team_id)?;
            if team.delete_at != 0 {
                return refuse(CommandError::Deleted(format!("team {team_id}")));
            }
            require_team_member(txn, *team_id, *creator_id)?;
            if txn.exists(Cf::ChannelidChannel, &id_key(*id))? {
                return refuse(CommandError::IdExists(id.to_string()));
            }
            let channel = Channel {
                header: header.clone(),
                purpose: purpose.clone(),
                ..new_channel(
                    *id,
                    *at,
                    *team_id,
                    *channel_type,
                    name,
                    display_name.clone(),
                    *creator_id,
                )
            };
            insert_channel(txn, &channel)?;
            // The creator runs the channel (Mattermost makes them its scheme admin).
            let mut member = put_new_channel_member(txn, &channel, *creator_id, *at)?;
            member.roles = teams::with_role(&member.roles, "channel_admin", true);
            txn.put(
                Cf::ChannelidUseridMember,
                id2(channel.id, *creator_id),
                &member,
            )?;
            Ok(Outcome::ChannelCreated {
                channel,
                members: vec![member],
                existed: false,
            })
        }
        Command::CreateDirectOrGroup {
            id,
            at,
            channel_type,
            name,
            display_name,
            members,
            creator_id,
        } => {
            let distinct: BTreeSet<Id> = members.iter().copied().collect();
            let size_ok = match channel_type {
                ChannelType::Direct => (1..=2).contains(&distinct.len()),
                ChannelType::Group => (3..=8).contains(&distinct.len()),
                _ => false,
            };
            if !size_ok {
                return refuse(CommandError::Invalid(
                    "a direct channel has 1–2 users, a group 3–8".into(),
                ));
            }
            if !distinct.contains(creator_id) {
                return refuse(CommandError::Invalid("the creator must be a member".into()));
            }
            validate::text("name", name, 64)?;
            let name_key = KeyBuf::new().id(Id::NONE).str(name).build();
            if let Some(raw) = txn.get_raw(Cf::TeamidChannelnameChannelid, &name_key)? {
                let existing = Id::from_slice(&raw)
                    .ok_or_else(|| StorageError::Corrupt("channel id in name index".into()))?;
                let channel = load_channel(txn, existing)?;
                return Ok(Outcome::ChannelCreated {
                    channel,
                    members: Vec::new(),
                    existed: true,
                });
            }
            for user in &distinct {
                load_user(txn, *user)?;
            }
            if txn.exists(Cf::ChannelidChannel, &id_key(*id))? {
                return refuse(CommandError::IdExists(id.to_string()));
            }
            let channel = new_channel(
                *id,
                *at,
                Id::NONE,
                *channel_type,
                name.clone(),
                display_name.clone(),
                *creator_id,
            );
            insert_channel(txn, &channel)?;
            let mut added = Vec::new();
            for user in &distinct {
                added.push(put_new_channel_member(txn, &channel, *user, *at)?);
            }
            Ok(Outcome::ChannelCreated {
                channel,
                members: added,
                existed: false,
            })
        }
        Command::DeleteChannel { channel_id, at } => {
            let mut channel = load_live_channel(txn, *channel_id)?;
            channel.delete_at = *at;
            channel.update_at = *at;
            txn.put(Cf::ChannelidChannel, id_key(channel.id), &channel)?;
            Ok(Outcome::ChannelDeleted(channel))
        }
        Command::PatchChannel {
            channel_id,
            at,
            patch,
        } => channel_edits::patch(txn, *channel_id, *at, patch),
        Command::RestoreChannel { channel_id, at } => channel_edits::restore(txn, *channel_id, *at),
        Command::AddChannelMember {
            channel_id,
            user_id,
            at,
        } => {
            let channel = load_live_channel(txn, *channel_id)?;
            load_user(txn, *user_id)?;
            if channel.channel_type.is_teamless() {
                return refuse(CommandError::Invalid(
                    "members of direct and group channels are fixed".into(),
                ));
            }
            require_team_member(txn, channel.team_id, *user_id)?;
            if let Some(member) =
                txn.get::<ChannelMember>(Cf::ChannelidUseridMember, &id2(*channel_id, *user_id))?
            {
                return Ok(Outcome::ChannelMemberAdded {
                    member: member.settled(&channel),
                    channel,
                    existed: true,
                });
            }
            let member = put_new_channel_member(txn, &channel, *user_id, *at)?;
            Ok(Outcome::ChannelMemberAdded {
                channel,
                member,
                existed: false,
            })
        }
        Command::RemoveChannelMember {
            channel_id,
            user_id,
            at: _,
        } => {
            let channel = load_channel(txn, *channel_id)?;
            if channel.channel_type.is_teamless() {
                return refuse(CommandError::Invalid(
                    "members of direct and group channels are fixed".into(),
                ));
            }
            require_channel_member(txn, &channel, *user_id)?;
            txn.delete(Cf::ChannelidUseridMember, id2(channel.id, *user_id));
            wide_ignore::on_leave(txn, channel.id, *user_id);
            txn.delete(
                Cf::UseridTeamidChannelid,
                KeyBuf::new()
                    .id(*user_id)
                    .id(channel.team_id)
                    .id(channel.id)
                    .build(),
            );
            Ok(Outcome::ChannelMemberRemoved {
                channel,
                user_id: *user_id,
            })
        }
        Command::CreatePost {
            id,
            at,
            channel_id,
            user_id,
            root_id,
            message,
            post_type,
            props,
            pending_post_id,
            priority,
            file_ids,
            requested_ack,
            here_online,
            channel_wide_ignored,
        } => create_post(
            txn,
            NewPost {
                file_ids,
                requested_ack: *requested_ack,
                here_online,
                channel_wide_ignored: *channel_wide_ignored,
                id: *id,
                at: *at,
                channel_id: *channel_id,
                user_id: *user_id,
                root_id: *root_id,
                message,
                post_type,
                props,
                pending_post_id,
                priority,
            },
        ),
        Command::PatchPost {
            post_id,
            at,
            message,
            is_pinned,
            props,
            file_ids,
        } => {
            let mut post = load_live_post(txn, *post_id)?;
            let channel = load_channel(txn, post.channel_id)?;
            if let Some(wanted) = file_ids {
                let kept = post.file_ids.clone();
                let attached = files::attach(txn, &post, &channel, wanted, &kept, *at)?;
                post.file_ids = attached.iter().map(|f| f.id).collect();
                let removed: Vec<Id> = kept
                    .into_iter()
                    .filter(|id| !post.file_ids.contains(id))
                    .collect();
                files::detach(txn, &removed, *at)?;
            }
            if let Some(message) = message {
                validate::message(message)?;
                if *message != post.message {
                    let old = std::mem::replace(&mut post.message, message.clone());
                    post.edit_at = *at;
                    search::index::replace(txn, &old, &post);
                }
            }
            if let Some(is_pinned) = is_pinned {
                post.is_pinned = *is_pinned;
                pinned::set(txn, &post, *is_pinned);
            }
            if let Some(props) = props {
                validate::text("props", props, 800_000)?;
                post.props = props.clone();
            }
            touch_post(txn, &mut post, *at)?;
            Ok(Outcome::PostEdited { post, channel })
        }
        Command::DeletePost { post_id, at } => delete_post(txn, *post_id, *at),
        Command::AddReaction {
            post_id,
            user_id,
            emoji_name,
            at,
        } => {
            validate::emoji(emoji_name)?;
            let mut post = load_live_post(txn, *post_id)?;
            load_user(txn, *user_id)?;
            let channel = load_channel(txn, post.channel_id)?;
            let key = KeyBuf::new()
                .id(*post_id)
                .id(*user_id)
                .str(emoji_name)
                .build();
            if let Some(reaction) = txn.get::<Reaction>(Cf::PostidUseridEmojiReaction, &key)? {
                return Ok(Outcome::ReactionAdded {
                    reaction,
                    post,
                    channel,
                });
            }
            let reaction = Reaction {
                user_id: *user_id,
                post_id: *post_id,
                emoji_name: emoji_name.clone(),
                create_at: *at,
                channel_id: post.channel_id,
            };
            txn.put(Cf::PostidUseridEmojiReaction, key, &reaction)?;
            post.has_reactions = true;
            touch_post(txn, &mut post, *at)?;
            Ok(Outcome::ReactionAdded {
                reaction,
                post,
                channel,
            })
        }
        Command::RemoveReaction {
            post_id,
            user_id,
            emoji_name,
            at,
        } => {
            let mut post = load_post(txn, *post_id)?;
            let channel = load_channel(txn, post.channel_id)?;
            let key = KeyBuf::new()
                .id(*post_id)
                .id(*user_id)
                .str(emoji_name)
                .build();
            let Some(reaction) = txn.get::<Reaction>(Cf::PostidUseridEmojiReaction, &key)? else {
                return refuse(CommandError::not_found("reaction", emoji_name));
            };
            txn.delete(Cf::PostidUseridEmojiReaction, key);
            post.has_reactions = !txn
                .scan_prefix(Cf::PostidUseridEmojiReaction, post_id.as_bytes())?
                .is_empty();
            touch_post(txn, &mut post, *at)?;
            Ok(Outcome::ReactionRemoved {
                reaction,
                post,
                channel,
            })
        }
        Command::ViewChannel {
            user_id,
            channel_id,
            at,
            collapsed_threads_supported,
        } => {
            let channel = load_channel(txn, *channel_id)?;
            let mut member = require_channel_member(txn, &channel, *user_id)?;
            if member.mention_count > 0 || member.msg_count < channel.total_msg_count {
                // Something was unread: the user's devices may hold notifications to clear.
                notify::record(
                    txn,
                    &OutboxEntry::Clear {
                        user_id: *user_id,
                        channel_id: channel.id,
                        root_id: Id::NONE,
                    },
                )?;
            }
            member.last_viewed_at = member.last_viewed_at.max(channel.last_post_at);
            member.msg_count = channel.total_msg_count;
            member.msg_count_root = channel.total_msg_count_root;
            member.mention_count = 0;
            member.mention_count_root = 0;
            member.urgent_mention_count = 0;
            member.last_update_at = *at;
            if !collapsed_threads_supported {
                // A client without CRT reads every thread with the channel: one watermark.
                member.threads_viewed_at = (*at).max(channel.last_post_at);
                member.threads_viewed_seq = txn.index;
            }
            txn.put(
                Cf::ChannelidUseridMember,
                id2(channel.id, *user_id),
                &member,
            )?;
            Ok(Outcome::ChannelViewed { channel, member })
        }
        Command::SetPostUnread {
            user_id,
            post_id,
            at,
            collapsed_threads,
        } => {
            let post = load_live_post(txn, *post_id)?;
            let channel = load_channel(txn, post.channel_id)?;
            let mut member = require_channel_member(txn, &channel, *user_id)?;
            // Posts from this one on are unread: count them with a scan bounded to them, and
            // recount the mentions they carry.
            let lower = KeyBuf::new().id(channel.id).u64(post.create_at).build();
            let upper = crate::keys::prefix_end(channel.id.as_bytes());
            let unread = txn.scan_range(Cf::ChannelidCreateatPostid, &lower, upper.as_deref())?;
            let reader = load_user(txn, *user_id)?;
            let username = reader.username.clone();
            let their_keywords = keywords::of_user(&reader);
            let (mut unread_all, mut unread_root) = (0u64, 0u64);
            let (mut mentions, mut mentions_root, mut urgent) = (0u64, 0u64, 0u64);
            for (key, _) in &unread {
                let Some(id) = Id::from_slice(&key[24..]) else {
                    continue;
                };
                let other = load_post(txn, id)?;
                unread_all += 1;
                let is_root = other.is_root();
                if is_root {
                    unread_root += 1;
                }
                if other.user_id == *user_id {
                    continue;
                }
                let found = mentions::parse(&other.message);
                if found.channel_wide
                    || found.usernames.contains(&username)
                    || keywords::message_mentions(&other.message, &their_keywords)
                {
                    mentions += 1;
                    if is_root {
                        mentions_root += 1;
                    }
                    if other.priority == "urgent" {
                        urgent += 1;
                    }
                }
            }
            let _ = collapsed_threads;
            member.last_viewed_at = post.create_at.saturating_sub(1);
            member.msg_count = channel.total_msg_count.saturating_sub(unread_all);
            member.msg_count_root = channel.total_msg_count_root.saturating_sub(unread_root);
            member.mention_count = mentions;
            member.mention_count_root = mentions_root;
            member.urgent_mention_count = urgent;
            member.last_update_at = *at;
            txn.put(
                Cf::ChannelidUseridMember,
                id2(channel.id, *user_id),
                &member,
            )?;
            notify::record(txn, &OutboxEntry::UpdateBadge { user_id: *user_id })?;
            Ok(Outcome::PostMarkedUnread {
                channel,
                member,
                post_id: *post_id,
            })
        }
        Command::ReadThread {
            user_id,
            thread_id,
            timestamp,
            at,
        } => {
            let thread = load_thread(txn, *thread_id)?;
            let mut membership = membership_or_new(txn, &thread, *user_id, *at)?;
            let before = MembershipSnapshot::of(&membership, &thread);
            fold_watermarks(txn, &mut membership, &thread)?;
            let had_unread = membership.read.unread_replies > 0
                || membership
                    .read
                    .mention_times
                    .iter()
                    .any(|t| *t > membership.read.last_viewed);
            membership.read.last_viewed = *timestamp;
            membership.read.viewed_seq = txn.index;
            membership.read.unread_replies = count_replies_after(txn, thread.root_id, *timestamp)?;
            membership.read.mention_times.retain(|t| *t > *timestamp);
            membership.last_updated = *at;
            if had_unread && membership.read.unread_replies == 0 {
                // Read elsewhere: the user's devices clear the thread's notifications.
                notify::record(
                    txn,
                    &OutboxEntry::Clear {
                        user_id: *user_id,
                        channel_id: thread.channel_id,
                        root_id: thread.root_id,
                    },
                )?;
            }
            let view = write_membership(txn, &membership, &thread, before)?;
            Ok(Outcome::ThreadReadChanged {
                thread,
                membership: view,
            })
        }
        Command::SetThreadUnread {
            user_id,
            thread_id,
            post_id,
            at,
        } => {
            let thread = load_thread(txn, *thread_id)?;
            let post = load_live_post(txn, *post_id)?;
            if post.root_id != thread.root_id && post.id != thread.root_id {
                return refuse(CommandError::Invalid(format!(
                    "post {post_id} is not in thread {thread_id}"
                )));
            }
            let mut membership = membership_or_new(txn, &thread, *user_id, *at)?;
            let before = MembershipSnapshot::of(&membership, &thread);
            fold_watermarks(txn, &mut membership, &thread)?;
            let last_viewed = post.create_at.saturating_sub(1);
            membership.read.last_viewed = last_viewed;
            membership.read.viewed_seq = txn.index;
            membership.read.unread_replies = count_replies_after(txn, thread.root_id, last_viewed)?;
            membership.last_updated = *at;
            let view = write_membership(txn, &membership, &thread, before)?;
            Ok(Outcome::ThreadReadChanged {
                thread,
                membership: view,
            })
        }
        Command::FollowThread {
            user_id,
            thread_id,
            follow,
            at,
        } => {
            let thread = load_thread(txn, *thread_id)?;
            let channel = load_channel(txn, thread.channel_id)?;
            require_channel_member(txn, &channel, *user_id)?;
            let existing: Option<ThreadMembership> =
                txn.get(Cf::UseridThreadidMembership, &id2(*user_id, *thread_id))?;
            let is_new = existing.is_none();
            let mut membership = match existing {
                Some(m) => m,
                // Following a thread one never saw starts it read, as Mattermost does.
                None => new_membership(txn, &thread, *user_id, *at, *at),
            };
            let before = MembershipSnapshot::of(&membership, &thread);
            if *follow && !membership.following && !is_new {
                // Counters of a membership that was not following went stale: recount.
                fold_watermarks(txn, &mut membership, &thread)?;
                membership.read.unread_replies =
                    count_replies_after(txn, thread.root_id, membership.read.last_viewed)?;
            }
            membership.following = *follow;
            membership.unfollowed_explicitly = !*follow;
            membership.last_updated = *at;
            let view = write_membership(txn, &membership, &thread, before)?;
            Ok(Outcome::ThreadFollowChanged {
                thread,
                membership: view,
            })
        }
        Command::ReadAllThreads {
            user_id,
            team_id,
            at,
        } => {
            load_user(txn, *user_id)?;
            load_team(txn, *team_id)?;
            require_team_member(txn, *team_id, *user_id)?;
            let mark = ThreadsReadMark {
                at: *at,
                seq: txn.index,
            };
            // The team's threads and those of direct and group channels: two keys.
            txn.put(Cf::UseridTeamidThreadsread, id2(*user_id, *team_id), &mark)?;
            txn.put(Cf::UseridTeamidThreadsread, id2(*user_id, Id::NONE), &mark)?;
            Ok(Outcome::AllThreadsRead {
                user_id: *user_id,
                team_id: *team_id,
                at: *at,
            })
        }
        Command::UserTyping {
            user_id,
            channel_id,
            parent_id,
            at: _,
        } => {
            let channel = load_live_channel(txn, *channel_id)?;
            require_channel_member(txn, &channel, *user_id)?;
            Ok(Outcome::Typing {
                channel,
                user_id: *user_id,
                parent_id: *parent_id,
            })
        }
        Command::SavePreferences {
            user_id,
            preferences,
        } => preferences::save(txn, *user_id, preferences),
        Command::DeletePreferences { user_id, keys } => preferences::delete(txn, *user_id, keys),
        Command::UpsertDraft { draft } => drafts::upsert(txn, draft),
        Command::DeleteDraft {
            user_id,
            channel_id,
            root_id,
        } => drafts::delete(txn, *user_id, *channel_id, *root_id),
        Command::SetSidebar {
            user_id,
            team_id,
            categories,
        } => sidebar::set(txn, *user_id, *team_id, categories),
        Command::EmailsSent { entries } => email_queue::sent(txn, entries),
        Command::AttachDevice {
            token,
            device_id,
            expires_at,
        } => notify::attach_device(txn, *token, device_id, *expires_at),
        Command::SetChannelNotifyProps {
            channel_id,
            user_id,
            at,
            props,
        } => notify::set_channel_props(txn, *channel_id, *user_id, *at, props),
        Command::NotificationsDispatched {
            through,
            detach,
            queue_emails,
        } => {
            // A deposed leader's late mark queues nothing: the entries it covers were (or
            // will be) handled by the new leader.
            if *through > notify::current_mark(txn)? {
                email_queue::queue(txn, queue_emails)?;
            }
            notify::dispatched(txn, *through, detach)
        }
        Command::FileChunk {
            upload_id,
            at,
            index,
            bytes,
        } => files::chunk(txn, *upload_id, *at, *index, bytes),
        Command::FileCommit {
            upload_id,
            chunks,
            info,
            thumbnail,
            preview,
        } => files::commit(
            txn,
            files::Commit {
                upload: *upload_id,
                chunks: *chunks,
                info,
                thumbnail: thumbnail.as_deref().map(|b| &b[..]),
                preview: preview.as_deref().map(|b| &b[..]),
            },
        ),
        Command::AbortUploads { before } => files::abort(txn, *before),
        Command::AckPost {
            post_id,
            user_id,
            at,
        } => acks::ack(txn, *post_id, *user_id, *at),
        Command::UnackPost {
            post_id,
            user_id,
            at,
        } => acks::unack(txn, *post_id, *user_id, *at),
        Command::PatchTeam { team_id, at, patch } => teams::patch(txn, *team_id, *at, patch),
        Command::JoinTeamByInvite {
            invite_id,
            user_id,
            at,
        } => teams::join_by_invite(txn, invite_id, *user_id, *at),
        Command::SetTeamMemberAdmin {
            team_id,
            user_id,
            admin,
        } => teams::set_member_admin(txn, *team_id, *user_id, *admin),
        Command::SetChannelPrivacy {
            channel_id,
            at,
            channel_type,
        } => channel_edits::set_privacy(txn, *channel_id, *at, *channel_type),
        Command::SetChannelMemberAdmin {
            channel_id,
            user_id,
            at,
            admin,
        } => channel_edits::set_member_admin(txn, *channel_id, *user_id, *at, *admin),
        Command::SetProfileImage { user_id, at, png } => {
            images::set_profile_image(txn, *user_id, *at, png.as_ref().map(|b| b.as_slice()))
        }
        Command::CreateEmoji { emoji, image } => emoji::create(txn, emoji, image),
        Command::DeleteEmoji { id, at } => emoji::delete(txn, *id, *at),
        command @ (Command::SetStatus { .. }
        | Command::ExpireDnd { .. }
        | Command::StatusNotice { .. }
        | Command::SetCustomStatus { .. }
        | Command::RemoveRecentCustomStatus { .. }
        | Command::ExpireCustomStatus { .. }) => status::apply(txn, command),
        Command::PutIncomingHook { hook } => integrations::put_incoming(txn, hook),
        Command::DeleteIncomingHook { id } => {
            integrations::delete(txn, integrations::KIND_INCOMING, *id)
        }
        Command::PutOutgoingHook { hook } => integrations::put_outgoing(txn, hook),
        Command::DeleteOutgoingHook { id } => {
            integrations::delete(txn, integrations::KIND_OUTGOING, *id)
        }
        Command::PutSlashCommand { command } => integrations::put_command(txn, command),
        Command::DeleteSlashCommand { id } => {
            integrations::delete(txn, integrations::KIND_COMMAND, *id)
        }
        Command::CreateAccessToken { token, at } => integrations::create_token(txn, token, *at),
        Command::SetAccessTokenActive { id, active, at } => {
            integrations::set_token_active(txn, *id, *active, *at)
        }
        Command::RevokeAccessToken { id } => integrations::revoke_token(txn, *id),
        Command::CreateBot {
            bot,
            username,
            display_name,
        } => {
            // A bot is created as a user is (same name rules and indexes), then marked.
            let user = Command::CreateUser {
                id: bot.user_id,
                at: bot.create_at,
                username: username.clone(),
                email: format!("{}@localhost", username.to_lowercase()),
                password_hash: String::new(),
                nickname: String::new(),
                first_name: display_name.clone(),
                last_name: String::new(),
                roles: "system_user".into(),
            };
            let Outcome::UserCreated(mut user) = apply_command(txn, &user)? else {
                return Err(StorageError::Corrupt("creating a bot user".into()));
            };
            user.is_bot = true;
            user.roles = "system_user".into();
            txn.put(Cf::UseridUser, id_key(user.id), &user)?;
            integrations::put_bot(txn, bot)?;
            Ok(Outcome::UserCreated(user))
        }
        Command::PutBot { bot } => integrations::put_bot(txn, bot),
        Command::EphemeralPost { user_id, post } => {
            validate::text("post", post, 1 << 20)?;
            Ok(Outcome::Ephemeral {
                user_id: *user_id,
                post: post.clone(),
            })
        }
        Command::OutgoingHooksDispatched { through } => integrations::dispatched(txn, *through),
        Command::HookCallsDone { through, calls } => integrations::calls_done(txn, *through, calls),
        Command::SessionExpiriesNotified { through } => session_expiry::notified(txn, *through),
        Command::CreateCommandHook { hook } => integrations::create_command_hook(txn, hook),
        Command::UseCommandHook { id, at } => integrations::use_command_hook(txn, *id, *at),
    }
}

struct NewPost<'a> {
    id: Id,
    at: u64,
    channel_id: Id,
    user_id: Id,
    root_id: Option<Id>,
    message: &'a str,
    post_type: &'a str,
    props: &'a str,
    pending_post_id: &'a str,
    priority: &'a str,
    file_ids: &'a [Id],
    requested_ack: bool,
    here_online: &'a [Id],
    channel_wide_ignored: bool,
}

fn create_post(txn: &mut Txn, new: NewPost) -> Step<Outcome> {
    validate::message(new.message)?;
    validate::text("props", new.props, 800_000)?;
    validate::pending_post_id(new.pending_post_id)?;
    // A retry is answered as the first attempt was, before anything else is checked: it is the
    // same request, and it must not make a second post whatever changed in between.
    if let Some(existing) = dedup::find(txn, new.user_id, new.pending_post_id, new.at)? {
        return post_existed(txn, existing);
    }
    let mut channel = load_live_channel(txn, new.channel_id)?;
    let author = load_user(txn, new.user_id)?;
    let mut author_member = require_channel_member(txn, &channel, new.user_id)?;
    if txn.exists(Cf::PostidPost, &id_key(new.id))? {
        return refuse(CommandError::IdExists(new.id.to_string()));
    }
    let root = match new.root_id.filter(|r| !r.is_none()) {
        Some(root_id) => {
            let root = load_live_post(txn, root_id)?;
            if root.channel_id != channel.id || !root.is_root() {
                return refuse(CommandError::Invalid(format!(
                    "root {root_id} is not a root post of this channel"
                )));
            }
            Some(root)
        }
        None => None,
    };
    // Post times are unique and increasing within a channel, so "from this post on" (unread
    // cursors, since, before/after) never ties with a neighbour created in the same millisecond.
    let at = new.at.max(channel.last_post_at.saturating_add(1));
    let mut post = Post {
        id: new.id,
        create_at: at,
        update_at: at,
        edit_at: 0,
        delete_at: 0,
        is_pinned: false,
        user_id: new.user_id,
        channel_id: channel.id,
        root_id: root.as_ref().map(|r| r.id).unwrap_or(Id::NONE),
        message: new.message.to_string(),
        post_type: new.post_type.to_string(),
        props: new.props.to_string(),
        pending_post_id: new.pending_post_id.to_string(),
        has_reactions: false,
        priority: new.priority.to_string(),
        file_ids: Vec::new(),
        requested_ack: new.requested_ack && new.root_id.is_none(),
        ack_count: 0,
        search_number: None,
    };
    let attached = files::attach(txn, &post, &channel, new.file_ids, &[], at)?;
    post.file_ids = attached.iter().map(|f| f.id).collect();
    let adjacent_words = search::index::add(txn, &mut channel, &mut post);
    txn.put(Cf::PostidPost, id_key(post.id), &post)?;
    dedup::record(txn, post.user_id, &post.pending_post_id, post.id, at)?;
    dedup::purge_expired(txn, new.at)?;
    let time_key = KeyBuf::new().id(channel.id).u64(at).id(post.id).build();
    txn.put_raw(
        Cf::ChannelidCreateatPostid,
        time_key.clone(),
        adjacent_words,
    );
    txn.put_raw(Cf::ChannelidUpdateatPostid, time_key.clone(), Vec::new());
    if post.is_root() {
        txn.put_raw(Cf::ChannelidRootcreateatPostid, time_key, Vec::new());
    } else {
        let reply_key = KeyBuf::new().id(post.root_id).u64(at).id(post.id).build();
        txn.put_raw(Cf::RootidCreateatPostid, reply_key, Vec::new());
    }

    // Channel totals, and the author has read everything up to their own post.
    channel.total_msg_count += 1;
    channel.last_post_at = channel.last_post_at.max(at);
    if post.is_root() {
        channel.total_msg_count_root += 1;
        channel.last_root_post_at = channel.last_root_post_at.max(at);
    }
    channel.update_at = channel.update_at.max(at);

    // Mentions count for channel members other than the author. Members named (or matched by
    // a keyword) are counted in their records, settled against the channel as it was, so a
    // post that also says `@channel` counts once for them; `@channel`/`@all` is counted once
    // on the channel, and every other member folds it in when read.
    let mut found = mentions::parse(new.message);
    // In a channel too big for channel-wide mentions they mention nobody, as in Mattermost.
    found.channel_wide &= !new.channel_wide_ignored;
    let named = resolve_named_mentions(txn, channel.id, &found, new.message, author.id)?;
    // `@here` alone reaches the members its node saw online: they are counted like the named
    // (one record each), and the channel's wide counter stays for `@channel`/`@all`.
    let here_only = found.channel_wide && !found.everyone;
    // Members who turned channel-wide mentions off are not mentioned by them at all.
    let wide_ignored = if found.channel_wide {
        wide_ignore::ignorers(txn, channel.id)?
    } else {
        BTreeSet::new()
    };
    let mut counted = named.clone();
    if here_only {
        counted.extend(
            new.here_online
                .iter()
                .filter(|u| **u != author.id && !wide_ignored.contains(u)),
        );
    }
    let mut named_members = Vec::with_capacity(counted.len());
    for user in &counted {
        let key = id2(channel.id, *user);
        let Some(member) = txn.get::<ChannelMember>(Cf::ChannelidUseridMember, &key)? else {
            continue;
        };
        let mut member = member.settled(&channel);
        member.mention_count += 1;
        if post.is_root() {
            member.mention_count_root += 1;
        }
        if post.priority == "urgent" {
            member.urgent_mention_count += 1;
        }
        member.last_update_at = at;
        named_members.push(member);
    }
    if found.channel_wide && !here_only {
        channel.wide_mentions.all += 1;
        if post.is_root() {
            channel.wide_mentions.root += 1;
        }
        if post.priority == "urgent" {
            channel.wide_mentions.urgent += 1;
        }
        channel.last_wide_mention_at = at;
    }
    txn.put(Cf::ChannelidChannel, id_key(channel.id), &channel)?;
    // The author's record was settled before this post, and passes over its own mention.
    author_member.wide_seen = channel.wide_mentions;
    author_member.last_viewed_at = at;
    author_member.msg_count = channel.total_msg_count;
    author_member.msg_count_root = channel.total_msg_count_root;
    author_member.last_update_at = at;
    txn.put(
        Cf::ChannelidUseridMember,
        id2(channel.id, author.id),
        &author_member,
    )?;
    let mut channel_members = vec![author_member];
    for mut member in named_members {
        member.wide_seen = channel.wide_mentions;
        txn.put(
            Cf::ChannelidUseridMember,
            id2(channel.id, member.user_id),
            &member,
        )?;
        channel_members.push(member);
    }

    let (root, thread, followers, memberships) = match root {
        Some(root) => {
            // A reply's channel-wide mention makes every member a follower (`@here` the
            // members it reached): thread state is per user, so here the members are listed.
            let mut mentioned = counted.clone();
            if found.channel_wide && !here_only {
                mentioned.extend(channel_wide_members(txn, channel.id, &wide_ignored)?);
            }
            mentioned.remove(&author.id);
            let (root, thread, followers, memberships) =
                record_reply(txn, root, &post, &channel, &mentioned)?;
            (Some(root), Some(thread), followers, memberships)
        }
        None => (None, None, Vec::new(), Vec::new()),
    };
    if !post.post_type.starts_with("system_") {
        record_notification(txn, &post, &channel, &found, &named, &followers)?;
    }
    integrations::record_hook_calls(txn, &post, &channel)?;
    Ok(Outcome::Posted(Box::new(Posted {
        post,
        channel,
        root,
        thread,
        mentions: counted.into_iter().collect(),
        channel_wide: found.channel_wide && !here_only,
        wide_ignored: if here_only {
            Vec::new()
        } else {
            wide_ignored.into_iter().collect()
        },
        followers,
        memberships,
        channel_members,
        files: attached,
    })))
}

/// The answer to a create-post retry: the original post, unchanged. A deleted original is a
/// refusal (as a read of it would be), never a reason to post again.
fn post_existed(txn: &mut Txn, post_id: Id) -> Step<Outcome> {
    let post = load_live_post(txn, post_id)?;
    let root = if post.is_root() {
        post.id
    } else {
        post.root_id
    };
    let thread = txn.get(Cf::ThreadidThread, &id_key(root))?;
    Ok(Outcome::PostExisted { post, thread })
}

/// CRT bookkeeping for a reply: the thread, its participants and every follower's membership.
fn record_reply(
    txn: &mut Txn,
    mut root: Post,
    reply: &Post,
    channel: &Channel,
    mentioned: &BTreeSet<Id>,
) -> Step<(Post, Thread, Vec<Id>, Vec<MembershipView>)> {
    let at = reply.create_at;
    let existing: Option<Thread> = txn.get(Cf::ThreadidThread, &id_key(root.id))?;
    let first_reply = existing.is_none();
    let mut thread = existing.unwrap_or(Thread {
        root_id: root.id,
        channel_id: channel.id,
        team_id: channel.team_id,
        reply_count: 0,
        last_reply_at: 0,
        participants: Vec::new(),
        delete_at: 0,
        urgent: root.priority == "urgent",
    });
    let previous_last_reply_at = thread.last_reply_at;
    thread.reply_count += 1;
    thread.last_reply_at = thread.last_reply_at.max(at);
    thread.participants.retain(|p| *p != reply.user_id);
    thread.participants.push(reply.user_id);
    txn.put(Cf::ThreadidThread, id_key(root.id), &thread)?;
    touch_post(txn, &mut root, at)?;

    // Who follows after this reply: current followers, plus the replier, the root's author and
    // the mentioned (those in the root count when the thread is born).
    let mut candidates: BTreeSet<Id> = txn
        .scan_prefix(Cf::ThreadidUseridFollower, root.id.as_bytes())?
        .into_iter()
        .filter_map(|(key, _)| Id::from_slice(&key[16..]))
        .collect();
    let mut mentioned_here = mentioned.clone();
    if first_reply {
        mentioned_here.extend(resolve_mentions(txn, channel, &root.message, root.user_id)?);
    }
    candidates.insert(reply.user_id);
    candidates.insert(root.user_id);
    candidates.extend(mentioned_here.iter().copied());

    let mut followers = Vec::new();
    let mut views = Vec::new();
    for user in candidates {
        let existing: Option<ThreadMembership> =
            txn.get(Cf::UseridThreadidMembership, &id2(user, root.id))?;
        let is_replier = user == reply.user_id;
        let is_mentioned = mentioned_here.contains(&user);
        let mut membership = match existing {
            Some(m) => m,
            None => {
                if !is_replier
                    && txn
                        .get_raw(Cf::ChannelidUseridMember, &id2(channel.id, user))?
                        .is_none()
                {
                    continue; // the root's author may have left the channel
                }
                // A new follower has seen nothing of the thread yet.
                let mut m = new_membership(txn, &thread, user, at, 0);
                m.read.unread_replies = thread.reply_count - 1;
                m
            }
        };
        let before = MembershipSnapshot {
            following: membership.following,
            last_reply_at: previous_last_reply_at,
        };
        if membership.unfollowed_explicitly && !is_mentioned && !is_replier {
            continue; // an explicit unfollow sticks unless mentioned again
        }
        if !membership.following {
            // Counters of a membership that was not following are stale.
            membership.read.unread_replies =
                count_replies_after(txn, root.id, membership.read.last_viewed)?.saturating_sub(1);
        }
        membership.following = true;
        membership.unfollowed_explicitly = false;
        membership.last_updated = at;
        if is_replier {
            membership.read = ThreadRead {
                last_viewed: at,
                viewed_seq: txn.index,
                unread_replies: 0,
                mention_times: Vec::new(),
            };
        } else {
            let marks = Watermarks::load(txn, user, channel.id, channel.team_id)?;
            // A recount already includes this reply; otherwise add it.
            let recounted =
                threads::normalize(txn, &mut membership.read, &marks, root.id, txn.index)?;
            if !recounted {
                membership.read.unread_replies += 1;
            }
            // Only this reply's mentions count (Mattermost's stored counter): a mention in the
            // root made the user a follower, it is not a mention in the thread.
            if mentioned.contains(&user) {
                membership.read.mention_times.push(at);
            }
        }
        followers.push(user);
        views.push(write_membership(txn, &membership, &thread, before)?);
    }
    Ok((root, thread, followers, views))
}

fn delete_post(txn: &mut Txn, post_id: Id, at: u64) -> Step<Outcome> {
    let mut post = load_live_post(txn, post_id)?;
    let channel = load_channel(txn, post.channel_id)?;
    let mut deleted_replies = Vec::new();
    let thread = if post.is_root() {
        // Deleting a root deletes its replies, and the thread with them.
        for (key, _) in txn.scan_prefix(Cf::RootidCreateatPostid, post.id.as_bytes())? {
            let Some(reply_id) = Id::from_slice(&key[24..]) else {
                continue;
            };
            let mut reply = load_post(txn, reply_id)?;
            soft_delete(txn, &mut reply, at)?;
            deleted_replies.push(reply_id);
        }
        soft_delete(txn, &mut post, at)?;
        match txn.get::<Thread>(Cf::ThreadidThread, &id_key(post.id))? {
            Some(mut thread) => {
                thread.delete_at = at;
                thread.reply_count = 0;
                txn.put(Cf::ThreadidThread, id_key(thread.root_id), &thread)?;
                mark_followers_deleted(txn, &thread)?;
                Some(thread)
            }
            None => None,
        }
    } else {
        soft_delete(txn, &mut post, at)?;
        let mut thread = load_thread(txn, post.root_id)?;
        let before_last = thread.last_reply_at;
        thread.reply_count = thread.reply_count.saturating_sub(1);
        // The newest remaining reply decides last_reply_at (replies of this one thread).
        let remaining = txn.scan_prefix(Cf::RootidCreateatPostid, thread.root_id.as_bytes())?;
        thread.last_reply_at = remaining
            .last()
            .and_then(|(key, _)| crate::keys::KeyReader::new(&key[16..]).u64())
            .unwrap_or(0);
        txn.put(Cf::ThreadidThread, id_key(thread.root_id), &thread)?;
        let followers = txn.scan_prefix(Cf::ThreadidUseridFollower, thread.root_id.as_bytes())?;
        for (key, _) in followers {
            let Some(user) = Id::from_slice(&key[16..]) else {
                continue;
            };
            let Some(mut membership) = txn.get::<ThreadMembership>(
                Cf::UseridThreadidMembership,
                &id2(user, thread.root_id),
            )?
            else {
                continue;
            };
            let before = MembershipSnapshot {
                following: membership.following,
                last_reply_at: before_last,
            };
            if post.create_at > membership.read.last_viewed {
                membership.read.unread_replies = membership.read.unread_replies.saturating_sub(1);
            }
            write_membership(txn, &membership, &thread, before)?;
        }
        Some(thread)
    };
    Ok(Outcome::PostDeleted {
        post,
        channel,
        thread,
        deleted_replies,
    })
}

fn mark_followers_deleted(txn: &mut Txn, thread: &Thread) -> Step<()> {
    for (key, _) in txn.scan_prefix(Cf::ThreadidUseridFollower, thread.root_id.as_bytes())? {
        let Some(user) = Id::from_slice(&key[16..]) else {
            continue;
        };
        if let Some(mut membership) =
            txn.get::<ThreadMembership>(Cf::UseridThreadidMembership, &id2(user, thread.root_id))?
        {
            // Every reply went with the root.
            membership.read.unread_replies = 0;
            let before = MembershipSnapshot {
                following: membership.following,
                last_reply_at: thread.last_reply_at,
            };
            write_membership(txn, &membership, thread, before)?;
        }
    }
    Ok(())
}

/// Removes a post from the time indexes and marks it deleted.
fn soft_delete(txn: &mut Txn, post: &mut Post, at: u64) -> Step<()> {
    files::delete_with_post(txn, post, at)?;
    let time_key = post_time_key(post);
    txn.delete(Cf::ChannelidCreateatPostid, time_key.clone());
    if post.is_root() {
        txn.delete(Cf::ChannelidRootcreateatPostid, time_key);
    } else {
        txn.delete(
            Cf::RootidCreateatPostid,
            KeyBuf::new()
                .id(post.root_id)
                .u64(post.create_at)
                .id(post.id)
                .build(),
        );
    }
    search::index::remove(txn, post);
    if post.is_pinned {
        pinned::set(txn, post, false);
    }
    post.delete_at = at;
    touch_post(txn, post, at)
}

/// Saves a post whose `update_at` moves to `at`, keeping the update-time index in step.
pub(crate) fn touch_post(txn: &mut Txn, post: &mut Post, at: u64) -> Step<()> {
    let new_update_at = post.update_at.max(at);
    if new_update_at != post.update_at {
        txn.delete(
            Cf::ChannelidUpdateatPostid,
            KeyBuf::new()
                .id(post.channel_id)
                .u64(post.update_at)
                .id(post.id)
                .build(),
        );
        post.update_at = new_update_at;
        txn.put_raw(
            Cf::ChannelidUpdateatPostid,
            KeyBuf::new()
                .id(post.channel_id)
                .u64(post.update_at)
                .id(post.id)
                .build(),
            Vec::new(),
        );
    }
    txn.put(Cf::PostidPost, id_key(post.id), post)?;
    Ok(())
}

/// The post's outbox entry: who might be notified, as far as the replicated state says.
fn record_notification(
    txn: &mut Txn,
    post: &Post,
    channel: &Channel,
    found: &mentions::Mentions,
    named: &BTreeSet<Id>,
    followers: &[Id],
) -> Step<()> {
    let author = post.user_id;
    let channel_wide = match (found.channel_wide, found.everyone) {
        (false, _) => ChannelWide::None,
        (true, true) => ChannelWide::All,
        (true, false) => ChannelWide::Here,
    };
    notify::record(
        txn,
        &OutboxEntry::Post {
            post_id: post.id,
            channel_id: channel.id,
            sender_id: author,
            root_id: post.root_id,
            mentioned: named.iter().copied().collect(),
            channel_wide,
            followers: followers.iter().copied().filter(|f| *f != author).collect(),
        },
    )
}

/// The channel members a message mentions, without its author: every member for a
/// channel-wide mention.
fn resolve_mentions(
    txn: &mut Txn,
    channel: &Channel,
    message: &str,
    author: Id,
) -> Step<BTreeSet<Id>> {
    let found = mentions::parse(message);
    let mut users = resolve_named_mentions(txn, channel.id, &found, message, author)?;
    if found.channel_wide {
        let ignored = wide_ignore::ignorers(txn, channel.id)?;
        users.extend(channel_wide_members(txn, channel.id, &ignored)?);
        users.remove(&author);
    }
    Ok(users)
}

/// The members a channel-wide mention mentions: one range of the channel's member family,
/// without those who ignore such mentions (`ignored`, [`wide_ignore::ignorers`]).
fn channel_wide_members(txn: &mut Txn, channel: Id, ignored: &BTreeSet<Id>) -> Step<Vec<Id>> {
    Ok(txn
        .scan_prefix(Cf::ChannelidUseridMember, channel.as_bytes())?
        .into_iter()
        .filter_map(|(key, _)| Id::from_slice(&key[16..]))
        .filter(|user| !ignored.contains(user))
        .collect())
}

/// The channel members a message names, by `@username` or by one of their mention keywords,
/// without its author (a channel-wide mention is not expanded).
fn resolve_named_mentions(
    txn: &mut Txn,
    channel: Id,
    found: &mentions::Mentions,
    message: &str,
    author: Id,
) -> Step<BTreeSet<Id>> {
    let mut users = BTreeSet::new();
    for name in &found.usernames {
        let Some(raw) = txn.get_raw(Cf::UsernameUserid, name.as_bytes())? else {
            continue;
        };
        let Some(user) = Id::from_slice(&raw) else {
            continue;
        };
        if txn.exists(Cf::ChannelidUseridMember, &id2(channel, user))? {
            users.insert(user);
        }
    }
    users.extend(keywords::mentioned_members(txn, channel, message)?);
    users.remove(&author);
    Ok(users)
}

/// Folds newer watermarks into a membership before its read position is set explicitly, so the
/// mentions they made read stay read (lazy folding then equals eager marking of every thread).
fn fold_watermarks(txn: &mut Txn, membership: &mut ThreadMembership, thread: &Thread) -> Step<()> {
    let marks = Watermarks::load(txn, membership.user_id, thread.channel_id, thread.team_id)?;
    threads::normalize(txn, &mut membership.read, &marks, thread.root_id, txn.index)?;
    Ok(())
}

/// Where a membership stood in the ordered index before a change.
#[derive(Clone, Copy)]
struct MembershipSnapshot {
    following: bool,
    last_reply_at: u64,
}

impl MembershipSnapshot {
    fn of(membership: &ThreadMembership, thread: &Thread) -> MembershipSnapshot {
        MembershipSnapshot {
            following: membership.following,
            last_reply_at: thread.last_reply_at,
        }
    }
}

fn thread_index_key(user: Id, team: Id, last_reply_at: u64, thread: Id) -> Vec<u8> {
    KeyBuf::new()
        .id(user)
        .id(team)
        .rev_u64(last_reply_at)
        .id(thread)
        .build()
}

/// Writes a membership and keeps the follower set and the user's ordered thread index in step.
fn write_membership(
    txn: &mut Txn,
    membership: &ThreadMembership,
    thread: &Thread,
    before: MembershipSnapshot,
) -> Step<MembershipView> {
    let user = membership.user_id;
    txn.put(
        Cf::UseridThreadidMembership,
        id2(user, thread.root_id),
        membership,
    )?;
    let old_key = thread_index_key(user, thread.team_id, before.last_reply_at, thread.root_id);
    let new_key = thread_index_key(user, thread.team_id, thread.last_reply_at, thread.root_id);
    if before.following && old_key != new_key {
        txn.delete(Cf::UseridTeamidReplyatThreadid, old_key);
    }
    if membership.following {
        let entry = ThreadIndexEntry {
            channel_id: thread.channel_id,
            read: membership.read.clone(),
            thread_deleted: thread.delete_at != 0,
            urgent: thread.urgent,
        };
        txn.put(Cf::UseridTeamidReplyatThreadid, new_key, &entry)?;
        if !before.following {
            txn.put_raw(
                Cf::ThreadidUseridFollower,
                id2(thread.root_id, user),
                Vec::new(),
            );
        }
    } else if before.following {
        txn.delete(Cf::UseridTeamidReplyatThreadid, new_key);
        txn.delete(Cf::ThreadidUseridFollower, id2(thread.root_id, user));
    }
    let marks = Watermarks::load(txn, user, thread.channel_id, thread.team_id)?;
    let view = threads::view(
        txn,
        &membership.read,
        membership.following,
        &marks,
        thread.root_id,
    )?;
    Ok(MembershipView::new(membership.clone(), view))
}

fn new_membership(
    txn: &Txn,
    thread: &Thread,
    user: Id,
    at: u64,
    last_viewed: u64,
) -> ThreadMembership {
    ThreadMembership {
        user_id: user,
        thread_id: thread.root_id,
        channel_id: thread.channel_id,
        team_id: thread.team_id,
        following: false,
        unfollowed_explicitly: false,
        last_updated: at,
        read: ThreadRead {
            last_viewed,
            viewed_seq: txn.index,
            unread_replies: 0,
            mention_times: Vec::new(),
        },
    }
}

/// The user's membership of a thread they may see, created (not following) when missing.
fn membership_or_new(txn: &mut Txn, thread: &Thread, user: Id, at: u64) -> Step<ThreadMembership> {
    let channel = load_channel(txn, thread.channel_id)?;
    require_channel_member(txn, &channel, user)?;
    Ok(
        match txn
            .get::<ThreadMembership>(Cf::UseridThreadidMembership, &id2(user, thread.root_id))?
        {
            Some(m) => m,
            None => new_membership(txn, thread, user, at, 0),
        },
    )
}

/// A channel with no posts yet, created at `at`.
fn new_channel(
    id: Id,
    at: u64,
    team_id: Id,
    channel_type: ChannelType,
    name: String,
    display_name: String,
    creator_id: Id,
) -> Channel {
    Channel {
        id,
        create_at: at,
        update_at: at,
        delete_at: 0,
        team_id,
        channel_type,
        display_name,
        name,
        header: String::new(),
        purpose: String::new(),
        last_post_at: at,
        last_root_post_at: at,
        total_msg_count: 0,
        total_msg_count_root: 0,
        creator_id,
        wide_mentions: WideMentions::default(),
        last_wide_mention_at: 0,
        next_post_number: Some(0),
    }
}

fn insert_channel(txn: &mut Txn, channel: &Channel) -> Step<()> {
    let name_key = KeyBuf::new().id(channel.team_id).str(&channel.name).build();
    if txn.exists(Cf::TeamidChannelnameChannelid, &name_key)? {
        return refuse(CommandError::ChannelNameTaken(channel.name.clone()));
    }
    if txn.exists(Cf::ChannelidChannel, &id_key(channel.id))? {
        return refuse(CommandError::IdExists(channel.id.to_string()));
    }
    txn.put(Cf::ChannelidChannel, id_key(channel.id), channel)?;
    txn.put_raw(Cf::TeamidChannelnameChannelid, name_key, id_key(channel.id));
    Ok(())
}

fn put_new_channel_member(
    txn: &mut Txn,
    channel: &Channel,
    user: Id,
    at: u64,
) -> Step<ChannelMember> {
    let profile: Option<User> = txn.get(Cf::UseridUser, &id_key(user))?;
    let mut member = ChannelMember {
        channel_id: channel.id,
        user_id: user,
        roles: "channel_user".into(),
        last_viewed_at: 0,
        msg_count: 0,
        msg_count_root: 0,
        mention_count: 0,
        mention_count_root: 0,
        urgent_mention_count: 0,
        last_update_at: at,
        threads_viewed_at: 0,
        threads_viewed_seq: 0,
        notify_props: NotifyProps::new(),
        // Channel-wide mentions from before joining are not this member's.
        wide_seen: channel.wide_mentions,
        ignores_channel_wide: false,
    };
    if let Some(profile) = &profile {
        wide_ignore::on_join(txn, &mut member, profile);
    }
    txn.put(Cf::ChannelidUseridMember, id2(channel.id, user), &member)?;
    txn.put_raw(
        Cf::UseridTeamidChannelid,
        KeyBuf::new()
            .id(user)
            .id(channel.team_id)
            .id(channel.id)
            .build(),
        Vec::new(),
    );
    Ok(member)
}

/// Adds a user to a team and to its default channels (a member already is no error: the
/// outcome says it `existed`).
pub(crate) fn add_team_member(txn: &mut Txn, team: &Team, user_id: Id, at: u64) -> Step<Outcome> {
    load_user(txn, user_id)?;
    if let Some(member) = txn.get::<TeamMember>(Cf::TeamidUseridMember, &id2(team.id, user_id))? {
        return Ok(Outcome::TeamMemberAdded {
            member,
            channels: Vec::new(),
            existed: true,
        });
    }
    let member = put_team_member(txn, team.id, user_id, "team_user")?;
    let mut channels = Vec::new();
    for default in ["town-square", "off-topic"] {
        let key = KeyBuf::new().id(team.id).str(default).build();
        let Some(raw) = txn.get_raw(Cf::TeamidChannelnameChannelid, &key)? else {
            continue;
        };
        let Some(channel_id) = Id::from_slice(&raw) else {
            continue;
        };
        let channel = load_channel(txn, channel_id)?;
        if channel.delete_at != 0
            || txn.exists(Cf::ChannelidUseridMember, &id2(channel.id, user_id))?
        {
            continue;
        }
        let member = put_new_channel_member(txn, &channel, user_id, at)?;
        channels.push((channel, member));
    }
    Ok(Outcome::TeamMemberAdded {
        member,
        channels,
        existed: false,
    })
}

fn put_team_member(txn: &mut Txn, team: Id, user: Id, roles: &str) -> Step<TeamMember> {
    let member = TeamMember {
        team_id: team,
        user_id: user,
        roles: roles.into(),
        delete_at: 0,
    };
    txn.put(Cf::TeamidUseridMember, id2(team, user), &member)?;
    txn.put_raw(Cf::UseridTeamid, id2(user, team), Vec::new());
    Ok(member)
}

/// A record by id, or the command's typed "not found".
fn load<T: serde::de::DeserializeOwned>(txn: &mut Txn, cf: Cf, kind: &str, id: Id) -> Step<T> {
    txn.get(cf, &id_key(id))?
        .ok_or_else(|| CommandError::not_found(kind, id).into())
}

pub(crate) fn load_user(txn: &mut Txn, id: Id) -> Step<User> {
    load(txn, Cf::UseridUser, "user", id)
}

pub(crate) fn load_team(txn: &mut Txn, id: Id) -> Step<Team> {
    load(txn, Cf::TeamidTeam, "team", id)
}

pub(crate) fn load_channel(txn: &mut Txn, id: Id) -> Step<Channel> {
    load(txn, Cf::ChannelidChannel, "channel", id)
}

fn load_post(txn: &mut Txn, id: Id) -> Step<Post> {
    load(txn, Cf::PostidPost, "post", id)
}

fn load_thread(txn: &mut Txn, id: Id) -> Step<Thread> {
    load(txn, Cf::ThreadidThread, "thread", id)
}

/// A record that must also not be soft-deleted.
fn live<T>(record: T, delete_at: impl Fn(&T) -> u64, what: String) -> Step<T> {
    if delete_at(&record) != 0 {
        return refuse(CommandError::Deleted(what));
    }
    Ok(record)
}

pub(crate) fn load_live_channel(txn: &mut Txn, id: Id) -> Step<Channel> {
    live(
        load_channel(txn, id)?,
        |c| c.delete_at,
        format!("channel {id}"),
    )
}

pub(crate) fn load_live_post(txn: &mut Txn, id: Id) -> Step<Post> {
    live(load_post(txn, id)?, |p| p.delete_at, format!("post {id}"))
}

fn require_team_member(txn: &mut Txn, team: Id, user: Id) -> Step<TeamMember> {
    txn.get(Cf::TeamidUseridMember, &id2(team, user))?
        .ok_or_else(|| {
            CommandError::NotMember {
                user: user.to_string(),
                of: format!("team {team}"),
            }
            .into()
        })
}

/// A member's record, settled against `channel` (which must be the channel as it stands), so
/// that what the caller writes back and returns holds every channel-wide mention so far.
fn require_channel_member(txn: &mut Txn, channel: &Channel, user: Id) -> Step<ChannelMember> {
    txn.get::<ChannelMember>(Cf::ChannelidUseridMember, &id2(channel.id, user))?
        .map(|member| member.settled(channel))
        .ok_or_else(|| {
            CommandError::NotMember {
                user: user.to_string(),
                of: format!("channel {}", channel.id),
            }
            .into()
        })
}

/// A new user's roles: those asked for, with `system_admin` granted to the first user only.
/// Decided at apply, in log order, so two sign-ups racing to be first cannot both become admins.
fn new_user_roles(asked: &str, first: bool) -> String {
    let mut roles: Vec<&str> = asked
        .split_whitespace()
        .filter(|role| *role != "system_admin")
        .collect();
    if first {
        roles.push("system_admin");
    }
    roles.join(" ")
}
