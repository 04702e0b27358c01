//! The EndpointSlices of a Service, purely (upstream `staging/src/k8s.io/endpointslice`
//! `reconciler.go`): the endpoints each address type should list, grouped by port set, and the
//! fewest creates, updates and deletes that bring the existing slices there — endpoints stay in
//! the slice that holds them, new ones fill slices already being written, then the existing
//! slice they fit best, then new slices of at most [`MAX_ENDPOINTS_PER_SLICE`]; a slice that
//! would be deleted while another is created is rewritten instead; a service with no endpoints
//! keeps one empty placeholder slice per address type.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::view::{Family, PodView, ServiceView, find_port, sets_hostname};

pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Label naming the service a slice belongs to.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages a slice.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Label on the Endpoints and slices of a service without a cluster IP.
pub const HEADLESS: &str = "service.kubernetes.io/headless";
/// Annotation with the time of the change that led to a write.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The writes that bring a service's slices to the desired state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlicePlan {
    /// New slices (`generateName`, no name).
    pub create: Vec<EndpointSlice>,
    /// Existing slices rewritten (name and resourceVersion kept).
    pub update: Vec<EndpointSlice>,
    /// Names of slices to delete.
    pub delete: Vec<String>,
}

impl SlicePlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// The address types a service's slices carry (upstream `getAddressTypesForService`): its IP
/// families; without them, the family of its cluster IP, or both for a headless service.
pub fn address_types(svc: &ServiceView) -> BTreeSet<Family> {
    if !svc.ip_families.is_empty() {
        return svc.ip_families.iter().copied().collect();
    }
    if svc.ip_set() {
        return BTreeSet::from([Family::of(&svc.cluster_ip)]);
    }
    BTreeSet::from([Family::IPv4, Family::IPv6])
}

/// A slice's port set in a comparable form: (name, port, protocol, appProtocol), in order.
type PortsKey = Vec<(String, Option<i32>, String, Option<String>)>;

fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone(),
            )
        })
        .collect()
}

/// The ports a pod serves for `svc` (upstream `getEndpointPorts`).
fn endpoint_ports(svc: &ServiceView, pod: &PodView) -> Vec<EndpointPort> {
    svc.ports
        .iter()
        .filter_map(|p| {
            Some(EndpointPort {
                name: Some(p.name.clone()),
                port: Some(find_port(pod, p)?),
                protocol: Some(p.protocol.clone()),
                app_protocol: p.app_protocol.clone(),
            })
        })
        .collect()
}

/// An endpoint's identity, as upstream hashes it: addresses, hostname and target.
type EndpointKey = (Vec<String>, String, String, String);

fn endpoint_key(e: &Endpoint) -> EndpointKey {
    let mut addresses = e.addresses.clone();
    addresses.sort();
    let target = e.target_ref.as_ref();
    (
        addresses,
        e.hostname.clone().unwrap_or_default(),
        target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
        target.and_then(|t| t.name.clone()).unwrap_or_default(),
    )
}

/// Upstream `EndpointsEqualBeyondHash`: the fields outside the key.
fn same_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let target = |e: &Endpoint| {
        e.target_ref.as_ref().map(|t| {
            (
                t.kind.clone(),
                t.namespace.clone(),
                t.name.clone(),
                t.uid.clone(),
            )
        })
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && a.conditions == b.conditions
        && a.hints == b.hints
        && target(a) == target(b)
}

