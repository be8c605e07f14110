//! The mix's drafts and searches, as load-test-ng's `simulcontroller` makes them
//! (`drafts.go`, `actions.go`: `upsertDraft`, `deleteDraft`, `searchUsers`, `searchPosts`):
//!
//! - upsert a draft in the current channel, 87 % of them a thread reply's draft;
//! - delete one of the user's drafts (nothing is sent when it has none);
//! - search users: type a username one character at a time (100–300 ms apart, now and then a
//!   wrong character that the next one overwrites), `POST /users/search` at each;
//! - search posts in the team: 1–4 words, with 20 % chances each of `from:` (typed into
//!   `GET /users/autocomplete` until one user is left), `in:` (typed into
//!   `GET /teams/{id}/channels/search_autocomplete` likewise), a date (`on:`, `before:` or
//!   `after:` within the last 7 days), an excluded word and a phrase.
//!
//! load-test-ng picks search words uniformly from its sample text; here they are drawn by the
//! same Zipf law as the mix's posts ([`confab_bench::words`]), so searches find what users wrote.
//! Its search-typing also fetches each listed user's picture; that is left out.

use super::User;
use confab_bench::words::{word, Zipf};
use rand::rngs::StdRng;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::LazyLock;
use std::time::Duration;

/// Words of the mix's posts and searches.
pub const VOCABULARY: usize = 4_000;

static WORDS: LazyLock<Zipf> = LazyLock::new(|| Zipf::new(VOCABULARY));

/// Drafts a user keeps track of (the oldest is forgotten).
const MAX_DRAFTS: usize = 20;

/// A post's text: 6–18 words drawn by the vocabulary's law.
pub fn message(rng: &mut StdRng) -> String {
    let count = rng.random_range(6..=18);
    WORDS.sentence(rng, count)
}

