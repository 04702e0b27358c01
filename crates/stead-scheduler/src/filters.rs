//! The per-node filters, each a pure function of the pod and one node, named and worded like
//! upstream's plugins (the reasons are the exact strings kube-scheduler reports):
//!
//! | filter | reason | preemption could help |
//! |---|---|---|
//! | [`node_unschedulable`] | `node(s) were unschedulable` | no |
//! | [`node_name`] | `node(s) didn't match the requested node name` | no |
//! | [`taint_toleration`] | `node(s) had untolerated taint {k: v}` | no |
//! | [`node_affinity`] | `node(s) didn't match Pod's node affinity/selector` | no |
//! | [`node_ports`] | `node(s) didn't have free ports for the requested pod ports` | yes |
//! | [`resources_fit`] | `Insufficient cpu`, `Insufficient memory`, `Insufficient ephemeral-storage`, `Too many pods` | yes, unless the pod asks more than the node has at all |
//!
//! Node readiness: upstream's node lifecycle controller taints a node whose Ready condition is
//! False (`node.kubernetes.io/not-ready`) or Unknown (`node.kubernetes.io/unreachable`) with
//! NoSchedule, and the scheduler only sees the taint. stead has no such controller, so
//! [`effective_taints`] adds those taints from the condition itself: the pod that tolerates them
//! still fits, and the message is the one a user of upstream sees.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

use crate::resources::{node_allocatable, pod_requests};
use crate::selector::node_selector_terms_match;
use crate::snapshot::NodeState;

/// Why one filter rejected one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Upstream's reason strings (NodeResourcesFit may give several).
    pub reasons: Vec<String>,
    /// Upstream `UnschedulableAndUnresolvable`: evicting pods would not help.
    pub unresolvable: bool,
}

impl Rejection {
    pub fn unresolvable(reason: impl Into<String>) -> Rejection {
        Rejection {
            reasons: vec![reason.into()],
            unresolvable: true,
        }
    }

    pub fn resolvable(reason: impl Into<String>) -> Rejection {
        Rejection {
            reasons: vec![reason.into()],
            unresolvable: false,
        }
    }
}

pub type FilterResult = Result<(), Rejection>;

pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

/// Whether `toleration` tolerates `taint` (upstream `ToleratesTaint`): an empty effect matches
/// every effect, an empty key with `Exists` matches every taint, `Exists` ignores the value and
/// `Equal` (the default) compares it.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    let exists = toleration.operator.as_deref() == Some("Exists");
    if key.is_empty() {
        return exists;
    }
    if key != taint.key {
        return false;
    }
    exists
        || toleration.value.as_deref().unwrap_or_default()
            == taint.value.as_deref().unwrap_or_default()
}

fn tolerated(pod: &Pod, taint: &Taint) -> bool {
    tolerations(pod).iter().any(|t| tolerates(t, taint))
}

fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// The node's taints plus the NoSchedule taint its Ready condition implies (see the module doc).
pub fn effective_taints(node: &Node) -> Cow<'_, [Taint]> {
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let implied = match ready_status(node) {
        Some("True") => None,
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        _ => Some(TAINT_NOT_READY),
    };
    match implied {
        Some(key) if !taints.iter().any(|t| t.key == key) => {
            let mut all = taints.to_vec();
            all.push(Taint {
                key: key.to_string(),
                effect: "NoSchedule".to_string(),
                ..Taint::default()
            });
            Cow::Owned(all)
        }
        _ => Cow::Borrowed(taints),
    }
}

/// NodeUnschedulable: `spec.unschedulable` (cordon) keeps pods off unless they tolerate
/// `node.kubernetes.io/unschedulable:NoSchedule`.
pub fn node_unschedulable(pod: &Pod, node: &Node) -> FilterResult {
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let taint = Taint {
        key: TAINT_UNSCHEDULABLE.to_string(),
        effect: "NoSchedule".to_string(),
        ..Taint::default()
    };
    if cordoned && !tolerated(pod, &taint) {
        return Err(Rejection::unresolvable(REASON_UNSCHEDULABLE));
    }
    Ok(())
}

