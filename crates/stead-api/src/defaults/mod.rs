//! Upstream API defaulting (`pkg/apis/*/v1/defaults.go` and the generated nested defaulters) applied
//! in place to objects held as JSON, plus the create-time fills upstream's registry strategies do.
//!
//! Start at [`apply`]: it dispatches on `(group, kind)`; [`pod`] holds the PodSpec defaults that
//! every template shares (they end up in StatefulSet revision hashes), and one file per kind
//! family holds the rest. Values of the wrong JSON type are left alone.

mod core;
pub mod pod;
mod service;
mod statefulset;
mod storage;

use serde_json::{Map, Value};

/// Feature switches passed in (never globals).
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// KEP-961 `MaxUnavailableStatefulSet`: default `rollingUpdate.maxUnavailable` to 1 and honour it.
    pub max_unavailable_statefulset: bool,
}

impl Default for Features {
    /// The project enables MaxUnavailableStatefulSet.
    fn default() -> Self {
        Self {
            max_unavailable_statefulset: true,
        }
    }
}

/// Applies upstream API defaulting in place to a full object (with `apiVersion`, `kind`,
/// `metadata`, ...). Idempotent: applying twice equals applying once.
pub fn apply(group: &str, kind: &str, obj: &mut Value, features: Features) {
    match (group, kind) {
        ("apps", "StatefulSet") => statefulset::apply(obj, features),
        ("", "Pod") => pod::apply_pod(obj),
        ("", "Service") => service::apply(obj),
        ("", "PersistentVolumeClaim") => storage::apply_claim(obj),
        ("", "PersistentVolume") => storage::apply_volume(obj),
        ("storage.k8s.io", "StorageClass") => storage::apply_class(obj),
        ("", "Namespace") => core::apply_namespace(obj),
        ("", "Secret") => core::apply_secret(obj),
        ("", "Node") => core::apply_node(obj),
        ("", "Endpoints") => core::apply_endpoints(obj),
        ("discovery.k8s.io", "EndpointSlice") => core::apply_endpoint_slice(obj),
        _ => {}
    }
}

/// The fills upstream's registry strategies make on create only (`PrepareForCreate`), beyond the
/// generic ones (status wipe, generation, uid, timestamps) the store does for every kind:
/// - Namespace: `spec.finalizers` = `["kubernetes"]`, `status.phase` = `Active`;
/// - Pod: `status` = `{phase: Pending, qosClass: <computed>}`, `spec.serviceAccountName` =
///   `default` (the ServiceAccount admission default, without the token volume).
///
/// Call after [`apply`] and before validation.
pub fn prepare_for_create(group: &str, kind: &str, obj: &mut Value) {
    match (group, kind) {
        ("", "Namespace") => core::prepare_namespace(obj),
        ("", "Pod") => pod::prepare_pod(obj),
        _ => {}
    }
}

/// Drops fields of disabled features before validation, as upstream strategies do on create
/// (`old = None`) and update: with MaxUnavailableStatefulSet off, `maxUnavailable` is cleared
/// unless the old object already used it (statefulset.md §2.6).
pub fn drop_disabled_fields(
    group: &str,
    kind: &str,
    new: &mut Value,
    old: Option<&Value>,
    features: Features,
) {
    if (group, kind) == ("apps", "StatefulSet") && !features.max_unavailable_statefulset {
        let old_uses = old
            .and_then(|o| o.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable"))
            .is_some_and(|v| !v.is_null());
        if !old_uses
            && let Some(r) = new
                .pointer_mut("/spec/updateStrategy/rollingUpdate")
                .and_then(Value::as_object_mut)
        {
            r.remove("maxUnavailable");
        }
    }
}

/// The object at `key`, created empty when absent or `null`; `None` when it holds another type.
fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let slot = m.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.is_object().then_some(slot)
}

/// Sets `key` to `value` when it is absent, `null` or `""`.
fn set_if_empty(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        let empty = match m.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if empty {
            m.insert(key.to_string(), value);
        }
    }
}

/// Sets `key` to `value` when it is absent or `null` (a Go pointer field).
fn set_if_absent(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut()
        && m.get(key).is_none_or(Value::is_null)
    {
        m.insert(key.to_string(), value);
    }
}

/// Sets `key` to `value` when it is absent, `null` or `0` (a Go int field with a defaulter).
fn set_if_zero(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        let zero = match m.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            _ => false,
        };
        if zero {
            m.insert(key.to_string(), value);
        }
    }
}

/// Runs `f` on every element of the array at `key` (if it is one).
fn each(v: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

#[cfg(test)]
mod tests;
