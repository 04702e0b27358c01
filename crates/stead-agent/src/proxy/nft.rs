//! A [`ProxyPlan`] → one `nft -f` script (pure) that turns the `ip stead` table of the node
//! network namespace into exactly that plan, in one kernel transaction.
//!
//! # The table
//!
//! ```text
//! nat_prerouting / nat_output   ip daddr . l4proto . dport vmap @services
//!   services map                10.43.0.5 . tcp . 80 : goto svc_<ns>_<name>_tcp_80
//!   svc_… chain                 ip saddr @aff_… goto ep_…            (sessionAffinity ClientIP)
//!                               numgen random mod N vmap { 0 : goto ep_…, … }
//!   ep_… chain                  update @aff_… { ip saddr timeout Ts }  (affinity only)
//!                               dnat to 10.42.0.7:8080
//! nat_postrouting               ct status dnat oifname <bridge> masquerade
//! filter_forward / filter_output
//!                               (output: local addresses accepted first)
//!                               ip daddr . l4proto . dport @no_endpoints → reject
//!                               ip daddr @cluster_ips → reject   (a port the Service lacks)
//! ```
//!
//! Every forwarded connection is masqueraded to the bridge address: without `br_netfilter`
//! (a host-wide switch we do not touch) a backend on the same bridge would answer the client
//! directly and the client would drop the reply, so the backend sees the node as the client.
//! Session affinity is decided in prerouting on the real client address, before that.
//!
//! # Updates
//!
//! The first script of a process deletes and recreates the table. Later ones flush every chain
//! and the three lookup sets, refill them and delete what the previous plan had and this one
//! lacks; the per-endpoint affinity sets of surviving endpoints are never flushed, so a rule
//! update keeps clients pinned.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::plan::{ProxyPlan, ServicePort};

/// The table's name (family `ip`).
pub const TABLE: &str = "stead";

/// The chains and sets a script left in the table: what the next script must clean up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
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
    let mut applied = Applied::default();
    let mut decl = String::new(); // declarations inside `table ip stead { … }`
    let mut body = String::new(); // rules and elements after the flushes
    let t = format!("ip {TABLE}");

    for (name, hook) in BASE_CHAINS {
        let _ = writeln!(decl, "  chain {name} {{ {hook} }}");
        applied.chains.insert((*name).to_string());
    }
    decl.push_str(
        "  map services { type ipv4_addr . inet_proto . inet_service : verdict; }\n  \
         set no_endpoints { type ipv4_addr . inet_proto . inet_service; }\n  \
         set cluster_ips { type ipv4_addr; }\n",
    );

    let lookup = "ip daddr . meta l4proto . th dport";
    for chain in ["nat_prerouting", "nat_output"] {
        let _ = writeln!(body, "add rule {t} {chain} {lookup} vmap @services");
    }
    let _ = writeln!(
        body,
        "add rule {t} nat_postrouting ct status dnat oifname \"{bridge}\" masquerade"
    );
    // Addresses of the node namespace itself (the cluster DNS, the `kubernetes` Service's
    // relay) answer for themselves.
    let _ = writeln!(
        body,
        "add rule {t} filter_output fib daddr type local accept"
    );
    for chain in ["filter_forward", "filter_output"] {
        let _ = writeln!(
            body,
            "add rule {t} {chain} ct state new {lookup} @no_endpoints goto reject_chain"
        );
        let _ = writeln!(
            body,
            "add rule {t} {chain} ct state new ip daddr @cluster_ips goto reject_chain"
        );
    }
    let _ = writeln!(body, "add rule {t} reject_chain reject");

    let mut cluster_ips = BTreeSet::new();
    for port in &plan.ports {
        cluster_ips.insert(port.cluster_ip);
        let key = format!(
            "{} . {} . {}",
            port.cluster_ip,
            port.protocol.nft(),
            port.port
        );
        if port.endpoints.is_empty() {
            let _ = writeln!(body, "add element {t} no_endpoints {{ {key} }}");
            continue;
        }
        let svc = service_chain(port);
        let _ = writeln!(body, "add element {t} services {{ {key} : goto {svc} }}");
        if !applied.chains.insert(svc.clone()) {
            continue; // a second cluster IP of the same Service port: chains exist already
        }
        let _ = writeln!(decl, "  chain {svc} {{ }}");
        let mut arms = Vec::new();
        for (i, ep) in port.endpoints.iter().enumerate() {
            let suffix = format!("{}_{}", ep.ip().to_string().replace('.', "-"), ep.port());
            let ep_chain = format!("ep_{}__{suffix}", chain_stem(port));
            let _ = writeln!(decl, "  chain {ep_chain} {{ }}");
            applied.chains.insert(ep_chain.clone());
            if let Some(timeout) = port.affinity_timeout {
                let set = format!("aff_{}__{suffix}", chain_stem(port));
                let _ = writeln!(
                    decl,
                    "  set {set} {{ type ipv4_addr; flags dynamic, timeout; }}"
                );
                applied.sets.insert(set.clone());
                let _ = writeln!(body, "add rule {t} {svc} ip saddr @{set} goto {ep_chain}");
                let _ = writeln!(
                    body,
                    "add rule {t} {ep_chain} update @{set} {{ ip saddr timeout {timeout}s }}"
                );
            }
            let _ = writeln!(
                body,
                "add rule {t} {ep_chain} meta l4proto {} dnat to {ep}",
                port.protocol.nft()
            );
            arms.push(format!("{i} : goto {ep_chain}"));
        }
        let _ = writeln!(
            body,
            "add rule {t} {svc} numgen random mod {} vmap {{ {} }}",
            arms.len(),
            arms.join(", ")
        );
    }
    if !cluster_ips.is_empty() {
        let ips: Vec<String> = cluster_ips.iter().map(|ip| ip.to_string()).collect();
        let _ = writeln!(body, "add element {t} cluster_ips {{ {} }}", ips.join(", "));
    }

    let mut out = String::new();
    let _ = writeln!(out, "add table {t}");
    match previous {
        None => {
            let _ = writeln!(out, "delete table {t}");
            let _ = writeln!(out, "table {t} {{\n{decl}}}");
        }
        Some(prev) => {
            // Declaring an existing chain or set is a no-op; then empty everything we refill.
            let _ = writeln!(out, "table {t} {{\n{decl}}}");
            for chain in applied.chains.union(&prev.chains) {
                let _ = writeln!(out, "flush chain {t} {chain}");
            }
            let _ = writeln!(out, "flush map {t} services");
            let _ = writeln!(out, "flush set {t} no_endpoints");
            let _ = writeln!(out, "flush set {t} cluster_ips");
            for chain in prev.chains.difference(&applied.chains) {
                let _ = writeln!(out, "delete chain {t} {chain}");
            }
            for set in prev.sets.difference(&applied.sets) {
                let _ = writeln!(out, "delete set {t} {set}");
            }
        }
    }
    out.push_str(&body);
    (out, applied)
}

/// The script that removes the table (nothing else of the namespace's ruleset).
pub fn delete_script() -> String {
    format!("add table ip {TABLE}\ndelete table ip {TABLE}\n")
}

/// `svc_<ns>_<name>_<proto>_<port>`: unique per Service port (`_` never occurs in namespace
/// or Service names, so it separates unambiguously).
fn service_chain(port: &ServicePort) -> String {
    format!("svc_{}", chain_stem(port))
}

fn chain_stem(port: &ServicePort) -> String {
    format!(
        "{}_{}_{}",
        port.service.replace('/', "_"),
        port.protocol.nft(),
        port.port
    )
}
