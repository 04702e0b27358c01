//! What the volume controller decides, purely: [`plan_claim`] (upstream `syncClaim` +
//! `pvcprotection`) and [`plan_volume`] (upstream `syncVolume` + `pvprotection`) turn one object
//! and a [`Snapshot`] of the caches into [`Action`]s, in the order they must be carried out. The
//! executor stops at the first failure and requeues the key; every action is idempotent, so the
//! next round recomputes from the newer caches.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};

use super::matching::{
    annotation, best_match, bound_to_claim, claim_class, claim_key, default_class, phase,
    unsatisfied,
};
use super::{
    BIND_COMPLETED, BOUND_BY_CONTROLLER, LOCAL_PATH_PROVISIONER, PROVISIONED_BY, PV_PROTECTION,
    PVC_PROTECTION, SELECTED_NODE, STORAGE_PROVISIONER, STORAGE_PROVISIONER_BETA, provisioner,
};

/// The caches a plan reads. Claims and pods are keyed `namespace/name`, the rest by name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub claims: BTreeMap<String, Arc<PersistentVolumeClaim>>,
    pub volumes: BTreeMap<String, Arc<PersistentVolume>>,
    pub classes: BTreeMap<String, Arc<StorageClass>>,
    pub nodes: BTreeMap<String, Arc<Node>>,
    pub pods: BTreeMap<String, Arc<Pod>>,
}

/// The object an action writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Claim { namespace: String, name: String },
    Volume { name: String },
}

impl Target {
    pub fn claim(claim: &PersistentVolumeClaim) -> Target {
        Target::Claim {
            namespace: claim.metadata.namespace.clone().unwrap_or_default(),
            name: claim.metadata.name.clone().unwrap_or_default(),
        }
    }

    pub fn volume(pv: &PersistentVolume) -> Target {
        Target::Volume {
            name: pv.metadata.name.clone().unwrap_or_default(),
        }
    }
}

/// Who reports an event: the binder (`persistentvolume-controller`) or the provisioner
/// ([`LOCAL_PATH_PROVISIONER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventSource {
    Controller,
    Provisioner,
}

/// One event, in upstream's reasons and words.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VolumeEvent {
    pub target: Target,
    pub uid: String,
    pub source: EventSource,
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// JSON merge patch of metadata/spec at resourceVersion `rv` (a stale cache answers 409).
    Patch {
        target: Target,
        rv: String,
        patch: Value,
    },
    /// JSON merge patch of the `status` subresource with `{"status": status}`.
    Status {
        target: Target,
        status: Value,
    },
    /// Create a provisioned volume.
    Create(Box<PersistentVolume>),
    Event(VolumeEvent),
}

fn rv(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.resource_version.clone().unwrap_or_default()
}

fn claim_event(
    claim: &PersistentVolumeClaim,
    source: EventSource,
    warning: bool,
    reason: &'static str,
    message: impl Into<String>,
) -> Action {
    Action::Event(VolumeEvent {
        target: Target::claim(claim),
        uid: claim.metadata.uid.clone().unwrap_or_default(),
        source,
        warning,
        reason,
        message: message.into(),
    })
}

fn volume_event(pv: &PersistentVolume, reason: &'static str, message: String) -> Action {
    Action::Event(VolumeEvent {
        target: Target::volume(pv),
        uid: pv.metadata.uid.clone().unwrap_or_default(),
        source: EventSource::Controller,
        warning: true,
        reason,
        message,
    })
}

/// The finalizer list with `name` added or removed, when that changes it.
fn finalizers_with(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    name: &str,
    present: bool,
) -> Option<Vec<String>> {
    let current = meta.finalizers.clone().unwrap_or_default();
    let has = current.iter().any(|f| f == name);
    match (has, present) {
        (false, true) => Some(current.into_iter().chain([name.to_string()]).collect()),
        (true, false) => Some(current.into_iter().filter(|f| f != name).collect()),
        _ => None,
    }
}

/// True when a scheduled pod in the claim's namespace mounts it (upstream `podUsesPVC`).
pub fn claim_in_use(claim: &PersistentVolumeClaim, pods: &BTreeMap<String, Arc<Pod>>) -> bool {
    let ns = claim.metadata.namespace.as_deref().unwrap_or_default();
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let prefix = format!("{ns}/");
    pods.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .any(|(_, pod)| {
            let Some(spec) = pod.spec.as_ref() else {
                return false;
            };
            if spec.node_name.as_deref().unwrap_or_default().is_empty() {
                return false;
            }
            let shut_down = matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            );
            let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
            spec.volumes.iter().flatten().any(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == name)
                    || (!shut_down
                        && v.ephemeral.is_some()
                        && format!("{pod_name}-{}", v.name) == name)
            })
        })
}

