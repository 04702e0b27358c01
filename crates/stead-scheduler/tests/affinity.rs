//! Inter-pod affinity and anti-affinity, and the assume step that keeps a burst consistent
//! (pure: no server).

mod support;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use support::*;

/// A ZooKeeper-style StatefulSet pod (the upstream "Running ZooKeeper" tutorial's rule): at most
/// one `app=zk` pod per host.
fn zk(ordinal: u32) -> Value {
    with_spec(
        pod(
            &format!("zk-{ordinal}"),
            json!({"cpu": "100m"}),
            json!({"app": "zk"}),
        ),
        "affinity",
        json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["zk"]}]},
            "topologyKey": "kubernetes.io/hostname",
        }]}}),
    )
}

/// Schedules `pods` one after another, assuming each onto its node like the run loop does.
fn burst(snapshot: &mut stead_scheduler::Snapshot, pods: &[Value]) -> Vec<Result<String, String>> {
    pods.iter()
        .map(|p| {
            let typed_pod: Pod = typed(p.clone());
            let placed = stead_scheduler::schedule(&typed_pod, snapshot);
            match placed {
                Ok(node) => {
                    snapshot.assume(std::sync::Arc::new(typed_pod), &node);
                    Ok(node)
                }
                Err(u) => Err(u.message(&typed_pod)),
            }
        })
        .collect()
}

// Ref: the StatefulSet spec's identity section (pods of one set spread by anti-affinity) and
// upstream InterPodAffinity Filter.
#[test]
fn required_anti_affinity_puts_one_replica_per_host_and_the_third_waits() {
    let mut s = snapshot(vec![small_node("a"), small_node("b")], vec![]);
    let got = burst(&mut s, &[zk(0), zk(1), zk(2)]);
    assert_eq!(got[0], Ok("a".into()));
    assert_eq!(got[1], Ok("b".into()));
    assert_eq!(
        got[2],
        Err(
            "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. \
             preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
                .into()
        )
    );
}

#[test]
fn anti_affinity_only_counts_pods_in_the_terms_namespaces() {
    let mut other = bound(pod("zk-0", json!({}), json!({"app": "zk"})), "a");
    other["metadata"]["namespace"] = json!("elsewhere");
    let s = snapshot(vec![small_node("a")], vec![other.clone()]);
    assert_eq!(place(&zk(0), &s), Ok("a".into()));
    // Naming the namespace (or selecting all with `{}`) makes it count.
    let mut everywhere = zk(1);
    everywhere["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        [0]["namespaceSelector"] = json!({});
    assert!(place(&everywhere, &s).is_err());
}

#[test]
fn existing_pods_anti_affinity_keeps_matching_pods_away() {
    let loner = with_spec(
        bound(pod("loner", json!({}), json!({"app": "loner"})), "a"),
        "affinity",
        json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": "web"}},
            "topologyKey": "kubernetes.io/hostname",
        }]}}),
    );
    let loner = {
        let mut l = loner;
        l["spec"]["nodeName"] = json!("a");
        l
    };
    let web = pod("web", json!({}), json!({"app": "web"}));
    let s = snapshot(vec![small_node("a"), small_node("b")], vec![loner.clone()]);
    assert_eq!(place(&web, &s), Ok("b".into()));
    let s = snapshot(vec![small_node("a")], vec![loner]);
    assert_eq!(
        place(&web, &s).unwrap_err(),
        "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    // Unrelated pods are not affected.
    assert_eq!(
        place(&pod("db", json!({}), json!({"app": "db"})), &s),
        Ok("a".into())
    );
}

fn affine_to(name: &str, labels: Value, target: &str) -> Value {
    with_spec(
        pod(name, json!({}), labels),
        "affinity",
        json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": target}},
            "topologyKey": "kubernetes.io/hostname",
        }]}}),
    )
}

#[test]
fn required_affinity_follows_the_first_pod_of_a_self_affine_group() {
    // b is emptier, but the group's first pod is on a.
    let mut s = snapshot(
        vec![small_node("a"), small_node("b")],
        vec![bound(pod("big", json!({"cpu": "3"}), json!({})), "b")],
    );
    let got = burst(
        &mut s,
        &[
            affine_to("cache-0", json!({"app": "cache"}), "cache"),
            affine_to("cache-1", json!({"app": "cache"}), "cache"),
        ],
    );
    assert_eq!(got, vec![Ok("a".to_string()), Ok("a".to_string())]);
    let mut s = snapshot(
        vec![small_node("a"), small_node("b")],
        vec![bound(
            pod("big", json!({"cpu": "3"}), json!({"app": "cache"})),
            "b",
        )],
    );
    assert_eq!(
        burst(
            &mut s,
            &[affine_to("cache-0", json!({"app": "cache"}), "cache")]
        ),
        vec![Ok("b".to_string())]
    );
}

#[test]
fn required_affinity_to_pods_that_do_not_exist_is_unschedulable() {
    let s = snapshot(vec![small_node("a"), small_node("b")], vec![]);
    assert_eq!(
        place(&affine_to("web", json!({"app": "web"}), "db"), &s).unwrap_err(),
        "0/2 nodes are available: 2 node(s) didn't match pod affinity rules. preemption: 0/2 \
         nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn assumed_pods_count_so_a_burst_does_not_overcommit() {
    let mut s = snapshot(
        vec![
            node("a", "2", "8Gi", 110, json!({})),
            node("b", "2", "8Gi", 110, json!({})),
        ],
        vec![],
    );
    let pods: Vec<Value> = (0..5)
        .map(|i| pod(&format!("p-{i}"), json!({"cpu": "1"}), json!({})))
        .collect();
    let got = burst(&mut s, &pods);
    let placed: Vec<&String> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(placed.iter().filter(|n| n.as_str() == "a").count(), 2);
    assert_eq!(placed.iter().filter(|n| n.as_str() == "b").count(), 2);
    assert!(
        got[4]
            .as_ref()
            .unwrap_err()
            .starts_with("0/2 nodes are available: 2 Insufficient cpu.")
    );
    // Undoing an assumption frees the room.
    s.remove_pod("default/p-0");
    assert!(place(&pods[4], &s).is_ok());
}
