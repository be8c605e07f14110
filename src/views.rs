//! Mattermost's JSON shapes for confab's records. One place turns a stored record into what
//! clients read, for REST answers and WebSocket events alike.

use confab_storage::acks::Acknowledgement;
use confab_storage::emoji::Emoji;
use confab_storage::notify::{with_defaults, CHANNEL_DEFAULTS, USER_DEFAULTS};
use confab_storage::{
    Channel, ChannelMember, ChannelUnread, FileInfo, Id, Post, PostPage, Preference, Reaction,
    Team, TeamMember, ThreadItem, ThreadList, User,
};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

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

/// A Preference: `{user_id, category, name, value}`.
pub fn preference(preference: &Preference) -> Value {
    json!({
        "user_id": id(preference.user_id),
        "category": preference.category,
        "name": preference.name,
        "value": preference.value,
    })
}

/// A list of preferences, as GET answers it and as `preferences_changed` carries it.
pub fn preferences(preferences: &[Preference]) -> Value {
    Value::Array(preferences.iter().map(preference).collect())
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
        "props": user_props(user),
        "notify_props": with_defaults(&user.notify_props, &USER_DEFAULTS),
        "last_password_update": user.create_at,
        "locale": user.locale,
        "timezone": {
            "automaticTimezone": user.timezone.automatic,
            "manualTimezone": user.timezone.manual,
            "useAutomaticTimezone": if user.timezone.use_automatic { "true" } else { "false" },
        },
        "is_bot": user.is_bot,
        "disable_welcome_email": false,
        "last_picture_update": user.last_picture_update,
    })
}

/// `user.props`: Mattermost keeps the custom status there, as a JSON string.
fn user_props(user: &User) -> Value {
    if user.custom_status.is_empty() {
        json!({})
    } else {
        json!({"customStatus": user.custom_status})
    }
}

/// A team as anyone who may see it sees it: without the invite link's secret.
pub fn team(team: &Team) -> Value {
    let mut value = team_with_invite(team);
    value["invite_id"] = Value::String(String::new());
    value
}

/// A team with its invite secret, for its members and admins (Mattermost's `invite_user`
/// permission, which every team member holds, keeps it in `SanitizeTeam`).
pub fn team_with_invite(team: &Team) -> Value {
    json!({
        "id": id(team.id),
        "create_at": team.create_at,
        "update_at": team.update_at,
        "delete_at": team.delete_at,
        "display_name": team.display_name,
        "name": team.name,
        "description": team.description,
        "email": "",
        "type": team.team_type.as_str(),
        "company_name": team.company_name,
        "allowed_domains": team.allowed_domains,
        "invite_id": team.invite_id,
        "allow_open_invite": team.open_invite(),
        "scheme_id": null,
        "group_constrained": null,
        "policy_id": null,
    })
}

/// A custom emoji as Mattermost's JSON.
pub fn emoji(emoji: &confab_storage::emoji::Emoji) -> Value {
    json!({
        "id": id(emoji.id),
        "create_at": emoji.create_at,
        "update_at": emoji.update_at,
        "delete_at": emoji.delete_at,
        "creator_id": id(emoji.creator_id),
        "name": emoji.name,
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
        "notify_props": with_defaults(&member.notify_props, &CHANNEL_DEFAULTS),
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

/// A post in Mattermost's shape, serialized straight from the stored record: post lists (30 to
/// 60 posts per channel switch or scroll) are the bulk of read traffic, and building a
/// `serde_json::Value` tree per post first cost more than the reads behind it.
#[derive(Serialize)]
pub struct PostView<'a> {
    id: String,
    create_at: u64,
    update_at: u64,
    edit_at: u64,
    delete_at: u64,
    is_pinned: bool,
    user_id: String,
    channel_id: String,
    root_id: String,
    original_id: &'static str,
    message: &'a str,
    #[serde(rename = "type")]
    post_type: &'a str,
    props: Value,
    hashtags: &'static str,
    file_ids: Vec<String>,
    pending_post_id: &'a str,
    reply_count: u64,
    last_reply_at: u64,
    /// `null` when the thread has none (as Mattermost sends it).
    participants: Option<Vec<ParticipantView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_following: Option<bool>,
    #[serde(skip_serializing_if = "is_false")]
    has_reactions: bool,
    metadata: PostMetadata<'a>,
}

#[derive(Serialize)]
struct ParticipantView {
    id: String,
}

/// Mattermost's `metadata`: each part present only when non-empty (Mattermost's `omitempty`).
/// The mobile app reads a post's reactions ONLY from here — it makes no reaction call when it
/// opens a channel — so a post with reactions carries them all.
#[derive(Serialize)]
struct PostMetadata<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<PriorityView<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    reactions: Vec<ReactionView>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    files: Vec<Value>,
    /// The custom emoji the post uses (text or reactions): the apps draw only those listed.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    emojis: Vec<Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    acknowledgements: Vec<AckView>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    embeds: Vec<EmbedView>,
}

#[derive(Serialize)]
struct PriorityView<'a> {
    priority: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    requested_ack: bool,
}

