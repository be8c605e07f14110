//! Node-to-node HTTP (hyper 1, HTTP/1.1, rmp-serde bodies) on the raft port, separate from the
//! client API. Every request carries the cluster secret header; the server refuses any request
//! without the right secret with 401 before reading its body.

pub(crate) mod client;
pub(crate) mod peer;
pub(crate) mod server;
pub(crate) mod wire;
