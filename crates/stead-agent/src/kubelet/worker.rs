//! One pod's worker (upstream `pod_workers`): a task per pod, so everything done to one pod is
//! serialised. Each pass lists the runtime, runs due probes, asks [`compute_pod_actions`] what
//! to do, does it, and hands the resulting status to the pod's status writer (a task of its own,
//! so a slow API server never holds the worker). The worker wakes on a newer pod object, when a
//! back-off ends, and every second (the runtime has no event stream: like upstream's PLEG
//! relist).
//!
//! `/etc/hosts`: the pod's address is known only once its sandbox exists, so the sandbox gets
//! the hosts file without the pod's own line and every container mounts
//! `<data_dir>/pods/<uid>/etc-hosts` (with it) at `/etc/hosts`, as upstream's kubelet does.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Pod, PodStatus, Probe, Secret,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Client, Error};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::actions::{
    Kill, KillReason, PodActions, Start, Waiting, compute_pod_actions, grace_period, pod_ref,
};
use super::config::{NodeConfig, log_path, pod_dir};
use super::dns;
use super::env::{self, PodFacts, Refs};
use super::events::Recorder;
use super::images::{failure_reason, pull_policy, registry_auths};
use super::probes::{ContainerProber, probe_of, run_probe};
use super::status::{StatusInput, pod_status};
use super::view::{
    LABEL_ATTEMPT, LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID,
    Memory, PodRuntime, ProbeResults, StartFailure, pull_key, start_key,
};
use super::volumes;
use crate::runtime::{
    ContainerSpec, ContainerState, Images, Mount, Runtime, SandboxSpec, SandboxStatus,
};

/// How often a worker looks at its pod when nothing else wakes it.
pub const RESYNC: Duration = Duration::from_secs(1);
/// How often a running pod's configMap/secret/downwardAPI volumes are rendered again.
pub const VOLUME_RESYNC: Duration = Duration::from_secs(60);

/// What every worker shares.
pub struct Ctx<R, I> {
    pub client: Client,
    pub config: NodeConfig,
    pub runtime: Arc<R>,
    pub images: Arc<I>,
    pub events: Recorder,
    /// The node's own resolv.conf (dnsPolicy Default).
    pub host_resolv: String,
}

struct Worker<R, I> {
    ctx: Arc<Ctx<R, I>>,
    memory: Memory,
    probers: HashMap<String, ContainerProber>,
    written: Option<Value>,
    status: watch::Sender<Option<Value>>,
    confirmed: bool,
    /// When the volumes were last rendered (config maps and secrets are read again every
    /// minute while the pod runs).
    volumes_synced: Option<std::time::Instant>,
}

fn labels(pod: &Pod) -> BTreeMap<String, String> {
    let m = &pod.metadata;
    BTreeMap::from([
        (LABEL_POD_UID.to_string(), m.uid.clone().unwrap_or_default()),
        (
            LABEL_POD_NAME.to_string(),
            m.name.clone().unwrap_or_default(),
        ),
        (
            LABEL_POD_NAMESPACE.to_string(),
            m.namespace.clone().unwrap_or_default(),
        ),
    ])
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// Runs the worker of one pod until the pod is gone (`None`) or the sender is dropped.
pub async fn run<R: Runtime, I: Images>(
    ctx: Arc<Ctx<R, I>>,
    mut pods: watch::Receiver<Option<Arc<Pod>>>,
) {
    let Some(first) = pods.borrow().clone() else {
        return;
    };
    let (tx, rx) = watch::channel(None);
    let writer = tokio::spawn(write_status(
        ctx.client.clone(),
        first.metadata.namespace.clone().unwrap_or_default(),
        first.metadata.name.clone().unwrap_or_default(),
        first.metadata.uid.clone().unwrap_or_default(),
        rx,
    ));
    let mut w = Worker {
        ctx,
        memory: Memory::default(),
        probers: HashMap::new(),
        written: None,
        status: tx,
        confirmed: false,
        volumes_synced: None,
    };
    let mut last = first.clone();
    loop {
        let current = pods.borrow_and_update().clone();
        let Some(pod) = current else {
            w.tear_down(&last).await;
            break;
        };
        last = pod.clone();
        let wait = w.sync(&pod).await;
        tokio::select! {
            changed = pods.changed() => if changed.is_err() { break },
            () = tokio::time::sleep(wait) => {}
        }
    }
    drop(w);
    let _ = writer.await;
}

/// Writes the newest status handed over, merge-patching the status subresource; a failed write
/// is retried after a second unless a newer status came meanwhile.
async fn write_status(
    client: Client,
    ns: String,
    name: String,
    uid: String,
    mut rx: watch::Receiver<Option<Value>>,
) {
    let api: Api<Pod> = Api::namespaced(client, &ns);
    while rx.changed().await.is_ok() {
        let Some(status) = rx.borrow_and_update().clone() else {
            continue;
        };
        let patch = json!({"metadata": {"uid": uid}, "status": status});
        loop {
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => break,
                Err(Error::Api(s)) if s.is_not_found() || s.is_conflict() || s.code == 422 => break,
                Err(e) => {
                    tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "kubelet: status write failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if rx.has_changed().unwrap_or(true) {
                        break;
                    }
                }
            }
        }
    }
}

