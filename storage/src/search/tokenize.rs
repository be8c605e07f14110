//! Text to index terms, the same way for posts at apply and for queries: Unicode word boundaries
//! (UAX #29), case and accents folded, English words stemmed (Snowball English, the Porter2
//! stemmer PostgreSQL's `english` configuration uses), runs of CJK characters (scripts written
//! without spaces) cut into overlapping bigrams, `#hashtags` kept whole. Deterministic: every
//! replica derives the same terms from the same text.

use rust_stemmers::{Algorithm, Stemmer};
use std::cell::RefCell;
use std::collections::HashMap;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Longest term kept, in bytes; longer words are cut (at a character boundary) on both sides,
/// so a term is always a short key part and a 10,000-character query word costs nothing more.
pub const MAX_TERM_BYTES: usize = 64;

/// Lowercase, compatibility-decomposed, without combining marks, recomposed (so Hangul stays
/// syllables): "Ångström" and "angstrom" fold alike. ASCII text, most words of most posts, has
/// nothing to decompose or recompose, so it is only lowercased, without normalization's
/// per-character iterators (the terms are the same).
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    fold_unicode(text)
}

fn fold_unicode(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .nfc()
        .collect()
}

/// Cuts a term to [`MAX_TERM_BYTES`] at a character boundary.
pub fn cap(mut term: String) -> String {
    if term.len() > MAX_TERM_BYTES {
        let mut end = MAX_TERM_BYTES;
        while !term.is_char_boundary(end) {
            end -= 1;
        }
        term.truncate(end);
    }
    term
}

/// Scripts written without spaces between words: Han, Hiragana, Katakana, Hangul (Korean has
/// spaces, but its particles attach to words, so bigrams find stems there too).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF | 0x3040..=0x30FF | 0x3130..=0x318F | 0x31F0..=0x31FF
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF
        | 0xFF66..=0xFF9F | 0x20000..=0x2FFFF)
}

/// One word of a text as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The term stored in the index.
    pub term: String,
    /// Byte range of the word in the original text it came from (for `matches`).
    pub start: usize,
    pub end: usize,
}

/// The English stemmer (cheap to create: a function table).
fn stemmer() -> Stemmer {
    Stemmer::create(Algorithm::English)
}

/// Numbers and codes (words holding digits) are not stemmed: they stay as written.
fn holds_digits(folded: &str) -> bool {
    folded.chars().any(|c| c.is_numeric())
}

/// A folded word's term: stemmed unless it holds digits.
fn stem(stemmer: &Stemmer, folded: &str) -> String {
    if holds_digits(folded) {
        cap(folded.to_string())
    } else {
        cap(stemmer.stem(folded).into_owned())
    }
}

/// Most words bounded: past it the thread's remembered stems start over.
const MAX_REMEMBERED_STEMS: usize = 16_384;

