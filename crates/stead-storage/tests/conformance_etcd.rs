//! The storage conformance suite against a real etcd (Debian's `etcd-server`, which
//! `scripts/test` installs): a fresh etcd process on loopback per check, since checks assert
//! exact revisions.

use std::sync::Arc;

use stead_storage::Storage;
use stead_storage::conformance::EtcdProcess;

async fn fresh() -> (Arc<dyn Storage>, EtcdProcess) {
    let (process, store) = EtcdProcess::start().await;
    (Arc::new(store), process)
}

stead_storage::storage_conformance_tests!(fresh());
