use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Value, json};

use super::*;
use crate::kubelet::view::{ContainerProbes, StartFailure};
use crate::runtime::SandboxStatus;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn pod(spec: Value) -> Pod {
    let mut s = json!({"containers": [{"name": "app", "image": "img:1"}]});
    s.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "metadata": {"name": "web-0", "namespace": "ns", "uid": "u1"},
        "spec": s,
    }))
    .unwrap()
}

fn deleting(mut p: Pod, grace: i64) -> Pod {
    p.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(0)));
    p.metadata.deletion_grace_period_seconds = Some(grace);
    p
}

fn sandbox(ready: bool) -> SandboxStatus {
    SandboxStatus {
        id: "u1".into(),
        namespace: "ns".into(),
        name: "web-0".into(),
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, 42, 0, 2))),
        created_at: t(0),
        ready,
        labels: BTreeMap::new(),
    }
}

fn running(name: &str, attempt: u32) -> ContainerStatus {
    ContainerStatus {
        id: format!("u1-{name}-{attempt}"),
        sandbox: "u1".into(),
        name: name.into(),
        attempt,
        image_id: "sha256:x".into(),
        image_ref: "img:1".into(),
        state: ContainerState::Running { started_at: t(0) },
        log_path: Default::default(),
        labels: BTreeMap::new(),
    }
}

fn exited(name: &str, attempt: u32, code: i32, at: i64) -> ContainerStatus {
    ContainerStatus {
        state: ContainerState::Exited {
            started_at: Some(t(0)),
            finished_at: t(at),
            exit_code: code,
            signal: None,
            reason: None,
            message: None,
        },
        ..running(name, attempt)
    }
}

fn view(containers: Vec<ContainerStatus>) -> PodRuntime {
    PodRuntime {
        sandbox: Some(sandbox(true)),
        containers,
    }
}

fn decide(p: &Pod, v: &PodRuntime, m: &Memory, now: i64) -> PodActions {
    compute_pod_actions(p, v, &ProbeResults::new(), m, t(now))
}

fn started(a: &PodActions) -> Vec<(String, u32)> {
    a.start
        .iter()
        .map(|s| (s.name.clone(), s.attempt))
        .collect()
}

#[test]
fn a_new_pod_gets_a_sandbox_and_its_containers_in_one_pass() {
    let p = pod(
        json!({"containers": [{"name": "a", "image": "img:1"}, {"name": "b", "image": "img:1"}]}),
    );
    let a = decide(&p, &PodRuntime::default(), &Memory::default(), 0);
    assert!(a.create_sandbox);
    assert!(!a.remove_sandbox);
    assert_eq!(started(&a), [("a".into(), 0), ("b".into(), 0)]);
}

// Ref: kuberuntime_manager_test.go TestComputePodActionsWithInitContainers
#[test]
fn init_containers_run_one_at_a_time_in_order() {
    let p = pod(
        json!({"initContainers": [{"name": "i1", "image": "img:1"}, {"name": "i2", "image": "img:1"}]}),
    );
    let m = Memory::default();
    assert_eq!(
        started(&decide(&p, &view(vec![]), &m, 0)),
        [("i1".into(), 0)]
    );
    let a = decide(&p, &view(vec![running("i1", 0)]), &m, 0);
    assert!(a.start.is_empty(), "waits for i1 to finish");
    let a = decide(&p, &view(vec![exited("i1", 0, 0, 1)]), &m, 2);
    assert_eq!(started(&a), [("i2".into(), 0)]);
    assert!(a.start[0].init);
    let a = decide(
        &p,
        &view(vec![exited("i1", 0, 0, 1), exited("i2", 0, 0, 2)]),
        &m,
        3,
    );
    assert_eq!(started(&a), [("app".into(), 0)]);
}

#[test]
fn a_failed_init_container_is_retried_unless_the_policy_is_never() {
    let p = pod(json!({"initContainers": [{"name": "i1", "image": "img:1"}]}));
    let v = view(vec![exited("i1", 0, 1, 1)]);
    let a = decide(&p, &v, &Memory::default(), 2);
    assert_eq!(started(&a), [("i1".into(), 1)]);
    let never = pod(
        json!({"restartPolicy": "Never", "initContainers": [{"name": "i1", "image": "img:1"}]}),
    );
    let a = decide(&never, &v, &Memory::default(), 2);
    assert!(a.start.is_empty());
}

#[test]
fn restart_policies_decide_which_exits_restart() {
    let m = Memory::default();
    for (policy, code, restarts) in [
        ("Always", 0, true),
        ("Always", 1, true),
        ("OnFailure", 0, false),
        ("OnFailure", 2, true),
        ("Never", 1, false),
        ("Never", 0, false),
    ] {
        let p = pod(json!({"restartPolicy": policy}));
        let a = decide(&p, &view(vec![exited("app", 0, code, 1)]), &m, 2);
        assert_eq!(!a.start.is_empty(), restarts, "{policy} exit {code}");
    }
}

// Ref: upstream e2e "should have their auto-restart back-off timer reset on image update" (back-off rules)
#[test]
fn a_crash_loop_backs_off_with_the_upstream_message() {
    let p = pod(json!({}));
    let mut m = Memory::default();
    // First restart is immediate; the kubelet then records the back-off.
    let a = decide(&p, &view(vec![exited("app", 0, 1, 10)]), &m, 10);
    assert_eq!(started(&a), [("app".into(), 1)]);
    assert_eq!(a.start[0].restart_of, Some(t(10)));
    m.backoff.next("app", t(10));
    // The restarted attempt dies at once: 10 s back-off.
    let v = view(vec![exited("app", 0, 1, 10), exited("app", 1, 1, 12)]);
    let a = decide(&p, &v, &m, 13);
    assert!(a.start.is_empty());
    let w = &a.waiting["app"];
    assert_eq!(w.reason, "CrashLoopBackOff");
    assert_eq!(
        w.message,
        "back-off 10s restarting failed container=app pod=web-0_ns(u1)"
    );
    assert_eq!(a.recheck_after, Some(Duration::from_secs(9)));
    let a = decide(&p, &v, &m, 22);
    assert_eq!(started(&a), [("app".into(), 2)]);
}

