//! The garbage collector's run loop: one `kube::runtime::watcher` per served resource type feeds
//! the [`Collector`]; once every watch has listed, queued uids are processed one at a time.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::Client;
use kube::api::DynamicObject;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use stead_api::ResourceType;
use tokio::time::Instant;

use super::collector::{Collector, GraphEvent};
use super::effects::{GcEffects, KubeGc, api_resource};
use super::graph::Node;

/// Resource types the collector does not watch (upstream's default ignored resources): events
/// are numerous and never own anything.
fn watched(rt: &ResourceType) -> bool {
    rt.plural != "events" && rt.verbs.contains(&"watch") && rt.verbs.contains(&"delete")
}

type Item = (
    &'static ResourceType,
    Result<Event<DynamicObject>, watcher::Error>,
);

fn watches(client: &Client) -> BoxStream<'static, Item> {
    let streams = stead_api::resource::RESOURCES
        .iter()
        .filter(|rt| watched(rt))
        .map(|rt| {
            // Cluster-wide for namespaced types too.
            let api = kube::Api::<DynamicObject>::all_with(client.clone(), &api_resource(rt));
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map(move |e| (rt, e))
                .boxed()
        });
    futures::stream::select_all(streams).boxed()
}

/// Turns watch events into graph events, tracking relists: objects a relist no longer shows are
/// gone.
#[derive(Default)]
struct Feed {
    relisting: HashMap<String, HashSet<String>>,
    synced: HashSet<String>,
}

impl Feed {
    fn resource_id(rt: &ResourceType) -> String {
        format!("{}/{}", rt.api_version(), rt.plural)
    }

    fn apply(
        &mut self,
        collector: &mut Collector,
        rt: &'static ResourceType,
        event: Event<DynamicObject>,
    ) {
        match event {
            Event::Apply(obj) => {
                if let Some(node) = Node::from_meta(rt, &obj.metadata) {
                    collector.observe(GraphEvent::Upsert(node));
                }
            }
            Event::Delete(obj) => {
                if let Some(uid) = obj.metadata.uid {
                    collector.observe(GraphEvent::Remove(uid));
                }
            }
            Event::Init => {
                self.relisting.insert(Self::resource_id(rt), HashSet::new());
            }
            Event::InitApply(obj) => {
                if let Some(node) = Node::from_meta(rt, &obj.metadata) {
                    if let Some(seen) = self.relisting.get_mut(&Self::resource_id(rt)) {
                        seen.insert(node.uid.clone());
                    }
                    collector.observe(GraphEvent::Upsert(node));
                }
            }
            Event::InitDone => {
                let seen = self
                    .relisting
                    .remove(&Self::resource_id(rt))
                    .unwrap_or_default();
                for uid in collector.graph.uids_of(rt) {
                    if !seen.contains(&uid) {
                        collector.observe(GraphEvent::Remove(uid));
                    }
                }
                self.synced.insert(Self::resource_id(rt));
            }
        }
    }

    fn all_synced(&self, total: usize) -> bool {
        self.synced.len() >= total
    }
}

/// Runs the garbage collector against the API server behind `client` until `shutdown` completes.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send) {
    run_with(client.clone(), KubeGc::new(client), shutdown).await
}

/// [`run`] with any effects (the watches still come from `client`).
pub async fn run_with<E: GcEffects>(
    client: Client,
    effects: E,
    shutdown: impl Future<Output = ()> + Send,
) {
    let total = stead_api::resource::RESOURCES
        .iter()
        .filter(|rt| watched(rt))
        .count();
    let mut events = watches(&client);
    let mut collector = Collector::default();
    let mut feed = Feed::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let wake = collector.queue.wake(feed.all_synced(total));
        tokio::select! {
            () = &mut shutdown => return,
            item = events.next() => match item {
                Some((rt, Ok(event))) => feed.apply(&mut collector, rt, event),
                Some((rt, Err(e))) => {
                    tracing::warn!(resource = %rt.qualified_plural(), error = %e, "garbage collector: watch failed");
                }
                None => return,
            },
            () = wake => {
                let now = Instant::now();
                if let Some(uid) = collector.next(now) {
                    collector.process(&uid, &effects, now).await;
                }
            }
        }
    }
}
