//! The record table: every name the cluster DNS owns, built purely from Services and
//! EndpointSlices.
//!
//! A [`Snapshot`] is immutable. The watch cache builds a new one after every change and swaps it
//! in whole, so a query always sees one consistent view. Names are stored lowercase; hickory's
//! [`Name`] compares and hashes case-insensitively, so lookups need no normalisation.
//!
//! Records per the Kubernetes DNS specification (schema 1.1.0), for zone `<domain>`:
//! - ClusterIP service: `<svc>.<ns>.svc` A/AAAA the cluster IPs; `_<port>._<proto>.<svc>...` SRV
//!   to the service name for each named port; PTR from each cluster IP. Like CoreDNS (beyond the
//!   specification), also `<host>.<svc>.<ns>.svc` A/AAAA per published endpoint, named as for a
//!   headless service: `ping redis-sts-0.redis-svc` works for a StatefulSet whose `serviceName`
//!   is a ClusterIP service.
//! - Headless service: `<svc>.<ns>.svc` A/AAAA every published endpoint address;
//!   `<host>.<svc>.<ns>.svc` A/AAAA per endpoint, where `<host>` is the endpoint's `hostname` or
//!   else its address with dashes (`10-42-0-5`); SRV per named port and endpoint to that name;
//!   PTR from each endpoint address to that name.
//! - ExternalName service: `<svc>.<ns>.svc` CNAME to the external name.
//! - `dns-version.<domain>` TXT.
//!
//! Pod names (`<a-b-c-d>.<ns>.pod`) are not stored: they are computed from the query name.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// TTL of every positive answer, and the negative TTL (SOA minimum).
pub const TTL: u32 = 5;

/// The schema version served at `dns-version.<domain>` TXT.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The label EndpointSlices carry naming their Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One consistent view of every record the cluster DNS serves.
#[derive(Debug, Clone)]
pub struct Snapshot {
    zone: Name,
    soa: Record,
    synced: bool,
    records: HashMap<Name, Vec<Record>>,
    /// Names that own no record but have descendants that do (empty non-terminals such as
    /// `svc.<domain>` or `<ns>.svc.<domain>`): they answer NODATA, not NXDOMAIN.
    interior: HashSet<Name>,
}

impl Snapshot {
    /// A snapshot holding only the zone's own records, marked not synced: names inside the zone
    /// answer SERVFAIL until the first real snapshot replaces it.
    pub fn unsynced(domain: &str) -> Result<Self, InvalidDomain> {
        let mut s = Self::empty(domain, 0)?;
        s.synced = false;
        Ok(s)
    }

    fn empty(domain: &str, serial: u32) -> Result<Self, InvalidDomain> {
        let zone = zone_name(domain)?;
        let soa = Record::from_rdata(
            zone.clone(),
            TTL,
            RData::SOA(SOA::new(
                child(&zone, &["ns", "dns"]).unwrap_or_else(|| zone.clone()),
                child(&zone, &["hostmaster"]).unwrap_or_else(|| zone.clone()),
                serial,
                7200,
                1800,
                86400,
                TTL,
            )),
        );
        let mut s = Self {
            zone: zone.clone(),
            soa: soa.clone(),
            synced: true,
            records: HashMap::new(),
            interior: HashSet::new(),
        };
        s.insert(soa);
        if let Some(version) = child(&zone, &["dns-version"]) {
            s.insert(Record::from_rdata(
                version,
                TTL,
                RData::TXT(TXT::new(vec![SCHEMA_VERSION.to_string()])),
            ));
        }
        Ok(s)
    }

