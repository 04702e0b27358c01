//! The StatefulSet controller's loop (upstream `stateful_set.go`): watches of StatefulSets, Pods,
//! PersistentVolumeClaims and ControllerRevisions feed caches (kube-runtime reflector stores) and
//! a work queue of `namespace/name` keys ([`triggers`](super::triggers) says which); up to
//! [`Config::workers`] keys sync at once, never one key twice at a time. Each sync reads the
//! caches of the set's namespace and runs [`sync_set`]; errors requeue with per-key exponential
//! backoff, `minReadySeconds` waits requeue after the delay. Entry points: [`run`], [`run_with`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};

use crate::watch::{Watched, watch_all};
use kube::{Client, Resource};
use tokio::time::Instant;

use super::action::Features;
use super::effects::{KubeEffects, StatefulSetEffects};
use super::sync::{Requeue, Snapshot, WaitingEvents, sync_set};
use super::triggers::{self, keys_for_claim, keys_for_owned, merge_keys};
use crate::queue::{Backoff, WorkQueue};
use crate::workers::Workers;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Feature switches for the planner. Default: `MaxUnavailableStatefulSet` on.
    pub features: Features,
    /// Concurrent syncs (`--concurrent-statefulset-syncs`, default 5).
    pub workers: usize,
    /// Per-key backoff after errors.
    pub backoff: Backoff,
    /// At most one `Waiting` event per set, pod and reason, and one `ConflictingController`
    /// Warning per set and claim, in this interval.
    pub waiting_interval: Duration,
    /// A `Waiting` event is recorded only once the same block has lasted this long.
    pub waiting_grace: Duration,
    /// Counts finished syncs per key, for tests that must observe "nothing happened across
    /// several syncs".
    pub syncs: Option<Arc<SyncLog>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            features: Features {
                max_unavailable_statefulset: true,
            },
            workers: 5,
            backoff: Backoff {
                base: Duration::from_millis(5),
                max: Duration::from_secs(30),
            },
            waiting_interval: Duration::from_secs(30),
            waiting_grace: Duration::from_secs(1),
            syncs: None,
        }
    }
}

/// Finished syncs per set key; [`SyncLog::wait_for`] lets a test wait for the controller to have
/// looked at a set again.
#[derive(Debug)]
pub struct SyncLog {
    counts: Mutex<HashMap<String, u64>>,
    tick: tokio::sync::watch::Sender<u64>,
}

