//! The API calls of the volume controller behind [`VolumeEffects`], with [`KubeVolumes`] over
//! `kube::Client`. Writes return the object as written so the loop can update its caches before
//! the watch catches up.

use std::future::Future;

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::Value;

use super::plan::{EventSource, Target, VolumeEvent};
use super::{CONTROLLER_NAME, LOCAL_PATH_PROVISIONER};
pub use crate::statefulset::effects::EffectError;

/// A written claim or volume.
#[derive(Debug, Clone)]
pub enum Written {
    Claim(Box<PersistentVolumeClaim>),
    Volume(Box<PersistentVolume>),
}

/// Every method is one request; none retries (the loop requeues the key on error).
pub trait VolumeEffects: Send + Sync + 'static {
    /// JSON merge patch of `target` (`status`: of its status subresource).
    fn patch(
        &self,
        target: &Target,
        status: bool,
        patch: &Value,
    ) -> impl Future<Output = Result<Written, EffectError>> + Send;

    /// Creates a provisioned volume.
    fn create_volume(
        &self,
        pv: &PersistentVolume,
    ) -> impl Future<Output = Result<PersistentVolume, EffectError>> + Send;

    /// Reads a claim from the API server, bypassing the caches (the check before a volume is
    /// released: a claim missing from a lagging cache must not free its volume).
    fn get_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<PersistentVolumeClaim>, EffectError>> + Send;

    /// Records an event (failures are logged, not returned: events are best effort).
    fn record(&self, event: &VolumeEvent) -> impl Future<Output = ()> + Send;
}

/// [`VolumeEffects`] over the API server.
#[derive(Clone)]
pub struct KubeVolumes {
    client: Client,
    controller: Recorder,
    provisioner: Recorder,
}

impl KubeVolumes {
    pub fn new(client: Client) -> Self {
        let recorder = |name: &str| {
            Recorder::new(
                client.clone(),
                Reporter {
                    controller: name.to_string(),
                    instance: None,
                },
            )
        };
        KubeVolumes {
            controller: recorder(CONTROLLER_NAME),
            provisioner: recorder(LOCAL_PATH_PROVISIONER),
            client,
        }
    }
}

impl VolumeEffects for KubeVolumes {
    async fn patch(
        &self,
        target: &Target,
        status: bool,
        patch: &Value,
    ) -> Result<Written, EffectError> {
        let pp = PatchParams::default();
        let body = Patch::Merge(patch);
        match target {
            Target::Claim { namespace, name } => {
                let api = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), namespace);
                let written = if status {
                    api.patch_status(name, &pp, &body).await
                } else {
                    api.patch(name, &pp, &body).await
                };
                written
                    .map(|c| Written::Claim(Box::new(c)))
                    .map_err(EffectError::from_kube)
            }
            Target::Volume { name } => {
                let api = Api::<PersistentVolume>::all(self.client.clone());
                let written = if status {
                    api.patch_status(name, &pp, &body).await
                } else {
                    api.patch(name, &pp, &body).await
                };
                written
                    .map(|v| Written::Volume(Box::new(v)))
                    .map_err(EffectError::from_kube)
            }
        }
    }

    async fn create_volume(&self, pv: &PersistentVolume) -> Result<PersistentVolume, EffectError> {
        Api::<PersistentVolume>::all(self.client.clone())
            .create(&PostParams::default(), pv)
            .await
            .map_err(EffectError::from_kube)
    }

    async fn get_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, EffectError> {
        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(EffectError::from_kube)
    }

    async fn record(&self, event: &VolumeEvent) {
        let regarding = match &event.target {
            Target::Claim { namespace, name } => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: Some(namespace.clone()),
                name: Some(name.clone()),
                uid: Some(event.uid.clone()),
                ..ObjectReference::default()
            },
            Target::Volume { name } => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolume".into()),
                name: Some(name.clone()),
                uid: Some(event.uid.clone()),
                ..ObjectReference::default()
            },
        };
        let recorder = match event.source {
            EventSource::Controller => &self.controller,
            EventSource::Provisioner => &self.provisioner,
        };
        let ev = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.to_string(),
            note: Some(event.message.clone()),
            action: match event.source {
                EventSource::Controller => "Binding".into(),
                EventSource::Provisioner => "Provisioning".into(),
            },
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, &regarding).await {
            tracing::warn!(reason = event.reason, error = %e, "volume controller: recording an event failed");
        }
    }
}
