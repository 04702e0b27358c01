//! The run loop (upstream `endpoints_controller.go` and `endpointslice_controller.go` in one):
//! watches of Services, Pods, Endpoints and EndpointSlices feed the caches of a [`World`]; every
//! change queues the keys (`namespace/name` of a service) it can affect — a pod the services
//! whose selector matches its old or new labels, and only when a field that endpoints show
//! changed. Up to [`Config::workers`] keys sync at once (never one key twice), each as soon as it
//! is queued: no batching delay, so readiness reaches Endpoints and slices within one round trip.
//! Errors requeue with per-key backoff. What a sync writes goes into the caches at once (newer
//! resourceVersions win over late watch events), so the next sync does not act on a stale cache.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::effects::{EndpointsEffects, KubeEndpoints};
use super::plan::{ENDPOINTS_CONTROLLER, ENDPOINTS_MANAGED_BY, Snapshot, plan};
use super::slices::{CONTROLLER_NAME, MANAGED_BY, SERVICE_NAME};
use super::sync::{Executed, Written, execute};
use super::trigger::TriggerTimes;
use super::view::{PodView, ServiceView};
use crate::queue::{Backoff, WorkQueue};

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Concurrent syncs (upstream `--concurrent-endpoint-syncs`, default 5).
    pub workers: usize,
    /// Per-key backoff after errors.
    pub backoff: Backoff,
    /// The address clients reach the API server on: when set, the controller maintains the
    /// Endpoints and EndpointSlice of `default/kubernetes` (upstream's API server does that
    /// itself). `None` leaves them alone.
    pub apiserver: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 5,
            backoff: Backoff {
                base: Duration::from_millis(5),
                max: Duration::from_secs(10),
            },
            apiserver: None,
        }
    }
}

/// Runs the Endpoints and EndpointSlice controllers against the API server behind `client`
/// until `shutdown` completes.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send) {
    run_with(
        client.clone(),
        KubeEndpoints::new(client),
        Config::default(),
        shutdown,
    )
    .await
}

type Key = (String, String);

fn key_of(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn revision(meta: &ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// A cache of objects we also write: an object replaces the cached one only if its
/// resourceVersion is not older (unparsable versions always replace).
struct Versioned<K> {
    map: BTreeMap<Key, Arc<K>>,
}

impl<K: Resource> Versioned<K> {
    fn new() -> Self {
        Versioned {
            map: BTreeMap::new(),
        }
    }

    fn is_stale(&self, meta: &ObjectMeta) -> bool {
        let cached = self.map.get(&key_of(meta));
        match (cached.and_then(|c| revision(c.meta())), revision(meta)) {
            (Some(have), Some(new)) => new < have,
            _ => false,
        }
    }

    fn apply(&mut self, obj: K) {
        if !self.is_stale(obj.meta()) {
            self.map.insert(key_of(obj.meta()), Arc::new(obj));
        }
    }

    fn remove(&mut self, meta: &ObjectMeta) {
        if !self.is_stale(meta) {
            self.map.remove(&key_of(meta));
        }
    }
}

fn namespace_range<'a, V>(
    map: &'a BTreeMap<Key, V>,
    ns: &'a str,
) -> impl Iterator<Item = (&'a Key, &'a V)> + 'a {
    map.range((ns.to_string(), String::new())..)
        .take_while(move |((n, _), _)| n == ns)
}

fn service_label(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME)
        .map(String::as_str)
}

fn ours(slice: &EndpointSlice) -> bool {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY))
        .map(String::as_str)
        == Some(CONTROLLER_NAME)
}

/// The caches, the relists in progress and which watches have listed once.
struct World {
    services: BTreeMap<Key, Arc<ServiceView>>,
    pods: BTreeMap<Key, Arc<PodView>>,
    endpoints: Versioned<Endpoints>,
    slices: Versioned<EndpointSlice>,
    /// Objects of a relist in progress, per kind (`None`: not relisting).
    relisting: Relists,
    listed: HashSet<&'static str>,
    triggers: TriggerTimes,
}

#[derive(Default)]
struct Relists {
    services: Option<Vec<Service>>,
    pods: Option<Vec<Pod>>,
    endpoints: Option<Vec<Endpoints>>,
    slices: Option<Vec<EndpointSlice>>,
}

