//! `confab-raft`: replication of `confab-storage` commands through openraft. It is the only crate
//! that depends on openraft; the log store, the state-machine adapter, the node-to-node network,
//! snapshots and membership live here once the replication issue lands.
