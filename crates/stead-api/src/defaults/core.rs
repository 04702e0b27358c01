//! Defaulting of the smaller core kinds: Namespace, Secret, Node, Endpoints, EndpointSlice.

use base64::Engine;
use serde_json::{Value, json};

use super::{child, each, set_if_absent, set_if_empty};

/// `SetDefaults_Namespace`: the `kubernetes.io/metadata.name` label; `status.phase: Active`.
pub fn apply_namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty()
        && let Some(labels) = child(obj, "metadata").and_then(|m| child(m, "labels"))
    {
        labels["kubernetes.io/metadata.name"] = json!(name);
    }
    if let Some(status) = child(obj, "status") {
        set_if_empty(status, "phase", json!("Active"));
    }
}

/// Namespace `PrepareForCreate`: the `kubernetes` finalizer.
pub fn prepare_namespace(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        let mut finalizers: Vec<Value> = spec
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !finalizers.iter().any(|f| f == "kubernetes") {
            finalizers.push(json!("kubernetes"));
        }
        spec["finalizers"] = Value::Array(finalizers);
    }
    if let Some(status) = child(obj, "status") {
        set_if_empty(status, "phase", json!("Active"));
    }
}

/// `SetDefaults_Secret` (`type: Opaque`) and the v1 conversion that folds `stringData` into
/// base64 `data` (stringData wins on conflicts) and drops `stringData`.
pub fn apply_secret(obj: &mut Value) {
    set_if_empty(obj, "type", json!("Opaque"));
    let Some(string_data) = obj.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    let Some(string_data) = string_data.as_object().cloned() else {
        return;
    };
    if let Some(data) = child(obj, "data").and_then(Value::as_object_mut) {
        for (k, v) in string_data {
            if let Some(s) = v.as_str() {
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(s)),
                );
            }
        }
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub fn apply_node(obj: &mut Value) {
    let Some(capacity) = obj
        .pointer("/status/capacity")
        .cloned()
        .filter(Value::is_object)
    else {
        return;
    };
    if let Some(status) = child(obj, "status") {
        set_if_absent(status, "allocatable", capacity);
    }
}

/// `SetDefaults_Endpoints`: port protocol `TCP`.
pub fn apply_endpoints(obj: &mut Value) {
    each(obj, "subsets", |s| {
        each(s, "ports", |p| set_if_empty(p, "protocol", json!("TCP")))
    });
}

/// EndpointSlice port defaults: `name: ""`, `protocol: TCP`.
pub fn apply_endpoint_slice(obj: &mut Value) {
    each(obj, "ports", |p| {
        set_if_absent(p, "name", json!(""));
        set_if_empty(p, "protocol", json!("TCP"));
    });
}
