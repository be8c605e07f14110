//! Post search: the caller's channels, a cursor per channel built from the query, merged newest
//! first across channels with a heap, each candidate's time mapped to its post
//! (`channelid_createat_postid`) and checked against it (phrases, exclusions, authors, time) and
//! kept until one page (plus one, for `has_next`) is full. Posts of different channels made at
//! the same millisecond come in post id order. The work is bounded by the page, by the channels
//! searched, and by a budget of keys read.

use super::adjacent;
use super::cursor::{pos_at_or_before, pos_create_at, Cursor, TermIterators};
use super::index::{holds_term, is_searchable, terms_of};
use super::numbered;
use super::parse::{ParsedQuery, Word};
use super::tokenize::{author_term, hashtags, tokens, Token, MAX_TERM_BYTES};
use crate::cf::Cf;
use crate::error::Result;
use crate::id::Id;
use crate::keys::{id2, prefix_end, KeyBuf};
use crate::model::{Channel, ChannelType, Post};
use crate::query::PostPage;
use crate::read::Reader;
use rocksdb::DBRawIterator;
use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// At most this many index terms stand for one `prefix*` (the first ones in byte order).
pub const MAX_PREFIX_TERMS: usize = 64;

/// Keys a search may read before it answers with what it found (`truncated`).
pub const DEFAULT_KEY_BUDGET: u64 = 200_000;

const DAY_MS: i64 = 86_400_000;

/// What to search and for whom.
#[derive(Debug, Clone)]
pub struct PostSearch {
    pub user: Id,
    /// One team's channels (and the user's direct and group channels), or all of them.
    pub team: Option<Id>,
    pub query: ParsedQuery,
    /// Any word matches instead of every word.
    pub is_or: bool,
    /// The caller's offset from UTC in seconds (dates are days of their calendar).
    pub time_zone_offset_secs: i64,
    pub include_deleted_channels: bool,
    pub page: usize,
    pub per_page: usize,
    pub key_budget: u64,
}

/// A page of search results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchResults {
    pub page: PostPage,
    /// For each post of the page, the words of its text that matched (for highlighting).
    pub matches: Vec<(Id, Vec<String>)>,
    /// The key budget ran out: there may be matches this page does not show.
    pub truncated: bool,
}

/// The channels a search covers ([`Reader::search_channels`]).
#[derive(Debug, Clone, Default)]
pub struct Covered {
    pub ids: Vec<Id>,
    /// Each was read and found searchable; else each is read when it first offers a post that
    /// answers the query.
    pub checked: bool,
}

/// One channel's candidates.
struct Stream<'r> {
    channel: Id,
    cursor: Cursor<'r>,
    /// Candidates older than this are out of the time window.
    oldest: u64,
}

