//! The parts of Services and Pods the endpoints controllers read, projected once when a watch
//! event arrives ([`ServiceView::from_service`], [`PodView::from_pod`]). A view holds every
//! field endpoints are computed from, so a change that leaves the view equal cannot change any
//! endpoints: "did this pod change in a way that matters" is `old != new`.
//!
//! Also here: the pod predicates and lookups both computations share — which pods take part
//! ([`PodView::in_endpoints`]), the hostname rule ([`sets_hostname`]), `targetPort` resolution
//! ([`find_port`]) and IP families.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// IPv4 or IPv6, as Service `ipFamilies` and EndpointSlice `addressType` spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    IPv4,
    IPv6,
}

impl Family {
    /// The family of an address (anything with a `:` is IPv6, as Go's `IsIPv6String` decides
    /// for well-formed addresses).
    pub fn of(ip: &str) -> Family {
        if ip.contains(':') {
            Family::IPv6
        } else {
            Family::IPv4
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "IPv4" => Some(Family::IPv4),
            "IPv6" => Some(Family::IPv6),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::IPv4 => "IPv4",
            Family::IPv6 => "IPv6",
        }
    }
}

/// Where a service port sends traffic on a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(i32),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortView {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub target: TargetPort,
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// `None` when the service has no selector (or an empty one, which the API cannot tell
    /// apart from none once stored): its endpoints are managed by someone else.
    pub selector: Option<BTreeMap<String, String>>,
    pub external_name: bool,
    pub cluster_ip: String,
    pub ip_families: Vec<Family>,
    pub ports: Vec<ServicePortView>,
    pub publish_not_ready: bool,
    pub created: Option<Timestamp>,
}

impl ServiceView {
    pub fn from_service(svc: &Service) -> ServiceView {
        let meta = &svc.metadata;
        let spec = svc.spec.clone().unwrap_or_default();
        let ports = spec
            .ports
            .iter()
            .flatten()
            .map(|p| ServicePortView {
                name: p.name.clone().unwrap_or_default(),
                port: p.port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                target: match &p.target_port {
                    Some(IntOrString::String(s)) => match s.parse::<i32>() {
                        Ok(n) => TargetPort::Number(n),
                        Err(_) => TargetPort::Name(s.clone()),
                    },
                    Some(IntOrString::Int(n)) if *n != 0 => TargetPort::Number(*n),
                    _ => TargetPort::Number(p.port),
                },
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        ServiceView {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            selector: spec.selector.filter(|s| !s.is_empty()),
            external_name: spec.type_.as_deref() == Some("ExternalName"),
            cluster_ip: spec.cluster_ip.unwrap_or_default(),
            ip_families: spec
                .ip_families
                .iter()
                .flatten()
                .filter_map(|f| Family::parse(f))
                .collect(),
            ports,
            publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
        }
    }

    /// `clusterIP: None`.
    pub fn headless(&self) -> bool {
        self.cluster_ip == "None"
    }

    /// Upstream `IsServiceIPSet`: a cluster IP that is neither empty nor `None`.
    pub fn ip_set(&self) -> bool {
        !self.cluster_ip.is_empty() && !self.headless()
    }

    /// Whether this controller computes endpoints for the service at all.
    pub fn managed(&self) -> bool {
        self.selector.is_some() && !self.external_name
    }

    /// Whether the selector selects a pod with `labels` (no selector selects nothing).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        match &self.selector {
            Some(sel) => sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
            None => false,
        }
    }

    /// The work-queue key.
    pub fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPortView {
    pub name: String,
    pub port: i32,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// `status.podIPs` (or `status.podIP` alone when the list is empty).
    pub ips: Vec<String>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `lastTransitionTime` of the `Ready` condition: the trigger time of a pod change.
    pub ready_changed: Option<Timestamp>,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// Phase `Succeeded` or `Failed`.
    pub terminal: bool,
    pub hostname: String,
    pub subdomain: String,
    pub node_name: String,
    /// Ports of the app containers, then of restartable (sidecar) init containers.
    pub ports: Vec<ContainerPortView>,
    /// The `topology.kubernetes.io/zone` label of the pod's node, when known (filled in by the
    /// controller's cache, not from the pod).
    pub zone: Option<String>,
}

fn container_ports(containers: &[Container], out: &mut Vec<ContainerPortView>) {
    for c in containers {
        for p in c.ports.iter().flatten() {
            out.push(ContainerPortView {
                name: p.name.clone().unwrap_or_default(),
                port: p.container_port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            });
        }
    }
}

impl PodView {
    pub fn from_pod(pod: &Pod) -> PodView {
        let meta = &pod.metadata;
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let mut ips: Vec<String> = status
            .pod_ips
            .iter()
            .flatten()
            .map(|p| p.ip.clone())
            .filter(|ip| !ip.is_empty())
            .collect();
        if ips.is_empty() {
            ips.extend(status.pod_ip.clone().filter(|ip| !ip.is_empty()));
        }
        let ready_condition = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        let phase = status.phase.as_deref().unwrap_or_default();
        let mut ports = Vec::new();
        container_ports(&spec.containers, &mut ports);
        let sidecars: Vec<Container> = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"))
            .cloned()
            .collect();
        container_ports(&sidecars, &mut ports);
        PodView {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            ips,
            ready: ready_condition.is_some_and(|c| c.status == "True"),
            ready_changed: ready_condition
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0),
            terminating: meta.deletion_timestamp.is_some(),
            terminal: phase == "Succeeded" || phase == "Failed",
            hostname: spec.hostname.unwrap_or_default(),
            subdomain: spec.subdomain.unwrap_or_default(),
            node_name: spec.node_name.unwrap_or_default(),
            ports,
            zone: None,
        }
    }

