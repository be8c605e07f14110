//! The slice of Mattermost's REST API v4 the load tool calls, over one pooled HTTP client.

use anyhow::{anyhow, Context};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A failed call: the HTTP status (0 when the request never got an answer) and Mattermost's
/// error id.
#[derive(Debug, Clone)]
pub struct CallError {
    pub status: u16,
    pub id: String,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.id, self.message)
    }
}

impl std::error::Error for CallError {}

/// A client for one or more nodes; `base` picks the node per call.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    /// With session consistency: the highest `X-Confab-Applied` seen, sent back on every
    /// request, so a write made through one node is visible to the next call on another.
    applied: Option<Arc<AtomicU64>>,
}

impl Api {
    /// `local`: the source address of every connection (spreads load over 127.x addresses).
    pub fn new(local: Option<IpAddr>) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder()
            .local_address(local)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            client,
            applied: None,
        })
    }

    /// The same client, reading its own writes on every node (setup traffic; the load itself
    /// behaves like Mattermost's clients, which do not send the header).
    pub fn consistent(&self) -> Api {
        Api {
            client: self.client.clone(),
            applied: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// One request; the JSON body of a 2xx answer, or the error it carried.
    pub async fn call(
        &self,
        node: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(Value, reqwest::header::HeaderMap), CallError> {
        let mut request = self
            .client
            .request(method, format!("http://{node}/api/v4{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(applied) = &self.applied {
            let index = applied.load(Ordering::Relaxed);
            if index > 0 {
                request = request.header("X-Confab-Applied", index);
            }
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| CallError {
            status: 0,
            id: "transport".into(),
            message: e.to_string(),
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(applied) = &self.applied {
            if let Some(index) = headers
                .get("x-confab-applied")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            {
                applied.fetch_max(index, Ordering::Relaxed);
            }
        }
        let bytes = response.bytes().await.map_err(|e| CallError {
            status: status.as_u16(),
            id: "transport".into(),
            message: e.to_string(),
        })?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok((value, headers))
        } else {
            Err(CallError {
                status: status.as_u16(),
                id: value["id"].as_str().unwrap_or("").to_string(),
                message: value["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
            })
        }
    }

    pub async fn get(&self, node: &str, path: &str, token: &str) -> Result<Value, CallError> {
        Ok(self
            .call(node, Method::GET, path, Some(token), None)
            .await?
            .0)
    }

    pub async fn post(
        &self,
        node: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value, CallError> {
        Ok(self
            .call(node, Method::POST, path, token, Some(body))
            .await?
            .0)
    }

    /// Signs up a user; an existing username is not an error (the tool reuses users).
    pub async fn ensure_user(
        &self,
        node: &str,
        username: &str,
        password: &str,
    ) -> anyhow::Result<()> {
        let body = json!({
            "username": username,
            "email": format!("{username}@load.confab.test"),
            "password": password,
        });
        match self.post(node, "/users", None, &body).await {
            Ok(_) => Ok(()),
            Err(e) if e.status == StatusCode::BAD_REQUEST.as_u16() && e.id.contains("exists") => {
                Ok(())
            }
            Err(e) => Err(anyhow!("creating {username}: {e}")),
        }
    }

    /// Logs in: (session token, user id).
    pub async fn login(
        &self,
        node: &str,
        username: &str,
        password: &str,
    ) -> anyhow::Result<(String, String)> {
        let body = json!({"login_id": username, "password": password});
        let (user, headers) = self
            .call(node, Method::POST, "/users/login", None, Some(&body))
            .await
            .map_err(|e| anyhow!("login {username}: {e}"))?;
        let token = headers
            .get("token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("login {username}: no Token header"))?;
        let id = user["id"]
            .as_str()
            .ok_or_else(|| anyhow!("login {username}: no user id"))?;
        Ok((token.to_string(), id.to_string()))
    }

    /// A team by name, created if missing: its id.
    pub async fn ensure_team(&self, node: &str, token: &str, name: &str) -> anyhow::Result<String> {
        if let Ok(team) = self.get(node, &format!("/teams/name/{name}"), token).await {
            return id_of(&team);
        }
        let body = json!({"name": name, "display_name": name, "type": "O"});
        id_of(&self.post(node, "/teams", Some(token), &body).await?)
    }

    /// An open channel by name, created if missing: its id.
    pub async fn ensure_channel(
        &self,
        node: &str,
        token: &str,
        team: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        if let Ok(channel) = self
            .get(node, &format!("/teams/{team}/channels/name/{name}"), token)
            .await
        {
            return id_of(&channel);
        }
        let body = json!({"team_id": team, "name": name, "display_name": name, "type": "O"});
        id_of(&self.post(node, "/channels", Some(token), &body).await?)
    }

    /// Adds a user to a team; already a member is fine.
    pub async fn add_team_member(
        &self,
        node: &str,
        token: &str,
        team: &str,
        user: &str,
    ) -> anyhow::Result<()> {
        let body = json!({"team_id": team, "user_id": user});
        match self
            .post(node, &format!("/teams/{team}/members"), Some(token), &body)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.id.contains("exists") || e.id.contains("already") => Ok(()),
            Err(e) => Err(anyhow!("team member {user}: {e}")),
        }
    }

    /// Adds a user to a channel; already a member is fine.
    pub async fn add_channel_member(
        &self,
        node: &str,
        token: &str,
        channel: &str,
        user: &str,
    ) -> anyhow::Result<()> {
        let body = json!({"user_id": user, "channel_id": channel, "post_root_id": ""});
        match self
            .post(
                node,
                &format!("/channels/{channel}/members"),
                Some(token),
                &body,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.id.contains("exists") || e.id.contains("already") => Ok(()),
            Err(e) => Err(anyhow!("channel member {user}: {e}")),
        }
    }
}

pub fn id_of(value: &Value) -> anyhow::Result<String> {
    value["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("answer without an id: {value}"))
}