impl Reader<'_> {
    /// The channels a search covers: the user's memberships, never another channel. With
    /// `in:` or `-in:` the channel records are read to match names, and archived channels are
    /// left out here (`checked`); without, only the ids are listed, and a channel's record is
    /// read when it first offers a post that answers the query ([`Reader::searchable`]): a
    /// search over 200 channels reads the records of the few its page comes from, not 200.
    pub fn search_channels(&self, search: &PostSearch) -> Result<Covered> {
        let mut ids = Vec::new();
        let prefixes = match search.team {
            Some(team) => vec![id2(search.user, team), id2(search.user, Id::NONE)],
            None => vec![search.user.as_bytes().to_vec()],
        };
        for prefix in prefixes {
            self.scan_prefix(Cf::UseridTeamidChannelid, &prefix, false, |key, _| {
                ids.extend(key.get(32..).and_then(Id::from_slice));
                true
            })?;
        }
        ids.sort();
        ids.dedup();
        let query = &search.query;
        if query.in_channels.is_empty() && query.not_in.is_empty() {
            return Ok(Covered {
                ids,
                checked: false,
            });
        }
        let mut channels = Vec::new();
        for id in ids {
            let Some(channel) = self.channel(id)? else {
                continue;
            };
            if channel.delete_at != 0 && !search.include_deleted_channels {
                continue;
            }
            if !query.in_channels.is_empty()
                && !self.any_channel_spec(&channel, &query.in_channels, search.user)?
            {
                continue;
            }
            if self.any_channel_spec(&channel, &query.not_in, search.user)? {
                continue;
            }
            channels.push(channel.id);
        }
        Ok(Covered {
            ids: channels,
            checked: true,
        })
    }

    /// Whether a listed channel may be searched (it exists, and is live or deleted channels
    /// are asked for), read once per search.
    fn searchable(
        &self,
        known: &mut HashMap<Id, bool>,
        channel: Id,
        search: &PostSearch,
    ) -> Result<bool> {
        if let Some(ok) = known.get(&channel) {
            return Ok(*ok);
        }
        let ok = self
            .channel(channel)?
            .is_some_and(|c| c.delete_at == 0 || search.include_deleted_channels);
        known.insert(channel, ok);
        Ok(ok)
    }

    /// Whether `channel` is one of `specs`: a channel name, or `@user` for the direct channel
    /// with that user.
    fn any_channel_spec(&self, channel: &Channel, specs: &[String], me: Id) -> Result<bool> {
        for spec in specs {
            if let Some(username) = spec.strip_prefix('@') {
                if channel.channel_type != ChannelType::Direct {
                    continue;
                }
                let Some(other) = self.user_by_username(username)? else {
                    continue;
                };
                let with_self = other.id == me;
                let me_text = me.to_base32();
                if with_self {
                    if channel.name == format!("{me_text}__{me_text}") {
                        return Ok(true);
                    }
                } else if self.is_channel_member(channel.id, other.id)? {
                    return Ok(true);
                }
            } else if channel.channel_type != ChannelType::Direct
                && channel.channel_type != ChannelType::Group
                && channel.name == *spec
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Up to [`MAX_PREFIX_TERMS`] index terms starting with `prefix`, one seek each.
    fn expand_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let mut terms = Vec::new();
        let lower = prefix.as_bytes().to_vec();
        let upper = prefix_end(&lower);
        let mut it = self.raw_iter(Cf::TermBucketChannelidCreateats, &lower, upper.as_deref())?;
        it.seek(&lower);
        while terms.len() < MAX_PREFIX_TERMS {
            self.count(1);
            let Some(key) = it.key() else {
                it.status()?;
                break;
            };
            let Some(end) = key.iter().position(|b| *b == 0) else {
                break;
            };
            let Ok(term) = std::str::from_utf8(&key[..end]) else {
                break;
            };
            terms.push(term.to_string());
            // Past every key of this term: `term · 0x01` sorts after `term · 0x00 · …`.
            let next = KeyBuf::new().str(term).byte(1).build();
            it.seek(&next);
        }
        Ok(terms)
    }

    /// Searches posts: the newest matches first, one page.
    pub fn search_posts(&self, search: &PostSearch) -> Result<SearchResults> {
        let query = &search.query;
        let start_keys = self.keys_read();
        let (oldest, newest) = time_window(query, search.time_zone_offset_secs);
        let mut results = SearchResults::default();
        if oldest > newest || search.per_page == 0 {
            return Ok(results);
        }
        let mut from = Vec::new();
        for name in &query.from {
            if let Some(user) = self.user_by_username(name)? {
                from.push(user.id);
            }
        }
        if !query.from.is_empty() && from.is_empty() {
            return Ok(results);
        }
        let mut not_from = BTreeSet::new();
        for name in &query.not_from {
            if let Some(user) = self.user_by_username(name)? {
                not_from.insert(user.id);
            }
        }
        let mut prefixes = Vec::new();
        for word in &query.words {
            if let Word::Prefix(p) = word {
                prefixes.push((p.clone(), self.expand_prefix(p)?));
            }
        }
        let covered = self.search_channels(search)?;
        let mut known = HashMap::new();
        let mut streams = Vec::with_capacity(covered.ids.len());
        let mut iterators = TermIterators::new(&covered.ids);
        let required = Required::of(self, search, &from)?;
        for channel in &covered.ids {
            let cursor = self.channel_cursor(
                &mut iterators,
                *channel,
                search,
                &from,
                &prefixes,
                &required,
            )?;
            streams.push(Stream {
                channel: *channel,
                cursor,
                oldest,
            });
        }
        let first = pos_at_or_before(newest);
        // (position, a bound rather than a candidate, stream).
        let mut heap = BinaryHeap::new();
        for (index, stream) in streams.iter_mut().enumerate() {
            if let Some(h) = stream.cursor.seek(self, first)? {
                heap.push(Reverse((h.pos, !h.exact, index)));
            }
        }
        let phrases = required_phrases(search);
        let mut posts_by_time = self.raw_iter(Cf::ChannelidCreateatPostid, &[], None)?;
        let skip = search.page.saturating_mul(search.per_page);
        let mut accepted = 0usize;
        let mut order = Vec::new();
        let mut has_next = false;
        let mut group = Vec::new();
        let mut candidates = Vec::new();
        // The page's posts, as checked: the answer is built from them without reading again.
        let mut found = Vec::new();
        'search: while let Some(Reverse((p, bound, index))) = heap.pop() {
            if self.keys_read() - start_keys > search.key_budget {
                results.truncated = true;
                break;
            }
            // Every channel standing on this millisecond, so that their posts come in id order.
            group.clear();
            group.push((index, bound));
            while let Some(Reverse((q, bound, other))) = heap.peek() {
                if *q != p {
                    break;
                }
                group.push((*other, *bound));
                heap.pop();
            }
            group.retain(|(index, _)| pos_create_at(p) >= streams[*index].oldest);
            // A channel found not searchable offers nothing, now or later. Whether a channel
            // may be searched is read when it first offers a post that answers the query:
            // most candidates of a phrase do not, and their channels' records stay unread.
            if !covered.checked {
                group.retain(|(index, _)| known.get(&streams[*index].channel) != Some(&false));
            }
            // A channel at a bound reads on first: it may have a candidate at this very
            // millisecond, which must be checked with the others here, in id order.
            if group.iter().any(|(_, bound)| *bound) {
                for (index, bound) in &group {
                    if !*bound {
                        heap.push(Reverse((p, false, *index)));
                    } else if let Some(h) = streams[*index].cursor.seek(self, p)? {
                        heap.push(Reverse((h.pos, !h.exact, *index)));
                    }
                }
                continue;
            }
            candidates.clear();
            for (index, _) in &group {
                let stream = &streams[*index];
                match stream.cursor.post_at(p) {
                    Some(post) => candidates.push(post),
                    None => self.posts_at(
                        &mut posts_by_time,
                        stream.channel,
                        pos_create_at(p),
                        &phrases,
                        &mut candidates,
                    )?,
                }
            }
            candidates.sort();
            for post_id in &candidates {
                if self.keys_read() - start_keys > search.key_budget {
                    results.truncated = true;
                    break 'search;
                }
                if let Some((post, matched)) = self.check(*post_id, search, &from, &not_from)? {
                    if !covered.checked && !self.searchable(&mut known, post.channel_id, search)? {
                        continue;
                    }
                    if accepted >= skip {
                        if order.len() == search.per_page {
                            has_next = true;
                            break 'search;
                        }
                        order.push(*post_id);
                        results.matches.push((*post_id, matched));
                        found.push(post);
                    }
                    accepted += 1;
                }
            }
            for (index, _) in &group {
                let Some(next) = p.checked_add(1) else {
                    continue;
                };
                if let Some(h) = streams[*index].cursor.seek(self, next)? {
                    heap.push(Reverse((h.pos, !h.exact, *index)));
                }
            }
        }
        results.page = self.page_with(order, found, has_next)?;
        Ok(results)
    }

    /// The cursor of one channel. With two or more separate words that must all hold, the
    /// terms (words, hashtags, a phrase's words, the authors as one part) are ANDed on the
    /// bitmaps of numbered posts, with any prefix words leapfrogged beside them
    /// ([`required_parts`]); otherwise every word's leaf, joined by AND (or OR), and the
    /// authors.
    fn channel_cursor<'r>(
        &'r self,
        iterators: &mut TermIterators<'r>,
        channel: Id,
        search: &PostSearch,
        from: &[Id],
        prefixes: &[(String, Vec<String>)],
        required: &Required,
    ) -> Result<Cursor<'r>> {
        let parts = &required.parts;
        if parts.len() >= 2 {
            let older = if required.all_numbered {
                None
            } else {
                Some(self.older_cursor(iterators, channel, parts)?)
            };
            let numbered = Cursor::numbered(self, iterators, channel, parts, older)?;
            let mut all = vec![numbered];
            for word in &search.query.words {
                if let Word::Prefix(_) = word {
                    all.push(self.word_cursor(iterators, channel, word, prefixes)?);
                }
            }
            return Ok(match all.len() {
                1 => all.pop().unwrap_or(Cursor::Empty),
                _ => Cursor::And(all),
            });
        }
        let mut words = Vec::new();
        for word in &search.query.words {
            words.push(self.word_cursor(iterators, channel, word, prefixes)?);
        }
        let mut parts = Vec::new();
        match (search.is_or, words.len()) {
            (_, 0) => {}
            (true, _) => parts.push(Cursor::Or(words)),
            (false, _) => parts.extend(words),
        }
        if !from.is_empty() {
            let mut authors = Vec::new();
            for user in from {
                authors.push(Cursor::term(self, iterators, &author_term(*user), channel)?);
            }
            parts.push(Cursor::Or(authors));
        }
        Ok(match parts.len() {
            0 => Cursor::live(self, channel)?,
            1 => parts.pop().unwrap_or(Cursor::Empty),
            _ => Cursor::And(parts),
        })
    }

    /// The same AND as a numbered cursor's, on the time blocks: it finds a channel's posts from
    /// before numbering.
    fn older_cursor<'r>(
        &'r self,
        iterators: &mut TermIterators<'r>,
        channel: Id,
        parts: &[Vec<String>],
    ) -> Result<Cursor<'r>> {
        let mut all = Vec::with_capacity(parts.len());
        for part in parts {
            let mut terms = Vec::with_capacity(part.len());
            for term in part {
                terms.push(Cursor::term(self, iterators, term, channel)?);
            }
            all.push(match terms.len() {
                1 => terms.pop().unwrap_or(Cursor::Empty),
                _ => Cursor::Or(terms),
            });
        }
        Ok(Cursor::And(all))
    }

    fn word_cursor<'r>(
        &'r self,
        iterators: &mut TermIterators<'r>,
        channel: Id,
        word: &Word,
        prefixes: &[(String, Vec<String>)],
    ) -> Result<Cursor<'r>> {
        Ok(match word {
            Word::Term(term) | Word::Hashtag(term) => Cursor::term(self, iterators, term, channel)?,
            Word::Phrase(terms) => {
                let distinct: BTreeSet<&String> = terms.iter().collect();
                let mut children = Vec::new();
                for term in distinct {
                    children.push(Cursor::term(self, iterators, term, channel)?);
                }
                Cursor::And(children)
            }
            Word::Prefix(prefix) => {
                let terms = prefixes
                    .iter()
                    .find(|(p, _)| p == prefix)
                    .map(|(_, terms)| terms.as_slice())
                    .unwrap_or_default();
                if terms.is_empty() {
                    Cursor::Empty
                } else {
                    let mut children = Vec::new();
                    for term in terms {
                        children.push(Cursor::term(self, iterators, term, channel)?);
                    }
                    Cursor::Or(children)
                }
            }
        })
    }

    /// The posts of `channel` made at `create_at` (one, but for data written before post times
    /// were made unique within a channel), added to `out` unless their time key's filter of
    /// adjacent words ([`adjacent`]) proves one of `phrases` absent: such a post cannot answer
    /// the search, and is dropped without reading it.
    fn posts_at(
        &self,
        it: &mut DBRawIterator,
        channel: Id,
        create_at: u64,
        phrases: &[&[String]],
        out: &mut Vec<Id>,
    ) -> Result<()> {
        let prefix = KeyBuf::new().id(channel).u64(create_at).build();
        it.seek(&prefix);
        loop {
            self.count(1);
            match it.key() {
                Some(key) if key.len() == 40 && key.starts_with(&prefix) => {
                    let filter = it.value().unwrap_or_default();
                    if phrases
                        .iter()
                        .all(|phrase| adjacent::may_hold(filter, phrase))
                    {
                        out.extend(Id::from_slice(&key[24..]));
                    }
                    it.next();
                }
                _ => return Ok(it.status()?),
            }
        }
    }

    /// Checks a candidate against its post; the post and its matched words when it is a result.
    fn check(
        &self,
        post_id: Id,
        search: &PostSearch,
        from: &[Id],
        not_from: &BTreeSet<Id>,
    ) -> Result<Option<(Post, Vec<String>)>> {
        let Some(post) = self.post(post_id)? else {
            return Ok(None);
        };
        if !passes_filters(&post, from, not_from) {
            return Ok(None);
        }
        let text = Analysed::of(&post);
        if !answers(&text, &search.query, search.is_or) {
            return Ok(None);
        }
        let matched = highlights(&post, &text, &search.query);
        Ok(Some((post, matched)))
    }
}

