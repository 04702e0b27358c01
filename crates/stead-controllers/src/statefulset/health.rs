//! Pod predicates of spec §3.7, exactly as upstream defines them (1.31–1.33: "healthy" ignores
//! `minReadySeconds`). Time is passed in, never read.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodCondition};

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// `isCreated`: the phase is set (only in-memory placeholders have none).
pub fn is_created(pod: &Pod) -> bool {
    !phase(pod).is_empty()
}

/// `isPending`: phase Pending.
pub fn is_pending(pod: &Pod) -> bool {
    phase(pod) == "Pending"
}

/// `isFailed`: phase Failed.
pub fn is_failed(pod: &Pod) -> bool {
    phase(pod) == "Failed"
}

/// `isSucceeded`: phase Succeeded.
pub fn is_succeeded(pod: &Pod) -> bool {
    phase(pod) == "Succeeded"
}

/// `isTerminating`: a deletion timestamp is set.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// `podutil.IsPodReady`: the Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// `isRunningAndReady`: phase Running and Ready.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && is_ready(pod)
}

/// `isHealthy` (≤ 1.33): running, ready and not terminating. Ignores `minReadySeconds`.
pub fn is_healthy(pod: &Pod) -> bool {
    is_running_and_ready(pod) && !is_terminating(pod)
}

/// How long until the pod becomes available: `Some(ZERO)` when it already is, `Some(d)` when it
/// is Ready but `minReadySeconds` has not yet elapsed since the Ready transition, `None` when it
/// is not Ready (or Ready without a transition time while `minReadySeconds > 0`).
pub fn available_in(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    let ready = ready_condition(pod).filter(|c| c.status == "True")?;
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    let since = ready.last_transition_time.as_ref()?.0;
    let min_ready = jiff::SignedDuration::from_secs(i64::from(min_ready_seconds));
    let available_at = since.checked_add(min_ready).ok()?;
    // Upstream: available iff lastTransitionTime + minReadySeconds is strictly before now.
    if available_at < now {
        Some(Duration::ZERO)
    } else {
        // The pod becomes available just after `remaining` has passed.
        let remaining = Duration::try_from(now.duration_until(available_at)).unwrap_or_default();
        Some(remaining.max(Duration::from_nanos(1)))
    }
}

/// `podutil.IsPodAvailable`: Ready for longer than `minReadySeconds` (phase not checked).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    available_in(pod, min_ready_seconds, now) == Some(Duration::ZERO)
}

/// `isRunningAndAvailable`: running and available.
pub fn is_running_and_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    phase(pod) == "Running" && is_available(pod, min_ready_seconds, now)
}
