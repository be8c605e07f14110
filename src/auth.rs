//! Who is calling: the session token from the cookie `MMAUTHTOKEN`, the `Authorization` header
//! (`Bearer`/`Token`, any case) or the `access_token` query parameter, in that order, as
//! Mattermost checks them; and the session it names, if valid.

use confab_storage::{Engine, Id, Session};
use http::HeaderMap;

/// The token a request carries, if any.
pub fn token_from_parts(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, token)) = pair.trim().split_once('=') {
                if name == "MMAUTHTOKEN" && !token.is_empty() {
                    return Some(token.to_string());
                }
            }
        }
    }
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

/// The live session for a token: it exists, has not expired and its user is not deactivated.
pub fn session_for(engine: &Engine, token: &str, now: u64) -> Option<Session> {
    let token = Id::parse(token).ok()?;
    let reader = engine.reader();
    let session = reader.session(token).ok()??;
    if session.expires_at != 0 && session.expires_at <= now {
        return None;
    }
    let user = reader.user(session.user_id).ok()??;
    (user.delete_at == 0).then_some(session)
}

/// Compares secrets without leaking their common prefix length through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
}
