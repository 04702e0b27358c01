//! The volume controller's pure plans: binding, provisioning, phases, reclaim and protection.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};
use stead_controllers::volume::{Action, EventSource, Snapshot, Target, plan_claim, plan_volume};

fn claim(name: &str, class: Option<&str>, size: &str) -> Value {
    let mut c = json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "resourceVersion": "10", "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                 "volumeMode": "Filesystem"},
        "status": {"phase": "Pending"},
    });
    if let Some(class) = class {
        c["spec"]["storageClassName"] = json!(class);
    }
    c
}

fn volume(name: &str, class: &str, size: &str) -> Value {
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "5",
                     "finalizers": ["kubernetes.io/pv-protection"]},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                 "storageClassName": class, "volumeMode": "Filesystem",
                 "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": format!("/srv/{name}")}},
        "status": {"phase": "Available"},
    })
}

fn class(name: &str, provisioner: &str, mode: &str, reclaim: &str) -> Value {
    json!({"metadata": {"name": name}, "provisioner": provisioner,
           "volumeBindingMode": mode, "reclaimPolicy": reclaim})
}

fn node(name: &str, ready: bool, dir: Option<&str>) -> Value {
    let mut n = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    });
    if let Some(d) = dir {
        n["metadata"]["annotations"] = json!({"stead.io/volumes-dir": d});
    }
    n
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

#[derive(Default)]
struct World {
    snap: Snapshot,
}

impl World {
    fn new() -> Self {
        let mut w = World::default();
        w.class(class(
            "local-path",
            "stead.io/local-path",
            "WaitForFirstConsumer",
            "Delete",
        ));
        w
    }
    fn claim(&mut self, v: Value) -> &mut Self {
        let c: PersistentVolumeClaim = typed(v);
        let key = format!(
            "{}/{}",
            c.metadata.namespace.clone().unwrap(),
            c.metadata.name.clone().unwrap()
        );
        self.snap.claims.insert(key, Arc::new(c));
        self
    }
    fn volume(&mut self, v: Value) -> &mut Self {
        let pv: PersistentVolume = typed(v);
        self.snap
            .volumes
            .insert(pv.metadata.name.clone().unwrap(), Arc::new(pv));
        self
    }
    fn class(&mut self, v: Value) -> &mut Self {
        let c: StorageClass = typed(v);
        self.snap
            .classes
            .insert(c.metadata.name.clone().unwrap(), Arc::new(c));
        self
    }
    fn node(&mut self, v: Value) -> &mut Self {
        let n: Node = typed(v);
        self.snap
            .nodes
            .insert(n.metadata.name.clone().unwrap(), Arc::new(n));
        self
    }
    fn pod(&mut self, v: Value) -> &mut Self {
        let p: Pod = typed(v);
        self.snap.pods.insert(
            format!("default/{}", p.metadata.name.clone().unwrap()),
            Arc::new(p),
        );
        self
    }
    fn plan_claim(&self, name: &str) -> Vec<Action> {
        plan_claim(&self.snap.claims[&format!("default/{name}")], &self.snap)
    }
    fn plan_volume(&self, name: &str) -> Vec<Action> {
        plan_volume(&self.snap.volumes[name], &self.snap)
    }
}

fn claim_target(name: &str) -> Target {
    Target::Claim {
        namespace: "default".into(),
        name: name.into(),
    }
}

fn volume_target(name: &str) -> Target {
    Target::Volume { name: name.into() }
}

fn reasons(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.reason),
            _ => None,
        })
        .collect()
}

fn created(actions: &[Action]) -> Vec<&PersistentVolume> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Create(pv) => Some(&**pv),
            _ => None,
        })
        .collect()
}

fn status_of(actions: &[Action], target: &Target) -> Option<Value> {
    actions.iter().rev().find_map(|a| match a {
        Action::Status { target: t, status } if t == target => Some(status.clone()),
        _ => None,
    })
}

fn patches_of(actions: &[Action], target: &Target) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Patch {
                target: t, patch, ..
            } if t == target => Some(patch.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_wait_for_first_consumer_claim_without_a_selected_node_only_waits() {
    let mut w = World::new();
    w.claim(claim("www", Some("local-path"), "1Gi"))
        .volume(volume("pv-1", "local-path", "5Gi"));
    let actions = w.plan_claim("www");
    assert_eq!(reasons(&actions), vec!["WaitForFirstConsumer"]);
    let Action::Event(ev) = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        ev.message,
        "waiting for first consumer to be created before binding"
    );
    assert!(!ev.warning);
    assert!(created(&actions).is_empty());
    assert!(
        patches_of(&actions, &volume_target("pv-1")).is_empty(),
        "no binding before the scheduler picks a node"
    );
    assert_eq!(
        status_of(&actions, &claim_target("www")),
        None,
        "already Pending"
    );
}

