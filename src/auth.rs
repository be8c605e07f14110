//! Who is calling: the session token from the cookie `MMAUTHTOKEN`, the `Authorization` header
//! (`Bearer`/`Token`, any case) or the `access_token` query parameter, in that order, as
//! Mattermost checks them; and the session it names, if valid.

use confab_storage::{Engine, Id, Session, User};
use http::HeaderMap;
use parking_lot::RwLock;
use std::collections::HashMap;

/// The token a request carries, if any.
pub fn token_from_parts(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    credentials_from_parts(headers, query).map(|(token, _)| token)
}

/// Where a request's token came from: a cookie-authenticated request that changes something
/// must also prove it came from confab's own page (see [`csrf_ok`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Cookie,
    HeaderOrQuery,
}

/// The token a request carries and where it came from.
pub fn credentials_from_parts(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<(String, TokenSource)> {
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, token)) = pair.trim().split_once('=') {
                if name == "MMAUTHTOKEN" && !token.is_empty() {
                    return Some((token.to_string(), TokenSource::Cookie));
                }
            }
        }
    }
    header_or_query_token(headers, query).map(|token| (token, TokenSource::HeaderOrQuery))
}

fn header_or_query_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        if let Ok(text) = value.to_str() {
            if let Some((scheme, token)) = text.trim().split_once(' ') {
                let scheme = scheme.to_ascii_lowercase();
                if (scheme == "bearer" || scheme == "token") && !token.trim().is_empty() {
                    return Some(token.trim().to_string());
                }
            }
        }
    }
    query.and_then(|q| {
        q.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == "access_token" && !value.is_empty()).then(|| value.to_string())
        })
    })
}

/// The live session for a token (it exists, has not expired and its user is not deactivated)
/// and its user, read from the engine.
fn read_session(engine: &Engine, token: &str, now: u64) -> Option<(Session, User)> {
    let token = Id::parse(token).ok()?;
    let reader = engine.reader();
    let session = reader.session(token).ok()??;
    let user = reader.user(session.user_id).ok()??;
    is_live(&session, &user, now).then_some((session, user))
}

fn is_live(session: &Session, user: &User, now: u64) -> bool {
    (session.expires_at == 0 || session.expires_at > now) && user.delete_at == 0
}

/// Sessions found live, by token, shared by the HTTP API and the WebSocket handshake.
///
/// Every request authenticates; without this that is two RocksDB reads, two decodes and a hop
/// to the blocking pool per request. An entry is trusted only while the engine's sessions epoch
/// is the one it was read under (a revoke, a change to a user, or a replaced state moves it)
/// and its session has not expired.
pub struct Sessions {
    entries: RwLock<HashMap<Id, Cached>>,
    capacity: usize,
}

#[derive(Clone)]
struct Cached {
    session: Session,
    user: User,
    epoch: u64,
}

/// Default bound of the session cache (a few hundred bytes each).
pub const DEFAULT_SESSION_CACHE_ENTRIES: usize = 200_000;

impl Default for Sessions {
    fn default() -> Self {
        Sessions::with_capacity(DEFAULT_SESSION_CACHE_ENTRIES)
    }
}