/// A day `days_ago` before today, as the search syntax writes dates (UTC).
fn date(days_ago: u64) -> String {
    let day = time::OffsetDateTime::now_utc().date() - time::Duration::days(days_ago as i64);
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// The terms of one post search, as load-test-ng's `GeneratePostsSearchTerm` writes them.
#[derive(Debug, Default, PartialEq)]
pub struct SearchTerms {
    pub from: Option<String>,
    pub in_channel: Option<String>,
    /// `on:`, `before:` or `after:` with its date.
    pub date: Option<String>,
    pub excluded: Option<String>,
    pub phrase: bool,
    pub words: Vec<String>,
}

impl SearchTerms {
    pub fn draw(rng: &mut StdRng, usernames: &[String], channel_names: &[String]) -> SearchTerms {
        let count = rng.random_range(1..=4);
        SearchTerms {
            from: rng.random_bool(0.2).then(|| pick(rng, usernames)).flatten(),
            in_channel: rng
                .random_bool(0.2)
                .then(|| pick(rng, channel_names))
                .flatten(),
            date: rng.random_bool(0.2).then(|| {
                let day = date(rng.random_range(0..7));
                let op = ["on", "before", "after"][rng.random_range(0..3)];
                format!("{op}:{day}")
            }),
            excluded: rng.random_bool(0.2).then(|| word(WORDS.draw(rng))),
            phrase: rng.random_bool(0.2),
            words: (0..count).map(|_| word(WORDS.draw(rng))).collect(),
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(from) = &self.from {
            out += &format!("from:{from} ");
        }
        if let Some(channel) = &self.in_channel {
            out += &format!("in:{channel} ");
        }
        if let Some(date) = &self.date {
            out += &format!("{date} ");
        }
        if let Some(excluded) = &self.excluded {
            out += &format!("-{excluded} ");
        }
        let words = self.words.join(" ");
        if self.phrase {
            out += &format!("\"{words}\"");
        } else {
            out += &words;
        }
        out
    }
}

impl User {
    /// `upsert_draft`: a draft in the current channel, 87 % of them for a thread.
    pub(super) async fn upsert_draft(&mut self, action: &'static str, rng: &mut StdRng) {
        let channel = self.channels[self.current].clone();
        let root = if rng.random_bool(0.87) {
            match self.some_post(rng) {
                Some((id, root)) if root.is_empty() => id,
                Some((_, root)) => root,
                // load-test-ng's "no posts found in channel": nothing is sent.
                None => return,
            }
        } else {
            String::new()
        };
        let body = json!({
            "user_id": self.id,
            "channel_id": channel,
            "root_id": root,
            "message": message(rng),
            "create_at": crate::proto::unix_ns() / 1_000_000,
        });
        if self
            .call(action, Method::POST, "/drafts", Some(&body))
            .await
            .is_some()
        {
            self.drafts
                .retain(|d| *d != (channel.clone(), root.clone()));
            self.drafts.push((channel, root));
            if self.drafts.len() > MAX_DRAFTS {
                self.drafts.remove(0);
            }
        }
    }

    /// `delete_draft`: one of the user's drafts, when it has any.
    pub(super) async fn delete_draft(&mut self, action: &'static str, rng: &mut StdRng) {
        if self.drafts.is_empty() {
            return;
        }
        let (channel, root) = self
            .drafts
            .swap_remove(rng.random_range(0..self.drafts.len()));
        let mut path = format!("/users/{}/channels/{channel}/drafts", self.id);
        if !root.is_empty() {
            path += &format!("/{root}");
        }
        self.call(action, Method::DELETE, &path, None).await;
    }

    /// `search_users`: a username typed one character at a time.
    pub(super) async fn search_users(&mut self, action: &'static str, rng: &mut StdRng) {
        let Some(username) = pick(rng, &self.spec.usernames) else {
            return;
        };
        self.type_into(
            &username,
            rng,
            false,
            |term| {
                (
                    Method::POST,
                    "/users/search".to_string(),
                    Some(json!({"term": term, "limit": 100})),
                )
            },
            action,
        )
        .await;
    }

    /// `search_posts`: a team search, with its `from:` and `in:` typed into the autocompletes
    /// first.
    pub(super) async fn search_posts(&mut self, action: &'static str, rng: &mut StdRng) {
        let terms = SearchTerms::draw(rng, &self.spec.usernames, &self.spec.channel_names);
        let team = self.spec.team.clone();
        if let Some(from) = &terms.from {
            self.type_into(
                from,
                rng,
                true,
                |name| {
                    let path = format!("/users/autocomplete?in_team={team}&name={name}&limit=25");
                    (Method::GET, path, None)
                },
                action,
            )
            .await;
        }
        if let Some(channel) = &terms.in_channel {
            self.type_into(
                channel,
                rng,
                true,
                |name| {
                    let path = format!("/teams/{team}/channels/search_autocomplete?name={name}");
                    (Method::GET, path, None)
                },
                action,
            )
            .await;
        }
        let body = json!({
            "terms": terms.text(),
            "is_or_search": false,
            "time_zone_offset": 0,
            "page": 0,
            "per_page": 20,
            "include_deleted_channels": false,
        });
        let path = format!("/teams/{team}/posts/search");
        self.call(action, Method::POST, &path, Some(&body)).await;
    }

    /// load-test-ng's `EmulateUserTyping`: one request per character typed, 100–300 ms apart; a
    /// mistyped character (15 %) is sent too before the next one replaces it. With
    /// `until_one`, typing stops once the answer lists exactly one entry, as its `from:` and
    /// `in:` autocompletes do; its user search types the whole name.
    async fn type_into(
        &self,
        text: &str,
        rng: &mut StdRng,
        until_one: bool,
        request: impl Fn(&str) -> (Method, String, Option<Value>),
        action: &'static str,
    ) {
        let pause = Duration::from_millis(rng.random_range(100..=300));
        let chars: Vec<char> = text.chars().collect();
        let mut typed = String::new();
        for (i, c) in chars.iter().enumerate() {
            tokio::time::sleep(pause).await;
            typed.push(*c);
            let (method, path, body) = request(&typed);
            let answer = self.call(action, method, &path, body.as_ref()).await;
            if until_one && listed_one(answer.as_ref()) {
                return;
            }
            if rng.random_bool(0.15) && i + 1 < chars.len() {
                tokio::time::sleep(pause).await;
                let (method, path, body) = request(&format!("{typed}a"));
                self.call(action, method, &path, body.as_ref()).await;
            }
        }
    }
}

fn pick(rng: &mut StdRng, list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list[rng.random_range(0..list.len())].clone())
}

/// Whether an autocomplete answer lists exactly one user or channel (load-test-ng's "found").
fn listed_one(answer: Option<&Value>) -> bool {
    match answer {
        Some(Value::Array(list)) => list.len() == 1,
        Some(Value::Object(map)) => map
            .get("users")
            .and_then(Value::as_array)
            .is_some_and(|users| users.len() == 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn terms_are_written_as_load_test_ng_writes_them() {
        let terms = SearchTerms {
            from: Some("lu7".into()),
            in_channel: Some("town".into()),
            date: Some("on:2026-12-01".into()),
            excluded: Some("kaa".into()),
            phrase: true,
            words: vec!["loo".into(), "mie".into()],
        };
        assert_eq!(
            terms.text(),
            "from:lu7 in:town on:2026-12-01 -kaa \"loo mie\""
        );
        let plain = SearchTerms {
            words: vec!["loo".into()],
            ..SearchTerms::default()
        };
        assert_eq!(plain.text(), "loo");
    }

    #[test]
    fn each_option_comes_about_one_time_in_five() {
        let mut rng = StdRng::seed_from_u64(5);
        let users = vec!["lu1".to_string()];
        let channels = vec!["c1".to_string()];
        let mut counts = [0u32; 5];
        for _ in 0..10_000 {
            let t = SearchTerms::draw(&mut rng, &users, &channels);
            counts[0] += t.from.is_some() as u32;
            counts[1] += t.in_channel.is_some() as u32;
            counts[2] += t.date.is_some() as u32;
            counts[3] += t.excluded.is_some() as u32;
            counts[4] += t.phrase as u32;
            assert!((1..=4).contains(&t.words.len()));
        }
        for count in counts {
            assert!((1_800..2_200).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn dates_are_calendar_days() {
        let today = date(0);
        assert_eq!(today.len(), 10);
        assert!(today.starts_with("20"));
        assert!(date(1) < today);
    }
}
