//! The kubelet against a real API server in-process, over HTTPS with a kube client, as
//! `stead server` runs it, with the stateful fake runtime and image store underneath: a pod
//! bound to the node goes Running and Ready with the expected status, a container that dies is
//! restarted, a deleted pod leaves the API only after its sandbox is gone, and a restarted agent
//! adopts what runs instead of starting it again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use stead_agent::kubelet::testing::{Call, FakeImages, FakeRuntime};
use stead_agent::{NodeConfig, run_node};
use stead_testkit::{eventually, stopped};
use tokio::sync::watch;

const NODE: &str = "kube-node";

struct Env {
    server: Option<stead_apiserver::RunningServer>,
    client: Client,
    dir: tempfile::TempDir,
}

async fn server() -> Result<Env> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(&dir.path().join("server")).await?;
    Ok(Env {
        server: Some(server),
        client,
        dir,
    })
}

struct Agent {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Env {
    fn agent(&self, runtime: &FakeRuntime, images: &FakeImages) -> Agent {
        let (stop, rx) = watch::channel(false);
        let config = NodeConfig::new(NODE, self.dir.path().join("node"));
        let task = tokio::spawn(run_node(
            self.client.clone(),
            config,
            Arc::new(runtime.clone()),
            Arc::new(images.clone()),
            stopped(rx),
        ));
        Agent { stop, task }
    }

    async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

impl Agent {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn web_pod() -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "nodeName": NODE,
            "hostname": "web-0",
            "subdomain": "web",
            "containers": [{
                "name": "app",
                "image": "nginx:1",
                "args": ["--greet", "$(GREETING)"],
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/app"},
                    {"name": "scratch", "mountPath": "/tmp/scratch"},
                ],
                "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 1},
            }],
            "volumes": [
                {"name": "config", "configMap": {"name": "cfg"}},
                {"name": "scratch", "emptyDir": {}},
            ],
        },
    }))?)
}

fn status_of(p: &Pod) -> Value {
    serde_json::to_value(p.status.clone().unwrap_or_default()).unwrap_or_default()
}

