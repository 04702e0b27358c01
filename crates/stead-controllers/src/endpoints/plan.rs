//! What one sync of one service key writes, purely: [`plan`] over a [`Snapshot`] decides the
//! Endpoints write ([`plan_endpoints`]) and the EndpointSlice writes
//! ([`plan_slices`](super::slices::plan_slices)).
//!
//! - A service with a selector (and not `ExternalName`) gets both, computed from its pods.
//! - A service without a selector is left alone: its endpoints are the user's. The one exception
//!   is `default/kubernetes` when [`Snapshot::apiserver`] is given: it gets the API server's
//!   address, as upstream's API server maintains it ([`apiserver_endpoints`]).
//! - A deleted service loses its Endpoints and our slices (the garbage collector would delete
//!   the slices too; deleting them here is just faster).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::slices::{HEADLESS, MANAGED_BY, SERVICE_NAME, SlicePlan, TRIGGER_TIME, plan_slices};
use super::subsets::{OVER_CAPACITY, canonical, desired_subsets, truncate};
use super::view::{Family, PodView, ServiceView};

/// Label marking the Endpoints objects this controller made (upstream 1.33 `LabelManagedBy`).
pub const ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
/// Our value of [`ENDPOINTS_MANAGED_BY`].
pub const ENDPOINTS_CONTROLLER: &str = "endpoint-controller";

/// Label on the API server's own Endpoints: the mirroring controller must not copy them.
pub const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";

/// Everything a sync of one service key reads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub namespace: String,
    pub name: String,
    /// `None`: the service is gone.
    pub service: Option<ServiceView>,
    /// Pods of the namespace the service's selector matches.
    pub pods: Vec<Arc<PodView>>,
    /// The Endpoints object of the same name.
    pub endpoints: Option<Arc<Endpoints>>,
    /// Slices of the namespace labelled with the service's name (any manager).
    pub slices: Vec<Arc<EndpointSlice>>,
    /// This sync's trigger time ([`TriggerTimes`](super::trigger::TriggerTimes)).
    pub trigger: Option<Timestamp>,
    /// The API server's address, for the `kubernetes` service's endpoints.
    pub apiserver: Option<SocketAddr>,
}

/// The write to the Endpoints object.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointsWrite {
    Create(Endpoints),
    /// A full replace at the current object's resourceVersion.
    Update(Endpoints),
    Delete,
}

/// The writes of one sync.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub endpoints: Option<EndpointsWrite>,
    pub slices: SlicePlan,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_none() && self.slices.is_empty()
    }
}

fn set_annotation(meta: &mut ObjectMeta, key: &str, value: Option<String>) {
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    match value {
        Some(v) => {
            annotations.insert(key.into(), v);
        }
        None => {
            annotations.remove(key);
        }
    }
    if annotations.is_empty() {
        meta.annotations = None;
    }
}

/// Builds the write that makes `current` carry `subsets` and `labels`, or `None` when it already
/// does (subsets compared in canonical form; annotations other than over-capacity ignored).
fn endpoints_write(
    namespace: &str,
    name: &str,
    current: Option<&Endpoints>,
    mut subsets: Vec<EndpointSubset>,
    labels: BTreeMap<String, String>,
    trigger: Option<Timestamp>,
) -> Option<EndpointsWrite> {
    let truncated = truncate(&mut subsets);
    if truncated {
        // Cutting can leave two subsets with the same addresses: merge them as a reader would.
        subsets = canonical(&subsets);
    }
    if let Some(cur) = current {
        let over = cur
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(OVER_CAPACITY));
        let cur_labels = cur.metadata.labels.clone().unwrap_or_default();
        if canonical(cur.subsets.as_deref().unwrap_or_default()) == subsets
            && cur_labels == labels
            && over == truncated
        {
            return None;
        }
    }
    let mut ep = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        subsets: None,
    });
    ep.subsets = Some(subsets).filter(|s| !s.is_empty());
    ep.metadata.labels = Some(labels).filter(|l| !l.is_empty());
    set_annotation(
        &mut ep.metadata,
        TRIGGER_TIME,
        trigger.map(|t| t.to_string()),
    );
    set_annotation(
        &mut ep.metadata,
        OVER_CAPACITY,
        truncated.then(|| "truncated".into()),
    );
    Some(match current {
        Some(_) => EndpointsWrite::Update(ep),
        None => EndpointsWrite::Create(ep),
    })
}

