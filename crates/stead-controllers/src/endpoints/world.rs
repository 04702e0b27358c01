//! The endpoints controllers' view of the cluster: caches of Services and Pods (as
//! [`ServiceView`]/[`PodView`] projections) and of the Endpoints and EndpointSlices they write,
//! fed by watch events ([`World::event`]) that answer with the service keys to sync; relists
//! replace a cache and wake what changed. Objects a sync wrote go in at once
//! ([`World::written`]); a late watch event with an older resourceVersion does not undo them.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::watcher::{self, Event};

use super::plan::{ENDPOINTS_CONTROLLER, ENDPOINTS_MANAGED_BY, Snapshot};
use super::slices::{CONTROLLER_NAME, MANAGED_BY, SERVICE_NAME};
use super::sync::Written;
use super::trigger::TriggerTimes;
use super::view::{PodView, ServiceView};

/// A service key: (namespace, name).
pub(crate) type Key = (String, String);

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
pub(crate) struct World {
    services: BTreeMap<Key, Arc<ServiceView>>,
    pods: BTreeMap<Key, Arc<PodView>>,
    endpoints: Versioned<Endpoints>,
    slices: Versioned<EndpointSlice>,
    /// Objects of a relist in progress, per kind (`None`: not relisting).
    /// Node name → its zone label (nodes without one map to `None`).
    nodes: BTreeMap<String, Option<String>>,
    relisting: Relists,
    listed: HashSet<&'static str>,
    triggers: TriggerTimes,
}

/// The label whose value becomes an endpoint's `zone`.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

#[derive(Default)]
struct Relists {
    services: Option<Vec<Service>>,
    pods: Option<Vec<Pod>>,
    endpoints: Option<Vec<Endpoints>>,
    slices: Option<Vec<EndpointSlice>>,
    nodes: Option<Vec<Node>>,
}

/// How one event of a kind moves the caches; `Init`/`InitApply`/`InitDone` (a relist) are
/// buffered by [`World`] and replayed as a replacement.
pub(crate) trait Kind: Resource + Clone + Send + 'static {
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
    pub(crate) fn new() -> World {
        World {
            services: BTreeMap::new(),
            pods: BTreeMap::new(),
            endpoints: Versioned::new(),
            slices: Versioned::new(),
            nodes: BTreeMap::new(),
            relisting: Relists::default(),
            listed: HashSet::new(),
            triggers: TriggerTimes::default(),
        }
    }

    pub(crate) fn synced(&self) -> bool {
        self.listed.len() == 5
    }

    /// Managed services of `ns` whose selector matches `labels`.
    fn selecting(&self, ns: &str, labels: &BTreeMap<String, String>) -> Vec<Key> {
        namespace_range(&self.services, ns)
            .filter(|(_, s)| s.managed() && s.selects(labels))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(crate) fn event<K: Kind>(&mut self, e: Result<Event<K>, watcher::Error>) -> Vec<Key> {
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
    pub(crate) fn snapshot(&mut self, key: &Key, apiserver: Option<SocketAddr>) -> Snapshot {
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
    pub(crate) fn written(&mut self, written: Vec<Written>) {
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
        let mut view = PodView::from_pod(&obj);
        view.zone = world.nodes.get(&view.node_name).cloned().flatten();
        let view = Arc::new(view);
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

impl World {
    /// Records a node's zone; when it changed, rewrites the zone of the pods on the node and
    /// returns the services that select them.
    fn set_zone(&mut self, node: &str, zone: Option<Option<String>>) -> Vec<Key> {
        let old = match &zone {
            Some(z) => self.nodes.insert(node.to_string(), z.clone()),
            None => self.nodes.remove(node),
        };
        let zone = zone.flatten();
        if old.flatten() == zone {
            return Vec::new();
        }
        let on_node: Vec<Key> = self
            .pods
            .iter()
            .filter(|(_, p)| p.node_name == node)
            .map(|(k, _)| k.clone())
            .collect();
        let mut keys = Vec::new();
        for k in on_node {
            let Some(pod) = self.pods.get_mut(&k) else {
                continue;
            };
            Arc::make_mut(pod).zone = zone.clone();
            let labels = pod.labels.clone();
            for s in self.selecting(&k.0, &labels) {
                if !keys.contains(&s) {
                    keys.push(s);
                }
            }
        }
        keys
    }
}

impl Kind for Node {
    const NAME: &'static str = "nodes";

    fn relist(world: &mut World) -> &mut Option<Vec<Self>> {
        &mut world.relisting.nodes
    }

    fn upsert(world: &mut World, obj: Self) -> Vec<Key> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let zone = obj
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ZONE_LABEL))
            .filter(|z| !z.is_empty())
            .cloned();
        world.set_zone(&name, Some(zone))
    }

    fn forget(world: &mut World, key: &Key) -> Vec<Key> {
        world.set_zone(&key.1, None)
    }

    fn cached(world: &World) -> Vec<Key> {
        world
            .nodes
            .keys()
            .map(|n| (String::new(), n.clone()))
            .collect()
    }
}
