//! `confab cluster status|add|remove`: a thin HTTP client of a node's cluster endpoints.

use crate::config::{ClusterAction, ClusterArgs};
use crate::server::BoxError;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One HTTP/1.1 request; returns the status and the body text.
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Result<(StatusCode, String), BoxError> {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))?;
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(120), client.request(request))
            .await??;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

pub async fn run(args: ClusterArgs) -> Result<(), BoxError> {
    let base = format!("{}/api/v4/cluster", args.api.trim_end_matches('/'));
    let auth = format!("Bearer {}", args.token);
    let headers = [("authorization", auth.as_str())];
    let (status, text) = match args.action {
        ClusterAction::Status => {
            http_request("GET", &format!("{base}/status"), &headers, None).await?
        }
        ClusterAction::Add { node_id, raft_addr } => {
            let body = serde_json::json!({"node_id": node_id, "raft_addr": raft_addr}).to_string();
            http_request("POST", &format!("{base}/members"), &headers, Some(body)).await?
        }
        ClusterAction::Remove { node_id } => {
            http_request(
                "DELETE",
                &format!("{base}/members/{node_id}"),
                &headers,
                None,
            )
            .await?
        }
    };
    let pretty = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    println!("{pretty}");
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the node answered {status}").into())
    }
}
