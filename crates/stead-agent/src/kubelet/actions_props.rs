//! Random worlds for [`compute_pod_actions`]: containers exit, sandboxes die, time passes, the
//! pod is deleted; a simulated runtime carries the actions out, and invariants are checked after
//! every pass.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::kubelet::view::ProbeResults;
use crate::runtime::SandboxStatus;

#[derive(Debug, Clone)]
enum Step {
    /// The running container with this index (mod the running count) exits with this code.
    Exit(usize, i32),
    LoseSandbox,
    Advance(i64),
    Delete,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..4, prop_oneof![Just(0), Just(1)]).prop_map(|(i, c)| Step::Exit(i, c)),
        1 => Just(Step::LoseSandbox),
        3 => (1i64..400).prop_map(Step::Advance),
        1 => Just(Step::Delete),
    ]
}

fn pod(inits: usize, containers: usize, policy: &str) -> Pod {
    let c = |n: String| json!({"name": n, "image": "img:1"});
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "restartPolicy": policy,
            "initContainers": (0..inits).map(|i| c(format!("init{i}"))).collect::<Vec<_>>(),
            "containers": (0..containers).map(|i| c(format!("c{i}"))).collect::<Vec<_>>(),
        },
    }))
    .unwrap()
}

struct World {
    now: i64,
    sandbox: Option<SandboxStatus>,
    containers: Vec<ContainerStatus>,
    memory: Memory,
    confirmed: bool,
    started: HashMap<String, Vec<u32>>,
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

impl World {
    fn view(&self) -> PodRuntime {
        PodRuntime {
            sandbox: self.sandbox.clone(),
            containers: self.containers.clone(),
        }
    }

    fn exit(&mut self, id: &str, code: i32) {
        let now = ts(self.now);
        if let Some(c) = self.containers.iter_mut().find(|c| c.id == id)
            && matches!(c.state, ContainerState::Running { .. })
        {
            c.state = ContainerState::Exited {
                started_at: None,
                finished_at: now,
                exit_code: code,
                signal: None,
                reason: None,
                message: None,
            };
        }
    }

    /// Carries out `a` as the worker would.
    fn apply(&mut self, a: &PodActions) {
        for k in &a.kill {
            self.exit(&k.id, 137);
        }
        self.containers
            .retain(|c| !a.remove_containers.contains(&c.id));
        if a.remove_sandbox {
            self.sandbox = None;
            self.containers.clear();
        }
        if a.create_sandbox {
            self.sandbox = Some(SandboxStatus {
                id: "u".into(),
                namespace: "ns".into(),
                name: "p".into(),
                ip: None,
                created_at: ts(self.now),
                ready: true,
                labels: BTreeMap::new(),
            });
        }
        for s in &a.start {
            if self.sandbox.as_ref().is_none_or(|s| !s.ready) {
                continue;
            }
            self.containers.push(ContainerStatus {
                id: format!("u-{}-{}", s.name, s.attempt),
                sandbox: "u".into(),
                name: s.name.clone(),
                attempt: s.attempt,
                image_id: String::new(),
                image_ref: "img:1".into(),
                state: ContainerState::Running {
                    started_at: ts(self.now),
                },
                log_path: Default::default(),
                labels: BTreeMap::new(),
            });
            self.memory.last_attempt.insert(s.name.clone(), s.attempt);
            if let Some(f) = s.restart_of {
                self.memory.backoff.next(&s.name, f);
            }
            self.started
                .entry(s.name.clone())
                .or_default()
                .push(s.attempt);
        }
        if a.confirm_deletion {
            self.confirmed = true;
        }
    }
}

fn running_names(w: &World) -> Vec<String> {
    w.containers
        .iter()
        .filter(|c| matches!(c.state, ContainerState::Running { .. }))
        .map(|c| c.name.clone())
        .collect()
}

fn check(p: &Pod, before: &PodRuntime, a: &PodActions, w: &World) -> Result<(), TestCaseError> {
    let mut names = running_names(w);
    let n = names.len();
    names.sort();
    names.dedup();
    prop_assert_eq!(names.len(), n, "two running attempts of one container");
    for (name, attempts) in &w.started {
        prop_assert!(
            attempts.windows(2).all(|x| x[0] < x[1]),
            "attempts of {} go back: {:?}",
            name,
            attempts
        );
    }
    if p.metadata.deletion_timestamp.is_some() {
        prop_assert!(
            a.start.is_empty() && !a.create_sandbox,
            "started something while deleting"
        );
    }
    if a.confirm_deletion {
        prop_assert!(
            before.sandbox.is_none() && !before.any_running(),
            "confirmed with processes left"
        );
    }
    let regular_started = a.start.iter().any(|s| !s.init);
    if regular_started && !a.create_sandbox {
        let inits = p
            .spec
            .as_ref()
            .unwrap()
            .init_containers
            .clone()
            .unwrap_or_default();
        for i in inits {
            let done = before
                .latest(&i.name)
                .is_some_and(|c| matches!(c.state, ContainerState::Exited { exit_code: 0, .. }));
            prop_assert!(
                done,
                "regular container started before {} completed",
                i.name
            );
        }
    }
    prop_assert!(
        a.start.iter().filter(|s| s.init).count() <= 1,
        "two init containers at once"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_worlds_keep_the_pod_invariants(
        inits in 0usize..3,
        containers in 1usize..3,
        policy in prop_oneof![Just("Always"), Just("OnFailure"), Just("Never")],
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let mut p = pod(inits, containers, policy);
        let mut w = World { now: 0, sandbox: None, containers: vec![], memory: Memory::default(), confirmed: false, started: HashMap::new() };
        for s in steps {
            match s {
                Step::Exit(i, code) => {
                    let running: Vec<String> = w.containers.iter()
                        .filter(|c| matches!(c.state, ContainerState::Running { .. }))
                        .map(|c| c.id.clone()).collect();
                    if !running.is_empty() {
                        let id = running[i % running.len()].clone();
                        w.exit(&id, code);
                    }
                }
                Step::LoseSandbox => if let Some(sb) = &mut w.sandbox { sb.ready = false },
                Step::Advance(d) => w.now += d,
                Step::Delete => {
                    p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts(w.now)));
                }
            }
            let before = w.view();
            let a = compute_pod_actions(&p, &before, &ProbeResults::new(), &w.memory, ts(w.now));
            w.apply(&a);
            check(&p, &before, &a, &w)?;
        }
        // A deleted pod is confirmed within three passes once nothing else happens.
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts(w.now)));
        for _ in 0..3 {
            let before = w.view();
            let a = compute_pod_actions(&p, &before, &ProbeResults::new(), &w.memory, ts(w.now));
            w.apply(&a);
            check(&p, &before, &a, &w)?;
        }
        prop_assert!(w.confirmed, "deletion never confirmed");
    }
}
