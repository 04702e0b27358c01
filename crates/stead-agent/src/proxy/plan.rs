//! Services and EndpointSlices → the service ports the node must forward, each with its ready
//! endpoints (pure). The same resolution kube-proxy does: a Service port matches the slice port
//! of the same name and protocol (so a named `targetPort` comes out as the number the slice
//! carries), endpoints count when `conditions.ready` is not false, addresses are deduplicated
//! across slices, headless and ExternalName Services are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The session affinity timeout when `sessionAffinityConfig.clientIP.timeoutSeconds` is unset
/// (upstream's default, 3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10800;

/// A transport protocol a Service port forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name nftables knows it by.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One port of one Service on one cluster IP: what traffic to `cluster_ip:port/protocol`
/// becomes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServicePort {
    // Field order is the sort order: by address, so clashes are neighbours.
    pub cluster_ip: Ipv4Addr,
    pub protocol: Protocol,
    pub port: u16,
    /// `namespace/name`.
    pub service: String,
    /// The Service port's name (`""` when it has a single unnamed port).
    pub port_name: String,
    /// Ready endpoints, sorted and unique. Empty: traffic is rejected.
    pub endpoints: Vec<SocketAddrV4>,
    /// `Some(seconds)` for `sessionAffinity: ClientIP`.
    pub affinity_timeout: Option<u32>,
    /// The node port (type NodePort/LoadBalancer): the same forwarding for traffic to any
    /// address of the node on this port.
    pub node_port: Option<u16>,
}

/// Every forwarded service port of the cluster, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyPlan {
    pub ports: Vec<ServicePort>,
}

/// The plan for `services` given `slices` (all namespaces).
pub fn plan<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> ProxyPlan {
    // (namespace, service name) → its IPv4 slices.
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let owner = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL));
        if let (Some(ns), Some(owner)) = (slice.metadata.namespace.as_ref(), owner) {
            by_service
                .entry((ns.clone(), owner.clone()))
                .or_default()
                .push(slice);
        }
    }
    let mut ports = Vec::new();
    for svc in services {
        let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
            continue;
        };
        let Some(spec) = &svc.spec else { continue };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = cluster_ip(svc) else {
            continue;
        };
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
        });
        let slices = by_service
            .get(&(ns.clone(), name.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for sp in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(sp.protocol.as_deref()) else {
                continue;
            };
            let Ok(port) = u16::try_from(sp.port) else {
                continue;
            };
            let port_name = sp.name.clone().unwrap_or_default();
            let endpoints = ready_endpoints(slices, &port_name, protocol);
            let node_port = sp
                .node_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n != 0);
            ports.push(ServicePort {
                service: format!("{ns}/{name}"),
                port_name,
                cluster_ip,
                protocol,
                port,
                endpoints,
                affinity_timeout,
                node_port,
            });
        }
    }
    ports.sort();
    // Two Services cannot share a cluster IP, but a bad object must not make nft refuse the
    // whole script: the first one wins.
    ports.dedup_by(|b, a| (a.cluster_ip, a.protocol, a.port) == (b.cluster_ip, b.protocol, b.port));
    // Likewise for node ports, which the API server hands out uniquely.
    let mut node_ports = BTreeSet::new();
    for port in &mut ports {
        if let Some(n) = port.node_port
            && !node_ports.insert((port.protocol, n))
        {
            port.node_port = None;
        }
    }
    ProxyPlan { ports }
}

/// The Service's IPv4 cluster IP (a Service has at most one per family); none for headless
/// Services.
fn cluster_ip(svc: &Service) -> Option<Ipv4Addr> {
    let spec = svc.spec.as_ref()?;
    let listed = spec.cluster_ips.iter().flatten();
    listed
        .chain(spec.cluster_ip.iter())
        .find_map(|ip| ip.parse().ok())
}

/// The ready endpoints of the slice port named `port_name` with `protocol`. Loopback
/// addresses (the API server's own, on the host) cannot be forwarded to and are left out.
fn ready_endpoints(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Protocol,
) -> Vec<SocketAddrV4> {
    let mut out = BTreeSet::new();
    for slice in slices {
        let port = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        });
        let Some(port) = port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready {
                continue;
            }
            for addr in &ep.addresses {
                if let Ok(ip) = addr.parse::<Ipv4Addr>()
                    && !ip.is_loopback()
                    && !ip.is_unspecified()
                {
                    out.insert(SocketAddrV4::new(ip, port));
                }
            }
        }
    }
    out.into_iter().collect()
}
