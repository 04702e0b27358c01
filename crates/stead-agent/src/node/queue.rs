//! A work queue of pod keys (client-go's workqueue semantics, for the pod loop): a key waits at
//! most once; a key being processed is never handed out twice, and one added meanwhile is
//! handed out again after [`Queue::done`]; failed keys come back after a per-key exponential
//! backoff. Time is passed in, so the queue is a plain value.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// Delay before retry number `failures + 1`: `base * 2^failures`, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[derive(Debug)]
pub struct Queue {
    ready: VecDeque<String>,
    queued: HashSet<String>,
    active: HashSet<String>,
    dirty: HashSet<String>,
    delayed: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
    failures: HashMap<String, u32>,
    backoff: Backoff,
}

impl Queue {
    pub fn new(backoff: Backoff) -> Queue {
        Queue {
            ready: VecDeque::new(),
            queued: HashSet::new(),
            active: HashSet::new(),
            dirty: HashSet::new(),
            delayed: BinaryHeap::new(),
            seq: 0,
            failures: HashMap::new(),
            backoff,
        }
    }

    /// Queues `key` now (once, however often it is added before it is handed out).
    pub fn add(&mut self, key: &str) {
        if self.active.contains(key) {
            self.dirty.insert(key.to_string());
        } else if self.queued.insert(key.to_string()) {
            self.ready.push_back(key.to_string());
        }
    }

    /// Queues `key` after its backoff, which doubles with each failure until [`Queue::forget`].
    pub fn retry(&mut self, key: &str, now: Instant) {
        let failures = self.failures.entry(key.to_string()).or_insert(0);
        let at = now + self.backoff.delay(*failures);
        *failures = failures.saturating_add(1);
        self.seq += 1;
        self.delayed.push(Reverse((at, self.seq, key.to_string())));
    }

    /// Clears the backoff of `key`.
    pub fn forget(&mut self, key: &str) {
        self.failures.remove(key);
    }

    /// Hands out the next key due at `now`; it counts as being processed until [`Queue::done`].
    pub fn pop(&mut self, now: Instant) -> Option<String> {
        while let Some(Reverse((at, _, _))) = self.delayed.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, _, key))) = self.delayed.pop() {
                self.add(&key);
            }
        }
        let key = self.ready.pop_front()?;
        self.queued.remove(&key);
        self.active.insert(key.clone());
        Some(key)
    }

    /// `key` is processed; if it was added meanwhile, it is queued again.
    pub fn done(&mut self, key: &str) {
        self.active.remove(key);
        if self.dirty.remove(key) {
            self.add(key);
        }
    }

    /// When [`Queue::pop`] will next have a key: now if one is ready, `None` if nothing waits.
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(now);
        }
        self.delayed.peek().map(|Reverse((at, _, _))| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Queue {
        Queue::new(Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(35),
        })
    }

    #[test]
    fn a_key_added_twice_is_handed_out_once() {
        let mut q = queue();
        let now = Instant::now();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.pop(now).as_deref(), Some("a"));
        assert_eq!(q.pop(now).as_deref(), Some("b"));
        assert_eq!(q.pop(now), None);
    }

    #[test]
    fn a_key_added_while_processed_comes_back_after_done() {
        let mut q = queue();
        let now = Instant::now();
        q.add("a");
        assert_eq!(q.pop(now).as_deref(), Some("a"));
        q.add("a");
        assert_eq!(q.pop(now), None, "never twice at a time");
        q.done("a");
        assert_eq!(q.pop(now).as_deref(), Some("a"));
        q.done("a");
        assert_eq!(q.pop(now), None);
    }

    #[test]
    fn retries_wait_a_doubling_capped_delay() {
        let mut q = queue();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        q.retry("a", t0);
        assert_eq!(q.next_due(t0), Some(t0 + ms(10)));
        assert_eq!(q.pop(t0 + ms(9)), None);
        assert_eq!(q.pop(t0 + ms(10)).as_deref(), Some("a"));
        q.done("a");
        q.retry("a", t0);
        assert_eq!(q.next_due(t0), Some(t0 + ms(20)));
        assert_eq!(q.pop(t0 + ms(20)).as_deref(), Some("a"));
        q.done("a");
        q.retry("a", t0);
        q.retry("a", t0);
        assert_eq!(q.next_due(t0), Some(t0 + ms(35)), "capped");
        q.forget("a");
        q.pop(t0 + ms(100));
        q.done("a");
        q.retry("a", t0);
        assert_eq!(q.next_due(t0), Some(t0 + ms(10)), "forgotten");
    }
}
