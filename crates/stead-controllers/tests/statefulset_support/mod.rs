//! Shared harness of the StatefulSet integration tests: an in-process API server, the
//! StatefulSet controller (with a [`SyncLog`]), the garbage collector, a fake kubelet the test
//! steers per pod, and a pod-event recorder for creation/deletion order.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use stead_controllers::statefulset::{self, SyncLog};
use tokio::sync::watch;

pub const NS: &str = "default";
pub const OLD_IMAGE: &str = "registry.k8s.io/e2e-test-images/httpd:2.4.38-4";
pub const NEW_IMAGE: &str = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4";

/// What the fake kubelet makes of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Phase Pending, no conditions (the kubelet has not started it).
    Pending,
    /// Running and Ready.
    Ready,
    /// Running, Ready=False (a failing readiness probe).
    Unready,
    /// Phase Failed (rejected or evicted).
    Failed,
}

/// Pod ADDED/DELETED events in the order the watch delivered them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodEvent {
    Added(String),
    Deleted(String),
}

pub struct Env {
    server: Option<stead_apiserver::RunningServer>,
    pub client: Client,
    pub syncs: Arc<SyncLog>,
    pub kubeconfig: std::path::PathBuf,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    modes: Arc<Mutex<HashMap<String, Mode>>>,
    default_mode: Arc<Mutex<Mode>>,
    pub pod_events: Arc<Mutex<Vec<PodEvent>>>,
    pub dir: tempfile::TempDir,
}

pub use stead_testkit::eventually;
use stead_testkit::stopped;

/// Starts the server, the controllers, the kubelet and the pod recorder.
pub async fn start() -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(&dir.path().join("data")).await?;
    let kubeconfig = server.kubeconfig.clone();
    let (stop, rx) = watch::channel(false);
    let syncs = Arc::new(SyncLog::default());
    let controller_config = statefulset::Config {
        syncs: Some(syncs.clone()),
        ..statefulset::Config::default()
    };
    let modes = Arc::new(Mutex::new(HashMap::new()));
    let default_mode = Arc::new(Mutex::new(Mode::Ready));
    let pod_events = Arc::new(Mutex::new(Vec::new()));
    let tasks = vec![
        tokio::spawn(statefulset::run_with(
            client.clone(),
            statefulset::KubeEffects::new(client.clone()),
            controller_config,
            stopped(rx.clone()),
        )),
        tokio::spawn(stead_controllers::gc::run(
            client.clone(),
            stopped(rx.clone()),
        )),
        // Removes the pvc-protection finalizer of deleted claims, as in `stead server`.
        tokio::spawn(stead_controllers::volume::run(
            client.clone(),
            stopped(rx.clone()),
        )),
        tokio::spawn(kubelet(
            client.clone(),
            modes.clone(),
            default_mode.clone(),
            stopped(rx.clone()),
        )),
        tokio::spawn(record_pods(client.clone(), pod_events.clone(), stopped(rx))),
    ];
    Ok(Env {
        server: Some(server),
        client,
        syncs,
        kubeconfig,
        stop,
        tasks,
        modes,
        default_mode,
        pod_events,
        dir,
    })
}

/// Plays the kubelet: every 25 ms, brings each live pod's status to its mode.
async fn kubelet(
    client: Client,
    modes: Arc<Mutex<HashMap<String, Mode>>>,
    default_mode: Arc<Mutex<Mode>>,
    shutdown: impl Future<Output = ()>,
) {
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let work = async {
        loop {
            if let Ok(list) = pods.list(&ListParams::default()).await {
                for pod in list.items {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    // A terminating pod's containers are stopping: no longer Ready.
                    let mode = if pod.metadata.deletion_timestamp.is_some() {
                        Mode::Unready
                    } else {
                        modes
                            .lock()
                            .unwrap()
                            .get(&name)
                            .copied()
                            .unwrap_or(*default_mode.lock().unwrap())
                    };
                    if let Some(status) = wanted_status(&pod, mode) {
                        let _ = pods
                            .patch_status(
                                &name,
                                &PatchParams::default(),
                                &Patch::Merge(json!({"status": status})),
                            )
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    tokio::select! {
        () = shutdown => {}
        () = work => {}
    }
}

fn wanted_status(pod: &Pod, mode: Mode) -> Option<Value> {
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone());
    let (want_phase, want_ready) = match mode {
        Mode::Pending => ("Pending", None),
        Mode::Ready => ("Running", Some("True")),
        Mode::Unready => ("Running", Some("False")),
        Mode::Failed => ("Failed", Some("False")),
    };
    // Failed and Succeeded are terminal: a kubelet never restarts such a pod.
    if phase == want_phase && ready.as_deref() == want_ready
        || phase == "Failed"
        || phase == "Succeeded"
    {
        return None;
    }
    let now = jiff::Timestamp::now().to_string();
    let conditions = match want_ready {
        Some(r) => json!([{"type": "Ready", "status": r, "lastTransitionTime": now}]),
        None => Value::Null,
    };
    Some(json!({"phase": want_phase, "conditions": conditions}))
}

/// Records first ADDED per uid and every DELETED of the namespace's pods.
async fn record_pods(
    client: Client,
    events: Arc<Mutex<Vec<PodEvent>>>,
    shutdown: impl Future<Output = ()>,
) {
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let mut seen = std::collections::HashSet::new();
    let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
    let work = async {
        while let Some(e) = stream.next().await {
            match e {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    if seen.insert(uid) {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        events.lock().unwrap().push(PodEvent::Added(name));
                    }
                }
                Ok(watcher::Event::Delete(p)) => {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    events.lock().unwrap().push(PodEvent::Deleted(name));
                }
                _ => {}
            }
        }
    };
    tokio::select! {
        () = shutdown => {}
        () = work => {}
    }
}

/// A StatefulSet like upstream's e2e `NewStatefulSet`: selector `foo=bar, baz=blah`, one
/// `webserver` container, `updateStrategy: RollingUpdate` without `rollingUpdate`.
pub fn new_set(name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "serviceName": "test",
            "selector": {"matchLabels": {"foo": "bar", "baz": "blah"}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"foo": "bar", "baz": "blah"}},
                "spec": {"containers": [{"name": "webserver", "image": OLD_IMAGE}]}
            }
        }
    })
}

