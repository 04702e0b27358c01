//! A hand-written slice of upstream's OpenAPI v3 `components.schemas` for apps/v1 StatefulSet,
//! in the exact shape upstream serves (`allOf` + `default: {}` wrappers, patch extensions on list
//! fields), for the patch tests. Only the fields the tests touch are declared.

use serde_json::{Map, Value, json};

pub(crate) const STS: &str = "io.k8s.api.apps.v1.StatefulSet";

fn r(name: &str) -> Value {
    json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}], "default": {}})
}

fn ptr(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn merge_list(item: &str, key: &str) -> Value {
    json!({"type": "array", "items": r(item), "x-kubernetes-patch-merge-key": key, "x-kubernetes-patch-strategy": "merge"})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string", "default": ""}})
}

pub(crate) fn schemas() -> Map<String, Value> {
    let core = "io.k8s.api.core.v1.";
    let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.";
    let mut ports = merge_list(&format!("{core}ContainerPort"), "containerPort");
    ports["x-kubernetes-list-type"] = json!("map");
    ports["x-kubernetes-list-map-keys"] = json!(["containerPort", "protocol"]);
    let mut volumes = merge_list(&format!("{core}Volume"), "name");
    volumes["x-kubernetes-patch-strategy"] = json!("merge,retainKeys");
    let mut finalizers = strings();
    finalizers["x-kubernetes-patch-strategy"] = json!("merge");
    let mut owners = merge_list(&format!("{meta}OwnerReference"), "uid");
    owners["x-kubernetes-list-type"] = json!("map");
    owners["x-kubernetes-list-map-keys"] = json!(["uid"]);
    let mut vcts = json!({"type": "array", "items": r(&format!("{core}PersistentVolumeClaim"))});
    vcts["x-kubernetes-list-type"] = json!("atomic");
    let string_map =
        json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}});
    let s = json!({"type": "string"});
    let i = json!({"type": "integer", "format": "int32"});
    let defs = json!({
        STS: {"type": "object", "properties": {
            "apiVersion": s, "kind": s,
            "metadata": r(&format!("{meta}ObjectMeta")),
            "spec": r("io.k8s.api.apps.v1.StatefulSetSpec"),
            "status": r("io.k8s.api.apps.v1.StatefulSetStatus")},
            "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "StatefulSet", "version": "v1"}]},
        "io.k8s.api.apps.v1.StatefulSetStatus": {"type": "object", "properties": {"replicas": i}},
        "io.k8s.api.apps.v1.StatefulSetSpec": {"type": "object", "properties": {
            "replicas": i, "serviceName": s,
            "selector": ptr(&format!("{meta}LabelSelector")),
            "template": r(&format!("{core}PodTemplateSpec")),
            "volumeClaimTemplates": vcts,
            "updateStrategy": r("io.k8s.api.apps.v1.StatefulSetUpdateStrategy")}},
        "io.k8s.api.apps.v1.StatefulSetUpdateStrategy": {"type": "object", "properties": {"type": s,
            "rollingUpdate": ptr("io.k8s.api.apps.v1.RollingUpdateStatefulSetStrategy")}},
        "io.k8s.api.apps.v1.RollingUpdateStatefulSetStrategy": {"type": "object", "properties": {"partition": i}},
        format!("{meta}ObjectMeta"): {"type": "object", "properties": {
            "name": s, "namespace": s, "uid": s, "resourceVersion": s, "generation": {"type": "integer"},
            "labels": string_map, "annotations": string_map,
            "finalizers": finalizers, "ownerReferences": owners,
            "managedFields": {"type": "array", "items": r(&format!("{meta}ManagedFieldsEntry"))}}},
        format!("{meta}ManagedFieldsEntry"): {"type": "object", "properties": {"manager": s, "operation": s,
            "apiVersion": s, "time": s, "fieldsType": s, "fieldsV1": {"type": "object"}}},
        format!("{meta}OwnerReference"): {"type": "object", "properties": {
            "apiVersion": s, "kind": s, "name": s, "uid": s, "controller": {"type": "boolean"}},
            "x-kubernetes-map-type": "atomic"},
        format!("{meta}LabelSelector"): {"type": "object", "properties": {"matchLabels": string_map},
            "x-kubernetes-map-type": "atomic"},
        format!("{core}PodTemplateSpec"): {"type": "object", "properties": {
            "metadata": r(&format!("{meta}ObjectMeta")), "spec": r(&format!("{core}PodSpec"))}},
        format!("{core}PodSpec"): {"type": "object", "properties": {
            "containers": merge_list(&format!("{core}Container"), "name"),
            "initContainers": merge_list(&format!("{core}Container"), "name"),
            "volumes": volumes,
            "tolerations": {"type": "array", "items": r(&format!("{core}Toleration")), "x-kubernetes-list-type": "atomic"},
            "nodeSelector": string_map,
            "terminationGracePeriodSeconds": {"type": "integer"}}},
        format!("{core}Toleration"): {"type": "object", "properties": {"key": s, "operator": s, "effect": s}},
        format!("{core}Container"): {"type": "object", "properties": {
            "name": s, "image": s, "imagePullPolicy": s, "args": strings(), "command": strings(),
            "ports": ports,
            "env": merge_list(&format!("{core}EnvVar"), "name"),
            "volumeMounts": merge_list(&format!("{core}VolumeMount"), "mountPath"),
            "resources": r(&format!("{core}ResourceRequirements"))}},
        format!("{core}ResourceRequirements"): {"type": "object", "properties": {
            "limits": string_map, "requests": string_map}},
        format!("{core}ContainerPort"): {"type": "object", "properties": {"containerPort": i, "name": s,
            "protocol": {"type": "string", "default": "TCP"}}},
        format!("{core}EnvVar"): {"type": "object", "properties": {"name": s, "value": s}},
        format!("{core}VolumeMount"): {"type": "object", "properties": {"name": s, "mountPath": s, "readOnly": {"type": "boolean"}}},
        format!("{core}Volume"): {"type": "object", "properties": {"name": s,
            "emptyDir": ptr(&format!("{core}EmptyDirVolumeSource")),
            "hostPath": ptr(&format!("{core}HostPathVolumeSource"))}},
        format!("{core}EmptyDirVolumeSource"): {"type": "object", "properties": {"medium": s}},
        format!("{core}HostPathVolumeSource"): {"type": "object", "properties": {"path": s, "type": s}},
        format!("{core}PersistentVolumeClaim"): {"type": "object", "properties": {
            "metadata": r(&format!("{meta}ObjectMeta")), "spec": {"type": "object"}}}
    });
    match defs {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A realistic StatefulSet as stored (defaults applied).
pub(crate) fn web() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "generation": 2,
                     "labels": {"app": "web"}, "finalizers": ["a.example/one", "b.example/two"],
                     "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "o-1"}]},
        "spec": {
            "replicas": 3, "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "nginx"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
                         "args": ["-g", "daemon off;"],
                         "ports": [{"containerPort": 80, "name": "web", "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]},
                        {"name": "sidecar", "image": "busybox:1.36"}
                    ],
                    "volumes": [{"name": "cache", "emptyDir": {}}]
                }
            },
            "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]
        }
    })
}
