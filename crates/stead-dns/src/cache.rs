//! The watch cache: kube-rs reflectors over Services and EndpointSlices (all namespaces) and the
//! loop that rebuilds the [`Snapshot`] after every change and swaps it in atomically.
//!
//! Changes are coalesced: each watch event wakes the rebuild loop through one [`Notify`] permit,
//! so a burst of events costs one rebuild, and a single event costs one rebuild right away (no
//! timer). Until both reflectors have listed once the published snapshot stays the unsynced one,
//! which answers SERVFAIL inside the cluster domain instead of a cacheable NXDOMAIN.

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

use crate::snapshot::Snapshot;

/// The shared, atomically swapped current snapshot. Readers `load()` it per query.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// Keeps `target` equal to the records of the cluster behind `client` until `shutdown`
/// completes. Watch errors are logged and retried with kube-rs' default backoff; the last good
/// snapshot keeps being served meanwhile.
pub async fn run(
    client: Client,
    domain: String,
    target: SharedSnapshot,
    shutdown: impl Future<Output = ()> + Send,
) {
    let changed = Arc::new(Notify::new());
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let service_events = watch(
        Api::<Service>::all(client.clone()),
        services_writer,
        changed.clone(),
    );
    let slice_events = watch(
        Api::<EndpointSlice>::all(client),
        slices_writer,
        changed.clone(),
    );
    let rebuild = rebuild_loop(&domain, &services, &slices, &changed, &target);
    tokio::select! {
        () = shutdown => {}
        () = service_events => {}
        () = slice_events => {}
        () = rebuild => {}
    }
}

/// Feeds one reflector and rings `changed` after every event that reached its store.
async fn watch<K>(api: Api<K>, writer: reflector::store::Writer<K>, changed: Arc<Notify>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(_) => changed.notify_one(),
            Err(e) => tracing::warn!(error = %e, "cluster dns watch failed; retrying"),
        }
    }
}

async fn rebuild_loop(
    domain: &str,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    changed: &Notify,
    target: &ArcSwap<Snapshot>,
) {
    if services.wait_until_ready().await.is_err() || slices.wait_until_ready().await.is_err() {
        return;
    }
    let mut serial: u32 = 1;
    loop {
        match Snapshot::build(domain, serial, &services.state(), &slices.state()) {
            Ok(snapshot) => {
                if serial == 1 {
                    tracing::info!(names = snapshot.len(), "cluster dns synced");
                }
                tracing::debug!(serial, names = snapshot.len(), "cluster dns snapshot");
                target.store(Arc::new(snapshot));
            }
            Err(e) => {
                tracing::error!(error = %e, "cluster dns cannot build records");
                return;
            }
        }
        serial = serial.wrapping_add(1);
        changed.notified().await;
    }
}
