//! The persistent volume controller (upstream `pkg/controller/volume/persistentvolume`), the
//! in-use protection controllers (`pvcprotection`, `pvprotection`) and stead's local-path
//! provisioner (k3s / rancher `local-path-provisioner` style), in one loop.
//!
//! What it does, per claim and per volume, each decided purely from a snapshot of the caches:
//! - binds claims to volumes: pre-bound ones (`spec.volumeName` / `spec.claimRef`) and otherwise
//!   the smallest Available volume of the claim's class with the access modes, volume mode,
//!   labels (selector) and capacity it asks for; `WaitForFirstConsumer` classes wait until the
//!   scheduler writes `volume.kubernetes.io/selected-node` on the claim;
//! - provisions volumes for claims whose class names [`LOCAL_PATH_PROVISIONER`]: a `hostPath`
//!   volume `pvc-<claim uid>` in a directory under the node's volumes dir (the Node annotation
//!   [`VOLUMES_DIR_ANNOTATION`], default [`DEFAULT_VOLUMES_DIR`]), pinned to that node by node
//!   affinity. The directory itself is made by the node agent when it mounts the volume;
//! - keeps the phases (claims Pending / Bound / Lost, volumes Available / Bound / Released /
//!   Failed) and the binding annotations as upstream writes them, with upstream's events;
//! - releases volumes whose claim is gone. `Retain` keeps them Released. `Delete` volumes of the
//!   local-path provisioner are left to the node agent (`stead_agent::reclaim`), which removes
//!   the directory and then the volume; other provisioners' volumes to those provisioners;
//!   volumes nobody can delete become Failed, as upstream without a deleter plugin;
//! - adds `kubernetes.io/pvc-protection` / `kubernetes.io/pv-protection` and removes them once
//!   the claim is used by no scheduled pod / the volume is not Bound, so a claim deleted under a
//!   running pod stays Terminating until the pod is gone.
//!
//! # Layout
//! - [`matching`] (pure): which volume fits a claim, node affinity, sizes.
//! - [`plan`] (pure, start here): [`plan::plan_claim`] and [`plan::plan_volume`] → [`Action`]s.
//! - [`provisioner`] (pure): the local-path volume for a claim and the node it goes to.
//! - [`effects`]: [`VolumeEffects`] and the `kube::Client` version.
//! - [`run`]: watches, caches, the key queue and the executor.

pub mod effects;
pub mod matching;
pub mod plan;
pub mod provisioner;
pub mod run;

pub use effects::{KubeVolumes, VolumeEffects};
pub use plan::{Action, EventSource, Snapshot, Target, VolumeEvent, plan_claim, plan_volume};
pub use run::{Config, run, run_with};

/// The provisioner name of stead's local-path provisioner (also in
/// `stead_apiserver::bootstrap::LOCAL_PATH_PROVISIONER` and `stead_agent::reclaim`).
pub const LOCAL_PATH_PROVISIONER: &str = "stead.io/local-path";
/// Node annotation naming the directory under which that node's local-path volumes live.
pub const VOLUMES_DIR_ANNOTATION: &str = "stead.io/volumes-dir";
/// The volumes dir of a node that does not say.
pub const DEFAULT_VOLUMES_DIR: &str = "/var/lib/stead/volumes";

/// Claim annotation: the node the scheduler picked for the claim's first consumer.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Claim annotation: binding finished (the claim side was written).
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Claim and volume annotation: the controller, not the user, made the binding.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// Claim annotations: which provisioner is expected to provision the claim.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const STORAGE_PROVISIONER_BETA: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// Volume annotation: the provisioner that made it.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// StorageClass annotation marking the default class (and its beta spelling).
pub const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
pub const IS_DEFAULT_CLASS_BETA: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// The claim class annotation from before `spec.storageClassName`.
pub const BETA_CLAIM_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
/// The event source of the binder (upstream's name).
pub const CONTROLLER_NAME: &str = "persistentvolume-controller";