    /// Builds the records of `services` and their `slices` for the cluster `domain`. `serial`
    /// becomes the SOA serial (the watch cache counts rebuilds).
    pub fn build(
        domain: &str,
        serial: u32,
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
    ) -> Result<Self, InvalidDomain> {
        let mut s = Self::empty(domain, serial)?;
        let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for slice in slices {
            let ns = slice.metadata.namespace.as_deref().unwrap_or_default();
            let labels = slice.metadata.labels.as_ref();
            if let Some(svc) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) {
                by_service
                    .entry((ns, svc.as_str()))
                    .or_default()
                    .push(slice);
            }
        }
        for svc in services {
            let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
                continue;
            };
            let slices = by_service.remove(&(ns.as_str(), name.as_str()));
            s.add_service(svc, ns, name, slices.as_deref().unwrap_or_default());
        }
        s.fill_interior();
        Ok(s)
    }

    /// The zone apex, lowercase and fully qualified (`cluster.local.`).
    pub fn zone(&self) -> &Name {
        &self.zone
    }

    /// The zone's SOA record, for the authority section of negative answers.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// False until the watch cache has listed Services and EndpointSlices once.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Every record owned by `name` (any type), if it owns any.
    pub fn records(&self, name: &Name) -> Option<&[Record]> {
        self.records.get(name).map(Vec::as_slice)
    }

    /// Whether `name` exists only as the parent of other names.
    pub fn is_interior(&self, name: &Name) -> bool {
        self.interior.contains(name)
    }

    /// Number of owner names with records (for logs).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the snapshot holds nothing but the zone's own records.
    pub fn is_empty(&self) -> bool {
        self.records.len() <= 2
    }

    /// Adds `record`. Callers feed each record once (their sources are sets), which keeps a
    /// rebuild linear in the number of records.
    fn insert(&mut self, record: Record) {
        let name = record.name.clone();
        self.records.entry(name).or_default().push(record);
    }

    fn add_service(&mut self, svc: &Service, ns: &str, name: &str, slices: &[&EndpointSlice]) {
        let Some(spec) = &svc.spec else { return };
        let Some(svc_name) = child(&self.zone, &[name, ns, "svc"]) else {
            return;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            if let Some(target) = spec.external_name.as_deref().and_then(external_target) {
                self.insert(Record::from_rdata(
                    svc_name,
                    TTL,
                    RData::CNAME(CNAME(target)),
                ));
            }
            return;
        }
        let cluster_ips = cluster_ips(svc);
        if cluster_ips.first().is_some_and(|ip| ip == "None") {
            let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
            self.add_headless(&svc_name, slices, publish_not_ready);
            return;
        }
        let ips: BTreeSet<IpAddr> = cluster_ips
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        if ips.is_empty() {
            return; // not allocated yet
        }
        for ip in &ips {
            self.insert(address(svc_name.clone(), *ip));
            self.insert(Record::from_rdata(
                reverse_name(*ip),
                TTL,
                RData::PTR(PTR(svc_name.clone())),
            ));
        }
        let mut ports: BTreeSet<(&str, &str, u16)> = BTreeSet::new();
        for port in spec.ports.iter().flatten() {
            let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let proto = port.protocol.as_deref().unwrap_or("TCP");
            if let Ok(number) = u16::try_from(port.port) {
                ports.insert((port_name, proto, number));
            }
        }
        for (port_name, proto, number) in ports {
            if let Some(record) = srv(&svc_name, port_name, proto, number, 100, &svc_name) {
                self.insert(record);
            }
        }
        let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
        let (endpoints, _) = published_endpoints(&svc_name, slices, publish_not_ready);
        for (ip, ep_name) in endpoints {
            self.insert(address(ep_name, ip));
        }
    }

    fn add_headless(
        &mut self,
        svc_name: &Name,
        slices: &[&EndpointSlice],
        publish_not_ready: bool,
    ) {
        let (endpoints, ports) = published_endpoints(svc_name, slices, publish_not_ready);
        if endpoints.is_empty() {
            return; // no published endpoint: the service name does not exist (NXDOMAIN)
        }
        let targets: BTreeSet<&Name> = endpoints.iter().map(|(_, n)| n).collect();
        let weight = u16::try_from(100 / targets.len()).unwrap_or(1).max(1);
        let service_ips: BTreeSet<IpAddr> = endpoints.iter().map(|(ip, _)| *ip).collect();
        for ip in service_ips {
            self.insert(address(svc_name.clone(), ip));
        }
        for (ip, ep_name) in &endpoints {
            self.insert(address(ep_name.clone(), *ip));
            self.insert(Record::from_rdata(
                reverse_name(*ip),
                TTL,
                RData::PTR(PTR(ep_name.clone())),
            ));
        }
        for (port_name, proto, number) in &ports {
            for target in &targets {
                if let Some(record) = srv(svc_name, port_name, proto, *number, weight, target) {
                    self.insert(record);
                }
            }
        }
    }

    /// Marks every ancestor of a stored name inside the zone that owns no record itself.
    fn fill_interior(&mut self) {
        let mut interior = HashSet::new();
        for name in self.records.keys() {
            if !self.zone.zone_of(name) {
                continue; // reverse names: their parents belong to the upstream reverse zones
            }
            // Walk up until a name that owns records (its own key walks further) or one
            // already marked (its ancestors are done).
            let mut parent = name.base_name();
            while parent.num_labels() > self.zone.num_labels() {
                if self.records.contains_key(&parent) || !interior.insert(parent.clone()) {
                    break;
                }
                parent = parent.base_name();
            }
        }
        self.interior = interior;
    }
}

/// (name, protocol, number) of a service's named ports.
type NamedPorts = BTreeSet<(String, String, u16)>;

