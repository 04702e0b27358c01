//! A work queue of keys with de-duplication, delayed adds and per-key exponential backoff
//! (upstream `workqueue.RateLimitingInterface`: `Add`, `AddAfter`, `AddRateLimited`, `Forget`).
//!
//! Time is passed in, so the queue is a plain value: the run loops drive it with tokio's clock
//! (waking for the next due key through [`WorkQueue::wake`]) and tests with any instants they like.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// Backoff of a key that keeps failing: `base * 2^failures`, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(20),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[derive(Debug)]
pub struct WorkQueue<K> {
    ready: VecDeque<K>,
    queued: BTreeSet<K>,
    delayed: BinaryHeap<Reverse<(Instant, u64, K)>>,
    seq: u64,
    failures: HashMap<K, u32>,
    backoff: Backoff,
}

impl<K: Ord + Clone + Hash> WorkQueue<K> {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            ready: VecDeque::new(),
            queued: BTreeSet::new(),
            delayed: BinaryHeap::new(),
            seq: 0,
            failures: HashMap::new(),
            backoff,
        }
    }

    /// Queues `key` now unless it is already waiting to be processed.
    pub fn add(&mut self, key: K) {
        if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
        }
    }

    /// Queues `key` once `at` has passed.
    pub fn add_at(&mut self, key: K, at: Instant) {
        self.seq += 1;
        self.delayed.push(Reverse((at, self.seq, key)));
    }

    /// Queues `key` after its backoff, which grows with each call until [`WorkQueue::forget`].
    pub fn add_rate_limited(&mut self, key: K, now: Instant) {
        let failures = self.failures.entry(key.clone()).or_insert(0);
        let delay = self.backoff.delay(*failures);
        *failures = failures.saturating_add(1);
        self.add_at(key, now + delay);
    }

    /// Clears the backoff of `key` (it was processed successfully).
    pub fn forget(&mut self, key: &K) {
        self.failures.remove(key);
    }

    /// How many times in a row `key` failed.
    pub fn failures(&self, key: &K) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }

    /// Takes the next key that is due at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<K> {
        while let Some(Reverse((at, _, _))) = self.delayed.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, _, key))) = self.delayed.pop() {
                self.add(key);
            }
        }
        let key = self.ready.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }

    /// When the next key becomes due: `Some(now)`-or-earlier if one is ready, `None` if the queue
    /// is empty.
    pub fn next_due(&self) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(Instant::now());
        }
        self.delayed.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Completes when the next key is due: the wake-up arm of a run loop's `select!`. Never
    /// completes while the queue is empty or the loop is not `taking` keys (caches not synced
    /// yet, all workers busy). It borrows nothing, so the other arms may change the queue; the
    /// loop asks for a new one on every turn.
    pub fn wake(&self, taking: bool) -> impl Future<Output = ()> + Send + 'static {
        let due = taking.then(|| self.next_due()).flatten();
        async move {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.delayed.is_empty()
    }

    /// Keys ready now plus delayed ones, for tests and diagnostics.
    pub fn len(&self) -> usize {
        self.ready.len() + self.delayed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_queued_key_twice_processes_it_once() {
        let mut q = WorkQueue::new(Backoff::default());
        let now = Instant::now();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.pop(now), Some("a"));
        assert_eq!(q.pop(now), Some("b"));
        assert_eq!(q.pop(now), None);
    }

    #[test]
    fn rate_limited_keys_come_back_after_a_doubling_delay() {
        let backoff = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(35),
        };
        let mut q = WorkQueue::new(backoff);
        let t0 = Instant::now();
        q.add_rate_limited("a", t0);
        assert_eq!(q.pop(t0), None);
        assert_eq!(q.pop(t0 + Duration::from_millis(10)), Some("a"));
        q.add_rate_limited("a", t0);
        assert_eq!(q.pop(t0 + Duration::from_millis(19)), None);
        assert_eq!(q.pop(t0 + Duration::from_millis(20)), Some("a"));
        q.add_rate_limited("a", t0);
        assert_eq!(q.pop(t0 + Duration::from_millis(34)), None);
        assert_eq!(q.pop(t0 + Duration::from_millis(35)), Some("a"), "capped");
        q.forget(&"a");
        assert_eq!(q.failures(&"a"), 0);
    }
}
