//! A [`ProxyPlan`] → one `nft -f` script (pure) that turns the `ip stead` table of the node
//! network namespace into exactly that plan, in one kernel transaction.
//!
//! # The table
//!
//! ```text
//! nat_prerouting / nat_output   ip daddr . l4proto . dport vmap @services
//!                               fib daddr type local l4proto . dport vmap @node_ports
//!   services map                10.43.0.5 . tcp . 80 : goto svc_<ns>_<name>_tcp_80
//!   node_ports map              tcp . 30080 : goto svc_<ns>_<name>_tcp_80   (NodePort)
//!   svc_… chain                 ip saddr @aff_… goto ep_…            (sessionAffinity ClientIP)
//!                               numgen random mod N vmap { 0 : goto ep_…, … }
//!   ep_… chain                  update @aff_… { ip saddr timeout Ts }  (affinity only)
//!                               meta l4proto tcp dnat to 10.42.0.7:8080
//! nat_postrouting               ct status dnat oifname <bridge> masquerade
//! filter_forward / filter_output
//!                               (output: local addresses accepted first)
//!                               ip daddr . l4proto . dport @no_endpoints → reject
//!                               ip daddr @cluster_ips → reject   (a port the Service lacks)
//! ```
//!
//! Every forwarded connection is masqueraded to the bridge address: bridged frames skip the
//! IP hooks in the node namespace (see [`super::prepare_node`]), so a backend on the same
//! bridge would answer the client directly and the client would drop the reply; so the backend
//! sees the node as the client. Session affinity is decided in prerouting on the real client
//! address, before that.
//!
//! # Updates
//!
//! The first script of a process deletes and recreates the table. Later ones are partial, like
//! kube-proxy's: only the service ports that changed since the last applied plan are touched
//! (their map/set elements replaced, their chains flushed and refilled), what went away is
//! deleted, and the fixed chains stay as they are. The per-endpoint affinity sets of surviving
//! endpoints are never flushed, so a rule update keeps clients pinned.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::plan::{ProxyPlan, ServicePort};

/// The table's name (family `ip`).
pub const TABLE: &str = "stead";

/// What a script left in the table: what the next script diffs against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The service ports by `ip . proto . port`.
    pub ports: BTreeMap<String, ServicePort>,
    pub chains: BTreeSet<String>,
    pub sets: BTreeSet<String>,
}

/// The fixed chains: (name, declaration).
const BASE_CHAINS: &[(&str, &str)] = &[
    (
        "nat_prerouting",
        "type nat hook prerouting priority dstnat; policy accept;",
    ),
    (
        "nat_output",
        "type nat hook output priority -100; policy accept;",
    ),
    (
        "nat_postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
    ),
    (
        "filter_forward",
        "type filter hook forward priority filter - 10; policy accept;",
    ),
    (
        "filter_output",
        "type filter hook output priority filter - 10; policy accept;",
    ),
    ("reject_chain", ""),
];