fn condition(s: &Value, type_: &str) -> String {
    s["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .map(|c| c["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Creates `pod` and returns its uid.
async fn create_pod(pods: &Api<Pod>, pod: Value) -> Result<String> {
    let pod: Pod = serde_json::from_value(pod)?;
    let created = pods.create(&PostParams::default(), &pod).await?;
    created.metadata.uid.context("uid")
}

/// Waits for an event in `default` that `matches`.
async fn wait_event(
    client: &Client,
    what: &str,
    matches: impl Fn(&k8s_openapi::api::core::v1::Event) -> bool,
) -> Result<()> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    eventually(what, || {
        let (events, matches) = (&events, &matches);
        async move {
            let list = events.list(&Default::default()).await?;
            Ok(list.items.iter().any(matches).then_some(()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_pod_runs_restarts_and_leaves_only_after_its_sandbox() -> Result<()> {
    let env = server().await?;
    let (runtime, images) = (FakeRuntime::new(), FakeImages::new());
    let agent = env.agent(&runtime, &images);

    let nodes: Api<Node> = Api::all(env.client.clone());
    let node = eventually("the node to register", || async {
        Ok(nodes.get_opt(NODE).await?)
    })
    .await?;
    let annotations = node.metadata.annotations.unwrap_or_default();
    let volumes_dir = env.dir.path().join("node/volumes").display().to_string();
    assert_eq!(annotations.get("stead.io/volumes-dir"), Some(&volumes_dir));

    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cfg"}, "data": {"greeting": "hello"}
    }))?;
    cms.create(&PostParams::default(), &cm).await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let created = pods.create(&PostParams::default(), &web_pod()?).await?;
    let uid = created.metadata.uid.clone().context("uid")?;

    // Running and Ready, with the status a kubelet reports.
    let s = eventually("web-0 Running and Ready", || async {
        let s = status_of(&pods.get("web-0").await?);
        Ok((s["phase"] == "Running" && condition(&s, "Ready") == "True").then_some(s))
    })
    .await?;
    for c in [
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "PodReadyToStartContainers",
    ] {
        assert_eq!(condition(&s, c), "True", "{c}");
    }
    let cs = &s["containerStatuses"][0];
    assert_eq!(cs["name"], "app");
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["started"], true);
    assert_eq!(cs["restartCount"], 0);
    assert_eq!(cs["image"], "nginx:1");
    assert!(cs["state"]["running"]["startedAt"].is_string());
    let id = format!("{uid}-app-0");
    assert_eq!(cs["containerID"], format!("stead://{id}"));
    assert!(
        s["podIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.42."))
    );
    assert_eq!(s["hostIP"], "127.0.0.1");
    assert_eq!(s["qosClass"], "BestEffort");

    // What the runtime was asked to run.
    let spec = runtime.container_spec(&id).context("container spec")?;
    assert_eq!(spec.command, ["/bin/sh", "--greet", "hello"]);
    assert!(spec.env.contains(&"GREETING=hello".to_string()));
    assert!(spec.env.contains(&"POD=web-0".to_string()));
    let config = spec
        .mounts
        .iter()
        .find(|m| m.container_path == "/etc/app")
        .context("mount")?;
    assert!(config.read_only);
    assert_eq!(
        std::fs::read_to_string(config.host_path.join("greeting"))?,
        "hello"
    );
    let hosts = spec
        .mounts
        .iter()
        .find(|m| m.container_path == "/etc/hosts")
        .context("hosts")?;
    let hosts = std::fs::read_to_string(&hosts.host_path)?;
    let ip = s["podIP"].as_str().unwrap_or("");
    assert!(
        hosts.contains(&format!("{ip}\tweb-0.web.default.svc.cluster.local\tweb-0")),
        "{hosts}"
    );
    let sandbox = runtime.sandbox_spec(&uid).context("sandbox spec")?;
    assert!(
        sandbox
            .resolv_conf
            .starts_with("nameserver 10.43.0.10\nsearch default.svc.cluster.local")
    );

    // The container dies: it is restarted (the first restart is immediate).
    runtime.exit(&id, 1);
    let s = eventually("app restarted", || async {
        let s = status_of(&pods.get("web-0").await?);
        let cs = &s["containerStatuses"][0];
        Ok((cs["restartCount"] == 1 && cs["state"]["running"].is_object()).then_some(s))
    })
    .await?;
    let last = &s["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 1);
    assert_eq!(last["reason"], "Error");

    // Readiness fails: not ready, still running.
    runtime.set_exec_result(&["ready"], 1);
    eventually("web-0 unready", || async {
        let s = status_of(&pods.get("web-0").await?);
        Ok(
            (condition(&s, "Ready") == "False" && s["containerStatuses"][0]["ready"] == false)
                .then_some(()),
        )
    })
    .await?;
    runtime.set_exec_result(&["ready"], 0);

    // The sandbox dies (its pause process is gone): it is replaced, and the pod runs again in
    // the new one (ref: kubelet events.SandboxChanged).
    runtime.lose_sandbox(&uid);
    eventually("web-0 Running and Ready in a new sandbox", || async {
        let s = status_of(&pods.get("web-0").await?);
        let replaced = runtime.calls().contains(&Call::RemoveSandbox(uid.clone()));
        Ok((replaced && s["phase"] == "Running" && condition(&s, "Ready") == "True").then_some(()))
    })
    .await?;
    wait_event(&env.client, "the SandboxChanged event", |e| {
        e.reason.as_deref() == Some("SandboxChanged")
            && e.message.as_deref()
                == Some("Pod sandbox changed, it will be killed and re-created.")
    })
    .await?;

    // Deleted: the pod object goes only after the sandbox is gone.
    pods.delete("web-0", &DeleteParams::default()).await?;
    let sandbox_left = eventually("web-0 to leave the API", || async {
        let present = pods.get_opt("web-0").await?;
        // Sampled after the GET: the sandbox goes before the pod object, so once the object is
        // seen gone, the sandbox must be gone too.
        let sandbox_left = !runtime.sandboxes().is_empty();
        Ok(present.is_none().then_some(sandbox_left))
    })
    .await?;
    ensure!(
        !sandbox_left,
        "the pod left the API before its sandbox was removed"
    );
    let calls = runtime.calls();
    let stop = calls
        .iter()
        .position(|c| matches!(c, Call::StopContainer(x) if x.ends_with("-app-2")));
    let remove = calls
        .iter()
        .rposition(|c| *c == Call::RemoveSandbox(uid.clone()));
    assert!(
        stop.is_some() && remove.is_some() && stop < remove,
        "{calls:?}"
    );

    agent.stop().await;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_adopts_running_pods_and_removes_orphans() -> Result<()> {
    let env = server().await?;
    let (runtime, images) = (FakeRuntime::new(), FakeImages::new());
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"greeting": "hi"}}))?;
    cms.create(&PostParams::default(), &cm).await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    pods.create(&PostParams::default(), &web_pod()?).await?;

    let agent = env.agent(&runtime, &images);
    eventually("web-0 Running", || async {
        let s = status_of(&pods.get("web-0").await?);
        Ok((s["phase"] == "Running").then_some(()))
    })
    .await?;
    agent.stop().await;
    let starts = |calls: &[Call]| {
        calls
            .iter()
            .filter(|c| matches!(c, Call::StartContainer { .. }))
            .count()
    };
    let before = starts(&runtime.calls());

    // A sandbox of a pod that no longer exists, left by the earlier run.
    let orphan = stead_agent::runtime::SandboxStatus {
        id: "gone-uid".into(),
        namespace: "default".into(),
        name: "gone".into(),
        ip: None,
        created_at: jiff::Timestamp::now(),
        ready: true,
        labels: [("stead.io/pod-uid".to_string(), "gone-uid".to_string())].into(),
    };
    runtime.adopt(orphan, vec![]);

    let agent = env.agent(&runtime, &images);
    eventually("the orphaned sandbox to be removed", || async {
        Ok(runtime
            .calls()
            .contains(&Call::RemoveSandbox("gone-uid".into()))
            .then_some(()))
    })
    .await?;
    // A few resyncs later nothing was started twice.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(starts(&runtime.calls()), before, "{:?}", runtime.calls());
    let s = status_of(&pods.get("web-0").await?);
    assert_eq!(s["phase"], "Running");
    assert_eq!(s["containerStatuses"][0]["restartCount"], 0);

    agent.stop().await;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_and_config_failures_are_reported_and_recovered() -> Result<()> {
    use base64::Engine;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams};
    let env = server().await?;
    let (runtime, images) = (FakeRuntime::new(), FakeImages::new());
    images.fail(
        "missing:1",
        Some(stead_agent::runtime::ImageError::Pull(
            "manifest unknown".into(),
        )),
    );
    let agent = env.agent(&runtime, &images);
    let client = env.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");

    let docker = json!({"auths": {"localhost:5000": {"username": "bob", "password": "pw"}}});
    let pull: Secret = serde_json::from_value(json!({
        "metadata": {"name": "pull"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(docker.to_string())},
    }))?;
    secrets.create(&PostParams::default(), &pull).await?;
    let bad: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {"nodeName": NODE, "imagePullSecrets": [{"name": "pull"}],
                 "containers": [{"name": "app", "image": "missing:1"}]},
    }))?;
    pods.create(&PostParams::default(), &bad).await?;
    eventually("bad in ImagePullBackOff", || async {
        let s = status_of(&pods.get("bad").await?);
        let w = &s["containerStatuses"][0]["state"]["waiting"];
        Ok((w["reason"] == "ImagePullBackOff").then_some(()))
    })
    .await?;
    let pulls = images.pulls();
    assert_eq!(pulls[0].auth[0].username, "bob");
    // Ref: kubelet events.BackOffPullImage.
    wait_event(&client, "the BackOff pull event", |e| {
        e.reason.as_deref() == Some("BackOff")
            && e.type_.as_deref() == Some("Normal")
            && e.message.as_deref() == Some("Back-off pulling image \"missing:1\"")
            && e.involved_object.field_path.as_deref() == Some("spec.containers{app}")
    })
    .await?;
    assert_eq!(pulls[0].auth[0].registry, "localhost:5000");
    wait_event(&client, "the Failed pull event", |e| {
        e.reason.as_deref() == Some("Failed")
            && e.message
                .as_deref()
                .is_some_and(|m| m.starts_with("Failed to pull image \"missing:1\""))
            && e.reporting_component.as_deref() == Some("kubelet")
            && e.involved_object.field_path.as_deref() == Some("spec.containers{app}")
    })
    .await?;

    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {}}))?;
    cms.create(&PostParams::default(), &cm).await?;
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "cfgerr"},
        "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "img:1", "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x"}}}]}]},
    }))?;
    pods.create(&PostParams::default(), &p).await?;
    let w = eventually("cfgerr in CreateContainerConfigError", || async {
        let s = status_of(&pods.get("cfgerr").await?);
        let w = s["containerStatuses"][0]["state"]["waiting"].clone();
        Ok((w["reason"] == "CreateContainerConfigError").then_some(w))
    })
    .await?;
    assert_eq!(w["message"], "couldn't find key x in ConfigMap default/cfg");
    cms.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await?;
    eventually("cfgerr Running once the key exists", || async {
        let s = status_of(&pods.get("cfgerr").await?);
        Ok((s["phase"] == "Running").then_some(()))
    })
    .await?;

    // A container that keeps failing: restarted at once the first time, then held back with
    // CrashLoopBackOff and a BackOff warning (ref: kubelet events.BackOffStartContainer).
    let uid = create_pod(
        &pods,
        json!({
            "metadata": {"name": "crash"},
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "img:1"}]},
        }),
    )
    .await?;
    for attempt in 0..2 {
        let id = format!("{uid}-app-{attempt}");
        eventually("crash running", || async {
            let s = status_of(&pods.get("crash").await?);
            let c = &s["containerStatuses"][0];
            Ok(
                (c["containerID"] == format!("stead://{id}") && c["state"]["running"].is_object())
                    .then_some(()),
            )
        })
        .await?;
        runtime.exit(&id, 1);
    }
    let w = eventually("crash in CrashLoopBackOff", || async {
        let s = status_of(&pods.get("crash").await?);
        let w = s["containerStatuses"][0]["state"]["waiting"].clone();
        Ok((w["reason"] == "CrashLoopBackOff").then_some(w))
    })
    .await?;
    assert_eq!(
        w["message"],
        format!("back-off 10s restarting failed container=app pod=crash_default({uid})")
    );
    let message = format!("Back-off restarting failed container app in pod crash_default({uid})");
    wait_event(&client, "the BackOff restart event", |e| {
        e.reason.as_deref() == Some("BackOff")
            && e.type_.as_deref() == Some("Warning")
            && e.message.as_deref() == Some(message.as_str())
    })
    .await?;

    agent.stop().await;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_liveness_probe_restarts_the_container_and_pre_stop_runs_before_the_kill()