thread_local! {
    /// Stems already worked out on this thread, by folded word. Stemming is the costliest step
    /// of tokenizing, and posts draw on one vocabulary: a search's candidates, and the posts
    /// apply indexes, mostly repeat words seen before. Per thread, so no lock; the stems are
    /// the stemmer's, so the terms are the same with or without it.
    static REMEMBERED_STEMS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// [`stem`], remembered on this thread. Words holding digits (mostly seen once) are not, nor
/// words longer than a term: the bound on entries then bounds the memory too.
fn remembered_stem(stemmer: &Stemmer, folded: String) -> String {
    if holds_digits(&folded) {
        return cap(folded);
    }
    if folded.len() > MAX_TERM_BYTES {
        return stem(stemmer, &folded);
    }
    REMEMBERED_STEMS.with(|cell| {
        let Ok(mut stems) = cell.try_borrow_mut() else {
            return stem(stemmer, &folded);
        };
        if let Some(term) = stems.get(&folded) {
            return term.clone();
        }
        let term = stem(stemmer, &folded);
        if stems.len() >= MAX_REMEMBERED_STEMS {
            stems.clear();
        }
        stems.insert(folded, term.clone());
        term
    })
}

/// The text's terms in order (phrases are checked on this sequence). CJK runs — consecutive
/// CJK words with nothing between them — become bigrams, or the character alone in a run of one.
pub fn tokens(text: &str) -> Vec<Token> {
    tokenize(text, true)
}

/// [`tokens`] with every word stemmed afresh, none remembered: for tests that the remembered
/// stems change nothing.
#[doc(hidden)]
pub fn tokens_stemmed_afresh(text: &str) -> Vec<Token> {
    tokenize(text, false)
}

fn tokenize(text: &str, remembered: bool) -> Vec<Token> {
    let stemmer = stemmer();
    let mut out = Vec::new();
    // The CJK run being collected: characters with their byte ranges in `text`.
    let mut run: Vec<(char, usize, usize)> = Vec::new();
    for (start, word) in text.unicode_word_indices() {
        let end = start + word.len();
        if word.chars().any(is_cjk) {
            if run.last().is_some_and(|last| last.2 != start) {
                flush_run(&mut run, &mut out);
            }
            for (offset, c) in word.char_indices() {
                run.push((c, start + offset, start + offset + c.len_utf8()));
            }
            continue;
        }
        flush_run(&mut run, &mut out);
        let folded = fold(word);
        if folded.is_empty() {
            continue;
        }
        let term = if remembered {
            remembered_stem(&stemmer, folded)
        } else {
            stem(&stemmer, &folded)
        };
        out.push(Token { term, start, end });
    }
    flush_run(&mut run, &mut out);
    out
}

fn flush_run(run: &mut Vec<(char, usize, usize)>, out: &mut Vec<Token>) {
    let folded: Vec<(String, usize, usize)> = run
        .drain(..)
        .map(|(c, start, end)| (fold(c.encode_utf8(&mut [0; 4])), start, end))
        .filter(|(text, _, _)| !text.is_empty())
        .collect();
    if folded.len() == 1 {
        let (text, start, end) = &folded[0];
        out.push(Token {
            term: text.clone(),
            start: *start,
            end: *end,
        });
        return;
    }
    for pair in folded.windows(2) {
        out.push(Token {
            term: cap(format!("{}{}", pair[0].0, pair[1].0)),
            start: pair[0].1,
            end: pair[1].2,
        });
    }
}

/// Whether `c` may continue a hashtag (Mattermost: letters, digits, `-`, `_`, `.`).
fn hashtag_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A `#tag` word as Mattermost recognises it — `#`, a letter or digit, then letters, digits,
/// `-`, `_`, `.`, ending in a letter or digit, at least two characters after `#` — folded, with
/// its `#`. Trailing punctuation is not part of the tag.
pub fn hashtag(word: &str) -> Option<String> {
    let tag = word.strip_prefix('#')?;
    let tag = tag.trim_end_matches(|c: char| !c.is_alphanumeric());
    let first = tag.chars().next()?;
    if !first.is_alphanumeric() || tag.chars().count() < 2 || !tag.chars().all(hashtag_char) {
        return None;
    }
    Some(cap(format!("#{}", fold(tag))))
}

/// The hashtags of a text, with their byte ranges.
pub fn hashtags(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in text.split_inclusive(char::is_whitespace) {
        let trimmed = piece.trim_end();
        if let Some(term) = hashtag(trimmed) {
            let len = trimmed
                .trim_end_matches(|c: char| !c.is_alphanumeric())
                .len();
            out.push(Token {
                term,
                start: offset,
                end: offset + len,
            });
        }
        offset += piece.len();
    }
    out
}

/// The folded, unstemmed form of a prefix query word (`runn*` matches terms starting `runn`).
pub fn prefix(word: &str) -> Option<String> {
    let folded = fold(word);
    let mut words = folded.unicode_words();
    let first = words.next()?;
    if words.next().is_some() || first.chars().any(is_cjk) {
        return None;
    }
    Some(cap(first.to_string()))
}

/// The index term for a post's author (`from:`): never a word (words hold no `@`).
pub fn author_term(user: crate::id::Id) -> String {
    format!("@{}", user.to_base32())
}

/// A text's terms, in order (for the tests of this and other search modules).
#[cfg(test)]
pub(crate) fn terms(text: &str) -> Vec<String> {
    tokens(text).into_iter().map(|t| t.term).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_folds_as_the_full_unicode_path_does() {
        let every_ascii: String = (0u8..=127).map(char::from).collect();
        assert_eq!(fold(&every_ascii), fold_unicode(&every_ascii));
        for word in ["Hello", "MiXeD-Case_42", "ALLCAPS", "", "tab\there"] {
            assert_eq!(fold(word), fold_unicode(word), "{word}");
        }
    }

    #[test]
    fn words_are_folded_and_stemmed() {
        assert_eq!(terms("Running RUNS ran"), ["run", "run", "ran"]);
        assert_eq!(terms("Ångström café"), ["angstrom", "cafe"]);
        assert_eq!(
            terms("release 1.2.3 build42"),
            ["releas", "1.2.3", "build42"]
        );
    }

    #[test]
    fn cjk_runs_become_bigrams() {
        assert_eq!(
            terms("東京都に行く"),
            ["東京", "京都", "都に", "に行", "行く"]
        );
        assert_eq!(terms("日 本"), ["日", "本"]);
        assert_eq!(terms("hello世界"), ["hello", "世界"]);
    }

    #[test]
    fn token_ranges_point_into_the_original_text() {
        let text = "Ünïcode runners";
        let found = tokens(text);
        assert_eq!(&text[found[1].start..found[1].end], "runners");
        assert_eq!(&text[found[0].start..found[0].end], "Ünïcode");
    }

    #[test]
    fn hashtags_are_exact_and_folded() {
        let found: Vec<String> = hashtags("see #Release-2.0, #a and #ok!")
            .into_iter()
            .map(|t| t.term)
            .collect();
        assert_eq!(found, ["#release-2.0", "#ok"]);
        assert_eq!(hashtag("#"), None);
        assert_eq!(hashtag("#-x"), None);
    }

    #[test]
    fn long_words_are_capped_at_a_char_boundary() {
        let word = "é".repeat(10_000);
        let found = terms(&word);
        assert_eq!(found.len(), 1);
        assert!(found[0].len() <= MAX_TERM_BYTES);
        assert_eq!(
            prefix(&"x".repeat(500)).map(|p| p.len()),
            Some(MAX_TERM_BYTES)
        );
    }

    #[test]
    fn prefixes_are_single_unstemmed_words() {
        assert_eq!(prefix("Runn"), Some("runn".into()));
        assert_eq!(prefix("two words"), None);
        assert_eq!(prefix(""), None);
    }
}
