//! The scheduler against a real API server in-process, over HTTPS with a kube client, as
//! `stead server` runs it. The test registers two Nodes itself (no node agent runs), creates pods
//! and claims, and plays the volume binder where one is needed.

use anyhow::Result;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

struct Env {
    server: Option<stead_apiserver::RunningServer>,
    client: Client,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

use stead_testkit::{eventually, stopped};

async fn start() -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(dir.path()).await?;
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(stead_scheduler::run(
        client.clone(),
        stead_scheduler::DEFAULT_SCHEDULER,
        stopped(rx),
    ));
    Ok(Env {
        server: Some(server),
        client,
        stop,
        task: Some(task),
        _dir: dir,
    })
}

impl Env {
    async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn create<K>(&self, api: &Api<K>, obj: Value) -> Result<K>
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let obj: K = serde_json::from_value(obj)?;
        Ok(api.create(&PostParams::default(), &obj).await?)
    }

    /// Registers a Ready node with 2 cores, 4Gi and room for 110 pods.
    async fn add_node(&self, name: &str, labels: Value) -> Result<()> {
        let mut all = json!({"kubernetes.io/hostname": name});
        for (k, v) in labels.as_object().cloned().unwrap_or_default() {
            all[k] = v;
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        self.create(
            &nodes,
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": all},
                "status": {
                    "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                    "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                },
            }),
        )
        .await?;
        Ok(())
    }

    async fn node_of(&self, pod: &str) -> Result<Option<String>> {
        let p = self.pods().get(pod).await?;
        Ok(p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty()))
    }

    async fn wait_bound(&self, pod: &str) -> Result<String> {
        eventually(&format!("{pod} bound"), || self.node_of(pod)).await
    }

    /// Waits for `PodScheduled=False, reason Unschedulable` and returns its message.
    async fn wait_unschedulable(&self, pod: &str) -> Result<String> {
        eventually(&format!("{pod} unschedulable"), || async {
            let p = self.pods().get(pod).await?;
            Ok(p.status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .find(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                })
                .and_then(|c| c.message))
        })
        .await
    }

    /// Waits for an event about `pod` with `reason` from the scheduler; returns its note.
    async fn wait_event(&self, pod: &str, reason: &str) -> Result<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        eventually(&format!("{reason} event for {pod}"), || async {
            let list = events.list(&ListParams::default()).await?;
            Ok(list.items.into_iter().find_map(|e| {
                let about = e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod);
                (about
                    && e.reason.as_deref() == Some(reason)
                    && e.reporting_controller.as_deref() == Some("default-scheduler"))
                .then(|| e.note.unwrap_or_default())
            }))
        })
        .await
    }
}

fn pod(name: &str, labels: Value, spec_extra: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    for (k, v) in spec_extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    })
}

