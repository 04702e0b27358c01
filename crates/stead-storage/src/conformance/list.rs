//! Range reads: prefix, key order, pagination, past and future revisions.

use std::sync::Arc;

use super::{b, keys, opts};
use crate::{KeyValue, ListOptions, Storage, StorageError};

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