impl Default for SyncLog {
    fn default() -> Self {
        SyncLog {
            counts: Mutex::new(HashMap::new()),
            tick: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl SyncLog {
    fn record(&self, key: &str) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_insert(0) += 1;
        self.tick.send_modify(|t| *t += 1);
    }

    /// Syncs of `key` finished so far.
    pub fn count(&self, key: &str) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `key` has had at least `n` finished syncs.
    pub async fn wait_for(&self, key: &str, n: u64) {
        let mut rx = self.tick.subscribe();
        while self.count(key) < n {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Runs the StatefulSet controller against the API server behind `client` until `shutdown`.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send) {
    run_with(
        client.clone(),
        KubeEffects::new(client),
        Config::default(),
        shutdown,
    )
    .await
}

/// The caches a sync reads.
#[derive(Clone)]
struct Stores {
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    revisions: Store<ControllerRevision>,
}

fn in_namespace<K>(store: &Store<K>, ns: &str) -> Vec<Arc<K>>
where
    K: Clone + Resource<DynamicType = ()> + 'static,
{
    store.state_filter(|o| o.meta().namespace.as_deref() == Some(ns))
}

impl Stores {
    fn sets_in(&self, ns: &str) -> Vec<Arc<StatefulSet>> {
        self.sets
            .state_filter(|s| s.metadata.namespace.as_deref() == Some(ns))
    }

    fn snapshot(&self, key: &str) -> Option<Snapshot> {
        let (ns, name) = key.split_once('/')?;
        let set = self.sets.get(&ObjectRef::new(name).within(ns))?;
        Some(Snapshot {
            set: (*set).clone(),
            pods: in_namespace(&self.pods, ns),
            claims: in_namespace(&self.claims, ns),
            revisions: in_namespace(&self.revisions, ns),
        })
    }
}

/// One watch event of any of the four types (boxed: the objects are large).
enum Change {
    Set(Watched<StatefulSet>),
    Pod(Watched<Pod>),
    Claim(Watched<PersistentVolumeClaim>),
    Revision(Watched<ControllerRevision>),
}

/// The writers behind [`Stores`] and the bookkeeping of which watches have listed.
struct Feed {
    sets: Writer<StatefulSet>,
    pods: Writer<Pod>,
    claims: Writer<PersistentVolumeClaim>,
    revisions: Writer<ControllerRevision>,
    stores: Stores,
    listed: HashSet<&'static str>,
}

impl Feed {
    fn new() -> Feed {
        let (sets_r, sets) = reflector::store();
        let (pods_r, pods) = reflector::store();
        let (claims_r, claims) = reflector::store();
        let (revisions_r, revisions) = reflector::store();
        Feed {
            sets,
            pods,
            claims,
            revisions,
            stores: Stores {
                sets: sets_r,
                pods: pods_r,
                claims: claims_r,
                revisions: revisions_r,
            },
            listed: HashSet::new(),
        }
    }

    fn synced(&self) -> bool {
        self.listed.len() == 4
    }

    /// Applies one watch event to the caches and returns the set keys it wakes.
    fn apply(&mut self, change: Change) -> Vec<String> {
        match change {
            Change::Set(e) => self.apply_set(*e),
            Change::Pod(e) => self.apply_pod(*e),
            Change::Claim(e) => self.apply_claim(*e),
            Change::Revision(e) => self.apply_revision(*e),
        }
    }

    fn apply_set(&mut self, e: Result<Event<StatefulSet>, watcher::Error>) -> Vec<String> {
        match e {
            Ok(e) => {
                self.sets.apply_watcher_event(&e);
                match &e {
                    Event::Apply(s) | Event::Delete(s) | Event::InitApply(s) => {
                        vec![triggers::set_key(s)]
                    }
                    Event::InitDone => {
                        self.listed.insert("sets");
                        self.all_sets()
                    }
                    Event::Init => Vec::new(),
                }
            }
            Err(e) => warn_watch(&e),
        }
    }

    fn apply_pod(&mut self, e: Result<Event<Pod>, watcher::Error>) -> Vec<String> {
        match e {
            Ok(e) => {
                let old = object(&e).and_then(|p| self.stores.pods.get(&ObjectRef::from_obj(p)));
                self.pods.apply_watcher_event(&e);
                let keys = self.owned_keys(object(&e).map(|p| &p.metadata));
                let old_keys = self.owned_keys(old.as_ref().map(|p| &p.metadata));
                self.listed_if_done(&e, "pods");
                merge_keys(keys, old_keys)
            }
            Err(e) => warn_watch(&e),
        }
    }

    fn apply_revision(
        &mut self,
        e: Result<Event<ControllerRevision>, watcher::Error>,
    ) -> Vec<String> {
        match e {
            Ok(e) => {
                self.revisions.apply_watcher_event(&e);
                self.listed_if_done(&e, "revisions");
                self.owned_keys(object(&e).map(|r| &r.metadata))
            }
            Err(e) => warn_watch(&e),
        }
    }

    fn apply_claim(
        &mut self,
        e: Result<Event<PersistentVolumeClaim>, watcher::Error>,
    ) -> Vec<String> {
        match e {
            Ok(e) => {
                self.claims.apply_watcher_event(&e);
                self.listed_if_done(&e, "claims");
                match object(&e) {
                    Some(c) => {
                        let ns = c.metadata.namespace.as_deref().unwrap_or_default();
                        keys_for_claim(&c.metadata, &self.stores.sets_in(ns))
                    }
                    None => Vec::new(),
                }
            }
            Err(e) => warn_watch(&e),
        }
    }

    fn listed_if_done<K>(&mut self, e: &Event<K>, what: &'static str) {
        if matches!(e, Event::InitDone) {
            self.listed.insert(what);
        }
    }

    fn owned_keys(
        &self,
        meta: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    ) -> Vec<String> {
        let Some(meta) = meta else {
            return Vec::new();
        };
        let ns = meta.namespace.as_deref().unwrap_or_default();
        keys_for_owned(meta, &self.stores.sets_in(ns))
    }

    fn all_sets(&self) -> Vec<String> {
        self.stores
            .sets
            .state()
            .iter()
            .map(|s| triggers::set_key(s))
            .collect()
    }
}

fn object<K>(e: &Event<K>) -> Option<&K> {
    match e {
        Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => Some(o),
        Event::Init | Event::InitDone => None,
    }
}

fn warn_watch(e: &watcher::Error) -> Vec<String> {
    tracing::warn!(error = %e, "statefulset controller: watch failed");
    Vec::new()
}

/// [`run`] with any effects and configuration (the watches still come from `client`).
pub async fn run_with<E: StatefulSetEffects>(
    client: Client,
    effects: E,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) {
    let effects = Arc::new(effects);
    let waiting = Arc::new(WaitingEvents::with_grace(
        config.waiting_interval,
        config.waiting_grace,
    ));
    let mut changes = futures::stream::select_all([
        watch_all::<StatefulSet>(&client).map(Change::Set).boxed(),
        watch_all::<Pod>(&client).map(Change::Pod).boxed(),
        watch_all::<PersistentVolumeClaim>(&client)
            .map(Change::Claim)
            .boxed(),
        watch_all::<ControllerRevision>(&client)
            .map(Change::Revision)
            .boxed(),
    ]);
    let mut feed = Feed::new();
    let mut queue: WorkQueue<String> = WorkQueue::new(config.backoff);
    let mut workers: Workers<String, Requeue> = Workers::new(config.workers);
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        // Start syncs while workers are free; a key already syncing is marked to run again.
        if feed.synced() {
            while let Some(key) = workers.next_key(&mut queue, Instant::now()) {
                let Some(snapshot) = feed.stores.snapshot(&key) else {
                    // Deleted: nothing to clean up (the garbage collector does it).
                    waiting.forget(&key);
                    queue.forget(&key);
                    continue;
                };
                let running_key = key.clone();
                let effects = effects.clone();
                let waiting = waiting.clone();
                let syncs = config.syncs.clone();
                let features = config.features;
                workers.spawn(running_key, async move {
                    let now = jiff::Timestamp::now();
                    let outcome = sync_set(&*effects, &snapshot, now, features, &waiting).await;
                    if let Some(e) = &outcome.error {
                        tracing::warn!(statefulset = %key, error = %e, "statefulset sync failed");
                    }
                    if let Some(log) = syncs {
                        log.record(&key);
                    }
                    outcome.requeue
                });
            }
        }
        let wake = queue.wake(feed.synced() && workers.has_room());
        tokio::select! {
            () = &mut shutdown => break,
            change = changes.next() => match change {
                Some(change) => {
                    for key in feed.apply(change) {
                        queue.add(key);
                    }
                }
                None => break,
            },
            (key, requeue) = workers.join_next() => {
                // A panicked sync is retried like a failed one.
                let requeue = requeue.unwrap_or(Requeue::Backoff);
                let now = Instant::now();
                match requeue {
                    Requeue::OnChange => queue.forget(&key),
                    Requeue::After(d) => {
                        queue.forget(&key);
                        queue.add_at(key.clone(), now + d);
                    }
                    Requeue::Backoff => queue.add_rate_limited(key.clone(), now),
                }
                workers.finish(key, &mut queue);
            }
            () = wake => {}
        }
    }
    workers.shutdown().await;
}
