//! The volume controller (binder, local-path provisioner, protection) and the node agent's
//! reclaimer against a real API server in-process, over HTTPS with a kube client. The test plays
//! the scheduler (it writes `volume.kubernetes.io/selected-node`) and the kubelet (it makes the
//! volume directory).

use std::path::PathBuf;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

struct Env {
    server: Option<stead_apiserver::RunningServer>,
    client: Client,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    volumes_dir: PathBuf,
    _dir: tempfile::TempDir,
}

use stead_testkit::{eventually, gone, stopped};

const NODE: &str = "node-1";

async fn start() -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(&dir.path().join("data")).await?;
    let volumes_dir = dir.path().join("volumes");
    std::fs::create_dir_all(&volumes_dir)?;
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE},
                     "annotations": {"stead.io/volumes-dir": volumes_dir.to_str().unwrap()}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await?;
    let (stop, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(stead_controllers::volume::run(
            client.clone(),
            stopped(rx.clone()),
        )),
        tokio::spawn(stead_agent::reclaim::run_reclaimer(
            client.clone(),
            NODE.to_string(),
            stopped(rx),
        )),
    ];
    Ok(Env {
        server: Some(server),
        client,
        stop,
        tasks,
        volumes_dir,
        _dir: dir,
    })
}

impl Env {
    async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    async fn create_claim(
        &self,
        name: &str,
        class: Option<&str>,
        size: &str,
    ) -> Result<PersistentVolumeClaim> {
        let mut body = json!({
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        });
        if let Some(class) = class {
            body["spec"]["storageClassName"] = json!(class);
        }
        Ok(self
            .claims()
            .create(&PostParams::default(), &serde_json::from_value(body)?)
            .await?)
    }

    async fn bound(&self, name: &str) -> Result<(PersistentVolumeClaim, PersistentVolume)> {
        let claim = eventually(&format!("claim {name} Bound"), || async {
            let c = self.claims().get(name).await?;
            let phase = c.status.as_ref().and_then(|s| s.phase.clone());
            Ok((phase.as_deref() == Some("Bound")).then_some(c))
        })
        .await?;
        let pv_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .context("bound claim names its volume")?;
        let pv = eventually(&format!("volume {pv_name} Bound"), || async {
            let v = self.volumes().get(&pv_name).await?;
            Ok((phase(&v) == "Bound").then_some(v))
        })
        .await?;
        Ok((claim, pv))
    }

    async fn events_for(&self, name: &str) -> Result<Vec<Event>> {
        let list = Api::<Event>::namespaced(self.client.clone(), "default")
            .list(&Default::default())
            .await?;
        Ok(list
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect())
    }
}

