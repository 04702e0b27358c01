//! The one conformance suite every [`Storage`] backend must pass.
//!
//! Each check is a `pub async fn` taking a fresh, empty store that nothing else writes to (checks
//! assert exact revisions, so the store's revision must move only by the check's own writes). A
//! backend's test file runs them all with one macro line:
//!
//! ```ignore
//! async fn fresh() -> (Arc<dyn Storage>, tempfile::TempDir) { /* open a store in a temp dir */ }
//! stead_storage::storage_conformance_tests!(fresh());
//! ```
//!
//! The factory expression is evaluated once per check and must give `(Arc<dyn Storage>, guard)`;
//! the guard (a temp dir, a child etcd process, or `()`) lives until the check ends. The suite knows
//! nothing of any backend: only the [`Storage`] contract. Checks panic (assert) on a violation.
//! Waiting for a watch event is bounded by [`EVENT_TIMEOUT`] so a broken backend fails instead of
//! hanging; no check asserts a wall-clock bound.
//!
//! Checks by concern: `crud.rs` (single keys), `list.rs` (ranges, pagination, past revisions),
//! `watch.rs`, `concurrency.rs`, `compaction.rs`; this file holds the macro and shared helpers.

mod compaction;
mod concurrency;
mod crud;
mod etcd_process;
mod list;
mod watch;

pub use compaction::*;
pub use concurrency::*;
pub use crud::*;
pub use etcd_process::EtcdProcess;
pub use list::*;
pub use watch::*;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    EventType, KeyValue, ListOptions, Revision, Storage, StorageError, WatchEvent, WatchStream,
};

/// How long a check waits for one expected watch event before failing.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Expands to one `#[tokio::test]` per conformance check. The argument is an expression evaluated
/// in each test, whose `.await` gives `(Arc<dyn Storage>, guard)`.
#[macro_export]
macro_rules! storage_conformance_tests {
    ($make:expr) => {
        $crate::storage_conformance_tests!(@checks $make;
            create_get_update_delete_round_trip,
            create_of_an_existing_key_fails_with_already_exists,
            stale_compare_and_swap_fails_with_expected_and_actual,
            writes_to_a_missing_key_answer_not_found,
            current_revision_moves_only_on_successful_writes,
            values_are_opaque_bytes,
            list_returns_the_prefix_in_key_order_with_pagination,
            list_at_a_past_revision_sees_the_state_of_then,
            list_at_a_future_revision_fails,
            watch_from_a_past_revision_replays_missed_events_then_live_ones,
            watch_from_the_current_revision_sees_only_new_changes,
            watch_filters_by_prefix,
            watch_events_carry_previous_values,
            watch_replays_a_long_history_in_order,
            watch_keeps_up_with_a_burst_of_concurrent_writes,
            concurrent_compare_and_swap_increments_lose_no_update,
            concurrent_writers_all_get_distinct_consecutive_revisions,
            compaction_answers_compacted_for_older_revisions,
        );
    };
    (@checks $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (storage, _guard) = $make.await;
                $crate::conformance::$check(storage).await;
            }
        )*
    };
}

pub(crate) fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

pub(crate) fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

pub(crate) fn opts(
    start_after: Option<&str>,
    limit: Option<usize>,
    revision: Option<Revision>,
) -> ListOptions {
    ListOptions {
        start_after: start_after.map(str::to_owned),
        limit,
        revision,
    }
}

/// The next event of `stream`; panics if the stream errors, ends, or stays silent too long.
pub async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(error))) => panic!("watch stream failed: {error}"),
        Ok(None) => panic!("watch stream ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

/// The error a watch from `after` answers, from the call itself or as the stream's first item.
pub(crate) async fn watch_error(
    storage: &dyn Storage,
    prefix: &str,
    after: Revision,
) -> StorageError {
    match storage.watch(prefix, after).await {
        Err(error) => error,
        Ok(mut stream) => match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
            Ok(Some(Err(error))) => error,
            Ok(Some(Ok(event))) => {
                panic!("watch after {after} delivered {event:?} instead of an error")
            }
            Ok(None) => panic!("watch after {after} ended without an error"),
            Err(_) => panic!("watch after {after} neither failed nor delivered"),
        },
    }
}

pub(crate) fn event(
    kind: EventType,
    key: &str,
    revision: Revision,
    value: &str,
    prev: Option<&str>,
) -> WatchEvent {
    WatchEvent {
        kind,
        key: key.to_owned(),
        revision,
        value: b(value),
        prev_value: prev.map(b),
    }
}

/// Writes `count` keys `/<dir>/<task>/<i>` from `tasks` concurrent tasks; returns the revisions.
pub(crate) async fn write_concurrently(
    s: &Arc<dyn Storage>,
    dir: &str,
    tasks: usize,
    count: usize,
) -> Vec<Revision> {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (s, dir) = (s.clone(), dir.to_owned());
        handles.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..count {
                let key = format!("/{dir}/{task:03}/{i:04}");
                revisions.push(s.create(&key, b(&key)).await.unwrap());
            }
            revisions
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}
