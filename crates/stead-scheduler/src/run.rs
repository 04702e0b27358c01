//! The scheduler's loop (upstream `scheduleOne` + the scheduling queue + the cache).
//!
//! Watches of Pods, Nodes, PersistentVolumeClaims, PersistentVolumes and StorageClasses keep one
//! [`Snapshot`] current, change by change. Pending pods (our `schedulerName`, no node, not
//! terminating, not finished, no scheduling gates) go through a queue and are decided one at a time, in the loop
//! itself, against that snapshot; a chosen pod is *assumed* onto its node in the snapshot before
//! the next decision (so a burst does not overcommit), and its binding runs concurrently in a
//! task. The watch later shows the pod bound and replaces the assumption; a failed binding undoes
//! it and the pod is retried with backoff.
//!
//! A pod that fits nowhere gets `PodScheduled=False` and a `FailedScheduling` event, and waits in
//! the unschedulable set until the cluster changes (a node added or updated, a bound pod added,
//! finished or deleted, a claim, volume or class changed) or [`Config::unschedulable_flush`]
//! passes; it is then retried after its per-pod backoff.
//!
//! WaitForFirstConsumer: a pod whose claims need provisioning is assumed onto the chosen node,
//! each such claim is annotated `volume.kubernetes.io/selected-node: <node>`, and the pod is
//! bound only once all of them are Bound (re-checked on every change of a claim). If an
//! annotation disappears (the provisioner gave up) the assumption is dropped and the pod is
//! scheduled again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use stead_controllers::queue::{Backoff, WorkQueue};
use stead_controllers::watch::{Watched, watch_all};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::effects::{EffectError, KubeEffects, PodEvent, SchedulerEffects};
use crate::schedule::schedule;
use crate::snapshot::{Snapshot, is_terminal, key, pod_key};
use crate::volumes::{self, is_bound, selected_node};

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Pods with this `spec.schedulerName` are ours (`default-scheduler`).
    pub scheduler_name: String,
    /// Per-pod backoff between failed attempts.
    pub backoff: Backoff,
    /// Unschedulable pods are retried at least this often, change or not.
    pub unschedulable_flush: Duration,
    /// Bindings (and claim annotations) in flight at once; decisions pause beyond it.
    pub max_in_flight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scheduler_name: crate::DEFAULT_SCHEDULER.to_string(),
            backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(10),
            },
            unschedulable_flush: Duration::from_secs(60),
            max_in_flight: 64,
        }
    }
}

/// Runs the scheduler named `scheduler_name` against the API server behind `client` until
/// `shutdown`.
pub async fn run(client: Client, scheduler_name: &str, shutdown: impl Future<Output = ()> + Send) {
    let config = Config {
        scheduler_name: scheduler_name.to_string(),
        ..Config::default()
    };
    let effects = KubeEffects::new(client.clone(), scheduler_name);
    run_with(client, effects, config, shutdown).await
}

enum Change {
    Pod(Watched<Pod>),
    Node(Watched<Node>),
    Claim(Watched<PersistentVolumeClaim>),
    Volume(Watched<PersistentVolume>),
    Class(Watched<StorageClass>),
}

/// What a task did, reported back to the loop.
enum Outcome {
    Bound,
    BindFailed(EffectError),
    Annotated,
    AnnotateFailed(EffectError),
}

/// A relist in progress for one kind: the names it delivered so far.
#[derive(Default)]
struct Relist(Option<HashSet<String>>);

impl Relist {
    fn start(&mut self) {
        self.0 = Some(HashSet::new());
    }
    fn see(&mut self, name: String) {
        if let Some(seen) = &mut self.0 {
            seen.insert(name);
        }
    }
    /// Ends the relist and returns which of `known` it did not deliver (deleted meanwhile).
    fn finish(&mut self, known: impl Iterator<Item = String>) -> Vec<String> {
        let seen = self.0.take().unwrap_or_default();
        known.filter(|k| !seen.contains(k)).collect()
    }
}

fn claim_key(c: &PersistentVolumeClaim) -> String {
    key(c.metadata.namespace.as_deref(), c.metadata.name.as_deref())
}

fn name_of<K: Resource>(o: &K) -> String {
    o.meta().name.clone().unwrap_or_default()
}

