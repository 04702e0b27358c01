//! Durability of the embedded store: reopen, the file lock, and `kill -9` in the middle of writes.
//!
//! Tests that need a second process re-run this test binary as a child, selecting the ignored test
//! `child_process` (`--ignored --exact child_process`) and its role with `STEAD_STORAGE_CHILD`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use stead_storage::embedded::EmbeddedStore;
use stead_storage::{EventType, ListOptions, Storage, StorageError};

const ROLE: &str = "STEAD_STORAGE_CHILD";
const DB: &str = "STEAD_STORAGE_CHILD_DB";
const ROUND: &str = "STEAD_STORAGE_CHILD_ROUND";

/// Runs this binary's `child_process` test in a new process with `role` and `db`.
fn child(role: &str, db: &Path, round: u32) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env(DB, db)
    .env(ROUND, round.to_string())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    cmd
}

/// The value a crash-writer child writes under `key` (long enough to span pages now and then).
fn value_of(key: &str) -> Bytes {
    Bytes::from(format!("{key}|{}", "x".repeat(300)))
}

/// Child roles: `crash-writer` writes forever from 8 tasks, printing `ACK <key> <revision>` after
/// each acknowledged write; `open-once` tries to open the store and prints `OPEN ok` or
/// `OPEN err <message>`.
#[test]
#[ignore = "entry point of child processes spawned by other tests"]
fn child_process() {
    let (Ok(role), Ok(db)) = (std::env::var(ROLE), std::env::var(DB)) else {
        panic!("child_process runs only as a child of the durability tests");
    };
    let round: u32 = std::env::var(ROUND).unwrap().parse().unwrap();
    match role.as_str() {
        "open-once" => match EmbeddedStore::open(Path::new(&db)) {
            Ok(_) => println!("OPEN ok"),
            Err(e) => println!("OPEN err {e}"),
        },
        "crash-writer" => {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let store = std::sync::Arc::new(EmbeddedStore::open(Path::new(&db)).unwrap());
                let mut tasks = Vec::new();
                for task in 0..8 {
                    let store = store.clone();
                    tasks.push(tokio::spawn(async move {
                        for i in 0.. {
                            let key = format!("/crash/{round:02}/{task}/{i:06}");
                            let revision = store.create(&key, value_of(&key)).await.unwrap();
                            println!("ACK {key} {revision}");
                        }
                    }));
                }
                for task in tasks {
                    task.await.unwrap();
                }
            });
        }
        other => panic!("unknown child role {other}"),
    }
}

/// The text after `tag` in a child's output line (libtest may print `test child_process ... ` first
/// on the same line).
fn tagged(line: &str, tag: &str) -> Option<String> {
    line.find(tag).map(|at| line[at + tag.len()..].to_owned())
}

/// A small xorshift generator: enough randomness for kill timing, seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.redb");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let mut total_acked = 0;

    for round in 0..6 {
        let mut process = child("crash-writer", &db, round).spawn().unwrap();
        let stdout = process.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Let it acknowledge a random number of writes, then kill it at a random moment after.
        let wait_for = 20 + rng.next(600);
        let mut acks = Vec::new();
        while (acks.len() as u64) < wait_for {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the writer child stopped acknowledging");
            acks.extend(tagged(&line, "ACK "));
        }
        std::thread::sleep(Duration::from_micros(rng.next(5_000)));
        process.kill().unwrap(); // SIGKILL
        process.wait().unwrap();
        reader.join().unwrap();
        acks.extend(lines.try_iter().filter_map(|line| tagged(&line, "ACK ")));

        let opening = std::time::Instant::now();
        let store = EmbeddedStore::open(&db).unwrap();
        let open_time = opening.elapsed();
        let head = store.current_revision().await.unwrap();
        for ack in &acks {
            let (key, revision) = ack.split_once(' ').unwrap();
            let revision: u64 = revision.parse().unwrap();
            let stored = store.get(key).await.unwrap();
            let stored = stored.unwrap_or_else(|| {
                panic!("seed {seed} round {round}: acknowledged {key} at {revision} is lost")
            });
            assert_eq!(
                (stored.mod_revision, stored.value),
                (revision, value_of(key)),
                "seed {seed} round {round}: {key}"
            );
            assert!(revision <= head);
        }
        // Batches are atomic: every revision up to the head belongs to exactly one surviving key.
        let all = store.list("/crash/", ListOptions::default()).await.unwrap();
        let mut revisions: Vec<u64> = all.items.iter().map(|kv| kv.mod_revision).collect();
        revisions.sort_unstable();
        assert_eq!(
            revisions,
            (1..=head).collect::<Vec<_>>(),
            "seed {seed} round {round}"
        );
        eprintln!(
            "round {round}: {} acknowledged writes verified, head {head}, reopened in {open_time:?}",
            acks.len()
        );
        total_acked += acks.len();
        store.close().await.unwrap();
    }
    assert!(total_acked >= 6 * 20);
}

