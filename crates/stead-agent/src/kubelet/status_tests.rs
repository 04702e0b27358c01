use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use super::*;
use crate::kubelet::view::ContainerProbes;
use crate::runtime::SandboxStatus;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn pod(spec: Value, status: Value) -> Pod {
    let mut s = json!({"containers": [{"name": "app", "image": "img:1"}]});
    s.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "metadata": {"name": "web-0", "namespace": "ns", "uid": "u1"},
        "spec": s,
        "status": status,
    }))
    .unwrap()
}

fn sandbox() -> SandboxStatus {
    SandboxStatus {
        id: "u1".into(),
        namespace: "ns".into(),
        name: "web-0".into(),
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, 42, 0, 9))),
        created_at: t(0),
        ready: true,
        labels: BTreeMap::new(),
    }
}

fn container(name: &str, attempt: u32, state: ContainerState) -> ContainerStatus {
    ContainerStatus {
        id: format!("u1-{name}-{attempt}"),
        sandbox: "u1".into(),
        name: name.into(),
        attempt,
        image_id: "sha256:abc".into(),
        image_ref: "img:1".into(),
        state,
        log_path: Default::default(),
        labels: BTreeMap::new(),
    }
}

fn running(name: &str, attempt: u32) -> ContainerStatus {
    container(name, attempt, ContainerState::Running { started_at: t(1) })
}

fn exited(name: &str, attempt: u32, code: i32, reason: Option<&str>) -> ContainerStatus {
    container(
        name,
        attempt,
        ContainerState::Exited {
            started_at: Some(t(1)),
            finished_at: t(2),
            exit_code: code,
            signal: None,
            reason: reason.map(str::to_string),
            message: None,
        },
    )
}

fn status(
    p: &Pod,
    containers: Vec<ContainerStatus>,
    waiting: &[(&str, &str, &str)],
    probes: ProbeResults,
) -> Value {
    let rt = PodRuntime {
        sandbox: Some(sandbox()),
        containers,
    };
    let waiting: BTreeMap<String, Waiting> = waiting
        .iter()
        .map(|(n, r, m)| {
            (
                n.to_string(),
                Waiting {
                    reason: r.to_string(),
                    message: m.to_string(),
                },
            )
        })
        .collect();
    pod_status(
        p,
        &StatusInput {
            runtime: &rt,
            probes: &probes,
            waiting: &waiting,
            host_ip: "127.0.0.1",
            now: t(10),
        },
    )
}

fn cond<'a>(s: &'a Value, type_: &str) -> &'a Value {
    s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

#[test]
fn a_running_pod_is_ready_with_addresses_and_ids() {
    let p = pod(json!({}), json!({}));
    let s = status(&p, vec![running("app", 0)], &[], ProbeResults::new());
    assert_eq!(s["phase"], "Running");
    assert_eq!(s["podIP"], "10.42.0.9");
    assert_eq!(s["podIPs"], json!([{"ip": "10.42.0.9"}]));
    assert_eq!(s["hostIPs"], json!([{"ip": "127.0.0.1"}]));
    assert_eq!(s["startTime"], "2027-01-15T08:00:10Z");
    assert_eq!(s["qosClass"], "BestEffort");
    for c in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(cond(&s, c)["status"], "True", "{c}");
    }
    let c = &s["containerStatuses"][0];
    assert_eq!(c["containerID"], "stead://u1-app-0");
    assert_eq!(c["imageID"], "sha256:abc");
    assert_eq!(
        c["state"],
        json!({"running": {"startedAt": "2027-01-15T08:00:01Z"}})
    );
    assert_eq!(
        (c["ready"].clone(), c["started"].clone()),
        (json!(true), json!(true))
    );
}

