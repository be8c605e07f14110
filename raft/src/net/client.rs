//! The HTTP client every outgoing node-to-node call uses: pooled keep-alive connections, the
//! secret header, a timeout per call, and transport failures kept apart from remote answers.

use super::wire::{CONTENT_TYPE, SECRET_HEADER};
use crate::codec::{decode, encode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A failed call before any answer of the remote application arrived.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("cannot reach {addr}: {message}")]
    Unreachable { addr: String, message: String },
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr} answered HTTP {status}: {message}")]
    Status {
        addr: String,
        status: u16,
        message: String,
    },
    #[error("bad message from or to {addr}: {message}")]
    Codec { addr: String, message: String },
}

#[derive(Clone)]
pub(crate) struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    secret: Arc<str>,
    /// Advertised address → the address dialled instead (`NodeConfig::dial`).
    dial: Arc<BTreeMap<String, String>>,
}

impl HttpClient {
    pub(crate) fn new(secret: &str, dial: BTreeMap<String, String>) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HttpClient {
            inner,
            secret: Arc::from(secret),
            dial: Arc::new(dial),
        }
    }

    /// POSTs raw bytes to `http://{addr}{path_and_query}` (or to the address `addr` is dialled
    /// at) and returns the answer's body. Errors name `addr`, the peer as advertised.
    pub(crate) async fn post(
        &self,
        addr: &str,
        path_and_query: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let target = self.dial.get(addr).map_or(addr, String::as_str);
        let uri = format!("http://{target}{path_and_query}");
        let request = Request::builder()
            .method(Method::POST)
            .uri(&uri)
            .header(SECRET_HEADER, &*self.secret)
            .header(hyper::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(body))
            .map_err(|e| TransportError::Codec {
                addr: addr.to_string(),
                message: e.to_string(),
            })?;
        let call = async {
            let response = self.inner.request(request).await.map_err(|e| {
                if e.is_connect() {
                    TransportError::Unreachable {
                        addr: addr.to_string(),
                        message: e.to_string(),
                    }
                } else {
                    TransportError::Codec {
                        addr: addr.to_string(),
                        message: format!("http: {e}"),
                    }
                }
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| TransportError::Codec {
                    addr: addr.to_string(),
                    message: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(TransportError::Status {
                    addr: addr.to_string(),
                    status: status.as_u16(),
                    message: String::from_utf8_lossy(&body).into_owned(),
                });
            }
            Ok(body)
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
        }
    }

    /// An rmp-serde request/answer call.
    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        let codec = |e: std::io::Error| TransportError::Codec {
            addr: addr.to_string(),
            message: e.to_string(),
        };
        let body = encode(request).map_err(codec)?;
        let answer = self.post(addr, path, Bytes::from(body), timeout).await?;
        decode(&answer).map_err(codec)
    }
}
