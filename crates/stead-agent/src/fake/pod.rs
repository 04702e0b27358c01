//! What the fake node does with one pod ([`decide`]), and the status it writes when it "starts"
//! one ([`running_status`]). Pure: the pod loop in `pods.rs` carries the decisions out.
//!
//! A pod moves through at most three writes of the fake node: the binding (pod unscheduled), the
//! Running status (pod bound here, not yet running) and the deletion confirmation (pod bound here
//! and being deleted). Terminal pods are never revived.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use crate::node::object::{HOST_IP, time};

/// One write the fake node owes a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodAction {
    /// `POST pods/<name>/binding` to this node.
    Bind,
    /// Merge-patch `pods/<name>/status` to Running and Ready ([`running_status`]).
    Start,
    /// `DELETE` with `gracePeriodSeconds: 0` and this uid as precondition: the processes are
    /// gone (there never were any), so the pod may leave the API.
    ConfirmDeletion { uid: String },
}

/// What the node `node` must do with `pod` now, if anything.
pub fn decide(pod: &Pod, node: &str) -> Option<PodAction> {
    let spec = pod.spec.as_ref()?;
    let bound_to = spec.node_name.as_deref().unwrap_or("");
    if pod.metadata.deletion_timestamp.is_some() {
        // Unbound pods are removed by the server itself; others belong to other nodes.
        return (bound_to == node).then(|| PodAction::ConfirmDeletion {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        });
    }
    if bound_to.is_empty() {
        let gated = spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty());
        return (!gated).then_some(PodAction::Bind);
    }
    if bound_to != node {
        return None;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    match phase {
        Some("Running" | "Succeeded" | "Failed") => None,
        _ => Some(PodAction::Start),
    }
}

/// The merge patch of `pods/<name>/status` that makes `pod` Running and Ready at `now` with the
/// address `pod_ip`: conditions, addresses, start time and a running status for every container
/// (init containers completed, sidecars running), with all the fields clients require.
pub fn running_status(pod: &Pod, pod_ip: &str, now: Timestamp) -> Value {
    let t = time(now);
    let status = pod.status.as_ref();
    let start_time = status
        .and_then(|s| s.start_time.as_ref())
        .map(|s| time(s.0))
        .unwrap_or_else(|| t.clone());
    let scheduled_at = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|lt| time(lt.0))
        .unwrap_or_else(|| t.clone());
    let condition = |type_: &str, at: &str| json!({"type": type_, "status": "True", "lastProbeTime": null, "lastTransitionTime": at});
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let spec = pod.spec.as_ref();
    let mut containers: Vec<Value> = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| running_container(c, uid, &t))
        .collect();
    // The kubelet reports container statuses sorted by name.
    containers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let init: Vec<Value> = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            if c.restart_policy.as_deref() == Some("Always") {
                running_container(c, uid, &t)
            } else {
                completed_container(c, uid, &t)
            }
        })
        .collect();
    let mut out = json!({
        "phase": "Running",
        "startTime": start_time,
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "conditions": [
            condition("PodReadyToStartContainers", &t),
            condition("Initialized", &t),
            condition("Ready", &t),
            condition("ContainersReady", &t),
            condition("PodScheduled", &scheduled_at),
        ],
        "containerStatuses": containers,
    });
    if !init.is_empty() {
        out["initContainerStatuses"] = json!(init);
    }
    json!({ "status": out })
}

fn identity(c: &Container, uid: &str) -> Value {
    let image = c.image.as_deref().unwrap_or("");
    json!({
        "name": c.name,
        "image": image,
        "imageID": format!("fake://{image}"),
        "containerID": format!("fake://{uid}-{}", c.name),
        "restartCount": 0,
        "lastState": {},
    })
}

fn running_container(c: &Container, uid: &str, at: &str) -> Value {
    let mut s = identity(c, uid);
    s["ready"] = json!(true);
    s["started"] = json!(true);
    s["state"] = json!({"running": {"startedAt": at}});
    s
}

