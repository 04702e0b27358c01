//! [`run_fake_node`]: registration first, then the heartbeats and the pod loop side by side.

use std::future::Future;
use std::time::Duration;

use kube::Client;

use super::heartbeat::{self, Registered};
use super::host::HostFacts;
use super::pods;

/// Runs a fake node named `node_name` against the API server behind `client` until `shutdown`
/// completes: registers the Node (retrying until the server takes it), keeps its Lease, binds
/// unscheduled pods to itself, marks its pods Running and Ready and confirms their deletion.
/// The Node stays registered after shutdown, as a stopped kubelet's does.
pub async fn run_fake_node(
    client: Client,
    node_name: String,
    shutdown: impl Future<Output = ()> + Send,
) {
    let host = HostFacts::read();
    let mut shutdown = std::pin::pin!(shutdown);
    let registered = tokio::select! {
        () = &mut shutdown => return,
        r = register(&client, &node_name, &host) => r,
    };
    tokio::select! {
        () = heartbeat::keep_alive(client.clone(), node_name.clone(), host, registered) => {}
        () = pods::run(client, node_name, shutdown) => {}
    }
}

/// Registers the node, retrying with a doubling delay (at most 5 s) until it succeeds.
async fn register(client: &Client, name: &str, host: &HostFacts) -> Registered {
    let mut delay = Duration::from_millis(100);
    loop {
        match heartbeat::register(client, name, host).await {
            Ok(r) => return r,
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "fake node: registration failed, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
