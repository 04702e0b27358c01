//! [`run_node`]: registration, heartbeats and the pod dispatcher. The dispatcher watches the
//! pods bound to this node (`fieldSelector=spec.nodeName=<node>`) and hands each one to its
//! worker (one task per pod uid, `worker.rs`); a pod gone from the API tells its worker to tear
//! down. After every (re)list it removes sandboxes of pods that are no longer bound here: on a
//! restarted agent, sandboxes and containers of pods that still exist are found again by their
//! labels and adopted by their workers, never started twice.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::{NodeConfig, VOLUMES_DIR_ANNOTATION};
use super::events::Recorder;
use super::view::LABEL_POD_UID;
use super::worker::{self, Ctx};
use crate::node::heartbeat;
use crate::node::{HostFacts, NodeProfile};
use crate::runtime::{Images, Runtime};

/// `nodeInfo.containerRuntimeVersion` of a kubelet node.
pub const RUNTIME_VERSION: &str = "stead://0.1.0";

/// Runs the node `config.node_name` until `shutdown`: registers the Node (with the
/// `stead.io/volumes-dir` annotation), keeps its Lease, and runs the pods bound to it through
/// `runtime` and `images`. Pods keep running after shutdown (a restarted agent adopts them).
pub async fn run_node<R: Runtime, I: Images>(
    client: Client,
    config: NodeConfig,
    runtime: Arc<R>,
    images: Arc<I>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let host = HostFacts::read(&config.data_dir);
    let profile = node_profile(&config);
    let _ = std::fs::create_dir_all(config.volumes_dir());
    let _ = std::fs::create_dir_all(config.data_dir.join("pods"));
    let mut shutdown = std::pin::pin!(shutdown);
    let name = config.node_name.clone();
    let registered = tokio::select! {
        () = &mut shutdown => return,
        r = heartbeat::register_until_done(&client, &name, &host, &profile) => r,
    };
    let ctx = Arc::new(Ctx {
        events: Recorder::new(client.clone(), name.clone()),
        client: client.clone(),
        config,
        runtime,
        images,
        host_resolv: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    });
    tokio::select! {
        () = heartbeat::keep_alive(client, name, host, profile, registered) => {}
        () = dispatch(ctx, shutdown) => {}
    }
}

/// What the kubelet registers: no pod range (the control plane's node IPAM assigns it), its
/// address, runtime, volumes dir and node API port.
fn node_profile(config: &NodeConfig) -> NodeProfile {
    NodeProfile {
        pod_cidr: String::new(),
        node_ip: config.node_ip.clone(),
        runtime_version: RUNTIME_VERSION.to_string(),
        annotations: config
            .annotations
            .clone()
            .into_iter()
            .chain([(
                VOLUMES_DIR_ANNOTATION.to_string(),
                config.volumes_dir().display().to_string(),
            )])
            .collect(),
        api_port: config.api_port,
    }
}

/// Registers the node `config.node_name` (as [`run_node`] does, retrying until the API server
/// takes it) and waits until the control plane has written its `spec.podCIDR`, which it
/// returns: a runtime that hands out pod addresses needs its range before the first pod.
/// Waits for as long as it takes (a control plane without node IPAM never answers).
pub async fn wait_for_pod_cidr(
    client: &Client,
    config: &NodeConfig,
) -> Result<String, kube::runtime::wait::Error> {
    let host = HostFacts::read(&config.data_dir);
    heartbeat::register_until_done(client, &config.node_name, &host, &node_profile(config)).await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let cidr_of = |n: &k8s_openapi::api::core::v1::Node| {
        n.spec
            .as_ref()
            .and_then(|s| s.pod_cidr.clone())
            .filter(|c| !c.is_empty())
    };
    let node = kube::runtime::wait::await_condition(
        nodes,
        &config.node_name,
        move |n: Option<&k8s_openapi::api::core::v1::Node>| n.and_then(cidr_of).is_some(),
    )
    .await?;
    Ok(node.as_ref().and_then(cidr_of).unwrap_or_default())
}

struct Handle {
    pods: watch::Sender<Option<Arc<Pod>>>,
    task: JoinHandle<()>,
}

/// Feeds every pod bound here to its worker until `shutdown`; the workers stop with it.
async fn dispatch<R: Runtime, I: Images>(ctx: Arc<Ctx<R, I>>, shutdown: impl Future<Output = ()>) {
    let node = ctx.config.node_name.clone();
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut workers: HashMap<String, Handle> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut reap = tokio::time::interval(Duration::from_secs(5));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = reap.tick() => workers.retain(|_, w| !w.task.is_finished()),
            event = events.next() => match event {
                Some(Ok(Event::Init)) => listed.clear(),
                Some(Ok(Event::InitApply(pod))) => {
                    listed.insert(pod.metadata.uid.clone().unwrap_or_default());
                    hand_over(&ctx, &mut workers, pod);
                }
                Some(Ok(Event::Apply(pod))) => hand_over(&ctx, &mut workers, pod),
                Some(Ok(Event::InitDone)) => {
                    for (uid, w) in &workers {
                        if !listed.contains(uid) {
                            w.pods.send_replace(None);
                        }
                    }
                    tokio::spawn(remove_orphans(ctx.clone(), listed.clone()));
                }
                Some(Ok(Event::Delete(pod))) => {
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    if let Some(w) = workers.get(&uid) {
                        w.pods.send_replace(None);
                    }
                }
                Some(Err(e)) => tracing::warn!(node = %node, error = %e, "kubelet: pod watch failed"),
                None => break,
            },
        }
    }
    for (_, w) in workers {
        w.task.abort();
    }
}

fn hand_over<R: Runtime, I: Images>(
    ctx: &Arc<Ctx<R, I>>,
    workers: &mut HashMap<String, Handle>,
    pod: Pod,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let pod = Arc::new(pod);
    if let Some(w) = workers.get(&uid)
        && !w.task.is_finished()
    {
        w.pods.send_replace(Some(pod));
        return;
    }
    let (tx, rx) = watch::channel(Some(pod));
    let task = tokio::spawn(worker::run(ctx.clone(), rx));
    workers.insert(uid, Handle { pods: tx, task });
}

/// Removes sandboxes whose pod is not among `live` (deleted while the agent was away, or
/// bound elsewhere now).
async fn remove_orphans<R: Runtime, I: Images>(ctx: Arc<Ctx<R, I>>, live: HashSet<String>) {
    let Ok((sandboxes, _)) = ctx.runtime.list().await else {
        return;
    };
    for sb in sandboxes {
        let uid = sb
            .labels
            .get(LABEL_POD_UID)
            .cloned()
            .unwrap_or_else(|| sb.id.clone());
        if live.contains(&uid) {
            continue;
        }
        tracing::info!(sandbox = %sb.id, pod = %format!("{}/{}", sb.namespace, sb.name), "kubelet: removing the sandbox of a pod no longer here");
        if let Err(e) = ctx
            .runtime
            .remove_sandbox(&sb.id, Duration::from_secs(2))
            .await
        {
            tracing::warn!(sandbox = %sb.id, error = %e, "kubelet: removing an orphaned sandbox failed");
        }
        let _ = std::fs::remove_dir_all(super::config::pod_dir(&ctx.config.data_dir, &uid));
    }
}
