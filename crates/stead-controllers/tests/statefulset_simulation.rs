//! The executor and one-set syncs against the stateful fake ([`FakeEffects`]): slow-start
//! batching, "already done" answers, events, status writes after partial failures, the
//! `Waiting` events, and convergence of a world with injected failures (the test plays kubelet).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde_json::json;
use stead_controllers::statefulset::effects::{EffectError, Related, Severity};
use stead_controllers::statefulset::fake::{FakeEffects, Op, World};
use stead_controllers::statefulset::sync::{WaitingDecision, WaitingEvents};
use stead_controllers::statefulset::{
    Action, Features, Requeue, Snapshot, SyncOutcome, execute, plan, sync_set,
};

const FEATURES: Features = Features {
    max_unavailable_statefulset: true,
};

fn new_set(replicas: i32, extra: serde_json::Value) -> StatefulSet {
    let mut set = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "uid": "set-uid", "generation": 1,
                     "resourceVersion": "1"},
        "spec": {
            "replicas": replicas,
            "serviceName": "svc",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "img:1"}]}
            }
        }
    });
    if let (Some(spec), Some(extra)) = (set["spec"].as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(set).expect("valid set")
}

fn world_with(set: StatefulSet) -> FakeEffects {
    let mut world = World::default();
    world.now = 1_700_000_000;
    world.sets.insert("web".into(), set);
    FakeEffects::new(world)
}

fn snapshot(fake: &FakeEffects) -> Snapshot {
    let w = fake.world();
    Snapshot {
        set: w.sets.get("web").cloned().unwrap_or_default(),
        pods: w.pods.values().cloned().map(Arc::new).collect(),
        claims: w.claims.values().cloned().map(Arc::new).collect(),
        revisions: w.revisions.values().cloned().map(Arc::new).collect(),
    }
}

fn now(fake: &FakeEffects) -> Timestamp {
    Timestamp::from_second(fake.world().now + 1).expect("valid time")
}

async fn sync(fake: &FakeEffects, waiting: &WaitingEvents) -> SyncOutcome {
    sync_set(fake, &snapshot(fake), now(fake), FEATURES, waiting).await
}

fn quiet() -> WaitingEvents {
    WaitingEvents::new(Duration::from_secs(30))
}

fn notes(fake: &FakeEffects) -> Vec<(String, String)> {
    fake.world()
        .events
        .into_iter()
        .map(|e| (e.reason, e.note))
        .collect()
}

/// Plays the kubelet: every pod not yet running becomes Running and Ready.
fn run_all(fake: &FakeEffects) {
    for name in fake.world().pods.keys() {
        fake.set_pod_state(name, "Running", true);
    }
}

#[tokio::test]
async fn parallel_creates_run_in_slow_start_batches() {
    // Ref: upstream `slowStartBatch` (batch sizes 1, 2, 4, ...), spec §4.4 runForAll
    let fake = world_with(new_set(10, json!({"podManagementPolicy": "Parallel"})));
    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let creates = fake.calls_of(Op::CreatePod);
    let in_flight: Vec<usize> = creates.iter().map(|c| c.in_flight).collect();
    // Batches of 1, 2, 4 and the remaining 3, each running concurrently.
    assert_eq!(in_flight, [1, 1, 2, 1, 2, 3, 4, 1, 2, 3]);
    assert_eq!(fake.world().pods.len(), 10);
}

#[tokio::test]
async fn a_failing_batch_stops_the_parallel_creates_and_a_later_sync_finishes() {
    // Ref: upstream TestStatefulSetControlCreatePodFailure, burst variant
    let fake = world_with(new_set(10, json!({"podManagementPolicy": "Parallel"})));
    fake.fail(Op::CreatePod, 1, 1, EffectError::Other("boom".into()));
    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.error.is_some());
    assert_eq!(outcome.requeue, Requeue::Backoff);
    // Batch 1: web-0; batch 2: web-1 (fails) and web-2; nothing after the failed batch.
    let names: Vec<String> = fake
        .calls_of(Op::CreatePod)
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    assert_eq!(
        fake.world().pods.keys().cloned().collect::<Vec<_>>(),
        ["web-0", "web-2"]
    );
    assert!(notes(&fake).contains(&(
        "FailedCreate".into(),
        "create Pod web-1 in StatefulSet web failed error: boom".into()
    )));

    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(fake.world().pods.len(), 10);
}

