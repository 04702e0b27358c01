//! Summaries of latency samples (nearest-rank percentiles) and their formatting.

use std::time::Duration;

/// Percentiles of a set of samples plus the wall time they took.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Wall-clock time of the whole run (for throughput); zero when not meaningful.
    pub wall: Duration,
}

impl Summary {
    /// Summarises `samples` (any order). Panics on an empty set: every caller measures at least once.
    pub fn of(samples: &[Duration], wall: Duration) -> Self {
        assert!(!samples.is_empty(), "no samples");
        let mut s = samples.to_vec();
        s.sort_unstable();
        Self {
            count: s.len(),
            min: s[0],
            p50: percentile(&s, 50.0),
            p99: percentile(&s, 99.0),
            max: s[s.len() - 1],
            wall,
        }
    }

    /// Requests per second over the wall time.
    pub fn rate(&self) -> f64 {
        if self.wall.is_zero() {
            return 0.0;
        }
        self.count as f64 / self.wall.as_secs_f64()
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with a precision that suits the size (0.083 ms, 12.4 ms, 1520 ms).
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
