//! Typed errors of the engine. Command errors are part of a command's deterministic outcome (every
//! replica reaches the same one) and travel between nodes, so they serialize; the server maps each
//! to a Mattermost error id and status once, at the HTTP edge.

use serde::{Deserialize, Serialize};

/// Why a command or query was refused. Deterministic: it depends only on the state and the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CommandError {
    #[error("{kind} {id} not found")]
    NotFound { kind: String, id: String },
    #[error("username {0:?} is taken")]
    UsernameTaken(String),
    #[error("email {0:?} is taken")]
    EmailTaken(String),
    #[error("team name {0:?} is taken")]
    TeamNameTaken(String),
    #[error("channel name {0:?} is taken in this team")]
    ChannelNameTaken(String),
    #[error("id {0} already exists")]
    IdExists(String),
    #[error("message is {0} characters, more than the 16383 allowed")]
    MessageTooLong(usize),
    #[error("{0} is deleted")]
    Deleted(String),
    #[error("user {user} is not a member of {of}")]
    NotMember { user: String, of: String },
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The state forbids it whoever asks (e.g. an email domain a team does not allow).
    #[error("not allowed: {0}")]
    Forbidden(String),
}

impl CommandError {
    pub(crate) fn not_found(kind: &str, id: impl ToString) -> CommandError {
        CommandError::NotFound {
            kind: kind.to_string(),
            id: id.to_string(),
        }
    }
}

/// A failure of the engine itself: the disk, the database or a corrupted record.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("decoding a stored record: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("encoding a record: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("corrupted data: {0}")]
    Corrupt(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Command(#[from] CommandError),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