/// One watch event of any of the four types (boxed: the objects are large).
enum Change {
    Service(Box<Result<Event<Service>, watcher::Error>>),
    Pod(Box<Result<Event<Pod>, watcher::Error>>),
    Endpoints(Box<Result<Event<Endpoints>, watcher::Error>>),
    Slice(Box<Result<Event<EndpointSlice>, watcher::Error>>),
}

fn watch<K>(client: &Client) -> BoxStream<'static, Box<Result<Event<K>, watcher::Error>>>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: Send + 'static,
{
    watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(Box::new)
        .boxed()
}

/// How one event of a kind moves the caches; `Init`/`InitApply`/`InitDone` (a relist) are
/// buffered by [`World`] and replayed as a replacement.
trait Kind: Resource + Clone + Send + 'static {
    const NAME: &'static str;
    /// Where a relist of this kind collects its objects.
    fn relist(world: &mut World) -> &mut Option<Vec<Self>>;
    /// Records `obj`; returns the keys to queue.
    fn upsert(world: &mut World, obj: Self) -> Vec<Key>;
    /// Records `obj` gone; returns the keys to queue.
    fn delete(world: &mut World, obj: Self) -> Vec<Key> {
        Self::forget(world, &key_of(obj.meta()))
    }
    /// Drops the cached object at `key` (gone, or absent from a relist); returns the keys to
    /// queue.
    fn forget(world: &mut World, key: &Key) -> Vec<Key>;
    /// Every cached key of this kind.
    fn cached(world: &World) -> Vec<Key>;
}

impl World {
    fn new() -> World {
        World {
            services: BTreeMap::new(),
            pods: BTreeMap::new(),
            endpoints: Versioned::new(),
            slices: Versioned::new(),
            relisting: Relists::default(),
            listed: HashSet::new(),
            triggers: TriggerTimes::default(),
        }
    }

    fn synced(&self) -> bool {
        self.listed.len() == 4
    }

    /// Managed services of `ns` whose selector matches `labels`.
    fn selecting(&self, ns: &str, labels: &BTreeMap<String, String>) -> Vec<Key> {
        namespace_range(&self.services, ns)
            .filter(|(_, s)| s.managed() && s.selects(labels))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn event<K: Kind>(&mut self, e: Result<Event<K>, watcher::Error>) -> Vec<Key> {
        let e = match e {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, kind = K::NAME, "endpoints controller: watch failed");
                return Vec::new();
            }
        };
        match e {
            Event::Apply(o) => K::upsert(self, o),
            Event::Delete(o) => K::delete(self, o),
            Event::Init => {
                *K::relist(self) = Some(Vec::new());
                Vec::new()
            }
            Event::InitApply(o) => {
                K::relist(self).get_or_insert_with(Vec::new).push(o);
                Vec::new()
            }
            Event::InitDone => {
                let listed = K::relist(self).take().unwrap_or_default();
                let present: HashSet<Key> = listed.iter().map(|o| key_of(o.meta())).collect();
                let mut keys = Vec::new();
                for key in K::cached(self) {
                    if !present.contains(&key) {
                        keys.extend(K::forget(self, &key));
                    }
                }
                for o in listed {
                    keys.extend(K::upsert(self, o));
                }
                let first = self.listed.insert(K::NAME);
                if first && K::NAME == "endpoints" {
                    keys.extend(self.leftover_endpoints());
                }
                keys
            }
        }
    }

    /// Upstream `checkLeftoverEndpoints`: at start, Endpoints we made whose service is not
    /// there are queued (and deleted) — the service went away while no controller ran. Only
    /// objects with our manager label: an Endpoints object someone made by hand is theirs.
    fn leftover_endpoints(&self) -> Vec<Key> {
        self.endpoints
            .map
            .iter()
            .filter(|(k, ep)| {
                let label = ep
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ENDPOINTS_MANAGED_BY));
                !self.services.contains_key(*k)
                    && label.map(String::as_str) == Some(ENDPOINTS_CONTROLLER)
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The snapshot of `key` for a sync (records the trigger times it shows).
    fn snapshot(&mut self, key: &Key, apiserver: Option<SocketAddr>) -> Snapshot {
        let (ns, name) = key;
        let service = self.services.get(key).map(|s| (**s).clone());
        let pods: Vec<Arc<PodView>> = match &service {
            Some(svc) if svc.managed() => namespace_range(&self.pods, ns)
                .filter(|(_, p)| svc.selects(&p.labels))
                .map(|(_, p)| p.clone())
                .collect(),
            _ => Vec::new(),
        };
        let trigger = match &service {
            Some(svc) if svc.managed() => self.triggers.observe(svc, pods.iter().map(|p| &**p)),
            _ => {
                self.triggers.forget(ns, name);
                None
            }
        };
        Snapshot {
            namespace: ns.clone(),
            name: name.clone(),
            service,
            pods,
            endpoints: self.endpoints.map.get(key).cloned(),
            slices: namespace_range(&self.slices.map, ns)
                .map(|(_, s)| s)
                .filter(|s| service_label(s) == Some(name.as_str()))
                .cloned()
                .collect(),
            trigger,
            apiserver,
        }
    }

    /// Puts what a sync wrote into the caches.
    fn written(&mut self, written: Vec<Written>) {
        for w in written {
            match w {
                Written::Endpoints(ep) => self.endpoints.apply(ep),
                Written::EndpointsGone { namespace, name } => {
                    self.endpoints.map.remove(&(namespace, name));
                }
                Written::Slice(s) => self.slices.apply(s),
                Written::SliceGone { namespace, name } => {
                    self.slices.map.remove(&(namespace, name));
                }
            }
        }
    }
}

