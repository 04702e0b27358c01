//! Pod traffic between sandbox nodes on one machine: each pair of node network namespaces is
//! joined by a veth pair, and each node routes every peer's pod range (`spec.podCIDR`) to the
//! peer's bridge address over it (`ip route replace <range> via <peer gateway> dev <link>
//! onlink`; the peer answers ARP for its bridge address on its end of the pair). Each end
//! also carries its own node's bridge address as a `/32`, the source of its ARP requests.
//!
//! A node finds its peers through the API: every sandbox node announces its node network
//! namespace in the annotation [`NETNS_ANNOTATION`]; a peer whose namespace file is not on
//! this machine is not joined (nodes on other machines need a real network between them,
//! which stead does not set up). The node whose name sorts first creates the pair, moving
//! the other end into the peer's namespace; each node then brings up and routes only its own
//! end. Links to nodes that are gone are deleted. Nothing here leaves the node namespaces.
//!
//! [`plan`] is pure; [`run_peering`] watches Nodes and applies the plan every few seconds (the
//! peer's half appears when the peer's agent gets to it).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::sandbox::SandboxRuntime;

/// The Node annotation holding the node network namespace's path on its machine.
pub const NETNS_ANNOTATION: &str = "stead.io/node-netns";
/// The prefix of peer links (`sp` + 11 hex digits: at most 15 characters).
const LINK_PREFIX: &str = "sp";
/// How often the plan is applied even without Node changes.
const RESYNC: Duration = Duration::from_secs(2);

/// A node as peering sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    /// `spec.podCIDR`, e.g. `10.42.1.0/24`.
    pub pod_cidr: String,
    /// Its node network namespace file, when it is on this machine.
    pub netns: PathBuf,
}

impl Peer {
    /// From a Node with a pod range and the namespace annotation.
    pub fn from_node(node: &Node) -> Option<Peer> {
        Some(Peer {
            name: node.metadata.name.clone()?,
            pod_cidr: node
                .spec
                .as_ref()?
                .pod_cidr
                .clone()
                .filter(|c| !c.is_empty())?,
            netns: node
                .metadata
                .annotations
                .as_ref()?
                .get(NETNS_ANNOTATION)
                .map(PathBuf::from)?,
        })
    }
}

/// The link in a node's namespace that leads to the node named `peer`.
pub fn link_name(peer: &str) -> String {
    // FNV-1a, 64 bit.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in peer.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    format!("{LINK_PREFIX}{:011x}", hash & 0xfff_ffff_ffff)
}

/// The first host address of `cidr`: the peer bridge's address, the route's next hop.
fn gateway(cidr: &str) -> Option<Ipv4Addr> {
    let (net, _) = cidr.split_once('/')?;
    let net: Ipv4Addr = net.parse().ok()?;
    Some(Ipv4Addr::from(u32::from(net) + 1))
}

/// One step of peering, in this node's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the pair: `link` here, `peer_link` in the namespace at `peer_netns`.
    Create {
        link: String,
        peer_link: String,
        peer_netns: PathBuf,
    },
    /// Give `link` this node's bridge address (`local`, so ARP on it speaks from an address
    /// the peer does not hold itself: both namespaces have the cluster DNS address), bring it
    /// up and route `cidr` via `gateway` over it.
    Route {
        link: String,
        local: Ipv4Addr,
        cidr: String,
        gateway: Ipv4Addr,
    },
    /// Delete a link whose peer is gone (its other end goes with it).
    Delete { link: String },
}

/// What node `me` (its pod range `my_cidr`) does, given the other nodes (`peers`, only those
/// whose namespace exists on this machine), and the peer links its namespace has now
/// (`links`).
pub fn plan(me: &str, my_cidr: &str, peers: &[Peer], links: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut wanted = Vec::new();
    let Some(local) = gateway(my_cidr) else {
        return steps;
    };
    for p in peers.iter().filter(|p| p.name != me) {
        let Some(gw) = gateway(&p.pod_cidr) else {
            continue;
        };
        let link = link_name(&p.name);
        wanted.push(link.clone());
        if links.contains(&link) {
            steps.push(Step::Route {
                link,
                local,
                cidr: p.pod_cidr.clone(),
                gateway: gw,
            });
        } else if me < p.name.as_str() {
            steps.push(Step::Create {
                link: link.clone(),
                peer_link: link_name(me),
                peer_netns: p.netns.clone(),
            });
            steps.push(Step::Route {
                link,
                local,
                cidr: p.pod_cidr.clone(),
                gateway: gw,
            });
        }
        // Else the peer creates the pair; route once this end shows up.
    }
    for l in links {
        if !wanted.contains(l) {
            steps.push(Step::Delete { link: l.clone() });
        }
    }
    steps
}

