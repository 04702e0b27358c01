//! The namespace controller's run loop: a watch on namespaces feeds the [`NamespaceController`];
//! terminating namespaces are processed one at a time and requeued while content remains.

use std::future::Future;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::time::Instant;

use super::controller::NamespaceController;
use super::effects::{KubeNamespaces, NamespaceEffects};
use super::plan::NamespaceView;

/// Runs the namespace controller against the API server behind `client` until `shutdown`
/// completes.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send) {
    run_with(client.clone(), KubeNamespaces::new(client), shutdown).await
}

/// [`run`] with any effects (the namespace watch still comes from `client`).
pub async fn run_with<E: NamespaceEffects>(
    client: Client,
    effects: E,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut events = watcher::watcher(Api::<Namespace>::all(client), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut controller = NamespaceController::default();
    let mut listed: Option<Vec<String>> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let wake = controller.queue.wake(true);
        tokio::select! {
            () = &mut shutdown => return,
            item = events.next() => match item {
                Some(Ok(Event::Apply(ns) | Event::InitApply(ns))) => {
                    let view = NamespaceView::from_namespace(&ns);
                    if let Some(seen) = listed.as_mut() {
                        seen.push(view.name.clone());
                    }
                    controller.observe(view);
                }
                Some(Ok(Event::Delete(ns))) => {
                    controller.remove(ns.metadata.name.as_deref().unwrap_or_default());
                }
                Some(Ok(Event::Init)) => listed = Some(Vec::new()),
                Some(Ok(Event::InitDone)) => {
                    let seen = listed.take().unwrap_or_default();
                    let gone: Vec<String> = controller
                        .namespaces
                        .keys()
                        .filter(|n| !seen.contains(n))
                        .cloned()
                        .collect();
                    for name in gone {
                        controller.remove(&name);
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "namespace controller: watch failed");
                }
                None => return,
            },
            () = wake => {
                let now = Instant::now();
                if let Some(name) = controller.queue.pop(now) {
                    controller.process(&name, &effects, now).await;
                }
            }
        }
    }
}
