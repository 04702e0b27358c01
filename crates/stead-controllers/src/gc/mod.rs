//! The garbage collector: deletes objects whose owners (`metadata.ownerReferences`) are gone, and
//! finishes `Foreground` and `Orphan` deletions (upstream `pkg/controller/garbagecollector`).
//!
//! # Layout
//! - [`graph`]: the dependency graph kept from the watches; its transitions say what to look at.
//! - [`plan`] (pure, start here): what to do about one object — delete it, drop dangling
//!   references, remove the `foregroundDeletion` / `orphan` finalizer, or wait.
//! - [`effects`]: the narrow set of API calls ([`GcEffects`]) and the `kube::Client` version.
//! - [`collector`]: graph + queue + executor (the queue is `crate::queue`).
//! - [`run`]: the watches and the loop; [`run()`] is the entry point.
//!
//! # Semantics (what the API server leaves to this controller)
//! - `Background` delete: the owner goes at once; each dependent whose owners are all gone (or
//!   waiting in the foreground) is deleted with its own propagation (`Background` by default).
//!   A dependent that still has a live owner only loses the dangling reference.
//! - `Foreground` delete: the owner stays with `foregroundDeletion`; its dependents are deleted
//!   (in the foreground themselves when they have dependents); the finalizer is removed once no
//!   dependent with `blockOwnerDeletion: true` remains.
//! - `Orphan` delete: the owner stays with `orphan`; references to it are removed from every
//!   dependent, then the finalizer.

pub mod collector;
pub mod effects;
pub mod graph;
pub mod plan;
pub mod run;

pub use collector::{Collector, GraphEvent, Outcome};
pub use effects::{EffectError, GcEffects, KubeGc, Seen};
pub use graph::{FOREGROUND, Graph, Node, ORPHAN, ObjectKey};
pub use plan::{Action, OwnerLookup, OwnerState, Plan, Propagation, Target};
pub use run::{run, run_with};
