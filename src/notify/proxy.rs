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
}

impl ProxyError {
    /// Worth another attempt: the proxy may be back or less busy soon.
    pub fn is_transient(&self) -> bool {
        match self {
            ProxyError::Transport(_) => true,
            ProxyError::Status(code) => *code >= 500 || *code == 429,
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

#[derive(Clone)]
pub struct ProxyClient {
    http: reqwest::Client,
    base: String,
}

impl ProxyClient {
    pub fn new(settings: &PushSettings) -> Result<ProxyClient, ProxyError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| ProxyError::Transport(e.to_string()))?;
        Ok(ProxyClient {
            http,
            base: settings.server.clone(),
        })
    }

    /// Sends one push and reads the proxy's `{"status": …}`.
    pub async fn send(&self, push: &PushNotification) -> Result<Reply, ProxyError> {
        let answer = self
            .http
            .post(format!("{}/api/v1/send_push", self.base))
            .json(push)
            .send()
            .await
            .map_err(|e| ProxyError::Transport(e.to_string()))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(ProxyError::Status(status.as_u16()));
        }
        let body: serde_json::Value = answer
            .json()
            .await
            .map_err(|e| ProxyError::Transport(e.to_string()))?;
        Ok(match body.get("status").and_then(|s| s.as_str()) {
            Some("REMOVE") => Reply::Remove,
            Some("FAIL") => Reply::Fail(
                body.get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or_default()
                    .to_string(),
            ),
            _ => Reply::Ok,
        })
    }

    /// Forwards an ack; the proxy's answer body is ignored, as Mattermost does.
    pub async fn ack(&self, ack: &serde_json::Value) -> Result<(), ProxyError> {
        let answer = self
            .http
            .post(format!("{}/api/v1/ack", self.base))
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
