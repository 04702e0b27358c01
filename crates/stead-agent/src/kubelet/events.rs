//! Events the kubelet records about pods (`reportingComponent: kubelet`), fire and forget:
//! a failed event write is logged, never retried, and never blocks a pod worker.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::node::object::time;

/// Records events for one node.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    node: String,
}

impl Recorder {
    pub fn new(client: Client, node: String) -> Recorder {
        Recorder { client, node }
    }

    /// Records `reason`/`message` about `pod` (about its container `container`, if given).
    pub fn record(
        &self,
        pod: &Pod,
        container: Option<&str>,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now = Timestamp::now();
        let mut involved = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": ns,
            "name": name,
            "uid": pod.metadata.uid,
            "resourceVersion": pod.metadata.resource_version,
        });
        if let Some(c) = container {
            let init = pod
                .spec
                .iter()
                .flat_map(|s| s.init_containers.iter().flatten())
                .any(|i| i.name == c);
            let list = if init { "initContainers" } else { "containers" };
            involved["fieldPath"] = json!(format!("spec.{list}{{{c}}}"));
        }
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "namespace": ns,
                "name": format!("{name}.{:x}", now.as_nanosecond()),
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
            "firstTimestamp": time(now),
            "lastTimestamp": time(now),
            "count": 1,
        });
        let Ok(event) = serde_json::from_value::<Event>(event) else {
            return;
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        tokio::spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(error = %e, "kubelet: event not recorded");
            }
        });
    }
}
