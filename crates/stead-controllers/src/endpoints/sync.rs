//! Carries out a [`Plan`] through [`EndpointsEffects`]: the Endpoints write and the slice writes
//! run side by side (neither waits for the other; one failing does not stop the other), slices
//! in the order create, update, delete so a port-set change never leaves a moment without
//! endpoints. What was written comes back so the run loop's cache holds it at once.

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::effects::{EffectError, EndpointsEffects};
use super::plan::{EndpointsWrite, Plan};

/// One object as a sync left it.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    Endpoints(Endpoints),
    EndpointsGone { namespace: String, name: String },
    Slice(EndpointSlice),
    SliceGone { namespace: String, name: String },
}

/// The result of carrying out one plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Executed {
    pub written: Vec<Written>,
    /// The first failure; the other writes were still attempted.
    pub error: Option<EffectError>,
}

impl Executed {
    fn record<T>(&mut self, r: Result<T, EffectError>, written: impl FnOnce(T) -> Written) {
        match r {
            Ok(v) => self.written.push(written(v)),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    fn merge(mut self, other: Executed) -> Executed {
        self.written.extend(other.written);
        if self.error.is_none() {
            self.error = other.error;
        }
        self
    }
}

async fn write_endpoints<E: EndpointsEffects>(
    effects: &E,
    namespace: &str,
    name: &str,
    write: Option<EndpointsWrite>,
) -> Executed {
    let mut out = Executed::default();
    match write {
        None => {}
        Some(EndpointsWrite::Create(ep)) => {
            out.record(effects.create_endpoints(&ep).await, Written::Endpoints)
        }
        Some(EndpointsWrite::Update(ep)) => {
            out.record(effects.update_endpoints(&ep).await, Written::Endpoints)
        }
        Some(EndpointsWrite::Delete) => {
            out.record(effects.delete_endpoints(namespace, name).await, |()| {
                Written::EndpointsGone {
                    namespace: namespace.into(),
                    name: name.into(),
                }
            })
        }
    }
    out
}

async fn write_slices<E: EndpointsEffects>(
    effects: &E,
    namespace: &str,
    plan: super::slices::SlicePlan,
) -> Executed {
    let mut out = Executed::default();
    for s in &plan.create {
        out.record(effects.create_slice(s).await, Written::Slice);
    }
    for s in &plan.update {
        out.record(effects.update_slice(s).await, Written::Slice);
    }
    for name in &plan.delete {
        out.record(effects.delete_slice(namespace, name).await, |()| {
            Written::SliceGone {
                namespace: namespace.into(),
                name: name.clone(),
            }
        });
    }
    out
}

/// Carries out `plan` for the service `namespace/name`.
pub async fn execute<E: EndpointsEffects>(
    effects: &E,
    namespace: &str,
    name: &str,
    plan: Plan,
) -> Executed {
    let (a, b) = futures::join!(
        write_endpoints(effects, namespace, name, plan.endpoints),
        write_slices(effects, namespace, plan.slices),
    );
    a.merge(b)
}
