//! The cluster as the scheduler sees it: nodes with the pods bound (or assumed) to them and their
//! summed requests, plus the claims, volumes and storage classes volume binding reads.
//!
//! The run loop keeps one [`Snapshot`] up to date from its watches, change by change (no relist
//! per pod), and assumes each pod it binds onto its node at once, so the next decision already
//! counts it. Tests build one with [`Snapshot::from_objects`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::resources::{Resources, pod_requests, pod_requests_for_scoring};

/// A node's name: what [`crate::schedule()`] picks.
pub type NodeName = String;

/// `namespace/name` of a namespaced object.
pub fn key(namespace: Option<&str>, name: Option<&str>) -> String {
    format!(
        "{}/{}",
        namespace.unwrap_or_default(),
        name.unwrap_or_default()
    )
}

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    key(
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    )
}

/// Whether the pod has finished (its resources are free again).
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// One node and what is bound to it. A node known only through its pods (its Node object is
/// not in the cache yet) has `node: None` and is never chosen.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub name: String,
    pub node: Option<Arc<Node>>,
    /// Pods bound or assumed here, by `namespace/name`.
    pub pods: BTreeMap<String, Arc<Pod>>,
    /// The pods' requests summed (what NodeResourcesFit subtracts from allocatable).
    pub requested: Resources,
    /// The same with the scorer's non-zero defaults.
    pub requested_for_scoring: Resources,
}

impl NodeState {
    /// The node's labels (empty without a Node object).
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.node.as_ref().and_then(|n| n.metadata.labels.as_ref())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    nodes: BTreeMap<String, NodeState>,
    pod_node: HashMap<String, String>,
    /// Claims by `namespace/name`.
    pub claims: HashMap<String, Arc<PersistentVolumeClaim>>,
    /// PersistentVolumes by name.
    pub volumes: HashMap<String, Arc<PersistentVolume>>,
    /// StorageClasses by name.
    pub classes: HashMap<String, Arc<StorageClass>>,
}

impl Snapshot {
    /// A snapshot of these objects: pods count where they are bound (`spec.nodeName`), unless
    /// finished.
    pub fn from_objects(
        nodes: impl IntoIterator<Item = Node>,
        pods: impl IntoIterator<Item = Pod>,
        claims: impl IntoIterator<Item = PersistentVolumeClaim>,
        volumes: impl IntoIterator<Item = PersistentVolume>,
        classes: impl IntoIterator<Item = StorageClass>,
    ) -> Snapshot {
        let mut s = Snapshot::default();
        for n in nodes {
            s.set_node(Arc::new(n));
        }
        for p in pods {
            s.apply_pod(Arc::new(p));
        }
        for c in claims {
            s.set_claim(Arc::new(c));
        }
        for v in volumes {
            s.set_volume(Arc::new(v));
        }
        for c in classes {
            s.set_class(Arc::new(c));
        }
        s
    }

    /// Nodes that exist (have a Node object), by name.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.values().filter(|n| n.node.is_some())
    }

    /// Every node state, including ones known only through their pods.
    pub fn all_node_states(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.values()
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.get(name)
    }

    /// Adds or replaces a Node.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let state = self.nodes.entry(name.clone()).or_default();
        state.name = name;
        state.node = Some(node);
    }

    /// Removes a Node; its pods stay counted in case it comes back.
    pub fn remove_node(&mut self, name: &str) {
        if let Some(state) = self.nodes.get_mut(name) {
            state.node = None;
            if state.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
    }

    /// Where the pod `key` is bound or assumed.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.pod_node.get(key).map(String::as_str)
    }

    /// Takes a pod's latest state: counted on its node when bound and running, forgotten when
    /// unbound or finished. Returns whether it is now counted.
    pub fn apply_pod(&mut self, pod: Arc<Pod>) -> bool {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if node.is_empty() || is_terminal(&pod) {
            self.remove_pod(&pod_key(&pod));
            return false;
        }
        self.place(pod, node);
        true
    }

    /// Counts `pod` on `node` (the assume step: before the binding is confirmed by the watch).
    pub fn assume(&mut self, pod: Arc<Pod>, node: &str) {
        self.place(pod, node.to_string());
    }

    fn place(&mut self, pod: Arc<Pod>, node: String) {
        let key = pod_key(&pod);
        self.remove_pod(&key);
        let state = self.nodes.entry(node.clone()).or_default();
        state.name.clone_from(&node);
        state.requested = state.requested.plus(&pod_requests(&pod));
        state.requested_for_scoring = state
            .requested_for_scoring
            .plus(&pod_requests_for_scoring(&pod));
        state.pods.insert(key.clone(), pod);
        self.pod_node.insert(key, node);
    }

    /// Stops counting the pod `key` (deleted, finished, or an assumption undone).
    pub fn remove_pod(&mut self, key: &str) {
        let Some(node) = self.pod_node.remove(key) else {
            return;
        };
        if let Some(state) = self.nodes.get_mut(&node) {
            if let Some(pod) = state.pods.remove(key) {
                state.requested = state.requested.minus(&pod_requests(&pod));
                state.requested_for_scoring = state
                    .requested_for_scoring
                    .minus(&pod_requests_for_scoring(&pod));
            }
            if state.node.is_none() && state.pods.is_empty() {
                self.nodes.remove(&node);
            }
        }
    }

    pub fn set_claim(&mut self, claim: Arc<PersistentVolumeClaim>) {
        let k = key(
            claim.metadata.namespace.as_deref(),
            claim.metadata.name.as_deref(),
        );
        self.claims.insert(k, claim);
    }

    pub fn remove_claim(&mut self, key: &str) {
        self.claims.remove(key);
    }

    pub fn set_volume(&mut self, volume: Arc<PersistentVolume>) {
        let name = volume.metadata.name.clone().unwrap_or_default();
        self.volumes.insert(name, volume);
    }

    pub fn remove_volume(&mut self, name: &str) {
        self.volumes.remove(name);
    }

    pub fn set_class(&mut self, class: Arc<StorageClass>) {
        let name = class.metadata.name.clone().unwrap_or_default();
        self.classes.insert(name, class);
    }

    pub fn remove_class(&mut self, name: &str) {
        self.classes.remove(name);
    }
}
