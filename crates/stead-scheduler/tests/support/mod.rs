//! Builders for the pure scheduler tests: nodes, pods, claims, volumes and classes as JSON, the
//! way they arrive from the API.

#![allow(dead_code)]

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};
use stead_scheduler::Snapshot;

/// A Ready node with `cpu` cores, `memory` and room for `pods` pods, labelled with its
/// hostname plus `labels`.
pub fn node(name: &str, cpu: &str, memory: &str, pods: u32, labels: Value) -> Value {
    let mut all = json!({"kubernetes.io/hostname": name});
    if let Value::Object(extra) = labels {
        for (k, v) in extra {
            all[k] = v;
        }
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods.to_string()},
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    })
}

/// A plain 4-core, 8Gi, 110-pod node.
pub fn small_node(name: &str) -> Value {
    node(name, "4", "8Gi", 110, json!({}))
}

/// A pod in `default` with one container requesting `requests` (an object like
/// `{"cpu": "1"}`), labelled `labels`.
pub fn pod(name: &str, requests: Value, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": labels},
        "spec": {
            "schedulerName": "default-scheduler",
            "containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests}}],
        }
    })
}

/// `pod` bound to `node`.
pub fn bound(mut pod: Value, node: &str) -> Value {
    pod["spec"]["nodeName"] = json!(node);
    pod["status"] = json!({"phase": "Running"});
    pod
}

/// Sets `spec.<field>` of a pod.
pub fn with_spec(mut pod: Value, field: &str, value: Value) -> Value {
    pod["spec"][field] = value;
    pod
}

/// A claim in `default` of `class`, bound to `volume` if given.
pub fn claim(name: &str, class: &str, volume: Option<&str>) -> Value {
    let mut c = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"},
    });
    if let Some(v) = volume {
        c["spec"]["volumeName"] = json!(v);
        c["status"]["phase"] = json!("Bound");
    }
    c
}

/// A local volume pinned to `node` by node affinity.
pub fn local_volume(name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/x"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
            ]}]}},
        }
    })
}

pub fn class(name: &str, mode: &str) -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": "stead.dev/local-path",
        "volumeBindingMode": mode,
    })
}

/// Mounts claim `claim` as volume `data`.
pub fn with_claim(mut pod: Value, claim: &str) -> Value {
    pod["spec"]["volumes"] =
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
    pod
}

pub fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

/// A snapshot of nodes and (bound) pods.
pub fn snapshot(nodes: Vec<Value>, pods: Vec<Value>) -> Snapshot {
    snapshot_with_storage(nodes, pods, vec![], vec![], vec![])
}

pub fn snapshot_with_storage(
    nodes: Vec<Value>,
    pods: Vec<Value>,
    claims: Vec<Value>,
    volumes: Vec<Value>,
    classes: Vec<Value>,
) -> Snapshot {
    Snapshot::from_objects(
        nodes.into_iter().map(typed::<Node>),
        pods.into_iter().map(typed::<Pod>),
        claims.into_iter().map(typed::<PersistentVolumeClaim>),
        volumes.into_iter().map(typed::<PersistentVolume>),
        classes.into_iter().map(typed::<StorageClass>),
    )
}

/// Schedules `pod`: `Ok(node)` or `Err(message)`.
pub fn place(pod: &Value, snapshot: &Snapshot) -> Result<String, String> {
    let p: Pod = typed(pod.clone());
    stead_scheduler::schedule(&p, snapshot).map_err(|u| u.message(&p))
}
