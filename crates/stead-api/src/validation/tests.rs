//! Validation tests: upstream messages, rendered as kubectl shows them.

use serde_json::{Value, json};

use super::{validate_create, validate_name, validate_status_update, validate_update};
use crate::defaults::{self, Features};

fn msgs(errs: &[crate::FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

/// The web.yaml StatefulSet, defaulted, in namespace `default`.
fn web() -> Value {
    let mut sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "serviceName": "nginx", "replicas": 3, "minReadySeconds": 10,
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    });
    defaults::apply("apps", "StatefulSet", &mut sts, Features::default());
    sts
}

fn sts_create(f: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut sts = web();
    f(&mut sts);
    msgs(&validate_create(
        "apps",
        "StatefulSet",
        &sts,
        Features::default(),
    ))
}

#[test]
fn the_defaulted_web_statefulset_is_valid() {
    assert_eq!(sts_create(|_| {}), Vec::<String>::new());
}

#[test]
fn statefulset_names_must_be_dns_labels() {
    // Ref: statefulset.md §2.1 item 1
    let errs = sts_create(|s| s["metadata"]["name"] = json!("web.v1"));
    assert_eq!(
        errs,
        vec!["metadata.name: Invalid value: \"web.v1\": must not contain dots"]
    );
    let errs = sts_create(|s| {
        s["metadata"]["name"] = json!("");
        s["metadata"]["generateName"] = json!("web-");
    });
    assert_eq!(
        errs,
        vec!["metadata.name: Required value: name or generateName is required"]
    );
}

#[test]
fn pod_management_policy_is_required_and_enumerated() {
    // Ref: statefulset.md §2.1 item 2
    assert_eq!(
        sts_create(|s| s["spec"]["podManagementPolicy"] = json!("")),
        vec!["spec.podManagementPolicy: Required value"]
    );
    assert_eq!(
        sts_create(|s| s["spec"]["podManagementPolicy"] = json!("Burst")),
        vec![
            "spec.podManagementPolicy: Invalid value: \"Burst\": must be 'OrderedReady' or 'Parallel'"
        ]
    );
}

#[test]
fn update_strategy_type_rules() {
    // Ref: statefulset.md §2.1 item 3
    assert_eq!(
        sts_create(|s| s["spec"]["updateStrategy"] = json!({"type": ""})),
        vec!["spec.updateStrategy: Required value"]
    );
    let errs = sts_create(|s| s["spec"]["updateStrategy"]["type"] = json!("OnDelete"));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec.updateStrategy.rollingUpdate: Invalid value: "));
    assert!(errs[0].ends_with(": only allowed for updateStrategy 'RollingUpdate'"));
    let errs = sts_create(|s| s["spec"]["updateStrategy"] = json!({"type": "Foo"}));
    assert_eq!(
        errs,
        vec![
            "spec.updateStrategy: Invalid value: {\"type\":\"Foo\"}: must be 'RollingUpdate' or 'OnDelete'"
        ]
    );
}

