//! Tests of the generated documents, the patch extension table and the unknown-field walk.

use serde_json::{Value, json};

use super::extensions::{ATOMIC_TYPES, FIELDS};
use super::*;
use crate::resource::RESOURCES;

fn def(name: &str) -> &'static Value {
    definitions()
        .get(name)
        .unwrap_or_else(|| panic!("definition {name} is missing"))
}

fn prop(def_name: &str, field: &str) -> &'static Value {
    def(def_name)
        .get("properties")
        .and_then(|p| p.get(field))
        .unwrap_or_else(|| panic!("{def_name}.{field} is missing"))
}

fn document(path: &str) -> Value {
    let (bytes, _) = openapi_document(path).expect("document is served");
    serde_json::from_slice(bytes).expect("document is JSON")
}

/// The StatefulSet of `examples/web.yaml`, as kubectl sends it.
fn web_statefulset() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "serviceName": "nginx",
            "replicas": 3,
            "minReadySeconds": 10,
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "nginx",
                        "image": "registry.k8s.io/nginx-slim:0.24",
                        "ports": [{"containerPort": 80, "name": "web"}],
                        "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]
                    }]
                }
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}},
            "volumeClaimTemplates": [{
                "metadata": {"name": "www"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "my-storage-class",
                    "resources": {"requests": {"storage": "1Gi"}}
                }
            }]
        },
        "status": {"replicas": 0, "availableReplicas": 0}
    })
}

#[test]
fn index_lists_every_served_group_version_with_a_hash() {
    let paths = openapi_index()["paths"].as_object().expect("paths object");
    for gv in [
        "api/v1",
        "apis/apps/v1",
        "apis/events.k8s.io/v1",
        "apis/authentication.k8s.io/v1",
        "apis/authorization.k8s.io/v1",
        "apis/storage.k8s.io/v1",
        "apis/coordination.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
    ] {
        let url = paths[gv]["serverRelativeURL"].as_str().expect("url");
        let (_, hash) = openapi_document(gv).expect("document");
        assert_eq!(url, format!("/openapi/v3/{gv}?hash={hash}"));
        assert_eq!(hash.len(), 128, "hex sha512");
    }
    assert_eq!(paths.len(), 8);
    assert!(openapi_document("apis/batch/v1").is_none());
}

#[test]
fn hash_is_the_sha512_of_the_document_bytes() {
    use sha2::{Digest, Sha512};
    let (bytes, hash) = openapi_document("apis/apps/v1").expect("document");
    let expected: String = Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(hash, expected);
    let (_, core_hash) = openapi_document("api/v1").expect("document");
    assert_ne!(hash, core_hash);
}

#[test]
fn document_header_names_kubernetes_and_openapi_3() {
    let doc = document("/apis/apps/v1");
    assert_eq!(doc["openapi"], "3.0.0");
    assert_eq!(doc["info"]["title"], "Kubernetes");
    assert_eq!(doc["info"]["version"], "v1.33.0");
}

// Ref: kubectl-protocol.md §2.3 — kubectl looks for a PATCH operation tagged with the GVK that has
// a `fieldValidation` query parameter, and §2.4 — it uses OpenAPI for SMP only if the PATCH lists
// `application/strategic-merge-patch+json`.
#[test]
fn statefulset_patch_declares_field_validation_and_patch_types() {
    let doc = document("apis/apps/v1");
    let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"]["patch"];
    assert_eq!(
        op["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "StatefulSet", "version": "v1"})
    );
    assert_eq!(op["x-kubernetes-action"], "patch");
    assert_eq!(op["operationId"], "patchAppsV1NamespacedStatefulSet");
    let names: Vec<&str> = op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| {
            assert_eq!(p["in"], "query");
            p["name"].as_str().expect("name")
        })
        .collect();
    assert_eq!(
        names,
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    let content: Vec<&String> = op["requestBody"]["content"]
        .as_object()
        .expect("content")
        .keys()
        .collect();
    assert_eq!(
        content,
        [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json"
        ]
    );
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.StatefulSet"
    );
}