#[derive(Serialize)]
struct AckView {
    user_id: String,
    post_id: String,
    acknowledged_at: u64,
}

/// An acknowledgement as Mattermost's JSON (also the `post_acknowledgement_*` events' payload).
pub fn acknowledgement(ack: &Acknowledgement) -> Value {
    json!({
        "user_id": id(ack.user_id),
        "post_id": id(ack.post_id),
        "acknowledged_at": ack.acknowledged_at,
    })
}

/// Mattermost's embed for a post with Slack-style attachments: the apps render `props.attachments`
/// only when `metadata.embeds` says the post has them.
#[derive(Serialize)]
struct EmbedView {
    #[serde(rename = "type")]
    kind: &'static str,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// What a page of posts is rendered with beyond the stored records: the facts of their threads
/// and the reactions of the posts that have any, read once per page.
#[derive(Default)]
pub struct PostFacts {
    /// By root id: a root carries its thread's facts, and so does each of its replies.
    pub threads: HashMap<Id, PostThreadInfo>,
    /// By post id, oldest first; only posts with `has_reactions`.
    pub reactions: HashMap<Id, Vec<Reaction>>,
    /// By post id: the live files of posts that have any.
    pub files: HashMap<Id, Vec<FileInfo>>,
    /// By post id: the custom emoji of posts that use any.
    pub emojis: HashMap<Id, Vec<Emoji>>,
    /// By post id: the acknowledgements of posts that have any.
    pub acks: HashMap<Id, Vec<Acknowledgement>>,
}

impl PostFacts {
    /// Reads what `post` is rendered with beyond its thread: its reactions, files, custom emoji
    /// and acknowledgements, each only when the post has any.
    pub fn read_post(
        &mut self,
        r: &confab_storage::Reader,
        post: &Post,
    ) -> confab_storage::Result<()> {
        if post.has_reactions {
            self.reactions.insert(post.id, r.reactions(post.id)?);
        }
        if !post.file_ids.is_empty() {
            self.files.insert(post.id, r.post_files(post)?);
        }
        let emojis = r.emoji_used_in(&post.message, self.reactions_of(post))?;
        if !emojis.is_empty() {
            self.emojis.insert(post.id, emojis);
        }
        if post.ack_count > 0 {
            self.acks.insert(post.id, r.acknowledgements(post.id)?);
        }
        Ok(())
    }

    pub fn thread_of(&self, post: &Post) -> Option<&PostThreadInfo> {
        let root = if post.is_root() {
            post.id
        } else {
            post.root_id
        };
        self.threads.get(&root)
    }

    pub fn reactions_of(&self, post: &Post) -> &[Reaction] {
        self.reactions.get(&post.id).map_or(&[], Vec::as_slice)
    }

    pub fn files_of(&self, post: &Post) -> &[FileInfo] {
        self.files.get(&post.id).map_or(&[], Vec::as_slice)
    }

    pub fn emojis_of(&self, post: &Post) -> &[Emoji] {
        self.emojis.get(&post.id).map_or(&[], Vec::as_slice)
    }

    pub fn parts(&self, post: &Post) -> PostParts<'_> {
        PostParts {
            reactions: self.reactions_of(post),
            files: self.files_of(post),
            emojis: self.emojis_of(post),
            acks: self.acks.get(&post.id).map_or(&[], Vec::as_slice),
        }
    }

    fn view<'a>(&self, post: &'a Post) -> PostView<'a> {
        post_view(post, self.thread_of(post), self.parts(post))
    }
}

/// What a post is rendered with beyond its record and thread: its reactions, files and the
/// custom emoji it uses (each empty when it has none).
#[derive(Default, Clone, Copy)]
pub struct PostParts<'p> {
    pub reactions: &'p [Reaction],
    pub files: &'p [FileInfo],
    pub emojis: &'p [Emoji],
    pub acks: &'p [Acknowledgement],
}

