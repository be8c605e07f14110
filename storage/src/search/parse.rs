//! The search box's syntax, parsed without touching the database (Mattermost's
//! `ParseSearchParams`): words joined by AND (OR on request), `"quoted phrases"`, `-excluded`
//! words, phrases and flags, a trailing `*` for a prefix, `#hashtags`, and the flags `from:`,
//! `in:`/`channel:`, `before:`, `after:`, `on:` (a value may follow after a space). Anything it
//! cannot honour is a typed [`QueryError`] the server answers with a 400 — never a full scan.

use super::tokenize::{hashtag, prefix, tokens};

/// Longest `terms` accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;
/// Most words (included and excluded) in one query: each one is a cursor per channel searched.
pub const MAX_QUERY_WORDS: usize = 16;

/// One thing to find in a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// An index term (folded, stemmed).
    Term(String),
    /// Terms that must appear next to each other, in order.
    Phrase(Vec<String>),
    /// A `#tag`, folded, with its `#`: an exact tag match.
    Hashtag(String),
    /// Terms starting with this folded, unstemmed text.
    Prefix(String),
}

/// A day as days since 1970-01-01 (the caller's time zone is applied when searching).
pub type Day = i64;

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedQuery {
    pub words: Vec<Word>,
    pub excluded: Vec<Word>,
    /// Usernames (without `@`), lowercase.
    pub from: Vec<String>,
    pub not_from: Vec<String>,
    /// Channel names (`~` dropped) or `@username` for a direct channel, lowercase.
    pub in_channels: Vec<String>,
    pub not_in: Vec<String>,
    pub on: Option<Day>,
    pub before: Option<Day>,
    pub after: Option<Day>,
}

impl ParsedQuery {
    /// Whether the query says nothing at all to search for.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
            && self.from.is_empty()
            && self.in_channels.is_empty()
            && self.on.is_none()
            && self.before.is_none()
            && self.after.is_none()
    }
}

/// Why a query cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the search terms hold nothing to search for")]
    Empty,
    #[error("the search terms are longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("the search terms hold more than {MAX_QUERY_WORDS} words")]
    TooManyWords,
    #[error("a quotation mark is not closed")]
    UnbalancedQuote,
    #[error("invalid date {0:?}: expected YYYY-MM-DD")]
    InvalidDate(String),
    #[error("dates cannot be excluded")]
    ExcludedDate,
}

/// A piece of the input: a word or a quoted phrase, maybe excluded.
struct Piece {
    text: String,
    quoted: bool,
    excluded: bool,
}

/// Splits the input at whitespace, keeping `"…"` together.
fn pieces(input: &str) -> Result<Vec<Piece>, QueryError> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut excluded = false;
        if c == '-' {
            chars.next();
            excluded = true;
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => text.push(c),
                    None => return Err(QueryError::UnbalancedQuote),
                }
            }
            out.push(Piece {
                text,
                quoted: true,
                excluded,
            });
            continue;
        }
        let mut text = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            text.push(c);
            chars.next();
        }
        out.push(Piece {
            text,
            quoted: false,
            excluded,
        });
    }
    Ok(out)
}

const FLAGS: [&str; 7] = [
    "from:", "in:", "channel:", "before:", "after:", "on:", "ext:",
];

/// Parses `terms`.
pub fn parse(input: &str) -> Result<ParsedQuery, QueryError> {
    if input.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let mut query = ParsedQuery::default();
    let mut pieces = pieces(input)?.into_iter();
    while let Some(piece) = pieces.next() {
        if !piece.quoted {
            let lower = piece.text.to_lowercase();
            if let Some(flag) = FLAGS.iter().find(|f| lower.starts_with(**f)) {
                let mut value = lower[flag.len()..].to_string();
                if value.is_empty() {
                    match pieces.next() {
                        Some(next) => value = next.text.to_lowercase(),
                        None => continue,
                    }
                }
                add_flag(&mut query, flag, value, piece.excluded)?;
                continue;
            }
        }
        let Some(word) = word(&piece) else { continue };
        if piece.excluded {
            query.excluded.push(word);
        } else {
            query.words.push(word);
        }
    }
    if query.words.len() + query.excluded.len() > MAX_QUERY_WORDS {
        return Err(QueryError::TooManyWords);
    }
    if query.is_empty() {
        return Err(QueryError::Empty);
    }
    Ok(query)
}

fn add_flag(
    query: &mut ParsedQuery,
    flag: &str,
    value: String,
    excluded: bool,
) -> Result<(), QueryError> {
    match flag {
        "from:" => {
            let name = value.trim_start_matches('@').to_string();
            if excluded {
                query.not_from.push(name);
            } else {
                query.from.push(name);
            }
        }
        "in:" | "channel:" => {
            let name = value.trim_start_matches('~').to_string();
            if excluded {
                query.not_in.push(name);
            } else {
                query.in_channels.push(name);
            }
        }
        "before:" | "after:" | "on:" => {
            if excluded {
                return Err(QueryError::ExcludedDate);
            }
            let day = parse_day(&value)?;
            let slot = match flag {
                "before:" => &mut query.before,
                "after:" => &mut query.after,
                _ => &mut query.on,
            };
            *slot = Some(day);
        }
        // File extensions filter file search, which confab does not have.
        _ => {}
    }
    Ok(())
}