/// The Endpoints write for a service with a selector (upstream `syncService`): subsets from
/// [`desired_subsets`], the service's labels plus the headless mark and our manager label.
pub fn plan_endpoints(
    svc: &ServiceView,
    pods: &[&PodView],
    current: Option<&Endpoints>,
    trigger: Option<Timestamp>,
) -> Option<EndpointsWrite> {
    let mut labels = svc.labels.clone();
    if svc.ip_set() {
        labels.remove(HEADLESS);
    } else {
        labels.insert(HEADLESS.into(), String::new());
    }
    labels.insert(ENDPOINTS_MANAGED_BY.into(), ENDPOINTS_CONTROLLER.into());
    let subsets = desired_subsets(svc, pods.iter().copied());
    endpoints_write(&svc.namespace, &svc.name, current, subsets, labels, trigger)
}

/// The port the `kubernetes` service's endpoints publish.
fn apiserver_port(addr: SocketAddr) -> EndpointPort {
    EndpointPort {
        name: Some("https".into()),
        port: i32::from(addr.port()),
        protocol: Some("TCP".into()),
        app_protocol: None,
    }
}

/// The API server's own Endpoints and slice for `default/kubernetes` (upstream
/// `pkg/controlplane/reconcilers`): one address, port `https`, a slice named like the service.
pub fn apiserver_endpoints(
    addr: SocketAddr,
    current: Option<&Endpoints>,
    slice: Option<&EndpointSlice>,
) -> Plan {
    let ip = addr.ip().to_string();
    let subsets = vec![EndpointSubset {
        addresses: Some(vec![EndpointAddress {
            ip: ip.clone(),
            ..EndpointAddress::default()
        }]),
        not_ready_addresses: None,
        ports: Some(vec![apiserver_port(addr)]),
    }];
    let labels = BTreeMap::from([(SKIP_MIRROR.to_string(), "true".to_string())]);
    let endpoints = endpoints_write("default", "kubernetes", current, subsets, labels, None);
    let port = apiserver_port(addr);
    let want = EndpointSlice {
        metadata: ObjectMeta {
            name: Some("kubernetes".into()),
            namespace: Some("default".into()),
            labels: Some(BTreeMap::from([(
                SERVICE_NAME.to_string(),
                "kubernetes".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        address_type: Family::of(&ip).as_str().into(),
        endpoints: vec![discovery::Endpoint {
            addresses: vec![ip],
            conditions: Some(discovery::EndpointConditions {
                ready: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ports: Some(vec![discovery::EndpointPort {
            name: port.name,
            port: Some(port.port),
            protocol: port.protocol,
            app_protocol: None,
        }]),
    };
    let mut slices = SlicePlan::default();
    match slice {
        None => slices.create.push(want),
        Some(cur) if cur.address_type != want.address_type => {
            slices.delete.push("kubernetes".into());
            slices.create.push(want);
        }
        Some(cur)
            if cur.endpoints != want.endpoints
                || cur.ports != want.ports
                || cur.metadata.labels != want.metadata.labels =>
        {
            let mut s = want;
            s.metadata = ObjectMeta {
                labels: s.metadata.labels,
                ..cur.metadata.clone()
            };
            slices.update.push(s);
        }
        Some(_) => {}
    }
    Plan { endpoints, slices }
}

fn ours(slice: &EndpointSlice) -> bool {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY))
        .is_some_and(|m| m == super::slices::CONTROLLER_NAME)
}

/// The writes of one sync of `snapshot`'s key.
pub fn plan(snapshot: &Snapshot) -> Plan {
    let our_slices: Vec<&EndpointSlice> = snapshot
        .slices
        .iter()
        .map(|s| &**s)
        .filter(|s| ours(s))
        .collect();
    let Some(svc) = &snapshot.service else {
        return Plan {
            endpoints: snapshot.endpoints.as_ref().map(|_| EndpointsWrite::Delete),
            slices: SlicePlan {
                delete: our_slices
                    .iter()
                    .filter_map(|s| s.metadata.name.clone())
                    .collect(),
                ..SlicePlan::default()
            },
        };
    };
    if !svc.managed() {
        return match snapshot.apiserver {
            Some(addr)
                if svc.namespace == "default"
                    && svc.name == "kubernetes"
                    && svc.selector.is_none() =>
            {
                let slice = snapshot
                    .slices
                    .iter()
                    .find(|s| s.metadata.name.as_deref() == Some("kubernetes"));
                apiserver_endpoints(addr, snapshot.endpoints.as_deref(), slice.map(|s| &**s))
            }
            _ => Plan::default(),
        };
    }
    let pods: Vec<&PodView> = snapshot.pods.iter().map(|p| &**p).collect();
    Plan {
        endpoints: plan_endpoints(svc, &pods, snapshot.endpoints.as_deref(), snapshot.trigger),
        slices: plan_slices(svc, &pods, &our_slices, snapshot.trigger),
    }
}