#[test]
fn a_failed_liveness_probe_kills_the_container_with_the_pod_grace() {
    let p = pod(json!({"terminationGracePeriodSeconds": 7}));
    let v = view(vec![running("app", 0)]);
    let probes = ProbeResults::from([(
        "u1-app-0".to_string(),
        ContainerProbes {
            started: true,
            ready: false,
            liveness_failed: true,
        },
    )]);
    let a = compute_pod_actions(&p, &v, &probes, &Memory::default(), t(1));
    assert_eq!(
        a.kill,
        [Kill {
            id: "u1-app-0".into(),
            name: "app".into(),
            reason: KillReason::LivenessFailed,
            grace: Duration::from_secs(7)
        }]
    );
}

#[test]
fn a_changed_image_replaces_the_container() {
    let p = pod(json!({"containers": [{"name": "app", "image": "img:2"}]}));
    let a = decide(&p, &view(vec![running("app", 0)]), &Memory::default(), 1);
    assert_eq!(a.kill[0].reason, KillReason::SpecChanged);
}

#[test]
fn a_lost_sandbox_is_recreated_and_containers_start_with_the_next_attempt() {
    let p = pod(json!({}));
    let mut m = Memory::default();
    m.last_attempt.insert("app".into(), 3);
    let v = PodRuntime {
        sandbox: Some(sandbox(false)),
        containers: vec![running("app", 3)],
    };
    let a = decide(&p, &v, &m, 1);
    assert!(a.remove_sandbox && a.create_sandbox);
    assert_eq!(started(&a), [("app".into(), 4)]);
    // A pod that must never restart does not get a new sandbox.
    let never = pod(json!({"restartPolicy": "Never"}));
    let a = decide(&never, &v, &m, 1);
    assert!(a.remove_sandbox && !a.create_sandbox && a.start.is_empty());
}

// Ref: DESIGN.md "A pod object leaves the API only after its node agent confirms its processes are gone"
#[test]
fn deletion_stops_containers_then_removes_the_sandbox_then_confirms() {
    let p = deleting(
        pod(json!({"initContainers": [{"name": "i", "image": "img:1"}]})),
        12,
    );
    let m = Memory::default();
    let a = decide(
        &p,
        &view(vec![exited("i", 0, 0, 1), running("app", 0)]),
        &m,
        2,
    );
    assert_eq!(a.kill.len(), 1);
    assert_eq!(a.kill[0].reason, KillReason::PodDeleted);
    assert_eq!(a.kill[0].grace, Duration::from_secs(12));
    assert!(!a.remove_sandbox && !a.confirm_deletion && a.start.is_empty());
    let a = decide(&p, &view(vec![exited("app", 0, 143, 3)]), &m, 3);
    assert!(a.kill.is_empty() && a.remove_sandbox && !a.confirm_deletion);
    let a = decide(&p, &PodRuntime::default(), &m, 4);
    assert!(a.confirm_deletion && !a.create_sandbox);
}

#[test]
fn a_failed_pull_backs_off_as_image_pull_back_off() {
    let p = pod(json!({}));
    let mut m = Memory::default();
    m.failures.insert(
        "app".into(),
        StartFailure {
            reason: "ErrImagePull".into(),
            message: "not found".into(),
            at: t(0),
        },
    );
    m.backoff.next(&pull_key("app"), t(0));
    let a = decide(&p, &view(vec![]), &m, 5);
    assert!(a.start.is_empty());
    assert_eq!(a.waiting["app"].reason, "ImagePullBackOff");
    assert_eq!(a.waiting["app"].message, "Back-off pulling image \"img:1\"");
    let a = decide(&p, &view(vec![]), &m, 11);
    assert_eq!(started(&a), [("app".into(), 0)]);
}

#[test]
fn old_attempts_are_removed_keeping_the_last_two() {
    let p = pod(json!({}));
    let v = view(vec![
        exited("app", 0, 1, 1),
        exited("app", 1, 1, 2),
        running("app", 2),
    ]);
    let a = decide(&p, &v, &Memory::default(), 3);
    assert_eq!(a.remove_containers, ["u1-app-0"]);
}

#[test]
fn a_terminal_pod_never_runs_again() {
    let mut p = pod(json!({"restartPolicy": "Never"}));
    p.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
    let a = decide(
        &p,
        &view(vec![exited("app", 0, 0, 1)]),
        &Memory::default(),
        2,
    );
    assert_eq!(a, PodActions::default());
}

#[test]
fn a_restart_count_in_the_status_is_never_reset_by_a_lost_runtime() {
    let mut p = pod(json!({}));
    p.status = Some(
        serde_json::from_value(json!({"phase": "Running", "containerStatuses": [{
            "name": "app", "image": "img:1", "imageID": "", "ready": false,
            "restartCount": 4, "containerID": "stead://old"}]}))
        .unwrap(),
    );
    let a = decide(&p, &PodRuntime::default(), &Memory::default(), 0);
    assert!(a.create_sandbox);
    assert_eq!(started(&a), [("app".into(), 5)]);
}
