//! The `Storage` trait and its backends.
//!
//! # Layout
//! - this file: the contract ([`Storage`]) and its value types;
//! - [`embedded`]: the default durable backend (redb), group-committed;
//! - [`etcd`]: an etcd v3 cluster (`--store etcd://HOST:PORT[,...]`);
//! - [`conformance`]: the one suite every backend must pass (used by each backend's tests).
//!
//! # The contract
//! Keys are opaque strings, by convention `/<group>/<resource>/<namespace>/<name>`; values are
//! opaque bytes (the API server stores JSON without `metadata.resourceVersion` and fills it from
//! [`KeyValue::mod_revision`] on read). Every successful write (create, update, delete) bumps one
//! global revision that is strictly increasing and never reused. A write is acknowledged only once
//! it is durable: it survives `kill -9` of the process. Watches deliver every change after a given
//! revision in revision order, without gaps; a revision older than the backend keeps answers
//! [`StorageError::Compacted`].

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

pub mod conformance;
pub mod embedded;
pub mod etcd;

/// A global store revision. Revision 0 means "nothing written yet".
pub type Revision = u64;

/// A stored key with its value and the revisions that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
}

/// Options of a range read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only return keys strictly greater than this one (pagination cursor).
    pub start_after: Option<String>,
    /// At most this many items; `None` (or `Some(0)`, as in etcd and the Kubernetes API) = all.
    pub limit: Option<usize>,
    /// Read as of this revision instead of the latest. A revision that was compacted away answers
    /// [`StorageError::Compacted`]; one in the future answers [`StorageError::FutureRevision`].
    pub revision: Option<Revision>,
}

/// The result of a range read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// Items in key order.
    pub items: Vec<KeyValue>,
    /// The revision the read was served at (the store's current revision unless one was asked for).
    pub revision: Revision,
    /// True when `limit` cut the result short.
    pub more: bool,
}

/// What a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The key was created (it did not exist before this revision).
    Create,
    /// An existing key got a new value.
    Update,
    /// The key was deleted.
    Delete,
}

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventType,
    pub key: String,
    /// The revision of this change.
    pub revision: Revision,
    /// The value after the change; for `Delete`, the last value before it.
    pub value: Bytes,
    /// The value before the change (`None` for `Create`; for `Delete`, the same last value).
    pub prev_value: Option<Bytes>,
}

/// A stream of watch events. It ends with an `Err` if the backend can no longer deliver without a
/// gap (for example the consumer fell too far behind: `Compacted`), and simply ends when the
/// backend shuts down.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StorageError>> + Send>>;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    /// Compare-and-swap failed: the key's mod revision is not the expected one.
    #[error("key {key}: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// The requested revision is older than the oldest one the backend keeps.
    #[error("required revision {requested} has been compacted (oldest kept {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The backend failed (IO, corruption, lost connection). The write may not have happened.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// A transactional key-value store with a global revision, compare-and-swap and gapless watches.
///
/// All methods may be called concurrently from many tasks. Writes to the same key are serialized
/// by the backend; `update` and conditional `delete` are compare-and-swap on the key's
/// `mod_revision`. A method that returns `Ok` for a write has made it durable. Nothing retries
/// internally: a `Conflict` goes back to the caller, who re-reads and decides.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The latest value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError>;

    /// Keys starting with `prefix`, in key order, as of one revision.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError>;

    /// Create `key`; fails with `AlreadyExists` if it exists. Returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StorageError>;

    /// Replace `key`'s value if its `mod_revision` is `expected`. Returns the new revision.
    /// `NotFound` if the key is absent, `Conflict` if the revision differs.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StorageError>;

    /// Delete `key`, if `expected` is given only when its `mod_revision` matches. Returns the
    /// revision of the delete and the last value.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StorageError>;

    /// Every change to keys starting with `prefix` with a revision strictly greater than `after`,
    /// in revision order, then live changes as they commit. `after` older than the compaction
    /// point answers `Compacted` (either from this call or as the stream's first item); `after` in
    /// the future is allowed (the stream starts with the first change after it). A consumer that
    /// cannot keep up is never silently skipped: the stream either catches up or ends with an `Err`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError>;

    /// The revision of the latest write.
    async fn current_revision(&self) -> Result<Revision, StorageError>;

    /// The oldest revision a watch or a read may still start from.
    async fn compacted_revision(&self) -> Result<Revision, StorageError>;

    /// Forget history before `revision` (watches and reads from before it answer `Compacted`;
    /// from `revision` itself they still work). Current values are kept. A revision at or below the
    /// current compaction point is a no-op; one beyond the head answers `FutureRevision`.
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;
}
