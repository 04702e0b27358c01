//! Watches: history replay, live events, prefix filtering, previous values, bursts.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{b, event, next_event, write_concurrently};
use crate::{EventType, Storage};

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