#[test]
fn a_selected_node_gets_a_local_path_volume_under_its_volumes_dir() {
    let mut w = World::new();
    let mut c = claim("www-web-0", Some("local-path"), "1Gi");
    c["metadata"]["annotations"] = json!({"volume.kubernetes.io/selected-node": "n2"});
    w.claim(c)
        .node(node("n1", true, Some("/data/n1")))
        .node(node("n2", true, Some("/data/n2/")));
    let actions = w.plan_claim("www-web-0");
    assert_eq!(
        reasons(&actions),
        vec![
            "ExternalProvisioning",
            "Provisioning",
            "ProvisioningSucceeded"
        ]
    );
    assert_eq!(
        patches_of(&actions, &claim_target("www-web-0")),
        vec![json!({"metadata": {"annotations": {
            "volume.beta.kubernetes.io/storage-provisioner": "stead.io/local-path",
            "volume.kubernetes.io/storage-provisioner": "stead.io/local-path"}}})]
    );
    let pvs = created(&actions);
    assert_eq!(pvs.len(), 1);
    let pv = serde_json::to_value(pvs[0]).unwrap();
    assert_eq!(pv["metadata"]["name"], "pvc-uid-www-web-0");
    assert_eq!(
        pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"],
        "stead.io/local-path"
    );
    assert_eq!(
        pv["spec"]["hostPath"],
        json!({"path": "/data/n2/pvc-uid-www-web-0_default_www-web-0", "type": "DirectoryOrCreate"})
    );
    assert_eq!(pv["spec"]["capacity"], json!({"storage": "1Gi"}));
    assert_eq!(pv["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(pv["spec"]["storageClassName"], "local-path");
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"],
        json!([{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}])
    );
    assert_eq!(pv["spec"]["claimRef"]["uid"], "uid-www-web-0");
    assert_eq!(pv["spec"]["claimRef"]["name"], "www-web-0");
}

#[test]
fn a_node_without_the_annotation_uses_the_default_volumes_dir() {
    let mut w = World::new();
    let mut c = claim("www", Some("local-path"), "1Gi");
    c["metadata"]["annotations"] = json!({"volume.kubernetes.io/selected-node": "unknown"});
    w.claim(c);
    let pv = serde_json::to_value(created(&w.plan_claim("www"))[0]).unwrap();
    assert_eq!(
        pv["spec"]["hostPath"]["path"],
        "/var/lib/stead/volumes/pvc-uid-www_default_www"
    );
}

#[test]
fn an_immediate_class_provisions_on_the_first_ready_node() {
    let mut w = World::new();
    w.class(class(
        "my-storage-class",
        "stead.io/local-path",
        "Immediate",
        "Retain",
    ))
    .claim(claim("www", Some("my-storage-class"), "1Gi"))
    .node(node("a", false, None))
    .node(node("c", true, None))
    .node(node("b", true, None));
    let pv = serde_json::to_value(created(&w.plan_claim("www"))[0]).unwrap();
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
        json!(["b"])
    );
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");

    let mut none_ready = World::new();
    none_ready
        .class(class(
            "my-storage-class",
            "stead.io/local-path",
            "Immediate",
            "Delete",
        ))
        .claim(claim("www", Some("my-storage-class"), "1Gi"))
        .node(node("a", false, None));
    let actions = none_ready.plan_claim("www");
    assert!(created(&actions).is_empty());
    assert_eq!(
        reasons(&actions),
        vec!["ExternalProvisioning", "ProvisioningFailed"]
    );
}

#[test]
fn an_existing_provisioned_volume_is_not_created_twice_but_bound() {
    let mut w = World::new();
    let mut c = claim("www", Some("local-path"), "1Gi");
    c["metadata"]["annotations"] = json!({"volume.kubernetes.io/selected-node": "n1"});
    w.claim(c.clone()).node(node("n1", true, None));
    let pv = serde_json::to_value(created(&w.plan_claim("www"))[0]).unwrap();
    w.volume(pv);
    let actions = w.plan_claim("www");
    assert!(created(&actions).is_empty());
    assert_eq!(
        status_of(&actions, &claim_target("www")).unwrap()["phase"],
        "Bound"
    );
    let claim_patch = &patches_of(&actions, &claim_target("www"))[0];
    assert_eq!(claim_patch["spec"]["volumeName"], "pvc-uid-www");
    assert!(
        patches_of(&actions, &volume_target("pvc-uid-www")).is_empty(),
        "the provisioner already wrote the claimRef"
    );
}

