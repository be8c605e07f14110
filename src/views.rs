//! Mattermost's JSON shapes for confab's records. One place turns a stored record into what
//! clients read, for REST answers and WebSocket events alike.

use confab_storage::{
    Channel, ChannelMember, ChannelUnread, Id, Post, PostPage, Reaction, Team, TeamMember,
    ThreadItem, ThreadList, User,
};
use serde_json::{json, Map, Value};

pub fn id(id: Id) -> String {
    id.to_base32()
}

/// Empty string for "none" ids (root_id of a root post, team_id of a DM).
pub fn opt_id(value: Id) -> String {
    if value.is_none() {
        String::new()
    } else {
        value.to_base32()
    }
}

fn props(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}

/// A user as others see it; `sanitize` drops the email for everyone but the user and admins.
pub fn user(user: &User, sanitize: bool) -> Value {
    json!({
        "id": id(user.id),
        "create_at": user.create_at,
        "update_at": user.update_at,
        "delete_at": user.delete_at,
        "username": user.username,
        "auth_data": "",
        "auth_service": "",
        "email": if sanitize { "" } else { user.email.as_str() },
        "email_verified": true,
        "nickname": user.nickname,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "position": user.position,
        "roles": user.roles,
        "props": {},
        "notify_props": {
            "channel": "true", "comments": "never", "desktop": "mention",
            "desktop_sound": "true", "email": "true", "first_name": "false",
            "mention_keys": "", "push": "mention", "push_status": "away"
        },
        "last_password_update": user.create_at,
        "locale": user.locale,
        "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
        "is_bot": user.is_bot,
        "disable_welcome_email": false,
    })
}

pub fn team(team: &Team) -> Value {
    json!({
        "id": id(team.id),
        "create_at": team.create_at,
        "update_at": team.update_at,
        "delete_at": team.delete_at,
        "display_name": team.display_name,
        "name": team.name,
        "description": "",
        "email": "",
        "type": team.team_type.as_str(),
        "company_name": "",
        "allowed_domains": "",
        "invite_id": "",
        "allow_open_invite": team.team_type.as_str() == "O",
        "scheme_id": null,
        "group_constrained": null,
        "policy_id": null,
    })
}

pub fn team_member(member: &TeamMember) -> Value {
    json!({
        "team_id": id(member.team_id),
        "user_id": id(member.user_id),
        "roles": member.roles,
        "delete_at": member.delete_at,
        "scheme_user": true,
        "scheme_admin": member.roles.contains("team_admin"),
        "explicit_roles": "",
    })
}

pub fn channel(channel: &Channel) -> Value {
    json!({
        "id": id(channel.id),
        "create_at": channel.create_at,
        "update_at": channel.update_at,
        "delete_at": channel.delete_at,
        "team_id": opt_id(channel.team_id),
        "type": channel.channel_type.as_str(),
        "display_name": channel.display_name,
        "name": channel.name,
        "header": channel.header,
        "purpose": channel.purpose,
        "last_post_at": channel.last_post_at,
        "total_msg_count": channel.total_msg_count,
        "extra_update_at": 0,
        "creator_id": opt_id(channel.creator_id),
        "scheme_id": null,
        "props": null,
        "group_constrained": null,
        "shared": null,
        "total_msg_count_root": channel.total_msg_count_root,
        "policy_id": null,
        "last_root_post_at": channel.last_root_post_at,
    })
}

pub fn channel_member(member: &ChannelMember) -> Value {
    json!({
        "channel_id": id(member.channel_id),
        "user_id": id(member.user_id),
        "roles": member.roles,
        "last_viewed_at": member.last_viewed_at,
        "msg_count": member.msg_count,
        "mention_count": member.mention_count,
        "mention_count_root": member.mention_count_root,
        "urgent_mention_count": member.urgent_mention_count,
        "msg_count_root": member.msg_count_root,
        "notify_props": {
            "desktop": "default", "email": "default", "ignore_channel_mentions": "default",
            "mark_unread": "all", "push": "default"
        },
        "last_update_at": member.last_update_at,
        "scheme_guest": false,
        "scheme_user": true,
        "scheme_admin": member.roles.contains("channel_admin"),
        "explicit_roles": "",
    })
}

