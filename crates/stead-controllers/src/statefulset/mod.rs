//! The StatefulSet controller's pure core: given a snapshot of a set, its pods, claims and
//! revisions, [`plan`] computes the writes one sync issues, the status it writes and where it
//! stopped — upstream 1.33 behaviour (see `/work/shared/spec/statefulset.md`).
//!
//! # Layout (start at [`plan`])
//! - [`plan`](mod@plan): the reconcile algorithm (§4.4–§4.7), one method per phase.
//! - [`action`]: [`Plan`], [`Action`], [`BlockReason`], [`Features`].
//! - [`adopt`]: which pods and revisions a sync manages (adopt/release rules, §7).
//! - [`identity`]: ordinals, names, labels, identity/storage checks, pod construction (§3).
//! - [`claims`]: claim names, construction, retention-policy owner refs (§3.3, §4.9).
//! - [`revision`] and [`go_json`]: revision data, Go-compatible encoding and hashing (§5.1–§5.2).
//! - [`history`]: choosing current/update revisions, truncation (§5.3, §5.6).
//! - [`health`]: pod predicates (§3.7). [`status`]: counters and write decision (§4.8, §6).
//! - [`spec`]: defaulted accessors over the set's spec.
//!
//! No IO happens in the modules above. The controller around them:
//! - [`effects`]: the API calls ([`StatefulSetEffects`]), over `kube::Client` ([`KubeEffects`]);
//!   [`fake`]: the stateful fake tests drive.
//! - [`execute`]: carries out a plan's actions in order (Parallel: slow-start batches) and records
//!   upstream's events.
//! - [`sync`](mod@sync): one sync of one set from a [`Snapshot`]: plan, execute, status write,
//!   `Waiting` and `ConflictingController` events (rate-limited), requeue decision.
//! - [`triggers`]: which sets a pod, claim or revision change wakes.
//! - [`run`](mod@run): watches, caches, work queue and workers; [`run()`] is the entry point.

pub mod action;
pub mod adopt;
pub mod claims;
pub mod effects;
pub mod execute;
pub mod fake;
pub mod go_json;
pub mod health;
pub mod history;
pub mod identity;
pub mod plan;
pub mod revision;
pub mod run;
pub mod spec;
pub mod status;
pub mod sync;
pub mod triggers;

#[cfg(test)]
mod tests;

pub use action::{Action, BlockReason, DeleteReason, Features, Plan};
pub use effects::{EffectError, KubeEffects, StatefulSetEffects};
pub use execute::{ExecError, Executed, execute};
pub use plan::{PlanError, plan};
pub use run::{Config, SyncLog, run, run_with};
pub use sync::{Requeue, Snapshot, SyncOutcome, sync_set};
