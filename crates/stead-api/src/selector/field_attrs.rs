//! Which fields each served kind can be selected on, and their values: upstream's field-label
//! conversion functions (`pkg/apis/*/v1/conversion.go`) and `GetAttrs`/`ToSelectableFields`
//! (`pkg/registry/*/strategy.go`), as of Kubernetes 1.33.

use serde_json::Value;

use super::label::go_quote;
use crate::resource::ResourceType;

const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
    // Old v1 clients' name for spec.nodeName.
    "spec.host",
];
const NODE_FIELDS: &[&str] = &["metadata.name", "spec.unschedulable"];
const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];
const EVENTS_V1_FIELDS: &[&str] = &[
    "reason",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];
const NAMESPACE_FIELDS: &[&str] = &["status.phase", "metadata.name"];
const SECRET_FIELDS: &[&str] = &["type", "metadata.namespace", "metadata.name"];
const SERVICE_FIELDS: &[&str] = &[
    "metadata.namespace",
    "metadata.name",
    "spec.clusterIP",
    "spec.type",
];

/// The kinds with their own conversion function: (group, kind) → accepted labels.
fn conversion_fields(rt: &ResourceType) -> Option<&'static [&'static str]> {
    Some(match (rt.group, rt.kind) {
        ("", "Pod") => POD_FIELDS,
        ("", "Node") => NODE_FIELDS,
        ("", "Event") => CORE_EVENT_FIELDS,
        ("events.k8s.io", "Event") => EVENTS_V1_FIELDS,
        ("", "Namespace") => NAMESPACE_FIELDS,
        ("", "Secret") => SECRET_FIELDS,
        ("", "Service") => SERVICE_FIELDS,
        _ => return None,
    })
}

/// `Ok` when `field` may be selected on `rt`; otherwise upstream's message.
pub(crate) fn check_supported(rt: &ResourceType, field: &str) -> Result<(), String> {
    match conversion_fields(rt) {
        Some(fields) if fields.contains(&field) => Ok(()),
        Some(_) => Err(format!("field label not supported: {field}")),
        None if field == "metadata.name" || field == "metadata.namespace" => Ok(()),
        None => Err(format!(
            "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            go_quote(field)
        )),
    }
}

fn text(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn first_non_empty(a: String, b: String) -> String {
    if a.is_empty() { b } else { a }
}

/// The value of a selectable field of `obj`; fields the kind does not expose read as `""`.
pub(crate) fn field_value(rt: &ResourceType, obj: &Value, field: &str) -> String {
    match field {
        "metadata.name" => return text(obj, "/metadata/name"),
        // Cluster-scoped kinds do not expose metadata.namespace: it reads as "".
        "metadata.namespace" => {
            return if rt.namespaced {
                text(obj, "/metadata/namespace")
            } else {
                String::new()
            };
        }
        _ => {}
    }
    match (rt.group, rt.kind, field) {
        ("", "Pod", "spec.nodeName" | "spec.host") => text(obj, "/spec/nodeName"),
        ("", "Pod", "spec.restartPolicy") => text(obj, "/spec/restartPolicy"),
        ("", "Pod", "spec.schedulerName") => text(obj, "/spec/schedulerName"),
        ("", "Pod", "spec.serviceAccountName") => text(obj, "/spec/serviceAccountName"),
        ("", "Pod", "spec.hostNetwork") => obj
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        ("", "Pod", "status.phase") => text(obj, "/status/phase"),
        ("", "Pod", "status.podIP") => text(obj, "/status/podIPs/0/ip"),
        ("", "Pod", "status.nominatedNodeName") => text(obj, "/status/nominatedNodeName"),
        ("", "Node", "spec.unschedulable") => obj
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        ("", "Event", f) => match f.strip_prefix("involvedObject.") {
            Some(sub) => text(obj, &format!("/involvedObject/{sub}")),
            None => match f {
                "reason" => text(obj, "/reason"),
                "type" => text(obj, "/type"),
                "reportingComponent" => text(obj, "/reportingComponent"),
                "source" => first_non_empty(
                    text(obj, "/source/component"),
                    text(obj, "/reportingComponent"),
                ),
                _ => String::new(),
            },
        },
        ("events.k8s.io", "Event", f) => match f.strip_prefix("regarding.") {
            Some(sub) => text(obj, &format!("/regarding/{sub}")),
            None => match f {
                "reason" => text(obj, "/reason"),
                "type" => text(obj, "/type"),
                "reportingController" => text(obj, "/reportingController"),
                "source" => first_non_empty(
                    text(obj, "/deprecatedSource/component"),
                    text(obj, "/reportingController"),
                ),
                _ => String::new(),
            },
        },
        ("", "Namespace", "status.phase") => text(obj, "/status/phase"),
        ("", "Secret", "type") => text(obj, "/type"),
        ("", "Service", "spec.clusterIP") => text(obj, "/spec/clusterIP"),
        ("", "Service", "spec.type") => text(obj, "/spec/type"),
        _ => String::new(),
    }
}
