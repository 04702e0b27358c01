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

use std::collections::BTreeSet;
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

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

fn opts(
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
async fn watch_error(storage: &dyn Storage, prefix: &str, after: Revision) -> StorageError {
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

fn event(
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

pub async fn create_get_update_delete_round_trip(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let r1 = s.create("/t/a", b("one")).await.unwrap();
    assert_eq!(r1, r0 + 1);
    let created = KeyValue {
        key: "/t/a".into(),
        value: b("one"),
        create_revision: r1,
        mod_revision: r1,
    };
    assert_eq!(s.get("/t/a").await.unwrap(), Some(created));

    let r2 = s.update("/t/a", b("two"), r1).await.unwrap();
    assert_eq!(r2, r1 + 1);
    let updated = KeyValue {
        key: "/t/a".into(),
        value: b("two"),
        create_revision: r1,
        mod_revision: r2,
    };
    assert_eq!(s.get("/t/a").await.unwrap(), Some(updated.clone()));

    let (r3, last) = s.delete("/t/a", None).await.unwrap();
    assert_eq!(r3, r2 + 1);
    assert_eq!(last, updated);
    assert_eq!(s.get("/t/a").await.unwrap(), None);
    assert_eq!(s.current_revision().await.unwrap(), r3);

    // A re-created key is a new incarnation: its create revision starts over.
    let r4 = s.create("/t/a", b("again")).await.unwrap();
    assert_eq!(r4, r3 + 1);
    let again = s.get("/t/a").await.unwrap().unwrap();
    assert_eq!(
        (again.create_revision, again.mod_revision, again.value),
        (r4, r4, b("again"))
    );
}

pub async fn create_of_an_existing_key_fails_with_already_exists(s: Arc<dyn Storage>) {
    let r1 = s.create("/t/a", b("first")).await.unwrap();
    let err = s.create("/t/a", b("second")).await.unwrap_err();
    assert_eq!(err, StorageError::AlreadyExists { key: "/t/a".into() });
    assert_eq!(s.current_revision().await.unwrap(), r1);
    assert_eq!(s.get("/t/a").await.unwrap().unwrap().value, b("first"));
}

pub async fn stale_compare_and_swap_fails_with_expected_and_actual(s: Arc<dyn Storage>) {
    let r1 = s.create("/t/a", b("v1")).await.unwrap();
    let r2 = s.update("/t/a", b("v2"), r1).await.unwrap();

    let err = s.update("/t/a", b("stale"), r1).await.unwrap_err();
    assert_eq!(
        err,
        StorageError::Conflict {
            key: "/t/a".into(),
            expected: r1,
            actual: r2
        }
    );
    let err = s.delete("/t/a", Some(r1)).await.unwrap_err();
    assert_eq!(
        err,
        StorageError::Conflict {
            key: "/t/a".into(),
            expected: r1,
            actual: r2
        }
    );
    assert_eq!(s.current_revision().await.unwrap(), r2);
    assert_eq!(s.get("/t/a").await.unwrap().unwrap().value, b("v2"));

    let (r3, last) = s.delete("/t/a", Some(r2)).await.unwrap();
    assert_eq!((r3, last.value, last.mod_revision), (r2 + 1, b("v2"), r2));
}

pub async fn writes_to_a_missing_key_answer_not_found(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let not_found = StorageError::NotFound {
        key: "/t/missing".into(),
    };
    assert_eq!(s.get("/t/missing").await.unwrap(), None);
    assert_eq!(
        s.update("/t/missing", b("x"), r0).await.unwrap_err(),
        not_found
    );
    assert_eq!(s.delete("/t/missing", None).await.unwrap_err(), not_found);
    assert_eq!(
        s.delete("/t/missing", Some(r0)).await.unwrap_err(),
        not_found
    );
    assert_eq!(s.current_revision().await.unwrap(), r0);
}

pub async fn current_revision_moves_only_on_successful_writes(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let r1 = s.create("/t/a", b("1")).await.unwrap();
    s.create("/t/a", b("dup")).await.unwrap_err();
    s.update("/t/a", b("stale"), r0).await.unwrap_err();
    s.delete("/t/nope", None).await.unwrap_err();
    assert_eq!(s.current_revision().await.unwrap(), r1);
    let r2 = s.create("/t/b", b("2")).await.unwrap();
    assert_eq!((r1, r2), (r0 + 1, r0 + 2));
    assert_eq!(s.current_revision().await.unwrap(), r2);
}

pub async fn values_are_opaque_bytes(s: Arc<dyn Storage>) {
    let binary: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    let r0 = s.current_revision().await.unwrap();
    s.create("/t/empty", Bytes::new()).await.unwrap();
    s.create("/t/binary", binary.clone()).await.unwrap();
    assert_eq!(
        s.get("/t/empty").await.unwrap().unwrap().value,
        Bytes::new()
    );
    assert_eq!(s.get("/t/binary").await.unwrap().unwrap().value, binary);
    let listed = s.list("/t/", ListOptions::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|kv| kv.value.clone())
            .collect::<Vec<_>>(),
        vec![binary.clone(), Bytes::new()]
    );
    let mut watch = s.watch("/t/", r0).await.unwrap();
    assert_eq!(next_event(&mut watch).await.value, Bytes::new());
    assert_eq!(next_event(&mut watch).await.value, binary);
}

pub async fn list_returns_the_prefix_in_key_order_with_pagination(s: Arc<dyn Storage>) {
    for key in ["/p/c", "/p0", "/p/a", "/o/x", "/p/d", "/p", "/p/b"] {
        s.create(key, b(key)).await.unwrap();
    }
    let head = s.current_revision().await.unwrap();

    let all = s.list("/p/", ListOptions::default()).await.unwrap();
    assert_eq!(keys(&all.items), ["/p/a", "/p/b", "/p/c", "/p/d"]);
    assert_eq!((all.revision, all.more), (head, false));
    assert_eq!(all.items[0].value, b("/p/a"));

    let page = s.list("/p/", opts(None, Some(3), None)).await.unwrap();
    assert_eq!(
        (keys(&page.items), page.more, page.revision),
        (vec!["/p/a", "/p/b", "/p/c"], true, head)
    );
    let page = s
        .list("/p/", opts(Some("/p/c"), Some(3), None))
        .await
        .unwrap();
    assert_eq!((keys(&page.items), page.more), (vec!["/p/d"], false));
    // A page that ends exactly at the last key has no more.
    let page = s
        .list("/p/", opts(Some("/p/b"), Some(2), None))
        .await
        .unwrap();
    assert_eq!(
        (keys(&page.items), page.more),
        (vec!["/p/c", "/p/d"], false)
    );
    let page = s
        .list("/p/", opts(Some("/p/d"), Some(2), None))
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.more), (0, false));
    // A cursor that sorts before the prefix starts at the prefix.
    let page = s
        .list("/p/", opts(Some("/a"), Some(1), None))
        .await
        .unwrap();
    assert_eq!((keys(&page.items), page.more), (vec!["/p/a"], true));

    let everything = s.list("", ListOptions::default()).await.unwrap();
    assert_eq!(
        keys(&everything.items),
        ["/o/x", "/p", "/p/a", "/p/b", "/p/c", "/p/d", "/p0"]
    );
    let none = s.list("/q/", ListOptions::default()).await.unwrap();
    assert_eq!(
        (none.items.len(), none.more, none.revision),
        (0, false, head)
    );
}