/// What a search ANDs on the bitmaps of numbered posts, worked out once for all its channels.
struct Required {
    /// See [`required_parts`]; empty when the search does not use the bitmaps.
    parts: Vec<Vec<String>>,
    /// Every post is numbered (read only when `parts` is used).
    all_numbered: bool,
}

impl Required {
    fn of(reader: &Reader, search: &PostSearch, from: &[Id]) -> Result<Required> {
        let parts = required_parts(search, from);
        let all_numbered = !parts.is_empty()
            && reader
                .get_raw(Cf::Meta, numbered::ALL_NUMBERED_KEY)?
                .is_some();
        Ok(Required {
            parts,
            all_numbered,
        })
    }
}

/// The terms an AND search of two or more separate words requires, as parts that must all hold
/// (a part: any of its terms): each word, hashtag and phrase word alone, the authors together.
/// Prefixes are not parts (they stand for many terms). Empty for an OR search, and for a search
/// with fewer than two separate words (a phrase alone, one word with `from:`): a phrase's words,
/// or an author and a word, most often meet within a few posts, where the time blocks' leapfrog
/// finds them without the bitmaps' lookup per candidate, and measured faster (BENCHMARKS.md).
fn required_parts(search: &PostSearch, from: &[Id]) -> Vec<Vec<String>> {
    if search.is_or {
        return Vec::new();
    }
    let mut words = BTreeSet::new();
    let mut single = BTreeSet::new();
    for word in &search.query.words {
        match word {
            Word::Term(term) | Word::Hashtag(term) => {
                words.insert(term.clone());
                single.insert(term.clone());
            }
            Word::Phrase(terms) => single.extend(terms.iter().cloned()),
            Word::Prefix(_) => {}
        }
    }
    if words.len() < 2 {
        return Vec::new();
    }
    let mut parts: Vec<Vec<String>> = single.into_iter().map(|t| vec![t]).collect();
    if !from.is_empty() {
        parts.push(from.iter().map(|user| author_term(*user)).collect());
    }
    parts
}

