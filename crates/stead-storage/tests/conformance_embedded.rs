//! The storage conformance suite against the embedded backend (a fresh redb file per check).

use std::sync::Arc;

use stead_storage::Storage;
use stead_storage::embedded::EmbeddedStore;

async fn fresh() -> (Arc<dyn Storage>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("stead.redb")).unwrap();
    (Arc::new(store), dir)
}

stead_storage::storage_conformance_tests!(fresh());
