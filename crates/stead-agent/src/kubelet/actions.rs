//! [`compute_pod_actions`]: what to do with one pod now, from the pod, the runtime's view of it,
//! probe results and the kubelet's memory (upstream `kuberuntime_manager.computePodActions`).
//! Pure; the pod worker carries the actions out, then asks again.
//!
//! The order within one pass: kill what must stop, remove old container attempts, remove a dead
//! sandbox, create the sandbox, start the next init container or the regular containers.
//! Deletion is a sequence of passes: stop every container (preStop hook, SIGTERM, SIGKILL after
//! the grace period), then remove the sandbox, then confirm the deletion to the API server.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::backoff::go_duration;
use super::view::{Memory, PodRuntime, ProbeResults, pull_key, start_key};
use crate::runtime::{ContainerId, ContainerState, ContainerStatus};

/// Why a container is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    LivenessFailed,
    /// The image in the spec changed.
    SpecChanged,
    PodDeleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    pub id: ContainerId,
    pub name: String,
    pub reason: KillReason,
    pub grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub name: String,
    pub init: bool,
    pub attempt: u32,
    /// The finish of the attempt this restarts (the back-off is advanced from it).
    pub restart_of: Option<Timestamp>,
}

/// Why a container is waiting, for its status (`CrashLoopBackOff`, `ImagePullBackOff`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// The actions for one pod (upstream `podActions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodActions {
    pub kill: Vec<Kill>,
    /// Exited attempts no longer needed (older than the previous one).
    pub remove_containers: Vec<ContainerId>,
    /// Remove the sandbox (it died, or the pod is being deleted and its containers are gone).
    pub remove_sandbox: bool,
    pub create_sandbox: bool,
    /// Containers to start, in order: at most one init container, or the regular ones.
    pub start: Vec<Start>,
    /// Containers held back, and why.
    pub waiting: BTreeMap<String, Waiting>,
    /// Delete the pod object with grace 0 and its uid as precondition.
    pub confirm_deletion: bool,
    /// The soonest a back-off ends: when to look again.
    pub recheck_after: Option<Duration>,
}

/// Default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// The pod's restart policy: `Always` (default), `OnFailure`, `Never`.
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The grace period for stopping containers: the deletion's, else the pod's.
pub fn grace_period(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    Duration::from_secs(secs.max(0) as u64)
}

/// `pod_ns(uid)` as upstream messages spell a pod.
pub fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// An init container with `restartPolicy: Always` (a sidecar): runs alongside the others.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Decides what to do with `pod` now.
pub fn compute_pod_actions(
    pod: &Pod,
    runtime: &PodRuntime,
    probes: &ProbeResults,
    memory: &Memory,
    now: Timestamp,
) -> PodActions {
    let mut out = PodActions::default();
    let Some(spec) = pod.spec.as_ref() else {
        return out;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        terminate(pod, runtime, &mut out);
        return out;
    }
    let policy = restart_policy(pod);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        // A terminal pod never runs again; only its processes are stopped.
        for c in running(runtime) {
            out.kill
                .push(kill(c, KillReason::PodDeleted, grace_period(pod)));
        }
        return out;
    }

    let sandbox_ok = runtime.sandbox.as_ref().is_some_and(|s| s.ready);
    let fresh_sandbox = !sandbox_ok;
    if fresh_sandbox {
        let ran_before = !memory.last_attempt.is_empty() || !runtime.containers.is_empty();
        if ran_before && policy == "Never" {
            // Upstream: a pod that must not restart does not get a new sandbox.
            out.remove_sandbox = runtime.sandbox.is_some();
            return out;
        }
        out.remove_sandbox = runtime.sandbox.is_some();
        out.create_sandbox = true;
    }
    // With a new sandbox every container starts over; the old ones went with the old sandbox.
    let empty = PodRuntime::default();
    let view = if fresh_sandbox { &empty } else { runtime };
    let attempt_of = |name: &str| -> u32 {
        let seen = view.latest(name).map(|c| c.attempt + 1);
        let remembered = memory.last_attempt.get(name).map(|a| a + 1);
        seen.max(remembered)
            .max(reported_attempt(pod, name))
            .unwrap_or(0)
    };

    collect_garbage(spec, view, &mut out);

    // Init containers, in order: each must exit 0 before the next starts.
    let inits = spec.init_containers.as_deref().unwrap_or_default();
    for c in inits {
        let sidecar = is_sidecar(c);
        match view.latest(&c.name).map(|s| &s.state) {
            None => {
                consider_start(
                    pod,
                    c,
                    true,
                    None,
                    attempt_of(&c.name),
                    memory,
                    now,
                    &mut out,
                );
                return out;
            }
            Some(ContainerState::Created) => return out,
            Some(ContainerState::Running { .. }) => {
                let status = view.latest(&c.name).expect("latest");
                check_running(pod, c, status, probes, &mut out);
                if !sidecar {
                    return out;
                }
            }
            Some(ContainerState::Exited {
                exit_code,
                finished_at,
                ..
            }) => {
                if *exit_code == 0 && !sidecar {
                    continue;
                }
                let restart = sidecar || policy != "Never";
                if restart {
                    let at = *finished_at;
                    consider_start(
                        pod,
                        c,
                        true,
                        Some(at),
                        attempt_of(&c.name),
                        memory,
                        now,
                        &mut out,
                    );
                }
                if !sidecar {
                    return out;
                }
            }
        }
    }

    for c in &spec.containers {
        match view.latest(&c.name) {
            None => consider_start(
                pod,
                c,
                false,
                None,
                attempt_of(&c.name),
                memory,
                now,
                &mut out,
            ),
            Some(status) => match &status.state {
                ContainerState::Created => {}
                ContainerState::Running { .. } => check_running(pod, c, status, probes, &mut out),
                ContainerState::Exited {
                    exit_code,
                    finished_at,
                    ..
                } => {
                    if should_restart(policy, *exit_code) {
                        let at = *finished_at;
                        consider_start(
                            pod,
                            c,
                            false,
                            Some(at),
                            attempt_of(&c.name),
                            memory,
                            now,
                            &mut out,
                        );
                    }
                }
            },
        }
    }
    out
}

