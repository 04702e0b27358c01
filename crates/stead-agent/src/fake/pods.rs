//! The fake node's pod loop: one watch of all pods feeds a cache and a [`Queue`] of pod keys;
//! up to [`WORKERS`] writes run at once, never two for one pod. Each key is decided afresh from
//! the cache ([`decide`]), so the loop is level-triggered: a lost write is simply decided again.
//!
//! Cheap writes: after a write succeeds, the pod is not acted on again until the watch shows it
//! at a newer resourceVersion (`acted`), so every pod costs one binding and one status patch
//! however many events it gets. A 409 (already bound, uid changed) means the cache is behind:
//! the watch brings the newer pod. Other errors retry with per-key backoff.
//!
//! Fast start: a successful binding is followed at once, in the same task, by the Running
//! status (the pod's containers are known from before the binding), instead of waiting for the
//! watch to show the bound pod; `started` remembers those pods so the bound-but-Pending event
//! that arrives afterwards is not started twice. If that status write fails, the pod is started
//! the ordinary way from the watch.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Error};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ips::PodIps;
use super::pod::{PodAction, decide, running_status};
use crate::node::queue::{Backoff, Queue};

/// Concurrent writes. The store group-commits concurrent writes, so a burst of pods is bound
/// and started in parallel rather than one fsync after another.
pub const WORKERS: usize = 32;

/// How long the fake node "takes to stop" a deleted pod's containers before it confirms the
/// deletion. Not for realism: `kubectl delete` GETs the pod and then LISTs it by name before it
/// watches for the deletion; a pod deleted and recreated by its controller between those two
/// requests (a few ms) makes kubectl wait forever for a deletion it missed. Confirming after a
/// pause keeps the deletion after kubectl's LIST, so it sees the DELETED event.
pub const CONFIRM_DELETION_AFTER: Duration = Duration::from_millis(100);

const BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(50),
    max: Duration::from_secs(10),
};

/// A prepared write: everything taken from the cache, so the task needs no shared state.
enum Write {
    /// The binding, then (if the pod range had an address) the Running status.
    Bind {
        node: String,
        uid: String,
        start: Option<Value>,
    },
    Start {
        patch: Value,
    },
    ConfirmDeletion {
        uid: String,
    },
}

enum Outcome {
    /// Written: wait for the watch to show the pod at a newer version.
    Done,
    /// Written, and the pod's Running status is written too.
    Started,
    /// The cache is behind (409) or the pod is gone (404): wait for the watch.
    Stale,
    Failed(Error),
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn version_of(pod: &Pod) -> (String, String) {
    (
        pod.metadata.uid.clone().unwrap_or_default(),
        pod.metadata.resource_version.clone().unwrap_or_default(),
    )
}

/// The loop's state besides the cache.
struct Loop {
    node: String,
    store: Store<Pod>,
    queue: Queue,
    ips: PodIps,
    /// Per pod key: the (uid, resourceVersion) last written from.
    acted: HashMap<String, (String, String)>,
    /// Uids of pods whose Running status this loop has written.
    started: HashSet<String>,
    listed: bool,
}

impl Loop {
    /// Takes one watch event (already applied to the cache).
    fn observe(&mut self, event: &Event<Pod>) {
        match event {
            Event::Apply(pod) | Event::InitApply(pod) => {
                if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&self.node)
                    && let (Some(uid), Some(ip)) = (
                        pod.metadata.uid.as_deref(),
                        pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()),
                    )
                {
                    self.ips.adopt(uid, ip);
                }
                self.queue.add(&key_of(pod));
            }
            Event::Delete(pod) => {
                let key = key_of(pod);
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    self.ips.release(uid);
                    self.started.remove(uid);
                }
                self.acted.remove(&key);
                self.queue.forget(&key);
            }
            Event::Init => {}
            Event::InitDone => {
                // After a relist, forget pods that vanished meanwhile.
                let live: std::collections::HashSet<(String, String)> = self
                    .store
                    .state()
                    .iter()
                    .map(|p| (key_of(p), p.metadata.uid.clone().unwrap_or_default()))
                    .collect();
                let uids: std::collections::HashSet<&str> =
                    live.iter().map(|(_, u)| u.as_str()).collect();
                self.ips.retain(|uid| uids.contains(uid));
                self.started.retain(|uid| uids.contains(uid.as_str()));
                self.acted
                    .retain(|key, (uid, _)| live.contains(&(key.clone(), uid.clone())));
                self.listed = true;
            }
        }
    }

    /// What to write for `key` now, if anything, and the (uid, resourceVersion) it is decided
    /// from. Called when the key is handed out.
    fn prepare(&mut self, key: &str) -> Option<(Task, (String, String))> {
        let (ns, name) = key.split_once('/')?;
        let pod = self.store.get(&ObjectRef::new(name).within(ns))?;
        let version = version_of(&pod);
        if self.acted.get(key) == Some(&version) {
            return None;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let write = match decide(&pod, &self.node)? {
            PodAction::Bind => Write::Bind {
                node: self.node.clone(),
                start: self
                    .ips
                    .assign(&uid)
                    .map(|ip| running_status(&pod, &ip.to_string(), Timestamp::now())),
                uid,
            },
            PodAction::Start if self.started.contains(&uid) => return None,
            PodAction::Start => {
                let Some(ip) = self.ips.assign(&uid) else {
                    tracing::warn!(pod = %key, "fake node: the pod range is exhausted");
                    return None;
                };
                Write::Start {
                    patch: running_status(&pod, &ip.to_string(), Timestamp::now()),
                }
            }
            PodAction::ConfirmDeletion { uid } => Write::ConfirmDeletion { uid },
        };
        let task = Task {
            ns: ns.to_string(),
            name: name.to_string(),
            write,
        };
        Some((task, version))
    }
}