/// The script that makes the table equal to `plan`, and what it leaves behind. `previous` is
/// what the last successful script of this process left (`None`: unknown, start afresh).
/// `bridge` is the node bridge (the masquerade's way out).
pub fn script(plan: &ProxyPlan, previous: Option<&Applied>, bridge: &str) -> (String, Applied) {
    let t = format!("ip {TABLE}");
    let empty = Applied::default();
    let prev = previous.unwrap_or(&empty);
    let mut applied = Applied::default();
    for (name, _) in BASE_CHAINS {
        applied.chains.insert((*name).to_string());
    }
    for port in &plan.ports {
        let objects = PortObjects::of(port);
        applied.chains.extend(objects.chains());
        applied.sets.extend(objects.sets());
        applied.ports.insert(key(port), port.clone());
    }

    let mut out = String::new();
    let _ = writeln!(out, "add table {t}");
    if previous.is_none() {
        let _ = writeln!(out, "delete table {t}");
        let _ = writeln!(out, "table {t} {{");
        for (name, hook) in BASE_CHAINS {
            let _ = writeln!(out, "  chain {name} {{ {hook} }}");
        }
        out.push_str(
            "  map services { type ipv4_addr . inet_proto . inet_service : verdict; }\n  \
             map node_ports { type inet_proto . inet_service : verdict; }\n  \
             set no_endpoints { type ipv4_addr . inet_proto . inet_service; }\n  \
             set cluster_ips { type ipv4_addr; }\n}\n",
        );
        base_rules(&mut out, &t, bridge);
    }

    // New chains and sets.
    let new_chains: Vec<&String> = applied.chains.difference(&prev.chains).collect();
    let new_sets: Vec<&String> = applied.sets.difference(&prev.sets).collect();
    if !new_chains.is_empty() || !new_sets.is_empty() {
        let _ = writeln!(out, "table {t} {{");
        for chain in new_chains {
            let _ = writeln!(out, "  chain {chain} {{ }}");
        }
        for set in new_sets {
            let _ = writeln!(
                out,
                "  set {set} {{ type ipv4_addr; flags dynamic, timeout; }}"
            );
        }
        let _ = writeln!(out, "}}");
    }

    // Take out what changed or went away: elements, then chain contents.
    for (k, old) in &prev.ports {
        if applied.ports.get(k) == Some(old) {
            continue;
        }
        if old.endpoints.is_empty() {
            let _ = writeln!(out, "delete element {t} no_endpoints {{ {k} }}");
        } else {
            let _ = writeln!(out, "delete element {t} services {{ {k} }}");
            if let Some(node_port) = node_port_key(old) {
                let _ = writeln!(out, "delete element {t} node_ports {{ {node_port} }}");
            }
        }
        for chain in PortObjects::of(old).chains() {
            let _ = writeln!(out, "flush chain {t} {chain}");
        }
    }
    for chain in prev.chains.difference(&applied.chains) {
        let _ = writeln!(out, "delete chain {t} {chain}");
    }
    for set in prev.sets.difference(&applied.sets) {
        let _ = writeln!(out, "delete set {t} {set}");
    }
    let ips =
        |a: &Applied| -> BTreeSet<Ipv4Addr> { a.ports.values().map(|p| p.cluster_ip).collect() };
    let (old_ips, new_ips) = (ips(prev), ips(&applied));
    let gone: Vec<String> = old_ips
        .difference(&new_ips)
        .map(|ip| ip.to_string())
        .collect();
    if !gone.is_empty() {
        let _ = writeln!(
            out,
            "delete element {t} cluster_ips {{ {} }}",
            gone.join(", ")
        );
    }

    // Put in what is new or changed.
    let added: Vec<String> = new_ips
        .difference(&old_ips)
        .map(|ip| ip.to_string())
        .collect();
    if !added.is_empty() {
        let _ = writeln!(
            out,
            "add element {t} cluster_ips {{ {} }}",
            added.join(", ")
        );
    }
    for (k, port) in &applied.ports {
        if prev.ports.get(k) == Some(port) {
            continue;
        }
        port_rules(&mut out, &t, k, port);
    }
    (out, applied)
}

/// The fixed rules of the base chains.
fn base_rules(out: &mut String, t: &str, bridge: &str) {
    let lookup = "ip daddr . meta l4proto . th dport";
    for chain in ["nat_prerouting", "nat_output"] {
        let _ = writeln!(out, "add rule {t} {chain} {lookup} vmap @services");
        let _ = writeln!(
            out,
            "add rule {t} {chain} fib daddr type local meta l4proto . th dport vmap @node_ports"
        );
    }
    let _ = writeln!(
        out,
        "add rule {t} nat_postrouting ct status dnat oifname \"{bridge}\" masquerade"
    );
    // Addresses of the node namespace itself (the cluster DNS, the `kubernetes` Service's
    // relay) answer for themselves.
    let _ = writeln!(
        out,
        "add rule {t} filter_output fib daddr type local accept"
    );
    for chain in ["filter_forward", "filter_output"] {
        let _ = writeln!(
            out,
            "add rule {t} {chain} ct state new {lookup} @no_endpoints goto reject_chain"
        );
        let _ = writeln!(
            out,
            "add rule {t} {chain} ct state new ip daddr @cluster_ips goto reject_chain"
        );
    }
    let _ = writeln!(out, "add rule {t} reject_chain reject");
}

