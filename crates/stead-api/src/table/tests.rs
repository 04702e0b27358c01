//! Table tests: one realistic object per served resource with hand-checked cells (upstream
//! `printers.go` rules), pod STATUS reasons, and the Table envelope.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::*;
use crate::resource::find;

fn now() -> Timestamp {
    "2025-01-01T12:00:00Z".parse().unwrap()
}

/// Created five minutes before [`now`].
const CREATED: &str = "2025-01-01T11:55:00Z";

fn cells(group: &str, plural: &str, obj: Value) -> Vec<Value> {
    let rt = find(group, "v1", plural).unwrap();
    let t = table(rt, &[&obj], IncludeObject::None, now());
    let n_cols = t["columnDefinitions"].as_array().unwrap().len();
    let cells = t["rows"][0]["cells"].as_array().unwrap().clone();
    assert_eq!(cells.len(), n_cols, "{plural}: one cell per column");
    cells
}

fn column_names(group: &str, plural: &str) -> Vec<(String, u64)> {
    let rt = find(group, "v1", plural).unwrap();
    let t = table(rt, &[], IncludeObject::None, now());
    t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["priority"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {"nodeName": "node1", "containers": [{"name": "nginx", "image": "nginx:1.25"}]},
        "status": status,
    })
}

fn pod_cells(p: Value) -> Vec<Value> {
    cells("", "pods", p)
}

#[test]
fn table_envelope_has_kind_columns_and_partial_metadata_rows() {
    let rt = find("", "v1", "configmaps").unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "uid": "u1", "creationTimestamp": CREATED},
        "data": {"a": "1"}});
    let t = table(rt, &[&cm], IncludeObject::Metadata, now());
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({}));
    let name_col = &t["columnDefinitions"][0];
    assert_eq!(name_col["name"], "Name");
    assert_eq!(name_col["format"], "name");
    assert_eq!(name_col["priority"], 0);
    assert!(
        name_col["description"]
            .as_str()
            .unwrap()
            .starts_with("Name must be unique within a namespace.")
    );
    assert!(
        t["columnDefinitions"][2]["description"]
            .as_str()
            .unwrap()
            .starts_with("CreationTimestamp is a timestamp")
    );
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": cm["metadata"]})
    );
    let full = table(rt, &[&cm], IncludeObject::Object, now());
    assert_eq!(full["rows"][0]["object"], cm);
    let none = table(rt, &[&cm], IncludeObject::None, now());
    assert!(none["rows"][0].get("object").is_none());
    assert_eq!(
        table(rt, &[], IncludeObject::None, now())["rows"],
        json!([])
    );
}

#[test]
fn include_object_parses_like_upstream() {
    assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
    assert_eq!(
        IncludeObject::parse(Some("Object")),
        Ok(IncludeObject::Object)
    );
    assert_eq!(
        IncludeObject::parse(Some("all")),
        Err("unrecognized includeObject value: \"all\"".to_string())
    );
}