#[test]
fn rolling_update_partition_and_max_unavailable_rules() {
    // Ref: statefulset.md §2.1 item 4
    let ru = |v: Value| sts_create(move |s| s["spec"]["updateStrategy"]["rollingUpdate"] = v);
    assert_eq!(
        ru(json!({"partition": -1, "maxUnavailable": 1})),
        vec![
            "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"
        ]
    );
    assert_eq!(
        ru(json!({"partition": 9, "maxUnavailable": 1})),
        Vec::<String>::new()
    );
    assert_eq!(
        ru(json!({"partition": 0, "maxUnavailable": 0})),
        vec!["spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0"]
    );
    assert_eq!(
        ru(json!({"partition": 0, "maxUnavailable": "0%"})),
        vec![
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": cannot be 0"
        ]
    );
    assert_eq!(
        ru(json!({"partition": 0, "maxUnavailable": "150%"})),
        vec![
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%"
        ]
    );
    assert_eq!(
        ru(json!({"partition": 0, "maxUnavailable": "x%"})),
        vec![
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"x%\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"x%\": cannot be 0",
        ]
    );
    assert_eq!(
        ru(json!({"partition": 0, "maxUnavailable": -2})),
        vec![
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: -2: must be greater than or equal to 0"
        ]
    );
    // Ref: statefulset.md §2.6: with the gate off, a bad value is not reported at all.
    let mut sts = web();
    sts["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = json!(0);
    let off = Features {
        max_unavailable_statefulset: false,
    };
    assert!(validate_create("apps", "StatefulSet", &sts, off).is_empty());
}

#[test]
fn retention_policy_values_are_retain_or_delete() {
    // Ref: statefulset.md §2.1 item 5
    assert_eq!(
        sts_create(
            |s| s["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] = json!("Keep")
        ),
        vec![
            "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\""
        ]
    );
}

#[test]
fn counts_must_be_non_negative() {
    // Ref: statefulset.md §2.1 item 6
    let errs = sts_create(|s| {
        s["spec"]["replicas"] = json!(-1);
        s["spec"]["minReadySeconds"] = json!(-5);
        s["spec"]["ordinals"] = json!({"start": -2});
    });
    assert_eq!(
        errs,
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0",
            "spec.ordinals.start: Invalid value: -2: must be greater than or equal to 0",
        ]
    );
}

#[test]
fn selector_is_required_non_empty_and_must_match_the_template() {
    // Ref: statefulset.md §2.1 items 7-8
    let errs = sts_create(|s| {
        s["spec"].as_object_mut().unwrap().remove("selector");
    });
    assert_eq!(errs[0], "spec.selector: Required value");
    // A nil selector selects nothing, so upstream also reports the label mismatch.
    assert_eq!(
        errs[1],
        "spec.template.metadata.labels: Invalid value: {\"app\":\"nginx\"}: `selector` does not match template `labels`"
    );
    let errs = sts_create(|s| s["spec"]["selector"] = json!({}));
    assert_eq!(
        errs,
        vec!["spec.selector: Invalid value: {}: empty selector is invalid for statefulset"]
    );
    let errs = sts_create(|s| s["spec"]["selector"] = json!({"matchLabels": {"app": "other"}}));
    assert_eq!(
        errs,
        vec![
            "spec.template.metadata.labels: Invalid value: {\"app\":\"nginx\"}: `selector` does not match template `labels`"
        ]
    );
    let errs = sts_create(|s| s["spec"]["template"]["metadata"]["labels"]["bad key!"] = json!("x"));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        "spec.template.labels: Invalid value: \"bad key!\": name part must consist of"
    ));
}

