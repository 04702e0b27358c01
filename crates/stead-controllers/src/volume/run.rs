//! The volume controller's loop: watches of claims, volumes, classes, nodes and pods feed caches
//! (a [`Snapshot`]) and a queue of claim and volume keys; once every watch has listed, keys are
//! processed one at a time: plan, then carry the actions out in order, stopping at the first
//! failure (requeued with backoff). Written objects go into the caches at once, so the next plan
//! never acts on a state older than our own writes. Everything is also requeued every
//! [`Config::resync`], as upstream's periodic resync.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::watcher::{self, Event};

use crate::watch::{Watched, watch_all};
use kube::{Client, Resource};
use serde_json::json;
use tokio::time::Instant;

use super::effects::{EffectError, KubeVolumes, VolumeEffects, Written};
use super::matching::{annotation, claim_key, node_ready};
use super::plan::{Action, Snapshot, Target, plan_claim, plan_volume};
use super::{BIND_COMPLETED, VOLUMES_DIR_ANNOTATION};
use crate::queue::{Backoff, WorkQueue};

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Per-key backoff after a failed write.
    pub backoff: Backoff,
    /// Every key is looked at again this often (upstream's default resync is 15 s).
    pub resync: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backoff: Backoff {
                base: Duration::from_millis(10),
                max: Duration::from_secs(30),
            },
            resync: Duration::from_secs(15),
        }
    }
}

/// Runs the volume controller (binder, local-path provisioner, in-use protection) against the
/// API server behind `client` until `shutdown`.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send) {
    run_with(
        client.clone(),
        KubeVolumes::new(client),
        Config::default(),
        shutdown,
    )
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    Claim(String),
    Volume(String),
}

type Change<K> = (Option<Arc<K>>, Option<Arc<K>>);

/// One type's cache: objects by key, plus the keys seen during a relist.
struct Cache<K> {
    relist: Option<BTreeSet<String>>,
    listed: bool,
    key: fn(&K) -> String,
    _kind: std::marker::PhantomData<K>,
}

fn revision<K: Resource>(o: &K) -> Option<u64> {
    o.meta().resource_version.as_deref()?.parse().ok()
}

/// Puts `new` into `items` unless the cached copy is newer (our own write beat the watch).
fn store<K: Resource>(
    items: &mut BTreeMap<String, Arc<K>>,
    key: String,
    new: K,
) -> Option<Change<K>> {
    let old = items.get(&key).cloned();
    if let (Some(o), Some(n)) = (old.as_deref().and_then(revision), revision(&new))
        && n < o
    {
        return None;
    }
    let new = Arc::new(new);
    items.insert(key, new.clone());
    Some((old, Some(new)))
}

impl<K: Resource + Clone> Cache<K> {
    fn new(key: fn(&K) -> String) -> Self {
        Cache {
            relist: None,
            listed: false,
            key,
            _kind: std::marker::PhantomData,
        }
    }

    fn apply(&mut self, items: &mut BTreeMap<String, Arc<K>>, e: Event<K>) -> Vec<Change<K>> {
        match e {
            Event::Init => {
                self.relist = Some(BTreeSet::new());
                Vec::new()
            }
            Event::InitApply(o) | Event::Apply(o) => {
                let key = (self.key)(&o);
                if let Some(seen) = self.relist.as_mut() {
                    seen.insert(key.clone());
                }
                store(items, key, o).into_iter().collect()
            }
            Event::Delete(o) => {
                let key = (self.key)(&o);
                items
                    .remove(&key)
                    .map(|old| (Some(old), None))
                    .into_iter()
                    .collect()
            }
            Event::InitDone => {
                self.listed = true;
                let seen = self.relist.take().unwrap_or_default();
                let gone: Vec<String> = items
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                gone.into_iter()
                    .filter_map(|k| items.remove(&k))
                    .map(|old| (Some(old), None))
                    .collect()
            }
        }
    }
}

fn name_key<K: Resource>(o: &K) -> String {
    o.meta().name.clone().unwrap_or_default()
}

fn ns_key<K: Resource>(o: &K) -> String {
    format!(
        "{}/{}",
        o.meta().namespace.as_deref().unwrap_or_default(),
        o.meta().name.as_deref().unwrap_or_default()
    )
}

enum Change2 {
    Claim(Watched<PersistentVolumeClaim>),
    Volume(Watched<PersistentVolume>),
    Class(Watched<StorageClass>),
    Node(Watched<Node>),
    Pod(Watched<Pod>),
}