/// The endpoint of `pod` in a slice of `family` (upstream `podToEndpoint`): `serving` is pod
/// readiness, `terminating` its deletion, `ready` serving and not terminating (always true with
/// `publishNotReadyAddresses`).
pub fn pod_endpoint(svc: &ServiceView, pod: &PodView, family: Family) -> Endpoint {
    let serving = pod.ready;
    let terminating = pod.terminating;
    Endpoint {
        addresses: pod
            .ips
            .iter()
            .filter(|ip| Family::of(ip) == family)
            .cloned()
            .collect(),
        conditions: Some(EndpointConditions {
            ready: Some(svc.publish_not_ready || (serving && !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: sets_hostname(pod, svc).then(|| pod.hostname.clone()),
        node_name: pod.node(),
        target_ref: Some(pod.target_ref()),
        zone: pod.zone.clone(),
        ..Endpoint::default()
    }
}

/// Desired endpoints of one address type, by port set, each keyed by identity.
type Desired = BTreeMap<PortsKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)>;

fn desired_endpoints<'a>(
    svc: &ServiceView,
    pods: impl IntoIterator<Item = &'a PodView>,
    family: Family,
) -> Desired {
    let mut out: Desired = BTreeMap::new();
    for pod in pods {
        if !pod.in_endpoints(true) {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let entry = out
            .entry(ports_key(&ports))
            .or_insert_with(|| (ports, BTreeMap::new()));
        let endpoint = pod_endpoint(svc, pod, family);
        if !endpoint.addresses.is_empty() {
            entry.1.insert(endpoint_key(&endpoint), endpoint);
        }
    }
    out
}

/// The labels of every slice of `svc` (upstream `setEndpointSliceLabels`): the service's own
/// except the reserved ones, the headless mark, the service name and our manager name.
pub fn slice_labels(svc: &ServiceView) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .labels
        .iter()
        .filter(|(k, _)| ![SERVICE_NAME, MANAGED_BY, HEADLESS].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !svc.ip_set() {
        labels.insert(HEADLESS.into(), String::new());
    }
    labels.insert(SERVICE_NAME.into(), svc.name.clone());
    labels.insert(MANAGED_BY.into(), CONTROLLER_NAME.into());
    labels
}

/// The controller reference a slice of `svc` carries.
pub fn owner_ref(svc: &ServiceView) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name.clone(),
        uid: svc.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `slice`'s controller reference names `svc`.
pub fn owned_by(slice: &EndpointSlice, svc: &ServiceView) -> bool {
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == svc.uid)
}

/// The `generateName` of new slices: `<service>-` (the bare name when that is too long).
fn generate_name(svc: &ServiceView) -> String {
    if svc.name.len() < 253 {
        format!("{}-", svc.name)
    } else {
        svc.name.clone()
    }
}

fn new_slice(svc: &ServiceView, family: Family, ports: Vec<EndpointPort>) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(svc)),
            namespace: Some(svc.namespace.clone()),
            labels: Some(slice_labels(svc)),
            owner_references: Some(vec![owner_ref(svc)]),
            ..ObjectMeta::default()
        },
        address_type: family.as_str().into(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

/// Sets the trigger-time annotation (or removes it without a time) and orders the endpoints.
fn finish(slice: &mut EndpointSlice, trigger: Option<Timestamp>) {
    let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(t) => {
            annotations.insert(TRIGGER_TIME.into(), t.to_string());
        }
        None => {
            annotations.remove(TRIGGER_TIME);
        }
    }
    if annotations.is_empty() {
        slice.metadata.annotations = None;
    }
    slice.endpoints.sort_by_cached_key(endpoint_key);
}

/// Work of one address type.
#[derive(Default)]
struct TypePlan {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<EndpointSlice>,
}

/// Moves endpoints from `pending` into `slice` until it is full.
fn fill(slice: &mut EndpointSlice, pending: &mut BTreeMap<EndpointKey, Endpoint>) {
    while slice.endpoints.len() < MAX_ENDPOINTS_PER_SLICE {
        let Some((_, e)) = pending.pop_first() else {
            return;
        };
        slice.endpoints.push(e);
    }
}

/// One port set of one address type (upstream `reconcileByPortMapping`).
fn reconcile_ports(
    svc: &ServiceView,
    family: Family,
    labels: &BTreeMap<String, String>,
    existing: Vec<&EndpointSlice>,
    ports: Vec<EndpointPort>,
    mut pending: BTreeMap<EndpointKey, Endpoint>,
    out: &mut TypePlan,
) {
    let mut updating: Vec<EndpointSlice> = Vec::new();
    let mut unchanged: Vec<&EndpointSlice> = Vec::new();
    for slice in existing {
        let mut changed = slice.metadata.labels.as_ref() != Some(labels);
        let mut kept = Vec::new();
        for e in &slice.endpoints {
            match pending.remove(&endpoint_key(e)) {
                Some(want) => {
                    changed |= !same_beyond_key(&want, e);
                    kept.push(want);
                }
                None => changed = true,
            }
        }
        if !changed {
            unchanged.push(slice);
        } else if kept.is_empty() {
            out.delete.push(slice.clone());
        } else {
            let mut s = slice.clone();
            s.metadata.labels = Some(labels.clone());
            s.endpoints = kept;
            updating.push(s);
        }
    }
    // New endpoints go first into slices written anyway, fullest first.
    updating.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
    for s in &mut updating {
        fill(s, &mut pending);
    }
    // Then into the unchanged slice they fit closest to full, if they fit in one.
    if !pending.is_empty() {
        let target = unchanged
            .iter()
            .enumerate()
            .filter(|(_, s)| s.endpoints.len() + pending.len() <= MAX_ENDPOINTS_PER_SLICE)
            .max_by_key(|(_, s)| s.endpoints.len())
            .map(|(i, _)| i);
        if let Some(i) = target {
            let mut s = unchanged.remove(i).clone();
            fill(&mut s, &mut pending);
            updating.push(s);
        }
    }
    // The rest in new slices.
    while !pending.is_empty() {
        let mut s = new_slice(svc, family, ports.clone());
        fill(&mut s, &mut pending);
        out.create.push(s);
    }
    out.update.extend(updating);
}

