//! Scenario tests of one sync, with hand-checked expected actions.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

use super::fixtures::*;
use crate::statefulset::identity::name_of;
use crate::statefulset::{Action, BlockReason, DeleteReason, Features, Plan, plan};

fn run(
    set: &StatefulSet,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    revs: &[ControllerRevision],
) -> Plan {
    run_with(set, pods, claims, revs, Features::default(), at(1000))
}

fn run_with(
    set: &StatefulSet,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    revs: &[ControllerRevision],
    features: Features,
    now: jiff::Timestamp,
) -> Plan {
    match plan(set, pods, claims, revs, now, features) {
        Ok(p) => p,
        Err(e) => panic!("plan: {e}"),
    }
}

/// A compact rendering of the pod/claim actions, for exact comparisons.
fn summary(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreatePod(pod) => Some(format!("create {}", name_of(pod))),
            Action::DeletePod { name, reason } => Some(format!("delete {name} {reason:?}")),
            Action::CreateClaim { claim, .. } => Some(format!(
                "claim {}",
                claim.metadata.name.clone().unwrap_or_default()
            )),
            Action::UpdateClaimOwnerRefs { claim, .. } => Some(format!("refs {claim}")),
            Action::UpdatePodIdentity(pod) => Some(format!("repair {}", name_of(pod))),
            _ => None,
        })
        .collect()
}

fn with_image(set: &StatefulSet, image: &str) -> StatefulSet {
    let mut s = set.clone();
    spec_mut(&mut s).template = template(image);
    s
}

fn with_status(mut set: StatefulSet, current: &ControllerRevision) -> StatefulSet {
    set.status = Some(StatefulSetStatus {
        current_revision: current.metadata.name.clone(),
        ..StatefulSetStatus::default()
    });
    set
}

#[test]
fn ordered_ready_scale_up_creates_only_the_first_pod_and_its_claim() {
    // Ref: spec §4.11 "Scale-up 0→3"
    let s = with_claim_template(set("web", 3), "data");
    let p = run(&s, &[], &[], &[]);
    assert!(matches!(p.actions.first(), Some(Action::CreateRevision(_))));
    assert_eq!(summary(&p), vec!["claim data-web-0", "create web-0"]);
    assert_eq!(
        p.blocked_on,
        Some(("web-0".to_string(), BlockReason::Created))
    );
    assert_eq!(
        p.status.replicas, 0,
        "created pods are counted by the next sync"
    );
    assert_eq!(p.status.collision_count, Some(0));
    assert!(p.write_status);
}

#[test]
fn ordered_ready_waits_for_a_pending_pod_before_the_next_ordinal() {
    let s = set("web", 3);
    let r = revision(&s, 1);
    let pending = with_phase(pod_at(&s, 0, &r), "Pending", false, at(0));
    let p = run(&with_status(s, &r), &[pending], &[], &[r]);
    assert_eq!(summary(&p), Vec::<String>::new());
    assert_eq!(
        p.blocked_on,
        Some(("web-0".to_string(), BlockReason::NotRunningAndReady))
    );
}

#[test]
fn a_missing_lower_ordinal_is_recreated_while_higher_ones_are_unhealthy() {
    // Ref: e2e "should not deadlock when a pod's predecessor fails"
    let s = set("web", 3);
    let r = revision(&s, 1);
    let pods = [
        with_phase(pod_at(&s, 1, &r), "Running", false, at(0)),
        pod_at(&s, 2, &r),
    ];
    let p = run(&with_status(s, &r), &pods, &[], &[r]);
    assert_eq!(summary(&p), vec!["create web-0"]);
}

#[test]
fn parallel_creates_every_missing_pod_in_one_sync() {
    // Ref: e2e "Burst scaling should run to completion even with unhealthy pods"
    let s = parallel(set("web", 3));
    let r = revision(&s, 1);
    let pending = with_phase(pod_at(&s, 0, &r), "Pending", false, at(0));
    let p = run(&with_status(s, &r), &[pending], &[], &[r]);
    assert_eq!(summary(&p), vec!["create web-1", "create web-2"]);
}

