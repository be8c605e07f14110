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

/// Most distinct words of one message looked up as keywords: bounds the work a 16 K-character
/// message costs at apply.
pub const MAX_KEYWORD_CANDIDATES: usize = 512;

/// The words of a message that can name a mention keyword (a custom `mention_keys` entry or a
/// first name), case kept, as Mattermost's `StandardMentionParser.ProcessText` tries them: the
/// text is split at every character that is not a letter, digit or one of `: . - _ @`; a
/// `:emoji:` word is skipped; leading `: . - _` are trimmed; then the word itself, the word with
/// trailing `. - : _` cut one at a time, and its pieces between `. - :` are each a candidate.
/// (Mattermost stops at the first of these that matches; trying them all only differs for a
/// word that matches whole and in pieces, where both name keywords anyway.)
pub fn keyword_candidates(message: &str) -> BTreeSet<&str> {
    let mut words = BTreeSet::new();
    let fields = message
        .split(|c: char| !(matches!(c, ':' | '.' | '-' | '_' | '@') || c.is_alphanumeric()))
        .filter(|w| !w.is_empty());
    for field in fields {
        if words.len() >= MAX_KEYWORD_CANDIDATES {
            break;
        }
        if field.len() > 1 && field.starts_with(':') && field.ends_with(':') {
            continue;
        }
        let word = field.trim_start_matches([':', '.', '-', '_']);
        if word.is_empty() {
            continue;
        }
        words.insert(word);
        let mut cut = word;
        while let Some(shorter) = cut.strip_suffix(['.', '-', ':', '_']) {
            if !shorter.is_empty() {
                words.insert(shorter);
            }
            cut = shorter;
        }
        if word.contains(['.', '-', ':']) {
            words.extend(word.split(['.', '-', ':']).filter(|w| !w.is_empty()));
        }
    }
    words
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
    fn keyword_candidates_split_like_mattermost() {
        let words: Vec<&str> = keyword_candidates("Ping Oncall: see db-team.. :smile: @Ops! x")
            .into_iter()
            .collect();
        assert_eq!(
            words,
            vec![
                "@Ops",
                "Oncall",
                "Oncall:",
                "Ping",
                "db",
                "db-team",
                "db-team.",
                "db-team..",
                "see",
                "team",
                "x"
            ]
        );
        assert!(keyword_candidates("").is_empty());
        assert!(keyword_candidates(":::: --").is_empty());
        let many: String = (0..2000).map(|i| format!("w{i} ")).collect();
        assert_eq!(keyword_candidates(&many).len(), MAX_KEYWORD_CANDIDATES);
    }

    #[test]
    fn empty_and_bare_at() {
        assert_eq!(parse(""), Mentions::default());
        assert_eq!(parse("@ @"), Mentions::default());
    }
}