/// Plans one address type (upstream `reconcileByAddressType`).
fn reconcile_type(
    svc: &ServiceView,
    pods: &[&PodView],
    family: Family,
    existing: Vec<&EndpointSlice>,
) -> TypePlan {
    let labels = slice_labels(svc);
    let mut desired = desired_endpoints(svc, pods.iter().copied(), family);
    let mut by_ports: BTreeMap<PortsKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in &existing {
        by_ports
            .entry(ports_key(s.ports.as_deref().unwrap_or_default()))
            .or_default()
            .push(s);
    }
    let mut out = TypePlan::default();
    for (key, slices) in by_ports {
        match desired.remove(&key) {
            Some((ports, pending)) => {
                reconcile_ports(svc, family, &labels, slices, ports, pending, &mut out)
            }
            // A port set no pod serves any more: all its slices go.
            None => out.delete.extend(slices.into_iter().cloned()),
        }
    }
    for (_, (ports, pending)) in desired {
        reconcile_ports(svc, family, &labels, Vec::new(), ports, pending, &mut out);
    }
    // A service without endpoints keeps one empty slice of this type.
    if out.create.is_empty() && out.delete.len() == existing.len() {
        let placeholder = new_slice(svc, family, Vec::new());
        let keep = out.delete.len() == 1
            && out.delete[0].endpoints.is_empty()
            && out.delete[0]
                .ports
                .as_deref()
                .unwrap_or_default()
                .is_empty()
            && out.delete[0].metadata.labels == placeholder.metadata.labels;
        if keep {
            out.delete.clear();
        } else {
            out.create.push(placeholder);
        }
    }
    out
}

/// Plans the slices of `svc` from the pods its selector matches and the slices that carry our
/// manager label and its name. Slices whose controller is not this service (an older service of
/// the same name) are deleted; the garbage collector would delete them anyway.
pub fn plan_slices(
    svc: &ServiceView,
    pods: &[&PodView],
    existing: &[&EndpointSlice],
    trigger: Option<Timestamp>,
) -> SlicePlan {
    let types = address_types(svc);
    let mut stale: Vec<EndpointSlice> = Vec::new();
    let mut by_type: BTreeMap<Family, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        match Family::parse(&s.address_type) {
            Some(f) if types.contains(&f) && owned_by(s, svc) => {
                by_type.entry(f).or_default().push(s)
            }
            _ => stale.push((*s).clone()),
        }
    }
    let mut create = Vec::new();
    let mut update = Vec::new();
    let mut delete = stale;
    for family in types {
        let t = reconcile_type(
            svc,
            pods,
            family,
            by_type.remove(&family).unwrap_or_default(),
        );
        create.extend(t.create);
        update.extend(t.update);
        delete.extend(t.delete);
    }
    // Rewrite a slice about to be deleted instead of creating one beside it.
    let mut i = 0;
    while i < delete.len() && !create.is_empty() {
        let reusable = if owned_by(&delete[i], svc) {
            create
                .iter()
                .rposition(|c| c.address_type == delete[i].address_type)
        } else {
            None
        };
        match reusable {
            Some(j) => {
                let old = delete.remove(i);
                let mut s = create.remove(j);
                s.metadata.name = old.metadata.name;
                s.metadata.generate_name = old.metadata.generate_name;
                s.metadata.resource_version = old.metadata.resource_version;
                s.metadata.uid = old.metadata.uid;
                s.metadata.annotations = old.metadata.annotations;
                update.push(s);
            }
            None => i += 1,
        }
    }
    for s in create.iter_mut().chain(update.iter_mut()) {
        finish(s, trigger);
    }
    update.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    SlicePlan {
        create,
        update,
        delete: delete.into_iter().filter_map(|s| s.metadata.name).collect(),
    }
}
