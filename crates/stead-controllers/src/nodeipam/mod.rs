//! Node IPAM: gives every Node a pod range of its own, as upstream kube-controller-manager's
//! range allocator does (`pkg/controller/nodeipam/ipam/range_allocator.go`): the cluster range
//! [`CLUSTER_CIDR`] (`10.42.0.0/16`, k3s' default) is cut into `/`[`NODE_MASK`] blocks; a Node
//! without `spec.podCIDR` gets the lowest free block written to `spec.podCIDR` and
//! `spec.podCIDRs`; a block returns to the pool when its Node is deleted. Agents wait for their
//! range before they hand out pod addresses (`stead_agent::wait_for_pod_cidr`).
//!
//! # Layout
//! - [`plan`] (pure, start here): [`RangeAllocator`] and [`plan::plan`], which decides from the
//!   nodes seen (and the assignments written but not seen back yet) which nodes get which block.
//! - [`run`]: the Node watch, the [`NodeIpamEffects`] trait (one patch) with its
//!   `kube::Client` implementation, and the loop.
//!
//! A range set by someone else is respected: it takes every block it overlaps (so a node that
//! registered with the whole `10.42.0.0/16` — an older stead's node, or the fake node — leaves
//! no block for another node, which then waits, logged; delete that Node and let its agent
//! register again to give it a `/24`). Ranges outside the cluster range take nothing.

pub mod plan;
pub mod run;

pub use plan::{CLUSTER_CIDR, NODE_MASK, NodeView, Plan, RangeAllocator};
pub use run::{KubeNodeIpam, NodeIpamEffects, run, run_with};