#[tokio::test]
async fn reopening_keeps_values_revisions_history_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/stead.redb");
    let store = EmbeddedStore::open(&db).unwrap();
    let r1 = store
        .create("/r/a", Bytes::from_static(b"a1"))
        .await
        .unwrap();
    let r2 = store
        .update("/r/a", Bytes::from_static(b"a2"), r1)
        .await
        .unwrap();
    let r3 = store
        .create("/r/b", Bytes::from_static(b"b1"))
        .await
        .unwrap();
    let (r4, _) = store.delete("/r/b", None).await.unwrap();
    store.compact(r1).await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(&db).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), r4);
    assert_eq!(store.compacted_revision().await.unwrap(), r1);
    let a = store.get("/r/a").await.unwrap().unwrap();
    assert_eq!(
        (a.value, a.create_revision, a.mod_revision),
        (Bytes::from_static(b"a2"), r1, r2)
    );
    assert_eq!(store.get("/r/b").await.unwrap(), None);
    // History after the compaction point survived, so a watch can resume across the restart.
    let mut watch = store.watch("/r/", r2).await.unwrap();
    let created = watch.next().await.unwrap().unwrap();
    let deleted = watch.next().await.unwrap().unwrap();
    assert_eq!((created.kind, created.revision), (EventType::Create, r3));
    assert_eq!(
        (deleted.kind, deleted.revision, deleted.value),
        (EventType::Delete, r4, Bytes::from_static(b"b1"))
    );
    assert_eq!(
        store
            .list(
                "/r/",
                ListOptions {
                    revision: Some(r1 - 1),
                    ..Default::default()
                }
            )
            .await
            .unwrap_err(),
        StorageError::Compacted {
            requested: r1 - 1,
            compacted: r1
        }
    );
    // Revisions continue where they stopped.
    assert_eq!(store.create("/r/c", Bytes::new()).await.unwrap(), r4 + 1);
}

#[tokio::test]
async fn a_second_open_in_the_same_process_fails_with_a_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stead.redb");
    let first = EmbeddedStore::open(&db).unwrap();
    let StorageError::Backend(message) = EmbeddedStore::open(&db).unwrap_err() else {
        panic!("expected a backend error");
    };
    assert!(
        message.contains("is locked by another process"),
        "{message}"
    );
    assert!(message.contains("stead.redb"), "{message}");
    first.close().await.unwrap();
    EmbeddedStore::open(&db).expect("closing released the lock");
}

#[tokio::test]
async fn another_process_cannot_open_a_store_in_use_until_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stead.redb");
    let run_child = |db: &Path| {
        let output = child("open-once", db, 0).output().unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .find_map(|line| tagged(line, "OPEN "))
            .unwrap_or_default()
    };

    let store = EmbeddedStore::open(&db).unwrap();
    store.create("/x", Bytes::new()).await.unwrap();
    let answer = run_child(&db);
    assert!(
        answer.starts_with("err ") && answer.contains("is locked by another process"),
        "{answer}"
    );

    drop(store);
    assert_eq!(run_child(&db), "ok");
}