pub async fn list_at_a_past_revision_sees_the_state_of_then(s: Arc<dyn Storage>) {
    let ra = s.create("/h/a", b("a1")).await.unwrap();
    let rb = s.create("/h/b", b("b1")).await.unwrap();
    // Never changed: its current value is its value at every later revision.
    let rbb = s.create("/h/bb", b("bb1")).await.unwrap();
    let rc = s.create("/h/c", b("c1")).await.unwrap();
    let then = rc;

    s.update("/h/b", b("b2"), rb).await.unwrap();
    s.delete("/h/c", None).await.unwrap();
    s.create("/h/0", b("new")).await.unwrap();
    s.create("/h/d", b("new")).await.unwrap();
    s.delete("/h/a", None).await.unwrap();
    let ra2 = s.create("/h/a", b("a2")).await.unwrap();
    let head = s.current_revision().await.unwrap();

    let past = s.list("/h/", opts(None, None, Some(then))).await.unwrap();
    let expected = vec![
        KeyValue {
            key: "/h/a".into(),
            value: b("a1"),
            create_revision: ra,
            mod_revision: ra,
        },
        KeyValue {
            key: "/h/b".into(),
            value: b("b1"),
            create_revision: rb,
            mod_revision: rb,
        },
        KeyValue {
            key: "/h/bb".into(),
            value: b("bb1"),
            create_revision: rbb,
            mod_revision: rbb,
        },
        KeyValue {
            key: "/h/c".into(),
            value: b("c1"),
            create_revision: rc,
            mod_revision: rc,
        },
    ];
    assert_eq!(
        (past.items, past.revision, past.more),
        (expected.clone(), then, false)
    );

    // Paging through the past revision, one item at a time, gives the same consistent view.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s
            .list("/h/", opts(cursor.as_deref(), Some(1), Some(then)))
            .await
            .unwrap();
        assert_eq!(page.revision, then);
        paged.extend(page.items.clone());
        cursor = page.items.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, expected);

    // Before `/h/c` existed.
    let earlier = s.list("/h/", opts(None, None, Some(rb))).await.unwrap();
    assert_eq!(keys(&earlier.items), ["/h/a", "/h/b"]);

    let now = s.list("/h/", ListOptions::default()).await.unwrap();
    assert_eq!(keys(&now.items), ["/h/0", "/h/a", "/h/b", "/h/bb", "/h/d"]);
    assert_eq!(
        (
            now.items[1].create_revision,
            now.items[2].value.clone(),
            now.revision
        ),
        (ra2, b("b2"), head)
    );
    let at_head = s.list("/h/", opts(None, None, Some(head))).await.unwrap();
    assert_eq!(at_head, now);
}