fn completed_container(c: &Container, uid: &str, at: &str) -> Value {
    let mut s = identity(c, uid);
    s["ready"] = json!(false);
    s["started"] = json!(false);
    s["state"] = json!({"terminated": {
        "exitCode": 0,
        "reason": "Completed",
        "startedAt": at,
        "finishedAt": at,
        "containerID": s["containerID"].clone(),
    }});
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn web(extra_spec: Value, status: Value, deleting: bool) -> Pod {
        let mut spec = json!({"containers": [{"name": "nginx", "image": "nginx:1"}]});
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
            s.extend(extra.clone());
        }
        let mut p = json!({
            "metadata": {"name": "web-0", "namespace": "default", "uid": "u-0"},
            "spec": spec,
            "status": status,
        });
        if deleting {
            p["metadata"]["deletionTimestamp"] = json!("2026-11-22T10:00:00Z");
        }
        pod(p)
    }

    #[test]
    fn an_unscheduled_pod_is_bound_unless_gated() {
        assert_eq!(
            decide(&web(json!({}), json!({}), false), "n1"),
            Some(PodAction::Bind)
        );
        let gated = web(
            json!({"schedulingGates": [{"name": "wait"}]}),
            json!({}),
            false,
        );
        assert_eq!(decide(&gated, "n1"), None);
    }

    #[test]
    fn a_pod_bound_here_starts_once_and_terminal_pods_stay_terminal() {
        let bound = json!({"nodeName": "n1"});
        let pending = web(bound.clone(), json!({"phase": "Pending"}), false);
        assert_eq!(decide(&pending, "n1"), Some(PodAction::Start));
        for phase in ["Running", "Succeeded", "Failed"] {
            let p = web(bound.clone(), json!({"phase": phase}), false);
            assert_eq!(decide(&p, "n1"), None, "{phase}");
        }
    }

    #[test]
    fn pods_of_other_nodes_are_left_alone() {
        let other = web(json!({"nodeName": "n2"}), json!({}), false);
        assert_eq!(decide(&other, "n1"), None);
        let other_deleting = web(json!({"nodeName": "n2"}), json!({}), true);
        assert_eq!(decide(&other_deleting, "n1"), None);
    }

    #[test]
    fn a_deleting_pod_bound_here_is_confirmed_gone_with_its_uid() {
        let p = web(json!({"nodeName": "n1"}), json!({"phase": "Running"}), true);
        assert_eq!(
            decide(&p, "n1"),
            Some(PodAction::ConfirmDeletion { uid: "u-0".into() })
        );
        // An unbound deleting pod is the server's to remove.
        assert_eq!(decide(&web(json!({}), json!({}), true), "n1"), None);
    }

    #[test]
    fn the_running_status_has_addresses_conditions_and_container_statuses() {
        let p = web(
            json!({"nodeName": "n1"}),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True",
                   "lastTransitionTime": "2026-11-22T09:59:59Z"}]}),
            false,
        );
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let patch = running_status(&p, "10.42.0.7", now);
        let t = "2026-11-22T10:00:00Z";
        let cond = |ty: &str, at: &str| json!({"type": ty, "status": "True", "lastProbeTime": null, "lastTransitionTime": at});
        assert_eq!(
            patch,
            json!({"status": {
                "phase": "Running",
                "startTime": t,
                "hostIP": "127.0.0.1",
                "hostIPs": [{"ip": "127.0.0.1"}],
                "podIP": "10.42.0.7",
                "podIPs": [{"ip": "10.42.0.7"}],
                "conditions": [
                    cond("PodReadyToStartContainers", t),
                    cond("Initialized", t),
                    cond("Ready", t),
                    cond("ContainersReady", t),
                    cond("PodScheduled", "2026-11-22T09:59:59Z"),
                ],
                "containerStatuses": [{
                    "name": "nginx",
                    "image": "nginx:1",
                    "imageID": "fake://nginx:1",
                    "containerID": "fake://u-0-nginx",
                    "restartCount": 0,
                    "lastState": {},
                    "ready": true,
                    "started": true,
                    "state": {"running": {"startedAt": t}},
                }],
            }})
        );
    }

    #[test]
    fn containers_are_reported_by_name_and_init_containers_completed() {
        let p = web(
            json!({
                "nodeName": "n1",
                "containers": [{"name": "z", "image": "a"}, {"name": "b", "image": "c"}],
                "initContainers": [
                    {"name": "setup", "image": "i"},
                    {"name": "proxy", "image": "p", "restartPolicy": "Always"},
                ],
            }),
            json!({"startTime": "2026-11-22T09:00:00Z"}),
            false,
        );
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let s = &running_status(&p, "10.42.0.2", now)["status"];
        assert_eq!(s["startTime"], "2026-11-22T09:00:00Z");
        assert_eq!(s["containerStatuses"][0]["name"], "b");
        assert_eq!(s["containerStatuses"][1]["name"], "z");
        let init = &s["initContainerStatuses"];
        assert_eq!(init[0]["state"]["terminated"]["reason"], json!("Completed"));
        assert_eq!(init[0]["state"]["terminated"]["exitCode"], 0);
        assert_eq!(init[0]["ready"], false);
        assert_eq!(
            init[1]["state"]["running"]["startedAt"],
            "2026-11-22T10:00:00Z"
        );
        assert_eq!(init[1]["ready"], true);
    }
}