/// The claim's status as it should read, or `None` when it already does.
fn claim_status(
    claim: &PersistentVolumeClaim,
    phase: &str,
    volume: Option<&PersistentVolume>,
) -> Option<Action> {
    let current = serde_json::to_value(claim.status.clone().unwrap_or_default())
        .unwrap_or_else(|_| json!({}));
    let mut wanted = current.clone();
    wanted["phase"] = json!(phase);
    if let Some(spec) = volume.and_then(|v| v.spec.as_ref()) {
        wanted["accessModes"] = json!(spec.access_modes.clone().unwrap_or_default());
        wanted["capacity"] = json!(spec.capacity.clone().unwrap_or_default());
    }
    (wanted != current).then(|| Action::Status {
        target: Target::claim(claim),
        status: wanted,
    })
}

fn volume_phase(pv: &PersistentVolume, wanted: &str, message: Option<String>) -> Option<Action> {
    let current_message = pv.status.as_ref().and_then(|s| s.message.clone());
    if phase(pv) == wanted && (message.is_none() || message == current_message) {
        return None;
    }
    Some(Action::Status {
        target: Target::volume(pv),
        status: json!({"phase": wanted, "message": message}),
    })
}

/// The writes that bind `pv` and `claim` to each other and mark both Bound (upstream `bind`):
/// the volume's `claimRef` (annotated bound-by-controller unless the user pre-bound it), the
/// volume phase, the claim's `volumeName` with `bind-completed` (and bound-by-controller unless
/// the user asked for this volume), and the claim status with the volume's capacity and modes.
fn bind(pv: &PersistentVolume, claim: &PersistentVolumeClaim, out: &mut Vec<Action>) {
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let ref_complete = claim_ref.is_some_and(|r| {
        r.uid.is_some()
            && r.uid == claim.metadata.uid
            && r.name == claim.metadata.name
            && r.namespace == claim.metadata.namespace
    });
    if !ref_complete {
        let mut patch = json!({"spec": {"claimRef": {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": claim.metadata.namespace,
            "name": claim.metadata.name,
            "uid": claim.metadata.uid,
            "resourceVersion": claim.metadata.resource_version,
        }}});
        if claim_ref.is_none() {
            patch["metadata"] = json!({"annotations": {BOUND_BY_CONTROLLER: "yes"}});
        }
        out.push(Action::Patch {
            target: Target::volume(pv),
            rv: rv(&pv.metadata),
            patch,
        });
    }
    out.extend(volume_phase(pv, "Bound", None));

    let volume_name = pv.metadata.name.as_deref().unwrap_or_default();
    let current = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or_default();
    let mut annotations = serde_json::Map::new();
    if annotation(&claim.metadata, BIND_COMPLETED).is_none() {
        annotations.insert(BIND_COMPLETED.into(), json!("yes"));
    }
    if current.is_empty() && annotation(&claim.metadata, BOUND_BY_CONTROLLER).is_none() {
        annotations.insert(BOUND_BY_CONTROLLER.into(), json!("yes"));
    }
    if current != volume_name || !annotations.is_empty() {
        let mut patch = json!({"spec": {"volumeName": volume_name}});
        if !annotations.is_empty() {
            patch["metadata"] = json!({ "annotations": annotations });
        }
        out.push(Action::Patch {
            target: Target::claim(claim),
            rv: rv(&claim.metadata),
            patch,
        });
    }
    out.extend(claim_status(claim, "Bound", Some(pv)));
}

/// Everything to do for one claim.
pub fn plan_claim(claim: &PersistentVolumeClaim, snap: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    let deleting = claim.metadata.deletion_timestamp.is_some();
    let keep = !deleting || claim_in_use(claim, &snap.pods);
    if let Some(finalizers) = finalizers_with(&claim.metadata, PVC_PROTECTION, keep) {
        out.push(Action::Patch {
            target: Target::claim(claim),
            rv: rv(&claim.metadata),
            patch: json!({"metadata": {"finalizers": finalizers}}),
        });
    }
    if deleting {
        return out;
    }
    if annotation(&claim.metadata, BIND_COMPLETED).is_none() {
        sync_unbound(claim, snap, &mut out);
    } else {
        sync_bound(claim, snap, &mut out);
    }
    out
}

fn lost(claim: &PersistentVolumeClaim, reason: &'static str, message: &str) -> Vec<Action> {
    let mut out = Vec::new();
    if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Lost") {
        out.push(claim_event(
            claim,
            EventSource::Controller,
            true,
            reason,
            message,
        ));
    }
    out.extend(claim_status(claim, "Lost", None));
    out
}

