//! The run loop (upstream `endpoints_controller.go` and `endpointslice_controller.go` in one):
//! watches of Services, Pods, Endpoints, EndpointSlices and Nodes (for zones) feed the caches of a [`World`]; every
//! change queues the keys (`namespace/name` of a service) it can affect — a pod the services
//! whose selector matches its old or new labels, and only when a field that endpoints show
//! changed. Up to [`Config::workers`] keys sync at once (never one key twice), each as soon as it
//! is queued: no batching delay, so readiness reaches Endpoints and slices within one round trip.
//! Errors requeue with per-key backoff. What a sync writes goes into the caches at once (newer
//! resourceVersions win over late watch events), so the next sync does not act on a stale cache.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::watch::{Watched, watch_all};
use kube::Client;
use tokio::time::Instant;

use super::effects::{EndpointsEffects, KubeEndpoints};
use super::plan::plan;
use super::sync::{Executed, execute};
use super::world::{Key, World};
use crate::queue::{Backoff, WorkQueue};
use crate::workers::Workers;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Concurrent syncs (upstream `--concurrent-endpoint-syncs`, default 5).
    pub workers: usize,
    /// Per-key backoff after errors.
    pub backoff: Backoff,
    /// The address clients reach the API server on: when set, the controller maintains the
    /// Endpoints and EndpointSlice of `default/kubernetes` (upstream's API server does that
    /// itself) with this IP and port. It should be a concrete address pods can reach (not
    /// `0.0.0.0`; upstream validation also refuses loopback in Endpoints, stead's does not yet).
    /// `None` leaves them alone.
    pub apiserver: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 5,
            backoff: Backoff {
                base: Duration::from_millis(5),
                max: Duration::from_secs(10),
            },
            apiserver: None,
        }
    }
}

/// Runs the Endpoints and EndpointSlice controllers against the API server behind `client`
/// until `shutdown` completes.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send) {
    run_with(
        client.clone(),
        KubeEndpoints::new(client),
        Config::default(),
        shutdown,
    )
    .await
}

/// One watch event of any of the four types (boxed: the objects are large).
enum Change {
    Service(Watched<Service>),
    Pod(Watched<Pod>),
    Endpoints(Watched<Endpoints>),
    Slice(Watched<EndpointSlice>),
    Node(Watched<Node>),
}

/// [`run`] with any effects and configuration (the watches still come from `client`).
pub async fn run_with<E: EndpointsEffects>(
    client: Client,
    effects: E,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) {
    let effects = Arc::new(effects);
    let mut changes = futures::stream::select_all([
        watch_all::<Service>(&client).map(Change::Service).boxed(),
        watch_all::<Pod>(&client).map(Change::Pod).boxed(),
        watch_all::<Endpoints>(&client)
            .map(Change::Endpoints)
            .boxed(),
        watch_all::<EndpointSlice>(&client)
            .map(Change::Slice)
            .boxed(),
        watch_all::<Node>(&client).map(Change::Node).boxed(),
    ]);
    let mut world = World::new();
    let mut queue: WorkQueue<Key> = WorkQueue::new(config.backoff);
    let mut workers: Workers<Key, Executed> = Workers::new(config.workers);
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        if world.synced() {
            while let Some(key) = workers.next_key(&mut queue, Instant::now()) {
                let snapshot = world.snapshot(&key, config.apiserver);
                let plan = plan(&snapshot);
                if plan.is_empty() {
                    queue.forget(&key);
                    continue;
                }
                let effects = effects.clone();
                let (ns, name) = key.clone();
                workers.spawn(key, async move {
                    let done = execute(&*effects, &ns, &name, plan).await;
                    if let Some(e) = &done.error {
                        tracing::debug!(service = %format!("{ns}/{name}"), error = %e,
                            "endpoints sync failed");
                    }
                    done
                });
            }
        }
        let wake = queue.wake(world.synced() && workers.has_room());
        tokio::select! {
            () = &mut shutdown => break,
            change = changes.next() => {
                let keys = match change {
                    Some(Change::Service(e)) => world.event(*e),
                    Some(Change::Pod(e)) => world.event(*e),
                    Some(Change::Endpoints(e)) => world.event(*e),
                    Some(Change::Slice(e)) => world.event(*e),
                    Some(Change::Node(e)) => world.event(*e),
                    None => break,
                };
                for key in keys {
                    queue.add(key);
                }
            }
            (key, executed) = workers.join_next() => {
                // A panicked sync is retried like a failed one.
                let executed = executed.unwrap_or_else(|_| Executed {
                    written: Vec::new(),
                    error: Some(super::effects::EffectError::Other("sync panicked".into())),
                });
                let failed = executed.error.is_some();
                world.written(executed.written);
                if failed {
                    queue.add_rate_limited(key.clone(), Instant::now());
                } else {
                    queue.forget(&key);
                }
                workers.finish(key, &mut queue);
            }
            () = wake => {}
        }
    }
    workers.shutdown().await;
}
