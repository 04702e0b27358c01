//! Single-key writes and reads: revisions, AlreadyExists, Conflict, NotFound, opaque values.

use std::sync::Arc;

use bytes::Bytes;

use super::{b, next_event};
use crate::{KeyValue, ListOptions, Storage, StorageError};

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