pub async fn list_at_a_future_revision_fails(s: Arc<dyn Storage>) {
    let head = s.create("/t/a", b("a")).await.unwrap();
    let err = s
        .list("/t/", opts(None, None, Some(head + 5)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StorageError::FutureRevision {
            requested: head + 5,
            current: head
        }
    );
}

pub async fn watch_from_a_past_revision_replays_missed_events_then_live_ones(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let r1 = s.create("/w/a", b("a1")).await.unwrap();
    let r2 = s.update("/w/a", b("a2"), r1).await.unwrap();
    let r3 = s.create("/w/b", b("b1")).await.unwrap();
    let (r4, _) = s.delete("/w/a", None).await.unwrap();
    let history = [
        event(EventType::Create, "/w/a", r1, "a1", None),
        event(EventType::Update, "/w/a", r2, "a2", Some("a1")),
        event(EventType::Create, "/w/b", r3, "b1", None),
        event(EventType::Delete, "/w/a", r4, "a2", Some("a2")),
    ];

    let mut from_start = s.watch("/w/", r0).await.unwrap();
    let mut from_middle = s.watch("/w/", r2).await.unwrap();
    for expected in &history {
        assert_eq!(&next_event(&mut from_start).await, expected);
    }
    for expected in &history[2..] {
        assert_eq!(&next_event(&mut from_middle).await, expected);
    }
    let r5 = s.create("/w/c", b("c1")).await.unwrap();
    let live = event(EventType::Create, "/w/c", r5, "c1", None);
    assert_eq!(next_event(&mut from_start).await, live);
    assert_eq!(next_event(&mut from_middle).await, live);
}

pub async fn watch_from_the_current_revision_sees_only_new_changes(s: Arc<dyn Storage>) {
    s.create("/w/old", b("old")).await.unwrap();
    let head = s.current_revision().await.unwrap();
    let mut watch = s.watch("/w/", head).await.unwrap();
    let r = s.create("/w/new", b("new")).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Create, "/w/new", r, "new", None)
    );
}

pub async fn watch_filters_by_prefix(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let before = s.create("/f/a/1", b("1")).await.unwrap();
    s.create("/f/b/1", b("x")).await.unwrap();
    let mut watch = s.watch("/f/a/", r0).await.unwrap();
    s.create("/f/ab", b("x")).await.unwrap();
    s.create("/f/", b("x")).await.unwrap();
    let live = s.create("/f/a/2", b("2")).await.unwrap();
    s.create("/g/a/", b("x")).await.unwrap();
    let last = s.create("/f/a/3", b("3")).await.unwrap();

    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Create, "/f/a/1", before, "1", None)
    );
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Create, "/f/a/2", live, "2", None)
    );
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Create, "/f/a/3", last, "3", None)
    );
}

pub async fn watch_events_carry_previous_values(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let mut watch = s.watch("/d/", r0).await.unwrap();
    let r1 = s.create("/d/x", b("v1")).await.unwrap();
    let r2 = s.update("/d/x", b("v2"), r1).await.unwrap();
    let (r3, _) = s.delete("/d/x", Some(r2)).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Create, "/d/x", r1, "v1", None)
    );
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Update, "/d/x", r2, "v2", Some("v1"))
    );
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Delete, "/d/x", r3, "v2", Some("v2"))
    );
}