pub fn post_view<'a>(
    post: &'a Post,
    thread: Option<&PostThreadInfo>,
    parts: PostParts<'_>,
) -> PostView<'a> {
    let (reply_count, last_reply_at, participants, is_following) = match thread {
        Some(info) => (
            info.reply_count,
            info.last_reply_at,
            &info.participants[..],
            info.is_following,
        ),
        None => (0, 0, &[][..], None),
    };
    PostView {
        id: id(post.id),
        create_at: post.create_at,
        update_at: post.update_at,
        edit_at: post.edit_at,
        delete_at: post.delete_at,
        is_pinned: post.is_pinned,
        user_id: id(post.user_id),
        channel_id: id(post.channel_id),
        root_id: opt_id(post.root_id),
        original_id: "",
        message: &post.message,
        post_type: &post.post_type,
        props: props(&post.props),
        hashtags: "",
        file_ids: post.file_ids.iter().map(|f| id(*f)).collect(),
        pending_post_id: &post.pending_post_id,
        reply_count,
        last_reply_at,
        participants: (!participants.is_empty()).then(|| {
            participants
                .iter()
                .map(|p| ParticipantView { id: id(*p) })
                .collect()
        }),
        is_following,
        has_reactions: post.has_reactions,
        metadata: PostMetadata {
            priority: (!post.priority.is_empty() || post.requested_ack).then_some(PriorityView {
                priority: &post.priority,
                requested_ack: post.requested_ack,
            }),
            reactions: parts.reactions.iter().map(reaction_view).collect(),
            files: parts.files.iter().map(file_info).collect(),
            emojis: parts.emojis.iter().map(emoji).collect(),
            acknowledgements: parts
                .acks
                .iter()
                .map(|a| AckView {
                    user_id: id(a.user_id),
                    post_id: id(a.post_id),
                    acknowledged_at: a.acknowledged_at,
                })
                .collect(),
            embeds: if has_attachments(&post.props) {
                vec![EmbedView {
                    kind: "message_attachment",
                }]
            } else {
                Vec::new()
            },
        },
    }
}

/// Whether a post's props hold a non-empty `attachments` list (a cheap look before parsing).
fn has_attachments(props: &str) -> bool {
    if !props.contains("\"attachments\"") {
        return false;
    }
    serde_json::from_str::<Value>(props)
        .ok()
        .and_then(|p| {
            p.get("attachments")
                .and_then(Value::as_array)
                .map(|a| !a.is_empty())
        })
        .unwrap_or(false)
}

/// A post as a JSON value, for answers that embed it in a larger `Value`.
pub fn post(post: &Post, thread: Option<&PostThreadInfo>, parts: PostParts<'_>) -> Value {
    serde_json::to_value(post_view(post, thread, parts)).unwrap_or(Value::Null)
}

/// A post as JSON text (WebSocket events carry posts as strings).
pub fn post_text(post: &Post, thread: Option<&PostThreadInfo>, parts: PostParts<'_>) -> String {
    serde_json::to_string(&post_view(post, thread, parts)).unwrap_or_default()
}

/// Mattermost's FileInfo JSON (`post_id`, `width`, `height`, `has_preview_image` omitted when
/// empty, `mini_preview` base64 or null).
pub fn file_info(info: &FileInfo) -> Value {
    use base64::Engine as _;
    let mut value = json!({
        "id": id(info.id),
        "user_id": id(info.user_id),
        "channel_id": id(info.channel_id),
        "create_at": info.create_at,
        "update_at": info.update_at,
        "delete_at": info.delete_at,
        "name": info.name,
        "extension": info.extension,
        "size": info.size,
        "mime_type": info.mime_type,
        "mini_preview": if info.mini_preview.is_empty() {
            Value::Null
        } else {
            Value::String(base64::engine::general_purpose::STANDARD.encode(&info.mini_preview))
        },
        "remote_id": "",
        "archived": false,
    });
    if !info.post_id.is_none() {
        value["post_id"] = Value::String(id(info.post_id));
    }
    if info.width > 0 {
        value["width"] = info.width.into();
    }
    if info.height > 0 {
        value["height"] = info.height.into();
    }
    if info.has_preview_image {
        value["has_preview_image"] = true.into();
    }
    value
}

/// A reaction in Mattermost's shape, as `/reactions` answers it and `metadata.reactions` lists it.
#[derive(Serialize)]
pub struct ReactionView {
    user_id: String,
    post_id: String,
    emoji_name: String,
    create_at: u64,
    update_at: u64,
    delete_at: u64,
    remote_id: &'static str,
    channel_id: String,
}

fn reaction_view(reaction: &Reaction) -> ReactionView {
    ReactionView {
        user_id: id(reaction.user_id),
        post_id: id(reaction.post_id),
        emoji_name: reaction.emoji_name.clone(),
        create_at: reaction.create_at,
        update_at: reaction.create_at,
        delete_at: 0,
        remote_id: "",
        channel_id: id(reaction.channel_id),
    }
}