    /// Upstream `ShouldPodBeInEndpoints`: not terminal, has an IP, and not terminating unless
    /// `include_terminating`.
    pub fn in_endpoints(&self, include_terminating: bool) -> bool {
        !self.terminal && !self.ips.is_empty() && (include_terminating || !self.terminating)
    }

    /// `targetRef` of an address or endpoint for this pod.
    pub fn target_ref(&self) -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: Some(self.uid.clone()),
            ..ObjectReference::default()
        }
    }

    /// `spec.nodeName` when set.
    pub fn node(&self) -> Option<String> {
        Some(self.node_name.clone()).filter(|n| !n.is_empty())
    }
}

/// Upstream `ShouldSetHostname`: the pod names a hostname and its subdomain is this service
/// (the headless identity of StatefulSet pods: `<hostname>.<service>.<ns>.svc`).
pub fn sets_hostname(pod: &PodView, svc: &ServiceView) -> bool {
    !pod.hostname.is_empty() && pod.subdomain == svc.name && pod.namespace == svc.namespace
}

/// Upstream `FindPort`: a numeric `targetPort` as is; a named one through the pod's container
/// ports of the same name and protocol. `None`: the pod does not serve this port.
pub fn find_port(pod: &PodView, port: &ServicePortView) -> Option<i32> {
    match &port.target {
        TargetPort::Number(n) => Some(*n),
        TargetPort::Name(name) => pod
            .ports
            .iter()
            .find(|p| &p.name == name && p.protocol == port.protocol)
            .map(|p| p.port),
    }
}

/// The family the Endpoints object of `svc` publishes for `pod` (upstream
/// `podToEndpointAddressForService`): the service's first family; without families, that of
/// its cluster IP, or of the pod's first IP for a headless service.
pub fn primary_family(svc: &ServiceView, pod: &PodView) -> Family {
    if let Some(f) = svc.ip_families.first() {
        return *f;
    }
    if svc.ip_set() {
        return Family::of(&svc.cluster_ip);
    }
    pod.ips.first().map_or(Family::IPv4, |ip| Family::of(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_view_reads_ips_readiness_and_named_ports() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "ns", "uid": "u0", "labels": {"app": "web"}},
            "spec": {"hostname": "web-0", "subdomain": "web", "nodeName": "n1",
                "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}],
                "initContainers": [
                    {"name": "side", "restartPolicy": "Always",
                     "ports": [{"name": "metrics", "containerPort": 9090}]},
                    {"name": "init", "ports": [{"name": "ignored", "containerPort": 1}]}]},
            "status": {"phase": "Running", "podIP": "10.42.0.5",
                "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let v = PodView::from_pod(&pod);
        assert_eq!(v.ips, ["10.42.0.5"]);
        assert!(v.ready && !v.terminating && !v.terminal);
        let names: Vec<&str> = v.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["http", "metrics"]);
        let port = |target| ServicePortView {
            name: String::new(),
            port: 80,
            protocol: "TCP".into(),
            target,
            app_protocol: None,
        };
        assert_eq!(
            find_port(&v, &port(TargetPort::Name("http".into()))),
            Some(8080)
        );
        assert_eq!(
            find_port(&v, &port(TargetPort::Name("metrics".into()))),
            Some(9090)
        );
        assert_eq!(
            find_port(&v, &port(TargetPort::Name("ignored".into()))),
            None
        );
        assert_eq!(find_port(&v, &port(TargetPort::Number(81))), Some(81));
    }

    #[test]
    fn an_empty_selector_counts_as_none_and_a_missing_target_port_is_the_port() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "s", "namespace": "ns"},
            "spec": {"selector": {}, "ports": [{"port": 80}, {"port": 81, "targetPort": "http"},
                                              {"port": 82, "targetPort": "8082"}]}
        }))
        .unwrap();
        let v = ServiceView::from_service(&svc);
        assert_eq!(v.selector, None);
        assert!(!v.managed());
        let targets: Vec<TargetPort> = v.ports.iter().map(|p| p.target.clone()).collect();
        assert_eq!(
            targets,
            [
                TargetPort::Number(80),
                TargetPort::Name("http".into()),
                TargetPort::Number(8082)
            ]
        );
    }
}