#[test]
fn template_restart_policy_and_deadline_rules() {
    // Ref: statefulset.md §2.1 items 9-10
    assert_eq!(
        sts_create(|s| s["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure")),
        vec![
            "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\""
        ]
    );
    assert_eq!(
        sts_create(|s| s["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5)),
        vec![
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in StatefulSet is not Supported"
        ]
    );
}

#[test]
fn the_rest_of_the_template_and_claim_templates_are_not_validated() {
    // Ref: statefulset.md §2.1 item 11
    let errs = sts_create(|s| {
        s["spec"]["template"]["spec"]["containers"] = json!([{"name": "Bad_Name"}]);
        s["spec"]["volumeClaimTemplates"][0]["spec"] = json!({});
        s["spec"]["serviceName"] = json!("Not A DNS Name");
        s["spec"]["revisionHistoryLimit"] = json!(-1);
    });
    assert_eq!(errs, Vec::<String>::new());
}

fn sts_update(f: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut old = web();
    old["metadata"]["resourceVersion"] = json!("7");
    old["metadata"]["uid"] = json!("u");
    let mut new = old.clone();
    f(&mut new);
    msgs(&validate_update(
        "apps",
        "StatefulSet",
        &new,
        &old,
        Features::default(),
    ))
}

#[test]
fn mutable_spec_fields_may_change_on_update() {
    // Ref: statefulset.md §2.2 item 3
    let errs = sts_update(|s| {
        s["spec"]["replicas"] = json!(5);
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        s["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        s["spec"]["minReadySeconds"] = json!(0);
        s["spec"]["ordinals"] = json!({"start": 3});
        s["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] = json!("Delete");
    });
    assert_eq!(errs, Vec::<String>::new());
}

#[test]
fn other_spec_fields_are_immutable_with_one_error() {
    // Ref: statefulset.md §2.2 item 3
    let forbidden = "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";
    for change in [
        json!({"serviceName": "other"}),
        json!({"revisionHistoryLimit": 3}),
        json!({"podManagementPolicy": "Parallel"}),
    ] {
        let errs = sts_update(|s| {
            for (k, v) in change.as_object().unwrap() {
                s["spec"][k] = v.clone();
            }
        });
        assert_eq!(errs, vec![forbidden], "changing {change}");
    }
    let errs = sts_update(|s| {
        s["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
            json!("2Gi")
    });
    assert_eq!(errs, vec![forbidden]);
}

#[test]
fn update_does_not_revalidate_the_name_but_keeps_it_immutable() {
    // Ref: statefulset.md §2.1 item 1, §2.2 item 1
    let mut old = web();
    old["metadata"]["name"] = json!("web.old");
    old["metadata"]["resourceVersion"] = json!("1");
    let new = old.clone();
    assert!(validate_update("apps", "StatefulSet", &new, &old, Features::default()).is_empty());
    let errs = sts_update(|s| s["metadata"]["name"] = json!("web2"));
    assert_eq!(
        errs,
        vec!["metadata.name: Invalid value: \"web2\": field is immutable"]
    );
}

#[test]
fn status_updates_check_counters() {
    // Ref: statefulset.md §2.3
    let mut old = web();
    old["metadata"]["resourceVersion"] = json!("1");
    old["status"] = json!({"replicas": 3, "availableReplicas": 0, "collisionCount": 2});
    let mut new = old.clone();
    new["status"] = json!({"replicas": 2, "readyReplicas": 3, "availableReplicas": 3, "collisionCount": 1, "observedGeneration": -1});
    assert_eq!(
        msgs(&validate_status_update("apps", "StatefulSet", &new, &old)),
        vec![
            "status.observedGeneration: Invalid value: -1: must be greater than or equal to 0",
            "status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas",
            "status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas",
            "status.collisionCount: Invalid value: 1: cannot be decremented",
        ]
    );
}

#[test]
fn name_rules_per_kind() {
    let label = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    assert_eq!(
        validate_name("apps", "StatefulSet", "Web", false),
        vec![label]
    );
    assert_eq!(validate_name("", "Namespace", "Team", false), vec![label]);
    assert_eq!(validate_name("", "Service", "1svc", false).len(), 1);
    assert!(validate_name("", "Pod", "web-0.x", false).is_empty());
    assert!(validate_name("", "ConfigMap", "kube-root-ca.crt", false).is_empty());
    assert!(validate_name("apps", "StatefulSet", "web-", true).is_empty());
}

fn pod(spec: Value) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec});
    defaults::apply("", "Pod", &mut p, Features::default());
    p
}

#[test]
fn pod_spec_essentials_use_upstream_messages() {
    let p = pod(json!({"containers": []}));
    assert_eq!(
        msgs(&validate_create("", "Pod", &p, Features::default())),
        vec!["spec.containers: Required value"]
    );
    let p = pod(json!({
        "containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 70000}], "volumeMounts": [{"name": "missing", "mountPath": "/m"}]},
            {"name": "a", "image": ""}
        ],
        "restartPolicy": "Sometimes",
        "volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}]
    }));
    assert_eq!(
        msgs(&validate_create("", "Pod", &p, Features::default())),
        vec![
            "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].volumeMounts[0].name: Invalid value: \"missing\": not found",
            "spec.containers[1].name: Duplicate value: \"a\"",
            "spec.containers[1].image: Required value",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        ]
    );
}

#[test]
fn pod_updates_may_only_change_images_and_a_few_fields() {
    let mut old = pod(json!({"containers": [{"name": "a", "image": "x:1"}]}));
    old["metadata"]["resourceVersion"] = json!("1");
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("x:2");
    assert!(validate_update("", "Pod", &new, &old, Features::default()).is_empty());
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    let errs = msgs(&validate_update("", "Pod", &new, &old, Features::default()));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
    ));
}

fn service(spec: Value) -> Value {
    let mut s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": "default"}, "spec": spec});
    defaults::apply("", "Service", &mut s, Features::default());
    s
}