/// The phrases of two or more words every result must hold: those of an AND search (in an OR
/// search, a post may answer through another word).
fn required_phrases(search: &PostSearch) -> Vec<&[String]> {
    if search.is_or {
        return Vec::new();
    }
    search
        .query
        .words
        .iter()
        .filter_map(|word| match word {
            Word::Phrase(terms) if terms.len() >= 2 => Some(terms.as_slice()),
            _ => None,
        })
        .collect()
}

/// The window of creation times `[oldest, newest]` the dates allow, in the caller's zone.
pub fn time_window(query: &ParsedQuery, offset_secs: i64) -> (u64, u64) {
    let offset_ms = offset_secs.saturating_mul(1000);
    let start_of = |day: i64| day.saturating_mul(DAY_MS).saturating_sub(offset_ms);
    let mut oldest = i64::MIN;
    let mut newest = i64::MAX;
    if let Some(day) = query.on {
        oldest = oldest.max(start_of(day));
        newest = newest.min(start_of(day.saturating_add(1)).saturating_sub(1));
    }
    if let Some(day) = query.after {
        oldest = oldest.max(start_of(day.saturating_add(1)));
    }
    if let Some(day) = query.before {
        newest = newest.min(start_of(day).saturating_sub(1));
    }
    let clamp = |t: i64| u64::try_from(t.max(0)).unwrap_or(0);
    if newest < 0 {
        return (1, 0);
    }
    (clamp(oldest), clamp(newest))
}

