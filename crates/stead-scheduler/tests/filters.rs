//! Every filter and upstream's unschedulable message, over several nodes (pure: no server).

mod support;

use serde_json::json;
use support::*;

// Ref: upstream FitError.Error() and the default preemption plugin's message.
#[test]
fn message_counts_reasons_per_node_sorted_like_upstream() {
    let s = snapshot(
        vec![
            node("a", "1", "8Gi", 110, json!({"disk": "hdd"})),
            node("b", "1", "8Gi", 110, json!({"disk": "ssd"})),
            node("c", "1", "8Gi", 110, json!({"disk": "ssd"})),
        ],
        vec![],
    );
    let p = with_spec(
        pod("p", json!({"cpu": "2"}), json!({})),
        "nodeSelector",
        json!({"disk": "ssd"}),
    );
    // a: selector; b, c: 2 cpu asked of 1-core nodes (no eviction can help).
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
         2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful \
         for scheduling."
    );
}

#[test]
fn resources_used_by_other_pods_leave_room_for_preemption_in_the_message() {
    let s = snapshot(
        vec![small_node("a"), small_node("b")],
        vec![
            bound(pod("x", json!({"cpu": "3"}), json!({})), "a"),
            bound(
                pod("y", json!({"cpu": "3500m", "memory": "7Gi"}), json!({})),
                "b",
            ),
        ],
    );
    let p = pod("p", json!({"cpu": "2", "memory": "2Gi"}), json!({}));
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu. preemption: 0/2 \
         nodes are available: 2 No preemption victims found for incoming pod."
    );
}

#[test]
fn requests_count_init_containers_by_their_maximum_and_add_the_overhead() {
    let s = snapshot(vec![node("a", "2", "8Gi", 110, json!({}))], vec![]);
    // Containers 1 cpu, init container 2 cpu: 2 fits a 2-core node...
    let mut p = pod("p", json!({"cpu": "1"}), json!({}));
    p["spec"]["initContainers"] =
        json!([{"name": "i", "image": "busybox", "resources": {"requests": {"cpu": "2"}}}]);
    assert_eq!(place(&p, &s), Ok("a".to_string()));
    // ...plus 100m of overhead does not.
    p["spec"]["overhead"] = json!({"cpu": "100m"});
    assert!(
        place(&p, &s)
            .unwrap_err()
            .starts_with("0/1 nodes are available: 1 Insufficient cpu.")
    );
}

#[test]
fn a_full_node_reports_too_many_pods() {
    let s = snapshot(
        vec![node("a", "4", "8Gi", 1, json!({}))],
        vec![bound(pod("x", json!({}), json!({})), "a")],
    );
    assert!(
        place(&pod("p", json!({}), json!({})), &s)
            .unwrap_err()
            .starts_with("0/1 nodes are available: 1 Too many pods.")
    );
}

#[test]
fn finished_pods_free_their_resources() {
    let mut done = bound(pod("x", json!({"cpu": "4"}), json!({})), "a");
    done["status"]["phase"] = json!("Succeeded");
    let s = snapshot(vec![small_node("a")], vec![done]);
    assert_eq!(
        place(&pod("p", json!({"cpu": "4"}), json!({})), &s),
        Ok("a".into())
    );
}

#[test]
fn cordoned_nodes_are_skipped_unless_tolerated() {
    let mut a = small_node("a");
    a["spec"]["unschedulable"] = json!(true);
    let s = snapshot(vec![a], vec![]);
    let p = pod("p", json!({}), json!({}));
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are \
         available: 1 Preemption is not helpful for scheduling."
    );
    let tolerant = with_spec(
        p,
        "tolerations",
        json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
    );
    assert_eq!(place(&tolerant, &s), Ok("a".into()));
}

#[test]
fn nodes_that_are_not_ready_carry_the_not_ready_taint() {
    let mut a = small_node("a");
    a["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    let mut b = small_node("b");
    b["status"]["conditions"] = json!([{"type": "Ready", "status": "Unknown"}]);
    let s = snapshot(vec![a, b, small_node("c")], vec![]);
    let p = with_spec(pod("p", json!({}), json!({})), "nodeName", json!(null));
    assert_eq!(place(&p, &s), Ok("c".into()));
    let s = snapshot(
        vec![
            {
                let mut a = small_node("a");
                a["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
                a
            },
            {
                let mut b = small_node("b");
                b["status"]["conditions"] = json!([{"type": "Ready", "status": "Unknown"}]);
                b
            },
        ],
        vec![],
    );
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, \
         1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. preemption: 0/2 nodes \
         are available: 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn taints_need_tolerations_for_no_schedule_and_no_execute() {
    let mut a = small_node("a");
    a["spec"]["taints"] = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    let mut b = small_node("b");
    b["spec"]["taints"] = json!([{"key": "evict", "effect": "NoExecute"}]);
    let s = snapshot(vec![a, b], vec![]);
    let p = pod("p", json!({}), json!({}));
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) had \
         untolerated taint {evict: }. preemption: 0/2 nodes are available: 2 Preemption is not \
         helpful for scheduling."
    );
    let gpu = with_spec(
        p.clone(),
        "tolerations",
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]),
    );
    assert_eq!(place(&gpu, &s), Ok("a".into()));
    let wrong_value = with_spec(
        p.clone(),
        "tolerations",
        json!([{"key": "dedicated", "value": "cpu"}, {"key": "evict", "operator": "Exists"}]),
    );
    assert_eq!(place(&wrong_value, &s), Ok("b".into()));
    let everything = with_spec(p, "tolerations", json!([{"operator": "Exists"}]));
    assert_eq!(place(&everything, &s), Ok("a".into()));
}

