//! Controllers: clients of the API server (kube-rs over HTTPS, exactly like upstream components)
//! that drive actual state toward desired state.
//!
//! # Layout
//! One module per controller, each split into a pure `plan` (decide from a snapshot), an
//! `effects` trait (the narrow set of API calls it makes, with a real implementation over
//! `kube::Client` and a stateful fake in tests) and an `execute`/run loop.
//! - [`endpoints`]: the Endpoints and EndpointSlice controllers.
//! - [`gc`]: the garbage collector for `ownerReferences` (background, foreground, orphan).
//! - [`namespace`]: empties and finalizes namespaces being deleted.
//! - [`nodeipam`]: a pod range (`/24` of `10.42.0.0/16`) per Node in `spec.podCIDR`.
//! - [`statefulset`]: the StatefulSet controller.
//! - [`volume`]: the persistent volume binder, the local-path provisioner and the in-use
//!   protection of claims and volumes.
//! - [`queue`]: the work queue with per-key backoff they all share.
//! - [`workers`]: the syncs a run loop has in flight, at most one per key.
//! - [`watch`]: the cluster-wide watch a run loop merges its inputs from.

pub mod endpoints;
pub mod gc;
pub mod namespace;
pub mod nodeipam;
pub mod queue;
pub mod statefulset;
pub mod volume;
pub mod watch;
pub mod workers;
