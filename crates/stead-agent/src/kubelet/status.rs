//! The pod status the kubelet reports (upstream `generateAPIPodStatus` + `status_manager`):
//! phase, conditions, container statuses, addresses, start time and QoS class. Pure; the
//! worker writes it with a merge patch of the status subresource when it differs from the last
//! one written.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use super::actions::{Waiting, is_sidecar, restart_policy};
use super::view::{PodRuntime, ProbeResults};
use crate::node::object::time;
use crate::runtime::{ContainerState, ContainerStatus};

/// What the status is computed from besides the pod.
pub struct StatusInput<'a> {
    pub runtime: &'a PodRuntime,
    pub probes: &'a ProbeResults,
    /// Containers held back (back-off, failed pull or config), by name.
    pub waiting: &'a BTreeMap<String, Waiting>,
    pub host_ip: &'a str,
    pub now: Timestamp,
}

/// How far one container got, for the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Waiting,
    Running,
    Succeeded,
    Failed,
}

/// The pod's `status` object.
pub fn pod_status(pod: &Pod, input: &StatusInput<'_>) -> Value {
    let spec = pod.spec.clone().unwrap_or_default();
    let previous = pod.status.clone().unwrap_or_default();
    let rt = input.runtime;
    let t = time(input.now);

    let inits = spec.init_containers.clone().unwrap_or_default();
    let mut init_statuses = vec![];
    let mut initialized = true;
    let mut init_failed = false;
    let mut incomplete_inits = vec![];
    for c in &inits {
        let (status, progress) = container_status(c, rt, input, initialized, "PodInitializing");
        let done = if is_sidecar(c) {
            status["started"] == json!(true)
        } else {
            progress == Progress::Succeeded
        };
        if progress == Progress::Failed && !is_sidecar(c) && restart_policy(pod) == "Never" {
            init_failed = true;
        }
        if !done {
            initialized = false;
            incomplete_inits.push(c.name.clone());
        }
        init_statuses.push(status);
    }

    let mut statuses = vec![];
    let mut progress = vec![];
    let mut unready = vec![];
    let waiting_reason = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    for c in &spec.containers {
        let (status, p) = container_status(c, rt, input, initialized, waiting_reason);
        if status["ready"] != json!(true) {
            unready.push(c.name.clone());
        }
        progress.push(p);
        statuses.push(status);
    }
    for (c, s) in inits.iter().zip(&init_statuses) {
        if is_sidecar(c) && s["ready"] != json!(true) {
            unready.push(c.name.clone());
        }
    }
    statuses.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));

    let old_phase = previous.phase.as_deref();
    let phase = if matches!(old_phase, Some("Succeeded" | "Failed")) {
        old_phase.unwrap_or_default().to_string()
    } else if init_failed {
        "Failed".to_string()
    } else if !initialized {
        "Pending".to_string()
    } else {
        phase_of(&progress, restart_policy(pod)).to_string()
    };

    let old_condition = |type_: &str| {
        previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .cloned()
    };
    let condition = |type_: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let since = old_condition(type_)
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time)
            .map_or_else(|| t.clone(), |lt| time(lt.0));
        let mut c = json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
        if !ok {
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            if let Some(m) = message {
                c["message"] = json!(m);
            }
        }
        c
    };
    let sandbox_up = rt.sandbox.as_ref().is_some_and(|s| s.ready);
    let completed = phase == "Succeeded" || phase == "Failed";
    let ready = unready.is_empty() && !completed && initialized;
    let (not_ready_reason, not_ready_message) = if completed {
        ("PodCompleted", None)
    } else {
        (
            "ContainersNotReady",
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let conditions = vec![
        condition("PodReadyToStartContainers", sandbox_up, None, None),
        condition(
            "Initialized",
            initialized,
            Some(if completed && initialized {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            }),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete_inits.join(" ")
            )),
        ),
        condition(
            "Ready",
            ready,
            Some(not_ready_reason),
            not_ready_message.clone(),
        ),
        condition(
            "ContainersReady",
            ready,
            Some(not_ready_reason),
            not_ready_message,
        ),
        condition("PodScheduled", true, None, None),
    ];

    let host_network = spec.host_network == Some(true);
    let pod_ip = rt
        .sandbox
        .as_ref()
        .and_then(|s| s.ip)
        .map(|ip| ip.to_string())
        .or_else(|| host_network.then(|| input.host_ip.to_string()))
        .or_else(|| previous.pod_ip.clone());
    let start_time = previous
        .start_time
        .as_ref()
        .map_or_else(|| t.clone(), |s| time(s.0));
    let mut out = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": input.host_ip,
        "hostIPs": [{"ip": input.host_ip}],
        "startTime": start_time,
        "containerStatuses": statuses,
        "qosClass": qos_class(&spec.containers, &inits),
    });
    if let Some(ip) = pod_ip {
        out["podIP"] = json!(ip);
        out["podIPs"] = json!([{"ip": ip}]);
    }
    if !init_statuses.is_empty() {
        out["initContainerStatuses"] = json!(init_statuses);
    }
    out
}