/// The loop's state: caches, the snapshot, the queue and the assumptions.
struct Scheduler<E> {
    effects: Arc<E>,
    config: Config,
    snapshot: Snapshot,
    /// Every pod's latest version, by `namespace/name`.
    pods: HashMap<String, Arc<Pod>>,
    queue: WorkQueue<String>,
    unschedulable: BTreeSet<String>,
    /// Pods counted on a node in the snapshot before the watch shows them bound: node, uid.
    assumed: HashMap<String, (String, String)>,
    /// Assumed pods waiting for their claims to be provisioned: node.
    waiting: HashMap<String, String>,
    /// Claim annotations in flight per waiting pod.
    annotating: HashMap<String, usize>,
    /// Waiting pods whose annotations the watch has shown (a later absence means the
    /// provisioner removed them).
    confirmed: HashSet<String>,
    tasks: JoinSet<(String, Outcome)>,
    /// The pod each task works for, so a task that panicked still undoes its assumption.
    task_pods: HashMap<tokio::task::Id, String>,
    listed: HashSet<&'static str>,
    relists: HashMap<&'static str, Relist>,
}

impl<E: SchedulerEffects> Scheduler<E> {
    fn is_pending(&self, pod: &Pod) -> bool {
        let spec = pod.spec.as_ref();
        let name = spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(crate::DEFAULT_SCHEDULER);
        name == self.config.scheduler_name
            && spec
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
            && pod.metadata.deletion_timestamp.is_none()
            && !is_terminal(pod)
            // A pod with scheduling gates waits until they are all removed.
            && spec
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_none_or(Vec::is_empty)
    }

    fn synced(&self) -> bool {
        self.listed.len() == 5
    }

    /// Retries every unschedulable pod (after its backoff): the cluster changed.
    fn cluster_changed(&mut self) {
        let now = Instant::now();
        for key in std::mem::take(&mut self.unschedulable) {
            self.queue.add_rate_limited(key, now);
        }
    }

    fn unassume(&mut self, key: &str) {
        self.waiting.remove(key);
        self.annotating.remove(key);
        self.confirmed.remove(key);
        if self.assumed.remove(key).is_some() {
            self.snapshot.remove_pod(key);
            // Freed room may fit others.
            self.cluster_changed();
        }
    }

