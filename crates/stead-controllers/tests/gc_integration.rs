//! The garbage collector and the namespace controller against a real API server in-process, over
//! HTTPS with a kube client, as `stead server` runs them.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use tokio::sync::watch;

struct Env {
    server: Option<stead_apiserver::RunningServer>,
    client: Client,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

use stead_testkit::{eventually, gone, stopped};

async fn start() -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(dir.path()).await?;
    let (stop, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(stead_controllers::gc::run(
            client.clone(),
            stopped(rx.clone()),
        )),
        tokio::spawn(stead_controllers::namespace::run(
            client.clone(),
            stopped(rx),
        )),
    ];
    Ok(Env {
        server: Some(server),
        client,
        stop,
        tasks,
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

    fn cms(&self, ns: &str) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), ns)
    }
}

fn reference(cm: &ConfigMap, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: cm.metadata.name.clone().unwrap_or_default(),
        uid: cm.metadata.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: Some(block),
    }
}

async fn create_cm(
    api: &Api<ConfigMap>,
    name: &str,
    owners: Vec<OwnerReference>,
    finalizers: Vec<String>,
) -> Result<ConfigMap> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: Some(owners).filter(|o| !o.is_empty()),
            finalizers: Some(finalizers).filter(|f| !f.is_empty()),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(api.create(&PostParams::default(), &cm).await?)
}

async fn unhold(api: &Api<ConfigMap>, name: &str) -> Result<()> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_delete_removes_the_dependents() -> Result<()> {
    // Ref: upstream e2e "should delete pods created by rc when not orphaning"
    let env = start().await?;
    let cms = env.cms("default");
    let owner = create_cm(&cms, "owner", vec![], vec![]).await?;
    create_cm(&cms, "dep-a", vec![reference(&owner, false)], vec![]).await?;
    create_cm(&cms, "dep-b", vec![reference(&owner, true)], vec![]).await?;
    let bystander = create_cm(&cms, "bystander", vec![], vec![]).await?;

    cms.delete("owner", &DeleteParams::background()).await?;
    gone(&cms, "dep-a").await?;
    gone(&cms, "dep-b").await?;
    let still = cms.get("bystander").await?;
    assert_eq!(still.metadata.uid, bystander.metadata.uid);
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_with_another_live_owner_only_loses_the_reference() -> Result<()> {
    let env = start().await?;
    let cms = env.cms("default");
    let a = create_cm(&cms, "a", vec![], vec![]).await?;
    let b = create_cm(&cms, "b", vec![], vec![]).await?;
    create_cm(
        &cms,
        "shared",
        vec![reference(&a, false), reference(&b, false)],
        vec![],
    )
    .await?;
    cms.delete("a", &DeleteParams::background()).await?;
    let refs = eventually("the dangling reference to go", || async {
        let cm = cms.get("shared").await?;
        let refs = cm.metadata.owner_references.unwrap_or_default();
        Ok((refs.len() == 1).then_some(refs))
    })
    .await?;
    assert_eq!(refs[0].uid, b.metadata.uid.clone().context("uid")?);
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_delete_keeps_the_owner_until_blocking_dependents_are_gone() -> Result<()> {
    // Ref: upstream e2e "should keep the rc around until all its pods are deleted if the
    // deleteOptions says so"
    let env = start().await?;
    let cms = env.cms("default");
    let owner = create_cm(&cms, "owner", vec![], vec![]).await?;
    // The dependent holds a finalizer of its own, so it lingers after the collector deletes it.
    create_cm(
        &cms,
        "held",
        vec![reference(&owner, true)],
        vec!["example.com/hold".into()],
    )
    .await?;

    cms.delete("owner", &DeleteParams::foreground()).await?;
    eventually("the collector to delete the dependent", || async {
        let cm = cms.get("held").await?;
        Ok(cm.metadata.deletion_timestamp.map(|_| ()))
    })
    .await?;
    let waiting = cms.get("owner").await?;
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        waiting.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );

    unhold(&cms, "held").await?;
    gone(&cms, "held").await?;
    gone(&cms, "owner").await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_delete_walks_a_chain_of_owners() -> Result<()> {
    let env = start().await?;
    let cms = env.cms("default");
    let top = create_cm(&cms, "top", vec![], vec![]).await?;
    let mid = create_cm(&cms, "mid", vec![reference(&top, true)], vec![]).await?;
    create_cm(&cms, "leaf", vec![reference(&mid, true)], vec![]).await?;
    cms.delete("top", &DeleteParams::foreground()).await?;
    gone(&cms, "top").await?;
    // The owner went last: nothing of the chain is left.
    assert!(cms.get_opt("mid").await?.is_none());
    assert!(cms.get_opt("leaf").await?.is_none());
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_delete_keeps_the_dependents_without_the_reference() -> Result<()> {
    // Ref: upstream e2e "should orphan pods created by rc if delete options say so"
    let env = start().await?;
    let cms = env.cms("default");
    let owner = create_cm(&cms, "owner", vec![], vec![]).await?;
    create_cm(&cms, "kept-a", vec![reference(&owner, true)], vec![]).await?;
    create_cm(&cms, "kept-b", vec![reference(&owner, false)], vec![]).await?;
    cms.delete("owner", &DeleteParams::orphan()).await?;
    gone(&cms, "owner").await?;
    for name in ["kept-a", "kept-b"] {
        let cm = cms.get(name).await?;
        assert!(cm.metadata.deletion_timestamp.is_none(), "{name}");
        assert!(
            cm.metadata.owner_references.unwrap_or_default().is_empty(),
            "{name} still references the owner"
        );
    }
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_removes_its_content_and_then_the_namespace() -> Result<()> {
    // Ref: upstream e2e "should ensure that all pods are removed when a namespace is deleted"
    let env = start().await?;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("doomed".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    let cms = env.cms("doomed");
    create_cm(&cms, "plain", vec![], vec![]).await?;
    create_cm(&cms, "held", vec![], vec!["example.com/hold".into()]).await?;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "doomed");
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("s".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
    // Content elsewhere stays.
    create_cm(&env.cms("default"), "elsewhere", vec![], vec![]).await?;

    namespaces
        .delete("doomed", &DeleteParams::default())
        .await?;
    // The held object keeps the namespace terminating, and the status says why.
    let message = eventually("the finalizers-remaining condition", || async {
        let ns = namespaces.get("doomed").await?;
        let status = ns.status.unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Terminating"));
        Ok(status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "NamespaceFinalizersRemaining" && c.status == "True")
            .and_then(|c| c.message))
    })
    .await?;
    assert_eq!(
        message,
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    gone(&cms, "plain").await?;
    gone(&secrets, "s").await?;
    assert!(cms.get_opt("held").await?.is_some());

    unhold(&cms, "held").await?;
    gone(&namespaces, "doomed").await?;
    assert!(env.cms("default").get_opt("elsewhere").await?.is_some());
    env.shutdown().await;
    Ok(())
}
