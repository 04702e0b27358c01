//! The Endpoints and EndpointSlice controllers (upstream `pkg/controller/endpoint` and
//! `pkg/controller/endpointslice` + `staging/src/k8s.io/endpointslice`), run as one loop over
//! one set of watches: for every Service with a selector they publish the addresses of the
//! pods it selects — an Endpoints object of the service's name and `discovery.k8s.io/v1`
//! EndpointSlices owned by the service — ready or not, with the hostnames that give StatefulSet
//! pods their stable DNS names.
//!
//! # Layout (start at [`plan`](mod@plan))
//! - [`view`]: the parts of Services and Pods that matter, and the shared pod rules (which pods
//!   take part, the hostname rule, `targetPort` resolution, IP families).
//! - [`subsets`]: the Endpoints subsets (repacked by port set, canonical order, truncation).
//! - [`slices`]: the desired endpoints per address type and port set, and the minimal slice
//!   writes ([`slices::plan_slices`]).
//! - [`trigger`]: the `last-change-trigger-time` annotation.
//! - [`plan`](mod@plan): one sync's writes from a [`Snapshot`], including deletion and the
//!   `kubernetes` service.
//!
//! No IO happens above. Around them:
//! - [`effects`]: [`EndpointsEffects`] and [`KubeEndpoints`]; [`fake`]: the stateful fake.
//! - [`sync`](mod@sync): carries out a plan. `world`: the caches the watches feed (node zones
//!   reach slice endpoints through [`PodView::zone`]).
//!   [`run`](mod@run): watches, queue, workers; [`run()`] is the entry point.
//!
//! Not done (upstream has them): leaving out pods whose node is unknown, Events on failed
//! writes, topology hints, and the EndpointSlice mirroring controller (slices for hand-made
//! Endpoints of selector-less services).

pub mod effects;
pub mod fake;
pub mod plan;
pub mod run;
pub mod slices;
pub mod subsets;
pub mod sync;
pub mod trigger;
pub mod view;
mod world;

pub use effects::{EffectError, EndpointsEffects, KubeEndpoints};
pub use plan::{EndpointsWrite, Plan, Snapshot, plan};
pub use run::{Config, run, run_with};
pub use slices::SlicePlan;
pub use sync::{Executed, Written, execute};
pub use view::{PodView, ServiceView};
