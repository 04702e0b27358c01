//! PersistentVolumeClaim, PersistentVolume and StorageClass printers.

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec,
    PersistentVolumeStatus,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::doc;
use super::duration::age;
use super::{Column, arr_at, str_at};

const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// Upstream `GetAccessModesAsString`: the short names in the fixed order RWO, ROX, RWX, RWOP.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(long, _)| has(long))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// A quantity as stored (canonical already); a missing one prints as upstream's zero `"0"`.
fn quantity(obj: &Value, pointer: &str) -> String {
    match str_at(obj, pointer) {
        "" => "0".to_string(),
        q => q.to_string(),
    }
}

/// The class: the beta annotation wins over `spec.storageClassName`.
fn class_name(obj: &Value) -> String {
    match obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
        .and_then(Value::as_str)
    {
        Some(class) => class.to_string(),
        None => str_at(obj, "/spec/storageClassName").to_string(),
    }
}

fn unset_or(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer).and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => "<unset>".to_string(),
    }
}

fn phase_or_terminating(obj: &Value) -> String {
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating".to_string()
    } else {
        str_at(obj, "/status/phase").to_string()
    }
}

pub(crate) fn pvc_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Status", doc::<PersistentVolumeClaimStatus>("phase")),
        Column::new("Volume", doc::<PersistentVolumeClaimSpec>("volumeName")),
        Column::new("Capacity", doc::<PersistentVolumeClaimStatus>("capacity")),
        Column::new(
            "Access Modes",
            doc::<PersistentVolumeClaimStatus>("accessModes"),
        ),
        Column::new("StorageClass", "StorageClass of the pvc"),
        Column::new("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        Column::age(),
        Column::new("VolumeMode", doc::<PersistentVolumeClaimSpec>("volumeMode")).wide(),
    ]
}

/// CAPACITY and ACCESS MODES are only shown once the claim names its volume.
pub(crate) fn pvc_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let volume = str_at(obj, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(obj, "/status/capacity/storage"),
            access_modes(arr_at(obj, "/status/accessModes")),
        )
    };
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(phase_or_terminating(obj)),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class_name(obj)),
        json!(unset_or(obj, "/spec/volumeAttributesClassName")),
        json!(age(obj, now)),
        json!(unset_or(obj, "/spec/volumeMode")),
    ]
}

pub(crate) fn pv_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Capacity", doc::<PersistentVolumeSpec>("capacity")),
        Column::new("Access Modes", doc::<PersistentVolumeSpec>("accessModes")),
        Column::new(
            "Reclaim Policy",
            doc::<PersistentVolumeSpec>("persistentVolumeReclaimPolicy"),
        ),
        Column::new("Status", doc::<PersistentVolumeStatus>("phase")),
        Column::new("Claim", doc::<PersistentVolumeSpec>("claimRef")),
        Column::new("StorageClass", "StorageClass of the pv"),
        Column::new("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
        Column::new("Reason", doc::<PersistentVolumeStatus>("reason")),
        Column::age(),
        Column::new("VolumeMode", doc::<PersistentVolumeSpec>("volumeMode")).wide(),
    ]
}

pub(crate) fn pv_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match obj.pointer("/spec/claimRef").filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", str_at(c, "/namespace"), str_at(c, "/name")),
        None => String::new(),
    };
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(quantity(obj, "/spec/capacity/storage")),
        json!(access_modes(arr_at(obj, "/spec/accessModes"))),
        json!(str_at(obj, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase_or_terminating(obj)),
        json!(claim),
        json!(class_name(obj)),
        json!(unset_or(obj, "/spec/volumeAttributesClassName")),
        json!(str_at(obj, "/status/reason")),
        json!(age(obj, now)),
        json!(unset_or(obj, "/spec/volumeMode")),
    ]
}

pub(crate) fn storageclass_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Provisioner", doc::<StorageClass>("provisioner")),
        Column::new("ReclaimPolicy", doc::<StorageClass>("reclaimPolicy")),
        Column::new(
            "VolumeBindingMode",
            doc::<StorageClass>("volumeBindingMode"),
        ),
        Column::new(
            "AllowVolumeExpansion",
            doc::<StorageClass>("allowVolumeExpansion"),
        ),
        Column::age(),
    ]
}

/// Upstream `IsDefaultAnnotation`: the GA or beta is-default-class annotation set to `"true"`.
fn is_default_class(obj: &Value) -> bool {
    let ann = obj.pointer("/metadata/annotations");
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| ann.and_then(|a| a.get(*k)).and_then(Value::as_str) == Some("true"))
}

pub(crate) fn storageclass_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut name = str_at(obj, "/metadata/name").to_string();
    if is_default_class(obj) {
        name.push_str(" (default)");
    }
    let or = |pointer: &str, default: &str| match str_at(obj, pointer) {
        "" => default.to_string(),
        v => v.to_string(),
    };
    vec![
        json!(name),
        json!(str_at(obj, "/provisioner")),
        json!(or("/reclaimPolicy", "Delete")),
        json!(or("/volumeBindingMode", "Immediate")),
        json!(
            obj.get("allowVolumeExpansion")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
        json!(age(obj, now)),
    ]
}