#[tokio::test]
async fn ordered_ready_creates_one_pod_per_sync_and_retries_a_failed_create() {
    // Ref: upstream TestStatefulSetControlCreatePodFailure (monotonic)
    let fake = world_with(new_set(2, json!({})));
    fake.fail(Op::CreatePod, 0, 1, EffectError::Other("quota".into()));
    let outcome = sync(&fake, &quiet()).await;
    assert_eq!(outcome.requeue, Requeue::Backoff);
    assert!(fake.world().pods.is_empty());
    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.error.is_none());
    assert_eq!(outcome.requeue, Requeue::OnChange);
    assert_eq!(fake.world().pods.keys().collect::<Vec<_>>(), ["web-0"]);
    // web-0 is Pending: nothing more until it is Running and Ready.
    sync(&fake, &quiet()).await;
    assert_eq!(fake.world().pods.len(), 1);
    run_all(&fake);
    sync(&fake, &quiet()).await;
    assert_eq!(fake.world().pods.len(), 2);
    assert_eq!(
        notes(&fake)
            .into_iter()
            .filter(|(r, _)| r != "Waiting")
            .collect::<Vec<_>>(),
        [
            (
                "FailedCreate".to_string(),
                "create Pod web-0 in StatefulSet web failed error: quota".to_string()
            ),
            (
                "SuccessfulCreate".into(),
                "create Pod web-0 in StatefulSet web successful".into()
            ),
            (
                "SuccessfulCreate".into(),
                "create Pod web-1 in StatefulSet web successful".into()
            ),
        ]
    );
}

#[tokio::test]
async fn claims_are_created_before_their_pod_with_upstream_events() {
    // Ref: spec §4.5 step 2 (createPersistentVolumeClaims, then the pod), Appendix A
    let set = new_set(
        1,
        json!({"volumeClaimTemplates": [{"metadata": {"name": "datadir"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1"}}}}]}),
    );
    let fake = world_with(set);
    sync(&fake, &quiet()).await;
    let calls: Vec<(Op, String)> = fake
        .world()
        .calls
        .into_iter()
        .filter(|c| matches!(c.op, Op::CreateClaim | Op::CreatePod))
        .map(|c| (c.op, c.name))
        .collect();
    assert_eq!(
        calls,
        [
            (Op::CreateClaim, "datadir-web-0".to_string()),
            (Op::CreatePod, "web-0".to_string())
        ]
    );
    let events = fake.world().events;
    assert_eq!(events[0].reason, "SuccessfulCreate");
    assert_eq!(
        events[0].note,
        "create Claim datadir-web-0 Pod web-0 in StatefulSet web success"
    );
    assert_eq!(
        events[0].related,
        Some(Related::Claim("datadir-web-0".into()))
    );
    assert_eq!(events[1].related, Some(Related::Pod("web-0".into())));
}

#[tokio::test]
async fn already_existing_pods_and_vanished_deletes_count_as_done() {
    // A stale cache: the snapshot misses a pod the server has, or shows one already deleted.
    let fake = world_with(new_set(1, json!({})));
    let set = snapshot(&fake).set;
    let none: (&[Pod], &[PersistentVolumeClaim], &[ControllerRevision]) = (&[], &[], &[]);
    let p = plan(&set, none.0, none.1, none.2, now(&fake), FEATURES).expect("plan");
    let creates: Vec<Action> = p
        .actions
        .into_iter()
        .filter(|a| matches!(a, Action::CreatePod(_)))
        .collect();
    assert_eq!(creates.len(), 1);
    execute(&fake, &set, &creates).await;
    let events_before = fake.world().events.len();
    let again = execute(&fake, &set, &creates).await;
    assert!(again.error.is_none(), "AlreadyExists is success");
    assert!(again.done.iter().all(|d| *d));
    assert_eq!(
        fake.world().events.len(),
        events_before,
        "no event for AlreadyExists"
    );

    let delete = [Action::DeletePod {
        name: "web-7".into(),
        reason: stead_controllers::statefulset::DeleteReason::Condemned,
    }];
    let r = execute(&fake, &set, &delete).await;
    assert!(r.error.is_none(), "NotFound on delete is success");
}

#[tokio::test]
async fn a_failed_update_delete_keeps_current_replicas_in_the_written_status() {
    // Ref: upstream TestStatefulSetControlNewRevisionDeletePodFailure
    let fake = world_with(new_set(3, json!({})));
    for _ in 0..3 {
        sync(&fake, &quiet()).await;
        run_all(&fake);
    }
    sync(&fake, &quiet()).await;
    let st = fake.world().sets["web"].status.clone().unwrap_or_default();
    assert_eq!((st.replicas, st.current_replicas), (3, Some(3)));

    fake.edit(|w| {
        if let Some(set) = w.sets.get_mut("web") {
            set.metadata.generation = Some(2);
            if let Some(spec) = set.spec.as_mut()
                && let Some(pod_spec) = spec.template.spec.as_mut()
            {
                pod_spec.containers[0].image = Some("img:2".into());
            }
        }
    });
    fake.fail(Op::DeletePod, 0, 1, EffectError::Other("nope".into()));
    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.error.is_some());
    let st = fake.world().sets["web"].status.clone().unwrap_or_default();
    assert_eq!(st.current_replicas, Some(3), "the delete did not happen");
    assert_eq!(st.observed_generation, Some(2));
    assert_ne!(st.update_revision, st.current_revision);

    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.error.is_none());
    let st = fake.world().sets["web"].status.clone().unwrap_or_default();
    assert_eq!(st.current_replicas, Some(2));
    assert!(notes(&fake).contains(&(
        "SuccessfulDelete".into(),
        "delete Pod web-2 in StatefulSet web successful".into()
    )));
}

#[tokio::test]
async fn the_status_is_written_only_when_it_changes_and_failures_requeue() {
    // Ref: upstream TestStatefulSetControlUpdateSetStatusFailure, spec §4.8
    let fake = world_with(new_set(1, json!({})));
    fake.fail(Op::UpdateStatus, 0, 1, EffectError::Conflict("busy".into()));
    let outcome = sync(&fake, &quiet()).await;
    assert!(!outcome.status_written);
    assert_eq!(outcome.requeue, Requeue::Backoff);
    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.status_written);
    run_all(&fake);
    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.status_written, "ready count changed");
    let outcome = sync(&fake, &quiet()).await;
    assert!(!outcome.status_written, "nothing changed");
    let st = fake.world().sets["web"].status.clone().unwrap_or_default();
    assert_eq!(st.ready_replicas, Some(1));
}

#[tokio::test]
async fn waiting_events_name_the_blocking_pod_at_most_once_per_interval() {
    let fake = world_with(new_set(2, json!({})));
    let waiting = quiet();
    for _ in 0..4 {
        sync(&fake, &waiting).await;
    }
    let waits: Vec<_> = fake
        .world()
        .events
        .into_iter()
        .filter(|e| e.reason == "Waiting")
        .collect();
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].note, "waiting for web-0 to be Running and Ready");
    assert_eq!(waits[0].severity, Severity::Normal);

    // A different pod or reason is a new event.
    fake.set_pod_state("web-0", "Running", true);
    sync(&fake, &waiting).await;
    sync(&fake, &waiting).await;
    let waits: Vec<String> = fake
        .world()
        .events
        .into_iter()
        .filter(|e| e.reason == "Waiting")
        .map(|e| e.note)
        .collect();
    assert_eq!(
        waits,
        [
            "waiting for web-0 to be Running and Ready",
            "waiting for web-1 to be Running and Ready"
        ]
    );
}