#[test]
fn service_ports_and_types() {
    assert!(
        validate_create(
            "",
            "Service",
            &service(json!({"clusterIP": "None", "selector": {"app": "x"}})),
            Features::default()
        )
        .is_empty()
    );
    assert_eq!(
        msgs(&validate_create(
            "",
            "Service",
            &service(json!({"selector": {"app": "x"}})),
            Features::default()
        )),
        vec!["spec.ports: Required value"]
    );
    let s = service(json!({"type": "Magic", "ports": [{"port": 80}, {"port": 0, "name": "b"}]}));
    assert_eq!(
        msgs(&validate_create("", "Service", &s, Features::default())),
        vec![
            "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            "spec.ports[0].name: Required value",
            "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        ]
    );
}

#[test]
fn service_cluster_ip_may_not_change() {
    let mut old = service(
        json!({"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ports": [{"port": 80}]}),
    );
    old["metadata"]["resourceVersion"] = json!("1");
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("None");
    new["spec"]["clusterIPs"] = json!(["None"]);
    assert_eq!(
        msgs(&validate_update(
            "",
            "Service",
            &new,
            &old,
            Features::default()
        )),
        vec!["spec.clusterIPs[0]: Invalid value: [\"None\"]: may not change once set"]
    );
}

#[test]
fn claims_need_access_modes_and_storage_and_are_immutable() {
    let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "www-web-0", "namespace": "default"}, "spec": {}});
    defaults::apply("", "PersistentVolumeClaim", &mut pvc, Features::default());
    assert_eq!(
        msgs(&validate_create(
            "",
            "PersistentVolumeClaim",
            &pvc,
            Features::default()
        )),
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value",
        ]
    );
    pvc["spec"]["accessModes"] = json!(["ReadWriteOnce"]);
    pvc["spec"]["resources"] = json!({"requests": {"storage": "1Gi"}});
    pvc["metadata"]["resourceVersion"] = json!("1");
    let mut new = pvc.clone();
    new["spec"]["storageClassName"] = json!("fast");
    new["spec"]["volumeName"] = json!("pv-1");
    // A first storageClassName and volumeName are allowed.
    assert!(
        validate_update("", "PersistentVolumeClaim", &new, &pvc, Features::default()).is_empty()
    );
    let mut changed = new.clone();
    changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    assert_eq!(
        msgs(&validate_update(
            "",
            "PersistentVolumeClaim",
            &changed,
            &new,
            Features::default()
        )),
        vec![
            "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
        ]
    );
}

#[test]
fn storage_classes_fix_their_provisioner() {
    let mut old = json!({"metadata": {"name": "local-path", "resourceVersion": "1"}, "provisioner": "rancher.io/local-path"});
    defaults::apply(
        "storage.k8s.io",
        "StorageClass",
        &mut old,
        Features::default(),
    );
    assert!(
        validate_create("storage.k8s.io", "StorageClass", &old, Features::default()).is_empty()
    );
    let mut new = old.clone();
    new["provisioner"] = json!("x.io/y");
    assert_eq!(
        msgs(&validate_update(
            "storage.k8s.io",
            "StorageClass",
            &new,
            &old,
            Features::default()
        )),
        vec!["provisioner: Forbidden: updates to provisioner are forbidden."]
    );
}

#[test]
fn config_maps_check_keys_and_immutability() {
    let cm = json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"bad/key": "v"}});
    assert_eq!(
        msgs(&validate_create("", "ConfigMap", &cm, Features::default())),
        vec![
            "data[bad/key]: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        ]
    );
    let old = json!({"metadata": {"name": "c", "namespace": "d", "resourceVersion": "1"}, "data": {"a": "1"}, "immutable": true});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    assert_eq!(
        msgs(&validate_update(
            "",
            "ConfigMap",
            &new,
            &old,
            Features::default()
        )),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
}

#[test]
fn secret_type_is_immutable_and_endpoint_slices_need_an_address_type() {
    let old = json!({"metadata": {"name": "s", "namespace": "d", "resourceVersion": "1"}, "type": "Opaque"});
    let mut new = old.clone();
    new["type"] = json!("kubernetes.io/basic-auth");
    new["data"] = json!({"username": "YQ=="});
    assert_eq!(
        msgs(&validate_update(
            "",
            "Secret",
            &new,
            &old,
            Features::default()
        )),
        vec!["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"]
    );
    let slice = json!({"metadata": {"name": "s", "namespace": "d"}, "endpoints": []});
    assert_eq!(
        msgs(&validate_create(
            "discovery.k8s.io",
            "EndpointSlice",
            &slice,
            Features::default()
        )),
        vec!["addressType: Required value"]
    );
}
