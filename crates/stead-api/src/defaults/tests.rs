//! Defaulting tests: hand-written expected objects for the documented upstream defaults.

use serde_json::{Value, json};

use super::{Features, apply, drop_disabled_fields, pod, prepare_for_create};

fn web_statefulset() -> Value {
    // /work/shared/examples/web.yaml, StatefulSet document, as JSON.
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
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
            "volumeClaimTemplates": [{
                "metadata": {"name": "www"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "my-storage-class",
                    "resources": {"requests": {"storage": "1Gi"}}
                }
            }]
        }
    })
}

#[test]
fn web_statefulset_gets_the_upstream_defaulted_shape() {
    // Ref: statefulset.md §1 items 1-9 (MaxUnavailableStatefulSet on, as the project runs it)
    let mut sts = web_statefulset();
    apply("apps", "StatefulSet", &mut sts, Features::default());
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "replicas": 3,
            "revisionHistoryLimit": 10,
            "minReadySeconds": 10,
            "selector": {"matchLabels": {"app": "nginx"}},
            "serviceName": "nginx",
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "nginx",
                        "image": "registry.k8s.io/nginx-slim:0.24",
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 80, "name": "web", "protocol": "TCP"}],
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]
                    }]
                }
            },
            "volumeClaimTemplates": [{
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"creationTimestamp": null, "name": "www"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "my-storage-class",
                    "resources": {"requests": {"storage": "1Gi"}},
                    "volumeMode": "Filesystem"
                },
                "status": {"phase": "Pending"}
            }]
        },
        "status": {"replicas": 0, "availableReplicas": 0}
    });
    assert_eq!(sts, expected);
    let again = sts.clone();
    apply("apps", "StatefulSet", &mut sts, Features::default());
    assert_eq!(sts, again, "defaulting is idempotent");
}

#[test]
fn explicit_rolling_update_without_struct_stays_nil() {
    // Ref: statefulset.md §1 item 2 (edge)
    let mut sts =
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}, "serviceName": "x"}});
    apply("apps", "StatefulSet", &mut sts, Features::default());
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate"})
    );
    let mut ondelete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
    apply("apps", "StatefulSet", &mut ondelete, Features::default());
    assert_eq!(
        ondelete["spec"]["updateStrategy"],
        json!({"type": "OnDelete"})
    );
}

#[test]
fn max_unavailable_is_not_defaulted_with_the_gate_off_and_dropped_unless_old_used_it() {
    // Ref: statefulset.md §1 item 3, §2.6
    let off = Features {
        max_unavailable_statefulset: false,
    };
    let mut sts = json!({"spec": {}});
    apply("apps", "StatefulSet", &mut sts, off);
    assert_eq!(
        sts["spec"]["updateStrategy"]["rollingUpdate"],
        json!({"partition": 0})
    );
    let mut new = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 0}}}});
    drop_disabled_fields("apps", "StatefulSet", &mut new, None, off);
    assert_eq!(
        new["spec"]["updateStrategy"]["rollingUpdate"],
        json!({"partition": 0})
    );
    let old = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}}});
    let mut kept = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 3}}}});
    drop_disabled_fields("apps", "StatefulSet", &mut kept, Some(&old), off);
    assert_eq!(
        kept["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        3
    );
}

