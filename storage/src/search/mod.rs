//! Search from indexes in RocksDB, replicated and snapshotted with the rest of the state:
//! posts by words, phrases, prefixes, hashtags, author, channel and date ([`parse`] reads the
//! syntax, [`index`] keeps `term_bucket_channelid_createats` and [`numbered`] its bitmaps at apply,
//! [`adjacent`] each post's filter of adjacent words, [`posts`] answers from them),
//! people and channels by name prefix ([`people`]). Text becomes terms in one place
//! ([`tokenize`]), so what apply indexes and what a query asks for always agree.

pub mod adjacent;
pub mod backfill;
mod cursor;
pub mod index;
pub mod numbered;
pub mod parse;
pub mod people;
pub mod postings;
pub mod posts;
pub mod tokenize;

pub use backfill::BackfillStep;
pub use parse::{parse, ParsedQuery, QueryError, Word};
pub use posts::{PostSearch, SearchResults, DEFAULT_KEY_BUDGET};
