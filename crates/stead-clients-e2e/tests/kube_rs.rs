//! kube-rs 5 against a real `stead server`: every served resource goes through create, get, list
//! (label selector), watch, merge / strategic / server-side-apply patch, replace and delete; plus
//! the StatefulSet `scale` and `status` subresources, both discovery flavours, a NotFound error and
//! the `watcher` in both initial-list modes.
//!
//! Start at [`exercise`]: the one verb walk every per-resource test runs with its own fixture.

mod common;

use std::fmt::Debug;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event as CoreEvent, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event as EventsEvent;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use common::TestServer;

const NS: &str = "default";
const CASE_LABEL: &str = "stead.test/case";
const MANAGER: &str = "stead-e2e";
/// How long any single expected event or state change may take.
const WAIT: Duration = Duration::from_secs(10);

/// What [`exercise`] needs of a typed object.
trait Object:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}
impl<K> Object for K where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

fn annotation<'a, K: Resource>(obj: &'a K, key: &str) -> Option<&'a str> {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn label<'a, K: Resource>(obj: &'a K, key: &str) -> Option<&'a str> {
    obj.meta()
        .labels
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The next non-bookmark watch event, failing on an `ERROR` event, a closed stream or a timeout.
async fn next_event<K: Object>(
    events: &mut BoxStream<'static, kube::Result<WatchEvent<K>>>,
    after: &str,
) -> Result<WatchEvent<K>> {
    loop {
        let next = tokio::time::timeout(WAIT, events.next())
            .await
            .with_context(|| format!("no watch event within {WAIT:?} after {after}"))?;
        match next {
            None => bail!("watch stream ended while waiting for the event after {after}"),
            Some(Err(e)) => bail!("watch stream failed after {after}: {e}"),
            Some(Ok(WatchEvent::Bookmark(_))) => continue,
            Some(Ok(WatchEvent::Error(status))) => {
                bail!("watch ERROR event after {after}: {status:?}")
            }
            Some(Ok(event)) => return Ok(event),
        }
    }
}

/// Expects a `MODIFIED` event whose object satisfies `check`.
async fn expect_modified<K: Object>(
    events: &mut BoxStream<'static, kube::Result<WatchEvent<K>>>,
    after: &str,
    check: impl Fn(&K) -> bool,
) -> Result<()> {
    match next_event(events, after).await? {
        WatchEvent::Modified(obj) if check(&obj) => Ok(()),
        WatchEvent::Modified(obj) => {
            bail!("MODIFIED after {after} does not show the change: {obj:?}")
        }
        other => bail!("expected MODIFIED after {after}, got {other:?}"),
    }
}

fn expect_api_error<T: Debug>(result: kube::Result<T>, code: u16, reason: &str) -> Result<()> {
    match result {
        Err(kube::Error::Api(status)) if status.code == code && status.reason == reason => Ok(()),
        other => bail!("expected an API error {code} {reason}, got {other:?}"),
    }
}

async fn wait_gone<K: Object>(api: &Api<K>, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match api.get_opt(name).await.context("get after delete")? {
            None => return Ok(()),
            Some(obj) if tokio::time::Instant::now() > deadline => {
                bail!("{name} still exists {WAIT:?} after delete: {obj:?}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Problems found on the way; a walk continues past a wrong answer so one run reports them all.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn record(&mut self, result: Result<()>) {
        if let Err(e) = result {
            self.0.push(format!("{e:#}"));
        }
    }

    fn finish(self, what: &str) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        bail!(
            "{what}: {} problem(s):\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        )
    }
}

/// `ensure!` that records instead of returning.
macro_rules! check {
    ($findings:ident, $cond:expr $(,)?) => {
        if !$cond {
            $findings.0.push(format!("check failed: {}", stringify!($cond)));
        }
    };
    ($findings:ident, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            $findings.0.push(format!($($msg)+));
        }
    };
}

/// Upstream kinds whose store sets `ReturnDeletedObject: true`: an immediate delete answers with
/// the object, not a `Status`.
fn delete_returns_object<K: Object>() -> bool {
    matches!(
        (K::group(&()).as_ref(), K::kind(&()).as_ref()),
        (
            "",
            "Pod" | "Service" | "ServiceAccount" | "PersistentVolume" | "PersistentVolumeClaim"
        ) | ("storage.k8s.io", "StorageClass")
    )
}

/// Walks one object through every verb a client library uses, checking each answer and the watch
/// event each write produces.
async fn exercise<K: Object>(api: Api<K>, fixture: Value) -> Result<()> {
    let mut obj: K = serde_json::from_value(fixture).context("fixture decodes")?;
    let name = obj.name_any();
    obj.labels_mut().insert(CASE_LABEL.into(), name.clone());
    let selector = format!("{CASE_LABEL}={name}");
    let mut findings = Findings::default();

    // create
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .context("create")?;
    let uid = created.uid().context("created object has no uid")?;
    let rv0 = created
        .resource_version()
        .context("created object has no resourceVersion")?;
    check!(
        findings,
        created.name_any() == name,
        "create returned {created:?}"
    );
    check!(
        findings,
        created.meta().creation_timestamp.is_some(),
        "created object has no creationTimestamp"
    );
    check!(findings, label(&created, CASE_LABEL) == Some(name.as_str()));

    // create again: AlreadyExists
    findings.record(
        expect_api_error(
            api.create(&PostParams::default(), &obj).await,
            409,
            "AlreadyExists",
        )
        .context("second create"),
    );

    // get
    let got = api.get(&name).await.context("get")?;
    check!(
        findings,
        got.uid() == Some(uid.clone()),
        "get returned {got:?}"
    );
    check!(findings, got.resource_version() == Some(rv0.clone()));

    // list with a label selector
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .context("list")?;
    let names: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
    check!(
        findings,
        names == [name.clone()],
        "list {selector} returned {names:?}"
    );
    check!(
        findings,
        list.metadata
            .resource_version
            .is_some_and(|rv| !rv.is_empty()),
        "list has no resourceVersion"
    );
    let none = api
        .list(&ListParams::default().labels(&format!("{CASE_LABEL}=no-such-case")))
        .await
        .context("list with a selector matching nothing")?;
    check!(
        findings,
        none.items.is_empty(),
        "unmatched selector listed {none:?}"
    );

    // watch from the created version: every later write must arrive as an event
    let mut events = api
        .watch(&WatchParams::default().labels(&selector).timeout(60), &rv0)
        .await
        .context("watch")?
        .boxed();

    // JSON merge patch
    let merged = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"stead.test/merge": "1"}}})),
        )
        .await
        .context("merge patch")?;
    check!(
        findings,
        annotation(&merged, "stead.test/merge") == Some("1")
    );
    check!(findings, merged.resource_version() != Some(rv0.clone()));
    findings.record(
        expect_modified(&mut events, "merge patch", |o| {
            annotation(o, "stead.test/merge") == Some("1")
        })
        .await,
    );

    // strategic merge patch: labels merge with the existing ones
    let smp = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"stead.test/smp": "yes"}}})),
        )
        .await
        .context("strategic merge patch")?;
    check!(findings, label(&smp, "stead.test/smp") == Some("yes"));
    check!(findings, label(&smp, CASE_LABEL) == Some(name.as_str()));
    findings.record(
        expect_modified(&mut events, "strategic merge patch", |o| {
            label(o, "stead.test/smp") == Some("yes")
        })
        .await,
    );

    // server-side apply, twice: the second apply drops a field the manager owned
    let apply = |annotations: Value| {
        json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": {"name": name, "annotations": annotations},
        })
    };
    let ssa = PatchParams::apply(MANAGER).force();
    let applied = api
        .patch(
            &name,
            &ssa,
            &Patch::Apply(apply(json!({"stead.test/ssa": "one"}))),
        )
        .await
        .context("server-side apply")?;
    check!(
        findings,
        annotation(&applied, "stead.test/ssa") == Some("one")
    );
    check!(
        findings,
        annotation(&applied, "stead.test/merge") == Some("1")
    );
    let managers: Vec<(String, String)> = applied
        .managed_fields()
        .iter()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    check!(
        findings,
        managers.contains(&(MANAGER.to_string(), "Apply".to_string())),
        "managedFields after apply: {managers:?}"
    );
    findings.record(
        expect_modified(&mut events, "server-side apply", |o| {
            annotation(o, "stead.test/ssa") == Some("one")
        })
        .await,
    );
    let reapplied = api
        .patch(
            &name,
            &ssa,
            &Patch::Apply(apply(json!({"stead.test/ssa2": "two"}))),
        )
        .await
        .context("second server-side apply")?;
    check!(
        findings,
        annotation(&reapplied, "stead.test/ssa").is_none(),
        "the field the manager stopped applying is still there: {:?}",
        reapplied.annotations()
    );
    check!(
        findings,
        annotation(&reapplied, "stead.test/ssa2") == Some("two")
    );
    check!(
        findings,
        annotation(&reapplied, "stead.test/merge") == Some("1")
    );
    findings.record(
        expect_modified(&mut events, "second server-side apply", |o| {
            annotation(o, "stead.test/ssa2") == Some("two")
        })
        .await,
    );

    // replace, then a replace with the now stale resourceVersion
    let mut current = api.get(&name).await.context("get before replace")?;
    current
        .annotations_mut()
        .insert("stead.test/replace".into(), "1".into());
    let replaced = api
        .replace(&name, &PostParams::default(), &current)
        .await
        .context("replace")?;
    check!(
        findings,
        annotation(&replaced, "stead.test/replace") == Some("1")
    );
    check!(
        findings,
        replaced.resource_version() != current.resource_version()
    );
    findings.record(
        expect_modified(&mut events, "replace", |o| {
            annotation(o, "stead.test/replace") == Some("1")
        })
        .await,
    );
    findings.record(
        expect_api_error(
            api.replace(&name, &PostParams::default(), &current).await,
            409,
            "Conflict",
        )
        .context("replace with a stale resourceVersion"),
    );

    // delete
    let deleted = api
        .delete(&name, &DeleteParams::default())
        .await
        .context("delete")?;
    let protected = matches!(
        K::kind(&()).as_ref(),
        "PersistentVolumeClaim" | "PersistentVolume"
    );
    if protected {
        // The API server adds the pvc-/pv-protection finalizer on create; the volume controller
        // (not running here) removes it once the object is unused. Do its part by hand.
        check!(
            findings,
            deleted
                .clone()
                .left()
                .is_some_and(|o| o.meta().deletion_timestamp.is_some()
                    && o.finalizers().iter().any(|f| f.ends_with("-protection"))),
            "delete of a protected {} returned {deleted:?}",
            K::kind(&())
        );
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .context("remove the protection finalizer")?;
    }
    // kube-rs decodes a `kind: Status` body as the right side.
    if K::kind(&()) == "Namespace" {
        // A namespace terminates until its spec.finalizers are cleared (by the namespace
        // controller; here by hand through the finalize subresource).
        let mut ns = serde_json::to_value(
            deleted
                .clone()
                .left()
                .context("namespace delete returns it")?,
        )?;
        check!(
            findings,
            ns["status"]["phase"] == "Terminating",
            "namespace delete returned {ns}"
        );
        ns["spec"]["finalizers"] = serde_json::json!([]);
        api.replace_subresource("finalize", &name, &PostParams::default(), &ns)
            .await
            .context("finalize")?;
    } else {
        match (
            deleted.clone().left(),
            deleted.right(),
            delete_returns_object::<K>(),
        ) {
            (Some(o), _, true) => check!(
                findings,
                o.uid() == Some(uid.clone()),
                "delete returned {o:?}"
            ),
            (_, Some(status), false) => check!(
                findings,
                status.details.as_ref().is_some_and(|d| d.name == name),
                "delete returned {status:?}"
            ),
            (Some(o), None, false) => findings.0.push(format!(
                "delete returned the object, upstream a Status: {o:?}"
            )),
            (None, None, false) => unreachable!("kube-rs returns one side of the Either"),
            (_, status, true) => findings.0.push(format!(
                "delete returned a Status, upstream returns the deleted object: {status:?}"
            )),
        }
    }
    wait_gone(&api, &name).await?;
    let mut after_delete = next_event(&mut events, "delete").await;
    if K::kind(&()) == "Namespace" || protected {
        // Terminating (and finalize) show up as modifications before the deletion; so does the
        // deletionTimestamp of a claim or volume held by its protection finalizer.
        while let Ok(WatchEvent::Modified(_)) = after_delete {
            after_delete = next_event(&mut events, "delete").await;
        }
    }
    findings.record(match after_delete {
        Ok(WatchEvent::Deleted(o)) if o.uid() == Some(uid.clone()) => Ok(()),
        Ok(other) => Err(anyhow::anyhow!(
            "expected DELETED after delete, got {other:?}"
        )),
        Err(e) => Err(e),
    });
    findings.record(
        expect_api_error(api.get(&name).await, 404, "NotFound").context("get after delete"),
    );
    findings.finish(&format!("{} {name}", K::kind(&())))
}

