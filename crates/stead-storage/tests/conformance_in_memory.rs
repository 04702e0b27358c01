//! The storage conformance suite against the embedded backend's in-memory mode.

use std::sync::Arc;

use stead_storage::Storage;
use stead_storage::embedded::EmbeddedStore;

async fn fresh() -> (Arc<dyn Storage>, ()) {
    (Arc::new(EmbeddedStore::open_in_memory().unwrap()), ())
}

stead_storage::storage_conformance_tests!(fresh());
