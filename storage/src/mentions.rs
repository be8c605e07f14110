//! Finding `@username` mentions in a message, the way Mattermost's notification code splits words.

use std::collections::BTreeSet;

/// What a message mentions: named users (lowercased) and whether it addresses the whole channel.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mentions {
    pub usernames: BTreeSet<String>,
    /// `@channel`, `@all` or `@here`.
    pub channel_wide: bool,
    /// `@channel` or `@all` (everyone, not only those online as with `@here`).
    pub everyone: bool,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

/// Parses mentions. A mention starts at `@` that is not preceded by a name character (so
/// e-mail addresses do not count) and runs over name characters; trailing dots are punctuation.
pub fn parse(message: &str) -> Mentions {
    let mut mentions = Mentions::default();
    let mut previous: Option<char> = None;
    let mut chars = message.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '@' && !previous.is_some_and(is_name_char) {
            let mut end = start + 1;
            while let Some(&(i, next)) = chars.peek() {
                if !is_name_char(next) {
                    break;
                }
                end = i + next.len_utf8();
                chars.next();
            }
            let name = message[start + 1..end]
                .trim_end_matches(['.', '-', '_'])
                .to_ascii_lowercase();
            match name.as_str() {
                "" => {}
                "channel" | "all" => {
                    mentions.channel_wide = true;
                    mentions.everyone = true;
                }
                "here" => mentions.channel_wide = true,
                _ => {
                    mentions.usernames.insert(name);
                }
            }
            previous = message[..end].chars().next_back();
            continue;
        }
        previous = Some(c);
    }
    mentions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_and_channel_wide() {
        let m = parse("hi @Alice, @bob. see @all; mail x@carol.com @@dave");
        assert!(m.channel_wide && m.everyone);
        let here = parse("@here look");
        assert!(here.channel_wide && !here.everyone);
        let names: Vec<_> = m.usernames.iter().cloned().collect();
        assert_eq!(names, vec!["alice", "bob", "dave"]);
    }

    #[test]
    fn empty_and_bare_at() {
        assert_eq!(parse(""), Mentions::default());
        assert_eq!(parse("@ @"), Mentions::default());
    }
}