/// One test per served resource: `$api` builds the `Api` from a client.
macro_rules! resource_test {
    ($test:ident, $ty:ty, $api:expr, $fixture:expr) => {
        #[tokio::test]
        async fn $test() -> Result<()> {
            let server = TestServer::start().await?;
            let client = server.client().await?;
            let make: fn(kube::Client) -> Api<$ty> = $api;
            exercise(make(client), $fixture).await?;
            server.stop().await;
            Ok(())
        }
    };
}

fn namespaced<K: Object + Resource<Scope = k8s_openapi::NamespaceResourceScope>>(
    client: kube::Client,
) -> Api<K> {
    Api::namespaced(client, NS)
}

fn cluster<K: Object>(client: kube::Client) -> Api<K> {
    Api::all(client)
}

resource_test!(
    configmap_goes_through_every_verb,
    ConfigMap,
    namespaced,
    json!({"metadata": {"name": "e2e-cm"}, "data": {"greeting": "hello"}})
);

resource_test!(
    endpoints_go_through_every_verb,
    Endpoints,
    namespaced,
    json!({
        "metadata": {"name": "e2e-ep"},
        "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        }],
    })
);

resource_test!(
    core_event_goes_through_every_verb,
    CoreEvent,
    namespaced,
    json!({
        "metadata": {"name": "web-0.e2e1"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "namespace": NS},
        "reason": "Testing",
        "message": "hello from the e2e test",
        "type": "Normal",
        "source": {"component": "stead-e2e"},
        "firstTimestamp": "2025-01-01T00:00:00Z",
        "lastTimestamp": "2025-01-01T00:00:00Z",
        "count": 1,
    })
);