/// A post's text split once: its word tokens (in text order, for phrases and highlighting),
/// its hashtags, and the terms the index holds for it. Tokenizing stems every word, the
/// costliest part of checking a candidate, so a check and its highlights share one pass. The
/// set of terms is built only when a prefix needs it: words and phrases scan the tokens.
struct Analysed {
    author: Id,
    words: Vec<Token>,
    tags: Vec<Token>,
    terms: OnceCell<BTreeSet<String>>,
}

impl Analysed {
    fn of(post: &Post) -> Analysed {
        Analysed {
            author: post.user_id,
            words: tokens(&post.message),
            tags: hashtags(&post.message),
            terms: OnceCell::new(),
        }
    }

    fn terms(&self) -> &BTreeSet<String> {
        self.terms
            .get_or_init(|| terms_of(&self.words, &self.tags, self.author))
    }

    fn matches(&self, word: &Word) -> bool {
        match word {
            Word::Term(term) | Word::Hashtag(term) => {
                holds_term(&self.words, &self.tags, self.author, term)
            }
            Word::Phrase(phrase) => {
                !phrase.is_empty()
                    && self.words.windows(phrase.len()).any(|window| {
                        window
                            .iter()
                            .zip(phrase)
                            .all(|(token, term)| token.term == *term)
                    })
            }
            Word::Prefix(prefix) => self
                .terms()
                .range(prefix.clone()..)
                .take_while(|t| t.starts_with(prefix.as_str()))
                .next()
                .is_some(),
        }
    }
}