pub fn reaction(reaction: &Reaction) -> Value {
    serde_json::to_value(reaction_view(reaction)).unwrap_or(Value::Null)
}

/// A PostList: `order` newest first and `posts` by id.
#[derive(Serialize)]
struct PostListView<'a> {
    order: Vec<String>,
    posts: PostsById<'a>,
    next_post_id: &'static str,
    prev_post_id: &'static str,
    has_next: bool,
    first_inaccessible_post_time: u64,
    /// Search results only: post id → the words of its text that matched (for highlighting).
    #[serde(skip_serializing_if = "Option::is_none")]
    matches: Option<BTreeMap<String, Vec<String>>>,
}

/// `{"<id>": post, …}` written in the page's order, without building a map.
struct PostsById<'a>(Vec<PostView<'a>>);

impl Serialize for PostsById<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|post| (&post.id, post)))
    }
}

/// A PostList as JSON bytes.
pub fn post_list(page: &PostPage, facts: &PostFacts) -> Vec<u8> {
    post_list_with_matches(page, None, facts)
}

/// A search's PostList: the page with its `matches`.
pub fn search_post_list(
    page: &PostPage,
    matches: &[(Id, Vec<String>)],
    facts: &PostFacts,
) -> Vec<u8> {
    let matches = matches
        .iter()
        .map(|(post, words)| (id(*post), words.clone()))
        .collect();
    post_list_with_matches(page, Some(matches), facts)
}

fn post_list_with_matches(
    page: &PostPage,
    matches: Option<BTreeMap<String, Vec<String>>>,
    facts: &PostFacts,
) -> Vec<u8> {
    let view = PostListView {
        order: page.order.iter().map(|i| id(*i)).collect(),
        posts: PostsById(page.posts.iter().map(|p| facts.view(p)).collect()),
        next_post_id: "",
        prev_post_id: "",
        has_next: page.has_next,
        first_inaccessible_post_time: 0,
        matches,
    };
    // Serializing these views into memory cannot fail: string keys, no I/O.
    serde_json::to_vec(&view).unwrap_or_else(|_| b"{}".to_vec())
}

/// A ThreadResponse; `extended` includes full users for participants (`users` looks them up).
/// `root_parts`: what the root post is rendered with (its reactions, files, emoji, acks).
pub fn thread(item: &ThreadItem, participants: Vec<Value>, root_parts: PostParts<'_>) -> Value {
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
        "post": post(&item.root, Some(&info), root_parts),
        "is_following": item.following,
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
        "total_unread_urgent_mentions": list.total_unread_urgent_mentions,
        "threads": threads,
    })
}

/// A sidebar category as Mattermost's JSON (`SidebarCategoryWithChannels`); `position` is its
/// place in the sidebar (`sort_order` counts in tens, as Mattermost's does).
pub fn sidebar_category(
    user: Id,
    team: Id,
    position: usize,
    category: &confab_storage::sidebar::SidebarCategory,
) -> Value {
    json!({
        "id": category.id,
        "user_id": id(user),
        "team_id": id(team),
        "sort_order": position * 10,
        "sorting": category.sorting.as_str(),
        "type": category.kind.as_str(),
        "display_name": category.display_name,
        "muted": category.muted,
        "collapsed": category.collapsed,
        "channel_ids": category.channel_ids.iter().map(|c| id(*c)).collect::<Vec<_>>(),
    })
}

