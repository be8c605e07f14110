//! The text of a `full` push: what Mattermost's `getPushNotificationMessage` sends — the
//! message with its Markdown stripped (a phone shows the text as it is, so `**bold**` would
//! arrive with its stars), then each Slack-style attachment's `fallback` on its own line.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// `markdown` as plain text: the words of its text, code, links and image descriptions, block
/// by block on separate lines; emphasis, headings' hashes, list bullets, quote marks and link
/// targets dropped. Raw HTML stays as written (Mattermost never renders it).
pub fn strip_markdown(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    for event in Parser::new(markdown) {
        match event {
            Event::Text(text) | Event::Code(text) | Event::Html(text) | Event::InlineHtml(text) => {
                out.push_str(&text)
            }
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Item) if !out.is_empty() && !out.ends_with('\n') => out.push('\n'),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::CodeBlock
                | TagEnd::Item
                | TagEnd::BlockQuote(_)
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) if !out.ends_with('\n') => out.push('\n'),
            Event::Rule => out.push('\n'),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// The push text of a post's message and its attachments' fallbacks (`props.attachments`).
pub fn push_text(message: &str, props: &str) -> String {
    let mut text = strip_markdown(message);
    let props: serde_json::Value = serde_json::from_str(props).unwrap_or_default();
    for attachment in props["attachments"].as_array().into_iter().flatten() {
        if let Some(fallback) = attachment["fallback"].as_str().filter(|f| !f.is_empty()) {
            text.push('\n');
            text.push_str(fallback);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_stripped_to_its_words() {
        assert_eq!(strip_markdown("**bold** and _it_"), "bold and it");
        assert_eq!(strip_markdown("# Title\n\nbody"), "Title\nbody");
        assert_eq!(
            strip_markdown("see [the docs](https://x.example/a) and `code`"),
            "see the docs and code"
        );
        assert_eq!(strip_markdown("- one\n- two"), "one\ntwo");
        assert_eq!(strip_markdown("> quoted\n\nafter"), "quoted\nafter");
        assert_eq!(strip_markdown("line one\nline two"), "line one\nline two");
        assert_eq!(strip_markdown("```\nfn main() {}\n```"), "fn main() {}");
        assert_eq!(strip_markdown("<b>raw</b>"), "<b>raw</b>");
        assert_eq!(strip_markdown("@bob plain"), "@bob plain");
    }

    #[test]
    fn attachment_fallbacks_follow_the_text() {
        let props = r#"{"attachments":[{"fallback":"Build 12 failed"},{"text":"no fallback"}]}"#;
        assert_eq!(push_text("*CI*", props), "CI\nBuild 12 failed");
        assert_eq!(push_text("hi", "not json"), "hi");
    }
}