    fn relist<K>(&mut self, kind: &'static str, e: &Event<K>, name: impl Fn(&K) -> String) {
        let r = self.relists.entry(kind).or_default();
        match e {
            Event::Init => r.start(),
            Event::InitApply(o) => r.see(name(o)),
            _ => {}
        }
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Pod(e) => match *e {
                Ok(e) => self.apply_pod_event(e),
                Err(e) => warn_watch(&e),
            },
            Change::Node(e) => match *e {
                Ok(e) => {
                    self.relist("nodes", &e, name_of);
                    match e {
                        Event::Apply(n) | Event::InitApply(n) => {
                            let old = self
                                .snapshot
                                .node(&name_of(&n))
                                .and_then(|s| s.node.clone());
                            let changed =
                                old.is_none_or(|o| scheduling_view(&o) != scheduling_view(&n));
                            self.snapshot.set_node(Arc::new(n));
                            // Heartbeats change nothing the filters read.
                            if changed {
                                self.cluster_changed();
                            }
                        }
                        Event::Delete(n) => self.snapshot.remove_node(&name_of(&n)),
                        Event::Init => {}
                        Event::InitDone => {
                            let known: Vec<String> =
                                self.snapshot.nodes().map(|n| n.name.clone()).collect();
                            let gone = self.finish_relist("nodes", known);
                            for n in gone {
                                self.snapshot.remove_node(&n);
                            }
                            self.listed.insert("nodes");
                        }
                    }
                }
                Err(e) => warn_watch(&e),
            },
            Change::Claim(e) => match *e {
                Ok(e) => {
                    self.relist("claims", &e, claim_key);
                    match e {
                        Event::Apply(c) | Event::InitApply(c) => {
                            let ns = c.metadata.namespace.clone().unwrap_or_default();
                            self.snapshot.set_claim(Arc::new(c));
                            self.claims_changed(&ns);
                        }
                        Event::Delete(c) => {
                            self.snapshot.remove_claim(&claim_key(&c));
                            let ns = c.metadata.namespace.clone().unwrap_or_default();
                            self.claims_changed(&ns);
                        }
                        Event::Init => {}
                        Event::InitDone => {
                            let known: Vec<String> = self.snapshot.claims.keys().cloned().collect();
                            for k in self.finish_relist("claims", known) {
                                self.snapshot.remove_claim(&k);
                            }
                            self.listed.insert("claims");
                            self.cluster_changed();
                        }
                    }
                }
                Err(e) => warn_watch(&e),
            },
            Change::Volume(e) => match *e {
                Ok(e) => {
                    self.relist("volumes", &e, name_of);
                    match e {
                        Event::Apply(v) | Event::InitApply(v) => {
                            self.snapshot.set_volume(Arc::new(v));
                            self.cluster_changed();
                        }
                        Event::Delete(v) => self.snapshot.remove_volume(&name_of(&v)),
                        Event::Init => {}
                        Event::InitDone => {
                            let known: Vec<String> =
                                self.snapshot.volumes.keys().cloned().collect();
                            for k in self.finish_relist("volumes", known) {
                                self.snapshot.remove_volume(&k);
                            }
                            self.listed.insert("volumes");
                        }
                    }
                }
                Err(e) => warn_watch(&e),
            },
            Change::Class(e) => match *e {
                Ok(e) => {
                    self.relist("classes", &e, name_of);
                    match e {
                        Event::Apply(c) | Event::InitApply(c) => {
                            self.snapshot.set_class(Arc::new(c));
                            self.cluster_changed();
                        }
                        Event::Delete(c) => self.snapshot.remove_class(&name_of(&c)),
                        Event::Init => {}
                        Event::InitDone => {
                            let known: Vec<String> =
                                self.snapshot.classes.keys().cloned().collect();
                            for k in self.finish_relist("classes", known) {
                                self.snapshot.remove_class(&k);
                            }
                            self.listed.insert("classes");
                        }
                    }
                }
                Err(e) => warn_watch(&e),
            },
        }
    }

    fn finish_relist(&mut self, kind: &'static str, known: Vec<String>) -> Vec<String> {
        self.relists
            .entry(kind)
            .or_default()
            .finish(known.into_iter())
    }

    /// A claim of namespace `ns` changed: waiting pods there re-check, others may now fit.
    fn claims_changed(&mut self, ns: &str) {
        let prefix = format!("{ns}/");
        let waiting: Vec<String> = self
            .waiting
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for k in waiting {
            self.queue.add(k);
        }
        self.cluster_changed();
    }

    fn apply_pod_event(&mut self, e: Event<Pod>) {
        self.relist("pods", &e, pod_key);
        match e {
            Event::Apply(p) | Event::InitApply(p) => self.apply_pod(Arc::new(p)),
            Event::Delete(p) => self.forget_pod(&pod_key(&p)),
            Event::Init => {}
            Event::InitDone => {
                let known: Vec<String> = self.pods.keys().cloned().collect();
                for k in self.finish_relist("pods", known) {
                    self.forget_pod(&k);
                }
                self.listed.insert("pods");
            }
        }
    }

    fn apply_pod(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.pods.insert(key.clone(), pod.clone());
        let was_counted = self.snapshot.node_of(&key).is_some();
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if bound {
            // The watch confirms a binding (ours or anyone's): the real pod replaces the
            // assumption.
            self.assumed.remove(&key);
            self.waiting.remove(&key);
            self.unschedulable.remove(&key);
            let counted = self.snapshot.apply_pod(pod);
            if counted != was_counted || !counted {
                self.cluster_changed();
            }
            return;
        }
        if let Some((_, assumed_uid)) = self.assumed.get(&key)
            && *assumed_uid != uid
        {
            // Replaced by a new pod of the same name.
            self.unassume(&key);
        }
        if self.assumed.contains_key(&key) {
            if !self.is_pending(&pod) {
                self.unassume(&key);
            }
            return;
        }
        self.snapshot.apply_pod(pod.clone());
        if self.is_pending(&pod) {
            if !self.unschedulable.contains(&key) {
                self.queue.add(key);
            }
        } else {
            self.unschedulable.remove(&key);
        }
    }

    fn forget_pod(&mut self, key: &str) {
        self.pods.remove(key);
        self.unschedulable.remove(key);
        self.queue.forget(&key.to_string());
        self.waiting.remove(key);
        self.annotating.remove(key);
        self.confirmed.remove(key);
        self.assumed.remove(key);
        if self.snapshot.node_of(key).is_some() {
            self.snapshot.remove_pod(key);
            self.cluster_changed();
        }
    }

    /// Decides one pending pod.
    fn process(&mut self, key: String) {
        let Some(pod) = self.pods.get(&key).cloned() else {
            self.queue.forget(&key);
            return;
        };
        if !self.is_pending(&pod) {
            self.queue.forget(&key);
            return;
        }
        if let Some(node) = self.waiting.get(&key).cloned() {
            self.check_waiting(key, pod, node);
            return;
        }
        if self.assumed.contains_key(&key) {
            return;
        }
        match schedule(&pod, &self.snapshot) {
            Ok(node) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                self.snapshot.assume(pod.clone(), &node);
                self.assumed.insert(key.clone(), (node.clone(), uid));
                let to_provision: Vec<Arc<PersistentVolumeClaim>> =
                    volumes::pod_claims(&pod, &self.snapshot)
                        .map(|c| c.delayed)
                        .unwrap_or_default();
                if to_provision.is_empty() {
                    self.spawn_bind(key, pod, node);
                    return;
                }
                tracing::debug!(pod = %key, node = %node, "scheduler: waiting for volumes");
                self.waiting.insert(key.clone(), node.clone());
                // Check at once too: the claims may already carry the annotation (an earlier
                // attempt) and be Bound, with no further change coming.
                self.queue.add(key.clone());
                for claim in to_provision {
                    if selected_node(&claim) == Some(node.as_str()) {
                        continue;
                    }
                    *self.annotating.entry(key.clone()).or_default() += 1;
                    let effects = self.effects.clone();
                    let (k, n) = (key.clone(), node.clone());
                    let handle = self.tasks.spawn(async move {
                        match effects.select_node(&claim, &n).await {
                            Ok(()) => (k, Outcome::Annotated),
                            Err(e) => (k, Outcome::AnnotateFailed(e)),
                        }
                    });
                    self.task_pods.insert(handle.id(), key.clone());
                }
            }
            Err(why) => {
                let message = why.message(&pod);
                tracing::debug!(pod = %key, %message, "scheduler: unschedulable");
                self.unschedulable.insert(key);
                let effects = self.effects.clone();
                let same = has_condition(&pod, &message);
                // Best effort, like the events: a failure is retried on the next attempt.
                tokio::spawn(async move {
                    if !same && let Err(e) = effects.set_unschedulable(&pod, &message).await {
                        tracing::debug!(error = %e, "scheduler: PodScheduled condition not written");
                    }
                    effects
                        .record(&pod, PodEvent::FailedScheduling { message })
                        .await;
                });
            }
        }
    }

    /// An assumed pod waiting for provisioning: bind once every delayed claim is Bound; start
    /// over if a claim lost its annotation.
    fn check_waiting(&mut self, key: String, pod: Arc<Pod>, node: String) {
        let ns = pod.metadata.namespace.as_deref();
        let mut all_bound = true;
        for (name, _) in volumes::claim_names(&pod) {
            let Some(claim) = self.snapshot.claims.get(&key_of(ns, &name)) else {
                self.unassume(&key);
                self.queue.add_rate_limited(key, Instant::now());
                return;
            };
            if is_bound(claim) {
                continue;
            }
            all_bound = false;
            let has_volume = claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .is_some_and(|v| !v.is_empty());
            if !has_volume && selected_node(claim) != Some(node.as_str()) {
                // Our annotation is not there. Before the watch showed it, our write is in
                // flight or not yet seen: wait for the claim's next change. After, the
                // provisioner removed it (gave up): start over after a backoff.
                if self.confirmed.contains(&key) && !self.annotating.contains_key(&key) {
                    self.unassume(&key);
                    self.queue.add_rate_limited(key, Instant::now());
                }
                return;
            }
        }
        self.confirmed.insert(key.clone());
        if all_bound {
            self.waiting.remove(&key);
            self.confirmed.remove(&key);
            self.spawn_bind(key, pod, node);
        }
    }

    fn spawn_bind(&mut self, key: String, pod: Arc<Pod>, node: String) {
        let effects = self.effects.clone();
        let pod_key = key.clone();
        let handle = self.tasks.spawn(async move {
            match effects.bind(&pod, &node).await {
                Ok(()) => {
                    effects.record(&pod, PodEvent::Scheduled { node }).await;
                    (key, Outcome::Bound)
                }
                Err(e) => (key, Outcome::BindFailed(e)),
            }
        });
        self.task_pods.insert(handle.id(), pod_key);
    }

    fn finished(&mut self, key: String, outcome: Outcome) {
        match outcome {
            Outcome::Bound => self.queue.forget(&key),
            Outcome::Annotated => {
                if let Some(n) = self.annotating.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        self.annotating.remove(&key);
                        // Check again: the claims' watch events may already be in.
                        self.queue.add(key);
                    }
                }
            }
            Outcome::AnnotateFailed(e) => {
                tracing::debug!(pod = %key, error = %e, "scheduler: annotating a claim failed");
                self.annotating.remove(&key);
                self.unassume(&key);
                self.queue.add_rate_limited(key, Instant::now());
            }
            Outcome::BindFailed(e) => {
                tracing::debug!(pod = %key, error = %e, "scheduler: binding failed");
                self.unassume(&key);
                if !matches!(e, EffectError::NotFound(_)) {
                    self.queue.add_rate_limited(key, Instant::now());
                }
            }
        }
    }
}

