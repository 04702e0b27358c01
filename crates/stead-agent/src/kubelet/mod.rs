//! The kubelet: runs the pods bound to its node through a [`Runtime`](crate::runtime::Runtime)
//! and an [`Images`](crate::runtime::Images) store, and reports their status. Start at
//! [`run_node`] (`run.rs`).
//!
//! Decisions are pure and tested on their own; the IO is in `run.rs` (registration, the pod
//! watch, one worker per pod), `worker.rs` (one pass over one pod: probes, actions, status
//! hand-off), `events.rs` and the apply half of `volumes.rs`.
//!
//! - `actions.rs`: [`compute_pod_actions`]: sandbox, init containers in order, restarts under
//!   the restart policy with crash-loop back-off (`backoff.rs`), liveness kills, deletion
//!   (stop, remove sandbox, confirm).
//! - `status.rs`: [`pod_status`]: phase, conditions, container statuses with upstream reasons.
//! - `probes.rs`: the prober state machine (startup gating, thresholds) and one probe's IO.
//! - `env.rs`: env (`valueFrom`, `envFrom`, `$(VAR)`), argv, user, working dir, limits.
//! - `volumes.rs`: emptyDir, configMap, secret, downwardAPI, projected, hostPath, PVC.
//! - `dns.rs`: `/etc/hosts` and `/etc/resolv.conf`.
//! - `images.rs`: pull policy and pull-secret credentials.
//! - `config.rs`: [`log_path`], where each container attempt's CRI log goes (read back for
//!   `kubectl logs` by [`crate::nodeapi::logs`]).
//! - `view.rs`: the inputs: runtime view, probe results, the kubelet's memory of a pod.
//! - `testing.rs`: stateful fakes of the runtime and image store, for tests.

pub mod actions;
pub mod backoff;
pub mod config;
pub mod dns;
pub mod env;
mod events;
pub mod images;
pub mod probes;
mod run;
pub mod status;
pub mod testing;
pub mod view;
pub mod volumes;
mod worker;

pub use actions::{PodActions, compute_pod_actions};
pub use config::{NodeConfig, log_path};
pub use run::{run_node, wait_for_pod_cidr};
pub use status::pod_status;
