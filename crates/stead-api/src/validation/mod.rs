//! Per-kind validation with upstream kube-apiserver 1.33 rules and messages.
//!
//! Start at [`validate_create`], [`validate_update`] and [`validate_status_update`]: they dispatch
//! on `(group, kind)` to one file per kind family. [`meta`] holds the `metadata` rules every kind
//! shares and [`names`] the name/key formats with their exact messages. Objects are validated as
//! JSON after defaulting (run [`crate::defaults::apply`] first), so a field of the wrong type reads
//! as absent, as Go's zero value would.
//!
//! Kinds this module does not know get metadata validation only (namespaced-ness is looked up in
//! [`crate::resource::RESOURCES`]).

mod core;
pub mod json;
pub mod meta;
pub mod names;
mod pod;
pub mod quantity;
mod service;
mod statefulset;
mod storage;

use serde_json::Value;

use crate::defaults::Features;
use crate::error::FieldError;

pub use pod::{not_found, validate_pod_spec};

/// Validates an object about to be created (after defaulting and name generation).
pub fn validate_create(
    group: &str,
    kind: &str,
    obj: &Value,
    features: Features,
) -> Vec<FieldError> {
    match (group, kind) {
        ("apps", "StatefulSet") => {
            if features.max_unavailable_statefulset {
                statefulset::validate_create(obj)
            } else {
                statefulset::validate_create(&without_max_unavailable(obj))
            }
        }
        ("apps", "ControllerRevision") => core::validate_controller_revision(obj),
        ("", "Pod") => pod::validate_create(obj),
        ("", "Service") => service::validate_create(obj),
        ("", "PersistentVolumeClaim") => storage::validate_claim_create(obj),
        ("", "PersistentVolume") => storage::validate_volume_create(obj),
        ("storage.k8s.io", "StorageClass") => storage::validate_class_create(obj),
        ("", "ConfigMap") => core::validate_config_map(obj),
        ("", "Secret") => core::validate_secret(obj),
        ("", "Namespace") => core::validate_namespace(obj),
        ("", "Node") => core::validate_node(obj),
        ("", "ServiceAccount") => core::validate_plain(obj),
        ("", "Endpoints") => core::validate_endpoints(obj),
        ("discovery.k8s.io", "EndpointSlice") => core::validate_endpoint_slice(obj),
        ("coordination.k8s.io", "Lease") => core::validate_lease(obj),
        ("", "Event") => core::validate_event(obj, false),
        ("events.k8s.io", "Event") => core::validate_event(obj, true),
        _ => generic_create(group, kind, obj),
    }
}

/// Validates a write to the main resource of an existing object. `new` must carry a
/// `metadata.resourceVersion` (upstream's store fills it in for unconditional updates before
/// validating).
pub fn validate_update(
    group: &str,
    kind: &str,
    new: &Value,
    old: &Value,
    features: Features,
) -> Vec<FieldError> {
    match (group, kind) {
        ("apps", "StatefulSet") => {
            if features.max_unavailable_statefulset || statefulset::uses_max_unavailable(old) {
                statefulset::validate_update(new, old)
            } else {
                statefulset::validate_update(&without_max_unavailable(new), old)
            }
        }
        ("apps", "ControllerRevision") => core::validate_controller_revision_update(new, old),
        ("", "Pod") => pod::validate_update(new, old),
        ("", "Service") => service::validate_update(new, old),
        ("", "PersistentVolumeClaim") => storage::validate_claim_update(new, old),
        ("", "PersistentVolume") => storage::validate_volume_update(new, old),
        ("storage.k8s.io", "StorageClass") => storage::validate_class_update(new, old),
        ("", "ConfigMap") => core::validate_config_map_update(new, old),
        ("", "Secret") => core::validate_secret_update(new, old),
        ("", "Namespace") => core::validate_namespace_update(new, old),
        ("discovery.k8s.io", "EndpointSlice") => core::validate_endpoint_slice_update(new, old),
        _ => {
            let mut errs = meta::meta_update(new, old);
            // The rest re-run their create rules minus the name (which cannot change anyway).
            errs.extend(
                validate_create(group, kind, new, features)
                    .into_iter()
                    .filter(|e| !e.field.starts_with("metadata.")),
            );
            errs
        }
    }
}

/// Validates a write through the `/status` subresource (the caller has already copied the old
/// spec over the new one).
pub fn validate_status_update(
    group: &str,
    kind: &str,
    new: &Value,
    old: &Value,
) -> Vec<FieldError> {
    match (group, kind) {
        ("apps", "StatefulSet") => statefulset::validate_status_update(new, old),
        ("", "Pod") => pod::validate_status_update(new, old),
        ("", "Service") => service::validate_status_update(new, old),
        _ => meta::meta_update(new, old),
    }
}

/// The object-name rule of a kind (upstream `ValidateNameFunc`), for `metadata.name` and names in
/// paths: the messages, empty when valid. `prefix` = the name is a `generateName`.
pub fn validate_name(group: &str, kind: &str, name: &str, prefix: bool) -> Vec<String> {
    match (group, kind) {
        ("apps", "StatefulSet") | ("", "Namespace") => names::name_is_dns_label(name, prefix),
        ("", "Service") => names::name_is_dns1035_label(name, prefix),
        _ => names::name_is_dns_subdomain(name, prefix),
    }
}

/// The `VolumeSource` field names (exactly one may be set on a volume).
pub fn volume_source_names() -> &'static [&'static str] {
    pod::VOLUME_SOURCES
}

fn generic_create(group: &str, kind: &str, obj: &Value) -> Vec<FieldError> {
    let namespaced = crate::resource::RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
        .is_none_or(|r| r.namespaced);
    let name_fn: meta::NameFn = names::name_is_dns_subdomain;
    meta::validate_object_meta(
        obj.get("metadata").unwrap_or(&Value::Null),
        namespaced,
        name_fn,
        "metadata",
    )
}

/// A copy without `spec.updateStrategy.rollingUpdate.maxUnavailable`: what upstream's strategy
/// leaves when the MaxUnavailableStatefulSet gate is off (statefulset.md §2.6).
fn without_max_unavailable(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(r) = copy
        .pointer_mut("/spec/updateStrategy/rollingUpdate")
        .and_then(Value::as_object_mut)
    {
        r.remove("maxUnavailable");
    }
    copy
}

#[cfg(test)]
mod tests;
