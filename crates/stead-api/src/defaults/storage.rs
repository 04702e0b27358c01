//! PersistentVolumeClaim, PersistentVolume and StorageClass defaulting.

use serde_json::{Value, json};

use super::{child, set_if_absent, set_if_empty};

/// `SetDefaults_PersistentVolumeClaim` (+ spec): `volumeMode: Filesystem`, `status.phase: Pending`.
pub fn apply_claim(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        set_if_absent(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = child(obj, "status") {
        set_if_empty(status, "phase", json!("Pending"));
    }
}

/// `SetDefaults_PersistentVolume`: reclaim policy `Retain`, `volumeMode: Filesystem`,
/// `status.phase: Pending`.
pub fn apply_volume(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        set_if_empty(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set_if_absent(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = child(obj, "status") {
        set_if_empty(status, "phase", json!("Pending"));
    }
}

/// `SetDefaults_StorageClass`: `reclaimPolicy: Delete`, `volumeBindingMode: Immediate`.
pub fn apply_class(obj: &mut Value) {
    set_if_absent(obj, "reclaimPolicy", json!("Delete"));
    set_if_absent(obj, "volumeBindingMode", json!("Immediate"));
}