/// One write for one pod.
struct Task {
    ns: String,
    name: String,
    write: Write,
}

/// Carries out one write.
async fn execute(client: Client, task: Task) -> Outcome {
    let Task { ns, name, write } = task;
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let result = match write {
        Write::Bind { node, uid, start } => {
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let bound = pods
                .create_subresource::<_, Value>("binding", &name, &PostParams::default(), &binding)
                .await
                .map(drop);
            if let (Ok(()), Some(patch)) = (&bound, start) {
                return match pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Outcome::Started,
                    Err(e) => {
                        tracing::debug!(pod = %format!("{ns}/{name}"), error = %e,
                            "fake node: status after binding failed; the watch retries it");
                        Outcome::Done
                    }
                };
            }
            bound
        }
        Write::Start { patch } => {
            return match pods
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => Outcome::Started,
                Err(e) => classify(e),
            };
        }
        Write::ConfirmDeletion { uid } => {
            tokio::time::sleep(CONFIRM_DELETION_AFTER).await;
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            pods.delete(&name, &params).await.map(drop)
        }
    };
    match result {
        Ok(()) => Outcome::Done,
        Err(e) => classify(e),
    }
}

/// A failed write: stale (the watch will bring the newer pod) or worth a retry.
fn classify(e: Error) -> Outcome {
    match e {
        Error::Api(s) if s.is_conflict() || s.is_not_found() => Outcome::Stale,
        e => Outcome::Failed(e),
    }
}

/// Runs the pod loop of node `node` until `shutdown`.
pub async fn run(client: Client, node: String, shutdown: impl Future<Output = ()> + Send) {
    let (store, mut writer) = reflector::store::<Pod>();
    let mut events = watcher::watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut state = Loop {
        node,
        store,
        queue: Queue::new(BACKOFF),
        ips: PodIps::default(),
        acted: HashMap::new(),
        started: HashSet::new(),
        listed: false,
    };
    let mut tasks: JoinSet<((String, String), Outcome)> = JoinSet::new();
    let mut ids: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Hand out keys while workers are free (only once the first list is in: the addresses
        // of pods started by an earlier run must be known first).
        while state.listed && tasks.len() < WORKERS {
            let Some(key) = state.queue.pop(Instant::now()) else {
                break;
            };
            match state.prepare(&key) {
                Some((task, version)) => {
                    let client = client.clone();
                    let handle = tasks.spawn(async move { (version, execute(client, task).await) });
                    ids.insert(handle.id(), key);
                }
                None => state.queue.done(&key),
            }
        }
        let due = (state.listed && tasks.len() < WORKERS)
            .then(|| state.queue.next_due(Instant::now()))
            .flatten();
        let wake = async move {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            event = events.next() => match event {
                Some(Ok(event)) => {
                    writer.apply_watcher_event(&event);
                    state.observe(&event);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "fake node: pod watch failed"),
                None => break,
            },
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, outcome) = match joined {
                    Ok((id, (version, outcome))) => (id, Ok((version, outcome))),
                    Err(e) => (e.id(), Err(e)),
                };
                let Some(key) = ids.remove(&id) else { continue };
                match outcome {
                    Err(e) => {
                        tracing::warn!(pod = %key, error = %e, "fake node: write task failed");
                        state.queue.done(&key);
                        state.queue.retry(&key, Instant::now());
                    }
                    Ok((version, outcome)) => match outcome {
                    Outcome::Done | Outcome::Started | Outcome::Stale => {
                        if matches!(outcome, Outcome::Started) {
                            state.started.insert(version.0.clone());
                        }
                        state.acted.insert(key.clone(), version);
                        state.queue.forget(&key);
                        state.queue.done(&key);
                    }
                    Outcome::Failed(e) => {
                        tracing::warn!(pod = %key, error = %e, "fake node: write failed, retrying");
                        state.queue.done(&key);
                        state.queue.retry(&key, Instant::now());
                    }
                    },
                }
            }
            () = wake => {}
        }
    }
    tasks.shutdown().await;
}
