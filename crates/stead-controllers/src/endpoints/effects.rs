//! The API calls of the endpoints controllers behind [`EndpointsEffects`], with [`KubeEndpoints`]
//! over `kube::Client` ([`fake`](super::fake) has the stateful fake tests drive).

use std::future::Future;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};

pub use crate::gc::effects::EffectError;
use crate::gc::effects::effect_error;

/// Every method is one request and none retries: the controller requeues the service on error.
/// Writes return the object as stored (with its new resourceVersion) so the controller's cache
/// can hold it before the watch brings it. A create of an existing object or an update at a stale
/// resourceVersion answers `Conflict`; deleting what is gone is not an error.
pub trait EndpointsEffects: Send + Sync + 'static {
    fn create_endpoints(
        &self,
        ep: &Endpoints,
    ) -> impl Future<Output = Result<Endpoints, EffectError>> + Send;

    /// Replaces the object at `ep.metadata.resourceVersion`.
    fn update_endpoints(
        &self,
        ep: &Endpoints,
    ) -> impl Future<Output = Result<Endpoints, EffectError>> + Send;

    fn delete_endpoints(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Creates a slice (named by `generateName` unless it has a name).
    fn create_slice(
        &self,
        slice: &EndpointSlice,
    ) -> impl Future<Output = Result<EndpointSlice, EffectError>> + Send;

    /// Replaces the slice at `slice.metadata.resourceVersion`.
    fn update_slice(
        &self,
        slice: &EndpointSlice,
    ) -> impl Future<Output = Result<EndpointSlice, EffectError>> + Send;

    fn delete_slice(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;
}

/// [`EndpointsEffects`] over the API server.
#[derive(Clone)]
pub struct KubeEndpoints {
    client: Client,
}

impl KubeEndpoints {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    fn endpoints(&self, ns: &str) -> Api<Endpoints> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn slices(&self, ns: &str) -> Api<EndpointSlice> {
        Api::namespaced(self.client.clone(), ns)
    }
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

fn gone_is_done(r: Result<(), kube::Error>) -> Result<(), EffectError> {
    match r.map_err(effect_error) {
        Err(EffectError::NotFound) => Ok(()),
        other => other,
    }
}

impl EndpointsEffects for KubeEndpoints {
    async fn create_endpoints(&self, ep: &Endpoints) -> Result<Endpoints, EffectError> {
        self.endpoints(namespace_of(&ep.metadata))
            .create(&PostParams::default(), ep)
            .await
            .map_err(effect_error)
    }

    async fn update_endpoints(&self, ep: &Endpoints) -> Result<Endpoints, EffectError> {
        let name = ep.metadata.name.as_deref().unwrap_or_default();
        self.endpoints(namespace_of(&ep.metadata))
            .replace(name, &PostParams::default(), ep)
            .await
            .map_err(effect_error)
    }

    async fn delete_endpoints(&self, namespace: &str, name: &str) -> Result<(), EffectError> {
        gone_is_done(
            self.endpoints(namespace)
                .delete(name, &DeleteParams::default())
                .await
                .map(|_| ()),
        )
    }

    async fn create_slice(&self, slice: &EndpointSlice) -> Result<EndpointSlice, EffectError> {
        self.slices(namespace_of(&slice.metadata))
            .create(&PostParams::default(), slice)
            .await
            .map_err(effect_error)
    }

    async fn update_slice(&self, slice: &EndpointSlice) -> Result<EndpointSlice, EffectError> {
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        self.slices(namespace_of(&slice.metadata))
            .replace(name, &PostParams::default(), slice)
            .await
            .map_err(effect_error)
    }

    async fn delete_slice(&self, namespace: &str, name: &str) -> Result<(), EffectError> {
        gone_is_done(
            self.slices(namespace)
                .delete(name, &DeleteParams::default())
                .await
                .map(|_| ()),
        )
    }
}
