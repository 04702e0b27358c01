//! The Endpoints object of a Service, purely (upstream `pkg/controller/endpoint`
//! `syncService` + `pkg/api/v1/endpoints.RepackSubsets`): which addresses it lists, ready or
//! not, grouped into subsets of addresses that share one port set, in one canonical order so that
//! an unchanged world computes an identical object and no update is sent.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

use super::view::{PodView, ServiceView, find_port, primary_family, sets_hostname};

/// At most this many addresses in one Endpoints object; the rest is cut and the object says so
/// with [`OVER_CAPACITY`].
pub const MAX_ADDRESSES: usize = 1000;

/// Annotation set to `truncated` on an Endpoints object whose addresses were cut.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

/// One port of a subset, ordered by (name, port, protocol, appProtocol).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn from_port(p: &EndpointPort) -> PortKey {
        PortKey {
            name: p.name.clone().unwrap_or_default(),
            port: p.port,
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            app_protocol: p.app_protocol.clone(),
        }
    }

    fn to_port(&self) -> EndpointPort {
        EndpointPort {
            name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            port: self.port,
            protocol: Some(self.protocol.clone()),
            app_protocol: self.app_protocol.clone(),
        }
    }
}

/// An address's identity within an Endpoints object: its IP and the uid of its target.
type AddressKey = (String, String);

fn address_key(a: &EndpointAddress) -> AddressKey {
    let uid = a
        .target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_default();
    (a.ip.clone(), uid)
}

/// Builds repacked subsets from (address, ready, port) entries; `port: None` stands for a
/// port-less (headless) subset.
#[derive(Default)]
struct Packer {
    addresses: BTreeMap<AddressKey, EndpointAddress>,
    /// port → address → ready. Not ready wins over ready for the same address and port.
    by_port: BTreeMap<Option<PortKey>, BTreeMap<AddressKey, bool>>,
}

impl Packer {
    fn add(&mut self, address: &EndpointAddress, ready: bool, port: Option<PortKey>) {
        let key = address_key(address);
        self.addresses
            .entry(key.clone())
            .or_insert_with(|| address.clone());
        let ready_now = self
            .by_port
            .entry(port)
            .or_default()
            .entry(key)
            .or_insert(ready);
        *ready_now = *ready_now && ready;
    }

    /// Groups ports by the exact (address, ready) set they reach: one subset per group, addresses
    /// sorted by IP then uid, ports by [`PortKey`], subsets by their address sets.
    fn subsets(self) -> Vec<EndpointSubset> {
        let mut groups: BTreeMap<Vec<(AddressKey, bool)>, Vec<PortKey>> = BTreeMap::new();
        for (port, addresses) in self.by_port {
            let members: Vec<(AddressKey, bool)> = addresses.into_iter().collect();
            let ports = groups.entry(members).or_default();
            ports.extend(port);
        }
        groups
            .into_iter()
            .map(|(members, mut ports)| {
                ports.sort();
                let pick = |want: bool| -> Option<Vec<EndpointAddress>> {
                    let list: Vec<EndpointAddress> = members
                        .iter()
                        .filter(|(_, ready)| *ready == want)
                        .filter_map(|(k, _)| self.addresses.get(k).cloned())
                        .collect();
                    Some(list).filter(|l| !l.is_empty())
                };
                EndpointSubset {
                    addresses: pick(true),
                    not_ready_addresses: pick(false),
                    ports: Some(ports.iter().map(PortKey::to_port).collect())
                        .filter(|p: &Vec<EndpointPort>| !p.is_empty()),
                }
            })
            .collect()
    }
}

/// The address `pod` gets in the Endpoints of `svc`, or `None` when it has no IP of the
/// service's family.
fn address(svc: &ServiceView, pod: &PodView) -> Option<EndpointAddress> {
    let family = primary_family(svc, pod);
    let ip = pod
        .ips
        .iter()
        .find(|ip| super::view::Family::of(ip) == family)?;
    Some(EndpointAddress {
        ip: ip.clone(),
        hostname: sets_hostname(pod, svc).then(|| pod.hostname.clone()),
        node_name: pod.node(),
        target_ref: Some(pod.target_ref()),
    })
}