impl<R: Runtime, I: Images> Worker<R, I> {
    fn uid(pod: &Pod) -> String {
        pod.metadata.uid.clone().unwrap_or_default()
    }

    async fn view(&self, pod: &Pod) -> Option<PodRuntime> {
        match self.ctx.runtime.list_pod(&Self::uid(pod)).await {
            Ok((sandboxes, containers)) => {
                Some(PodRuntime::of(&Self::uid(pod), &sandboxes, &containers))
            }
            Err(e) => {
                tracing::warn!(pod = %key(pod), error = %e, "kubelet: runtime list failed");
                None
            }
        }
    }

    /// The pod object is gone from the API (force-deleted): stop whatever is left of it.
    async fn tear_down(&mut self, pod: &Pod) {
        if let Some(view) = self.view(pod).await
            && let Some(sb) = view.sandbox
            && let Err(e) = self
                .ctx
                .runtime
                .remove_sandbox(&sb.id, Duration::from_secs(2))
                .await
        {
            tracing::warn!(pod = %key(pod), error = %e, "kubelet: removing the sandbox failed");
        }
        let _ = std::fs::remove_dir_all(pod_dir(&self.ctx.config.data_dir, &Self::uid(pod)));
    }

    /// One pass; returns when to look again.
    async fn sync(&mut self, pod: &Pod) -> Duration {
        let Some(view) = self.view(pod).await else {
            return RESYNC;
        };
        self.probers
            .retain(|id, _| view.containers.iter().any(|c| &c.id == id));
        self.run_probes(pod, &view).await;
        let probes = self.probe_results(pod, &view);
        let actions = compute_pod_actions(pod, &view, &probes, &self.memory, Timestamp::now());
        let mut waiting = actions.waiting.clone();
        self.report_back_off(pod, &waiting);
        let recheck = actions.recheck_after;
        let acted = !actions.kill.is_empty()
            || !actions.remove_containers.is_empty()
            || !actions.start.is_empty()
            || actions.remove_sandbox
            || actions.create_sandbox
            || actions.confirm_deletion;
        self.execute(pod, &view, actions, &mut waiting).await;
        if self.confirmed {
            return RESYNC;
        }
        // Only a pass that changed something needs a fresh look at the runtime.
        let view = if acted {
            match self.view(pod).await {
                Some(v) => v,
                None => return RESYNC,
            }
        } else {
            view
        };
        let probes = self.probe_results(pod, &view);
        let status = pod_status(
            &self.status_basis(pod),
            &StatusInput {
                runtime: &view,
                probes: &probes,
                waiting: &waiting,
                host_ip: &self.ctx.config.node_ip,
                now: Timestamp::now(),
            },
        );
        if self.written.as_ref() != Some(&status) {
            self.written = Some(status.clone());
            self.status.send_replace(Some(status));
        }
        recheck.map_or(RESYNC, |r| r.clamp(Duration::from_millis(100), RESYNC))
    }