#[test]
fn ordered_ready_scale_down_deletes_the_highest_condemned_pod_only() {
    // Ref: spec §4.11 "Scale-down 3→1"
    let s = set("web", 1);
    let r = revision(&s, 1);
    let pods: Vec<Pod> = (0..3).map(|i| pod_at(&s, i, &r)).collect();
    let p = run(
        &with_status(s.clone(), &r),
        &pods,
        &[],
        std::slice::from_ref(&r),
    );
    assert_eq!(summary(&p), vec!["delete web-2 Condemned"]);
    assert_eq!(p.status.replicas, 3, "deleted pods still count until gone");
    // While web-2 terminates, nothing else happens.
    let mut pods2 = pods.clone();
    pods2[2] = terminating(pods2[2].clone());
    let p = run(&with_status(s, &r), &pods2, &[], &[r]);
    assert_eq!(summary(&p), Vec::<String>::new());
    assert_eq!(
        p.blocked_on,
        Some(("web-2".to_string(), BlockReason::Terminating))
    );
}

#[test]
fn ordered_ready_scale_down_halts_while_a_higher_condemned_pod_is_unready() {
    // Ref: e2e "Scaling should happen in predictable order and halt if any stateful pod is unhealthy"
    let s = set("web", 0);
    let r = revision(&s, 1);
    let pods: Vec<Pod> = (0..3)
        .map(|i| with_phase(pod_at(&s, i, &r), "Running", false, at(0)))
        .collect();
    let p = run(&with_status(s, &r), &pods, &[], &[r]);
    // web-0 is the first unhealthy pod, so web-2 (not it) blocks.
    assert_eq!(summary(&p), Vec::<String>::new());
    assert_eq!(
        p.blocked_on,
        Some(("web-2".to_string(), BlockReason::NotRunningAndReady))
    );
}

#[test]
fn a_failed_pod_is_deleted_and_not_recreated_in_the_same_sync() {
    // Ref: TestStatefulSetControlRecreatesFailedPod
    let s = set("web", 2);
    let r = revision(&s, 1);
    let pods = [
        with_phase(pod_at(&s, 0, &r), "Failed", false, at(0)),
        pod_at(&s, 1, &r),
    ];
    let p = run(&with_status(s, &r), &pods, &[], &[r]);
    assert_eq!(summary(&p), vec!["delete web-0 Terminal"]);
}

#[test]
fn rolling_update_deletes_the_highest_outdated_pod_at_or_above_the_partition() {
    // Ref: spec §4.11 rolling update timeline, e2e canary/phased updates
    let s1 = set("web", 3);
    let r1 = revision(&s1, 1);
    let s2 = with_status(with_partition(with_image(&s1, "img:2"), 1, None), &r1);
    let pods: Vec<Pod> = (0..3).map(|i| pod_at(&s1, i, &r1)).collect();
    let p = run(&s2, &pods, &[], std::slice::from_ref(&r1));
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::CreateRevision(_)))
    );
    assert_eq!(summary(&p), vec!["delete web-2 Update"]);
    assert_eq!(p.status.current_replicas, Some(2));
    assert_eq!(p.status.current_revision, r1.metadata.name);
    // With web-2 updated and healthy and web-1 outdated, web-1 goes next; web-0 is protected.
    let r2 = revision(&s2, 2);
    let mut pods = pods;
    pods[2] = pod_at(&s2, 2, &r2);
    let p = run(&s2, &pods, &[], &[r1.clone(), r2.clone()]);
    assert_eq!(summary(&p), vec!["delete web-1 Update"]);
    pods[1] = pod_at(&s2, 1, &r2);
    let p = run(&s2, &pods, &[], &[r1, r2]);
    assert_eq!(summary(&p), Vec::<String>::new());
}

