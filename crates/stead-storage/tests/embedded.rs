//! Behaviour specific to the embedded backend: slow watchers, the compaction helper, shutdown.

use bytes::Bytes;
use futures::StreamExt;
use stead_storage::conformance::next_event;
use stead_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use stead_storage::{Storage, StorageError};

/// A store whose watchers buffer only 4 live events (and the temp dir holding it).
fn small_watch_buffer() -> (EmbeddedStore, tempfile::TempDir) {
    let options = EmbeddedOptions {
        watch_buffer: 4,
        ..EmbeddedOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    (
        EmbeddedStore::open_with(&dir.path().join("stead.redb"), options).unwrap(),
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_behind_its_buffer_catches_up_from_history() {
    let (store, _dir) = small_watch_buffer();
    let start = store.create("/s/first", Bytes::new()).await.unwrap();
    let mut watch = store.watch("/s/", start - 1).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision, start);
    // Now live; 100 writes overflow its 4-event buffer while it is not polled.
    for i in 0..100 {
        store
            .create(&format!("/s/{i:03}"), Bytes::new())
            .await
            .unwrap();
    }
    for i in 0..100u64 {
        let event = next_event(&mut watch).await;
        assert_eq!(
            (event.revision, event.key),
            (start + 1 + i, format!("/s/{i:03}"))
        );
    }
    let last = store.create("/s/last", Bytes::new()).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision, last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_watcher_whose_history_was_compacted_ends_with_compacted() {
    let (store, _dir) = small_watch_buffer();
    let start = store.create("/s/first", Bytes::new()).await.unwrap();
    let mut watch = store.watch("/s/", start - 1).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision, start);
    for i in 0..20 {
        store
            .create(&format!("/s/{i:03}"), Bytes::new())
            .await
            .unwrap();
    }
    let head = store.current_revision().await.unwrap();
    store.compact(head).await.unwrap();
    let ended = watch.next().await;
    assert_eq!(
        ended,
        Some(Err(StorageError::Compacted {
            requested: start,
            compacted: head
        }))
    );
    assert_eq!(watch.next().await, None);
}

#[tokio::test]
async fn compact_keep_last_keeps_the_newest_revisions() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    for i in 0..10 {
        store
            .create(&format!("/k/{i}"), Bytes::new())
            .await
            .unwrap();
    }
    assert_eq!(store.compact_keep_last(100).await.unwrap(), None);
    assert_eq!(store.compact_keep_last(3).await.unwrap(), Some(7));
    assert_eq!(store.compacted_revision().await.unwrap(), 7);
    assert_eq!(store.compact_keep_last(3).await.unwrap(), None);
    assert!(store.watch("/k/", 7).await.is_ok());
    assert_eq!(
        store.watch("/k/", 6).await.err(),
        Some(StorageError::Compacted {
            requested: 6,
            compacted: 7
        })
    );
}

#[tokio::test]
async fn compacting_beyond_the_head_fails_and_compacting_backwards_is_a_no_op() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    store.create("/k/a", Bytes::new()).await.unwrap();
    store.create("/k/b", Bytes::new()).await.unwrap();
    assert_eq!(
        store.compact(5).await,
        Err(StorageError::FutureRevision {
            requested: 5,
            current: 2
        })
    );
    store.compact(2).await.unwrap();
    store.compact(1).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 2);
    assert_eq!(store.current_revision().await.unwrap(), 2);
}

#[tokio::test]
async fn closing_the_store_ends_its_watch_streams() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    let r = store.create("/a", Bytes::new()).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision, r);
    store.close().await.unwrap();
    assert_eq!(watch.next().await, None);
}

#[tokio::test]
async fn a_watch_from_a_future_revision_waits_for_it() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let mut watch = store.watch("/", 2).await.unwrap();
    for key in ["/a", "/b", "/c"] {
        store.create(key, Bytes::new()).await.unwrap();
    }
    let event = next_event(&mut watch).await;
    assert_eq!((event.revision, event.key.as_str()), (3, "/c"));
}