    /// The `BackOff` events of containers held back by a back-off, on every pass that holds
    /// them (the recorder counts the repeats), as upstream's kubelet reports them.
    fn report_back_off(&self, pod: &Pod, waiting: &BTreeMap<String, Waiting>) {
        for (name, w) in waiting {
            match w.reason.as_str() {
                "CrashLoopBackOff" => self.ctx.events.record(
                    pod,
                    Some(name),
                    "Warning",
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {name} in pod {}",
                        pod_ref(pod)
                    ),
                ),
                "ImagePullBackOff" => {
                    self.ctx
                        .events
                        .record(pod, Some(name), "Normal", "BackOff", w.message.clone())
                }
                _ => {}
            }
        }
    }

    /// The pod with the status last computed here, so transition times and the start time
    /// hold even while the watch has not shown that status yet (a terminal phase in the API
    /// stays).
    fn status_basis(&self, pod: &Pod) -> Pod {
        let mut basis = pod.clone();
        if let Some(w) = &self.written
            && let Ok(mut status) = serde_json::from_value::<PodStatus>(w.clone())
        {
            let api_phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            if matches!(api_phase.as_deref(), Some("Succeeded" | "Failed")) {
                status.phase = api_phase;
            }
            basis.status = Some(status);
        }
        basis
    }

    fn probe_results(&self, pod: &Pod, view: &PodRuntime) -> ProbeResults {
        view.containers
            .iter()
            .filter_map(|c| {
                let spec = find_container(pod, &c.name)?;
                let prober = self
                    .probers
                    .get(&c.id)
                    .cloned()
                    .unwrap_or_else(|| ContainerProber::new(spec));
                Some((c.id.clone(), prober.results()))
            })
            .collect()
    }

    async fn run_probes(&mut self, pod: &Pod, view: &PodRuntime) {
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let pod_ip = view
            .sandbox
            .as_ref()
            .and_then(|s| s.ip)
            .map(|ip| ip.to_string());
        let now = Timestamp::now();
        for status in &view.containers {
            let ContainerState::Running { started_at } = status.state else {
                continue;
            };
            let Some(c) = find_container(pod, &status.name) else {
                continue;
            };
            let prober = self
                .probers
                .entry(status.id.clone())
                .or_insert_with(|| ContainerProber::new(c));
            for kind in prober.due(c, started_at, now) {
                let Some(probe) = probe_of(c, kind) else {
                    continue;
                };
                let result = run_probe(
                    self.ctx.runtime.as_ref(),
                    &status.sandbox,
                    &status.id,
                    pod_ip.as_deref(),
                    c,
                    probe,
                )
                .await;
                if let Err(message) = &result {
                    self.ctx.events.record(
                        pod,
                        Some(&c.name),
                        "Warning",
                        "Unhealthy",
                        format!("{} probe failed: {message}", kind.name()),
                    );
                }
                prober.record(c, kind, result.is_ok(), Timestamp::now());
            }
        }
    }

    async fn execute(
        &mut self,
        pod: &Pod,
        view: &PodRuntime,
        actions: PodActions,
        waiting: &mut BTreeMap<String, Waiting>,
    ) {
        let runtime = self.ctx.runtime.clone();
        let kills = actions.kill.iter().map(|k| self.kill(pod, k));
        futures::future::join_all(kills).await;
        for id in &actions.remove_containers {
            if let Err(e) = runtime.remove_container(id).await {
                tracing::warn!(pod = %key(pod), container = %id, error = %e, "kubelet: remove container failed");
            }
        }
        if actions.remove_sandbox
            && let Some(sb) = &view.sandbox
        {
            if actions.create_sandbox {
                self.ctx.events.record(
                    pod,
                    None,
                    "Normal",
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.".into(),
                );
            }
            if let Err(e) = runtime.remove_sandbox(&sb.id, grace_period(pod)).await {
                tracing::warn!(pod = %key(pod), error = %e, "kubelet: remove sandbox failed");
                return;
            }
            self.probers.clear();
        }
        let mut sandbox = view
            .sandbox
            .clone()
            .filter(|s| s.ready && !actions.remove_sandbox);
        let refresh = sandbox.is_some()
            && pod.metadata.deletion_timestamp.is_none()
            && self
                .volumes_synced
                .is_none_or(|at| at.elapsed() >= VOLUME_RESYNC);
        if actions.create_sandbox || !actions.start.is_empty() || refresh {
            let refs = match fetch_refs(&self.ctx.client, pod).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(pod = %key(pod), error = %e, "kubelet: reading the pod's references failed");
                    return;
                }
            };
            let facts = self.facts(pod, sandbox.as_ref());
            let dir = pod_dir(&self.ctx.config.data_dir, &Self::uid(pod));
            self.volumes_synced = Some(std::time::Instant::now());
            let vols = match volumes::plan(pod, &refs, &facts, &dir)
                .and_then(|v| volumes::apply(&v).map(|()| v))
            {
                Ok(v) => v,
                Err(e) => {
                    self.ctx.events.record(
                        pod,
                        None,
                        "Warning",
                        "FailedMount",
                        format!("MountVolume.SetUp failed: {e}"),
                    );
                    return;
                }
            };
            if actions.create_sandbox {
                match self.create_sandbox(pod).await {
                    Some(sb) => sandbox = Some(sb),
                    None => return,
                }
            }
            let Some(sandbox) = sandbox else { return };
            let facts = self.facts(pod, Some(&sandbox));
            let hosts = self.write_hosts(pod, &sandbox);
            for start in &actions.start {
                self.start(
                    pod,
                    start,
                    &sandbox,
                    &refs,
                    &facts,
                    &vols,
                    hosts.as_ref(),
                    waiting,
                )
                .await;
            }
        }
        if actions.confirm_deletion && !self.confirmed {
            self.confirm_deletion(pod).await;
        }
    }

    fn facts(&self, pod: &Pod, sandbox: Option<&SandboxStatus>) -> PodFacts {
        PodFacts {
            pod_ip: sandbox
                .and_then(|s| s.ip)
                .map(|ip| ip.to_string())
                .or_else(|| pod.status.as_ref().and_then(|s| s.pod_ip.clone())),
            host_ip: self.ctx.config.node_ip.clone(),
            node_name: self.ctx.config.node_name.clone(),
        }
    }

    async fn create_sandbox(&mut self, pod: &Pod) -> Option<SandboxStatus> {
        let cfg = &self.ctx.config;
        let spec = SandboxSpec {
            uid: Self::uid(pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            hostname: dns::hostname(pod),
            hosts_file: dns::hosts_file(pod, None, &cfg.cluster_domain),
            resolv_conf: dns::resolv_conf(
                pod,
                &cfg.cluster_dns,
                &cfg.cluster_domain,
                &self.ctx.host_resolv,
            ),
            host_network: pod.spec.as_ref().and_then(|s| s.host_network) == Some(true),
            share_process_namespace: pod.spec.as_ref().and_then(|s| s.share_process_namespace)
                == Some(true),
            labels: labels(pod),
        };
        match self.ctx.runtime.create_sandbox(&spec).await {
            Ok(sb) => Some(sb),
            Err(e) => {
                self.ctx.events.record(
                    pod,
                    None,
                    "Warning",
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {e}"),
                );
                None
            }
        }
    }

    /// Writes `<pod_dir>/etc-hosts` with the pod's address; mounted at `/etc/hosts`.
    fn write_hosts(&self, pod: &Pod, sandbox: &SandboxStatus) -> Option<PathBuf> {
        if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
            return None;
        }
        let ip = sandbox.ip.map(|ip| ip.to_string());
        let content = dns::hosts_file(pod, ip.as_deref(), &self.ctx.config.cluster_domain);
        let path = pod_dir(&self.ctx.config.data_dir, &Self::uid(pod)).join("etc-hosts");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            let _ = std::fs::create_dir_all(path.parent()?);
            std::fs::write(&path, content).ok()?;
        }
        Some(path)
    }

    fn fail(
        &mut self,
        name: &str,
        reason: &str,
        message: String,
        waiting: &mut BTreeMap<String, Waiting>,
    ) {
        let now = Timestamp::now();
        if reason == "ErrImagePull" {
            self.memory.backoff.next(&pull_key(name), now);
        } else {
            // Other failures are retried after a steady 10 s (upstream's pod worker back-off).
            self.memory.backoff.forget(&start_key(name));
            self.memory.backoff.next(&start_key(name), now);
        }
        self.memory.failures.insert(
            name.to_string(),
            StartFailure {
                reason: reason.to_string(),
                message: message.clone(),
                at: now,
            },
        );
        waiting.insert(
            name.to_string(),
            Waiting {
                reason: reason.to_string(),
                message,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        &mut self,
        pod: &Pod,
        start: &Start,
        sandbox: &SandboxStatus,
        refs: &Refs,
        facts: &PodFacts,
        vols: &BTreeMap<String, volumes::Source>,
        hosts: Option<&PathBuf>,
        waiting: &mut BTreeMap<String, Waiting>,
    ) {
        let Some(c) = find_container(pod, &start.name).cloned() else {
            return;
        };
        let events = self.ctx.events.clone();
        let image_ref = c.image.clone().unwrap_or_default();
        let policy = pull_policy(&c);
        let secrets: Vec<Secret> = pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten())
            .filter_map(|r| refs.secrets.get(&r.name).cloned())
            .collect();
        let auth = registry_auths(&secrets);
        let pulls = policy == crate::runtime::PullPolicy::Always;
        if pulls {
            events.record(
                pod,
                Some(&c.name),
                "Normal",
                "Pulling",
                format!("Pulling image \"{image_ref}\""),
            );
        }
        let image = match self.ctx.images.ensure(&image_ref, policy, &auth).await {
            Ok(image) => {
                let message = if pulls {
                    format!("Successfully pulled image \"{image_ref}\"")
                } else {
                    format!("Container image \"{image_ref}\" already present on machine")
                };
                events.record(pod, Some(&c.name), "Normal", "Pulled", message);
                image
            }
            Err(e) => {
                let reason = failure_reason(&e);
                events.record(
                    pod,
                    Some(&c.name),
                    "Warning",
                    "Failed",
                    format!("Failed to pull image \"{image_ref}\": {e}"),
                );
                events.record(
                    pod,
                    Some(&c.name),
                    "Warning",
                    "Failed",
                    format!("Error: {reason}"),
                );
                self.fail(&c.name, reason, e.to_string(), waiting);
                return;
            }
        };
        let env = match env::resolve_env(pod, &c, refs, facts) {
            Ok(env) => env,
            Err(e) => {
                events.record(
                    pod,
                    Some(&c.name),
                    "Warning",
                    "Failed",
                    format!("Error: {e}"),
                );
                self.fail(
                    &c.name,
                    "CreateContainerConfigError",
                    e.to_string(),
                    waiting,
                );
                return;
            }
        };
        let mut mounts = volumes::mounts(&c, vols);
        if let Some(hosts) = hosts
            && !mounts.iter().any(|m| m.container_path == "/etc/hosts")
        {
            mounts.push(Mount {
                host_path: hosts.clone(),
                container_path: "/etc/hosts".into(),
                read_only: false,
            });
        }
        let m = &pod.metadata;
        let (ns, name, uid) = (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
            m.uid.clone().unwrap_or_default(),
        );
        let mut labels = labels(pod);
        labels.insert(LABEL_CONTAINER_NAME.into(), c.name.clone());
        labels.insert(LABEL_ATTEMPT.into(), start.attempt.to_string());
        let log = log_path(
            &self.ctx.config.data_dir,
            &ns,
            &name,
            &uid,
            &c.name,
            start.attempt,
        );
        if let Some(parent) = log.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let spec = ContainerSpec {
            name: c.name.clone(),
            attempt: start.attempt,
            command: env::command(&c, &image.config, &env),
            env: env::environment(&image.config, &env),
            working_dir: env::working_dir(&c, &image.config),
            user: env::user(pod, &c, &image.config),
            image,
            image_ref,
            mounts,
            limits: env::limits(&c),
            stdin: c.stdin == Some(true),
            stdin_once: c.stdin_once == Some(true),
            tty: c.tty == Some(true),
            log_path: log,
            labels,
        };
        match self.ctx.runtime.start_container(&sandbox.id, &spec).await {
            Ok(id) => {
                events.record(
                    pod,
                    Some(&c.name),
                    "Normal",
                    "Created",
                    format!("Created container: {}", c.name),
                );
                events.record(
                    pod,
                    Some(&c.name),
                    "Normal",
                    "Started",
                    format!("Started container {}", c.name),
                );
                self.memory
                    .last_attempt
                    .insert(c.name.clone(), start.attempt);
                self.memory.failures.remove(&c.name);
                self.memory.backoff.forget(&pull_key(&c.name));
                self.memory.backoff.forget(&start_key(&c.name));
                if let Some(finished) = start.restart_of {
                    self.memory.backoff.next(&c.name, finished);
                }
                self.probers.insert(id, ContainerProber::new(&c));
            }
            Err(e) => {
                events.record(
                    pod,
                    Some(&c.name),
                    "Warning",
                    "Failed",
                    format!("Error: {e}"),
                );
                self.fail(&c.name, "RunContainerError", e.to_string(), waiting);
            }
        }
    }

    /// preStop hook, then SIGTERM and SIGKILL after what is left of the grace period.
    async fn kill(&self, pod: &Pod, k: &Kill) {
        let events = &self.ctx.events;
        let message = match k.reason {
            KillReason::LivenessFailed => format!(
                "Container {} failed liveness probe, will be restarted",
                k.name
            ),
            KillReason::SpecChanged => {
                format!("Container {} definition changed, will be restarted", k.name)
            }
            KillReason::PodDeleted => format!("Stopping container {}", k.name),
        };
        events.record(pod, Some(&k.name), "Normal", "Killing", message);
        let mut grace = k.grace;
        let c = find_container(pod, &k.name);
        if let Some(hook) = c
            .and_then(|c| c.lifecycle.as_ref())
            .and_then(|l| l.pre_stop.as_ref())
        {
            let began = std::time::Instant::now();
            let result = if let Some(sleep) = &hook.sleep {
                tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(grace))
                    .await;
                Ok(())
            } else {
                let probe = Probe {
                    exec: hook.exec.clone(),
                    http_get: hook.http_get.clone(),
                    tcp_socket: hook.tcp_socket.clone(),
                    timeout_seconds: Some(
                        i32::try_from(grace.as_secs()).unwrap_or(i32::MAX).max(1),
                    ),
                    ..Probe::default()
                };
                let sandbox = Self::uid(pod);
                let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
                run_probe(
                    self.ctx.runtime.as_ref(),
                    &sandbox,
                    &k.id,
                    ip.as_deref(),
                    c.expect("container"),
                    &probe,
                )
                .await
            };
            if let Err(e) = result {
                events.record(
                    pod,
                    Some(&k.name),
                    "Warning",
                    "FailedPreStopHook",
                    format!("PreStopHook failed: {e}"),
                );
            }
            grace = grace.saturating_sub(began.elapsed());
        }
        if let Err(e) = self.ctx.runtime.stop_container(&k.id, grace).await {
            tracing::warn!(pod = %key(pod), container = %k.name, error = %e, "kubelet: stop container failed");
        }
    }

    /// The processes are gone: the pod object may leave the API.
    async fn confirm_deletion(&mut self, pod: &Pod) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => self.confirmed = true,
            Err(Error::Api(s)) if s.is_not_found() || s.is_conflict() => self.confirmed = true,
            Err(e) => {
                tracing::warn!(pod = %key(pod), error = %e, "kubelet: confirming the deletion failed")
            }
        }
        if self.confirmed {
            let _ = std::fs::remove_dir_all(pod_dir(&self.ctx.config.data_dir, &Self::uid(pod)));
        }
    }
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// The config maps, secrets, claims and volumes `pod` refers to (missing ones left out).
pub async fn fetch_refs(client: &Client, pod: &Pod) -> Result<Refs, Error> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let mut cms = std::collections::BTreeSet::new();
    let mut secrets = std::collections::BTreeSet::new();
    let mut claims = std::collections::BTreeSet::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(c) = &v.config_map {
            cms.insert(c.name.clone());
        }
        if let Some(s) = &v.secret {
            secrets.insert(s.secret_name.clone().unwrap_or_default());
        }
        if let Some(p) = &v.projected {
            for s in p.sources.iter().flatten() {
                if let Some(c) = &s.config_map {
                    cms.insert(c.name.clone());
                }
                if let Some(x) = &s.secret {
                    secrets.insert(x.name.clone());
                }
            }
        }
        if let Some(c) = &v.persistent_volume_claim {
            claims.insert(c.claim_name.clone());
        }
    }
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for e in c.env.iter().flatten() {
            if let Some(f) = &e.value_from {
                if let Some(r) = &f.config_map_key_ref {
                    cms.insert(r.name.clone());
                }
                if let Some(r) = &f.secret_key_ref {
                    secrets.insert(r.name.clone());
                }
            }
        }
        for f in c.env_from.iter().flatten() {
            if let Some(r) = &f.config_map_ref {
                cms.insert(r.name.clone());
            }
            if let Some(r) = &f.secret_ref {
                secrets.insert(r.name.clone());
            }
        }
    }
    for s in spec.image_pull_secrets.iter().flatten() {
        secrets.insert(s.name.clone());
    }
    let mut refs = Refs::default();
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for name in cms {
        if let Some(cm) = cm_api.get_opt(&name).await? {
            refs.config_maps.insert(name, cm);
        }
    }
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for name in secrets {
        if let Some(s) = secret_api.get_opt(&name).await? {
            refs.secrets.insert(name, s);
        }
    }
    let claim_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let pv_api: Api<PersistentVolume> = Api::all(client.clone());
    for name in claims {
        if let Some(c) = claim_api.get_opt(&name).await? {
            if let Some(pv) = c
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .filter(|n| !n.is_empty())
                && let Some(v) = pv_api.get_opt(&pv).await?
            {
                refs.volumes.insert(pv, v);
            }
            refs.claims.insert(name, c);
        }
    }
    Ok(refs)
}