#[test]
fn a_foreign_provisioner_is_announced_and_left_to_provision() {
    // Ref: upstream pv_controller provisionClaim for external provisioners.
    let mut w = World::new();
    w.class(class("ebs", "ebs.csi.aws.com", "Immediate", "Delete"))
        .claim(claim("www", Some("ebs"), "1Gi"));
    let actions = w.plan_claim("www");
    assert_eq!(reasons(&actions), vec!["ExternalProvisioning"]);
    assert!(created(&actions).is_empty());
    let Action::Event(ev) = actions
        .iter()
        .find(|a| matches!(a, Action::Event(_)))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(ev.source, EventSource::Controller);
    assert!(ev.message.starts_with(
        "Waiting for a volume to be created either by the external provisioner 'ebs.csi.aws.com'"
    ));
}

#[test]
fn a_missing_class_and_no_class_are_reported() {
    let mut w = World::new();
    w.claim(claim("gone", Some("nope"), "1Gi"))
        .claim(claim("plain", Some(""), "1Gi"));
    let actions = w.plan_claim("gone");
    assert_eq!(reasons(&actions), vec!["ProvisioningFailed"]);
    let Action::Event(ev) = &actions[0] else {
        panic!()
    };
    assert_eq!(ev.message, "storageclass.storage.k8s.io \"nope\" not found");
    let actions = w.plan_claim("plain");
    let Action::Event(ev) = &actions[0] else {
        panic!()
    };
    assert_eq!(ev.reason, "FailedBinding");
    assert_eq!(
        ev.message,
        "no persistent volumes available for this claim and no storage class is set"
    );
}

#[test]
fn the_smallest_matching_volume_of_the_class_is_bound() {
    // Ref: upstream pv_controller_test "1-2 - noop with no volumes / smallest fitting".
    let mut w = World::new();
    let mut rwx = volume("rwx-only", "", "1Gi");
    rwx["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let mut block = volume("block", "", "1Gi");
    block["spec"]["volumeMode"] = json!("Block");
    let mut taken = volume("taken", "", "1Gi");
    taken["spec"]["claimRef"] = json!({"namespace": "default", "name": "other", "uid": "x"});
    let mut deleting = volume("deleting", "", "1Gi");
    deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    w.claim(claim("www", Some(""), "1Gi"))
        .volume(volume("big", "", "10Gi"))
        .volume(volume("fit", "", "2Gi"))
        .volume(volume("too-small", "", "500Mi"))
        .volume(volume("other-class", "fast", "1Gi"))
        .volume(rwx)
        .volume(block)
        .volume(taken)
        .volume(deleting);
    let actions = w.plan_claim("www");
    assert_eq!(
        actions,
        vec![
            Action::Patch {
                target: volume_target("fit"),
                rv: "5".into(),
                patch: json!({
                    "metadata": {"annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
                    "spec": {"claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                        "namespace": "default", "name": "www", "uid": "uid-www",
                        "resourceVersion": "10"}}}),
            },
            Action::Status {
                target: volume_target("fit"),
                status: json!({"phase": "Bound", "message": null}),
            },
            Action::Patch {
                target: claim_target("www"),
                rv: "10".into(),
                patch: json!({
                    "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes",
                                                 "pv.kubernetes.io/bound-by-controller": "yes"}},
                    "spec": {"volumeName": "fit"}}),
            },
            Action::Status {
                target: claim_target("www"),
                status: json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                               "capacity": {"storage": "2Gi"}}),
            },
        ]
    );
}

#[test]
fn a_selector_limits_the_volumes_a_claim_matches() {
    let mut w = World::new();
    let mut c = claim("www", Some(""), "1Gi");
    c["spec"]["selector"] = json!({"matchLabels": {"tier": "gold"}});
    let mut gold = volume("gold", "", "5Gi");
    gold["metadata"]["labels"] = json!({"tier": "gold"});
    w.claim(c).volume(volume("plain", "", "1Gi")).volume(gold);
    let actions = w.plan_claim("www");
    assert_eq!(
        patches_of(&actions, &claim_target("www"))[0]["spec"]["volumeName"],
        "gold"
    );
}

