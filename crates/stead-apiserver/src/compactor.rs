//! History compaction, as kube-apiserver does for etcd (`--etcd-compaction-interval`, 5 min):
//! every interval the store forgets the history before the revision it had one interval earlier.
//! Watches and lists may start from any revision of the last interval or two; older ones answer
//! 410 Gone and clients relist. Without it the store's history (every Lease renewal, every
//! status write) would grow for as long as the server runs.

use std::sync::Arc;
use std::time::Duration;

use stead_storage::Storage;

/// Upstream's default interval.
pub const INTERVAL: Duration = Duration::from_secs(300);

/// Compacts `store` every `interval` up to the revision seen one interval before. Runs until
/// its task is aborted; a failed round is logged and retried at the next tick.
pub async fn run(store: Arc<dyn Storage>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous = None;
    loop {
        ticks.tick().await;
        if let Some(revision) = previous
            && let Err(e) = store.compact(revision).await
        {
            tracing::warn!(revision, error = %e, "compaction failed");
        }
        match store.current_revision().await {
            Ok(revision) => previous = Some(revision),
            Err(e) => tracing::warn!(error = %e, "compaction: read the current revision"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use stead_storage::StorageError;
    use stead_storage::embedded::EmbeddedStore;

    #[tokio::test]
    async fn history_older_than_one_interval_goes_and_current_values_stay() {
        let store: Arc<dyn Storage> = Arc::new(EmbeddedStore::open_in_memory().unwrap());
        let first = store
            .create("/k/a", Bytes::from_static(b"1"))
            .await
            .unwrap();
        let second = store
            .update("/k/a", Bytes::from_static(b"2"), first)
            .await
            .unwrap();
        let compactor = tokio::spawn(run(store.clone(), Duration::from_millis(20)));
        // Two ticks later the revision of the first tick (`second`) is the compaction point.
        let mut waited = 0;
        while store.compacted_revision().await.unwrap() < second {
            assert!(waited < 1500, "never compacted");
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        compactor.abort();
        let error = store.list(
            "/k/",
            stead_storage::ListOptions {
                revision: Some(first),
                ..Default::default()
            },
        );
        assert!(matches!(
            error.await,
            Err(StorageError::Compacted { requested, .. }) if requested == first
        ));
        let current = store.get("/k/a").await.unwrap().unwrap();
        assert_eq!(current.value, Bytes::from_static(b"2"));
    }
}
