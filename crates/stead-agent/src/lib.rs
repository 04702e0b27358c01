//! The stead node agent: the component that runs the pods bound to its node and reports their
//! status, a client of the API server over HTTPS like every other stead component.
//!
//! # Layout
//!
//! - [`fake`]: the fake runtime (`stead server --runtime fake`), kwok-like. It registers a Node,
//!   keeps its Lease, binds unscheduled pods to itself, marks them Running and Ready at once and
//!   confirms their deletion. Nothing runs. Start at [`fake::run_fake_node`].
//!
//! - [`image`]: the node's OCI image store under `<data-dir>/images/`: import of OCI and
//!   docker-save archives, pulls from registries, layers unpacked as overlay lower dirs.
//!   [`image::ImageStore`] implements [`runtime::Images`].
//!
//! - [`join`]: joining a server from elsewhere (`stead agent`): the join token pins the
//!   server's CA, then a [`kube::Client`] that trusts only it ([`join::connect`]).
//!
//! - [`reclaim`]: the node side of the local-path provisioner: removes the directories of this
//!   node's Released `Delete` volumes, then the volumes ([`reclaim::run_reclaimer`]).
//!
//! - [`peering`]: pod traffic between sandbox nodes on one machine: veth pairs between node
//!   network namespaces and a route per peer's pod range ([`peering::run_peering`]).
//!
//! - [`proxy`]: the service proxy: `ClusterIP:port` → a ready endpoint through nftables NAT
//!   rules in the node network namespace, kept equal to Services and EndpointSlices
//!   ([`proxy::run_proxy`]).
//!
//! - [`runtime`]: the contracts between the pod logic and the machinery under it — the image
//!   store ([`runtime::Images`]) and pod sandboxes / container processes ([`runtime::Runtime`]).
//!
//! - [`nodeapi`]: the node's HTTPS API the API server forwards `pods/log` and `pods/exec` to.
//!
//! - [`log_rotation`]: container logs on disk, rotated by size (`containerLogMaxSize`,
//!   `containerLogMaxFiles`): written by the sandbox's shim, followed by the node API.
//!
//! - [`sandbox`]: the real container runtime (`--runtime sandbox`): pod sandboxes as Linux
//!   namespaces on a node bridge, containers on overlayfs with cgroup limits, supervised by a
//!   shim that writes CRI logs. Start at [`sandbox::SandboxRuntime`].
//!
//! - [`kubelet`]: the real node's pod logic: runs the pods bound to it through a
//!   [`runtime::Runtime`] and [`runtime::Images`], reports their status, probes them, confirms
//!   their deletion. Start at [`kubelet::run_node`].
//!
//! - [`node`]: what both share: host facts, the Node object, registration and Lease heartbeats.

pub mod fake;
pub mod image;
pub mod join;
pub mod kubelet;
pub mod log_rotation;
pub mod node;
pub mod nodeapi;
pub mod peering;
pub mod proxy;
pub mod reclaim;
pub mod runtime;
pub mod sandbox;

pub use fake::run_fake_node;
pub use kubelet::{NodeConfig, run_node, wait_for_pod_cidr};
pub use node::default_node_name;
