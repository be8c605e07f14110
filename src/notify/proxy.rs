//! The push proxy client: `POST {server}/api/v1/send_push` and `/api/v1/ack` over reqwest with
//! rustls, each request bounded by the configured timeout.

use super::payload::PushNotification;
use super::settings::PushSettings;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("push proxy unreachable: {0}")]
    Transport(String),
    #[error("push proxy answered HTTP {0}")]
    Status(u16),
    #[error("push_notification_server is not a URL: {0}")]
    Url(String),
}

impl ProxyError {
    /// Worth another attempt: the proxy may be back or less busy soon.
    pub fn is_transient(&self) -> bool {
        match self {
            ProxyError::Transport(_) => true,
            ProxyError::Status(code) => *code >= 500 || *code == 429,
            ProxyError::Url(_) => false,
        }
    }
}

/// The proxy's answer to a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// The device is gone: detach it from the session.
    Remove,
    Fail(String),
}

/// The proxy's answer body: `{"status": "OK" | "REMOVE" | "FAIL", "error": …}`.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: String,
}

#[derive(Clone)]
pub struct ProxyClient {
    http: reqwest::Client,
    /// `{server}/api/v1/send_push` and `/api/v1/ack`, parsed once.
    send_url: reqwest::Url,
    ack_url: reqwest::Url,
}

impl ProxyClient {
    pub fn new(settings: &PushSettings) -> Result<ProxyClient, ProxyError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| ProxyError::Transport(e.to_string()))?;
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{}{path}", settings.server))
                .map_err(|e| ProxyError::Url(format!("{}: {e}", settings.server)))
        };
        Ok(ProxyClient {
            http,
            send_url: url("/api/v1/send_push")?,
            ack_url: url("/api/v1/ack")?,
        })
    }

    /// Sends one push and reads the proxy's `{"status": …}`.
    pub async fn send(&self, push: &PushNotification) -> Result<Reply, ProxyError> {
        let answer = self
            .http
            .post(self.send_url.clone())
            .json(push)
            .send()
            .await
            .map_err(|e| ProxyError::Transport(e.to_string()))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(ProxyError::Status(status.as_u16()));
        }
        let body: Answer = answer
            .json()
            .await
            .map_err(|e| ProxyError::Transport(e.to_string()))?;
        Ok(match body.status.as_str() {
            "REMOVE" => Reply::Remove,
            "FAIL" => Reply::Fail(body.error),
            _ => Reply::Ok,
        })
    }

    /// Forwards an ack; the proxy's answer body is ignored, as Mattermost does.
    pub async fn ack(&self, ack: &serde_json::Value) -> Result<(), ProxyError> {
        let answer = self
            .http
            .post(self.ack_url.clone())
            .json(ack)
            .send()
            .await
            .map_err(|e| ProxyError::Transport(e.to_string()))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(ProxyError::Status(answer.status().as_u16()))
        }
    }
}
