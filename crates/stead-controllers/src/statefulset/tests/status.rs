use k8s_openapi::api::apps::v1::StatefulSetStatus;

use super::fixtures::*;
use crate::statefulset::status::*;

#[test]
fn counters_follow_upstream_definitions() {
    // Ref: computeReplicaStatus; spec §6 (terminating pods count in replicas and ready only)
    let s = set("web", 4);
    let r1 = revision(&s, 1);
    let mut s2 = s.clone();
    spec_mut(&mut s2).template = template("img:2");
    let r2 = revision(&s2, 2);
    let pods = [
        pod_at(&s, 0, &r1),
        terminating(pod_at(&s, 1, &r1)),
        with_phase(pod_at(&s2, 2, &r2), "Pending", false, at(0)),
        with_phase(pod_at(&s2, 3, &r2), "Running", true, at(100)),
    ];
    let c = count_pods(&pods, 30, at(110), "web-x", "web-y");
    assert_eq!(c.replicas, 4);
    assert_eq!(c.ready, 3);
    let c = count_pods(
        &pods,
        30,
        at(110),
        r1.metadata.name.as_deref().unwrap_or(""),
        r2.metadata.name.as_deref().unwrap_or(""),
    );
    assert_eq!(
        c,
        Counts {
            replicas: 4,
            ready: 3,
            available: 2,
            current: 1,
            updated: 2
        }
    );
}

#[test]
fn a_rolling_update_completes_when_all_replicas_are_updated_and_ready() {
    let s = set("web", 2);
    let mut st = StatefulSetStatus {
        replicas: 2,
        ready_replicas: Some(2),
        updated_replicas: Some(2),
        current_replicas: Some(0),
        current_revision: Some("a".to_string()),
        update_revision: Some("b".to_string()),
        ..StatefulSetStatus::default()
    };
    complete_rolling_update(&on_delete(s.clone()), &mut st.clone());
    let mut od = st.clone();
    complete_rolling_update(&on_delete(s.clone()), &mut od);
    assert_eq!(
        od.current_revision.as_deref(),
        Some("a"),
        "OnDelete never completes"
    );
    complete_rolling_update(&s, &mut st);
    assert_eq!(st.current_revision.as_deref(), Some("b"));
    assert_eq!(st.current_replicas, Some(2));
}

#[test]
fn status_is_written_only_when_a_compared_field_changes() {
    let mut s = set("web", 2);
    let st = StatefulSetStatus {
        observed_generation: Some(1),
        replicas: 2,
        collision_count: Some(0),
        ..StatefulSetStatus::default()
    };
    s.status = Some(st.clone());
    assert!(!status_needs_update(&s, &st));
    let mut bumped = st.clone();
    bumped.collision_count = Some(3);
    assert!(
        !status_needs_update(&s, &bumped),
        "collisionCount is not compared"
    );
    bumped.available_replicas = Some(1);
    assert!(status_needs_update(&s, &bumped));
    let mut newer = st.clone();
    newer.observed_generation = Some(2);
    assert!(status_needs_update(&s, &newer));
}