impl Kind for Service {
    const NAME: &'static str = "services";

    fn relist(world: &mut World) -> &mut Option<Vec<Self>> {
        &mut world.relisting.services
    }

    fn upsert(world: &mut World, obj: Self) -> Vec<Key> {
        let view = Arc::new(ServiceView::from_service(&obj));
        let key = view.key();
        match world.services.insert(key.clone(), view.clone()) {
            Some(old) if old == view => Vec::new(),
            _ => vec![key],
        }
    }

    fn forget(world: &mut World, key: &Key) -> Vec<Key> {
        world.services.remove(key);
        vec![key.clone()]
    }

    fn cached(world: &World) -> Vec<Key> {
        world.services.keys().cloned().collect()
    }
}

impl Kind for Pod {
    const NAME: &'static str = "pods";

    fn relist(world: &mut World) -> &mut Option<Vec<Self>> {
        &mut world.relisting.pods
    }

    fn upsert(world: &mut World, obj: Self) -> Vec<Key> {
        let view = Arc::new(PodView::from_pod(&obj));
        let key = key_of(&obj.metadata);
        let old = world.pods.insert(key.clone(), view.clone());
        if old.as_ref() == Some(&view) {
            return Vec::new();
        }
        let mut keys = world.selecting(&key.0, &view.labels);
        if let Some(old) = old.filter(|o| o.labels != view.labels) {
            for k in world.selecting(&key.0, &old.labels) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys
    }

    fn forget(world: &mut World, key: &Key) -> Vec<Key> {
        match world.pods.remove(key) {
            Some(old) => world.selecting(&key.0, &old.labels),
            None => Vec::new(),
        }
    }

    fn cached(world: &World) -> Vec<Key> {
        world.pods.keys().cloned().collect()
    }
}

impl Kind for Endpoints {
    const NAME: &'static str = "endpoints";

    fn relist(world: &mut World) -> &mut Option<Vec<Self>> {
        &mut world.relisting.endpoints
    }

    fn upsert(world: &mut World, obj: Self) -> Vec<Key> {
        let key = key_of(&obj.metadata);
        world.endpoints.apply(obj);
        world.services.get(&key).map(|_| key).into_iter().collect()
    }

    fn delete(world: &mut World, obj: Self) -> Vec<Key> {
        let key = key_of(&obj.metadata);
        world.endpoints.remove(&obj.metadata);
        world.services.get(&key).map(|_| key).into_iter().collect()
    }

    fn forget(world: &mut World, key: &Key) -> Vec<Key> {
        world.endpoints.map.remove(key);
        world
            .services
            .get(key)
            .map(|_| key.clone())
            .into_iter()
            .collect()
    }

    fn cached(world: &World) -> Vec<Key> {
        world.endpoints.map.keys().cloned().collect()
    }
}

/// The service key a slice event wakes: its service when cached, or any slice of ours (so that
/// one left over from a deleted service is removed).
fn slice_key(world: &World, slice: &EndpointSlice) -> Vec<Key> {
    let Some(name) = service_label(slice) else {
        return Vec::new();
    };
    let key = (
        slice.metadata.namespace.clone().unwrap_or_default(),
        name.to_string(),
    );
    if world.services.contains_key(&key) || ours(slice) {
        vec![key]
    } else {
        Vec::new()
    }
}

impl Kind for EndpointSlice {
    const NAME: &'static str = "endpointslices";

