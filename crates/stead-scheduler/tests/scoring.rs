//! Which feasible node wins (pure: no server).

mod support;

use serde_json::json;
use support::*;

#[test]
fn the_least_allocated_node_wins() {
    let s = snapshot(
        vec![small_node("a"), small_node("b")],
        vec![bound(
            pod("x", json!({"cpu": "2", "memory": "2Gi"}), json!({})),
            "a",
        )],
    );
    assert_eq!(
        place(&pod("p", json!({"cpu": "1"}), json!({})), &s),
        Ok("b".into())
    );
}

#[test]
fn pods_without_requests_still_spread_and_ties_go_to_the_first_name() {
    let mut s = snapshot(vec![small_node("b"), small_node("a")], vec![]);
    let mut got = Vec::new();
    for i in 0..4 {
        let p: k8s_openapi::api::core::v1::Pod =
            typed(pod(&format!("p-{i}"), json!({}), json!({})));
        let node = stead_scheduler::schedule(&p, &s).unwrap();
        s.assume(std::sync::Arc::new(p), &node);
        got.push(node);
    }
    assert_eq!(got, vec!["a", "b", "a", "b"]);
}

#[test]
fn preferred_node_affinity_outweighs_a_little_load() {
    let s = snapshot(
        vec![
            node("a", "4", "8Gi", 110, json!({"disk": "ssd"})),
            node("b", "4", "8Gi", 110, json!({"disk": "hdd"})),
        ],
        vec![bound(pod("x", json!({"cpu": "1"}), json!({})), "a")],
    );
    let p = with_spec(
        pod("p", json!({}), json!({})),
        "affinity",
        json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
        ]}}),
    );
    assert_eq!(place(&p, &s), Ok("a".into()));
    assert_eq!(place(&pod("q", json!({}), json!({})), &s), Ok("b".into()));
}

#[test]
fn prefer_no_schedule_taints_only_lower_the_score() {
    let mut a = small_node("a");
    a["spec"]["taints"] = json!([{"key": "spare", "effect": "PreferNoSchedule"}]);
    let s = snapshot(
        vec![a.clone(), small_node("b")],
        vec![bound(pod("x", json!({"cpu": "1"}), json!({})), "b")],
    );
    assert_eq!(place(&pod("p", json!({}), json!({})), &s), Ok("b".into()));
    // Alone, the tainted node is still used.
    let s = snapshot(vec![a], vec![]);
    assert_eq!(place(&pod("p", json!({}), json!({})), &s), Ok("a".into()));
    // A pod that tolerates it sees no difference: a is emptier.
    let s = snapshot(
        vec![
            {
                let mut a = small_node("a");
                a["spec"]["taints"] = json!([{"key": "spare", "effect": "PreferNoSchedule"}]);
                a
            },
            small_node("b"),
        ],
        vec![bound(pod("x", json!({"cpu": "1"}), json!({})), "b")],
    );
    let tolerant = with_spec(
        pod("p", json!({}), json!({})),
        "tolerations",
        json!([{"key": "spare", "operator": "Exists"}]),
    );
    assert_eq!(place(&tolerant, &s), Ok("a".into()));
}

#[test]
fn preferred_pod_anti_affinity_and_affinity_steer_between_nodes() {
    let s = snapshot(
        vec![small_node("a"), small_node("b")],
        vec![
            bound(
                pod("web-0", json!({"cpu": "100m"}), json!({"app": "web"})),
                "a",
            ),
            bound(
                pod("other", json!({"cpu": "1"}), json!({"app": "other"})),
                "b",
            ),
        ],
    );
    let term = json!([{"weight": 100, "podAffinityTerm": {
        "labelSelector": {"matchLabels": {"app": "web"}},
        "topologyKey": "kubernetes.io/hostname",
    }}]);
    let away = with_spec(
        pod("web-1", json!({}), json!({"app": "web"})),
        "affinity",
        json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": term.clone()}}),
    );
    assert_eq!(place(&away, &s), Ok("b".into()));
    let along = with_spec(
        pod("cache", json!({}), json!({})),
        "affinity",
        json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": term}}),
    );
    assert_eq!(place(&along, &s), Ok("a".into()));
}

#[test]
fn once_resource_scores_saturate_pods_still_spread_by_count() {
    // 1 core: the scorer's 100m default fills it after ten pods; the rest still alternate.
    let mut s = snapshot(
        vec![
            node("a", "1", "1Gi", 110, json!({})),
            node("b", "1", "1Gi", 110, json!({})),
        ],
        vec![],
    );
    for i in 0..40 {
        let p: k8s_openapi::api::core::v1::Pod =
            typed(pod(&format!("p-{i}"), json!({}), json!({})));
        let node = stead_scheduler::schedule(&p, &s).unwrap();
        s.assume(std::sync::Arc::new(p), &node);
    }
    assert_eq!(s.node("a").unwrap().pods.len(), 20);
    assert_eq!(s.node("b").unwrap().pods.len(), 20);
}