fn sync_bound(claim: &PersistentVolumeClaim, snap: &Snapshot, out: &mut Vec<Action>) {
    let name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or_default();
    if name.is_empty() {
        out.extend(lost(
            claim,
            "ClaimLost",
            "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
        ));
        return;
    }
    let Some(pv) = snap.volumes.get(name) else {
        out.extend(lost(
            claim,
            "ClaimLost",
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
        ));
        return;
    };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    match claim_ref {
        None => bind(pv, claim, out),
        Some(r) if r.uid.is_some() && r.uid == claim.metadata.uid => bind(pv, claim, out),
        Some(_) => out.extend(lost(
            claim,
            "ClaimMisbound",
            "Two claims are bound to the same volume, this one is bound incorrectly",
        )),
    }
}

fn sync_unbound(claim: &PersistentVolumeClaim, snap: &Snapshot, out: &mut Vec<Action>) {
    let spec = claim.spec.clone().unwrap_or_default();
    let volume_name = spec.volume_name.as_deref().unwrap_or_default();
    // Retroactive default class: a claim created before any default existed gets it now.
    if volume_name.is_empty()
        && spec.storage_class_name.is_none()
        && annotation(&claim.metadata, super::BETA_CLAIM_CLASS).is_none()
        && let Some(default) = default_class(&snap.classes)
    {
        out.push(Action::Patch {
            target: Target::claim(claim),
            rv: rv(&claim.metadata),
            patch: json!({"spec": {"storageClassName": default}}),
        });
        return;
    }
    if !volume_name.is_empty() {
        sync_prebound(claim, volume_name, snap, out);
        return;
    }
    let class_name = claim_class(claim);
    let class = snap.classes.get(class_name);
    let selected = annotation(&claim.metadata, SELECTED_NODE);
    let wait_for_consumer =
        class.is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
    let delay = wait_for_consumer && selected.is_none();
    let node = selected.map(|n| (n, snap.nodes.get(n).map(|n| &**n)));
    if let Some(pv) = best_match(claim, &snap.volumes, node, delay) {
        bind(pv, claim, out);
        return;
    }
    if delay {
        out.push(claim_event(
            claim,
            EventSource::Controller,
            false,
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding",
        ));
    } else if !class_name.is_empty() {
        provision(claim, class_name, class, snap, out);
    } else {
        out.push(claim_event(
            claim,
            EventSource::Controller,
            false,
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set",
        ));
    }
    out.extend(claim_status(claim, "Pending", None));
}

/// A claim that names its volume (`spec.volumeName`) but is not bound yet.
fn sync_prebound(
    claim: &PersistentVolumeClaim,
    volume_name: &str,
    snap: &Snapshot,
    out: &mut Vec<Action>,
) {
    let Some(pv) = snap.volumes.get(volume_name) else {
        // The user asked for a volume that does not exist (yet): wait.
        out.extend(claim_status(claim, "Pending", None));
        return;
    };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if claim_ref.is_none() {
        if let Some(why) = unsatisfied(pv, claim) {
            out.push(claim_event(
                claim,
                EventSource::Controller,
                true,
                "VolumeMismatch",
                format!("Cannot bind to requested volume \"{volume_name}\": {why}"),
            ));
            out.extend(claim_status(claim, "Pending", None));
            return;
        }
        bind(pv, claim, out);
    } else if bound_to_claim(pv, claim) {
        bind(pv, claim, out);
    } else {
        out.push(claim_event(
            claim,
            EventSource::Controller,
            true,
            "FailedBinding",
            format!("volume \"{volume_name}\" already bound to a different claim."),
        ));
        out.extend(claim_status(claim, "Pending", None));
    }
}