/// One service port's element and chain contents (its chains exist and are empty).
fn port_rules(out: &mut String, t: &str, key: &str, port: &ServicePort) {
    if port.endpoints.is_empty() {
        let _ = writeln!(out, "add element {t} no_endpoints {{ {key} }}");
        return;
    }
    let objects = PortObjects::of(port);
    let svc = &objects.service;
    let _ = writeln!(out, "add element {t} services {{ {key} : goto {svc} }}");
    if let Some(node_port) = node_port_key(port) {
        let _ = writeln!(
            out,
            "add element {t} node_ports {{ {node_port} : goto {svc} }}"
        );
    }
    let mut arms = Vec::new();
    for (i, ep) in objects.endpoints.iter().enumerate() {
        let chain = &ep.chain;
        if let (Some(set), Some(timeout)) = (&ep.affinity, port.affinity_timeout) {
            let _ = writeln!(out, "add rule {t} {svc} ip saddr @{set} goto {chain}");
            let _ = writeln!(
                out,
                "add rule {t} {chain} update @{set} {{ ip saddr timeout {timeout}s }}"
            );
        }
        let _ = writeln!(
            out,
            "add rule {t} {chain} meta l4proto {} dnat to {}",
            port.protocol.nft(),
            ep.addr
        );
        arms.push(format!("{i} : goto {chain}"));
    }
    let _ = writeln!(
        out,
        "add rule {t} {svc} numgen random mod {} vmap {{ {} }}",
        arms.len(),
        arms.join(", ")
    );
}

/// The script that removes the table (nothing else of the namespace's ruleset).
pub fn delete_script() -> String {
    format!("add table ip {TABLE}\ndelete table ip {TABLE}\n")
}

/// `ip . proto . port`, the key of the services map and the no_endpoints set.
fn key(port: &ServicePort) -> String {
    format!(
        "{} . {} . {}",
        port.cluster_ip,
        port.protocol.nft(),
        port.port
    )
}

/// `proto . node_port`, the key of the node_ports map, for a port that has a node port.
fn node_port_key(port: &ServicePort) -> Option<String> {
    port.node_port
        .map(|n| format!("{} . {n}", port.protocol.nft()))
}

/// The chains and sets of one service port. Names: `svc_<ns>_<name>_<proto>_<port>`, and per
/// endpoint `ep_…__<ip>_<port>` / `aff_…__<ip>_<port>` (`_` never occurs in namespace or
/// Service names, so it separates unambiguously).
struct PortObjects {
    service: String,
    endpoints: Vec<EndpointObjects>,
}

struct EndpointObjects {
    addr: SocketAddrV4,
    chain: String,
    affinity: Option<String>,
}

impl PortObjects {
    fn of(port: &ServicePort) -> PortObjects {
        let stem = format!(
            "{}_{}_{}",
            port.service.replace('/', "_"),
            port.protocol.nft(),
            port.port
        );
        let endpoints = port
            .endpoints
            .iter()
            .map(|ep| {
                let suffix = format!("{}_{}", ep.ip().to_string().replace('.', "-"), ep.port());
                EndpointObjects {
                    addr: *ep,
                    chain: format!("ep_{stem}__{suffix}"),
                    affinity: port
                        .affinity_timeout
                        .map(|_| format!("aff_{stem}__{suffix}")),
                }
            })
            .collect();
        PortObjects {
            service: format!("svc_{stem}"),
            endpoints,
        }
    }

    /// No chains for a port without endpoints: it is only an element of `no_endpoints`.
    fn chains(&self) -> Vec<String> {
        if self.endpoints.is_empty() {
            return Vec::new();
        }
        let mut out = vec![self.service.clone()];
        out.extend(self.endpoints.iter().map(|e| e.chain.clone()));
        out
    }

    fn sets(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .filter_map(|e| e.affinity.clone())
            .collect()
    }
}