#[test]
fn pods_get_pod_only_defaults_and_templates_do_not() {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{
            "name": "c", "image": "busybox",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            "readinessProbe": {"httpGet": {"port": 80}},
            "livenessProbe": {"grpc": {"port": 9000}},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
        }],
        "volumes": [
            {"name": "a"},
            {"name": "b", "configMap": {"name": "cm"}},
            {"name": "c", "hostPath": {"path": "/x"}},
            {"name": "d", "secret": {"secretName": "s"}}
        ]
    }});
    apply("", "Pod", &mut p, Features::default());
    let c = &p["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    assert_eq!(
        c["readinessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        c["livenessProbe"]["grpc"],
        json!({"port": 9000, "service": ""})
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"],
        json!({"apiVersion": "v1", "fieldPath": "metadata.name"})
    );
    assert_eq!(p["spec"]["enableServiceLinks"], true);
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 30);
    let vols = &p["spec"]["volumes"];
    assert_eq!(vols[0], json!({"name": "a", "emptyDir": {}}));
    assert_eq!(vols[1]["configMap"]["defaultMode"], 420);
    assert_eq!(vols[2]["hostPath"], json!({"path": "/x", "type": ""}));
    assert_eq!(vols[3]["secret"]["defaultMode"], 420);

    prepare_for_create("", "Pod", &mut p);
    assert_eq!(
        p["status"],
        json!({"phase": "Pending", "qosClass": "Guaranteed"})
    );
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert_eq!(p["spec"]["serviceAccount"], "default");

    let mut sts = web_statefulset();
    apply("apps", "StatefulSet", &mut sts, Features::default());
    assert!(
        sts["spec"]["template"]["spec"]
            .get("enableServiceLinks")
            .is_none()
    );
}

#[test]
fn image_pull_policy_follows_the_tag() {
    assert_eq!(pod::image_pull_policy("nginx"), "Always");
    assert_eq!(pod::image_pull_policy("nginx:latest"), "Always");
    assert_eq!(pod::image_pull_policy("nginx:1.25"), "IfNotPresent");
    assert_eq!(pod::image_pull_policy("localhost:5000/app"), "Always");
    assert_eq!(
        pod::image_pull_policy("localhost:5000/app:v1"),
        "IfNotPresent"
    );
    assert_eq!(pod::image_pull_policy("nginx@sha256:abcd"), "IfNotPresent");
    assert_eq!(pod::image_pull_policy("Nginx"), "IfNotPresent");
}

#[test]
fn qos_classes_follow_requests_and_limits() {
    assert_eq!(
        pod::qos_class(&json!({"containers": [{"name": "a"}]})),
        "BestEffort"
    );
    assert_eq!(
        pod::qos_class(&json!({"containers": [{"resources": {"requests": {"cpu": "100m"}}}]})),
        "Burstable"
    );
}

#[test]
fn services_get_type_affinity_ports_and_families() {
    let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx"},
        "spec": {"ports": [{"port": 80, "name": "web"}], "clusterIP": "None", "selector": {"app": "nginx"}}});
    apply("", "Service", &mut svc, Features::default());
    assert_eq!(
        svc["spec"],
        json!({
            "ports": [{"port": 80, "name": "web", "protocol": "TCP", "targetPort": 80}],
            "clusterIP": "None",
            "selector": {"app": "nginx"},
            "sessionAffinity": "None",
            "type": "ClusterIP",
            "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv4"]
        })
    );
    let mut np = json!({"spec": {"type": "NodePort", "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": "http"}]}});
    apply("", "Service", &mut np, Features::default());
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(
        np["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    assert_eq!(np["spec"]["ports"][0]["targetPort"], "http");
}

#[test]
fn storage_namespace_and_secret_defaults() {
    let mut sc = json!({"provisioner": "rancher.io/local-path"});
    apply(
        "storage.k8s.io",
        "StorageClass",
        &mut sc,
        Features::default(),
    );
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(sc["volumeBindingMode"], "Immediate");
    let mut pv = json!({"spec": {}});
    apply("", "PersistentVolume", &mut pv, Features::default());
    assert_eq!(
        pv,
        json!({"spec": {"persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}})
    );
    let mut ns = json!({"metadata": {"name": "team"}});
    apply("", "Namespace", &mut ns, Features::default());
    prepare_for_create("", "Namespace", &mut ns);
    assert_eq!(
        ns,
        json!({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    );
    let mut secret = json!({"stringData": {"user": "admin"}, "data": {"k": "dg=="}});
    apply("", "Secret", &mut secret, Features::default());
    assert_eq!(
        secret,
        json!({"type": "Opaque", "data": {"k": "dg==", "user": "YWRtaW4="}})
    );
}