/// A claim of class `class_name` with no volume to bind: announce the provisioner (upstream
/// `provisionClaim` for external provisioners) and, when it is ours, provision.
fn provision(
    claim: &PersistentVolumeClaim,
    class_name: &str,
    class: Option<&Arc<StorageClass>>,
    snap: &Snapshot,
    out: &mut Vec<Action>,
) {
    let Some(class) = class else {
        out.push(claim_event(
            claim,
            EventSource::Controller,
            true,
            "ProvisioningFailed",
            format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
        ));
        return;
    };
    let name = &class.provisioner;
    if annotation(&claim.metadata, STORAGE_PROVISIONER) != Some(name)
        || annotation(&claim.metadata, STORAGE_PROVISIONER_BETA) != Some(name)
    {
        out.push(Action::Patch {
            target: Target::claim(claim),
            rv: rv(&claim.metadata),
            patch: json!({"metadata": {"annotations": {
                STORAGE_PROVISIONER_BETA: name,
                STORAGE_PROVISIONER: name,
            }}}),
        });
    }
    out.push(claim_event(
        claim,
        EventSource::Controller,
        false,
        "ExternalProvisioning",
        format!(
            "Waiting for a volume to be created either by the external provisioner '{name}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        ),
    ));
    if name != LOCAL_PATH_PROVISIONER {
        return;
    }
    let pv_name = provisioner::volume_name(claim);
    if snap.volumes.contains_key(&pv_name) {
        // Made already; the next round binds it (or it is bound elsewhere and stays so).
        return;
    }
    match provisioner::provision(claim, class, snap) {
        Ok(pv) => {
            out.push(claim_event(
                claim,
                EventSource::Provisioner,
                false,
                "Provisioning",
                format!(
                    "External provisioner is provisioning volume for claim \"{}\"",
                    claim_key(claim)
                ),
            ));
            out.push(Action::Create(Box::new(pv)));
            out.push(claim_event(
                claim,
                EventSource::Provisioner,
                false,
                "ProvisioningSucceeded",
                format!("Successfully provisioned volume {pv_name}"),
            ));
        }
        Err(why) => out.push(claim_event(
            claim,
            EventSource::Provisioner,
            true,
            "ProvisioningFailed",
            format!("failed to provision volume with StorageClass \"{class_name}\": {why}"),
        )),
    }
}

/// Everything to do for one volume.
pub fn plan_volume(pv: &PersistentVolume, snap: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    let deleting = pv.metadata.deletion_timestamp.is_some();
    let keep = !deleting || phase(pv) == "Bound";
    if let Some(finalizers) = finalizers_with(&pv.metadata, PV_PROTECTION, keep) {
        out.push(Action::Patch {
            target: Target::volume(pv),
            rv: rv(&pv.metadata),
            patch: json!({"metadata": {"finalizers": finalizers}}),
        });
    }
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let Some(r) = claim_ref else {
        out.extend(volume_phase(pv, "Available", None));
        return out;
    };
    let Some(uid) = r.uid.as_deref().filter(|u| !u.is_empty()) else {
        // Pre-bound by the user to a claim that has not been bound yet.
        out.extend(volume_phase(pv, "Available", None));
        return out;
    };
    let key = format!(
        "{}/{}",
        r.namespace.as_deref().unwrap_or_default(),
        r.name.as_deref().unwrap_or_default()
    );
    let claim = snap
        .claims
        .get(&key)
        .filter(|c| c.metadata.uid.as_deref() == Some(uid));
    let Some(claim) = claim else {
        release(pv, &mut out);
        return out;
    };
    let claimed = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or_default();
    let name = pv.metadata.name.as_deref().unwrap_or_default();
    if claimed.is_empty() {
        // Binding is not finished; the claim's round finishes it.
    } else if claimed == name {
        out.extend(volume_phase(pv, "Bound", None));
    } else if annotation(&pv.metadata, PROVISIONED_BY).is_some() && reclaim_policy(pv) == "Delete" {
        // Provisioned for a claim that got bound elsewhere: not needed.
        release(pv, &mut out);
    } else {
        // Bound to a claim bound elsewhere: unbind (keep the user's pre-binding by name).
        let claim_ref = if annotation(&pv.metadata, BOUND_BY_CONTROLLER).is_some() {
            json!(null)
        } else {
            json!({"uid": null, "resourceVersion": null})
        };
        out.push(Action::Patch {
            target: Target::volume(pv),
            rv: rv(&pv.metadata),
            patch: json!({"metadata": {"annotations": {BOUND_BY_CONTROLLER: null}},
                          "spec": {"claimRef": claim_ref}}),
        });
        out.extend(volume_phase(pv, "Available", None));
    }
    out
}

fn reclaim_policy(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain")
}

/// The claim is gone: Released, then the reclaim policy (upstream `reclaimVolume`).
fn release(pv: &PersistentVolume, out: &mut Vec<Action>) {
    let current = phase(pv);
    if current == "Failed" {
        return;
    }
    if current != "Released" {
        out.extend(volume_phase(pv, "Released", None));
    }
    match reclaim_policy(pv) {
        "Retain" => {}
        // Provisioned volumes are deleted by their provisioner: ours by the node agent.
        "Delete" if annotation(&pv.metadata, PROVISIONED_BY).is_some() => {}
        "Delete" => {
            let message = format!(
                "error getting deleter volume plugin for volume \"{}\": no deletable volume plugin matched",
                pv.metadata.name.as_deref().unwrap_or_default()
            );
            out.push(volume_event(pv, "VolumeFailedDelete", message.clone()));
            out.extend(volume_phase(pv, "Failed", Some(message)));
        }
        _ => {
            let message = "No recycler plugin found for the volume!".to_string();
            out.push(volume_event(pv, "VolumeFailedRecycle", message.clone()));
            out.extend(volume_phase(pv, "Failed", Some(message)));
        }
    }
}
