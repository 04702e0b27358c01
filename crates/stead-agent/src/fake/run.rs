//! [`run_fake_node`]: registration first, then the heartbeats and the pod loop side by side.

use std::future::Future;

use kube::Client;

use super::pods;
use crate::node::heartbeat;
use crate::node::{HostFacts, NodeProfile};

/// Runs a fake node named `node_name` against the API server behind `client` until `shutdown`
/// completes: registers the Node (retrying until the server takes it), keeps its Lease, binds
/// unscheduled pods to itself, marks its pods Running and Ready and confirms their deletion.
/// The Node stays registered after shutdown, as a stopped kubelet's does.
pub async fn run_fake_node(
    client: Client,
    node_name: String,
    shutdown: impl Future<Output = ()> + Send,
) {
    // It keeps nothing on disk: its ephemeral storage is reported as the root filesystem's.
    let host = HostFacts::read(std::path::Path::new("/"));
    let profile = NodeProfile::fake();
    let mut shutdown = std::pin::pin!(shutdown);
    let registered = tokio::select! {
        () = &mut shutdown => return,
        r = heartbeat::register_until_done(&client, &node_name, &host, &profile) => r,
    };
    tokio::select! {
        () = heartbeat::keep_alive(client.clone(), node_name.clone(), host, profile, registered) => {}
        () = pods::run(client, node_name, shutdown) => {}
    }
}
