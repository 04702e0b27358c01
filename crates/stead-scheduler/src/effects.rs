//! The API calls the scheduler makes, behind [`SchedulerEffects`]; [`KubeEffects`] is the real
//! implementation over `kube::Client`. Every method is one request (events: one publish, off the
//! caller's path) and decides nothing.

use std::future::Future;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use serde_json::{Value, json};

use crate::volumes::SELECTED_NODE;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    /// The pod or claim is gone.
    #[error("{0}")]
    NotFound(String),
    /// The pod is already bound, or is being deleted (409).
    #[error("{0}")]
    Conflict(String),
    /// Anything else; retried with backoff.
    #[error("{0}")]
    Other(String),
}

impl EffectError {
    pub fn from_kube(e: kube::Error) -> EffectError {
        match &e {
            kube::Error::Api(s) if s.is_not_found() => EffectError::NotFound(s.message.clone()),
            kube::Error::Api(s) if s.code == 409 => EffectError::Conflict(s.message.clone()),
            kube::Error::Api(s) => EffectError::Other(s.message.clone()),
            _ => EffectError::Other(e.to_string()),
        }
    }
}

/// The writes of the scheduler.
pub trait SchedulerEffects: Send + Sync + 'static {
    /// `POST pods/<name>/binding` to `node` (uid-guarded: a recreated pod of the same name is
    /// not bound by mistake).
    fn bind(&self, pod: &Pod, node: &str) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Sets `PodScheduled=False, reason Unschedulable, message` in the pod's status.
    fn set_unschedulable(
        &self,
        pod: &Pod,
        message: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Annotates the claim with `volume.kubernetes.io/selected-node: node`.
    fn select_node(
        &self,
        claim: &PersistentVolumeClaim,
        node: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Records an event about the pod (best effort).
    fn record(&self, pod: &Pod, event: PodEvent) -> impl Future<Output = ()> + Send;
}

/// An event about a pod, in upstream's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodEvent {
    /// Normal `Scheduled`: `Successfully assigned <ns>/<pod> to <node>`.
    Scheduled { node: String },
    /// Warning `FailedScheduling` with the unschedulable message.
    FailedScheduling { message: String },
}

impl PodEvent {
    pub fn note(&self, pod: &Pod) -> String {
        match self {
            PodEvent::Scheduled { node } => format!(
                "Successfully assigned {}/{} to {node}",
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.name.as_deref().unwrap_or_default()
            ),
            PodEvent::FailedScheduling { message } => message.clone(),
        }
    }
}

/// [`SchedulerEffects`] over the API server.
#[derive(Clone)]
pub struct KubeEffects {
    client: Client,
    recorder: Recorder,
}

impl KubeEffects {
    /// Effects reporting as `scheduler_name` (events' `reportingController`).
    pub fn new(client: Client, scheduler_name: &str) -> Self {
        let reporter = Reporter {
            controller: scheduler_name.to_string(),
            instance: None,
        };
        let recorder = Recorder::new(client.clone(), reporter);
        KubeEffects { client, recorder }
    }

    fn pods(&self, pod: &Pod) -> Api<Pod> {
        Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        )
    }
}

impl SchedulerEffects for KubeEffects {
    async fn bind(&self, pod: &Pod, node: &str) -> Result<(), EffectError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {
                "name": name,
                "namespace": pod.metadata.namespace,
                "uid": pod.metadata.uid,
            },
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        self.pods(pod)
            .create_subresource::<_, Value>("binding", &name, &PostParams::default(), &binding)
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn set_unschedulable(&self, pod: &Pod, message: &str) -> Result<(), EffectError> {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let body = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": now,
        }]}});
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.pods(pod)
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(body))
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn select_node(
        &self,
        claim: &PersistentVolumeClaim,
        node: &str,
    ) -> Result<(), EffectError> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            self.client.clone(),
            claim.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let body = json!({"metadata": {"annotations": {SELECTED_NODE: node}}});
        api.patch(
            claim.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(body),
        )
        .await
        .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn record(&self, pod: &Pod, event: PodEvent) {
        let (type_, reason, action) = match &event {
            PodEvent::Scheduled { .. } => (EventType::Normal, "Scheduled", "Binding"),
            PodEvent::FailedScheduling { .. } => {
                (EventType::Warning, "FailedScheduling", "Scheduling")
            }
        };
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(event.note(pod)),
            action: action.to_string(),
            secondary: None,
        };
        let regarding = pod.object_ref(&());
        let recorder = self.recorder.clone();
        let key = crate::snapshot::pod_key(pod);
        // Off the scheduling path, like upstream's event broadcaster.
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&ev, &regarding).await {
                tracing::warn!(pod = %key, reason = %ev.reason, error = %e,
                    "scheduler: recording an event failed");
            }
        });
    }
}