/// The subsets of the Endpoints of `svc` over the pods its selector matches (the caller
/// filters by selector and namespace). Pods that are terminal, without an IP, or terminating
/// (unless `publishNotReadyAddresses`) are left out; not-ready pods go to `notReadyAddresses`
/// unless `publishNotReadyAddresses`; a pod without a port a named `targetPort` names is left
/// out of that port only; a service without ports lists port-less addresses only when headless.
pub fn desired_subsets<'a>(
    svc: &ServiceView,
    pods: impl IntoIterator<Item = &'a PodView>,
) -> Vec<EndpointSubset> {
    let mut packer = Packer::default();
    for pod in pods {
        if !pod.in_endpoints(svc.publish_not_ready) {
            continue;
        }
        let Some(addr) = address(svc, pod) else {
            continue;
        };
        let ready = svc.publish_not_ready || pod.ready;
        if svc.ports.is_empty() {
            if svc.headless() {
                packer.add(&addr, ready, None);
            }
            continue;
        }
        for port in &svc.ports {
            let Some(number) = find_port(pod, port) else {
                continue;
            };
            let key = PortKey {
                name: port.name.clone(),
                port: number,
                protocol: port.protocol.clone(),
                app_protocol: port.app_protocol.clone(),
            };
            packer.add(&addr, ready, Some(key));
        }
    }
    packer.subsets()
}

/// `subsets` repacked into the canonical form [`desired_subsets`] produces, so that an object
/// written by anyone compares equal when it means the same (the `resourceVersion` of a target
/// is ignored).
pub fn canonical(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut packer = Packer::default();
    for s in subsets {
        let ports: Vec<Option<PortKey>> = match s.ports.as_deref() {
            Some(ports) if !ports.is_empty() => {
                ports.iter().map(|p| Some(PortKey::from_port(p))).collect()
            }
            _ => vec![None],
        };
        let lists = [(true, &s.addresses), (false, &s.not_ready_addresses)];
        for (ready, list) in lists {
            for a in list.iter().flatten() {
                let mut a = a.clone();
                if let Some(r) = a.target_ref.as_mut() {
                    r.resource_version = None;
                }
                for port in &ports {
                    packer.add(&a, ready, port.clone());
                }
            }
        }
    }
    packer.subsets()
}

/// Cuts `subsets` to [`MAX_ADDRESSES`] addresses (upstream `truncateEndpoints`): not-ready
/// addresses go first; each subset keeps a share proportional to its size. Returns whether
/// anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let count = |l: &Option<Vec<EndpointAddress>>| l.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if ready + not_ready <= MAX_ADDRESSES {
        return false;
    }
    let cut_ready = ready > MAX_ADDRESSES;
    let (budget, total) = if cut_ready {
        (MAX_ADDRESSES, ready)
    } else {
        (MAX_ADDRESSES - ready, not_ready)
    };
    let mut left = budget;
    for s in subsets.iter_mut() {
        let list = if cut_ready {
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let n = count(list);
        let share = (n * budget).div_ceil(total).min(left);
        if let Some(l) = list.as_mut() {
            l.truncate(share);
        }
        left -= count(list);
        if cut_ready {
            s.not_ready_addresses = None;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..EndpointAddress::default()
        }
    }

    #[test]
    fn truncation_keeps_every_ready_address_and_cuts_not_ready_ones() {
        let ready: Vec<EndpointAddress> = (0..900)
            .map(|i| addr(&format!("10.0.{}.{}", i / 250, i % 250)))
            .collect();
        let not_ready: Vec<EndpointAddress> = (0..300)
            .map(|i| addr(&format!("10.1.{}.{}", i / 250, i % 250)))
            .collect();
        let mut subsets = vec![EndpointSubset {
            addresses: Some(ready),
            not_ready_addresses: Some(not_ready),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(900));
        assert_eq!(
            subsets[0].not_ready_addresses.as_ref().map(Vec::len),
            Some(100)
        );
        assert!(!truncate(&mut subsets), "at capacity is not over it");
    }
}
