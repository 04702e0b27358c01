//! The stead node agent: the component that runs the pods bound to its node and reports their
//! status, a client of the API server over HTTPS like every other stead component.
//!
//! # Layout
//!
//! - [`fake`]: the fake runtime (`stead server --runtime fake`), kwok-like. It registers a Node,
//!   keeps its Lease, binds unscheduled pods to itself, marks them Running and Ready at once and
//!   confirms their deletion. Nothing runs. Start at [`fake::run_fake_node`].
//!
//! - [`reclaim`]: the node side of the local-path provisioner: removes the directories of this
//!   node's Released `Delete` volumes, then the volumes ([`reclaim::run_reclaimer`]).
//!
//! - [`runtime`]: the contracts between the pod logic and the machinery under it — the image
//!   store ([`runtime::Images`]) and pod sandboxes / container processes ([`runtime::Runtime`]).
//!
//! The real runtime (sandboxes, images, volumes, probes, logs, exec) lands here with the node
//! agent issue, next to `fake`, sharing its pod decisions where they agree.

pub mod fake;
pub mod reclaim;
pub mod runtime;

pub use fake::{default_node_name, run_fake_node};
