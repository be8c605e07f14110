//! What a notification email says: the subject lines, plain-text and HTML bodies, the link to
//! the post and the threading headers, following Mattermost's `notification_email.go` and
//! `email_batching.go` (English texts).
//!
//! Every email about a post carries `Message-ID: <post_id@host>`, and a reply carries
//! `In-Reply-To` and `References: <root_id@host>`, so mail clients thread replies under the
//! email of their root (or together, when the root was never mailed). A digest of several posts
//! has a Message-ID of its own.
//!
//! The message is Markdown: the HTML body renders it with `pulldown-cmark`, with raw HTML shown
//! as text and links kept only for http, https and mailto, so a post cannot put markup or
//! scripts into someone's mailbox.

use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use pulldown_cmark::{CowStr, Event, Parser, Tag};
use std::fmt::Write;

/// Which kind of channel a post is in: it picks the subject line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Direct,
    Group,
    Other,
}

/// One post as an email tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailPost {
    pub post_id: String,
    /// Empty for a root post.
    pub root_id: String,
    pub create_at: u64,
    pub message: String,
    /// The author as people see them (`@username` in subjects).
    pub sender: String,
    /// The channel's display name (for a DM, the other person).
    pub channel: String,
    pub kind: ChannelKind,
    /// The team's URL name, for links.
    pub team: String,
    pub team_display: String,
}

/// The server as emails name and link it.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    /// The public URL without a trailing slash, e.g. `https://chat.example.com`.
    pub url: String,
}

impl Site {
    /// The host part of the site URL, for Message-IDs.
    pub fn host(&self) -> String {
        self.url
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| uri.host().map(str::to_string))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "confab".to_string())
    }
}

/// Who an email is from, to and where replies go.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: Mailbox,
    pub reply_to: Mailbox,
    pub to: Mailbox,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("building the email: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("a digest needs at least one post")]
    Empty,
}

/// "January 2, 2006" in UTC: confab keeps no per-user time zone yet.
fn day(at_ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp((at_ms / 1000) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{} {}, {}", at.month(), at.day(), at.year())
}

/// "15:04 UTC" for a post's time in a digest.
fn clock(at_ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp((at_ms / 1000) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:02}:{:02} UTC", at.hour(), at.minute())
}

/// The subject of an email about one post.
pub fn subject(site: &Site, post: &MailPost) -> String {
    let on = day(post.create_at);
    match post.kind {
        ChannelKind::Direct => format!(
            "[{}] New Direct Message from @{} on {on}",
            site.name, post.sender
        ),
        ChannelKind::Group => format!(
            "[{}] New Group Message in {} on {on}",
            site.name, post.channel
        ),
        ChannelKind::Other => format!(
            "[{}] Notification in {} on {on}",
            site.name, post.team_display
        ),
    }
}

/// The subject of a digest of `count` posts, dated by the first.
pub fn digest_subject(site: &Site, count: usize, first_at: u64) -> String {
    let plural = if count == 1 { "" } else { "s" };
    format!(
        "[{}] New Notification{plural} for {}",
        site.name,
        day(first_at)
    )
}

/// The permalink of a post. A single notification goes through the landing page (it offers the
/// apps), as Mattermost's does; digests link straight to the post.
pub fn permalink(site: &Site, post: &MailPost, landing: bool) -> String {
    let landing = if landing { "landing#/" } else { "" };
    format!("{}/{landing}{}/pl/{}", site.url, post.team, post.post_id)
}

/// `text` with HTML's special characters escaped (pulldown-cmark's escaper, also for quotes in
/// attributes).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing into a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(&mut out, text);
    out
}