fn phase(pv: &PersistentVolume) -> String {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn annotation(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(key).cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_first_consumer_claim_is_provisioned_on_the_selected_node_and_reclaimed()
-> Result<()> {
    let env = start().await?;
    let claim = env.create_claim("www-web-0", None, "1Gi").await?;
    assert_eq!(
        claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref()),
        Some("local-path"),
        "the default class"
    );
    let uid = claim.metadata.uid.clone().unwrap();

    // No consumer yet: Pending, with upstream's event, and nothing provisioned.
    let ev = eventually("the WaitForFirstConsumer event", || async {
        Ok(env
            .events_for("www-web-0")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("WaitForFirstConsumer")))
    })
    .await?;
    assert_eq!(
        ev.message.as_deref(),
        Some("waiting for first consumer to be created before binding")
    );
    let c = env.claims().get("www-web-0").await?;
    assert_eq!(c.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    assert!(
        env.volumes()
            .list(&Default::default())
            .await?
            .items
            .is_empty()
    );

    // The scheduler picks the node.
    env.claims()
        .patch(
            "www-web-0",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": NODE}}}),
            ),
        )
        .await?;
    let (claim, pv) = env.bound("www-web-0").await?;
    let pv_name = format!("pvc-{uid}");
    assert_eq!(pv.metadata.name.as_deref(), Some(pv_name.as_str()));
    let spec = pv.spec.clone().unwrap();
    let path = env.volumes_dir.join(format!("{pv_name}_default_www-web-0"));
    assert_eq!(
        spec.host_path.as_ref().map(|h| h.path.as_str()),
        path.to_str()
    );
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
    assert_eq!(spec.storage_class_name.as_deref(), Some("local-path"));
    assert_eq!(
        spec.capacity
            .as_ref()
            .and_then(|c| c.get("storage"))
            .map(|q| q.0.as_str()),
        Some("1Gi")
    );
    let affinity = serde_json::to_value(&spec.node_affinity)?;
    assert_eq!(
        affinity["required"]["nodeSelectorTerms"][0]["matchExpressions"][0],
        json!({"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]})
    );
    assert_eq!(
        spec.claim_ref.as_ref().and_then(|r| r.uid.clone()),
        Some(uid)
    );
    assert_eq!(
        annotation(&pv.metadata, "pv.kubernetes.io/provisioned-by").as_deref(),
        Some("stead.io/local-path")
    );
    assert_eq!(
        pv.metadata.finalizers,
        Some(vec!["kubernetes.io/pv-protection".to_string()])
    );
    for key in [
        "pv.kubernetes.io/bind-completed",
        "pv.kubernetes.io/bound-by-controller",
    ] {
        assert_eq!(
            annotation(&claim.metadata, key).as_deref(),
            Some("yes"),
            "{key}"
        );
    }
    for key in [
        "volume.kubernetes.io/storage-provisioner",
        "volume.beta.kubernetes.io/storage-provisioner",
    ] {
        assert_eq!(
            annotation(&claim.metadata, key).as_deref(),
            Some("stead.io/local-path"),
            "{key}"
        );
    }
    let status = claim.status.unwrap();
    assert_eq!(status.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
    assert_eq!(
        status
            .capacity
            .and_then(|c| c.get("storage").map(|q| q.0.clone()))
            .as_deref(),
        Some("1Gi")
    );
    let reasons: Vec<String> = env
        .events_for("www-web-0")
        .await?
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    for r in [
        "ExternalProvisioning",
        "Provisioning",
        "ProvisioningSucceeded",
    ] {
        assert!(reasons.iter().any(|x| x == r), "{r} in {reasons:?}");
    }

    // The kubelet makes the directory when it mounts the volume.
    std::fs::create_dir_all(&path)?;
    std::fs::write(path.join("index.html"), "web-0")?;

    // Deleting the claim releases the volume; the reclaimer removes the directory and the PV.
    env.claims()
        .delete("www-web-0", &DeleteParams::default())
        .await?;
    gone(&env.claims(), "www-web-0").await?;
    gone(&env.volumes(), &pv_name).await?;
    assert!(!path.exists(), "the volume directory is removed");
    assert!(env.volumes_dir.exists(), "the volumes dir stays");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retain_class_keeps_the_released_volume_and_its_directory() -> Result<()> {
    let env = start().await?;
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "nfs-client"},
        "provisioner": "stead.io/local-path",
        "reclaimPolicy": "Retain",
    }))?;
    Api::<StorageClass>::all(env.client.clone())
        .create(&PostParams::default(), &class)
        .await?;
    // An Immediate class (the default binding mode): provisioned on the first Ready node at once.
    env.create_claim("data", Some("nfs-client"), "100Mi")
        .await?;
    let (_, pv) = env.bound("data").await?;
    let pv_name = pv.metadata.name.clone().unwrap();
    let path = PathBuf::from(pv.spec.unwrap().host_path.unwrap().path);
    assert!(path.starts_with(&env.volumes_dir));
    std::fs::create_dir_all(&path)?;
    std::fs::write(path.join("dump.rdb"), "data")?;

    env.claims()
        .delete("data", &DeleteParams::default())
        .await?;
    gone(&env.claims(), "data").await?;
    let released = eventually("the volume Released", || async {
        let v = env.volumes().get(&pv_name).await?;
        Ok((phase(&v) == "Released").then_some(v))
    })
    .await?;
    assert_eq!(
        released
            .spec
            .unwrap()
            .persistent_volume_reclaim_policy
            .as_deref(),
        Some("Retain")
    );
    assert_eq!(std::fs::read_to_string(path.join("dump.rdb"))?, "data");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_created_volume_binds_the_smallest_fit_to_a_claim_without_class() -> Result<()> {
    // Ref: upstream e2e "PersistentVolumes ... should create a non-pre-bound PV and PVC".
    let env = start().await?;
    for (name, size) in [("pv-big", "5Gi"), ("pv-small", "2Gi"), ("pv-tiny", "500Mi")] {
        let pv: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "", "hostPath": {"path": format!("/tmp/{name}")}},
        }))?;
        env.volumes().create(&PostParams::default(), &pv).await?;
    }
    eventually("the volumes Available", || async {
        let list = env.volumes().list(&Default::default()).await?;
        Ok(list
            .items
            .iter()
            .all(|v| phase(v) == "Available")
            .then_some(()))
    })
    .await?;
    env.create_claim("manual", Some(""), "1Gi").await?;
    let (claim, pv) = env.bound("manual").await?;
    assert_eq!(pv.metadata.name.as_deref(), Some("pv-small"));
    assert_eq!(
        annotation(&pv.metadata, "pv.kubernetes.io/bound-by-controller").as_deref(),
        Some("yes")
    );
    assert_eq!(
        claim
            .status
            .unwrap()
            .capacity
            .and_then(|c| c.get("storage").map(|q| q.0.clone()))
            .as_deref(),
        Some("2Gi"),
        "the claim reports the volume's capacity"
    );
    assert_eq!(phase(&env.volumes().get("pv-big").await?), "Available");

    // Retain (the default for manual volumes): Released after the claim goes.
    env.claims()
        .delete("manual", &DeleteParams::default())
        .await?;
    eventually("pv-small Released", || async {
        Ok((phase(&env.volumes().get("pv-small").await?) == "Released").then_some(()))
    })
    .await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_used_by_a_pod_keeps_its_finalizer_until_the_pod_is_gone() -> Result<()> {
    // Ref: upstream e2e "PVC Protection Verify that PVC in active use by a pod is not removed
    // immediately".
    let env = start().await?;
    env.create_claim("used", Some(""), "1Gi").await?;
    env.create_claim("unused", Some(""), "1Gi").await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "user"},
        "spec": {"nodeName": NODE,
                 "containers": [{"name": "c", "image": "busybox:1.28"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "used"}}]},
    }))?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    pods.create(&PostParams::default(), &pod).await?;

    env.claims()
        .delete("used", &DeleteParams::default())
        .await?;
    env.claims()
        .delete("unused", &DeleteParams::default())
        .await?;
    gone(&env.claims(), "unused").await?;
    let held = env.claims().get("used").await?;
    assert!(held.metadata.deletion_timestamp.is_some(), "Terminating");
    assert_eq!(
        held.metadata.finalizers,
        Some(vec!["kubernetes.io/pvc-protection".to_string()])
    );

    pods.delete("user", &DeleteParams::default().grace_period(0))
        .await?;
    gone(&pods, "user").await?;
    gone(&env.claims(), "used").await?;
    env.shutdown().await;
    Ok(())
}
