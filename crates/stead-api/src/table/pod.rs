//! The pod printer: NAME, READY, STATUS, RESTARTS, AGE; wide IP, NODE, NOMINATED NODE,
//! READINESS GATES. STATUS follows upstream `printPod` step by step: phase or reason,
//! scheduling gates, init containers (`Init:x/y`, `Init:<reason>`), container waiting /
//! terminated reasons, then `Terminating` / `Unknown` for deleted pods.

use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::doc;
use super::duration::{age, since, timestamp};
use super::{Column, arr_at, str_at};

pub(crate) fn columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Ready",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        Column::new(
            "Status",
            "The aggregate status of the containers in this pod.",
        ),
        Column::new(
            "Restarts",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        Column::age(),
        Column::new("IP", doc::<PodStatus>("podIP")).wide(),
        Column::new("Node", doc::<PodSpec>("nodeName")).wide(),
        Column::new("Nominated Node", doc::<PodStatus>("nominatedNodeName")).wide(),
        Column::new("Readiness Gates", doc::<PodSpec>("readinessGates")).wide(),
    ]
}

/// Row conditions upstream attaches to finished pods.
pub(crate) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

fn has_condition(pod: &Value, ty: &str) -> bool {
    arr_at(pod, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == ty)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

fn is_restartable_init(pod: &Value, name: &str) -> bool {
    arr_at(pod, "/spec/initContainers")
        .iter()
        .any(|c| str_at(c, "/name") == name && str_at(c, "/restartPolicy") == "Always")
}

fn restart_count(status: &Value) -> i64 {
    status
        .get("restartCount")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The later of `current` and the container's last termination time.
fn later_restart(current: Option<Timestamp>, status: &Value) -> Option<Timestamp> {
    let finished = timestamp(status.pointer("/lastState/terminated/finishedAt"));
    match (current, finished) {
        (Some(c), Some(f)) if c < f => Some(f),
        (None, Some(f)) => Some(f),
        (c, _) => c,
    }
}

/// `reason` from a terminated state: its reason, else `Signal:N`, else `ExitCode:N`.
fn terminated_reason(term: &Value, prefix: &str) -> String {
    let reason = str_at(term, "/reason");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = term.get("signal").and_then(Value::as_i64).unwrap_or(0);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!(
            "{prefix}ExitCode:{}",
            term.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
        )
    }
}

/// The READY, STATUS and RESTARTS cells.
fn status_cells(pod: &Value, now: Timestamp) -> (String, String, String) {
    let mut total = arr_at(pod, "/spec/containers").len();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let phase = str_at(pod, "/status/phase");
    let mut reason = phase.to_string();
    let status_reason = str_at(pod, "/status/reason");
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    for c in arr_at(pod, "/status/conditions") {
        if str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let init_specs = arr_at(pod, "/spec/initContainers");
    total += init_specs
        .iter()
        .filter(|c| str_at(c, "/restartPolicy") == "Always")
        .count();

    let mut initializing = false;
    for (i, c) in arr_at(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += restart_count(c);
        last_restart = later_restart(last_restart, c);
        let sidecar = is_restartable_init(pod, str_at(c, "/name"));
        if sidecar {
            sidecar_restarts += restart_count(c);
            last_sidecar_restart = later_restart(last_sidecar_restart, c);
        }
        let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
        let waiting_reason = str_at(c, "/state/waiting/reason");
        if terminated.is_some_and(|t| t.get("exitCode").and_then(Value::as_i64).unwrap_or(0) == 0) {
            continue;
        }
        if sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(term) = terminated {
            reason = terminated_reason(term, "Init:");
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || has_condition(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts += restart_count(c);
            last_restart = later_restart(last_restart, c);
            let waiting = str_at(c, "/state/waiting/reason");
            let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(term) = terminated {
                reason = terminated_reason(term, "");
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container reports Completed while another still runs is Running.
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };
    (format!("{ready}/{total}"), reason, restarts_cell)
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

pub(crate) fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let (ready, reason, restarts) = status_cells(pod, now);
    let gates = arr_at(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr_at(pod, "/status/conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                let ty = str_at(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| str_at(c, "/type") == ty)
                    .is_some_and(|c| str_at(c, "/status") == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        json!(str_at(pod, "/metadata/name")),
        json!(ready),
        json!(reason),
        json!(restarts),
        json!(age(pod, now)),
        json!(or_none(str_at(pod, "/status/podIPs/0/ip"))),
        json!(or_none(str_at(pod, "/spec/nodeName"))),
        json!(or_none(str_at(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}
