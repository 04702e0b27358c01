//! Volume binding: missing and unbound claims, bound volumes' node affinity, and
//! WaitForFirstConsumer claims (pure: no server).

mod support;

use serde_json::json;
use support::*;

fn two_nodes() -> Vec<serde_json::Value> {
    vec![small_node("a"), small_node("b")]
}

#[test]
fn a_missing_claim_stops_the_pod_on_every_node() {
    let s = snapshot_with_storage(two_nodes(), vec![], vec![], vec![], vec![]);
    let p = with_claim(pod("p", json!({}), json!({})), "data");
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/2 nodes are available: persistentvolumeclaim \"data\" not found. preemption: 0/2 \
         nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn an_unbound_claim_of_an_immediate_class_makes_the_pod_wait() {
    let s = snapshot_with_storage(
        two_nodes(),
        vec![],
        vec![claim("data", "fast", None)],
        vec![],
        vec![class("fast", "Immediate")],
    );
    let p = with_claim(pod("p", json!({}), json!({})), "data");
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: \
         0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn a_bound_claim_pins_the_pod_to_its_volumes_node() {
    let s = snapshot_with_storage(
        two_nodes(),
        vec![],
        vec![claim("data", "local", Some("pv-b"))],
        vec![local_volume("pv-b", "b")],
        vec![class("local", "WaitForFirstConsumer")],
    );
    let p = with_claim(pod("p", json!({}), json!({})), "data");
    assert_eq!(place(&p, &s), Ok("b".into()));
    let mut nodes = two_nodes();
    nodes[1]["spec"]["unschedulable"] = json!(true);
    let s = snapshot_with_storage(
        nodes,
        vec![],
        vec![claim("data", "local", Some("pv-b"))],
        vec![local_volume("pv-b", "b")],
        vec![],
    );
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/2 nodes are available: 1 node(s) had volume node affinity conflict, 1 node(s) were \
         unschedulable. preemption: 0/2 nodes are available: 2 Preemption is not helpful for \
         scheduling."
    );
}

#[test]
fn a_claim_bound_to_a_missing_volume_fits_nowhere() {
    let s = snapshot_with_storage(
        two_nodes(),
        vec![],
        vec![claim("data", "local", Some("gone"))],
        vec![],
        vec![],
    );
    let p = with_claim(pod("p", json!({}), json!({})), "data");
    assert!(place(&p, &s).unwrap_err().starts_with(
        "0/2 nodes are available: 2 node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)."
    ));
}

#[test]
fn an_unbound_wait_for_first_consumer_claim_fits_any_node_until_one_is_selected() {
    let wffc = class("local-path", "WaitForFirstConsumer");
    let s = snapshot_with_storage(
        two_nodes(),
        vec![bound(pod("x", json!({"cpu": "2"}), json!({})), "a")],
        vec![claim("data", "local-path", None)],
        vec![],
        vec![wffc.clone()],
    );
    let p = with_claim(pod("p", json!({}), json!({})), "data");
    assert_eq!(
        place(&p, &s),
        Ok("b".into()),
        "the emptier node, volumes aside"
    );
    let typed_pod: k8s_openapi::api::core::v1::Pod = typed(p.clone());
    let claims = stead_scheduler::volumes::pod_claims(&typed_pod, &s).unwrap();
    assert_eq!(
        claims.delayed.len(),
        1,
        "the claim is the provisioner's to create"
    );
    // Once a node was selected for the claim, only that node fits.
    let mut selected = claim("data", "local-path", None);
    selected["metadata"]["annotations"] = json!({"volume.kubernetes.io/selected-node": "a"});
    let s = snapshot_with_storage(
        two_nodes(),
        vec![bound(pod("x", json!({"cpu": "2"}), json!({})), "a")],
        vec![selected],
        vec![],
        vec![wffc],
    );
    assert_eq!(place(&p, &s), Ok("a".into()));
}

#[test]
fn a_class_with_allowed_topologies_limits_where_a_claim_can_be_provisioned() {
    let mut c = class("zonal", "WaitForFirstConsumer");
    c["allowedTopologies"] =
        json!([{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["b"]}]}]);
    let s = snapshot_with_storage(
        two_nodes(),
        vec![],
        vec![claim("data", "zonal", None)],
        vec![],
        vec![c],
    );
    let p = with_claim(pod("p", json!({}), json!({})), "data");
    assert_eq!(place(&p, &s), Ok("b".into()));
}

#[test]
fn a_generic_ephemeral_volume_waits_for_its_claim() {
    let s = snapshot_with_storage(two_nodes(), vec![], vec![], vec![], vec![]);
    let mut p = pod("p", json!({}), json!({}));
    p["spec"]["volumes"] = json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}]);
    assert!(place(&p, &s).unwrap_err().starts_with(
        "0/2 nodes are available: waiting for ephemeral volume controller to create the persistentvolumeclaim \"p-scratch\"."
    ));
}