/// What the filters read of a node: labels, spec (taints, cordon), allocatable, readiness.
fn scheduling_view(node: &Node) -> (Option<String>, Option<String>, Option<&str>) {
    let status = node.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    (
        serde_json::to_string(&(&node.metadata.labels, &node.spec)).ok(),
        serde_json::to_string(&status.and_then(|s| s.allocatable.as_ref())).ok(),
        ready,
    )
}

fn key_of(ns: Option<&str>, name: &str) -> String {
    key(ns, Some(name))
}

fn has_condition(pod: &Pod, message: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
                    && c.message.as_deref() == Some(message)
            })
        })
}

fn warn_watch(e: &watcher::Error) {
    tracing::warn!(error = %e, "scheduler: watch failed");
}

/// [`run`] with any effects and configuration (the watches still come from `client`).
pub async fn run_with<E: SchedulerEffects>(
    client: Client,
    effects: E,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut changes = futures::stream::select_all([
        watch_all::<Pod>(&client).map(Change::Pod).boxed(),
        watch_all::<Node>(&client).map(Change::Node).boxed(),
        watch_all::<PersistentVolumeClaim>(&client)
            .map(Change::Claim)
            .boxed(),
        watch_all::<PersistentVolume>(&client)
            .map(Change::Volume)
            .boxed(),
        watch_all::<StorageClass>(&client)
            .map(Change::Class)
            .boxed(),
    ]);
    let mut s = Scheduler {
        effects: Arc::new(effects),
        queue: WorkQueue::new(config.backoff),
        config,
        snapshot: Snapshot::default(),
        pods: HashMap::new(),
        unschedulable: BTreeSet::new(),
        assumed: HashMap::new(),
        waiting: HashMap::new(),
        annotating: HashMap::new(),
        confirmed: HashSet::new(),
        tasks: JoinSet::new(),
        task_pods: HashMap::new(),
        listed: HashSet::new(),
        relists: HashMap::new(),
    };
    let mut flush = tokio::time::interval(s.config.unschedulable_flush);
    flush.tick().await;
    let mut shutdown = std::pin::pin!(shutdown);
    let max_in_flight = s.config.max_in_flight.max(1);
    loop {
        // Decide a batch of due pods, then let the watches and tasks in.
        if s.synced() {
            for _ in 0..128 {
                if s.tasks.len() >= max_in_flight {
                    break;
                }
                let Some(key) = s.queue.pop(Instant::now()) else {
                    break;
                };
                s.process(key);
            }
        }
        let wake = s.queue.wake(s.synced() && s.tasks.len() < max_in_flight);
        tokio::select! {
            () = &mut shutdown => break,
            change = changes.next() => match change {
                Some(change) => s.apply(change),
                None => break,
            },
            Some(done) = s.tasks.join_next_with_id(), if !s.tasks.is_empty() => {
                match done {
                    Ok((id, (key, outcome))) => {
                        s.task_pods.remove(&id);
                        s.finished(key, outcome);
                    }
                    Err(e) => {
                        if let Some(key) = s.task_pods.remove(&e.id()) {
                            let failed = EffectError::Other(format!("task failed: {e}"));
                            s.finished(key, Outcome::BindFailed(failed));
                        }
                    }
                }
            }
            _ = flush.tick() => s.cluster_changed(),
            () = wake => {}
        }
    }
    s.tasks.shutdown().await;
}