#[test]
fn a_selected_node_binds_only_volumes_that_node_can_reach() {
    let mut w = World::new();
    let pinned = |name: &str, node: &str| {
        let mut v = volume(name, "local-path", "1Gi");
        v["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}});
        v
    };
    let mut c = claim("www", Some("local-path"), "1Gi");
    c["metadata"]["annotations"] = json!({"volume.kubernetes.io/selected-node": "n1"});
    w.claim(c)
        .node(node("n1", true, None))
        .volume(pinned("elsewhere", "n2"))
        .volume(pinned("here", "n1"));
    let actions = w.plan_claim("www");
    assert_eq!(
        patches_of(&actions, &claim_target("www"))[0]["spec"]["volumeName"],
        "here"
    );
    assert!(created(&actions).is_empty());
}

// Ref: the scheduler's node affinity (`stead-scheduler/src/selector.rs`, upstream
// `nodeaffinity`): `Gt`/`Lt` take exactly one value; fields other than `metadata.name`, or with
// other operators than `In`/`NotIn`, match no node.
#[test]
fn malformed_volume_node_affinity_admits_no_node() {
    let affine = |name: &str, term: Value| {
        let mut v = volume(name, "local-path", "1Gi");
        v["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [term]}});
        v
    };
    let mut n1 = node("n1", true, None);
    n1["metadata"]["labels"]["rank"] = json!("5");
    let selected = || {
        let mut c = claim("www", Some("local-path"), "1Gi");
        c["metadata"]["annotations"] = json!({"volume.kubernetes.io/selected-node": "n1"});
        c
    };
    // The volume the claim is bound to (a volume that does not fit leaves it to provisioning).
    let bound_to = |v: Value| -> Option<String> {
        let mut w = World::new();
        w.claim(selected()).node(n1.clone()).volume(v);
        let actions = w.plan_claim("www");
        patches_of(&actions, &claim_target("www"))
            .iter()
            .find_map(|p| p["spec"]["volumeName"].as_str().map(str::to_string))
    };
    let gt = |values: Value| {
        affine(
            "gt",
            json!({"matchExpressions": [{"key": "rank", "operator": "Gt", "values": values}]}),
        )
    };
    assert_eq!(bound_to(gt(json!(["4"]))).as_deref(), Some("gt"));
    assert_eq!(bound_to(gt(json!(["4", "9"]))), None);
    let field = |key: &str, op: &str| {
        affine(
            "field",
            json!({"matchFields": [{"key": key, "operator": op, "values": ["n1"]}]}),
        )
    };
    assert_eq!(
        bound_to(field("metadata.name", "In")).as_deref(),
        Some("field")
    );
    assert_eq!(bound_to(field("metadata.uid", "NotIn")), None);
    assert_eq!(bound_to(field("metadata.name", "Exists")), None);
}

#[test]
fn a_claim_naming_its_volume_binds_it_without_bound_by_controller_on_the_claim() {
    // Ref: upstream pv_controller_test "2-3 - claim prebound to unbound volume".
    let mut w = World::new();
    let mut c = claim("www", Some(""), "1Gi");
    c["spec"]["volumeName"] = json!("pv-1");
    w.claim(c).volume(volume("pv-1", "", "1Gi"));
    let actions = w.plan_claim("www");
    let claim_patch = &patches_of(&actions, &claim_target("www"))[0];
    assert_eq!(
        claim_patch["metadata"]["annotations"],
        json!({"pv.kubernetes.io/bind-completed": "yes"})
    );
    let volume_patch = &patches_of(&actions, &volume_target("pv-1"))[0];
    assert_eq!(
        volume_patch["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
}

#[test]
fn a_claim_naming_an_unfit_or_taken_volume_stays_pending_with_a_warning() {
    let mut w = World::new();
    let mut small = claim("small", Some(""), "10Gi");
    small["spec"]["volumeName"] = json!("pv-1");
    let mut taken = claim("taken", Some(""), "1Gi");
    taken["spec"]["volumeName"] = json!("pv-2");
    let mut pv2 = volume("pv-2", "", "1Gi");
    pv2["spec"]["claimRef"] = json!({"namespace": "default", "name": "someone", "uid": "u"});
    w.claim(small)
        .claim(taken)
        .volume(volume("pv-1", "", "1Gi"))
        .volume(pv2);
    let actions = w.plan_claim("small");
    let Action::Event(ev) = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        (ev.reason, ev.message.as_str(), ev.warning),
        (
            "VolumeMismatch",
            "Cannot bind to requested volume \"pv-1\": requested PV is too small",
            true
        )
    );
    let actions = w.plan_claim("taken");
    let Action::Event(ev) = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(ev.reason, "FailedBinding");
    assert_eq!(
        ev.message,
        "volume \"pv-2\" already bound to a different claim."
    );
    assert!(patches_of(&actions, &volume_target("pv-2")).is_empty());
}

#[test]
fn a_volume_pre_bound_to_a_claim_by_name_is_bound_to_it() {
    // Ref: upstream pv_controller_test "1-5 - claim binds to volume pre-bound by name".
    let mut w = World::new();
    let mut pv = volume("reserved", "", "1Gi");
    pv["spec"]["claimRef"] = json!({"namespace": "default", "name": "www"});
    w.claim(claim("www", Some(""), "1Gi"))
        .volume(pv)
        .volume(volume("smaller-free", "", "1Gi"));
    let actions = w.plan_claim("www");
    let volume_patch = &patches_of(&actions, &volume_target("reserved"))[0];
    assert!(
        volume_patch.get("metadata").is_none(),
        "a user's pre-binding is not marked bound-by-controller: {volume_patch}"
    );
    assert_eq!(volume_patch["spec"]["claimRef"]["uid"], "uid-www");
    assert_eq!(
        plan_volume(&w.snap.volumes["reserved"], &w.snap),
        vec![],
        "Available already"
    );
}

#[test]
fn a_bound_claim_whose_volume_is_gone_is_lost() {
    let mut w = World::new();
    let mut c = claim("www", Some(""), "1Gi");
    c["metadata"]["annotations"] = json!({"pv.kubernetes.io/bind-completed": "yes"});
    c["spec"]["volumeName"] = json!("vanished");
    c["status"]["phase"] = json!("Bound");
    w.claim(c);
    let actions = w.plan_claim("www");
    assert_eq!(reasons(&actions), vec!["ClaimLost"]);
    assert_eq!(
        status_of(&actions, &claim_target("www")).unwrap()["phase"],
        "Lost"
    );
}

#[test]
fn a_bound_pair_needs_nothing() {
    let mut w = World::new();
    let mut c = claim("www", Some(""), "1Gi");
    c["metadata"]["annotations"] = json!({"pv.kubernetes.io/bind-completed": "yes",
                                          "pv.kubernetes.io/bound-by-controller": "yes"});
    c["spec"]["volumeName"] = json!("pv-1");
    c["status"] =
        json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}});
    let mut pv = volume("pv-1", "", "1Gi");
    pv["spec"]["claimRef"] = json!({"namespace": "default", "name": "www", "uid": "uid-www"});
    pv["status"]["phase"] = json!("Bound");
    w.claim(c).volume(pv);
    assert_eq!(w.plan_claim("www"), vec![]);
    assert_eq!(w.plan_volume("pv-1"), vec![]);
}

