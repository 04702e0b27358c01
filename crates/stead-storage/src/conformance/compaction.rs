//! Compaction: older revisions answer Compacted, newer ones and current values still work.

use std::sync::Arc;

use super::{b, event, next_event, opts, watch_error};
use crate::{EventType, ListOptions, Storage, StorageError};

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
