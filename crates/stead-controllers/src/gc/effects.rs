//! The writes and reads the garbage collector makes, behind one narrow trait: [`GcEffects`], with
//! [`KubeGc`] as the real implementation over `kube::Client` (tests bring a stateful fake).

use std::future::Future;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::core::ApiResource;
use serde_json::json;
use stead_api::ResourceType;

use super::graph::ObjectKey;
use super::plan::{Propagation, Target};

/// Why an effect failed. `NotFound` means the object is gone, which callers treat as done;
/// `Conflict` means the object changed since the decision (a precondition failed); everything
/// else is transient and retried with backoff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Other(String),
}

/// An object as a live read sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub uid: String,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

/// The API calls of the garbage collector. Every method is one request; none retries (the
/// collector requeues on error) and all are idempotent at the level of the decision they carry
/// out: a target that no longer exists answers `NotFound`, one that changed answers `Conflict`.
pub trait GcEffects: Send + Sync {
    /// Reads one object (an owner the graph has not observed). `Ok(None)` when absent.
    fn get(
        &self,
        key: &ObjectKey,
    ) -> impl Future<Output = Result<Option<Seen>, EffectError>> + Send;

    /// Deletes `target` with `propagation`, preconditioned on its uid and resourceVersion.
    fn delete(
        &self,
        target: &Target,
        propagation: Propagation,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Replaces `metadata.ownerReferences` of `target` (at its resourceVersion); returns the new
    /// resourceVersion.
    fn set_owner_refs(
        &self,
        target: &Target,
        refs: &[OwnerReference],
    ) -> impl Future<Output = Result<String, EffectError>> + Send;

    /// Replaces `metadata.finalizers` of `target` (at its resourceVersion); returns the new
    /// resourceVersion (the object may be gone afterwards if it was being deleted).
    fn set_finalizers(
        &self,
        target: &Target,
        finalizers: &[String],
    ) -> impl Future<Output = Result<String, EffectError>> + Send;
}

/// `kube::core::ApiResource` for a row of the served-resource table.
pub fn api_resource(rt: &ResourceType) -> ApiResource {
    ApiResource {
        group: rt.group.to_string(),
        version: rt.version.to_string(),
        api_version: rt.api_version(),
        kind: rt.kind.to_string(),
        plural: rt.plural.to_string(),
    }
}

/// A dynamic `Api` for one resource type, scoped to `namespace` when the type is namespaced.
pub fn dynamic_api(client: &Client, rt: &ResourceType, namespace: &str) -> Api<DynamicObject> {
    let ar = api_resource(rt);
    if rt.namespaced {
        Api::namespaced_with(client.clone(), namespace, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    }
}

/// Maps a client error onto the three outcomes the collector distinguishes.
pub fn effect_error(e: kube::Error) -> EffectError {
    match &e {
        kube::Error::Api(s) if s.is_not_found() => EffectError::NotFound,
        kube::Error::Api(s) if s.code == 409 => EffectError::Conflict(s.message.clone()),
        _ => EffectError::Other(e.to_string()),
    }
}

/// [`GcEffects`] over the API server.
#[derive(Clone)]
pub struct KubeGc {
    client: Client,
}

impl KubeGc {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    fn api(&self, key: &ObjectKey) -> Api<DynamicObject> {
        dynamic_api(&self.client, key.resource, &key.namespace)
    }

    async fn merge_metadata(
        &self,
        target: &Target,
        field: &str,
        value: serde_json::Value,
    ) -> Result<String, EffectError> {
        // The resourceVersion in a merge patch is a precondition: a changed object answers 409.
        let body = json!({"metadata": {"resourceVersion": target.resource_version, field: value}});
        let obj = self
            .api(&target.key)
            .patch(
                &target.key.name,
                &PatchParams::default(),
                &Patch::Merge(&body),
            )
            .await
            .map_err(effect_error)?;
        Ok(obj.metadata.resource_version.unwrap_or_default())
    }
}

impl GcEffects for KubeGc {
    async fn get(&self, key: &ObjectKey) -> Result<Option<Seen>, EffectError> {
        let obj = self
            .api(key)
            .get_opt(&key.name)
            .await
            .map_err(effect_error)?;
        Ok(obj.map(|o| Seen {
            uid: o.metadata.uid.unwrap_or_default(),
            deleting: o.metadata.deletion_timestamp.is_some(),
            finalizers: o.metadata.finalizers.unwrap_or_default(),
        }))
    }

    async fn delete(&self, target: &Target, propagation: Propagation) -> Result<(), EffectError> {
        let dp = DeleteParams {
            propagation_policy: Some(match propagation {
                Propagation::Background => kube::api::PropagationPolicy::Background,
                Propagation::Foreground => kube::api::PropagationPolicy::Foreground,
                Propagation::Orphan => kube::api::PropagationPolicy::Orphan,
            }),
            preconditions: Some(Preconditions {
                uid: Some(target.uid.clone()),
                resource_version: Some(target.resource_version.clone()).filter(|rv| !rv.is_empty()),
            }),
            ..DeleteParams::default()
        };
        self.api(&target.key)
            .delete(&target.key.name, &dp)
            .await
            .map_err(effect_error)?;
        Ok(())
    }

    async fn set_owner_refs(
        &self,
        target: &Target,
        refs: &[OwnerReference],
    ) -> Result<String, EffectError> {
        let value = if refs.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(refs).map_err(|e| EffectError::Other(e.to_string()))?
        };
        self.merge_metadata(target, "ownerReferences", value).await
    }

    async fn set_finalizers(
        &self,
        target: &Target,
        finalizers: &[String],
    ) -> Result<String, EffectError> {
        let value = if finalizers.is_empty() {
            serde_json::Value::Null
        } else {
            json!(finalizers)
        };
        self.merge_metadata(target, "finalizers", value).await
    }
}