/// The caches, the queue and the events already recorded.
struct Controller {
    snap: Snapshot,
    claims: Cache<PersistentVolumeClaim>,
    volumes: Cache<PersistentVolume>,
    classes: Cache<StorageClass>,
    nodes: Cache<Node>,
    pods: Cache<Pod>,
    queue: WorkQueue<Key>,
    recorded: HashMap<Target, HashSet<(&'static str, String)>>,
}

fn unbound_claims(snap: &Snapshot) -> Vec<Key> {
    snap.claims
        .iter()
        .filter(|(_, c)| annotation(&c.metadata, BIND_COMPLETED).is_none())
        .map(|(k, _)| Key::Claim(k.clone()))
        .collect()
}

fn pod_claims(pod: &Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(format!("{ns}/{}", c.claim_name))
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{ns}/{name}-{}", v.name))
            }
        })
        .collect()
}

fn node_facts(n: &Node) -> (bool, Option<String>, Option<BTreeMap<String, String>>) {
    (
        node_ready(n),
        annotation(&n.metadata, VOLUMES_DIR_ANNOTATION).map(str::to_string),
        n.metadata.labels.clone(),
    )
}

impl Controller {
    fn new(config: &Config) -> Self {
        Controller {
            snap: Snapshot::default(),
            claims: Cache::new(ns_key),
            volumes: Cache::new(name_key),
            classes: Cache::new(name_key),
            nodes: Cache::new(name_key),
            pods: Cache::new(ns_key),
            queue: WorkQueue::new(config.backoff),
            recorded: HashMap::new(),
        }
    }

    fn synced(&self) -> bool {
        self.claims.listed
            && self.volumes.listed
            && self.classes.listed
            && self.nodes.listed
            && self.pods.listed
    }

    fn apply(&mut self, change: Change2) {
        let keys = match change {
            Change2::Claim(e) => match *e {
                Ok(e) => {
                    let changes = self.claims.apply(&mut self.snap.claims, e);
                    changes.iter().flat_map(|c| self.claim_keys(c)).collect()
                }
                Err(e) => warn_watch(&e),
            },
            Change2::Volume(e) => match *e {
                Ok(e) => {
                    let changes = self.volumes.apply(&mut self.snap.volumes, e);
                    changes.iter().flat_map(|c| self.volume_keys(c)).collect()
                }
                Err(e) => warn_watch(&e),
            },
            Change2::Class(e) => match *e {
                Ok(e) => {
                    let changes = self.classes.apply(&mut self.snap.classes, e);
                    if changes.is_empty() {
                        Vec::new()
                    } else {
                        unbound_claims(&self.snap)
                    }
                }
                Err(e) => warn_watch(&e),
            },
            Change2::Node(e) => match *e {
                Ok(e) => {
                    let changes = self.nodes.apply(&mut self.snap.nodes, e);
                    let relevant = changes.iter().any(|(old, new)| {
                        old.as_deref().map(node_facts) != new.as_deref().map(node_facts)
                    });
                    if relevant {
                        unbound_claims(&self.snap)
                    } else {
                        Vec::new()
                    }
                }
                Err(e) => warn_watch(&e),
            },
            Change2::Pod(e) => match *e {
                Ok(e) => {
                    let changes = self.pods.apply(&mut self.snap.pods, e);
                    changes
                        .iter()
                        .flat_map(|(old, new)| old.iter().chain(new.iter()))
                        .flat_map(|p| pod_claims(p))
                        .filter(|k| {
                            self.snap
                                .claims
                                .get(k)
                                .is_some_and(|c| c.metadata.deletion_timestamp.is_some())
                        })
                        .map(Key::Claim)
                        .collect()
                }
                Err(e) => warn_watch(&e),
            },
        };
        for key in keys {
            self.queue.add(key);
        }
    }

    fn claim_keys(&mut self, (old, new): &Change<PersistentVolumeClaim>) -> Vec<Key> {
        let mut keys = Vec::new();
        for c in old.iter().chain(new.iter()) {
            let key = claim_key(c);
            keys.push(Key::Claim(key.clone()));
            if let Some(v) = c.spec.as_ref().and_then(|s| s.volume_name.clone()) {
                keys.push(Key::Volume(v));
            }
            for (name, pv) in &self.snap.volumes {
                let r = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
                if r.is_some_and(|r| {
                    r.name == c.metadata.name && r.namespace == c.metadata.namespace
                }) {
                    keys.push(Key::Volume(name.clone()));
                }
            }
        }
        if new.is_none()
            && let Some(c) = old
        {
            self.recorded.remove(&Target::claim(c));
        }
        keys
    }

