//! [`NodeConfig`]: what a kubelet is told at start, and where it keeps pod files under its data
//! dir (`<data_dir>/pods/<uid>/{volumes,logs,etc-hosts}`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default cluster domain (`--cluster-domain`).
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The default cluster DNS address (k3s' `10.43.0.10`).
pub const DEFAULT_CLUSTER_DNS: &str = "10.43.0.10";
/// The annotation naming the directory under which the local-path provisioner puts PVs.
pub const VOLUMES_DIR_ANNOTATION: &str = "stead.io/volumes-dir";

/// How a node agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub node_name: String,
    /// Pod volumes, logs and hosts files live under `<data_dir>/pods/<uid>/`; PVs of the
    /// local-path provisioner under `<data_dir>/volumes`.
    pub data_dir: PathBuf,
    pub cluster_domain: String,
    pub cluster_dns: String,
    /// The node's pod range (`spec.podCIDR`), as the control plane assigned it
    /// ([`super::wait_for_pod_cidr`]); empty until then. Never written to the Node by the
    /// kubelet: the node IPAM owns `spec.podCIDR`.
    pub pod_cidr: String,
    /// The node's `InternalIP` (and pods' `hostIP`): where the API server reaches the node API.
    pub node_ip: String,
    /// Annotations the Node carries besides the kubelet's (e.g. `stead.io/node-netns` for
    /// [`crate::peering`]), re-asserted on every registration.
    pub annotations: BTreeMap<String, String>,
    /// The port the node API ([`crate::nodeapi`]) listens on, advertised in the Node's
    /// `status.daemonEndpoints`; 0 when there is none.
    pub api_port: u16,
}

impl NodeConfig {
    /// A config with the defaults: domain `cluster.local`, DNS `10.43.0.10`, no pod range yet,
    /// node address `127.0.0.1`.
    pub fn new(node_name: impl Into<String>, data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            node_name: node_name.into(),
            data_dir: data_dir.into(),
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_string(),
            cluster_dns: DEFAULT_CLUSTER_DNS.to_string(),
            pod_cidr: String::new(),
            node_ip: crate::node::object::HOST_IP.to_string(),
            annotations: BTreeMap::new(),
            api_port: 0,
        }
    }

    /// `<data_dir>/volumes`: announced on the Node for the local-path provisioner.
    pub fn volumes_dir(&self) -> PathBuf {
        self.data_dir.join("volumes")
    }
}

/// `<data_dir>/pods/<uid>`: everything the kubelet keeps for one pod.
pub fn pod_dir(data_dir: &Path, uid: &str) -> PathBuf {
    data_dir.join("pods").join(uid)
}

/// Where the log of one container attempt goes: `<data_dir>/pods/<uid>/logs/<container>/<attempt>.log`
/// (upstream's layout, namespace and pod name are kept for callers that know only those).
pub fn log_path(
    data_dir: &Path,
    _namespace: &str,
    _pod: &str,
    uid: &str,
    container: &str,
    attempt: u32,
) -> PathBuf {
    pod_dir(data_dir, uid)
        .join("logs")
        .join(container)
        .join(format!("{attempt}.log"))
}