/// NodeName: a pod that names its node fits only there.
pub fn node_name(pod: &Pod, node: &Node) -> FilterResult {
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(want) if !want.is_empty() && Some(want) != node.metadata.name.as_deref() => {
            Err(Rejection::unresolvable(REASON_NODE_NAME))
        }
        _ => Ok(()),
    }
}

/// TaintToleration: every NoSchedule and NoExecute taint must be tolerated; the first one that is
/// not is named. PreferNoSchedule taints only lower the score.
pub fn taint_toleration(pod: &Pod, node: &Node) -> FilterResult {
    let taints = effective_taints(node);
    let untolerated = taints
        .iter()
        .find(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerated(pod, t));
    match untolerated {
        Some(t) => Err(Rejection::unresolvable(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// PreferNoSchedule taints of the node the pod does not tolerate (for scoring).
pub fn untolerated_prefer_no_schedule(pod: &Pod, node: &Node) -> usize {
    effective_taints(node)
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !tolerated(pod, t))
        .count()
}

/// NodeAffinity: `spec.nodeSelector` labels and the required node affinity terms.
pub fn node_affinity(pod: &Pod, node: &Node) -> FilterResult {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(());
    };
    let labels = node.metadata.labels.as_ref();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok =
        required.is_none_or(|r| node_selector_terms_match(&r.node_selector_terms, node));
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(Rejection::unresolvable(REASON_NODE_AFFINITY))
    }
}

/// NodeResourcesFit: one more pod, and the pod's requests on top of what the node's pods already
/// request, within allocatable. Each short resource is its own reason; a request larger than
/// the whole node is unresolvable (no eviction could make room).
pub fn resources_fit(pod: &Pod, state: &NodeState) -> FilterResult {
    let Some(node) = state.node.as_deref() else {
        return Ok(());
    };
    let (allocatable, max_pods) = node_allocatable(node);
    let mut reasons = Vec::new();
    let mut unresolvable = false;
    let pods_here = i64::try_from(state.pods.len()).unwrap_or(i64::MAX);
    if pods_here.saturating_add(1) > max_pods {
        reasons.push("Too many pods".to_string());
        unresolvable |= max_pods < 1;
    }
    let want = pod_requests(pod);
    let used = state.requested;
    let checks = [
        ("cpu", want.milli_cpu, used.milli_cpu, allocatable.milli_cpu),
        ("memory", want.memory, used.memory, allocatable.memory),
        (
            "ephemeral-storage",
            want.ephemeral_storage,
            used.ephemeral_storage,
            allocatable.ephemeral_storage,
        ),
    ];
    for (name, want, used, have) in checks {
        if want > 0 && want.saturating_add(used) > have {
            reasons.push(format!("Insufficient {name}"));
            unresolvable |= want > have;
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Rejection {
            reasons,
            unresolvable,
        })
    }
}

/// The host ports a pod asks for: (protocol, host IP, port); IP `0.0.0.0` means all.
fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|h| *h > 0)?;
            let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".to_string());
            let ip = p
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| "0.0.0.0".to_string());
            Some((protocol, ip, port))
        })
        .collect()
}

/// NodePorts: a host port (per protocol and address, `0.0.0.0` overlapping every address)
/// may be used by one pod of the node.
pub fn node_ports(pod: &Pod, state: &NodeState) -> FilterResult {
    let wanted = host_ports(pod);
    if wanted.is_empty() {
        return Ok(());
    }
    let conflict = state
        .pods
        .values()
        .flat_map(|p| host_ports(p))
        .any(|(proto, ip, port)| {
            wanted.iter().any(|(wp, wip, wport)| {
                *wp == proto
                    && *wport == port
                    && (ip == *wip || ip == "0.0.0.0" || wip == "0.0.0.0")
            })
        });
    if conflict {
        Err(Rejection::resolvable(REASON_NODE_PORTS))
    } else {
        Ok(())
    }
}