fn safe_link(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// The post's Markdown as HTML: raw HTML becomes text, unsafe link targets become `#`.
pub fn markdown_html(message: &str) -> String {
    let events = Parser::new(message).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_link(&dest_url) => Event::Start(Tag::Link {
            link_type,
            dest_url: CowStr::Borrowed("#"),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_link(&dest_url) => Event::Start(Tag::Image {
            link_type,
            dest_url: CowStr::Borrowed("#"),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn post_block_html(post: &MailPost, link: &str, with_time: bool) -> String {
    let mut html = String::new();
    let when = if with_time {
        format!(
            " <span style=\"color:#888\">{}</span>",
            clock(post.create_at)
        )
    } else {
        String::new()
    };
    let _ = write!(
        html,
        "<div style=\"margin:16px 0;padding:12px;border:1px solid #ddd;border-radius:4px\">\
         <div><strong>@{}</strong> in <strong>{}</strong>{when}</div>\
         <div>{}</div>\
         <div><a href=\"{}\">View Message</a></div></div>",
        escape(&post.sender),
        escape(&post.channel),
        markdown_html(&post.message),
        escape(link),
    );
    html
}

fn page_html(site: &Site, title: &str, blocks: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif\"><h2>{title}</h2>{blocks}\
         <p style=\"color:#888;font-size:12px\">You are receiving this email from {site} because \
         you were mentioned or messaged while away. Change how often you get emails in \
         Settings &gt; Notifications.</p></body></html>",
        title = escape(title),
        site = escape(&site.name),
    )
}

/// The title line of an email about one post.
fn title(post: &MailPost) -> String {
    match post.kind {
        ChannelKind::Direct => format!("You have a new Direct Message from @{}", post.sender),
        ChannelKind::Group => format!("You have a new Group Message from @{}", post.sender),
        ChannelKind::Other if post.root_id.is_empty() => {
            format!("@{} mentioned you in a message", post.sender)
        }
        ChannelKind::Other => format!("@{} replied in a thread you follow", post.sender),
    }
}

/// The email about one post.
pub fn notification(
    site: &Site,
    envelope: &Envelope,
    post: &MailPost,
) -> Result<Message, RenderError> {
    let host = site.host();
    let link = permalink(site, post, true);
    let heading = title(post);
    let text = format!(
        "{heading}\n\n@{} in {}:\n{}\n\nView Message: {link}\n",
        post.sender, post.channel, post.message
    );
    let html = page_html(site, &heading, &post_block_html(post, &link, false));
    let mut builder = Message::builder()
        .from(envelope.from.clone())
        .reply_to(envelope.reply_to.clone())
        .to(envelope.to.clone())
        .subject(subject(site, post))
        .message_id(Some(format!("<{}@{host}>", post.post_id)));
    if !post.root_id.is_empty() {
        let root = format!("<{}@{host}>", post.root_id);
        builder = builder.in_reply_to(root.clone()).references(root);
    }
    Ok(builder.multipart(MultiPart::alternative_plain_html(text, html))?)
}

/// One email about several posts, oldest first, each with its channel, time and link.
pub fn digest(
    site: &Site,
    envelope: &Envelope,
    posts: &[MailPost],
) -> Result<Message, RenderError> {
    let first = posts.first().ok_or(RenderError::Empty)?;
    let heading = if posts.len() == 1 {
        "You have a new notification".to_string()
    } else {
        format!("You have {} new notifications", posts.len())
    };
    let mut text = format!("{heading}\n");
    let mut blocks = String::new();
    for post in posts {
        let link = permalink(site, post, false);
        let _ = write!(
            text,
            "\n@{} in {} at {}:\n{}\nView Message: {link}\n",
            post.sender,
            post.channel,
            clock(post.create_at),
            post.message
        );
        blocks.push_str(&post_block_html(post, &link, true));
    }
    let html = page_html(site, &heading, &blocks);
    Ok(Message::builder()
        .from(envelope.from.clone())
        .reply_to(envelope.reply_to.clone())
        .to(envelope.to.clone())
        .subject(digest_subject(site, posts.len(), first.create_at))
        .multipart(MultiPart::alternative_plain_html(text, html))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            name: "Confab".into(),
            url: "https://chat.example.com".into(),
        }
    }

    fn envelope() -> Envelope {
        Envelope {
            from: "Confab <noreply@example.com>".parse().expect("from"),
            reply_to: "noreply@example.com".parse().expect("reply"),
            to: "alice@example.com".parse().expect("to"),
        }
    }

    fn post(kind: ChannelKind, root: &str) -> MailPost {
        MailPost {
            post_id: "p1".into(),
            root_id: root.into(),
            // 2026-12-01 10:30:00 UTC
            create_at: 1_796_121_000_000,
            message: "hi **there** <script>alert(1)</script> [x](javascript:alert(1))".into(),
            sender: "bob".into(),
            channel: "Town Square".into(),
            kind,
            team: "eng".into(),
            team_display: "Engineering".into(),
        }
    }

    fn raw(message: &Message) -> String {
        String::from_utf8_lossy(&message.formatted()).into_owned()
    }

    #[test]
    fn subjects_name_the_kind_of_channel_and_the_day() {
        assert_eq!(
            subject(&site(), &post(ChannelKind::Direct, "")),
            "[Confab] New Direct Message from @bob on December 1, 2026"
        );
        assert_eq!(
            subject(&site(), &post(ChannelKind::Group, "")),
            "[Confab] New Group Message in Town Square on December 1, 2026"
        );
        assert_eq!(
            subject(&site(), &post(ChannelKind::Other, "")),
            "[Confab] Notification in Engineering on December 1, 2026"
        );
        assert_eq!(
            digest_subject(&site(), 3, 1_796_121_000_000),
            "[Confab] New Notifications for December 1, 2026"
        );
    }

    #[test]
    fn a_reply_threads_under_its_root() {
        let root =
            raw(&notification(&site(), &envelope(), &post(ChannelKind::Other, "")).expect("mail"));
        assert!(root.contains("Message-ID: <p1@chat.example.com>"), "{root}");
        assert!(!root.contains("In-Reply-To"));
        let reply = raw(
            &notification(&site(), &envelope(), &post(ChannelKind::Other, "r0")).expect("mail"),
        );
        assert!(
            reply.contains("In-Reply-To: <r0@chat.example.com>"),
            "{reply}"
        );
        assert!(
            reply.contains("References: <r0@chat.example.com>"),
            "{reply}"
        );
        assert!(reply.contains("multipart/alternative"));
    }

    #[test]
    fn html_is_rendered_markdown_without_markup_from_the_post() {
        let html =
            markdown_html("hi **there** <b>bold</b> [x](javascript:alert(1)) [y](https://a.b)");
        assert!(html.contains("<strong>there</strong>"), "{html}");
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{html}");
        assert!(html.contains("href=\"#\""), "{html}");
        assert!(html.contains("href=\"https://a.b\""), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }

    #[test]
    fn links_go_to_the_post() {
        let p = post(ChannelKind::Other, "");
        assert_eq!(
            permalink(&site(), &p, true),
            "https://chat.example.com/landing#/eng/pl/p1"
        );
        assert_eq!(
            permalink(&site(), &p, false),
            "https://chat.example.com/eng/pl/p1"
        );
        assert!(matches!(
            digest(&site(), &envelope(), &[]),
            Err(RenderError::Empty)
        ));
    }
}
