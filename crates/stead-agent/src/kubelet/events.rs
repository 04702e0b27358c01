//! Events the kubelet records about pods (`reportingComponent: kubelet`), fire and forget:
//! a failed event write is logged, never retried, and never blocks a pod worker.
//!
//! The same event (object, container, type, reason and message) seen again within ten minutes
//! is counted on the first one, `count` and `lastTimestamp` patched, as upstream's event
//! correlator does; so a crash loop's `BackOff` or a failing probe's `Unhealthy` reads
//! `(x5 over 3m)` in `kubectl describe`, not five rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::node::object::time;

/// How long a repeat counts on an earlier event (upstream's aggregation window).
const AGGREGATE_FOR: std::time::Duration = std::time::Duration::from_secs(600);
/// The most distinct events remembered for counting (forgotten all at once beyond it).
const REMEMBERED: usize = 4096;

/// An event already written: its name and how often it happened.
struct Seen {
    name: String,
    count: i32,
    last: Timestamp,
}

/// Records events for one node.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    node: String,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

impl Recorder {
    pub fn new(client: Client, node: String) -> Recorder {
        Recorder {
            client,
            node,
            seen: Arc::default(),
        }
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
        let identity = format!(
            "{ns}/{name}/{}/{}/{type_}/{reason}/{message}",
            pod.metadata.uid.as_deref().unwrap_or(""),
            involved["fieldPath"].as_str().unwrap_or("")
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let event_name = format!("{name}.{:x}", now.as_nanosecond());
        if let Some((event_name, count)) = self.repeat(identity, &event_name, now) {
            let patch = json!({"count": count, "lastTimestamp": time(now)});
            tokio::spawn(async move {
                let patched = api
                    .patch(&event_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
                if let Err(e) = patched {
                    tracing::debug!(error = %e, "kubelet: event count not recorded");
                }
            });
            return;
        }
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "namespace": ns,
                "name": event_name,
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
        tokio::spawn(async move {
            if let Err(e) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(error = %e, "kubelet: event not recorded");
            }
        });
    }

    /// The earlier event this one repeats, with its new count; `None` for a first occurrence
    /// (or one after the aggregation window), which is remembered under `name`.
    fn repeat(&self, identity: String, name: &str, now: Timestamp) -> Option<(String, i32)> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(earlier) = seen.get_mut(&identity)
            && now.duration_since(earlier.last).unsigned_abs() <= AGGREGATE_FOR
        {
            earlier.count = earlier.count.saturating_add(1);
            earlier.last = now;
            return Some((earlier.name.clone(), earlier.count));
        }
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        let first = Seen {
            name: name.to_string(),
            count: 1,
            last: now,
        };
        seen.insert(identity, first);
        None
    }
}