impl Sessions {
    /// At most `capacity` tokens are kept; past it the cache starts over.
    pub fn with_capacity(capacity: usize) -> Sessions {
        Sessions {
            entries: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The cached live session for `token`, if there is one: no I/O.
    pub fn cached(&self, engine: &Engine, token: &str, now: u64) -> Option<(Session, User)> {
        let token = Id::parse(token).ok()?;
        let epoch = engine.sessions_epoch();
        let entries = self.entries.read();
        let hit = entries.get(&token)?;
        (hit.epoch == epoch && is_live(&hit.session, &hit.user, now))
            .then(|| (hit.session.clone(), hit.user.clone()))
    }

    /// The live session for `token`, from the cache or else from the engine (then cached).
    pub fn resolve(&self, engine: &Engine, token: &str, now: u64) -> Option<(Session, User)> {
        if let Some(hit) = self.cached(engine, token, now) {
            return Some(hit);
        }
        // The epoch is read before the session: a revoke applied after this point moves it,
        // so what is read here can never be kept past that revoke.
        let epoch = engine.sessions_epoch();
        let (session, user) = read_session(engine, token, now)?;
        let mut entries = self.entries.write();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(
            session.token,
            Cached {
                session: session.clone(),
                user: user.clone(),
                epoch,
            },
        );
        Some((session, user))
    }

    /// Tokens held (`/metrics`, tests).
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }
}

/// A value derived one way from a session token under `label`: every node derives the same one,
/// and it never reveals the token.
fn derived(label: &[u8], token: Id) -> Id {
    use blake2::{Blake2b512, Digest};
    let digest = Blake2b512::new()
        .chain_update(label)
        .chain_update(token.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Id::from_bytes(bytes)
}

/// A session's public id (session lists and revokes name sessions by it, never by token).
pub fn session_id(token: Id) -> String {
    derived(b"confab session id", token).to_base32()
}

/// The `MMAUTHTOKEN` cookie of a session token, kept `max_age` seconds (at login, and again
/// when a device attach restarts the session's lifetime).
pub fn session_cookie(token: &str, max_age: u64) -> String {
    format!("MMAUTHTOKEN={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax")
}

/// The session's CSRF token, sent as the `MMCSRF` cookie at login.
pub fn csrf_token(token: Id) -> String {
    derived(b"confab csrf", token).to_base32()
}

/// Whether a cookie-authenticated request may change something, as Mattermost decides without
/// strict CSRF enforcement: safe methods always; others with `X-CSRF-Token` equal to the
/// session's CSRF token, or else with `X-Requested-With: XMLHttpRequest` (which a cross-site
/// form cannot send).
pub fn csrf_ok(method: &http::Method, headers: &HeaderMap, token: Id) -> bool {
    if matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    ) {
        return true;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let token_matches = header("x-csrf-token")
        .is_some_and(|sent| constant_time_eq(sent.as_bytes(), csrf_token(token).as_bytes()));
    token_matches || header("x-requested-with") == Some("XMLHttpRequest")
}

/// Compares secrets without leaking their common prefix length through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_storage::Command;
    use http::HeaderValue;

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 16])
    }

    /// An engine with one user and sessions 10 (no expiry), 11 (expires at 1,000) and 12.
    fn engine_with_sessions() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path()).expect("engine");
        let mut commands = vec![Command::CreateUser {
            id: id(1),
            at: 1,
            username: "alice".into(),
            email: "alice@example.com".into(),
            password_hash: String::new(),
            nickname: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            roles: "system_user".into(),
        }];
        for (token, expires_at) in [(10, 0), (11, 1_000), (12, 0)] {
            commands.push(Command::CreateSession {
                token: id(token),
                user_id: id(1),
                at: 2,
                expires_at,
                device_id: String::new(),
            });
        }
        for (index, command) in commands.iter().enumerate() {
            let applied = engine.apply(index as u64 + 1, command).expect("apply");
            assert!(applied.result.is_ok(), "{:?}", applied.result);
        }
        (dir, engine)
    }

    #[test]
    fn a_resolved_session_is_served_from_the_cache_until_a_revoke() {
        let (_dir, engine) = engine_with_sessions();
        let sessions = Sessions::default();
        let token = id(10).to_base32();
        assert!(sessions.cached(&engine, &token, 500).is_none(), "cold");
        let (session, user) = sessions.resolve(&engine, &token, 500).expect("live");
        assert_eq!((session.token, user.username.as_str()), (id(10), "alice"));
        assert_eq!(sessions.cached(&engine, &token, 500), Some((session, user)));

        // Another token's revoke is applied: nothing cached is trusted any more, but the
        // still-live session is found again.
        engine
            .apply(10, &Command::RevokeSession { token: id(12) })
            .expect("revoke");
        assert!(sessions.cached(&engine, &token, 500).is_none());
        assert!(sessions.resolve(&engine, &token, 500).is_some());
        // Its own revoke: gone from the cache and from the engine.
        engine
            .apply(11, &Command::RevokeSession { token: id(10) })
            .expect("revoke");
        assert!(sessions.cached(&engine, &token, 500).is_none());
        assert!(sessions.resolve(&engine, &token, 500).is_none());
        assert!(sessions.resolve(&engine, "not-a-token", 500).is_none());
    }

    #[test]
    fn a_cached_session_expires_on_time_and_the_cache_is_bounded() {
        let (_dir, engine) = engine_with_sessions();
        let sessions = Sessions::with_capacity(2);
        let expiring = id(11).to_base32();
        assert!(sessions.resolve(&engine, &expiring, 999).is_some());
        assert!(sessions.cached(&engine, &expiring, 999).is_some());
        assert!(
            sessions.cached(&engine, &expiring, 1_000).is_none(),
            "expired"
        );
        assert!(sessions.resolve(&engine, &expiring, 1_000).is_none());

        for token in [10, 12, 10, 12] {
            assert!(sessions
                .resolve(&engine, &id(token).to_base32(), 0)
                .is_some());
            assert!(sessions.len() <= 2);
        }
    }

    #[test]
    fn token_sources_in_mattermost_order() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            token_from_parts(&headers, Some("a=1&access_token=q")),
            Some("q".into())
        );
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("BEARER hdr"),
        );
        assert_eq!(
            token_from_parts(&headers, Some("access_token=q")),
            Some("hdr".into())
        );
        headers.insert(
            http::header::COOKIE,
            HeaderValue::from_static("x=1; MMAUTHTOKEN=ck"),
        );
        assert_eq!(token_from_parts(&headers, None), Some("ck".into()));
        assert_eq!(
            token_from_parts(&HeaderMap::new(), Some("access_token=")),
            None
        );
    }

    #[test]
    fn csrf_needs_the_sessions_token_or_an_xhr_header_on_changes() {
        let token = Id::from_bytes([3; 16]);
        let mut headers = HeaderMap::new();
        assert!(csrf_ok(&http::Method::GET, &headers, token));
        assert!(!csrf_ok(&http::Method::POST, &headers, token));
        headers.insert("x-csrf-token", HeaderValue::from_static("not-the-token"));
        assert!(!csrf_ok(&http::Method::PUT, &headers, token));
        headers.insert(
            "x-csrf-token",
            HeaderValue::from_str(&csrf_token(token)).expect("header"),
        );
        assert!(csrf_ok(&http::Method::DELETE, &headers, token));
        assert!(!csrf_ok(
            &http::Method::POST,
            &headers,
            Id::from_bytes([4; 16])
        ));
        let mut xhr = HeaderMap::new();
        xhr.insert(
            "x-requested-with",
            HeaderValue::from_static("XMLHttpRequest"),
        );
        assert!(csrf_ok(&http::Method::POST, &xhr, token));
        // Derived values are stable, distinct, and never the token itself.
        assert_eq!(csrf_token(token), csrf_token(token));
        assert_ne!(csrf_token(token), session_id(token));
        assert_ne!(csrf_token(token), token.to_base32());
    }
}