fn released_world(policy: &str, provisioned: bool) -> World {
    let mut w = World::new();
    let mut pv = volume("pv-1", "", "1Gi");
    pv["spec"]["claimRef"] = json!({"namespace": "default", "name": "www", "uid": "uid-www"});
    pv["spec"]["persistentVolumeReclaimPolicy"] = json!(policy);
    pv["status"]["phase"] = json!("Bound");
    if provisioned {
        pv["metadata"]["annotations"] =
            json!({"pv.kubernetes.io/provisioned-by": "stead.io/local-path"});
    }
    w.volume(pv);
    w
}

#[test]
fn a_volume_whose_claim_is_gone_is_released_and_reclaimed_by_policy() {
    // Ref: upstream pv_controller_test "4-3 / 8-x": Retain → Released; Delete without a deleter
    // → Failed; provisioned Delete → Released for the provisioner to delete.
    let released = json!({"phase": "Released", "message": null});
    let retain = released_world("Retain", false);
    assert_eq!(
        retain.plan_volume("pv-1"),
        vec![Action::Status {
            target: volume_target("pv-1"),
            status: released.clone()
        }]
    );
    let ours = released_world("Delete", true);
    assert_eq!(
        ours.plan_volume("pv-1"),
        vec![Action::Status {
            target: volume_target("pv-1"),
            status: released.clone()
        }],
        "the node agent deletes local-path volumes, not the controller"
    );
    let manual = released_world("Delete", false);
    let actions = manual.plan_volume("pv-1");
    assert_eq!(reasons(&actions), vec!["VolumeFailedDelete"]);
    assert_eq!(
        status_of(&actions, &volume_target("pv-1")).unwrap()["phase"],
        "Failed"
    );

    // A recreated claim with the same name is another claim.
    let mut recreated = released_world("Retain", false);
    recreated.claim(claim("www", Some(""), "1Gi"));
    let mut c = claim("www", Some(""), "1Gi");
    c["metadata"]["uid"] = json!("new-uid");
    recreated.claim(c);
    assert_eq!(
        status_of(&recreated.plan_volume("pv-1"), &volume_target("pv-1")).unwrap()["phase"],
        "Released"
    );
}