/// The peer links in the node namespace now.
fn current_links(runtime: &SandboxRuntime) -> Vec<String> {
    let out = runtime
        .node_netns_command(&["ip", "-o", "link", "show"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .filter(|name| name.starts_with(LINK_PREFIX) && name.len() == 13)
        .collect()
}

fn run_ip(runtime: &SandboxRuntime, args: &[&str]) -> Result<(), String> {
    let mut argv = vec!["ip"];
    argv.extend_from_slice(args);
    let out = runtime
        .node_netns_command(&argv)
        .stdout(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn apply(runtime: &SandboxRuntime, step: &Step) -> Result<(), String> {
    match step {
        Step::Create {
            link,
            peer_link,
            peer_netns,
        } => run_ip(
            runtime,
            &[
                "link",
                "add",
                link,
                "type",
                "veth",
                "peer",
                "name",
                peer_link,
                "netns",
                &peer_netns.display().to_string(),
            ],
        ),
        Step::Route {
            link,
            local,
            cidr,
            gateway,
        } => {
            let local = format!("{local}/32");
            run_ip(runtime, &["addr", "replace", &local, "dev", link])?;
            run_ip(runtime, &["link", "set", link, "up"])?;
            run_ip(
                runtime,
                &[
                    "route",
                    "replace",
                    cidr,
                    "via",
                    &gateway.to_string(),
                    "dev",
                    link,
                    "onlink",
                ],
            )
        }
        Step::Delete { link } => run_ip(runtime, &["link", "del", link]),
    }
}

/// Keeps this node's namespace joined to every peer's on this machine until `shutdown`.
/// Failures are logged and retried at the next round.
pub async fn run_peering(
    client: Client,
    runtime: Arc<SandboxRuntime>,
    node_name: String,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut events = watcher::watcher(Api::<Node>::all(client), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut nodes: BTreeMap<String, Peer> = BTreeMap::new();
    let mut listing: Option<BTreeMap<String, Peer>> = None;
    let mut tick = tokio::time::interval(RESYNC);
    let mut had_peers = false;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {}
            event = events.next() => {
                match event {
                    Some(Ok(Event::Init)) => listing = Some(BTreeMap::new()),
                    Some(Ok(Event::InitApply(n))) => {
                        if let (Some(l), Some(p)) = (listing.as_mut(), Peer::from_node(&n)) {
                            l.insert(p.name.clone(), p);
                        }
                    }
                    Some(Ok(Event::InitDone)) => nodes = listing.take().unwrap_or_default(),
                    Some(Ok(Event::Apply(n))) => {
                        let name = n.metadata.name.clone().unwrap_or_default();
                        match Peer::from_node(&n) {
                            Some(p) => nodes.insert(name, p),
                            None => nodes.remove(&name),
                        };
                    }
                    Some(Ok(Event::Delete(n))) => {
                        nodes.remove(n.metadata.name.as_deref().unwrap_or_default());
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "peering: node watch failed"),
                    None => return,
                }
                continue;
            }
        }
        // A lone node has nothing to do (and no helper process to run every round) unless
        // peers it had left links behind.
        had_peers |= nodes.len() > 1;
        if !had_peers {
            continue;
        }
        // This node's own range, once the Node shows it with the annotation.
        let Some(my_cidr) = nodes.get(&node_name).map(|p| p.pod_cidr.clone()) else {
            continue;
        };
        let here: Vec<Peer> = nodes
            .values()
            .filter(|p| is_local_netns(&p.netns))
            .cloned()
            .collect();
        let rt = runtime.clone();
        let me = node_name.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for step in plan(&me, &my_cidr, &here, &current_links(&rt)) {
                if let Err(e) = apply(&rt, &step) {
                    tracing::warn!(node = %me, error = %e, "peering: step failed");
                }
            }
        })
        .await;
    }
}

/// Whether `path` is a network namespace file on this machine (an nsfs mount).
fn is_local_netns(path: &Path) -> bool {
    crate::sandbox::network::is_mount_point(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, cidr: &str) -> Peer {
        Peer {
            name: name.into(),
            pod_cidr: cidr.into(),
            netns: PathBuf::from(format!("/data/{name}/sandbox/netns/node")),
        }
    }

    #[test]
    fn link_names_fit_and_differ_per_peer() {
        let (a, b) = (link_name("node-a"), link_name("node-b"));
        assert_eq!(a.len(), 13);
        assert!(a.starts_with("sp"));
        assert_ne!(a, b);
    }

    #[test]
    fn the_node_that_sorts_first_creates_the_pair_and_both_route() {
        let peers = [peer("a", "10.42.0.0/24"), peer("b", "10.42.1.0/24")];
        assert_eq!(
            plan("a", "10.42.0.0/24", &peers, &[]),
            [
                Step::Create {
                    link: link_name("b"),
                    peer_link: link_name("a"),
                    peer_netns: "/data/b/sandbox/netns/node".into(),
                },
                Step::Route {
                    link: link_name("b"),
                    local: Ipv4Addr::new(10, 42, 0, 1),
                    cidr: "10.42.1.0/24".into(),
                    gateway: Ipv4Addr::new(10, 42, 1, 1),
                },
            ]
        );
        // b waits for a's pair, then routes a's range over its end.
        assert_eq!(plan("b", "10.42.1.0/24", &peers, &[]), []);
        assert_eq!(
            plan("b", "10.42.1.0/24", &peers, &[link_name("a")]),
            [Step::Route {
                link: link_name("a"),
                local: Ipv4Addr::new(10, 42, 1, 1),
                cidr: "10.42.0.0/24".into(),
                gateway: Ipv4Addr::new(10, 42, 0, 1),
            }]
        );
    }

    #[test]
    fn links_to_nodes_that_are_gone_are_deleted() {
        let peers = [peer("a", "10.42.0.0/24")];
        assert_eq!(
            plan("a", "10.42.0.0/24", &peers, &[link_name("b")]),
            [Step::Delete {
                link: link_name("b")
            }]
        );
    }
}