#[test]
fn node_affinity_expressions_and_fields_select_nodes() {
    let s = snapshot(
        vec![
            node("a", "4", "8Gi", 110, json!({"zone": "z1", "cores": "4"})),
            node("b", "4", "8Gi", 110, json!({"zone": "z2", "cores": "16"})),
            node("c", "4", "8Gi", 110, json!({"cores": "64"})),
        ],
        vec![],
    );
    let affine = |terms: serde_json::Value| {
        with_spec(
            pod("p", json!({}), json!({})),
            "affinity",
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}),
        )
    };
    let expr = |e: serde_json::Value| affine(json!([{"matchExpressions": [e]}]));
    assert_eq!(
        place(
            &expr(json!({"key": "zone", "operator": "In", "values": ["z2"]})),
            &s
        ),
        Ok("b".into())
    );
    assert_eq!(
        place(
            &expr(json!({"key": "zone", "operator": "DoesNotExist"})),
            &s
        ),
        Ok("c".into())
    );
    assert_eq!(
        place(
            &expr(json!({"key": "zone", "operator": "NotIn", "values": ["z1"]})),
            &s
        ),
        Ok("b".into())
    );
    assert_eq!(
        place(
            &expr(json!({"key": "cores", "operator": "Lt", "values": ["8"]})),
            &s
        ),
        Ok("a".into())
    );
    assert_eq!(
        place(
            &expr(json!({"key": "cores", "operator": "Gt", "values": ["32"]})),
            &s
        ),
        Ok("c".into())
    );
    assert_eq!(
        place(&expr(json!({"key": "zone", "operator": "Exists"})), &s),
        Ok("a".into())
    );
    let by_name = affine(
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}]),
    );
    assert_eq!(place(&by_name, &s), Ok("c".into()));
    // Terms are ORed.
    let either = affine(json!([
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["nowhere"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]},
    ]));
    assert_eq!(place(&either, &s), Ok("b".into()));
    assert_eq!(
        place(
            &expr(json!({"key": "zone", "operator": "In", "values": ["z9"]})),
            &s
        )
        .unwrap_err(),
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn a_pod_naming_its_node_fits_only_there() {
    let p: k8s_openapi::api::core::v1::Pod = typed(with_spec(
        pod("p", json!({}), json!({})),
        "nodeName",
        json!("b"),
    ));
    let a: k8s_openapi::api::core::v1::Node = typed(small_node("a"));
    assert_eq!(
        stead_scheduler::filters::node_name(&p, &a)
            .unwrap_err()
            .reasons,
        vec!["node(s) didn't match the requested node name".to_string()]
    );
    let b: k8s_openapi::api::core::v1::Node = typed(small_node("b"));
    assert!(stead_scheduler::filters::node_name(&p, &b).is_ok());
}

#[test]
fn without_nodes_the_message_is_upstreams() {
    let s = snapshot(vec![], vec![]);
    assert_eq!(
        place(&pod("p", json!({}), json!({})), &s).unwrap_err(),
        "no nodes available to schedule pods"
    );
}

#[test]
fn preemption_policy_never_is_named_in_the_message() {
    let s = snapshot(vec![node("a", "1", "8Gi", 110, json!({}))], vec![]);
    let p = with_spec(
        pod("p", json!({"cpu": "2"}), json!({})),
        "preemptionPolicy",
        json!("Never"),
    );
    assert_eq!(
        place(&p, &s).unwrap_err(),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to \
         preemptionPolicy=Never.."
    );
}

#[test]
fn a_host_port_is_used_by_one_pod_per_node() {
    let with_port = |name: &str, ip: Option<&str>| {
        let mut p = pod(name, json!({}), json!({}));
        p["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 80, "hostPort": 8080, "hostIP": ip}]);
        p
    };
    let s = snapshot(
        vec![small_node("a"), small_node("b")],
        vec![bound(with_port("x", None), "a")],
    );
    assert_eq!(place(&with_port("p", Some("10.0.0.1")), &s), Ok("b".into()));
    let s = snapshot(
        vec![small_node("a")],
        vec![bound(with_port("x", Some("10.0.0.2")), "a")],
    );
    assert_eq!(
        place(&with_port("p", Some("10.0.0.1")), &s),
        Ok("a".into()),
        "other address"
    );
    assert_eq!(
        place(&with_port("p", None), &s).unwrap_err(),
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
}