/// Writes `count` keys `/<dir>/<task>/<i>` from `tasks` concurrent tasks; returns the revisions.
async fn write_concurrently(
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

pub async fn watch_replays_a_long_history_in_order(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let written = write_concurrently(&s, "long", 8, 150).await;
    assert_eq!(written.len(), 1200);
    let mut watch = s.watch("/long/", r0).await.unwrap();
    for i in 1..=1200 {
        let event = next_event(&mut watch).await;
        assert_eq!(
            event.revision,
            r0 + i,
            "history must arrive in revision order without gaps"
        );
        assert_eq!(event.kind, EventType::Create);
        assert_eq!(event.value, b(&event.key));
    }
}

pub async fn watch_keeps_up_with_a_burst_of_concurrent_writes(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let mut watch = s.watch("/burst/", r0).await.unwrap();
    let written = write_concurrently(&s, "burst", 64, 20).await;
    let mut keys_seen = BTreeSet::new();
    for i in 1..=written.len() as u64 {
        let event = next_event(&mut watch).await;
        assert_eq!(
            event.revision,
            r0 + i,
            "live events must arrive in revision order without gaps"
        );
        assert!(
            keys_seen.insert(event.key.clone()),
            "duplicate event for {}",
            event.key
        );
    }
    assert_eq!(keys_seen.len(), 64 * 20);
}

pub async fn concurrent_compare_and_swap_increments_lose_no_update(s: Arc<dyn Storage>) {
    const TASKS: u64 = 32;
    let r0 = s.create("/c/counter", b("0")).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            loop {
                let current = s.get("/c/counter").await.unwrap().unwrap();
                let n: u64 = std::str::from_utf8(&current.value)
                    .unwrap()
                    .parse()
                    .unwrap();
                match s
                    .update("/c/counter", b(&(n + 1).to_string()), current.mod_revision)
                    .await
                {
                    Ok(_) => return conflicts,
                    Err(StorageError::Conflict {
                        expected, actual, ..
                    }) => {
                        assert_eq!(expected, current.mod_revision);
                        assert!(actual > expected, "a conflict reports a newer revision");
                        conflicts += 1;
                    }
                    Err(other) => panic!("unexpected error {other}"),
                }
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let counter = s.get("/c/counter").await.unwrap().unwrap();
    assert_eq!(counter.value, b(&TASKS.to_string()));
    assert_eq!(counter.mod_revision, r0 + TASKS);
    assert_eq!(s.current_revision().await.unwrap(), r0 + TASKS);
}

pub async fn concurrent_writers_all_get_distinct_consecutive_revisions(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let mut written = write_concurrently(&s, "many", 64, 4).await;
    written.sort_unstable();
    let expected: Vec<Revision> = (r0 + 1..=r0 + 256).collect();
    assert_eq!(written, expected);
    assert_eq!(s.current_revision().await.unwrap(), r0 + 256);
    let listed = s.list("/many/", ListOptions::default()).await.unwrap();
    assert_eq!(listed.items.len(), 256);
    let mut mods: Vec<Revision> = listed.items.iter().map(|kv| kv.mod_revision).collect();
    mods.sort_unstable();
    assert_eq!(mods, expected);
}

pub async fn compaction_answers_compacted_for_older_revisions(s: Arc<dyn Storage>) {
    let r0 = s.current_revision().await.unwrap();
    let r1 = s.create("/k/a", b("a1")).await.unwrap();
    let r2 = s.update("/k/a", b("a2"), r1).await.unwrap();
    let r3 = s.create("/k/b", b("b1")).await.unwrap();
    let r4 = s.update("/k/a", b("a3"), r2).await.unwrap();
    let r5 = s.create("/k/c", b("c1")).await.unwrap();

    s.compact(r3).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), r3);
    let gone = |requested| StorageError::Compacted {
        requested,
        compacted: r3,
    };

    assert_eq!(watch_error(s.as_ref(), "/k/", r0).await, gone(r0));
    assert_eq!(watch_error(s.as_ref(), "/k/", r2).await, gone(r2));
    assert_eq!(
        s.list("/k/", opts(None, None, Some(r2))).await.unwrap_err(),
        gone(r2)
    );

    let at = s.list("/k/", opts(None, None, Some(r3))).await.unwrap();
    assert_eq!(
        at.items
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.clone()))
            .collect::<Vec<_>>(),
        [("/k/a", b("a2")), ("/k/b", b("b1"))]
    );
    let mut watch = s.watch("/k/", r3).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Update, "/k/a", r4, "a3", Some("a2"))
    );
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Create, "/k/c", r5, "c1", None)
    );

    // Current values survive compaction, and writes go on.
    assert_eq!(s.get("/k/b").await.unwrap().unwrap().mod_revision, r3);
    assert_eq!(
        s.list("/k/", ListOptions::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    let r6 = s.create("/k/d", b("d1")).await.unwrap();
    assert_eq!(r6, r5 + 1);
    assert_eq!(
        next_event(&mut watch).await,
        event(EventType::Create, "/k/d", r6, "d1", None)
    );
}
