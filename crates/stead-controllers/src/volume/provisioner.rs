//! The local-path provisioner, purely: for a claim of a class whose provisioner is
//! [`LOCAL_PATH_PROVISIONER`], the `hostPath` PersistentVolume to create (k3s / rancher
//! `local-path-provisioner` style) and the node it lives on.
//!
//! - name `pvc-<claim uid>`, capacity = the request, the claim's access modes and volume mode,
//!   the class's reclaim policy (default `Delete`) and mount options;
//! - `hostPath` `<volumes dir>/pvc-<uid>_<namespace>_<claim>` with type `DirectoryOrCreate`,
//!   where the volumes dir is the node's [`VOLUMES_DIR_ANNOTATION`] (default
//!   [`DEFAULT_VOLUMES_DIR`]); the node agent creates the directory when it mounts the volume;
//! - `nodeAffinity.required`: `kubernetes.io/hostname In [<node>]`;
//! - `claimRef` to the claim (uid included) and `pv.kubernetes.io/provisioned-by`.
//!
//! The node is the claim's `volume.kubernetes.io/selected-node` (set by the scheduler for
//! `WaitForFirstConsumer` classes) or, for `Immediate` classes, the first Ready node by name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::matching::{annotation, claim_modes, node_ready};
use super::plan::Snapshot;
use super::{
    DEFAULT_VOLUMES_DIR, LOCAL_PATH_PROVISIONER, PROVISIONED_BY, SELECTED_NODE,
    VOLUMES_DIR_ANNOTATION,
};

/// The name of the volume provisioned for `claim`: `pvc-<uid>`.
pub fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or_default())
}

/// The directory local-path volumes of `node` live under.
pub fn volumes_dir(node: Option<&Node>) -> String {
    node.and_then(|n| annotation(&n.metadata, VOLUMES_DIR_ANNOTATION))
        .filter(|d| !d.is_empty())
        .unwrap_or(DEFAULT_VOLUMES_DIR)
        .trim_end_matches('/')
        .to_string()
}

/// The node a claim's volume goes to.
pub fn choose_node(claim: &PersistentVolumeClaim, snap: &Snapshot) -> Result<String, String> {
    if let Some(node) = annotation(&claim.metadata, SELECTED_NODE) {
        return Ok(node.to_string());
    }
    snap.nodes
        .values()
        .find(|n| node_ready(n))
        .and_then(|n| n.metadata.name.clone())
        .ok_or_else(|| "no Ready node to provision the volume on".to_string())
}

/// The volume to create for `claim` of `class`, or why it cannot be made.
pub fn provision(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    snap: &Snapshot,
) -> Result<PersistentVolume, String> {
    let spec = claim.spec.clone().unwrap_or_default();
    if spec.selector.is_some() {
        return Err("claim Selector is not supported".into());
    }
    let mode = spec.volume_mode.as_deref().unwrap_or("Filesystem");
    if mode != "Filesystem" {
        return Err(format!(
            "volumeMode {mode} is not supported, only Filesystem"
        ));
    }
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
        .ok_or_else(|| "claim has no storage request".to_string())?;
    let node = choose_node(claim, snap)?;
    let name = volume_name(claim);
    let ns = claim.metadata.namespace.clone().unwrap_or_default();
    let claim_name = claim.metadata.name.clone().unwrap_or_default();
    let dir = volumes_dir(snap.nodes.get(&node).map(|n| &**n));
    let path = format!("{dir}/{name}_{ns}_{claim_name}");
    let mut modes = claim_modes(claim);
    if modes.is_empty() {
        modes.push("ReadWriteOnce".into());
    }
    Ok(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name),
            annotations: Some(BTreeMap::from([(
                PROVISIONED_BY.to_string(),
                LOCAL_PATH_PROVISIONER.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([(
                "storage".to_string(),
                Quantity(storage.0),
            )])),
            access_modes: Some(modes),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".into()),
            ),
            storage_class_name: class.metadata.name.clone(),
            mount_options: class.mount_options.clone(),
            volume_mode: Some("Filesystem".into()),
            host_path: Some(k8s_openapi::api::core::v1::HostPathVolumeSource {
                path,
                type_: Some("DirectoryOrCreate".into()),
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "kubernetes.io/hostname".into(),
                            operator: "In".into(),
                            values: Some(vec![node]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            claim_ref: Some(ObjectReference {
                kind: Some("PersistentVolumeClaim".into()),
                api_version: Some("v1".into()),
                namespace: Some(ns),
                name: Some(claim_name),
                uid: claim.metadata.uid.clone(),
                resource_version: claim.metadata.resource_version.clone(),
                ..ObjectReference::default()
            }),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    })
}