/// `YYYY-MM-DD` as days since the epoch.
pub fn parse_day(text: &str) -> Result<Day, QueryError> {
    let invalid = || QueryError::InvalidDate(text.chars().take(40).collect());
    let mut parts = text.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return Err(invalid());
    }
    let year: i32 = year.parse().map_err(|_| invalid())?;
    let month: u8 = month.parse().map_err(|_| invalid())?;
    let day: u8 = day.parse().map_err(|_| invalid())?;
    let month = time::Month::try_from(month).map_err(|_| invalid())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| invalid())?;
    Ok(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// A piece as a word to find; None when it holds no letter or digit.
fn word(piece: &Piece) -> Option<Word> {
    if piece.quoted {
        return terms_word(&piece.text);
    }
    let text = piece
        .text
        .trim_start_matches(|c: char| !c.is_alphanumeric() && c != '#')
        .trim_end_matches(|c: char| !c.is_alphanumeric() && c != '*');
    if text.starts_with('#') {
        if let Some(tag) = hashtag(text) {
            return Some(Word::Hashtag(tag));
        }
    }
    if let Some(stem) = text.strip_suffix('*') {
        let stem = stem.trim_end_matches('*');
        if let Some(prefix) = prefix(stem) {
            return Some(Word::Prefix(prefix));
        }
        return terms_word(stem);
    }
    terms_word(text)
}

/// A text's terms: one term, or a phrase of several.
fn terms_word(text: &str) -> Option<Word> {
    let mut terms: Vec<String> = tokens(text).into_iter().map(|t| t.term).collect();
    match terms.len() {
        0 => None,
        1 => terms.pop().map(Word::Term),
        _ => Some(Word::Phrase(terms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(t: &str) -> Word {
        Word::Term(t.into())
    }

    #[test]
    fn words_and_phrases_and_exclusions() {
        let q = parse(r#"Running "quick brown" -fox -"lazy dog""#).expect("parse");
        assert_eq!(
            q.words,
            [
                term("run"),
                Word::Phrase(vec!["quick".into(), "brown".into()])
            ]
        );
        assert_eq!(
            q.excluded,
            [term("fox"), Word::Phrase(vec!["lazi".into(), "dog".into()])]
        );
    }

    #[test]
    fn prefixes_hashtags_and_punctuation() {
        let q = parse("deploy* #Release-2 (hello), *").expect("parse");
        assert_eq!(
            q.words,
            [
                Word::Prefix("deploy".into()),
                Word::Hashtag("#release-2".into()),
                term("hello")
            ]
        );
    }

    #[test]
    fn flags_with_and_without_a_space() {
        let q = parse("FROM:@Alice in: ~town-square -in:off-topic -from:bob on:2026-03-01 word")
            .expect("parse");
        assert_eq!(q.from, ["alice"]);
        assert_eq!(q.not_from, ["bob"]);
        assert_eq!(q.in_channels, ["town-square"]);
        assert_eq!(q.not_in, ["off-topic"]);
        assert_eq!(q.on, Some(parse_day("2026-03-01").expect("day")));
        assert_eq!(q.words, [term("word")]);
        let q = parse("in:@carol before:1970-01-02 after:1970-01-01").expect("parse");
        assert_eq!(q.in_channels, ["@carol"]);
        assert_eq!((q.before, q.after), (Some(1), Some(0)));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(parse(""), Err(QueryError::Empty));
        assert_eq!(parse("   "), Err(QueryError::Empty));
        assert_eq!(parse("*"), Err(QueryError::Empty));
        assert_eq!(parse("-word"), Err(QueryError::Empty));
        assert_eq!(parse(r#""open quote"#), Err(QueryError::UnbalancedQuote));
        assert_eq!(parse(&"x".repeat(10_000)), Err(QueryError::TooLong));
        assert!(matches!(
            parse("on:2026-02-30"),
            Err(QueryError::InvalidDate(_))
        ));
        assert!(matches!(
            parse("before:yesterday"),
            Err(QueryError::InvalidDate(_))
        ));
        assert_eq!(parse("-on:2026-01-01 x"), Err(QueryError::ExcludedDate));
        let many = vec!["w"; MAX_QUERY_WORDS + 1].join(" ");
        assert_eq!(parse(&many), Err(QueryError::TooManyWords));
    }

    #[test]
    fn days_count_from_the_epoch() {
        assert_eq!(parse_day("1970-01-01"), Ok(0));
        assert_eq!(parse_day("2000-03-01"), Ok(11_017));
    }
}