#[test]
fn max_unavailable_deletes_several_outdated_pods_counting_unhealthy_ones() {
    // Ref: TestStatefulSetControlRollingUpdateWithMaxUnavailable (6 pods, partition 3, max 2)
    let s1 = parallel(set("web", 6));
    let r1 = revision(&s1, 1);
    let s2 = with_status(with_partition(with_image(&s1, "img:2"), 3, Some(2)), &r1);
    let on = Features {
        max_unavailable_statefulset: true,
    };
    let pods: Vec<Pod> = (0..6).map(|i| pod_at(&s1, i, &r1)).collect();
    let p = run_with(&s2, &pods, &[], std::slice::from_ref(&r1), on, at(1000));
    assert_eq!(
        summary(&p),
        vec!["delete web-5 Update", "delete web-4 Update"]
    );
    // One pod below the partition already terminating: only one more may go.
    let mut pods1 = pods.clone();
    pods1[1] = terminating(pods1[1].clone());
    let p = run_with(&s2, &pods1, &[], std::slice::from_ref(&r1), on, at(1000));
    assert_eq!(summary(&p), vec!["delete web-5 Update"]);
    // Gate off: one at a time.
    let p = run(&s2, &pods, &[], &[r1]);
    assert_eq!(summary(&p), vec!["delete web-5 Update"]);
}

#[test]
fn on_delete_never_deletes_for_updates_and_recreates_at_the_update_revision() {
    // Ref: e2e "should implement legacy replacement when the update strategy is OnDelete"
    let s1 = on_delete(set("web", 2));
    let r1 = revision(&s1, 1);
    let s2 = with_status(with_image(&s1, "img:2"), &r1);
    let pods = [pod_at(&s1, 0, &r1), pod_at(&s1, 1, &r1)];
    let p = run(&s2, &pods, &[], std::slice::from_ref(&r1));
    assert_eq!(summary(&p), Vec::<String>::new());
    let p = run(&s2, &pods[..1], &[], &[r1]);
    let created = p.actions.iter().find_map(|a| match a {
        Action::CreatePod(pod) => Some(pod.clone()),
        _ => None,
    });
    let label = created
        .and_then(|pod| pod.metadata.labels)
        .and_then(|l| l.get("controller-revision-hash").cloned());
    assert_eq!(label, p.status.update_revision);
    assert_ne!(p.status.update_revision, p.status.current_revision);
}

#[test]
fn min_ready_seconds_blocks_with_the_remaining_time_and_requeues() {
    let mut s = set("web", 2);
    spec_mut(&mut s).min_ready_seconds = Some(30);
    let r = revision(&s, 1);
    let young = with_phase(pod_at(&s, 0, &r), "Running", true, at(990));
    let p = run(&with_status(s, &r), &[young], &[], &[r]);
    assert_eq!(summary(&p), Vec::<String>::new());
    match &p.blocked_on {
        Some((pod, BlockReason::NotAvailable { remaining })) => {
            assert_eq!(pod, "web-0");
            assert!(*remaining > Duration::from_secs(19) && *remaining <= Duration::from_secs(20));
        }
        other => panic!("unexpected block {other:?}"),
    }
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    assert_eq!(p.status.available_replicas, Some(0));
    assert_eq!(p.status.ready_replicas, Some(1));
}

#[test]
fn a_stale_claim_of_a_scaled_down_incarnation_blocks_creation() {
    // Ref: spec §4.5 step 2.1 (PodClaimIsStale)
    let s = with_policy(
        with_claim_template(set("web", 1), "data"),
        "Retain",
        "Delete",
    );
    let mut c = claim("data-web-0");
    c.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".to_string(),
        kind: "Pod".to_string(),
        name: "web-0".to_string(),
        uid: "old-uid".to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let p = run(&s, &[], &[c], &[]);
    assert_eq!(summary(&p), Vec::<String>::new());
    assert_eq!(
        p.blocked_on,
        Some((
            "web-0".to_string(),
            BlockReason::StaleClaim {
                claim: "data-web-0".to_string()
            }
        ))
    );
}

#[test]
fn a_terminating_claim_prevents_pod_creation() {
    let s = with_claim_template(set("web", 1), "data");
    let mut c = claim("data-web-0");
    c.metadata.deletion_timestamp = Some(Time(at(0)));
    let p = run(&s, &[], &[c], &[]);
    assert_eq!(summary(&p), Vec::<String>::new());
    let reason = p.blocked_on.map(|b| b.1);
    assert!(
        reason.as_ref().is_some_and(BlockReason::is_error),
        "{reason:?}"
    );
}