    fn volume_keys(&mut self, (old, new): &Change<PersistentVolume>) -> Vec<Key> {
        let mut keys = Vec::new();
        for pv in old.iter().chain(new.iter()) {
            keys.push(Key::Volume(name_key(&**pv)));
            if let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                keys.push(Key::Claim(format!(
                    "{}/{}",
                    r.namespace.as_deref().unwrap_or_default(),
                    r.name.as_deref().unwrap_or_default()
                )));
            }
        }
        if new.is_none()
            && let Some(pv) = old
        {
            self.recorded.remove(&Target::volume(pv));
        }
        keys
    }

    fn resync(&mut self) {
        let keys: Vec<Key> = self
            .snap
            .claims
            .keys()
            .map(|k| Key::Claim(k.clone()))
            .chain(self.snap.volumes.keys().map(|k| Key::Volume(k.clone())))
            .collect();
        for k in keys {
            self.queue.add(k);
        }
    }

    fn plan(&self, key: &Key) -> Option<Vec<Action>> {
        match key {
            Key::Claim(k) => self.snap.claims.get(k).map(|c| plan_claim(c, &self.snap)),
            Key::Volume(k) => self.snap.volumes.get(k).map(|v| plan_volume(v, &self.snap)),
        }
    }

    fn written(&mut self, w: Written) {
        match w {
            Written::Claim(c) => {
                store(&mut self.snap.claims, ns_key(&*c), *c);
            }
            Written::Volume(v) => {
                store(&mut self.snap.volumes, name_key(&*v), *v);
            }
        }
    }

    /// Plans `key` and carries the plan out.
    async fn process<E: VolumeEffects>(&mut self, key: Key, effects: &E) {
        let Some(mut actions) = self.plan(&key) else {
            self.queue.forget(&key);
            return;
        };
        if releases(&actions) {
            // Upstream double-checks with the API server before releasing: the claim cache may
            // lag behind a volume that was bound to a new claim a moment ago.
            match self.live_claim(&key, effects).await {
                Ok(Some(claim)) => {
                    store(&mut self.snap.claims, ns_key(&claim), claim);
                    actions = self.plan(&key).unwrap_or_default();
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(key = ?key, error = %e, "volume controller: requeue");
                    self.queue.add_rate_limited(key, Instant::now());
                    return;
                }
            }
        }
        // Later writes to an object we already wrote in this round carry the new revision:
        // the plan was made from one state and only our own writes came in between.
        let mut revisions: HashMap<Target, String> = HashMap::new();
        for action in actions {
            let result = match action {
                Action::Patch { target, rv, patch } => {
                    let rv = revisions.get(&target).cloned().unwrap_or(rv);
                    let mut patch = patch;
                    patch["metadata"]["resourceVersion"] = json!(rv);
                    effects.patch(&target, false, &patch).await
                }
                Action::Status { target, status } => {
                    effects
                        .patch(&target, true, &json!({ "status": status }))
                        .await
                }
                Action::Create(pv) => match effects.create_volume(&pv).await {
                    Ok(v) => Ok(Written::Volume(Box::new(v))),
                    Err(EffectError::AlreadyExists(_)) => continue,
                    Err(e) => Err(e),
                },
                Action::Event(ev) => {
                    let seen = self.recorded.entry(ev.target.clone()).or_default();
                    if seen.insert((ev.reason, ev.message.clone())) {
                        effects.record(&ev).await;
                    }
                    continue;
                }
            };
            match result {
                Ok(w) => {
                    let (target, rv) = match &w {
                        Written::Claim(c) => {
                            (Target::claim(c), c.metadata.resource_version.clone())
                        }
                        Written::Volume(v) => {
                            (Target::volume(v), v.metadata.resource_version.clone())
                        }
                    };
                    revisions.insert(target, rv.unwrap_or_default());
                    self.written(w);
                }
                Err(EffectError::NotFound(_)) => {
                    // Gone: its deletion event comes next.
                    self.queue.forget(&key);
                    return;
                }
                Err(e) => {
                    tracing::debug!(key = ?key, error = %e, "volume controller: requeue");
                    self.queue.add_rate_limited(key, Instant::now());
                    return;
                }
            }
        }
        self.queue.forget(&key);
    }
}

/// True when the plan moves a volume to Released.
fn releases(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(a, Action::Status { target: Target::Volume { .. }, status }
            if status["phase"] == "Released")
    })
}

impl Controller {
    /// The claim a volume's `claimRef` names, read live, when it exists with that uid.
    async fn live_claim<E: VolumeEffects>(
        &self,
        key: &Key,
        effects: &E,
    ) -> Result<Option<PersistentVolumeClaim>, EffectError> {
        let Key::Volume(name) = key else {
            return Ok(None);
        };
        let Some(r) = self
            .snap
            .volumes
            .get(name)
            .and_then(|pv| pv.spec.as_ref())
            .and_then(|s| s.claim_ref.clone())
        else {
            return Ok(None);
        };
        let claim = effects
            .get_claim(
                r.namespace.as_deref().unwrap_or_default(),
                r.name.as_deref().unwrap_or_default(),
            )
            .await?;
        Ok(claim.filter(|c| c.metadata.uid.is_some() && c.metadata.uid == r.uid))
    }
}