/// A service's published endpoints as (address, `<host>.<svc>` name) pairs, and its named ports
/// as (name, protocol, number), deduplicated across slices and kept in a stable order. Not-ready
/// endpoints count only when the service publishes them.
fn published_endpoints(
    svc_name: &Name,
    slices: &[&EndpointSlice],
    publish_not_ready: bool,
) -> (BTreeSet<(IpAddr, Name)>, NamedPorts) {
    let mut endpoints: BTreeSet<(IpAddr, Name)> = BTreeSet::new();
    let mut ports = NamedPorts::new();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready && !publish_not_ready {
                continue;
            }
            for addr in &ep.addresses {
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    continue;
                };
                let host = ep
                    .hostname
                    .as_deref()
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| dashed(ip));
                let Ok(label_name) = svc_name.prepend_label(host.to_ascii_lowercase()) else {
                    continue;
                };
                endpoints.insert((ip, label_name));
            }
        }
        for port in slice.ports.iter().flatten() {
            let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let proto = port.protocol.clone().unwrap_or_else(|| "TCP".into());
            ports.insert((name.to_string(), proto, number));
        }
    }
    (endpoints, ports)
}

/// The cluster domain is not a valid DNS name.
#[derive(Debug, thiserror::Error)]
#[error("invalid cluster domain {0:?}")]
pub struct InvalidDomain(pub String);

fn zone_name(domain: &str) -> Result<Name, InvalidDomain> {
    let trimmed = domain.trim_end_matches('.');
    let mut name = Name::from_ascii(trimmed)
        .map_err(|_| InvalidDomain(domain.to_string()))?
        .to_lowercase();
    if trimmed.is_empty() || name.is_root() {
        return Err(InvalidDomain(domain.to_string()));
    }
    name.set_fqdn(true);
    Ok(name)
}

/// `labels` (in reading order) prepended to `zone`, lowercase. `None` when a label is not a
/// valid DNS label (API validation keeps object names valid, so this only guards the table).
fn child(zone: &Name, labels: &[&str]) -> Option<Name> {
    let mut name = zone.clone();
    for label in labels.iter().rev() {
        name = name.prepend_label(label.to_ascii_lowercase()).ok()?;
    }
    Some(name)
}

fn cluster_ips(svc: &Service) -> Vec<String> {
    let Some(spec) = &svc.spec else { return vec![] };
    match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.clone(),
        (_, Some(ip)) if !ip.is_empty() => vec![ip.clone()],
        _ => vec![],
    }
}

fn external_target(external: &str) -> Option<Name> {
    let mut name = Name::from_ascii(external.trim_end_matches('.')).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// An A or AAAA record for `ip`.
pub(crate) fn address(name: Name, ip: IpAddr) -> Record {
    let rdata = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name, TTL, rdata)
}

fn srv(
    svc: &Name,
    port: &str,
    proto: &str,
    number: u16,
    weight: u16,
    target: &Name,
) -> Option<Record> {
    let owner = svc
        .prepend_label(format!("_{}", proto.to_ascii_lowercase()))
        .and_then(|n| n.prepend_label(format!("_{}", port.to_ascii_lowercase())))
        .ok()?;
    Some(Record::from_rdata(
        owner,
        TTL,
        RData::SRV(SRV::new(0, weight, number, target.clone())),
    ))
}

/// The endpoint label used when an endpoint has no hostname: the address with dashes
/// (`10-42-0-5`, or for IPv6 the full form with `:` replaced, as CoreDNS does).
pub fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => {
            let segments: Vec<String> = v6.segments().iter().map(|s| format!("{s:x}")).collect();
            segments.join("-")
        }
    }
}

/// The `in-addr.arpa.` / `ip6.arpa.` name of `ip`.
pub fn reverse_name(ip: IpAddr) -> Name {
    let text = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            s.push_str("ip6.arpa.");
            s
        }
    };
    Name::from_ascii(text).unwrap_or_else(|_| Name::root())
}

/// The record types a stored name can own, for the answerer's type filter.
pub(crate) fn owns_type(record: &Record, qtype: RecordType) -> bool {
    qtype == RecordType::ANY || record.record_type() == qtype
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::parse_dashed;

    #[test]
    fn dashed_addresses_round_trip() {
        for ip in ["10.42.0.5", "fd00::5", "2001:db8:0:1::a"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(parse_dashed(&dashed(ip)), Some(ip), "{}", dashed(ip));
        }
        assert_eq!(dashed("10.42.0.5".parse().unwrap()), "10-42-0-5");
        assert_eq!(parse_dashed("web-0"), None);
    }

    #[test]
    fn reverse_names_follow_in_addr_and_ip6_arpa() {
        assert_eq!(
            reverse_name("10.43.0.1".parse().unwrap()).to_ascii(),
            "1.0.43.10.in-addr.arpa."
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap()).to_ascii();
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa."), "{v6}");
    }

    #[test]
    fn invalid_cluster_domains_are_rejected() {
        assert!(Snapshot::unsynced("").is_err());
        assert!(Snapshot::unsynced(".").is_err());
        assert!(Snapshot::unsynced("bad..domain").is_err());
        let s = Snapshot::unsynced("Cluster.Local.").unwrap();
        assert_eq!(s.zone().to_ascii(), "cluster.local.");
    }
}
