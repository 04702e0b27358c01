//! stead's scheduler: binds each pending pod (`spec.schedulerName: default-scheduler`, no
//! `spec.nodeName`) to a node, like upstream kube-scheduler, as a client of the API server over
//! HTTPS (kube-rs), exactly as it would run on another machine.
//!
//! # Layout (start at [`schedule()`], then [`run()`])
//! Pure, no IO:
//! - [`snapshot`]: the cluster as the scheduler sees it ([`Snapshot`]): nodes with their bound
//!   and assumed pods and summed requests; claims, volumes, storage classes.
//! - [`resources`]: quantities, a pod's requests (init-container max rule, overhead), allocatable.
//! - [`selector`]: label selectors and node selector terms.
//! - [`filters`]: the per-node filters and their upstream reason strings (cordon, node name,
//!   taints incl. not-ready, node affinity/selector, host ports, resources).
//! - [`interpod`]: required and preferred inter-pod affinity / anti-affinity over topology
//!   domains.
//! - [`volumes`]: volume binding: claims exist, immediate claims bound, bound volumes' node
//!   affinity, WaitForFirstConsumer claims and the `selected-node` annotation.
//! - [`schedule`](mod@schedule): [`schedule()`] (filter, score, pick) and [`Unschedulable`] with
//!   upstream's message.
//!
//! Around it:
//! - [`effects`]: the API calls ([`SchedulerEffects`]): binding, the PodScheduled condition,
//!   the claim annotation, events; [`KubeEffects`] over `kube::Client`.
//! - [`run`](mod@run): watches feeding the snapshot, the queue of pending pods, assume/bind,
//!   waiting for provisioned claims; [`run()`] is the entry point.
//!
//! Not implemented (upstream has them): preemption, PodTopologySpread, volume limits, static PV
//! matching for `kubernetes.io/no-provisioner` classes, `matchLabelKeys` in affinity terms,
//! scheduler profiles and extenders.

pub mod effects;
pub mod filters;
pub mod interpod;
pub mod resources;
pub mod run;
pub mod schedule;
pub mod selector;
pub mod snapshot;
pub mod volumes;

pub use effects::{EffectError, KubeEffects, SchedulerEffects};
pub use run::{Config, run, run_with};
pub use schedule::{Unschedulable, schedule};
pub use snapshot::{NodeName, Snapshot};

/// The scheduler name pods get by default (`spec.schedulerName`) and the events' reporter.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