fn warn_watch(e: &watcher::Error) -> Vec<Key> {
    tracing::warn!(error = %e, "volume controller: watch failed");
    Vec::new()
}

/// [`run`] with any effects and configuration (the watches still come from `client`).
pub async fn run_with<E: VolumeEffects>(
    client: Client,
    effects: E,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut changes = futures::stream::select_all([
        watch_all::<PersistentVolumeClaim>(&client)
            .map(Change2::Claim)
            .boxed(),
        watch_all::<PersistentVolume>(&client)
            .map(Change2::Volume)
            .boxed(),
        watch_all::<StorageClass>(&client)
            .map(Change2::Class)
            .boxed(),
        watch_all::<Node>(&client).map(Change2::Node).boxed(),
        watch_all::<Pod>(&client).map(Change2::Pod).boxed(),
    ]);
    let mut controller = Controller::new(&config);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut resync = tokio::time::interval(config.resync);
    resync.tick().await;
    loop {
        let wake = controller.queue.wake(controller.synced());
        tokio::select! {
            () = &mut shutdown => return,
            change = changes.next() => match change {
                Some(change) => controller.apply(change),
                None => return,
            },
            _ = resync.tick() => controller.resync(),
            () = wake => {
                if let Some(key) = controller.queue.pop(Instant::now()) {
                    controller.process(key, &effects).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::Value;

    use super::super::plan::VolumeEvent;
    use super::*;

    /// Answers `get_claim` with a fixed claim and records every write.
    #[derive(Default)]
    struct Fake {
        live: Option<PersistentVolumeClaim>,
        writes: Mutex<Vec<(Target, bool, Value)>>,
    }

    impl VolumeEffects for Fake {
        async fn patch(
            &self,
            target: &Target,
            status: bool,
            patch: &Value,
        ) -> Result<Written, EffectError> {
            self.writes
                .lock()
                .unwrap()
                .push((target.clone(), status, patch.clone()));
            Err(EffectError::Other("the fake writes nothing".into()))
        }

        async fn create_volume(
            &self,
            pv: &PersistentVolume,
        ) -> Result<PersistentVolume, EffectError> {
            Ok(pv.clone())
        }

        async fn get_claim(
            &self,
            _namespace: &str,
            _name: &str,
        ) -> Result<Option<PersistentVolumeClaim>, EffectError> {
            Ok(self.live.clone())
        }

        async fn record(&self, _event: &VolumeEvent) {}
    }

    fn world() -> Controller {
        let mut c = Controller::new(&Config::default());
        let pv: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": "pv-1", "resourceVersion": "7",
                         "finalizers": ["kubernetes.io/pv-protection"]},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete",
                     "claimRef": {"namespace": "default", "name": "www", "uid": "u1"}},
            "status": {"phase": "Bound"},
        }))
        .unwrap();
        c.snap.volumes.insert("pv-1".into(), Arc::new(pv));
        c
    }

    fn live_claim() -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "www", "namespace": "default", "uid": "u1", "resourceVersion": "9",
                         "finalizers": ["kubernetes.io/pvc-protection"]},
            "spec": {"volumeName": "pv-1"},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_claim_missing_from_a_lagging_cache_does_not_release_its_volume() {
        // Ref: upstream pv_controller syncVolume "claim not found in the cache: check the API".
        let mut c = world();
        let fake = Fake {
            live: Some(live_claim()),
            ..Fake::default()
        };
        c.process(Key::Volume("pv-1".into()), &fake).await;
        assert!(fake.writes.lock().unwrap().is_empty(), "nothing to do");
        assert!(c.snap.claims.contains_key("default/www"), "cache caught up");
    }

    #[tokio::test]
    async fn a_claim_gone_from_the_api_too_releases_its_volume() {
        let mut c = world();
        let fake = Fake::default();
        c.process(Key::Volume("pv-1".into()), &fake).await;
        let writes = fake.writes.lock().unwrap();
        assert_eq!(
            writes[0],
            (
                Target::Volume {
                    name: "pv-1".into()
                },
                true,
                json!({"status": {"phase": "Released", "message": null}})
            )
        );
        assert_eq!(
            c.queue.failures(&Key::Volume("pv-1".into())),
            1,
            "requeued after the failed write"
        );
    }
}
