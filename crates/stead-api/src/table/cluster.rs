//! Namespace, Node and Lease printers.

use std::collections::BTreeSet;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{NodeStatus, NodeSystemInfo};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::doc;
use super::duration::age;
use super::{Column, arr_at, str_at};

pub(crate) fn namespace_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Status", "The status of the namespace"),
        Column::age(),
    ]
}

pub(crate) fn namespace_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(str_at(obj, "/status/phase")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn node_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Status", "The status of the node"),
        Column::new("Roles", "The roles of the node"),
        Column::age(),
        Column::new("Version", doc::<NodeSystemInfo>("kubeletVersion")),
        Column::new("Internal-IP", doc::<NodeStatus>("addresses")).wide(),
        Column::new("External-IP", doc::<NodeStatus>("addresses")).wide(),
        Column::new("OS-Image", doc::<NodeSystemInfo>("osImage")).wide(),
        Column::new("Kernel-Version", doc::<NodeSystemInfo>("kernelVersion")).wide(),
        Column::new(
            "Container-Runtime",
            doc::<NodeSystemInfo>("containerRuntimeVersion"),
        )
        .wide(),
    ]
}

/// STATUS: `Ready` / `NotReady` from the Ready condition (`Unknown` without one), plus
/// `SchedulingDisabled` when cordoned.
fn node_status(node: &Value) -> String {
    let mut status: Vec<&str> = Vec::new();
    if let Some(ready) = arr_at(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready")
    {
        status.push(if str_at(ready, "/status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// ROLES from `node-role.kubernetes.io/<role>` keys and the `kubernetes.io/role` value.
fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    if let Some(labels) = node.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                let v = v.as_str().unwrap_or("");
                if !v.is_empty() {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn node_address(node: &Value, ty: &str) -> String {
    arr_at(node, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == ty)
        .map_or_else(
            || "<none>".to_string(),
            |a| str_at(a, "/address").to_string(),
        )
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "<unknown>".to_string()
    } else {
        s.to_string()
    }
}

pub(crate) fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(node, "/metadata/name")),
        json!(node_status(node)),
        json!(node_roles(node)),
        json!(age(node, now)),
        json!(str_at(node, "/status/nodeInfo/kubeletVersion")),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(or_unknown(str_at(node, "/status/nodeInfo/osImage"))),
        json!(or_unknown(str_at(node, "/status/nodeInfo/kernelVersion"))),
        json!(or_unknown(str_at(
            node,
            "/status/nodeInfo/containerRuntimeVersion"
        ))),
    ]
}

pub(crate) fn lease_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Holder", doc::<LeaseSpec>("holderIdentity")),
        Column::age(),
    ]
}

pub(crate) fn lease_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(str_at(obj, "/spec/holderIdentity")),
        json!(age(obj, now)),
    ]
}
