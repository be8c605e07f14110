//! Calls to URLs that users configured (outgoing webhooks, slash commands).
//!
//! Such a URL is chosen by whoever may create an integration, so it must not become a way into
//! the servers' own network: every address a host name resolves to is checked (a name that
//! resolves to one public and one private address is refused), IP literals are checked before
//! connecting, and redirects are checked the same way. Loopback, private, link-local,
//! carrier-grade NAT, unique-local and unspecified addresses are refused unless
//! `allowed_untrusted_internal_connections` lists the host or the address.
//! Calls have a timeout, at most [`MAX_IN_FLIGHT`] run at once, and at most [`MAX_RESPONSE`]
//! bytes of an answer are read.

use super::settings::AllowList;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Most outbound calls in flight per node: the outgoing-webhook dispatcher's
/// (`super::dispatcher::DISPATCH_IN_FLIGHT` calls, each to one or more URLs) and slash commands'.
pub const MAX_IN_FLIGHT: usize = 512;
/// Largest answer read (Mattermost reads at most 1 MiB of a hook's or command's answer).
pub const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid URL {0:?}")]
    Url(String),
    #[error("address forbidden: {0}")]
    Forbidden(String),
    #[error("request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("answer larger than {MAX_RESPONSE} bytes")]
    TooLarge,
}

/// An answer: status, content type and at most [`MAX_RESPONSE`] bytes of body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The node's client for integration calls.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allowed: Arc<AllowList>,
    slots: Arc<Semaphore>,
}

/// Whether an address is internal (what a forged request would aim at).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves host names and refuses internal answers (reqwest calls it for every connection,
/// redirects included).
struct GuardedResolver {
    allowed: Arc<AllowList>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            type BoxError = Box<dyn std::error::Error + Send + Sync>;
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => found.collect(),
                Err(e) => return Err(Box::new(e) as BoxError),
            };
            if !allowed.allows_host(&host) {
                if let Some(bad) = addrs
                    .iter()
                    .find(|a| is_internal(a.ip()) && !allowed.allows_ip(a.ip()))
                {
                    let refused = OutboundError::Forbidden(format!("{host} resolves to {bad}"));
                    return Err(Box::new(refused) as BoxError);
                }
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok::<reqwest::dns::Addrs, BoxError>(addrs)
        })
    }
}

/// Checks a URL before it is called: http(s), a host, and no forbidden IP literal.
pub fn check_url(allowed: &AllowList, url: &reqwest::Url) -> Result<(), OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::Url(url.to_string()));
    }
    let Some(host) = url.host_str() else {
        return Err(OutboundError::Url(url.to_string()));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = bare.parse::<IpAddr>() else {
        // A name: its addresses are checked when it is resolved.
        return Ok(());
    };
    if is_internal(ip) && !allowed.allows_ip(ip) && !allowed.allows_host(&ip.to_string()) {
        return Err(OutboundError::Forbidden(ip.to_string()));
    }
    Ok(())
}

impl Outbound {
    pub fn new(allowed: AllowList, timeout: Duration) -> Result<Outbound, reqwest::Error> {
        let allowed = Arc::new(allowed);
        let guard = allowed.clone();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .dns_resolver(Arc::new(GuardedResolver {
                allowed: allowed.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if let Err(e) = check_url(&guard, attempt.url()) {
                    attempt.error(e)
                } else {
                    attempt.follow()
                }
            }))
            .build()?;
        Ok(Outbound {
            client,
            allowed,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Parses and checks a configured URL.
    pub fn url(&self, text: &str) -> Result<reqwest::Url, OutboundError> {
        let url = reqwest::Url::parse(text).map_err(|_| OutboundError::Url(text.to_string()))?;
        check_url(&self.allowed, &url)?;
        Ok(url)
    }

    /// Sends `request` (built from [`Outbound::client`]) within the bounds.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, OutboundError> {
        let request = request.build()?;
        check_url(&self.allowed, request.url())?;
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.slots.acquire().await.ok();
        let mut response = self.client.execute(request).await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(OutboundError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        assert!(!is_internal("93.184.216.34".parse().unwrap()));
        let none = AllowList::default();
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(check_url(&none, &url("http://127.0.0.1:1/x")).is_err());
        assert!(check_url(&none, &url("http://[::1]:1/x")).is_err());
        assert!(check_url(&none, &url("ftp://example.com/")).is_err());
        assert!(check_url(&none, &url("http://example.com/")).is_ok());
        let local = AllowList::parse("127.0.0.1");
        assert!(check_url(&local, &url("http://127.0.0.1:1/x")).is_ok());
        assert!(check_url(&local, &url("http://127.0.0.2:1/x")).is_err());
    }
}
