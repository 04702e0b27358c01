//! Node IPAM's loop: a watch on Nodes keeps what the plan needs; after every change (and on a
//! retry timer after a failed write) the plan runs and its assignments are written.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use super::plan::{CLUSTER_CIDR, NODE_MASK, NodeView, RangeAllocator, plan};

/// Wait before planning again after a failed write.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The one write node IPAM makes.
pub trait NodeIpamEffects: Send + Sync {
    /// Sets `spec.podCIDR` and `spec.podCIDRs` of `node` to `cidr`. Not retried here: the
    /// loop plans again.
    fn set_pod_cidr(
        &self,
        node: &str,
        cidr: &str,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
}

/// [`NodeIpamEffects`] over the API server.
#[derive(Clone)]
pub struct KubeNodeIpam {
    nodes: Api<Node>,
}

impl KubeNodeIpam {
    pub fn new(client: Client) -> KubeNodeIpam {
        KubeNodeIpam {
            nodes: Api::all(client),
        }
    }
}

impl NodeIpamEffects for KubeNodeIpam {
    async fn set_pod_cidr(&self, node: &str, cidr: &str) -> Result<(), kube::Error> {
        let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        self.nodes
            .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
    }
}

fn view(node: &Node) -> NodeView {
    NodeView {
        name: node.metadata.name.clone().unwrap_or_default(),
        pod_cidr: node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.clone())
            .filter(|c| !c.is_empty()),
    }
}

/// Runs node IPAM over [`CLUSTER_CIDR`] in `/`[`NODE_MASK`] blocks until `shutdown`.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send) {
    run_with(client.clone(), KubeNodeIpam::new(client), shutdown).await
}

/// [`run`] with any effects (the Node watch still comes from `client`).
pub async fn run_with<E: NodeIpamEffects>(
    client: Client,
    effects: E,
    shutdown: impl Future<Output = ()> + Send,
) {
    let empty = RangeAllocator::new(CLUSTER_CIDR, NODE_MASK).expect("the cluster range is valid");
    let mut events = watcher::watcher(Api::<Node>::all(client), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut nodes: BTreeMap<String, NodeView> = BTreeMap::new();
    let mut listing: Option<BTreeMap<String, NodeView>> = None;
    // Written, not seen back yet: node → block.
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    let mut synced = false;
    let mut retry = false;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let timer = async {
            if retry {
                tokio::time::sleep(RETRY_AFTER).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = timer => retry = false,
            event = events.next() => match event {
                Some(Ok(Event::Init)) => listing = Some(BTreeMap::new()),
                Some(Ok(Event::InitApply(n))) => {
                    let v = view(&n);
                    if let Some(l) = listing.as_mut() {
                        l.insert(v.name.clone(), v);
                    }
                    continue;
                }
                Some(Ok(Event::InitDone)) => {
                    nodes = listing.take().unwrap_or_default();
                    synced = true;
                }
                Some(Ok(Event::Apply(n))) => {
                    let v = view(&n);
                    nodes.insert(v.name.clone(), v);
                }
                Some(Ok(Event::Delete(n))) => {
                    nodes.remove(n.metadata.name.as_deref().unwrap_or_default());
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "node ipam: watch failed");
                    continue;
                }
                None => return,
            },
        }
        if !synced {
            continue;
        }
        // A pending write is done once its node shows a range (or the node is gone).
        pending.retain(|n, _| nodes.get(n).is_some_and(|v| v.pod_cidr.is_none()));
        let views: Vec<NodeView> = nodes.values().cloned().collect();
        let p = plan(&empty, &views, &pending);
        for n in &p.blocked_on_full_range {
            tracing::warn!(node = %n, range = CLUSTER_CIDR, "node ipam: no free pod range for the node");
        }
        for (node, cidr) in p.assign {
            match effects.set_pod_cidr(&node, &cidr).await {
                Ok(()) => {
                    tracing::info!(node = %node, pod_cidr = %cidr, "node ipam: assigned the node's pod range");
                    pending.insert(node, cidr);
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "node ipam: writing the pod range failed");
                    retry = true;
                }
            }
        }
    }
}
