//! The API calls of the namespace controller behind [`NamespaceEffects`], with [`KubeNamespaces`]
//! over `kube::Client` (tests bring a stateful fake).

use std::collections::BTreeMap;
use std::future::Future;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use stead_api::ResourceType;

use super::plan::{NamespaceView, Remaining};
use crate::gc::effects::{EffectError, dynamic_api, effect_error};

/// Every method is one request (a list may page) and none retries: the controller requeues the
/// namespace on error. Deleting content that is already gone or going is not an error.
pub trait NamespaceEffects: Send + Sync {
    /// `DELETE` the collection of `rt` in namespace `ns` (background propagation).
    fn delete_collection(
        &self,
        rt: &'static ResourceType,
        ns: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// What of `rt` is still in `ns`.
    fn remaining(
        &self,
        rt: &'static ResourceType,
        ns: &str,
    ) -> impl Future<Output = Result<Remaining, EffectError>> + Send;

    /// Writes `status.conditions` of the namespace.
    fn set_conditions(
        &self,
        ns: &NamespaceView,
        conditions: &[NamespaceCondition],
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// `PUT namespaces/<name>/finalize` with `spec.finalizers` = `finalizers`, at the namespace's
    /// resourceVersion.
    fn finalize(
        &self,
        ns: &NamespaceView,
        finalizers: &[String],
    ) -> impl Future<Output = Result<(), EffectError>> + Send;
}

/// [`NamespaceEffects`] over the API server.
#[derive(Clone)]
pub struct KubeNamespaces {
    client: Client,
}

impl KubeNamespaces {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl NamespaceEffects for KubeNamespaces {
    async fn delete_collection(
        &self,
        rt: &'static ResourceType,
        ns: &str,
    ) -> Result<(), EffectError> {
        let dp = DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match dynamic_api(&self.client, rt, ns)
            .delete_collection(&dp, &ListParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match effect_error(e) {
                EffectError::NotFound => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn remaining(
        &self,
        rt: &'static ResourceType,
        ns: &str,
    ) -> Result<Remaining, EffectError> {
        let list = dynamic_api(&self.client, rt, ns)
            .list(&ListParams::default())
            .await
            .map_err(effect_error)?;
        let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
        for obj in &list.items {
            for f in obj.metadata.finalizers.iter().flatten() {
                *finalizers.entry(f.clone()).or_default() += 1;
            }
        }
        Ok(Remaining {
            resource: rt,
            count: list.items.len(),
            finalizers,
        })
    }

    async fn set_conditions(
        &self,
        ns: &NamespaceView,
        conditions: &[NamespaceCondition],
    ) -> Result<(), EffectError> {
        let body = json!({"status": {"conditions": conditions}});
        Api::<Namespace>::all(self.client.clone())
            .patch_status(&ns.name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(effect_error)?;
        Ok(())
    }

    async fn finalize(&self, ns: &NamespaceView, finalizers: &[String]) -> Result<(), EffectError> {
        let body = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns.name, "resourceVersion": ns.resource_version},
            "spec": {"finalizers": finalizers},
        });
        Api::<Namespace>::all(self.client.clone())
            .replace_subresource("finalize", &ns.name, &PostParams::default(), &body)
            .await
            .map_err(effect_error)?;
        Ok(())
    }
}