    fn relist(world: &mut World) -> &mut Option<Vec<Self>> {
        &mut world.relisting.slices
    }

    fn upsert(world: &mut World, obj: Self) -> Vec<Key> {
        let keys = slice_key(world, &obj);
        world.slices.apply(obj);
        keys
    }

    fn delete(world: &mut World, obj: Self) -> Vec<Key> {
        let keys = slice_key(world, &obj);
        world.slices.remove(&obj.metadata);
        keys
    }

    fn forget(world: &mut World, key: &Key) -> Vec<Key> {
        match world.slices.map.remove(key) {
            Some(old) => slice_key(world, &old),
            None => Vec::new(),
        }
    }

    fn cached(world: &World) -> Vec<Key> {
        world.slices.map.keys().cloned().collect()
    }
}

/// [`run`] with any effects and configuration (the watches still come from `client`).
pub async fn run_with<E: EndpointsEffects>(
    client: Client,
    effects: E,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) {
    let effects = Arc::new(effects);
    let mut changes = futures::stream::select_all([
        watch::<Service>(&client).map(Change::Service).boxed(),
        watch::<Pod>(&client).map(Change::Pod).boxed(),
        watch::<Endpoints>(&client).map(Change::Endpoints).boxed(),
        watch::<EndpointSlice>(&client).map(Change::Slice).boxed(),
    ]);
    let mut world = World::new();
    let mut queue: WorkQueue<Key> = WorkQueue::new(config.backoff);
    let mut running: HashSet<Key> = HashSet::new();
    let mut dirty: HashSet<Key> = HashSet::new();
    let mut tasks: JoinSet<(Key, Executed)> = JoinSet::new();
    let mut ids: HashMap<tokio::task::Id, Key> = HashMap::new();
    let workers = config.workers.max(1);
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        if world.synced() {
            while tasks.len() < workers {
                let Some(key) = queue.pop(Instant::now()) else {
                    break;
                };
                if running.contains(&key) {
                    dirty.insert(key);
                    continue;
                }
                let snapshot = world.snapshot(&key, config.apiserver);
                let plan = plan(&snapshot);
                if plan.is_empty() {
                    queue.forget(&key);
                    continue;
                }
                running.insert(key.clone());
                let effects = effects.clone();
                let task_key = key.clone();
                let handle = tasks.spawn(async move {
                    let (ns, name) = &task_key;
                    let done = execute(&*effects, ns, name, plan).await;
                    if let Some(e) = &done.error {
                        tracing::debug!(service = %format!("{ns}/{name}"), error = %e,
                            "endpoints sync failed");
                    }
                    (task_key, done)
                });
                ids.insert(handle.id(), key);
            }
        }
        let due = (world.synced() && tasks.len() < workers)
            .then(|| queue.next_due())
            .flatten();
        let wake = async move {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            change = changes.next() => {
                let keys = match change {
                    Some(Change::Service(e)) => world.event(*e),
                    Some(Change::Pod(e)) => world.event(*e),
                    Some(Change::Endpoints(e)) => world.event(*e),
                    Some(Change::Slice(e)) => world.event(*e),
                    None => break,
                };
                for key in keys {
                    queue.add(key);
                }
            }
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, key, executed) = match done {
                    Ok((id, (key, executed))) => (id, key, executed),
                    // A panicked sync is retried like a failed one.
                    Err(e) => match ids.get(&e.id()) {
                        Some(key) => (e.id(), key.clone(), Executed {
                            written: Vec::new(),
                            error: Some(super::effects::EffectError::Other("sync panicked".into())),
                        }),
                        None => continue,
                    },
                };
                ids.remove(&id);
                running.remove(&key);
                let failed = executed.error.is_some();
                world.written(executed.written);
                if failed {
                    queue.add_rate_limited(key.clone(), Instant::now());
                } else {
                    queue.forget(&key);
                }
                if dirty.remove(&key) {
                    queue.add(key);
                }
            }
            () = wake => {}
        }
    }
    tasks.shutdown().await;
}