#[test]
fn free_volumes_are_available_and_bound_ones_bound() {
    let mut w = World::new();
    let mut pending = volume("new", "", "1Gi");
    pending["status"]["phase"] = json!("Pending");
    w.volume(pending);
    assert_eq!(
        w.plan_volume("new"),
        vec![Action::Status {
            target: volume_target("new"),
            status: json!({"phase": "Available", "message": null})
        }]
    );
    let mut c = claim("www", Some(""), "1Gi");
    c["spec"]["volumeName"] = json!("pv-1");
    let mut pv = volume("pv-1", "", "1Gi");
    pv["spec"]["claimRef"] = json!({"namespace": "default", "name": "www", "uid": "uid-www"});
    w.claim(c).volume(pv);
    assert_eq!(
        status_of(&w.plan_volume("pv-1"), &volume_target("pv-1")).unwrap()["phase"],
        "Bound"
    );
}

#[test]
fn a_deleted_claim_keeps_its_finalizer_while_a_scheduled_pod_uses_it() {
    // Ref: upstream pvc_protection_controller_test "deleted PVC with finalizer + pod using it".
    let mut w = World::new();
    let mut c = claim("www", Some(""), "1Gi");
    c["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    w.claim(c);
    let user = |name: &str, node: Option<&str>| {
        json!({"metadata": {"name": name, "namespace": "default"},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}],
                        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "www"}}]}})
    };
    w.pod(user("unscheduled", None));
    assert_eq!(
        w.plan_claim("www"),
        vec![Action::Patch {
            target: claim_target("www"),
            rv: "10".into(),
            patch: json!({"metadata": {"finalizers": []}}),
        }],
        "an unscheduled pod does not hold the claim"
    );
    w.pod(user("running", Some("n1")));
    assert_eq!(
        w.plan_claim("www"),
        vec![],
        "held while a scheduled pod uses it"
    );
}

#[test]
fn protection_finalizers_are_added_and_a_volume_keeps_its_own_while_bound() {
    let mut w = World::new();
    let mut c = claim("www", Some(""), "1Gi");
    c["metadata"]["finalizers"] = json!(["example.com/x"]);
    w.claim(c);
    assert_eq!(
        patches_of(&w.plan_claim("www"), &claim_target("www"))[0],
        json!({"metadata": {"finalizers": ["example.com/x", "kubernetes.io/pvc-protection"]}})
    );

    let mut bound = volume("bound", "", "1Gi");
    bound["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    bound["status"]["phase"] = json!("Bound");
    bound["spec"]["claimRef"] = json!({"namespace": "default", "name": "www", "uid": "uid-www"});
    let mut free = volume("free", "", "1Gi");
    free["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    w.volume(bound).volume(free);
    assert!(patches_of(&w.plan_volume("bound"), &volume_target("bound")).is_empty());
    assert_eq!(
        patches_of(&w.plan_volume("free"), &volume_target("free")),
        vec![json!({"metadata": {"finalizers": []}})]
    );
}

#[test]
fn a_claim_created_before_any_default_class_gets_it_later() {
    // Ref: KEP-3333 retroactive default StorageClass assignment.
    let mut w = World::new();
    let mut default = class(
        "local-path",
        "stead.io/local-path",
        "WaitForFirstConsumer",
        "Delete",
    );
    default["metadata"]["annotations"] =
        json!({"storageclass.kubernetes.io/is-default-class": "true"});
    w.class(default).claim(claim("www", None, "1Gi"));
    assert_eq!(
        w.plan_claim("www"),
        vec![Action::Patch {
            target: claim_target("www"),
            rv: "10".into(),
            patch: json!({"spec": {"storageClassName": "local-path"}}),
        }]
    );
}