#[tokio::test]
async fn min_ready_seconds_requeues_until_the_pod_is_available() {
    // Ref: spec §4.1 step 6
    let fake = world_with(new_set(1, json!({"minReadySeconds": 10})));
    sync(&fake, &quiet()).await;
    run_all(&fake);
    let outcome = sync(&fake, &quiet()).await;
    match outcome.requeue {
        Requeue::After(d) => assert!(d <= Duration::from_secs(10) && d > Duration::ZERO),
        other => panic!("expected a delayed requeue, got {other:?}"),
    }
}

#[tokio::test]
async fn a_world_with_injected_failures_converges() {
    // Ref: upstream scaleUpStatefulSetControl with failing object managers
    for parallel in [false, true] {
        let policy = if parallel { "Parallel" } else { "OrderedReady" };
        let fake = world_with(new_set(
            5,
            json!({"podManagementPolicy": policy,
                   "volumeClaimTemplates": [{"metadata": {"name": "d"},
                        "spec": {"accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1"}}}}]}),
        ));
        fake.fail(Op::CreatePod, 2, 2, EffectError::Other("flaky".into()));
        fake.fail(Op::CreateClaim, 1, 1, EffectError::Other("flaky".into()));
        fake.fail(Op::UpdateStatus, 1, 1, EffectError::Other("flaky".into()));
        let waiting = quiet();
        let mut errors = 0;
        for _ in 0..40 {
            let outcome = sync(&fake, &waiting).await;
            errors += usize::from(outcome.error.is_some());
            run_all(&fake);
            let st = fake.world().sets["web"].status.clone().unwrap_or_default();
            if st.ready_replicas == Some(5) && st.replicas == 5 {
                break;
            }
        }
        let w = fake.world();
        let st = w.sets["web"].status.clone().unwrap_or_default();
        assert_eq!(st.ready_replicas, Some(5), "{policy}");
        assert_eq!(w.pods.len(), 5);
        assert_eq!(w.claims.len(), 5);
        let failed = w.calls.iter().filter(|c| !c.ok).count();
        assert_eq!(failed, 4, "{policy}: every injected failure fired");
        // Two failing creates may share a Parallel batch (one failed sync).
        assert!((3..=4).contains(&errors), "{policy}: {errors} failed syncs");
    }
}

