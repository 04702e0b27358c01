//! The namespace controller: empties namespaces that are being deleted and then finalizes them
//! (upstream `pkg/controller/namespace`).
//!
//! A `DELETE` of a namespace only marks it (`deletionTimestamp`, `status.phase: Terminating`)
//! while `spec.finalizers` holds `kubernetes`. This controller deletes the collection of every
//! namespaced resource type in it, lists what is left (pods terminating gracefully, objects with
//! finalizers, foreground owners), reports that in upstream's status conditions
//! (`NamespaceContentRemaining`, `NamespaceFinalizersRemaining`, ...), and once nothing is left
//! clears `kubernetes` through `PUT namespaces/<name>/finalize`, after which the server removes it.
//!
//! # Layout
//! - [`plan`] (pure, start here): [`plan::needs_cleanup`], [`plan::decide`] and the conditions.
//! - [`effects`]: [`NamespaceEffects`] and the `kube::Client` version.
//! - [`controller`]: cache + queue + one deletion round; [`run`]: the watch and the loop.

pub mod controller;
pub mod effects;
pub mod plan;
pub mod run;

pub use controller::{NamespaceController, NamespaceOutcome};
pub use effects::{KubeNamespaces, NamespaceEffects};
pub use plan::{ContentReport, KUBERNETES, NamespacePlan, NamespaceView, Remaining};
pub use run::{run, run_with};