#[test]
fn condemned_claims_get_the_pod_as_owner_before_the_pod_is_deleted() {
    // Ref: spec §4.6 step 1, e2e "should delete PVCs with a OnScaledown policy"
    let s = with_policy(
        with_claim_template(set("web", 1), "data"),
        "Retain",
        "Delete",
    );
    let r = revision(&s, 1);
    let pods = [pod_at(&s, 0, &r), pod_at(&s, 1, &r)];
    let claims = [claim("data-web-0"), claim("data-web-1")];
    let p = run(&with_status(s, &r), &pods, &claims, &[r]);
    assert_eq!(
        summary(&p),
        vec!["refs data-web-1", "delete web-1 Condemned"]
    );
}

#[test]
fn a_pod_with_a_broken_identity_is_repaired() {
    // Ref: TestStatefulSetControlUpdatePodFailure (identity repair path)
    let s = set("web", 1);
    let r = revision(&s, 1);
    let mut pod = pod_at(&s, 0, &r);
    if let Some(l) = pod.metadata.labels.as_mut() {
        l.remove("statefulset.kubernetes.io/pod-name");
    }
    let p = run(&with_status(s, &r), &[pod], &[], &[r]);
    assert_eq!(summary(&p), vec!["repair web-0"]);
}

#[test]
fn a_set_being_deleted_only_reports_status() {
    let mut s = set("web", 3);
    s.metadata.deletion_timestamp = Some(Time(at(0)));
    let r = revision(&s, 1);
    let pods = [pod_at(&s, 0, &r), pod_at(&s, 5, &r)];
    let p = run(&with_status(s, &r), &pods, &[], &[r]);
    assert_eq!(summary(&p), Vec::<String>::new());
    assert_eq!(p.status.replicas, 2);
}

#[test]
fn start_ordinal_shifts_the_window_and_condemns_pods_below_it() {
    // Ref: e2e "Scaling StatefulSetStartOrdinal" (Increasing start 2→4)
    let base = with_start(parallel(set("web", 2)), 2);
    let r = revision(&base, 1);
    let pods = [pod_at(&base, 2, &r), pod_at(&base, 3, &r)];
    let moved = with_status(with_start(base.clone(), 4), &r);
    let p = run(&moved, &pods, &[], &[r]);
    assert_eq!(
        summary(&p),
        vec![
            "create web-4",
            "create web-5",
            "delete web-3 Condemned",
            "delete web-2 Condemned"
        ]
    );
}

#[test]
fn orphans_are_adopted_and_mismatching_pods_released() {
    let s = set("web", 2);
    let r = revision(&s, 1);
    let mut orphan = pod_at(&s, 0, &r);
    orphan.metadata.owner_references = None;
    let mut stray = pod_at(&s, 1, &r);
    stray.metadata.labels = None;
    let p = run(&with_status(s, &r), &[orphan, stray], &[], &[r]);
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::AdoptPod { name, .. } if name == "web-0"))
    );
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::ReleasePod { name, .. } if name == "web-1"))
    );
    assert_eq!(summary(&p), vec!["create web-1"]);
}

#[test]
fn history_beyond_the_limit_is_truncated_every_sync() {
    let mut s = set("web", 1);
    spec_mut(&mut s).revision_history_limit = Some(1);
    let revs: Vec<ControllerRevision> = (1..=3)
        .map(|i| revision(&with_image(&s, &format!("img:{i}")), i))
        .collect();
    let current = with_image(&s, "img:3");
    let pod = pod_at(&current, 0, &revs[2]);
    let p = run(&with_status(current, &revs[2]), &[pod], &[], &revs);
    let deleted: Vec<&str> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteRevision { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        deleted,
        vec![revs[0].metadata.name.as_deref().unwrap_or("")]
    );
    let _ = DeleteReason::Update;
}

