//! Durable writes per second of the embedded store with 1, 8 and 64 concurrent writers, and the
//! time to reopen a store holding many keys.
//!
//! Every write is a `create` acknowledged only after its fsync; group commit lets concurrent writers
//! share one. Bounded: each configuration runs `STEAD_BENCH_SECS` seconds (default 2).
//! Run: `cargo bench -p stead-storage --bench durable_writes` (release), or in the dev profile with
//! `cargo test -p stead-storage --bench durable_writes` (redb itself is built with opt-level 3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stead_storage::Storage;
use stead_storage::embedded::EmbeddedStore;

const VALUE_BYTES: usize = 1024;

fn main() {
    let secs: f64 = std::env::var("STEAD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let profile = if cfg!(debug_assertions) {
        "dev (debug; redb opt-level 3)"
    } else {
        "release"
    };
    println!("embedded store, {VALUE_BYTES}-byte values, {secs} s per run, {profile} build");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        for writers in [1, 8, 64] {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Arc::new(EmbeddedStore::open(&dir.path().join("bench.redb")).expect("open"));
            let (writes, elapsed) = run_writers(&store, writers, Duration::from_secs_f64(secs)).await;
            let rate = writes as f64 / elapsed.as_secs_f64();
            let latency_ms = elapsed.as_secs_f64() * 1000.0 * writers as f64 / writes.max(1) as f64;
            println!("writers={writers:>3}  writes={writes:>7}  {rate:>9.0} writes/s  mean latency {latency_ms:.2} ms");
        }
        reopen_time(20_000).await;
    });
}

/// Runs `writers` tasks creating keys until `duration` passes; returns (writes, elapsed).
async fn run_writers(
    store: &Arc<EmbeddedStore>,
    writers: usize,
    duration: Duration,
) -> (u64, Duration) {
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (store, value) = (store.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut count = 0u64;
            while Instant::now() < deadline {
                let key = format!("/bench/{writer:03}/{count:08}");
                store.create(&key, value.clone()).await.expect("create");
                count += 1;
            }
            count
        }));
    }
    let mut writes = 0;
    for task in tasks {
        writes += task.await.expect("writer task");
    }
    (writes, start.elapsed())
}

/// Fills a store with `keys` keys (64 writers), closes it, and times opening it again.
async fn reopen_time(keys: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reopen.redb");
    let store = Arc::new(EmbeddedStore::open(&path).expect("open"));
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    let mut tasks = Vec::new();
    for writer in 0..64 {
        let (store, value) = (store.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            for i in (writer..keys).step_by(64) {
                store
                    .create(&format!("/fill/{i:08}"), value.clone())
                    .await
                    .expect("create");
            }
        }));
    }
    for task in tasks {
        task.await.expect("fill task");
    }
    let Ok(store) = Arc::try_unwrap(store) else {
        panic!("store still shared")
    };
    store.close().await.expect("close");
    let start = Instant::now();
    let store = EmbeddedStore::open(&path).expect("reopen");
    let opened = start.elapsed();
    let head = store.current_revision().await.expect("revision");
    println!(
        "reopen with {keys} keys ({head} revisions of history): {:.1} ms",
        opened.as_secs_f64() * 1000.0
    );
}