/// Adds a `datadir` claim template (1 byte, RWO).
pub fn with_claims(mut set: Value) -> Value {
    set["spec"]["volumeClaimTemplates"] = json!([{
        "metadata": {"name": "datadir"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1"}}}
    }]);
    set["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "datadir", "mountPath": "/data/"}]);
    set
}

impl Env {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    pub fn sets(&self) -> Api<StatefulSet> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub async fn create_set(&self, set: Value) -> Result<StatefulSet> {
        let set: StatefulSet = serde_json::from_value(set)?;
        Ok(self.sets().create(&PostParams::default(), &set).await?)
    }

    /// Merge-patches the set (spec changes, scaling).
    pub async fn patch_set(&self, name: &str, patch: Value) -> Result<StatefulSet> {
        self.patch_with(name, Patch::Merge(patch)).await
    }

    /// Patches the set. A patch without a resourceVersion never answers 409 (the server redoes
    /// it when the controller's status write races it), so no retry is needed here.
    async fn patch_with(&self, name: &str, patch: Patch<Value>) -> Result<StatefulSet> {
        Ok(self
            .sets()
            .patch(name, &PatchParams::default(), &patch)
            .await?)
    }

    pub async fn scale(&self, name: &str, replicas: i32) -> Result<StatefulSet> {
        self.patch_set(name, json!({"spec": {"replicas": replicas}}))
            .await
    }

    pub async fn set_image(&self, name: &str, image: &str) -> Result<StatefulSet> {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "webserver", "image": image}
        ]}}}});
        self.patch_with(name, Patch::Strategic(patch)).await
    }

    /// Sets what the kubelet makes of one pod.
    pub fn set_mode(&self, pod: &str, mode: Mode) {
        self.modes.lock().unwrap().insert(pod.to_string(), mode);
    }

    /// Sets what the kubelet makes of pods without their own mode.
    pub fn set_default_mode(&self, mode: Mode) {
        *self.default_mode.lock().unwrap() = mode;
    }

    /// Clears every per-pod mode.
    pub fn clear_modes(&self) {
        self.modes.lock().unwrap().clear();
    }

    /// Live (non-terminating) pods of the namespace, sorted by name.
    pub async fn live_pods(&self) -> Result<Vec<Pod>> {
        let mut pods: Vec<Pod> = self
            .pods()
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        pods.sort_by_key(ordinal);
        Ok(pods)
    }

    pub async fn pod_names(&self) -> Result<Vec<String>> {
        Ok(self.live_pods().await?.iter().map(name).collect())
    }

    /// Waits until exactly `names` exist (alive) and those with `ready` listed are Ready.
    pub async fn wait_pods(&self, names: &[&str], ready: &[&str]) -> Result<Vec<Pod>> {
        eventually(&format!("pods {names:?} with {ready:?} ready"), || async {
            let pods = self.live_pods().await?;
            let got: Vec<String> = pods.iter().map(name).collect();
            let ok = got == names
                && pods
                    .iter()
                    .all(|p| is_ready(p) == ready.contains(&name(p).as_str()));
            Ok(ok.then_some(pods))
        })
        .await
    }

    /// Waits until `n` pods `web-0..` are Running and Ready and the set's status says so.
    pub async fn wait_ready(&self, set: &str, n: i32) -> Result<StatefulSet> {
        eventually(&format!("{set}: {n} ready"), || async {
            let s = self.sets().get(set).await?;
            let st = s.status.clone().unwrap_or_default();
            let pods = self.live_pods().await?;
            let ok = st.observed_generation >= s.metadata.generation
                && st.ready_replicas == Some(n)
                && st.replicas == n
                && pods.len() == usize::try_from(n)?
                && pods.iter().all(is_ready);
            Ok(ok.then_some(s))
        })
        .await
    }

    /// Waits for `status.observedGeneration >= generation` (e2e `waitForStatus`).
    pub async fn wait_observed(&self, set: &str) -> Result<StatefulSet> {
        eventually("observed generation", || async {
            let s = self.sets().get(set).await?;
            let st = s.status.clone().unwrap_or_default();
            Ok((st.observed_generation >= s.metadata.generation).then_some(s))
        })
        .await
    }

    /// Waits for the set's status to satisfy `f`.
    pub async fn wait_status(
        &self,
        set: &str,
        what: &str,
        f: impl Fn(&StatefulSet) -> bool,
    ) -> Result<StatefulSet> {
        eventually(what, || async {
            let s = self.sets().get(set).await?;
            Ok(f(&s).then_some(s))
        })
        .await
    }

    /// e2e `waitForRollingUpdate`: all pods exist and `updateRevision == currentRevision`.
    pub async fn wait_rolling_update(&self, set: &str) -> Result<StatefulSet> {
        eventually("rolling update", || async {
            let s = self.sets().get(set).await?;
            let st = s.status.clone().unwrap_or_default();
            let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let pods = self.live_pods().await?;
            let ok = st.observed_generation >= s.metadata.generation
                && st.update_revision.is_some()
                && st.current_revision == st.update_revision
                && pods.len() == usize::try_from(want)?
                && pods
                    .iter()
                    .all(|p| revision(p) == st.update_revision.clone().unwrap_or_default())
                && pods.iter().all(is_ready);
            Ok(ok.then_some(s))
        })
        .await
    }

    /// Makes the controller sync `set` at least `rounds` more times after now (touching an
    /// annotation each round and waiting for a sync that started after the touch).
    pub async fn settle(&self, set: &str, rounds: u32) -> Result<()> {
        let key = format!("{NS}/{set}");
        for i in 0..rounds {
            let before = self.syncs.count(&key);
            self.patch_set(
                set,
                json!({"metadata": {"annotations": {"test.stead.dev/touch": i.to_string()}}}),
            )
            .await?;
            tokio::time::timeout(
                Duration::from_secs(30),
                self.syncs.wait_for(&key, before + 1),
            )
            .await
            .context("controller did not sync")?;
        }
        Ok(())
    }

    /// Deletes a pod with grace period 0 (e2e `deleteStatefulPodAtIndex`).
    pub async fn delete_pod(&self, name: &str) -> Result<()> {
        self.pods()
            .delete(name, &kube::api::DeleteParams::default().grace_period(0))
            .await?;
        Ok(())
    }

    /// The set's status revisions: (current, update).
    pub async fn revisions_of(&self, set: &str) -> Result<(String, String)> {
        let st = status_of(&self.sets().get(set).await?);
        Ok((
            st.current_revision.unwrap_or_default(),
            st.update_revision.unwrap_or_default(),
        ))
    }

    /// Waits until every live pod with ordinal >= `from` carries `revision` and is Ready, and
    /// `n` pods exist (e2e `waitForPartitionedRollingUpdate`).
    pub async fn wait_partitioned(
        &self,
        n: usize,
        from: i64,
        revision_name: &str,
    ) -> Result<Vec<Pod>> {
        eventually(&format!("pods >= {from} at {revision_name}"), || async {
            let pods = self.live_pods().await?;
            let ok = pods.len() == n
                && pods.iter().all(is_ready)
                && pods
                    .iter()
                    .filter(|p| ordinal(p) >= from)
                    .all(|p| revision(p) == revision_name);
            Ok(ok.then_some(pods))
        })
        .await
    }

    pub fn take_pod_events(&self) -> Vec<PodEvent> {
        std::mem::take(&mut *self.pod_events.lock().unwrap())
    }

    /// Runs kubectl 1.33 against the server; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> Result<(bool, String, String)> {
        let out = std::process::Command::new("/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .output()?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

pub fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

pub fn ordinal(p: &Pod) -> i64 {
    name(p)
        .rsplit_once('-')
        .and_then(|(_, o)| o.parse().ok())
        .unwrap_or(-1)
}

pub fn is_ready(p: &Pod) -> bool {
    let st = p.status.clone().unwrap_or_default();
    st.phase.as_deref() == Some("Running")
        && st
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

pub fn revision(p: &Pod) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .unwrap_or_default()
}

pub fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

pub fn status_of(s: &StatefulSet) -> k8s_openapi::api::apps::v1::StatefulSetStatus {
    s.status.clone().unwrap_or_default()
}
