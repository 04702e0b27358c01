//! Many tasks at once: compare-and-swap loses no update, every write gets its own revision.

use std::sync::Arc;

use super::{b, write_concurrently};
use crate::{ListOptions, Revision, Storage, StorageError};

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
