//! Crash-loop and image-pull back-off, keyed per container (upstream `flowcontrol.Backoff`):
//! the first restart is immediate, then 10 s, doubling to at most 5 minutes; an entry not
//! renewed for twice the maximum (10 minutes of running) starts over. Pure: times are passed in.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    delay: Duration,
    /// The event (a container's finish, a failed pull) the delay was last doubled at.
    last: Timestamp,
}

/// Back-off entries by key (`<container>` for restarts, `pull/<container>` for pulls).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoffs {
    entries: HashMap<String, Entry>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn expired(event: Timestamp, last: Timestamp) -> bool {
    event.as_millisecond() - last.as_millisecond() > 2 * millis(MAX)
}

impl Backoffs {
    /// If `key` is backing off from an `event` (a container that finished then), how long is
    /// left of it at `now`, with the whole delay (for the message).
    pub fn remaining(
        &self,
        key: &str,
        event: Timestamp,
        now: Timestamp,
    ) -> Option<(Duration, Duration)> {
        let e = self.entries.get(key)?;
        if expired(event, e.last) {
            return None;
        }
        let since = now.as_millisecond() - event.as_millisecond();
        let left = millis(e.delay) - since;
        (left > 0).then(|| (Duration::from_millis(left as u64), e.delay))
    }

    /// Records a restart after `event`: the delay starts at 10 s, or doubles (capped).
    pub fn next(&mut self, key: &str, event: Timestamp) {
        let delay = match self.entries.get(key) {
            Some(e) if !expired(event, e.last) => (e.delay * 2).min(MAX),
            _ => INITIAL,
        };
        self.entries
            .insert(key.to_string(), Entry { delay, last: event });
    }

    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`): the form of upstream's messages.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn the_first_restart_is_immediate_then_the_delay_doubles_to_five_minutes() {
        let mut b = Backoffs::default();
        assert_eq!(b.remaining("c", t(0), t(0)), None);
        b.next("c", t(0));
        let mut delays = vec![];
        let mut at = 0;
        for _ in 0..7 {
            at += 1;
            let (_, delay) = b.remaining("c", t(at), t(at)).unwrap();
            delays.push(delay.as_secs());
            b.next("c", t(at));
        }
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn the_back_off_ends_after_the_delay_since_the_finish() {
        let mut b = Backoffs::default();
        b.next("c", t(0));
        assert_eq!(
            b.remaining("c", t(5), t(9)),
            Some((Duration::from_secs(6), INITIAL))
        );
        assert_eq!(b.remaining("c", t(5), t(15)), None);
    }

    #[test]
    fn ten_minutes_of_running_resets_the_delay() {
        let mut b = Backoffs::default();
        for i in 0..5 {
            b.next("c", t(i));
        }
        assert_eq!(b.remaining("c", t(700), t(700)), None);
        b.next("c", t(700));
        assert_eq!(b.remaining("c", t(702), t(702)).unwrap().1, INITIAL);
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