/// The attempt after the one the pod's status reports for `name`, if that container ever
/// existed: a restart count never goes back, even when the runtime lost every trace of it.
fn reported_attempt(pod: &Pod, name: &str) -> Option<u32> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|c| c.name == name && c.container_id.is_some())
        .map(|c| u32::try_from(c.restart_count).unwrap_or(0) + 1)
}

/// Deletion: stop the containers, then remove the sandbox, then confirm.
fn terminate(pod: &Pod, runtime: &PodRuntime, out: &mut PodActions) {
    let alive: Vec<&ContainerStatus> = running(runtime).collect();
    if !alive.is_empty() {
        let grace = grace_period(pod);
        out.kill = alive
            .into_iter()
            .map(|c| kill(c, KillReason::PodDeleted, grace))
            .collect();
    } else if runtime.sandbox.is_some() {
        out.remove_sandbox = true;
    } else {
        out.confirm_deletion = true;
    }
}

fn running(runtime: &PodRuntime) -> impl Iterator<Item = &ContainerStatus> {
    runtime.containers.iter().filter(|c| {
        matches!(
            c.state,
            ContainerState::Running { .. } | ContainerState::Created
        )
    })
}

fn kill(c: &ContainerStatus, reason: KillReason, grace: Duration) -> Kill {
    Kill {
        id: c.id.clone(),
        name: c.name.clone(),
        reason,
        grace,
    }
}

/// A running container is stopped when its image changed or its liveness probe failed.
fn check_running(
    pod: &Pod,
    c: &Container,
    status: &ContainerStatus,
    probes: &ProbeResults,
    out: &mut PodActions,
) {
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .map_or(Duration::from_secs(DEFAULT_GRACE_SECONDS as u64), |s| {
            Duration::from_secs(s.max(0) as u64)
        });
    if c.image.as_deref().unwrap_or("") != status.image_ref {
        out.kill.push(kill(status, KillReason::SpecChanged, grace));
    } else if probes.get(&status.id).is_some_and(|p| p.liveness_failed) {
        out.kill
            .push(kill(status, KillReason::LivenessFailed, grace));
    }
}

/// Starts `c` unless a back-off holds it (crash loop, failed pull, failed config).
#[allow(clippy::too_many_arguments)]
fn consider_start(
    pod: &Pod,
    c: &Container,
    init: bool,
    restart_of: Option<Timestamp>,
    attempt: u32,
    memory: &Memory,
    now: Timestamp,
    out: &mut PodActions,
) {
    let mut hold = |left: Duration, reason: &str, message: String| {
        out.waiting.insert(
            c.name.clone(),
            Waiting {
                reason: reason.to_string(),
                message,
            },
        );
        out.recheck_after = Some(out.recheck_after.map_or(left, |r| r.min(left)));
    };
    if let Some(failure) = memory.failures.get(&c.name) {
        let key = if failure.is_pull() {
            pull_key(&c.name)
        } else {
            start_key(&c.name)
        };
        if let Some((left, _)) = memory.backoff.remaining(&key, failure.at, now) {
            if failure.is_pull() {
                let image = c.image.as_deref().unwrap_or("");
                hold(
                    left,
                    "ImagePullBackOff",
                    format!("Back-off pulling image \"{image}\""),
                );
            } else {
                hold(left, &failure.reason, failure.message.clone());
            }
            return;
        }
    }
    if let Some(finished) = restart_of
        && let Some((left, delay)) = memory.backoff.remaining(&c.name, finished, now)
    {
        let message = format!(
            "back-off {} restarting failed container={} pod={}",
            go_duration(delay),
            c.name,
            pod_ref(pod)
        );
        hold(left, "CrashLoopBackOff", message);
        return;
    }
    out.start.push(Start {
        name: c.name.clone(),
        init,
        attempt,
        restart_of,
    });
}

/// Exited attempts older than the latest two of each container are removed.
fn collect_garbage(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    view: &PodRuntime,
    out: &mut PodActions,
) {
    let names = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| c.name.as_str());
    for name in names {
        let Some(previous) = view.previous(name).map(|c| c.attempt) else {
            continue;
        };
        for c in &view.containers {
            if c.name == name
                && c.attempt < previous
                && matches!(c.state, ContainerState::Exited { .. })
            {
                out.remove_containers.push(c.id.clone());
            }
        }
    }
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "actions_props.rs"]
mod props;