/// Whether a post answers a query (everything but the channel and time): the one definition
/// the index-driven search and a scan of every post agree on.
pub fn post_matches(
    post: &Post,
    query: &ParsedQuery,
    is_or: bool,
    from: &[Id],
    not_from: &BTreeSet<Id>,
) -> bool {
    passes_filters(post, from, not_from) && answers(&Analysed::of(post), query, is_or)
}

/// The checks that need no look at the words: live, searchable, and by an allowed author.
fn passes_filters(post: &Post, from: &[Id], not_from: &BTreeSet<Id>) -> bool {
    post.delete_at == 0
        && is_searchable(post)
        && (from.is_empty() || from.contains(&post.user_id))
        && !not_from.contains(&post.user_id)
}

fn answers(text: &Analysed, query: &ParsedQuery, is_or: bool) -> bool {
    let mut words = query.words.iter().map(|w| text.matches(w));
    let words_ok = if query.words.is_empty() {
        true
    } else if is_or {
        words.any(|m| m)
    } else {
        words.all(|m| m)
    };
    words_ok && !query.excluded.iter().any(|w| text.matches(w))
}

/// The words of a post's text that a query's words matched, in text order, once each.
pub fn matched_words(post: &Post, query: &ParsedQuery) -> Vec<String> {
    highlights(post, &Analysed::of(post), query)
}

fn highlights(post: &Post, text: &Analysed, query: &ParsedQuery) -> Vec<String> {
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    let mut prefixes: Vec<&str> = Vec::new();
    for word in &query.words {
        match word {
            Word::Term(t) | Word::Hashtag(t) => {
                wanted.insert(t);
            }
            Word::Phrase(terms) => wanted.extend(terms.iter().map(String::as_str)),
            Word::Prefix(p) => prefixes.push(p),
        }
    }
    let mut found: Vec<(usize, String)> = Vec::new();
    for token in text.words.iter().chain(&text.tags) {
        let hit = wanted.contains(token.term.as_str())
            || prefixes.iter().any(|p| token.term.starts_with(p));
        if hit {
            if let Some(word) = post.message.get(token.start..token.end) {
                found.push((token.start, word.to_string()));
            }
        }
    }
    found.sort();
    let mut seen = BTreeSet::new();
    found
        .into_iter()
        .filter(|(_, word)| seen.insert(word.clone()))
        .map(|(_, word)| word)
        .collect()
}

/// Terms are capped, so a query word can never need a longer key.
const _: () = assert!(MAX_TERM_BYTES < 256);