/// A draft as Mattermost's JSON (`model.Draft`): `props` is an object, `priority` only when set.
pub fn draft(draft: &confab_storage::drafts::Draft) -> Value {
    let props: Value = serde_json::from_str(&draft.props).unwrap_or_else(|_| json!({}));
    let mut value = json!({
        "create_at": draft.create_at,
        "update_at": draft.update_at,
        "delete_at": 0,
        "user_id": id(draft.user_id),
        "channel_id": id(draft.channel_id),
        "root_id": draft.root_id.map(id).unwrap_or_default(),
        "message": draft.message,
        "props": props,
        "file_ids": draft.file_ids,
    });
    if let Ok(priority) = serde_json::from_str::<Value>(&draft.priority) {
        value["priority"] = priority;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u8, root: Id) -> Post {
        Post {
            id: Id::from_bytes([n; 16]),
            create_at: 10,
            update_at: 11,
            edit_at: 0,
            delete_at: 0,
            is_pinned: false,
            user_id: Id::from_bytes([7; 16]),
            channel_id: Id::from_bytes([8; 16]),
            root_id: root,
            message: "hi \"there\"".into(),
            post_type: String::new(),
            props: r#"{"from_bot":"true"}"#.into(),
            pending_post_id: "pending".into(),
            has_reactions: false,
            file_ids: Vec::new(),
            priority: String::new(),
            requested_ack: false,
            ack_count: 0,
            search_number: None,
        }
    }

    #[test]
    fn a_post_has_mattermosts_fields_and_nothing_else() {
        let root = sample(1, Id::NONE);
        assert_eq!(
            post(&root, None, PostParts::default()),
            json!({
                "id": id(root.id), "create_at": 10, "update_at": 11, "edit_at": 0,
                "delete_at": 0, "is_pinned": false, "user_id": id(root.user_id),
                "channel_id": id(root.channel_id), "root_id": "", "original_id": "",
                "message": "hi \"there\"", "type": "", "props": {"from_bot": "true"},
                "hashtags": "", "file_ids": [], "pending_post_id": "pending",
                "reply_count": 0, "last_reply_at": 0, "participants": null, "metadata": {},
            })
        );
        let mut reply = sample(2, root.id);
        reply.has_reactions = true;
        reply.priority = "urgent".into();
        reply.props = "not json".into();
        let info = PostThreadInfo {
            reply_count: 3,
            last_reply_at: 99,
            participants: vec![Id::from_bytes([7; 16])],
            is_following: Some(true),
        };
        let value = post(&reply, Some(&info), PostParts::default());
        assert_eq!(value["root_id"], id(root.id));
        assert_eq!(value["reply_count"], 3);
        assert_eq!(value["last_reply_at"], 99);
        assert_eq!(value["participants"], json!([{"id": id(reply.user_id)}]));
        assert_eq!(value["is_following"], true);
        assert_eq!(value["has_reactions"], true);
        assert_eq!(
            value["metadata"],
            json!({"priority": {"priority": "urgent"}})
        );
        assert_eq!(value["props"], json!({}));
        // The text form carried by WebSocket events is the same post.
        let text: Value =
            serde_json::from_str(&post_text(&reply, Some(&info), PostParts::default()))
                .expect("JSON");
        assert_eq!(text, value);
    }

    #[test]
    fn a_post_list_keys_posts_by_id_in_page_order() {
        let root = sample(1, Id::NONE);
        let reply = sample(2, root.id);
        let page = PostPage {
            order: vec![reply.id, root.id],
            posts: vec![reply.clone(), root.clone()],
            has_next: true,
        };
        let bytes = post_list(&page, &PostFacts::default());
        let list: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(list["order"], json!([id(reply.id), id(root.id)]));
        assert_eq!(
            list["posts"][id(root.id)],
            post(&root, None, PostParts::default())
        );
        assert_eq!(
            list["posts"][id(reply.id)],
            post(&reply, None, PostParts::default())
        );
        assert_eq!(list["posts"].as_object().map(|o| o.len()), Some(2));
        assert_eq!(list["has_next"], true);
        assert_eq!(list["next_post_id"], "");
        assert_eq!(list["prev_post_id"], "");
        assert_eq!(list["first_inaccessible_post_time"], 0);
    }

    #[test]
    fn metadata_lists_a_posts_reactions_and_only_when_it_has_some() {
        let root = sample(1, Id::NONE);
        let mut reacted = sample(2, Id::NONE);
        reacted.has_reactions = true;
        let reaction = Reaction {
            user_id: Id::from_bytes([9; 16]),
            post_id: reacted.id,
            emoji_name: "smile".into(),
            create_at: 42,
            channel_id: reacted.channel_id,
        };
        let mut facts = PostFacts::default();
        facts.reactions.insert(reacted.id, vec![reaction.clone()]);
        let page = PostPage {
            order: vec![reacted.id, root.id],
            posts: vec![reacted.clone(), root.clone()],
            has_next: false,
        };
        let list: Value = serde_json::from_slice(&post_list(&page, &facts)).expect("JSON");
        assert_eq!(
            list["posts"][id(reacted.id)]["metadata"],
            json!({"reactions": [views_reaction_json(&reaction)]})
        );
        assert_eq!(list["posts"][id(root.id)]["metadata"], json!({}));
    }

    fn views_reaction_json(r: &Reaction) -> Value {
        json!({
            "user_id": id(r.user_id), "post_id": id(r.post_id), "emoji_name": r.emoji_name,
            "create_at": r.create_at, "update_at": r.create_at, "delete_at": 0,
            "remote_id": "", "channel_id": id(r.channel_id),
        })
    }
}