#[tokio::test]
async fn parallel_scale_down_fixes_each_claims_refs_before_deleting_its_pod() {
    // Ref: spec §4.6 step 1 (condemned claims get the pod as owner before the pod goes)
    let fake = world_with(new_set(
        5,
        json!({"podManagementPolicy": "Parallel",
               "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Retain"},
               "volumeClaimTemplates": [{"metadata": {"name": "d"},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1"}}}}]}),
    ));
    sync(&fake, &quiet()).await;
    run_all(&fake);
    sync(&fake, &quiet()).await;
    fake.edit(|w| {
        w.calls.clear();
        if let Some(spec) = w.sets.get_mut("web").and_then(|s| s.spec.as_mut()) {
            spec.replicas = Some(1);
        }
    });
    let outcome = sync(&fake, &quiet()).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let calls: Vec<(Op, String)> = fake
        .world()
        .calls
        .into_iter()
        .filter(|c| matches!(c.op, Op::SetClaimOwnerRefs | Op::DeletePod))
        .map(|c| (c.op, c.name))
        .collect();
    for i in 1..5 {
        let fixed = calls
            .iter()
            .position(|c| *c == (Op::SetClaimOwnerRefs, format!("d-web-{i}")));
        let deleted = calls
            .iter()
            .position(|c| *c == (Op::DeletePod, format!("web-{i}")));
        assert!(
            matches!((fixed, deleted), (Some(f), Some(d)) if f < d),
            "web-{i}: {calls:?}"
        );
    }
    assert_eq!(fake.world().pods.keys().collect::<Vec<_>>(), ["web-0"]);
    let refs = fake.world().claims["d-web-3"]
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert_eq!(
        refs.iter()
            .map(|r| (r.kind.as_str(), r.name.as_str()))
            .collect::<Vec<_>>(),
        [("Pod", "web-3")]
    );
}

#[tokio::test]
async fn a_claim_under_another_controller_gets_one_warning_per_interval() {
    // Ref: spec §4.9 rule 2 (ConflictingController, upstream's message)
    let fake = world_with(new_set(
        1,
        json!({
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1"}}}}]
        }),
    ));
    let waiting = quiet();
    sync(&fake, &waiting).await;
    run_all(&fake);
    fake.edit(|w| {
        let claim = w.claims.get_mut("data-web-0").expect("claim created");
        claim.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "cm-uid",
                "controller": true
            }))
            .expect("valid ref"),
        ]);
    });
    for _ in 0..3 {
        sync(&fake, &waiting).await;
    }
    let warnings: Vec<_> = fake
        .world()
        .events
        .into_iter()
        .filter(|e| e.reason == "ConflictingController")
        .collect();
    assert_eq!(warnings.len(), 1, "rate-limited: {warnings:?}");
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert_eq!(
        warnings[0].note,
        "PersistentVolumeClaim data-web-0 has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"
    );
    assert_eq!(
        warnings[0].related,
        Some(Related::Claim("data-web-0".into()))
    );
    // The claim's refs stay as the other controller left them.
    let refs = fake.world().claims["data-web-0"]
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].kind, "ConfigMap");
}

#[test]
fn a_waiting_event_waits_for_the_block_to_outlast_the_grace_period() {
    let waiting = WaitingEvents::with_grace(Duration::from_secs(30), Duration::from_secs(1));
    let t0 = tokio::time::Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    assert_eq!(
        waiting.observe("ns/web", "web-0", "NotRunningAndReady", at(0)),
        WaitingDecision::Later(Duration::from_secs(1))
    );
    assert_eq!(
        waiting.observe("ns/web", "web-0", "NotRunningAndReady", at(400)),
        WaitingDecision::Later(Duration::from_millis(600))
    );
    // Another pod starts its own grace period.
    assert_eq!(
        waiting.observe("ns/web", "web-1", "NotRunningAndReady", at(500)),
        WaitingDecision::Later(Duration::from_secs(1))
    );
    assert_eq!(
        waiting.observe("ns/web", "web-1", "NotRunningAndReady", at(1500)),
        WaitingDecision::Emit
    );
    assert_eq!(
        waiting.observe("ns/web", "web-1", "NotRunningAndReady", at(2000)),
        WaitingDecision::Quiet
    );
    // Unblocked, then blocked again: a new grace period.
    waiting.unblocked("ns/web");
    assert_eq!(
        waiting.observe("ns/web", "web-1", "NotRunningAndReady", at(2100)),
        WaitingDecision::Later(Duration::from_secs(1))
    );
}
