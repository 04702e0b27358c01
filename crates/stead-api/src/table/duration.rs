//! Ages: upstream `duration.HumanDuration` and the timestamp helpers the printers use
//! (`translateTimestampSince`).

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

const SECOND: i128 = 1_000_000_000;
const MINUTE: i128 = 60 * SECOND;
const HOUR: i128 = 60 * MINUTE;

/// Upstream `duration.HumanDuration` for a non-negative duration: `"45s"`, `"5m3s"`, `"3h4m"`,
/// `"2d5h"`, `"3y12d"`…
pub fn human_duration(d: std::time::Duration) -> String {
    human_nanos(i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// `HumanDuration` on signed nanoseconds: up to a second in the future reads `"0s"`, further
/// is `"<invalid>"` (clock skew tolerance, as upstream).
pub(crate) fn human_nanos(d: i128) -> String {
    let seconds = d / SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Parse an RFC 3339 timestamp (Time or MicroTime) held as JSON; `None` when absent or null
/// (upstream's zero time).
pub(crate) fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
}

/// Upstream `translateTimestampSince`: `"<unknown>"` for a zero time, else the human age.
pub(crate) fn since(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        None => "<unknown>".to_string(),
        Some(t) => human_nanos(now.as_nanosecond() - t.as_nanosecond()),
    }
}

/// The AGE cell of an object.
pub(crate) fn age(obj: &Value, now: Timestamp) -> String {
    since(timestamp(obj.pointer("/metadata/creationTimestamp")), now)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn h(secs: u64) -> String {
        human_duration(Duration::from_secs(secs))
    }

    #[test]
    fn human_duration_matches_upstream_boundaries() {
        // Ref: apimachinery util/duration TestHumanDuration
        assert_eq!(h(0), "0s");
        assert_eq!(h(119), "119s");
        assert_eq!(h(120), "2m");
        assert_eq!(h(121), "2m1s");
        assert_eq!(h(9 * 60 + 59), "9m59s");
        assert_eq!(h(10 * 60), "10m");
        assert_eq!(h(179 * 60 + 59), "179m");
        assert_eq!(h(3 * 3600), "3h");
        assert_eq!(h(3 * 3600 + 60), "3h1m");
        assert_eq!(h(8 * 3600 - 1), "7h59m");
        assert_eq!(h(8 * 3600), "8h");
        assert_eq!(h(47 * 3600 + 3599), "47h");
        assert_eq!(h(48 * 3600), "2d");
        assert_eq!(h(48 * 3600 + 3600), "2d1h");
        assert_eq!(h(8 * 86400 - 1), "7d23h");
        assert_eq!(h(8 * 86400), "8d");
        assert_eq!(h(2 * 365 * 86400 - 1), "729d");
        assert_eq!(h(2 * 365 * 86400), "2y");
        assert_eq!(h(2 * 365 * 86400 + 86400), "2y1d");
        assert_eq!(h(8 * 365 * 86400), "8y");
    }

    #[test]
    fn future_timestamps_are_zero_or_invalid() {
        assert_eq!(human_nanos(-SECOND / 2), "0s");
        assert_eq!(human_nanos(-SECOND - SECOND / 2), "0s");
        assert_eq!(human_nanos(-2 * SECOND), "<invalid>");
    }
}