-> Result<()> {
    use k8s_openapi::api::core::v1::Event;
    use kube::api::ListParams;
    let env = server().await?;
    let (runtime, images) = (FakeRuntime::new(), FakeImages::new());
    let agent = env.agent(&runtime, &images);
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let uid = create_pod(
        &pods,
        json!({
            "metadata": {"name": "live"},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5, "containers": [{
                "name": "app", "image": "img:1",
                "livenessProbe": {"exec": {"command": ["alive"]}, "periodSeconds": 1, "failureThreshold": 2},
                "lifecycle": {"preStop": {"exec": {"command": ["drain"]}}},
            }]},
        }),
    )
    .await?;
    eventually("live Running", || async {
        Ok((status_of(&pods.get("live").await?)["phase"] == "Running").then_some(()))
    })
    .await?;

    runtime.set_exec_result(&["alive"], 1);
    eventually("live restarted after its liveness failed", || async {
        let s = status_of(&pods.get("live").await?);
        Ok((s["containerStatuses"][0]["restartCount"] == 1).then_some(()))
    })
    .await?;
    runtime.set_exec_result(&["alive"], 0);
    let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
    eventually("Unhealthy and Killing events", || async {
        let list = events.list(&ListParams::default()).await?;
        let has = |reason: &str, message: &str| {
            list.items.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.message.as_deref().is_some_and(|m| m.starts_with(message))
            })
        };
        Ok((has("Unhealthy", "Liveness probe failed:")
            && has(
                "Killing",
                "Container app failed liveness probe, will be restarted",
            ))
        .then_some(()))
    })
    .await?;
    // The probe failed at least twice with the same message: one event, counted.
    eventually("one Unhealthy event counted at least twice", || async {
        let list = events.list(&ListParams::default()).await?;
        let unhealthy: Vec<&Event> = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
            .collect();
        Ok((unhealthy.len() == 1 && unhealthy[0].count >= Some(2)).then_some(()))
    })
    .await?;

    pods.delete("live", &DeleteParams::default()).await?;
    eventually("live to leave the API", || async {
        Ok(pods.get_opt("live").await?.is_none().then_some(()))
    })
    .await?;
    let calls = runtime.calls();
    let current = format!("{uid}-app-1");
    let hook = calls.iter().position(
        |c| matches!(c, Call::ExecSync { id, command } if *id == current && command == &["drain"]),
    );
    let stop = calls
        .iter()
        .rposition(|c| *c == Call::StopContainer(current.clone()));
    assert!(hook.is_some() && hook < stop, "{calls:?}");

    agent.stop().await;
    env.shutdown().await;
    Ok(())
}
