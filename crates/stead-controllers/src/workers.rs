//! The syncs a run loop has in flight: up to a limit at once, never two of one key (upstream
//! workqueue's `processing` and `dirty` sets). A key that comes due while it is still syncing is
//! held back and queued again as soon as that sync ends, so a change seen mid-sync is not lost
//! and never races the sync already running.
//!
//! The loop pops keys with [`Workers::next_key`], starts them with [`Workers::spawn`], waits for
//! them in its `select!` with [`Workers::join_next`] and, after requeueing a finished key as its
//! outcome says, ends it with [`Workers::finish`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;

use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;

use crate::queue::WorkQueue;

/// Syncs in flight, each a task keyed by the work-queue key it syncs.
#[derive(Debug)]
pub struct Workers<K, T> {
    limit: usize,
    running: HashSet<K>,
    dirty: HashSet<K>,
    tasks: JoinSet<T>,
    keys: HashMap<Id, K>,
}

impl<K, T> Workers<K, T>
where
    K: Ord + Clone + Hash,
    T: Send + 'static,
{
    /// At most `limit` syncs at once (at least one).
    pub fn new(limit: usize) -> Self {
        Workers {
            limit: limit.max(1),
            running: HashSet::new(),
            dirty: HashSet::new(),
            tasks: JoinSet::new(),
            keys: HashMap::new(),
        }
    }

    /// Whether another sync may start.
    pub fn has_room(&self) -> bool {
        self.tasks.len() < self.limit
    }

    /// The next key due at `now` that is not syncing already, while a worker is free. A due key
    /// that is still syncing is taken off the queue and marked to be queued again by
    /// [`Workers::finish`].
    pub fn next_key(&mut self, queue: &mut WorkQueue<K>, now: Instant) -> Option<K> {
        while self.has_room() {
            let key = queue.pop(now)?;
            if !self.running.contains(&key) {
                return Some(key);
            }
            self.dirty.insert(key);
        }
        None
    }

    /// Starts `sync` as the sync of `key`.
    pub fn spawn(&mut self, key: K, sync: impl Future<Output = T> + Send + 'static) {
        let handle = self.tasks.spawn(sync);
        self.keys.insert(handle.id(), key.clone());
        self.running.insert(key);
    }

    /// Waits for a sync to end: its key and what it returned, or how its task failed (it
    /// panicked). Pending while none runs, so it can sit in a `select!`; cancel safe. The key
    /// counts as syncing until [`Workers::finish`].
    pub async fn join_next(&mut self) -> (K, Result<T, JoinError>) {
        loop {
            let Some(joined) = self.tasks.join_next_with_id().await else {
                return std::future::pending().await;
            };
            let (id, result) = match joined {
                Ok((id, out)) => (id, Ok(out)),
                Err(e) => (e.id(), Err(e)),
            };
            if let Some(key) = self.keys.remove(&id) {
                return (key, result);
            }
        }
    }

    /// Ends the sync of `key` (after the loop has requeued it as the outcome says); queues it
    /// again now if it came due meanwhile.
    pub fn finish(&mut self, key: K, queue: &mut WorkQueue<K>) {
        self.running.remove(&key);
        if self.dirty.remove(&key) {
            queue.add(key);
        }
    }

    /// Aborts every sync still running and waits for them to stop.
    pub async fn shutdown(&mut self) {
        self.tasks.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Backoff;

    #[tokio::test]
    async fn a_key_due_while_syncing_waits_and_is_queued_again_when_it_ends() {
        let mut queue = WorkQueue::new(Backoff::default());
        let mut workers: Workers<&str, u32> = Workers::new(2);
        let now = Instant::now();
        queue.add("a");
        let key = workers.next_key(&mut queue, now).unwrap();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        workers.spawn(key, async move {
            let _ = released.await;
            7
        });
        queue.add("a");
        assert_eq!(workers.next_key(&mut queue, now), None, "a is syncing");
        assert!(queue.is_empty(), "held back, not left in the queue");
        release.send(()).unwrap();
        let (key, out) = workers.join_next().await;
        assert_eq!((key, out.unwrap()), ("a", 7));
        workers.finish(key, &mut queue);
        assert_eq!(workers.next_key(&mut queue, now), Some("a"));
    }

    #[tokio::test]
    async fn no_key_is_handed_out_while_every_worker_is_busy() {
        let mut queue = WorkQueue::new(Backoff::default());
        let mut workers: Workers<&str, ()> = Workers::new(1);
        let now = Instant::now();
        queue.add("a");
        queue.add("b");
        let a = workers.next_key(&mut queue, now).unwrap();
        workers.spawn(a, std::future::pending());
        assert!(!workers.has_room());
        assert_eq!(workers.next_key(&mut queue, now), None);
        assert_eq!(queue.len(), 1, "b stays queued");
        workers.shutdown().await;
    }

    #[tokio::test]
    async fn a_panicked_sync_reports_its_key() {
        let mut workers: Workers<&str, ()> = Workers::new(1);
        workers.spawn("a", async { panic!("sync failed badly") });
        let (key, out) = workers.join_next().await;
        assert_eq!(key, "a");
        assert!(out.unwrap_err().is_panic());
    }
}