#[test]
fn every_served_kind_has_a_patch_operation_with_field_validation() {
    for r in RESOURCES.iter().filter(|r| !r.is_create_only()) {
        let gv = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}/{}", r.group, r.version)
        };
        let doc = document(&gv);
        let found = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .any(|path| {
                let op = &path["patch"];
                op["x-kubernetes-group-version-kind"]["kind"] == r.kind
                    && op["parameters"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
            });
        assert!(found, "{} {} has no PATCH with fieldValidation", gv, r.kind);
    }
}

#[test]
fn reviews_have_only_a_post_with_the_write_parameters_on_the_path() {
    // Ref: upstream api/openapi-spec/v3 `createAuthorizationV1SelfSubjectAccessReview`.
    let doc = document("apis/authorization.k8s.io/v1");
    let paths = doc["paths"].as_object().expect("paths");
    let ssar = &paths["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"];
    assert_eq!(
        ssar.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["parameters", "post"]
    );
    let post = &ssar["post"];
    assert_eq!(
        post["operationId"],
        "createAuthorizationV1SelfSubjectAccessReview"
    );
    assert_eq!(post["tags"], json!(["authorization_v1"]));
    assert_eq!(
        post["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.authorization.v1.SelfSubjectAccessReview"
    );
    let names: Vec<&str> = ssar["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["dryRun", "fieldManager", "fieldValidation", "pretty"]
    );
    let local =
        &paths["/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews"];
    assert_eq!(
        local["post"]["operationId"],
        "createAuthorizationV1NamespacedLocalSubjectAccessReview"
    );
    assert!(
        !paths.keys().any(|p| p.ends_with("{name}")),
        "reviews have no item paths"
    );
    assert!(
        !paths
            .keys()
            .any(|p| p.ends_with("/localsubjectaccessreviews") && !p.contains("{namespace}")),
        "and no all-namespaces list"
    );
    assert!(definitions().contains_key("io.k8s.api.authorization.v1.ResourceAttributes"));
    assert!(!definitions().contains_key("io.k8s.api.authorization.v1.SelfSubjectAccessReviewList"));
    let whoami = document("apis/authentication.k8s.io/v1");
    assert!(
        whoami["paths"]["/apis/authentication.k8s.io/v1/selfsubjectreviews"]["post"].is_object()
    );
}

#[test]
fn post_and_put_carry_the_write_parameters() {
    let doc = document("api/v1");
    let collection = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"];
    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    for op in [&collection["post"], &item["put"]] {
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["dryRun", "fieldManager", "fieldValidation"]);
    }
    assert_eq!(
        collection["post"]["operationId"],
        "createCoreV1NamespacedPod"
    );
    assert_eq!(collection["get"]["x-kubernetes-action"], "list");
    assert_eq!(
        collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodList"
    );
    assert_eq!(
        doc["paths"]["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
}

#[test]
fn cluster_scoped_kinds_have_no_namespace_in_their_paths() {
    let doc = document("api/v1");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/v1/nodes"));
    assert!(paths.contains_key("/api/v1/nodes/{name}"));
    assert!(paths.contains_key("/api/v1/nodes/{name}/status"));
    assert!(paths.contains_key("/api/v1/namespaces/{name}/finalize"));
    assert!(!paths.keys().any(|p| p.contains("{namespace}/nodes")));
    assert_eq!(
        paths["/api/v1/nodes/{name}"]["get"]["operationId"],
        "readCoreV1Node"
    );
}

#[test]
fn scale_subresource_speaks_autoscaling_v1_scale() {
    let doc = document("apis/apps/v1");
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale"];
    for method in ["get", "put", "patch"] {
        assert_eq!(
            scale[method]["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
        );
    }
    assert_eq!(
        scale["patch"]["operationId"],
        "patchAppsV1NamespacedStatefulSetScale"
    );
    assert_eq!(
        scale["put"]["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas.contains_key("io.k8s.api.autoscaling.v1.Scale"));
    assert!(schemas.contains_key("io.k8s.api.autoscaling.v1.ScaleSpec"));
    let status = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/status"];
    assert_eq!(
        status["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "StatefulSet"
    );
}

#[test]
fn pod_subresources_are_declared_as_upstream() {
    let doc = document("api/v1");
    let paths = &doc["paths"];
    let exec = &paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"];
    assert_eq!(exec["get"]["x-kubernetes-action"], "connect");
    assert_eq!(
        exec["post"]["operationId"],
        "connectCoreV1PostNamespacedPodExec"
    );
    assert_eq!(
        exec["get"]["x-kubernetes-group-version-kind"]["kind"],
        "PodExecOptions"
    );
    let eviction = &paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"];
    assert_eq!(
        eviction["x-kubernetes-group-version-kind"],
        json!({"group": "policy", "kind": "Eviction", "version": "v1"})
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]["operationId"],
        "readCoreV1NamespacedPodLog"
    );
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas.contains_key("io.k8s.api.policy.v1.Eviction"));
    assert!(schemas.contains_key("io.k8s.api.core.v1.Binding"));
}

#[test]
fn documents_hold_exactly_the_schemas_their_paths_reach() {
    let apps = document("apis/apps/v1");
    let schemas = apps["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "io.k8s.api.apps.v1.StatefulSet",
        "io.k8s.api.apps.v1.StatefulSetList",
        "io.k8s.api.apps.v1.ControllerRevision",
        "io.k8s.api.core.v1.PodSpec",
        "io.k8s.api.core.v1.PersistentVolumeClaim",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
    ] {
        assert!(schemas.contains_key(name), "apps/v1 lacks {name}");
    }
    // Kinds of other groups stay out.
    assert!(!schemas.contains_key("io.k8s.api.core.v1.Node"));
    assert!(!schemas.contains_key("io.k8s.api.storage.v1.StorageClass"));
    // Every $ref inside the document resolves inside the document.
    let text = serde_json::to_string(&apps).expect("serializes");
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().expect("name");
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
}

#[test]
fn top_level_kinds_carry_a_gvk_array_and_descriptions() {
    let sts = def("io.k8s.api.apps.v1.StatefulSet");
    assert_eq!(
        sts["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "StatefulSet", "version": "v1"}])
    );
    assert!(
        sts["description"]
            .as_str()
            .expect("description")
            .starts_with("StatefulSet represents")
    );
    assert!(
        sts.get("required").is_none(),
        "metadata is optional upstream"
    );
    assert_eq!(
        def("io.k8s.api.core.v1.Event")["required"],
        json!(["involvedObject", "metadata"])
    );
    // kubectl explain statefulset.spec.updateStrategy walks these refs and descriptions.
    let strategy = prop("io.k8s.api.apps.v1.StatefulSetSpec", "updateStrategy");
    assert_eq!(
        strategy["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.StatefulSetUpdateStrategy"
    );
    assert!(
        strategy["description"]
            .as_str()
            .expect("description")
            .contains("updateStrategy indicates")
    );
    assert!(
        prop(
            "io.k8s.api.apps.v1.StatefulSetUpdateStrategy",
            "rollingUpdate"
        )
        .is_object()
    );
}

#[test]
fn every_served_kind_resolves_to_a_definition_with_its_gvk() {
    for r in RESOURCES {
        let kinds = if r.is_create_only() {
            vec![r.kind]
        } else {
            vec![r.kind, r.list_kind]
        };
        for kind in kinds {
            let name = definition_name(r.group, r.version, kind)
                .unwrap_or_else(|| panic!("{}/{} {kind} has no definition", r.group, r.version));
            let gvks = def(name)["x-kubernetes-group-version-kind"]
                .as_array()
                .expect("gvk array");
            assert!(
                gvks.contains(&json!({"group": r.group, "kind": kind, "version": r.version})),
                "{name} lacks its GVK"
            );
        }
    }
    assert_eq!(
        definition_name("apps", "v1", "StatefulSet"),
        Some("io.k8s.api.apps.v1.StatefulSet")
    );
    assert_eq!(
        definition_name("autoscaling", "v1", "Scale"),
        Some("io.k8s.api.autoscaling.v1.Scale")
    );
    assert_eq!(
        definition_name("events.k8s.io", "v1", "Event"),
        Some("io.k8s.api.events.v1.Event")
    );
    assert_eq!(
        definition_name("", "v1", "Event"),
        Some("io.k8s.api.core.v1.Event")
    );
    assert_eq!(definition_name("apps", "v1", "Deployment"), None);
}

#[test]
fn int_or_string_and_quantity_are_spelled_as_upstream() {
    let ios = def("io.k8s.apimachinery.pkg.util.intstr.IntOrString");
    assert_eq!(ios["format"], "int-or-string");
    assert_eq!(
        ios["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert_eq!(ios["x-kubernetes-int-or-string"], true);
    let time = def("io.k8s.apimachinery.pkg.apis.meta.v1.Time");
    assert_eq!(
        (time["type"].as_str(), time["format"].as_str()),
        (Some("string"), Some("date-time"))
    );
}

// Ref: k8s.io/api core/v1 types.go `Containers []Container patchStrategy:"merge" patchMergeKey:"name"`.
#[test]
fn pod_spec_lists_merge_by_their_upstream_keys() {
    let containers = prop("io.k8s.api.core.v1.PodSpec", "containers");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    let volumes = prop("io.k8s.api.core.v1.PodSpec", "volumes");
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    assert_eq!(volumes["x-kubernetes-patch-merge-key"], "name");
    let spread = prop("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints");
    assert_eq!(spread["x-kubernetes-patch-merge-key"], "topologyKey");
    assert_eq!(
        spread["x-kubernetes-list-map-keys"],
        json!(["topologyKey", "whenUnsatisfiable"])
    );
    assert_eq!(
        prop("io.k8s.api.core.v1.PodSpec", "tolerations")["x-kubernetes-list-type"],
        "atomic"
    );
    assert!(
        prop("io.k8s.api.core.v1.PodSpec", "tolerations")
            .get("x-kubernetes-patch-strategy")
            .is_none()
    );
}

#[test]
fn container_and_service_ports_merge_by_port_number() {
    let ports = prop("io.k8s.api.core.v1.Container", "ports");
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        json!(["containerPort", "protocol"])
    );
    assert_eq!(
        prop("io.k8s.api.core.v1.Container", "env")["x-kubernetes-patch-merge-key"],
        "name"
    );
    assert_eq!(
        prop("io.k8s.api.core.v1.Container", "volumeMounts")["x-kubernetes-patch-merge-key"],
        "mountPath"
    );
    let eph = prop("io.k8s.api.core.v1.EphemeralContainer", "ports");
    assert_eq!(eph["x-kubernetes-patch-merge-key"], "containerPort");
    let svc = prop("io.k8s.api.core.v1.ServiceSpec", "ports");
    assert_eq!(svc["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(svc["x-kubernetes-patch-merge-key"], "port");
    assert_eq!(
        svc["x-kubernetes-list-map-keys"],
        json!(["port", "protocol"])
    );
}

#[test]
fn metadata_and_status_lists_carry_their_strategies() {
    let owners = prop(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
    );
    assert_eq!(owners["x-kubernetes-patch-merge-key"], "uid");
    assert_eq!(owners["x-kubernetes-patch-strategy"], "merge");
    let finalizers = prop(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    );
    assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(finalizers["x-kubernetes-list-type"], "set");
    assert!(finalizers.get("x-kubernetes-patch-merge-key").is_none());
    for (ty, field, key) in [
        ("io.k8s.api.core.v1.PodStatus", "conditions", "type"),
        ("io.k8s.api.core.v1.NodeStatus", "addresses", "type"),
        ("io.k8s.api.core.v1.NodeStatus", "conditions", "type"),
        ("io.k8s.api.core.v1.NamespaceStatus", "conditions", "type"),
        (
            "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
            "conditions",
            "type",
        ),
        ("io.k8s.api.apps.v1.StatefulSetStatus", "conditions", "type"),
        ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", "name"),
        ("io.k8s.api.core.v1.PodSpec", "hostAliases", "ip"),
    ] {
        assert_eq!(
            prop(ty, field)["x-kubernetes-patch-merge-key"],
            key,
            "{ty}.{field}"
        );
    }
    assert_eq!(
        def("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")["x-kubernetes-map-type"],
        "atomic"
    );
    assert_eq!(
        prop("io.k8s.api.core.v1.PodSpec", "nodeSelector")["x-kubernetes-map-type"],
        "atomic"
    );
}

#[test]
fn every_extension_row_names_an_existing_field_of_the_right_shape() {
    for (package, ty, field, ext) in FIELDS {
        let name = format!("{package}{ty}");
        let schema = prop(&name, field);
        if ext.list_type.is_some() || ext.merge_key.is_some() {
            assert_eq!(schema["type"], "array", "{name}.{field} is not a list");
        }
        if let Some(key) = ext.merge_key {
            // The merge key must be a property of the item type.
            let item = schema["items"]["$ref"].as_str().expect("items ref");
            let item = item.trim_start_matches("#/components/schemas/");
            assert!(
                def(item)["properties"].get(key).is_some(),
                "{item} lacks merge key {key}"
            );
        }
    }
    for (package, ty) in ATOMIC_TYPES {
        def(&format!("{package}{ty}"));
    }
}

#[test]
fn a_valid_statefulset_has_no_unknown_fields() {
    let root = definition_name("apps", "v1", "StatefulSet").expect("served");
    assert_eq!(
        unknown_fields(root, &web_statefulset()),
        Vec::<String>::new()
    );
}

// Ref: upstream strict decoding paths, e.g. `unknown field "spec.template.spec.containers[0].redinessProbe"`.
#[test]
fn unknown_fields_are_reported_by_their_paths() {
    let mut sts = web_statefulset();
    sts["spec"]["bogus"] = json!(1);
    sts["spec"]["template"]["spec"]["containers"][0]["redinessProbe"] = json!({"httpGet": {}});
    sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["limitz"] = json!({});
    sts["bogusField"] = json!(true);
    let mut found = unknown_fields("io.k8s.api.apps.v1.StatefulSet", &sts);
    found.sort();
    assert_eq!(
        found,
        [
            "bogusField",
            "spec.bogus",
            "spec.template.spec.containers[0].redinessProbe",
            "spec.volumeClaimTemplates[0].spec.resources.limitz",
        ]
    );
}

#[test]
fn labels_and_annotations_accept_any_key() {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "labels": {"anything/at-all": "1"}, "annotations": {"bogus": "2"}},
        "data": {"whatever": "v"}, "binaryData": {"b": "AAAA"}
    });
    assert!(unknown_fields("io.k8s.api.core.v1.ConfigMap", &cm).is_empty());
    let bad = json!({"metadata": {"name": "x", "labelz": {}}});
    assert_eq!(
        unknown_fields("io.k8s.api.core.v1.ConfigMap", &bad),
        ["metadata.labelz"]
    );
}

#[test]
fn int_or_string_fields_accept_ints_and_strings() {
    for value in [json!(1), json!("25%")] {
        let mut sts = web_statefulset();
        sts["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = value;
        sts["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
            json!({"httpGet": {"port": "web", "path": "/"}, "tcpSocket": {"port": 80}});
        assert!(unknown_fields("io.k8s.api.apps.v1.StatefulSet", &sts).is_empty());
    }
}

#[test]
fn opaque_fields_accept_anything() {
    // ControllerRevision.data is a RawExtension; managedFields[].fieldsV1 is FieldsV1.
    let rev = json!({
        "metadata": {"name": "web-1", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
        "data": {"spec": {"template": {"$patch": "replace", "anything": 1}}},
        "revision": 1
    });
    assert!(unknown_fields("io.k8s.api.apps.v1.ControllerRevision", &rev).is_empty());
}

#[test]
fn prune_removes_exactly_the_unknown_fields() {
    let mut sts = web_statefulset();
    sts["spec"]["bogus"] = json!(1);
    sts["spec"]["template"]["spec"]["containers"][0]["foo"] = json!("bar");
    prune_unknown_fields("io.k8s.api.apps.v1.StatefulSet", &mut sts);
    assert_eq!(sts, web_statefulset());
}

#[test]
fn unknown_roots_report_nothing() {
    assert!(unknown_fields("io.k8s.api.apps.v1.Nope", &json!({"a": 1})).is_empty());
    let mut v = json!({"a": 1});
    prune_unknown_fields("io.k8s.api.apps.v1.Nope", &mut v);
    assert_eq!(v, json!({"a": 1}));
}
