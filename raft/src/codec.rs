//! Byte encodings shared by the log store, the state machine and the wire: rmp-serde with named
//! fields (robust to openraft's optional fields), and the mapping of failures onto `io::Error`,
//! which is what openraft's storage traits speak.

use confab_storage::StorageError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A storage failure as openraft wants it; a corrupted record stays `InvalidData`.
pub(crate) fn storage_io(error: StorageError) -> io::Error {
    match error {
        StorageError::Io(e) => e,
        StorageError::Corrupt(_) | StorageError::Decode(_) => {
            io::Error::new(io::ErrorKind::InvalidData, error.to_string())
        }
        other => io::Error::other(other.to_string()),
    }
}

/// Runs a blocking (RocksDB or file) call off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("blocking task failed: {e}")))
}

/// [`blocking`] for a storage call.
pub(crate) async fn storage<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> confab_storage::Result<T> + Send + 'static,
    T: Send + 'static,
{
    blocking(f).await?.map_err(storage_io)
}