pub fn channel_unread(unread: &ChannelUnread) -> Value {
    json!({
        "team_id": opt_id(unread.team_id),
        "channel_id": id(unread.channel_id),
        "msg_count": unread.msg_count,
        "mention_count": unread.mention_count,
        "mention_count_root": unread.mention_count_root,
        "urgent_mention_count": unread.urgent_mention_count,
        "msg_count_root": unread.msg_count_root,
        "notify_props": {"desktop": "default", "email": "default", "push": "default", "mark_unread": "all"},
    })
}

/// Thread facts a post carries (reply_count etc. on roots).
#[derive(Default, Clone)]
pub struct PostThreadInfo {
    pub reply_count: u64,
    pub last_reply_at: u64,
    pub participants: Vec<Id>,
    pub is_following: Option<bool>,
}

pub fn post(post: &Post, thread: Option<&PostThreadInfo>) -> Value {
    let info = thread.cloned().unwrap_or_default();
    let mut value = json!({
        "id": id(post.id),
        "create_at": post.create_at,
        "update_at": post.update_at,
        "edit_at": post.edit_at,
        "delete_at": post.delete_at,
        "is_pinned": post.is_pinned,
        "user_id": id(post.user_id),
        "channel_id": id(post.channel_id),
        "root_id": opt_id(post.root_id),
        "original_id": "",
        "message": post.message,
        "type": post.post_type,
        "props": props(&post.props),
        "hashtags": "",
        "file_ids": [],
        "pending_post_id": post.pending_post_id,
        "reply_count": info.reply_count,
        "last_reply_at": info.last_reply_at,
        "participants": null,
        "metadata": {},
    });
    if !info.participants.is_empty() {
        value["participants"] = Value::Array(
            info.participants
                .iter()
                .map(|p| json!({"id": id(*p)}))
                .collect(),
        );
    }
    if let Some(following) = info.is_following {
        value["is_following"] = Value::Bool(following);
    }
    if post.has_reactions {
        value["has_reactions"] = Value::Bool(true);
    }
    if !post.priority.is_empty() {
        value["metadata"] = json!({"priority": {"priority": post.priority}});
    }
    value
}

pub fn reaction(reaction: &Reaction) -> Value {
    json!({
        "user_id": id(reaction.user_id),
        "post_id": id(reaction.post_id),
        "emoji_name": reaction.emoji_name,
        "create_at": reaction.create_at,
        "update_at": reaction.create_at,
        "delete_at": 0,
        "remote_id": "",
        "channel_id": id(reaction.channel_id),
    })
}

/// A PostList: `order` newest first and `posts` by id.
pub fn post_list(page: &PostPage, thread_info: impl Fn(&Post) -> Option<PostThreadInfo>) -> Value {
    let mut posts = Map::new();
    for p in &page.posts {
        posts.insert(id(p.id), post(p, thread_info(p).as_ref()));
    }
    json!({
        "order": page.order.iter().map(|i| id(*i)).collect::<Vec<_>>(),
        "posts": posts,
        "next_post_id": "",
        "prev_post_id": "",
        "has_next": page.has_next,
        "first_inaccessible_post_time": 0,
    })
}

/// A ThreadResponse; `extended` includes full users for participants (`users` looks them up).
pub fn thread(item: &ThreadItem, participants: Vec<Value>) -> Value {
    let info = PostThreadInfo {
        reply_count: item.thread.reply_count,
        last_reply_at: item.thread.last_reply_at,
        participants: item.thread.participants.clone(),
        is_following: Some(item.following),
    };
    json!({
        "id": id(item.thread.root_id),
        "reply_count": item.thread.reply_count,
        "last_reply_at": item.thread.last_reply_at,
        "last_viewed_at": item.read.last_viewed,
        "participants": participants,
        "post": post(&item.root, Some(&info)),
        "unread_replies": item.read.unread_replies,
        "unread_mentions": item.read.unread_mentions,
        "is_urgent": item.root.priority == "urgent",
        "delete_at": item.thread.delete_at,
    })
}

pub fn thread_participants_ids(item: &ThreadItem) -> Vec<Value> {
    item.thread
        .participants
        .iter()
        .map(|p| json!({"id": id(*p)}))
        .collect()
}

pub fn thread_list(list: &ThreadList, threads: Vec<Value>) -> Value {
    json!({
        "total": list.total,
        "total_unread_threads": list.total_unread_threads,
        "total_unread_mentions": list.total_unread_mentions,
        "total_unread_urgent_mentions": 0,
        "threads": threads,
    })
}