#[test]
fn ordered_ready_scale_down_halts_behind_a_failed_condemned_pod() {
    // Ref: spec §4.6 step 2 — only the lowest unhealthy condemned pod may be deleted, so a
    // higher Failed condemned pod blocks OrderedReady scale-down (upstream behaviour, kept).
    let s = with_start(set("web", 1), 2);
    let r = revision(&s, 1);
    let pods = [
        with_phase(pod_at(&s, 0, &r), "Failed", false, at(0)),
        with_phase(pod_at(&s, 1, &r), "Failed", false, at(0)),
        pod_at(&s, 2, &r),
    ];
    let p = run(&with_status(s, &r), &pods, &[], &[r]);
    assert_eq!(summary(&p), Vec::<String>::new());
    assert_eq!(
        p.blocked_on,
        Some(("web-1".to_string(), BlockReason::NotRunningAndReady))
    );
}

fn configmap_controller_ref() -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_string(),
        kind: "ConfigMap".to_string(),
        name: "owner".to_string(),
        uid: "cm-uid".to_string(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

#[test]
fn a_claim_under_another_controller_is_reported_only_when_the_policy_is_not_retain() {
    // Ref: spec §4.9 rule 2 (ConflictingController); e2e "should not delete PVC with
    // OnScaledown policy if another controller owns the PVC"
    let base = with_claim_template(set("web", 3), "data");
    let r = revision(&base, 1);
    let pods: Vec<Pod> = (0..3).map(|i| pod_at(&base, i, &r)).collect();
    let mut claims = vec![
        claim("data-web-0"),
        claim("data-web-1"),
        claim("data-web-2"),
    ];
    claims[1].metadata.owner_references = Some(vec![configmap_controller_ref()]);

    // Retain/Retain: another controller is no conflict.
    let p = run(
        &with_status(base.clone(), &r),
        &pods,
        &claims,
        std::slice::from_ref(&r),
    );
    assert_eq!(p.conflicting_claims, Vec::<String>::new());
    assert_eq!(summary(&p), Vec::<String>::new());

    // whenScaled: Delete, all live: reported, and its refs are left alone.
    let s = with_policy(base.clone(), "Retain", "Delete");
    let p = run(
        &with_status(s.clone(), &r),
        &pods,
        &claims,
        std::slice::from_ref(&r),
    );
    assert_eq!(p.conflicting_claims, ["data-web-1"]);
    assert_eq!(summary(&p), Vec::<String>::new());

    // Scaled to 0: the condemned pods' claims get pod refs, except the conflicting one, which
    // is reported once although the routine looks at it before every deletion.
    let mut scaled = with_status(s, &r);
    spec_mut(&mut scaled).replicas = Some(0);
    let p = run(&scaled, &pods, &claims, &[r]);
    assert_eq!(p.conflicting_claims, ["data-web-1"]);
    assert_eq!(
        summary(&p),
        vec![
            "refs data-web-2",
            "refs data-web-0",
            "delete web-2 Condemned"
        ]
    );
}

#[test]
fn the_update_phase_reports_no_block_when_no_pod_is_outdated() {
    // A Parallel scale-up with unready pods has nothing to update: no MaxUnavailable wait (it
    // would name a different pod on every sync and flood `Waiting` events).
    let s = parallel(set("web", 3));
    let r = revision(&s, 1);
    let pods: Vec<Pod> = (0..3)
        .map(|i| with_phase(pod_at(&s, i, &r), "Running", false, at(0)))
        .collect();
    let gate_on = Features {
        max_unavailable_statefulset: true,
    };
    for features in [Features::default(), gate_on] {
        let p = run_with(
            &with_status(s.clone(), &r),
            &pods,
            &[],
            std::slice::from_ref(&r),
            features,
            at(1000),
        );
        assert_eq!(summary(&p), Vec::<String>::new());
        assert_eq!(p.blocked_on, None, "{features:?}");
    }
    // With an outdated pod the same world waits for availability.
    let updated = with_image(&s, "img:2");
    let p = run_with(
        &with_status(updated, &r),
        &pods,
        &[],
        std::slice::from_ref(&r),
        gate_on,
        at(1000),
    );
    assert!(
        matches!(p.blocked_on, Some((_, BlockReason::MaxUnavailable { .. }))),
        "{:?}",
        p.blocked_on
    );
}