/// Upstream `getPhase` over the regular containers.
fn phase_of(progress: &[Progress], policy: &str) -> &'static str {
    let count = |p: Progress| progress.iter().filter(|x| **x == p).count();
    let (waiting, running) = (count(Progress::Waiting), count(Progress::Running));
    let (succeeded, failed) = (count(Progress::Succeeded), count(Progress::Failed));
    let stopped = succeeded + failed;
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if policy == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if policy == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

fn terminated(c: &ContainerStatus) -> Option<Value> {
    let ContainerState::Exited {
        started_at,
        finished_at,
        exit_code,
        signal,
        reason,
        message,
    } = &c.state
    else {
        return None;
    };
    let reason = reason.clone().unwrap_or_else(|| {
        if *exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
        .to_string()
    });
    let mut t = json!({
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": started_at.map(time),
        "finishedAt": time(*finished_at),
        "containerID": format!("stead://{}", c.id),
    });
    if let Some(s) = signal {
        t["signal"] = json!(s);
    }
    if let Some(m) = message {
        t["message"] = json!(m);
    }
    Some(t)
}

/// One container's status and how far it got. A container the kubelet holds back counts as
/// stopped when it ran before (a crash loop), as waiting otherwise (upstream `getPhase`).
fn container_status(
    c: &Container,
    rt: &PodRuntime,
    input: &StatusInput<'_>,
    reached: bool,
    waiting_reason: &str,
) -> (Value, Progress) {
    let latest = rt.latest(&c.name);
    let previous = rt.previous(&c.name);
    let mut s = json!({
        "name": c.name,
        "image": c.image.as_deref().unwrap_or(""),
        "imageID": latest.map_or("", |l| l.image_id.as_str()),
        "restartCount": latest.map_or(0, |l| l.attempt),
        "ready": false,
        "started": false,
        "lastState": {},
    });
    if let Some(l) = latest {
        s["containerID"] = json!(format!("stead://{}", l.id));
    }
    let held = input.waiting.get(&c.name);
    let progress = match latest.map(|l| &l.state) {
        Some(ContainerState::Running { started_at }) => {
            let probes = input.probes.get(&latest.expect("latest").id);
            let started = probes.is_none_or(|p| p.started);
            let ready = started && probes.is_none_or(|p| p.ready);
            s["state"] = json!({"running": {"startedAt": time(*started_at)}});
            s["started"] = json!(started);
            s["ready"] = json!(ready);
            if let Some(t) = previous.and_then(terminated) {
                s["lastState"] = json!({"terminated": t});
            }
            Progress::Running
        }
        Some(ContainerState::Exited { exit_code, .. }) => {
            let t = terminated(latest.expect("latest")).unwrap_or_default();
            let progress = if *exit_code == 0 {
                Progress::Succeeded
            } else {
                Progress::Failed
            };
            match held {
                Some(w) => {
                    s["state"] = json!({"waiting": {"reason": w.reason, "message": w.message}});
                    s["lastState"] = json!({"terminated": t});
                }
                None => {
                    s["state"] = json!({"terminated": t});
                    if let Some(p) = previous.and_then(terminated) {
                        s["lastState"] = json!({"terminated": p});
                    }
                }
            }
            progress
        }
        Some(ContainerState::Created) | None => {
            let (reason, message) = match held {
                Some(w) => (w.reason.clone(), Some(w.message.clone())),
                None => {
                    let r = if reached {
                        waiting_reason
                    } else {
                        "PodInitializing"
                    };
                    (r.to_string(), None)
                }
            };
            let mut w = json!({"reason": reason});
            if let Some(m) = message {
                w["message"] = json!(m);
            }
            s["state"] = json!({"waiting": w});
            Progress::Waiting
        }
    };
    (s, progress)
}

/// Upstream `qos.GetPodQOS`.
pub fn qos_class(containers: &[Container], inits: &[Container]) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in containers.iter().chain(inits) {
        let r = c.resources.clone().unwrap_or_default();
        let limits = r.limits.unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        for res in ["cpu", "memory"] {
            let l = limits.get(res);
            let q = requests.get(res).or(l);
            if l.is_some() || q.is_some() {
                any = true;
            }
            if l.is_none() || q.map(|q| &q.0) != l.map(|l| &l.0) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The merge patch that brings the written status `old` to `new`, or `None` when they agree.
/// Never moves a terminal phase back.
pub fn status_patch(old: Option<&Value>, new: &Value) -> Option<Value> {
    if old == Some(new) {
        return None;
    }
    Some(json!({ "status": new }))
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