fn anti_affine(name: &str) -> Value {
    pod(
        name,
        json!({"app": "zk"}),
        json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": "zk"}},
            "topologyKey": "kubernetes.io/hostname",
        }]}}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_bound_per_their_constraints_and_impossible_ones_are_explained() -> Result<()> {
    let env = start().await?;
    env.add_node("n1", json!({"disk": "ssd"})).await?;
    env.add_node("n2", json!({"disk": "hdd"})).await?;
    let pods = env.pods();

    env.create(
        &pods,
        pod("fast", json!({}), json!({"nodeSelector": {"disk": "hdd"}})),
    )
    .await?;
    assert_eq!(env.wait_bound("fast").await?, "n2");
    assert_eq!(
        env.wait_event("fast", "Scheduled").await?,
        "Successfully assigned default/fast to n2"
    );

    // One replica per host: the third has nowhere to go.
    for name in ["zk-0", "zk-1", "zk-2"] {
        env.create(&pods, anti_affine(name)).await?;
    }
    let a = env.wait_bound("zk-0").await?;
    let b = env.wait_bound("zk-1").await?;
    assert_ne!(a, b);
    let want = "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. \
                preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.";
    assert_eq!(env.wait_unschedulable("zk-2").await?, want);
    assert_eq!(env.wait_event("zk-2", "FailedScheduling").await?, want);
    assert_eq!(env.node_of("zk-2").await?, None);

    // More cpu than any node has.
    env.create(
        &pods,
        pod(
            "huge",
            json!({}),
            json!({"containers": [{"name": "c", "image": "busybox",
                "resources": {"requests": {"cpu": "3"}}}]}),
        ),
    )
    .await?;
    assert_eq!(
        env.wait_unschedulable("huge").await?,
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: \
         2 Preemption is not helpful for scheduling."
    );

    // A third node is a cluster change: the waiting replica gets it.
    env.add_node("n3", json!({})).await?;
    assert_eq!(env.wait_bound("zk-2").await?, "n3");

    // Pods of another scheduler are left alone.
    env.create(
        &pods,
        pod("other", json!({}), json!({"schedulerName": "someone-else"})),
    )
    .await?;
    env.create(&pods, pod("after-other", json!({}), json!({})))
        .await?;
    env.wait_bound("after-other").await?;
    assert_eq!(env.node_of("other").await?, None);

    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_first_consumer_claim_is_annotated_and_the_pod_bound_once_it_is_bound()
-> Result<()> {
    let env = start().await?;
    env.add_node("n1", json!({})).await?;
    env.add_node("n2", json!({})).await?;
    let classes: Api<StorageClass> = Api::all(env.client.clone());
    env.create(
        &classes,
        json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "late-binding"},
            "provisioner": "example.com/late-binding",
            "volumeBindingMode": "WaitForFirstConsumer",
        }),
    )
    .await?;
    env.create(
        &env.claims(),
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-db-0"},
            "spec": {"storageClassName": "late-binding", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}},
        }),
    )
    .await?;
    env.create(
        &env.pods(),
        pod(
            "db-0",
            json!({}),
            json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]}),
        ),
    )
    .await?;

    let selected = eventually("selected-node annotation", || async {
        let c = env.claims().get("data-db-0").await?;
        Ok(c.metadata
            .annotations
            .and_then(|a| a.get("volume.kubernetes.io/selected-node").cloned()))
    })
    .await?;
    assert!(selected == "n1" || selected == "n2", "{selected}");
    assert_eq!(
        env.node_of("db-0").await?,
        None,
        "not bound before its claim"
    );

    // A pod with a claim that does not exist is explained, not bound.
    env.create(
        &env.pods(),
        pod(
            "orphan",
            json!({}),
            json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "nope"}}]}),
        ),
    )
    .await?;
    assert_eq!(
        env.wait_unschedulable("orphan").await?,
        "0/2 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/2 \
         nodes are available: 2 Preemption is not helpful for scheduling."
    );
    assert_eq!(
        env.node_of("db-0").await?,
        None,
        "still waiting for its claim"
    );

    // The provisioner gives up and clears the annotation: the scheduler chooses again.
    env.claims()
        .patch(
            "data-db-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "volume.kubernetes.io/selected-node": null,
            }}})),
        )
        .await?;
    let selected = eventually("selected-node annotation again", || async {
        let c = env.claims().get("data-db-0").await?;
        Ok(c.metadata
            .annotations
            .and_then(|a| a.get("volume.kubernetes.io/selected-node").cloned()))
    })
    .await?;
    assert_eq!(env.node_of("db-0").await?, None);

    // Play the provisioner and the binder: the claim becomes Bound.
    env.claims()
        .patch_status(
            "data-db-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await?;
    assert_eq!(env.wait_bound("db-0").await?, selected);

    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_pods_never_overcommits_a_node() -> Result<()> {
    let env = start().await?;
    let nodes: Api<Node> = Api::all(env.client.clone());
    for name in ["n1", "n2"] {
        env.add_node(name, json!({})).await?;
        // Room for 30 pods each.
        nodes
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"allocatable": {"pods": "30"}}})),
            )
            .await?;
    }
    eventually("allocatable patched", || async {
        let n = nodes.get("n2").await?;
        let pods = n
            .status
            .and_then(|s| s.allocatable)
            .and_then(|a| a.get("pods").cloned());
        Ok((pods.map(|q| q.0) == Some("30".to_string())).then_some(()))
    })
    .await?;
    // Created concurrently, like a Parallel StatefulSet's burst.
    let creates = (0..65).map(|i| {
        let pods = env.pods();
        async move {
            let p: Pod = serde_json::from_value(pod(&format!("web-{i}"), json!({}), json!({})))?;
            pods.create(&PostParams::default(), &p).await?;
            anyhow::Ok(())
        }
    });
    for r in futures::future::join_all(creates).await {
        r?;
    }
    let counts = eventually("60 pods bound", || async {
        let list = env.pods().list(&ListParams::default()).await?;
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for p in &list.items {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                *counts.entry(n).or_default() += 1;
            }
        }
        Ok((counts.values().sum::<usize>() == 60).then_some(counts))
    })
    .await?;
    assert_eq!(counts.get("n1"), Some(&30));
    assert_eq!(counts.get("n2"), Some(&30));
    // The other five are explained.
    let unbound: Vec<Pod> = env
        .pods()
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
        .collect();
    assert_eq!(unbound.len(), 5);
    let name = unbound[0].metadata.name.clone().unwrap_or_default();
    assert!(
        env.wait_unschedulable(&name)
            .await?
            .starts_with("0/2 nodes are available: 2 Too many pods.")
    );
    env.shutdown().await;
    Ok(())
}
