//! The fake runtime: a node that runs nothing (like kwok). It registers a Node with this
//! machine's facts, renews the node's Lease, binds every unscheduled pod to itself, marks the
//! pods bound to it Running and Ready at once, and confirms their deletion. For benchmarks and
//! operator tests; `stead server --runtime fake` runs it next to the controllers.
//!
//! Start at [`run_fake_node`] (`run.rs`). The Node, its Lease and the work queue are shared
//! with the kubelet (`crate::node`). The decisions are pure and tested on their own:
//! - `pod.rs`: what to do with one pod ([`decide`]) and the Running status written for it.
//! - `ips.rs`: fake pod addresses, unique per pod, from 10.42.0.0/16.
//!
//! The IO: `pods.rs` watches pods and
//! carries out the decisions, level-triggered, at most one write in flight per pod.

mod ips;
mod pod;
mod pods;
mod run;

pub use crate::node::{HostFacts, default_node_name};
pub use pod::{PodAction, decide};
pub use run::run_fake_node;