#[test]
fn statefulset_shows_ready_over_desired_and_template_containers() {
    assert_eq!(
        column_names("apps", "statefulsets"),
        vec![
            ("Name".into(), 0),
            ("Ready".into(), 0),
            ("Age".into(), 0),
            ("Containers".into(), 1),
            ("Images".into(), 1)
        ]
    );
    let sts = json!({"metadata": {"name": "web", "creationTimestamp": CREATED},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.25"}, {"name": "sidecar", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2}});
    assert_eq!(
        cells("apps", "statefulsets", sts),
        vec![
            json!("web"),
            json!("2/3"),
            json!("5m"),
            json!("nginx,sidecar"),
            json!("nginx:1.25,busybox")
        ]
    );
}

#[test]
fn controllerrevision_names_its_controller_by_group_kind() {
    let rev = json!({"metadata": {"name": "web-7b9c", "creationTimestamp": CREATED,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": true}]},
        "revision": 2});
    assert_eq!(
        cells("apps", "controllerrevisions", rev),
        vec![
            json!("web-7b9c"),
            json!("statefulset.apps/web"),
            json!(2),
            json!("5m")
        ]
    );
    let orphan = json!({"metadata": {"name": "r", "creationTimestamp": CREATED}, "revision": 1});
    assert_eq!(
        cells("apps", "controllerrevisions", orphan)[1],
        json!("<none>")
    );
}

#[test]
fn running_pod_cells_include_wide_columns() {
    let p = pod(json!({"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0, "state": {"running": {}}}]}));
    assert_eq!(
        pod_cells(p),
        vec![
            json!("web-0"),
            json!("1/1"),
            json!("Running"),
            json!("0"),
            json!("5m"),
            json!("10.0.0.5"),
            json!("node1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
    assert_eq!(
        column_names("", "pods")
            .iter()
            .filter(|(_, p)| *p == 1)
            .count(),
        4
    );
}

#[test]
fn pod_restarts_show_time_since_last_termination() {
    let p = pod(json!({"phase": "Running",
        "containerStatuses": [{"name": "nginx", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-01T11:58:00Z"}}}]}));
    let c = pod_cells(p);
    assert_eq!(c[1], json!("0/1"));
    assert_eq!(c[2], json!("CrashLoopBackOff"));
    assert_eq!(c[3], json!("3 (2m ago)"));
}

#[test]
fn pod_status_reasons_follow_upstream_order() {
    // Ref: printers.go printPod
    let waiting = pod(json!({"phase": "Pending",
        "containerStatuses": [{"name": "nginx", "ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
    assert_eq!(pod_cells(waiting)[2], json!("ContainerCreating"));

    let completed = pod(json!({"phase": "Succeeded",
        "containerStatuses": [{"name": "nginx", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
    let rt = find("", "v1", "pods").unwrap();
    let t = table(rt, &[&completed], IncludeObject::None, now());
    assert_eq!(t["rows"][0]["cells"][2], json!("Completed"));
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], json!("Succeeded"));

    let error = pod(json!({"phase": "Failed",
        "containerStatuses": [{"name": "nginx", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}));
    assert_eq!(pod_cells(error)[2], json!("Error"));
    let signal = pod(json!({"phase": "Failed",
        "containerStatuses": [{"name": "nginx", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}));
    assert_eq!(pod_cells(signal)[2], json!("Signal:9"));

    let gated = pod(
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    assert_eq!(pod_cells(gated)[2], json!("SchedulingGated"));

    let mut terminating = pod(json!({"phase": "Running",
        "containerStatuses": [{"name": "nginx", "ready": true, "state": {"running": {}}}]}));
    terminating["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:59:00Z");
    assert_eq!(pod_cells(terminating.clone())[2], json!("Terminating"));
    terminating["status"]["reason"] = json!("NodeLost");
    assert_eq!(pod_cells(terminating)[2], json!("Unknown"));

    let mut finished_deleting = pod(json!({"phase": "Succeeded"}));
    finished_deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:59:00Z");
    assert_eq!(pod_cells(finished_deleting)[2], json!("Succeeded"));
}

#[test]
fn pod_init_containers_report_progress_and_failures() {
    let mut p = pod(json!({"phase": "Pending",
        "initContainerStatuses": [
            {"name": "init-a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "init-b", "state": {"running": {}}}],
        "containerStatuses": [{"name": "nginx", "state": {"waiting": {"reason": "PodInitializing"}}}]}));
    p["spec"]["initContainers"] = json!([{"name": "init-a"}, {"name": "init-b"}]);
    assert_eq!(pod_cells(p.clone())[2], json!("Init:1/2"));

    p["status"]["initContainerStatuses"][1] = json!({"name": "init-b", "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}});
    let c = pod_cells(p.clone());
    assert_eq!(c[2], json!("Init:CrashLoopBackOff"));
    assert_eq!(c[3], json!("4"));

    p["status"]["initContainerStatuses"][1] =
        json!({"name": "init-b", "state": {"terminated": {"exitCode": 3}}});
    assert_eq!(pod_cells(p)[2], json!("Init:ExitCode:3"));
}

#[test]
fn sidecar_init_containers_count_towards_ready() {
    let mut p = pod(json!({"phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
            "state": {"running": {}}}],
        "containerStatuses": [{"name": "nginx", "ready": true, "state": {"running": {}}}]}));
    p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
    let c = pod_cells(p);
    assert_eq!(c[1], json!("2/2"));
    assert_eq!(c[2], json!("Running"));
    assert_eq!(c[3], json!("1"));
}

#[test]
fn services_show_headless_ports_and_external_ips() {
    let headless = json!({"metadata": {"name": "web", "creationTimestamp": CREATED},
        "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
            "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "web"}}});
    assert_eq!(
        cells("", "services", headless),
        vec![
            json!("web"),
            json!("ClusterIP"),
            json!("None"),
            json!("<none>"),
            json!("80/TCP"),
            json!("5m"),
            json!("app=web")
        ]
    );
    let node_port = json!({"metadata": {"name": "np", "creationTimestamp": CREATED},
        "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}]}});
    let c = cells("", "services", node_port);
    assert_eq!(c[2], json!("10.96.0.10"));
    assert_eq!(c[4], json!("80/TCP,443:30443/TCP"));
    assert_eq!(c[6], json!("<none>"));
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"]}});
    let c = cells("", "services", lb);
    assert_eq!(
        (c[3].clone(), c[4].clone(), c[5].clone()),
        (json!("<pending>"), json!("<none>"), json!("<unknown>"))
    );
    let ext = json!({"metadata": {"name": "x"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
    let c = cells("", "services", ext);
    assert_eq!(
        (c[2].clone(), c[3].clone()),
        (json!("<none>"), json!("db.example.com"))
    );
}

#[test]
fn endpoints_and_endpointslices_list_three_then_more() {
    let ep = json!({"metadata": {"name": "web", "creationTimestamp": CREATED}, "subsets": [{
        "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "fd00::4"}],
        "ports": [{"port": 80}]}]});
    assert_eq!(
        cells("", "endpoints", ep)[1],
        json!("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...")
    );
    let v6 = json!({"metadata": {"name": "v6"}, "subsets": [{"addresses": [{"ip": "fd00::4"}], "ports": [{"port": 80}]}]});
    assert_eq!(cells("", "endpoints", v6)[1], json!("[fd00::4]:80"));
    let headless =
        json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
    assert_eq!(cells("", "endpoints", headless)[1], json!("10.0.0.1"));
    assert_eq!(
        cells("", "endpoints", json!({"metadata": {"name": "e"}}))[1],
        json!("<none>")
    );

    let slice = json!({"metadata": {"name": "web-abc", "creationTimestamp": CREATED}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "named"}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", slice),
        vec![
            json!("web-abc"),
            json!("IPv4"),
            json!("80,named"),
            json!("10.0.0.1,10.0.0.2"),
            json!("5m")
        ]
    );
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4"});
    let c = cells("discovery.k8s.io", "endpointslices", empty);
    assert_eq!(
        (c[2].clone(), c[3].clone(), c[4].clone()),
        (json!("<unset>"), json!("<unset>"), json!("<unknown>"))
    );
}

#[test]
fn claims_show_capacity_and_modes_only_when_bound() {
    let bound = json!({"metadata": {"name": "www-web-0", "creationTimestamp": CREATED},
        "spec": {"volumeName": "pv-1", "storageClassName": "standard", "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
    assert_eq!(
        cells("", "persistentvolumeclaims", bound),
        vec![
            json!("www-web-0"),
            json!("Bound"),
            json!("pv-1"),
            json!("1Gi"),
            json!("RWO"),
            json!("standard"),
            json!("<unset>"),
            json!("5m"),
            json!("Filesystem")
        ]
    );
    let mut pending = json!({"metadata": {"name": "c", "creationTimestamp": CREATED,
            "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
        "spec": {"storageClassName": "standard"}, "status": {"phase": "Pending"}});
    let c = cells("", "persistentvolumeclaims", pending.clone());
    assert_eq!(
        c[1..6].to_vec(),
        vec![
            json!("Pending"),
            json!(""),
            json!(""),
            json!(""),
            json!("beta")
        ]
    );
    pending["metadata"]["deletionTimestamp"] = json!(CREATED);
    assert_eq!(
        cells("", "persistentvolumeclaims", pending)[1],
        json!("Terminating")
    );
}

#[test]
fn volumes_show_claim_and_policy() {
    let pv = json!({"metadata": {"name": "pv-1", "creationTimestamp": CREATED},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard", "volumeMode": "Filesystem",
            "claimRef": {"namespace": "default", "name": "www-web-0"}},
        "status": {"phase": "Bound"}});
    assert_eq!(
        cells("", "persistentvolumes", pv),
        vec![
            json!("pv-1"),
            json!("10Gi"),
            json!("RWO,RWX"),
            json!("Retain"),
            json!("Bound"),
            json!("default/www-web-0"),
            json!("standard"),
            json!("<unset>"),
            json!(""),
            json!("5m"),
            json!("Filesystem")
        ]
    );
}

#[test]
fn default_storageclass_gets_a_suffix_and_defaults() {
    let sc = json!({"metadata": {"name": "standard", "creationTimestamp": CREATED,
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "stead.io/hostpath"});
    assert_eq!(
        cells("storage.k8s.io", "storageclasses", sc),
        vec![
            json!("standard (default)"),
            json!("stead.io/hostpath"),
            json!("Delete"),
            json!("Immediate"),
            json!(false),
            json!("5m")
        ]
    );
    let sc = json!({"metadata": {"name": "fast"}, "provisioner": "p", "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true});
    let c = cells("storage.k8s.io", "storageclasses", sc);
    assert_eq!(
        c[..5].to_vec(),
        vec![
            json!("fast"),
            json!("p"),
            json!("Retain"),
            json!("WaitForFirstConsumer"),
            json!(true)
        ]
    );
}

#[test]
fn nodes_show_readiness_roles_and_system_info() {
    let node = json!({"metadata": {"name": "node1", "creationTimestamp": "2024-12-30T12:00:00Z",
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0-stead", "osImage": "Debian GNU/Linux 12", "kernelVersion": "6.1.0",
                "containerRuntimeVersion": ""}}});
    assert_eq!(
        cells("", "nodes", node),
        vec![
            json!("node1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,worker"),
            json!("2d"),
            json!("v1.33.0-stead"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12"),
            json!("6.1.0"),
            json!("<unknown>")
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    let c = cells("", "nodes", bare);
    assert_eq!(
        (c[1].clone(), c[2].clone()),
        (json!("NotReady"), json!("<none>"))
    );
    assert_eq!(
        cells("", "nodes", json!({"metadata": {"name": "n3"}}))[1],
        json!("Unknown")
    );
}

#[test]
fn small_core_kinds_count_their_entries() {
    let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": CREATED}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(
        cells("", "configmaps", cm),
        vec![json!("cfg"), json!(3), json!("5m")]
    );
    let secret = json!({"metadata": {"name": "s", "creationTimestamp": CREATED}, "type": "Opaque", "data": {"k": "dg=="}});
    assert_eq!(
        cells("", "secrets", secret),
        vec![json!("s"), json!("Opaque"), json!(1), json!("5m")]
    );
    let sa = json!({"metadata": {"name": "default", "creationTimestamp": CREATED}});
    assert_eq!(
        cells("", "serviceaccounts", sa),
        vec![json!("default"), json!(0), json!("5m")]
    );
    let ns = json!({"metadata": {"name": "default", "creationTimestamp": CREATED}, "status": {"phase": "Active"}});
    assert_eq!(
        cells("", "namespaces", ns),
        vec![json!("default"), json!("Active"), json!("5m")]
    );
    let lease = json!({"metadata": {"name": "node1", "creationTimestamp": CREATED}, "spec": {"holderIdentity": "node1"}});
    assert_eq!(
        cells("coordination.k8s.io", "leases", lease),
        vec![json!("node1"), json!("node1"), json!("5m")]
    );
}

#[test]
fn core_events_print_object_source_and_counts() {
    assert_eq!(
        column_names("", "events")
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        vec![
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    let ev = json!({"metadata": {"name": "web.1", "namespace": "default", "creationTimestamp": CREATED},
        "involvedObject": {"kind": "StatefulSet", "name": "web", "fieldPath": ""},
        "reason": "SuccessfulCreate", "type": "Normal", "message": " create Pod web-0 in StatefulSet web successful\n",
        "source": {"component": "statefulset-controller"},
        "firstTimestamp": "2025-01-01T11:50:00Z", "lastTimestamp": "2025-01-01T11:59:30Z", "count": 2});
    assert_eq!(
        cells("", "events", ev),
        vec![
            json!("30s"),
            json!("Normal"),
            json!("SuccessfulCreate"),
            json!("statefulset/web"),
            json!(""),
            json!("statefulset-controller"),
            json!("create Pod web-0 in StatefulSet web successful"),
            json!("10m"),
            json!(2),
            json!("web.1")
        ]
    );
    let new_style = json!({"metadata": {"name": "e2"}, "involvedObject": {"kind": "Node"},
        "eventTime": "2025-01-01T11:59:00.123456Z", "reportingComponent": "kubelet", "reportingInstance": "node1"});
    let c = cells("", "events", new_style);
    // 59.876544s truncates to 59s, as Go int(d.Seconds()).
    assert_eq!(c[0], json!("59s"));
    assert_eq!(c[3], json!("node"));
    assert_eq!(c[5], json!("kubelet, node1"));
    assert_eq!(c[8], json!(1));
}

#[test]
fn events_k8s_io_events_use_the_same_printer() {
    let ev = json!({"metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "web-0"},
        "note": "Pulled", "reason": "Pulled", "type": "Normal", "eventTime": "2025-01-01T11:58:00.000000Z",
        "reportingController": "stead-agent", "reportingInstance": "node1",
        "series": {"count": 5, "lastObservedTime": "2025-01-01T11:59:50.000000Z"}});
    let c = cells("events.k8s.io", "events", ev);
    assert_eq!(c[0], json!("10s"));
    assert_eq!(c[3], json!("pod/web-0"));
    assert_eq!(c[5], json!("stead-agent, node1"));
    assert_eq!(c[6], json!("Pulled"));
    assert_eq!(c[7], json!("2m"));
    assert_eq!(c[8], json!(5));
}

#[test]
fn unknown_kinds_get_the_default_table() {
    let rt = crate::resource::ResourceType {
        kind: "Widget",
        group: "example.com",
        ..*find("", "v1", "configmaps").unwrap()
    };
    let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2025-01-01T11:55:00.5Z"}});
    let t = table(&rt, &[&obj], IncludeObject::None, now());
    assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["rows"][0]["cells"], json!(["w", "2025-01-01T11:55:00Z"]));
}

#[test]
fn every_served_resource_has_a_printer() {
    for rt in crate::resource::RESOURCES {
        let t = table(rt, &[], IncludeObject::None, now());
        let first = t["columnDefinitions"][0]["name"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            first == "Name" || first == "Last Seen",
            "{}: {first}",
            rt.plural
        );
        assert!(
            t["columnDefinitions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| !c["description"].as_str().unwrap().is_empty()),
            "{}",
            rt.plural
        );
    }
}