resource_test!(
    namespace_goes_through_every_verb,
    Namespace,
    cluster,
    json!({"metadata": {"name": "e2e-ns"}})
);

resource_test!(
    node_goes_through_every_verb,
    Node,
    cluster,
    json!({"metadata": {"name": "e2e-node"}, "spec": {}})
);

resource_test!(
    persistentvolumeclaim_goes_through_every_verb,
    PersistentVolumeClaim,
    namespaced,
    json!({
        "metadata": {"name": "e2e-pvc"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
);

resource_test!(
    persistentvolume_goes_through_every_verb,
    PersistentVolume,
    cluster,
    json!({
        "metadata": {"name": "e2e-pv"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/e2e-pv"},
        },
    })
);

resource_test!(
    pod_goes_through_every_verb,
    Pod,
    namespaced,
    json!({
        "metadata": {"name": "e2e-pod"},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
    })
);

resource_test!(
    secret_goes_through_every_verb,
    Secret,
    namespaced,
    json!({"metadata": {"name": "e2e-secret"}, "type": "Opaque", "data": {"password": "aHVudGVyMg=="}})
);

resource_test!(
    serviceaccount_goes_through_every_verb,
    ServiceAccount,
    namespaced,
    json!({"metadata": {"name": "e2e-sa"}})
);

resource_test!(
    service_goes_through_every_verb,
    Service,
    namespaced,
    json!({
        "metadata": {"name": "e2e-svc"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    })
);

resource_test!(
    controllerrevision_goes_through_every_verb,
    ControllerRevision,
    namespaced,
    json!({
        "metadata": {"name": "e2e-cr"},
        "revision": 1,
        "data": {"spec": {"template": {"$patch": "replace", "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}}}},
    })
);

fn statefulset_fixture(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
            },
        },
    })
}

resource_test!(
    statefulset_goes_through_every_verb,
    StatefulSet,
    namespaced,
    statefulset_fixture("e2e-sts")
);

resource_test!(
    events_v1_event_goes_through_every_verb,
    EventsEvent,
    namespaced,
    json!({
        "metadata": {"name": "web-0.e2e2"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "stead.io/e2e",
        "reportingInstance": "e2e-1",
        "action": "Testing",
        "reason": "Testing",
        "type": "Normal",
        "note": "hello from the e2e test",
        "regarding": {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "namespace": NS},
    })
);

resource_test!(
    storageclass_goes_through_every_verb,
    StorageClass,
    cluster,
    json!({
        "metadata": {"name": "e2e-sc"},
        "provisioner": "stead.io/local",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    })
);

resource_test!(
    lease_goes_through_every_verb,
    Lease,
    namespaced,
    json!({"metadata": {"name": "e2e-lease"}, "spec": {"holderIdentity": "e2e", "leaseDurationSeconds": 15}})
);

resource_test!(
    endpointslice_goes_through_every_verb,
    EndpointSlice,
    namespaced,
    json!({
        "metadata": {"name": "e2e-eps"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    })
);

#[tokio::test]
async fn statefulset_scale_and_status_subresources_work() -> Result<()> {
    let server = TestServer::start().await?;
    let api: Api<StatefulSet> = Api::namespaced(server.client().await?, NS);
    let sts: StatefulSet = serde_json::from_value(statefulset_fixture("web"))?;
    api.create(&PostParams::default(), &sts).await?;

    let scale = api.get_scale("web").await.context("get_scale")?;
    ensure!(scale.metadata.name.as_deref() == Some("web"));
    ensure!(scale.spec.as_ref().and_then(|s| s.replicas) == Some(1));

    let scaled = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .context("patch_scale")?;
    ensure!(scaled.spec.as_ref().and_then(|s| s.replicas) == Some(3));
    let after = api.get("web").await?;
    ensure!(after.spec.as_ref().and_then(|s| s.replicas) == Some(3));

    let status = api.get_status("web").await.context("get_status")?;
    ensure!(status.metadata.name.as_deref() == Some("web"));

    // A status patch changes the status and nothing else.
    let patched = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": {"replicas": 7},
                "status": {"replicas": 2, "currentRevision": "web-abc"},
            })),
        )
        .await
        .context("patch_status")?;
    let st = patched.status.as_ref().context("no status after patch")?;
    ensure!(st.replicas == 2, "status.replicas = {}", st.replicas);
    ensure!(st.current_revision.as_deref() == Some("web-abc"));
    ensure!(
        patched.spec.as_ref().and_then(|s| s.replicas) == Some(3),
        "a status patch changed spec.replicas"
    );
    let again = api.get_status("web").await?;
    ensure!(again.status.map(|s| s.replicas) == Some(2));
    server.stop().await;
    Ok(())
}

/// What both discovery flavours must report about the served resources.
fn check_discovery(discovery: &Discovery) -> Result<()> {
    let gvk = GroupVersionKind::gvk("apps", "v1", "StatefulSet");
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .context("statefulsets not discovered")?;
    ensure!(ar.plural == "statefulsets", "plural {}", ar.plural);
    ensure!(caps.scope == Scope::Namespaced, "scope {:?}", caps.scope);
    for verb in [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ] {
        ensure!(
            caps.supports_operation(verb),
            "statefulsets lacks verb {verb}: {:?}",
            caps.operations
        );
    }
    let subs: Vec<&str> = caps
        .subresources
        .iter()
        .map(|(r, _)| r.plural.as_str())
        .collect();
    ensure!(
        subs.iter().any(|s| s.ends_with("scale")) && subs.iter().any(|s| s.ends_with("status")),
        "statefulset subresources: {subs:?}"
    );

    let (_, ns_caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .context("namespaces not discovered")?;
    ensure!(ns_caps.scope == Scope::Cluster);
    for (group, kind) in [
        ("", "Pod"),
        ("", "ConfigMap"),
        ("events.k8s.io", "Event"),
        ("storage.k8s.io", "StorageClass"),
        ("coordination.k8s.io", "Lease"),
        ("discovery.k8s.io", "EndpointSlice"),
    ] {
        ensure!(
            discovery
                .resolve_gvk(&GroupVersionKind::gvk(group, "v1", kind))
                .is_some(),
            "{group}/v1 {kind} not discovered"
        );
    }
    Ok(())
}

#[tokio::test]
async fn aggregated_discovery_finds_statefulsets() -> Result<()> {
    let server = TestServer::start().await?;
    let discovery = Discovery::new(server.client().await?)
        .run_aggregated()
        .await
        .context("run_aggregated")?;
    check_discovery(&discovery)?;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn legacy_discovery_finds_statefulsets() -> Result<()> {
    let server = TestServer::start().await?;
    let discovery = Discovery::new(server.client().await?)
        .run()
        .await
        .context("run")?;
    check_discovery(&discovery)?;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn missing_object_is_a_not_found_api_error() -> Result<()> {
    let server = TestServer::start().await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await?, NS);
    match api.get("no-such-configmap").await {
        Err(kube::Error::Api(status)) => {
            ensure!(status.code == 404, "code {}", status.code);
            ensure!(status.reason == "NotFound", "reason {}", status.reason);
            ensure!(
                status.message == r#"configmaps "no-such-configmap" not found"#,
                "message {}",
                status.message
            );
        }
        other => bail!("expected a 404 API error, got {other:?}"),
    }
    server.stop().await;
    Ok(())
}

/// Runs a `watcher` until its initial list is complete, then checks a later create arrives.
async fn watcher_sees_initial_list_then_changes(config: watcher::Config) -> Result<()> {
    let server = TestServer::start().await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await?, NS);
    for name in ["w-a", "w-b"] {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"stead.test/watcher": "yes"}},
        }))?;
        api.create(&PostParams::default(), &cm).await?;
    }
    let mut stream = watcher(api.clone(), config.labels("stead.test/watcher=yes")).boxed();
    let mut initial = Vec::new();
    loop {
        let event = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .context("watcher did not reach InitDone")??
            .context("watcher ended")?;
        match event {
            watcher::Event::Init => {}
            watcher::Event::InitApply(cm) => initial.push(cm.name_any()),
            watcher::Event::InitDone => break,
            other => bail!("unexpected event before InitDone: {other:?}"),
        }
    }
    initial.sort();
    ensure!(initial == ["w-a", "w-b"], "initial objects {initial:?}");

    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "w-c", "labels": {"stead.test/watcher": "yes"}},
    }))?;
    api.create(&PostParams::default(), &cm).await?;
    let event = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .context("no event for the later create")??
        .context("watcher ended")?;
    match event {
        watcher::Event::Apply(cm) if cm.name_any() == "w-c" => {}
        other => bail!("expected Apply(w-c), got {other:?}"),
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn streaming_list_watcher_reaches_init_done() -> Result<()> {
    watcher_sees_initial_list_then_changes(watcher::Config::default().streaming_lists()).await
}

#[tokio::test]
async fn list_watch_watcher_reaches_init_done() -> Result<()> {
    watcher_sees_initial_list_then_changes(watcher::Config::default()).await
}

#[tokio::test]
async fn server_side_apply_creates_and_reports_conflicts() -> Result<()> {
    let server = TestServer::start().await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await?, NS);
    let mut findings = Findings::default();
    let intent = |value: &str| {
        Patch::Apply(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ssa"},
            "data": {"owner": value},
        }))
    };

    // An apply of a missing object creates it.
    let created = api
        .patch("ssa", &PatchParams::apply("first"), &intent("first"))
        .await
        .context("apply that creates")?;
    check!(
        findings,
        created
            .data
            .as_ref()
            .and_then(|d| d.get("owner"))
            .map(String::as_str)
            == Some("first"),
        "created data {:?}",
        created.data
    );
    let managers: Vec<(Option<String>, Option<String>)> = created
        .managed_fields()
        .iter()
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    check!(
        findings,
        managers == [(Some("first".into()), Some("Apply".into()))],
        "managedFields after an apply that creates: {managers:?}"
    );

    // Another manager changing an owned field without force conflicts.
    findings.record(
        expect_api_error(
            api.patch("ssa", &PatchParams::apply("second"), &intent("second"))
                .await,
            409,
            "Conflict",
        )
        .context("conflicting apply without force"),
    );
    // With force it takes the field over.
    let forced = api
        .patch(
            "ssa",
            &PatchParams::apply("second").force(),
            &intent("second"),
        )
        .await
        .context("forced apply")?;
    check!(
        findings,
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("owner"))
            .map(String::as_str)
            == Some("second"),
        "data after a forced apply {:?}",
        forced.data
    );
    server.stop().await;
    findings.finish("server-side apply")
}