#[test]
fn waiting_reasons_before_and_after_initialization() {
    let p = pod(
        json!({"initContainers": [{"name": "init", "image": "img:1"}]}),
        json!({}),
    );
    let s = status(&p, vec![running("init", 0)], &[], ProbeResults::new());
    assert_eq!(s["phase"], "Pending");
    assert_eq!(
        s["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(cond(&s, "Initialized")["status"], "False");
    assert_eq!(
        cond(&s, "Initialized")["reason"],
        "ContainersNotInitialized"
    );
    assert_eq!(
        cond(&s, "Initialized")["message"],
        "containers with incomplete status: [init]"
    );
    let s = status(
        &p,
        vec![exited("init", 0, 0, None)],
        &[],
        ProbeResults::new(),
    );
    assert_eq!(
        s["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    assert_eq!(
        s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(cond(&s, "Initialized")["status"], "True");
    assert_eq!(
        cond(&s, "Ready")["message"],
        "containers with unready status: [app]"
    );
}

#[test]
fn a_crash_loop_reports_the_back_off_and_the_last_termination() {
    let p = pod(json!({}), json!({}));
    let msg = "back-off 10s restarting failed container=app pod=web-0_ns(u1)";
    let s = status(
        &p,
        vec![exited("app", 1, 1, None)],
        &[("app", "CrashLoopBackOff", msg)],
        ProbeResults::new(),
    );
    let c = &s["containerStatuses"][0];
    assert_eq!(
        c["state"]["waiting"],
        json!({"reason": "CrashLoopBackOff", "message": msg})
    );
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(c["restartCount"], 1);
    assert_eq!(
        s["phase"], "Running",
        "a crash-looping container under Always keeps the pod Running"
    );
}

#[test]
fn pull_and_config_failures_show_as_waiting_reasons() {
    let p = pod(json!({}), json!({}));
    for reason in [
        "ErrImagePull",
        "ImagePullBackOff",
        "CreateContainerConfigError",
    ] {
        let s = status(&p, vec![], &[("app", reason, "why")], ProbeResults::new());
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            reason
        );
        assert_eq!(s["phase"], "Pending");
    }
}

#[test]
fn terminated_reasons_completed_error_and_oom_killed() {
    let never = pod(json!({"restartPolicy": "Never"}), json!({}));
    let s = status(
        &never,
        vec![exited("app", 0, 0, None)],
        &[],
        ProbeResults::new(),
    );
    assert_eq!(s["phase"], "Succeeded");
    assert_eq!(
        s["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(cond(&s, "Ready")["reason"], "PodCompleted");
    let s = status(
        &never,
        vec![exited("app", 0, 137, Some("OOMKilled"))],
        &[],
        ProbeResults::new(),
    );
    assert_eq!(s["phase"], "Failed");
    assert_eq!(
        s["containerStatuses"][0]["state"]["terminated"]["reason"],
        "OOMKilled"
    );
    let on_failure = pod(json!({"restartPolicy": "OnFailure"}), json!({}));
    let s = status(
        &on_failure,
        vec![exited("app", 0, 2, None)],
        &[],
        ProbeResults::new(),
    );
    assert_eq!(s["phase"], "Running");
    assert_eq!(
        s["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Error"
    );
}

#[test]
fn readiness_and_startup_probes_set_ready_and_started() {
    let p = pod(json!({}), json!({}));
    let probes = ProbeResults::from([(
        "u1-app-0".to_string(),
        ContainerProbes {
            started: true,
            ready: false,
            liveness_failed: false,
        },
    )]);
    let s = status(&p, vec![running("app", 0)], &[], probes);
    assert_eq!(s["containerStatuses"][0]["ready"], false);
    assert_eq!(s["containerStatuses"][0]["started"], true);
    assert_eq!(cond(&s, "ContainersReady")["status"], "False");
    assert_eq!(s["phase"], "Running");
}

#[test]
fn transition_times_move_only_when_a_condition_flips() {
    let old = json!({"startTime": "2027-01-15T07:00:00Z", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2027-01-15T07:00:05Z"},
        {"type": "Initialized", "status": "False", "lastTransitionTime": "2027-01-15T07:00:05Z"},
    ]});
    let p = pod(json!({}), old);
    let s = status(&p, vec![running("app", 0)], &[], ProbeResults::new());
    assert_eq!(
        cond(&s, "Ready")["lastTransitionTime"],
        "2027-01-15T07:00:05Z"
    );
    assert_eq!(
        cond(&s, "Initialized")["lastTransitionTime"],
        "2027-01-15T08:00:10Z"
    );
    assert_eq!(s["startTime"], "2027-01-15T07:00:00Z");
}

#[test]
fn a_terminal_phase_never_regresses() {
    let p = pod(json!({}), json!({"phase": "Failed"}));
    let s = status(&p, vec![running("app", 0)], &[], ProbeResults::new());
    assert_eq!(s["phase"], "Failed");
}

#[test]
fn qos_classes_follow_requests_and_limits() {
    let c = |r: Value| -> Container {
        serde_json::from_value(json!({"name": "c", "resources": r})).unwrap()
    };
    assert_eq!(qos_class(&[c(json!({}))], &[]), "BestEffort");
    let g = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
    assert_eq!(qos_class(&[c(g)], &[]), "Guaranteed");
    let b = json!({"requests": {"cpu": "100m"}});
    assert_eq!(qos_class(&[c(b)], &[]), "Burstable");
}

#[test]
fn an_unchanged_status_is_not_written_again() {
    let v = json!({"phase": "Running"});
    assert_eq!(status_patch(Some(&v), &v), None);
    assert_eq!(
        status_patch(None, &v),
        Some(json!({"status": {"phase": "Running"}}))
    );
}

#[test]
fn a_host_network_pod_has_the_host_address() {
    let p = pod(json!({"hostNetwork": true}), json!({}));
    let rt = PodRuntime {
        sandbox: Some(SandboxStatus {
            ip: None,
            ..sandbox()
        }),
        containers: vec![running("app", 0)],
    };
    let s = pod_status(
        &p,
        &StatusInput {
            runtime: &rt,
            probes: &ProbeResults::new(),
            waiting: &BTreeMap::new(),
            host_ip: "127.0.0.1",
            now: t(10),
        },
    );
    assert_eq!(s["podIP"], "127.0.0.1");
}
