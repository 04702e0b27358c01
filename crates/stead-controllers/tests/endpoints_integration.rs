//! The Endpoints and EndpointSlice controllers against a real API server in-process, over HTTPS
//! with a kube client, as `stead server` runs them. No agent: the test plays the kubelet by
//! patching pod status (IP, phase, Ready condition).

use std::sync::{Arc, Mutex};

use anyhow::Result;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use stead_controllers::endpoints;
use tokio::sync::watch;

const NS: &str = "default";

struct Env {
    server: Option<stead_apiserver::RunningServer>,
    client: Client,
    /// The running controller: its stop switch and task.
    controller: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    _dir: tempfile::TempDir,
}

use stead_testkit::{eventually, stopped};

async fn start() -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(dir.path()).await?;
    let mut env = Env {
        server: Some(server),
        client,
        controller: None,
        _dir: dir,
    };
    env.start_controller();
    Ok(env)
}

impl Env {
    fn start_controller(&mut self) {
        let (stop, rx) = watch::channel(false);
        let config = endpoints::Config {
            apiserver: self.server.as_ref().map(|s| s.addr),
            ..endpoints::Config::default()
        };
        let task = tokio::spawn(endpoints::run_with(
            self.client.clone(),
            endpoints::KubeEndpoints::new(self.client.clone()),
            config,
            stopped(rx),
        ));
        self.controller = Some((stop, task));
    }

    async fn stop_controller(&mut self) {
        if let Some((stop, task)) = self.controller.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }

    async fn shutdown(mut self) {
        self.stop_controller().await;
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn endpoints(&self) -> Api<Endpoints> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn slices(&self) -> Api<EndpointSlice> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// A pod of the `db` identity set: hostname = its name, subdomain `db`, bound to a node.
    async fn create_pod(&self, name: &str) -> Result<()> {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "db"}},
            "spec": {"hostname": name, "subdomain": "db", "nodeName": "node-1",
                "containers": [{"name": "redis", "image": "redis",
                                "ports": [{"name": "redis", "containerPort": 6379}]}]},
        }))?;
        self.pods().create(&PostParams::default(), &pod).await?;
        Ok(())
    }

    /// Plays the kubelet: Running with `ip`, Ready as asked.
    async fn set_status(&self, name: &str, ip: &str, ready: bool) -> Result<()> {
        let now = jiff::Timestamp::now().to_string();
        let status = json!({"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                            "lastTransitionTime": now}]}});
        self.pods()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        Ok(())
    }

    async fn slices_of(&self, service: &str) -> Result<Vec<EndpointSlice>> {
        let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
        Ok(self.slices().list(&lp).await?.items)
    }
}

/// (ip, hostname) of the ready and the not-ready addresses of an Endpoints object.
type Addresses = (Vec<(String, String)>, Vec<(String, String)>);

fn addresses(ep: &Endpoints) -> Addresses {
    let list = |l: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
        let mut v: Vec<(String, String)> = l
            .iter()
            .flatten()
            .map(|a| (a.ip.clone(), a.hostname.clone().unwrap_or_default()))
            .collect();
        v.sort();
        v
    };
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in ep.subsets.iter().flatten() {
        ready.extend(list(&s.addresses));
        not_ready.extend(list(&s.not_ready_addresses));
    }
    (ready, not_ready)
}

/// (address, hostname, ready, terminating) of every endpoint of the service's slices.
fn slice_endpoints(slices: &[EndpointSlice]) -> Vec<(String, String, bool, bool)> {
    let mut v: Vec<_> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            (
                e.addresses.join(","),
                e.hostname.clone().unwrap_or_default(),
                c.ready.unwrap_or(false),
                c.terminating.unwrap_or(false),
            )
        })
        .collect();
    v.sort();
    v
}

fn pair(ip: &str, host: &str) -> (String, String) {
    (ip.to_string(), host.to_string())
}

async fn wait_endpoints(env: &Env, want: Addresses) -> Result<Endpoints> {
    eventually(&format!("endpoints {want:?}"), || async {
        Ok(env
            .endpoints()
            .get_opt("db")
            .await?
            .filter(|ep| addresses(ep) == want))
    })
    .await
}

async fn wait_slices(env: &Env, want: Vec<(String, String, bool, bool)>) -> Result<()> {
    eventually(&format!("slices {want:?}"), || async {
        Ok((slice_endpoints(&env.slices_of("db").await?) == want).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_service_publishes_pod_identities_and_follows_readiness() -> Result<()> {
    // Ref: upstream e2e "should provide DNS for pods for Subdomain" (the endpoints half) and
    // "should create Endpoints and EndpointSlices for Pods matching a Service"
    let env = start().await?;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "db", "labels": {"app": "db"}},
        "spec": {"clusterIP": "None", "selector": {"app": "db"},
                 "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}]},
    }))?;
    env.services().create(&PostParams::default(), &svc).await?;
    env.create_pod("db-0").await?;
    env.create_pod("db-1").await?;

    // No pod has an IP yet: an Endpoints object without subsets and a placeholder slice.
    let ep = wait_endpoints(&env, (vec![], vec![])).await?;
    let labels = ep.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("db"));
    assert_eq!(
        labels
            .get("endpoints.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpoint-controller")
    );
    assert!(labels.contains_key("service.kubernetes.io/headless"));
    eventually("a placeholder slice", || async {
        Ok((env.slices_of("db").await?.len() == 1).then_some(()))
    })
    .await?;

    env.set_status("db-0", "10.42.0.5", true).await?;
    env.set_status("db-1", "10.42.0.6", true).await?;
    let ep = wait_endpoints(
        &env,
        (
            vec![pair("10.42.0.5", "db-0"), pair("10.42.0.6", "db-1")],
            vec![],
        ),
    )
    .await?;
    let subset = &ep.subsets.as_ref().unwrap()[0];
    let port = &subset.ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("redis"), 6379));
    let target = subset.addresses.as_ref().unwrap()[0]
        .target_ref
        .clone()
        .unwrap();
    assert_eq!(
        (target.kind.as_deref(), target.name.as_deref()),
        (Some("Pod"), Some("db-0"))
    );
    wait_slices(
        &env,
        vec![
            ("10.42.0.5".into(), "db-0".into(), true, false),
            ("10.42.0.6".into(), "db-1".into(), true, false),
        ],
    )
    .await?;
    let slices = env.slices_of("db").await?;
    assert_eq!(slices.len(), 1, "the placeholder was reused");
    let slice = &slices[0];
    assert_eq!(slice.address_type, "IPv4");
    assert!(slice.metadata.name.as_deref().unwrap().starts_with("db-"));
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Service", svc_uid(&env).await?.as_str())
    );

    // Count the Endpoints writes from here on: an irrelevant pod change writes nothing, the
    // readiness change after it writes once.
    let modified = Arc::new(Mutex::new((0usize, 0u64)));
    let rv = ep.metadata.resource_version.clone().unwrap_or_default();
    let counter = tokio::spawn(count_modified(env.endpoints(), rv, modified.clone()));
    env.pods()
        .patch(
            "db-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"note": "irrelevant"}}})),
        )
        .await?;
    env.set_status("db-1", "10.42.0.6", false).await?;
    let ep = wait_endpoints(
        &env,
        (
            vec![pair("10.42.0.5", "db-0")],
            vec![pair("10.42.0.6", "db-1")],
        ),
    )
    .await?;
    let seen_rv: u64 = ep.metadata.resource_version.unwrap_or_default().parse()?;
    eventually("the watch to catch up", || async {
        Ok((modified.lock().unwrap().1 >= seen_rv).then_some(()))
    })
    .await?;
    wait_slices(
        &env,
        vec![
            ("10.42.0.5".into(), "db-0".into(), true, false),
            ("10.42.0.6".into(), "db-1".into(), false, false),
        ],
    )
    .await?;
    counter.abort();
    assert_eq!(modified.lock().unwrap().0, 1, "one write for one change");

    // A graceful delete (the pod is bound, so it waits for its node): out of the Endpoints at
    // once, still in the slice as terminating.
    env.pods().delete("db-0", &DeleteParams::default()).await?;
    wait_endpoints(&env, (vec![], vec![pair("10.42.0.6", "db-1")])).await?;
    wait_slices(
        &env,
        vec![
            ("10.42.0.5".into(), "db-0".into(), false, true),
            ("10.42.0.6".into(), "db-1".into(), false, false),
        ],
    )
    .await?;
    env.pods()
        .delete("db-0", &DeleteParams::default().grace_period(0))
        .await?;
    wait_slices(
        &env,
        vec![("10.42.0.6".into(), "db-1".into(), false, false)],
    )
    .await?;

    // The service goes: so do its Endpoints and slices.
    env.services()
        .delete("db", &DeleteParams::default())
        .await?;
    eventually("endpoints gone", || async {
        Ok(env.endpoints().get_opt("db").await?.is_none().then_some(()))
    })
    .await?;
    eventually("slices gone", || async {
        Ok(env.slices_of("db").await?.is_empty().then_some(()))
    })
    .await?;
    env.shutdown().await;
    Ok(())
}

async fn svc_uid(env: &Env) -> Result<String> {
    Ok(env
        .services()
        .get("db")
        .await?
        .metadata
        .uid
        .unwrap_or_default())
}

/// Counts MODIFIED events of the `db` Endpoints after `rv`, with the last resourceVersion seen.
async fn count_modified(api: Api<Endpoints>, rv: String, seen: Arc<Mutex<(usize, u64)>>) {
    let wp = kube::api::WatchParams::default().fields("metadata.name=db");
    let Ok(stream) = api.watch(&wp, &rv).await else {
        return;
    };
    let mut stream = std::pin::pin!(stream);
    while let Some(Ok(e)) = stream.next().await {
        if let kube::api::WatchEvent::Modified(ep) = e {
            let rv = ep.metadata.resource_version.unwrap_or_default();
            let mut s = seen.lock().unwrap();
            s.0 += 1;
            s.1 = rv.parse().unwrap_or(s.1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_service_gets_the_apiserver_address() -> Result<()> {
    let env = start().await?;
    let addr = env.server.as_ref().map(|s| s.addr).unwrap();
    let api: Api<Endpoints> = Api::namespaced(env.client.clone(), "default");
    let ep = eventually("kubernetes endpoints", || async {
        Ok(api.get_opt("kubernetes").await?)
    })
    .await?;
    let subset = &ep.subsets.unwrap()[0];
    assert_eq!(
        subset.addresses.as_ref().unwrap()[0].ip,
        addr.ip().to_string()
    );
    assert_eq!(
        subset.ports.as_ref().unwrap()[0].port,
        i32::from(addr.port())
    );
    let slices: Api<EndpointSlice> = Api::namespaced(env.client.clone(), "default");
    eventually("kubernetes slice", || async {
        Ok(slices.get_opt("kubernetes").await?)
    })
    .await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_endpoints_are_kept_and_ours_without_a_service_are_cleaned_up_on_start() -> Result<()>
{
    // Ref: upstream TestCheckLeftoverEndpoints (restricted to Endpoints the controller made)
    let mut env = start().await?;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "ext"},
        "spec": {"ports": [{"port": 80}]},
    }))?;
    env.services().create(&PostParams::default(), &svc).await?;
    let ep: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}],
    }))?;
    env.endpoints().create(&PostParams::default(), &ep).await?;
    // A selector service created after it is handled: proof the controller has looked.
    let probe: Value = json!({"metadata": {"name": "probe"},
        "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}});
    env.services()
        .create(&PostParams::default(), &serde_json::from_value(probe)?)
        .await?;
    eventually("probe endpoints", || async {
        Ok(env.endpoints().get_opt("probe").await?)
    })
    .await?;
    let kept = env.endpoints().get("ext").await?;
    assert_eq!(addresses(&kept).0, vec![pair("192.0.2.10", "")]);
    assert!(env.slices_of("ext").await?.is_empty());

    // The probe service goes while no controller runs; a hand-made Endpoints without any
    // service sits beside it. On start, only ours is removed.
    env.stop_controller().await;
    env.services()
        .delete("probe", &DeleteParams::default())
        .await?;
    let orphan: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "standalone"},
        "subsets": [{"addresses": [{"ip": "192.0.2.11"}], "ports": [{"port": 80}]}],
    }))?;
    env.endpoints()
        .create(&PostParams::default(), &orphan)
        .await?;
    env.start_controller();
    eventually("leftover endpoints gone", || async {
        Ok(env
            .endpoints()
            .get_opt("probe")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert!(env.endpoints().get_opt("standalone").await?.is_some());
    assert!(env.endpoints().get_opt("ext").await?.is_some());
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_or_edited_endpoints_and_slices_are_put_back() -> Result<()> {
    let env = start().await?;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"selector": {"app": "db"}, "ports": [{"port": 6379, "targetPort": 6379}]},
    }))?;
    env.services().create(&PostParams::default(), &svc).await?;
    env.create_pod("db-0").await?;
    env.set_status("db-0", "10.42.0.5", true).await?;
    let want = (vec![pair("10.42.0.5", "db-0")], vec![]);
    wait_endpoints(&env, want.clone()).await?;
    wait_slices(&env, vec![("10.42.0.5".into(), "db-0".into(), true, false)]).await?;

    env.endpoints()
        .delete("db", &DeleteParams::default())
        .await?;
    wait_endpoints(&env, want.clone()).await?;

    let edit = json!({"subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 1}]}]});
    env.endpoints()
        .patch("db", &PatchParams::default(), &Patch::Merge(&edit))
        .await?;
    wait_endpoints(&env, want).await?;

    let slice = env.slices_of("db").await?.remove(0);
    let name = slice.metadata.name.clone().unwrap_or_default();
    env.slices().delete(&name, &DeleteParams::default()).await?;
    wait_slices(&env, vec![("10.42.0.5".into(), "db-0".into(), true, false)]).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slice_endpoints_carry_the_zone_of_their_node() -> Result<()> {
    let env = start().await?;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
    }))?;
    nodes.create(&PostParams::default(), &node).await?;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"selector": {"app": "db"}, "ports": [{"port": 6379, "targetPort": 6379}]},
    }))?;
    env.services().create(&PostParams::default(), &svc).await?;
    env.create_pod("db-0").await?;
    env.set_status("db-0", "10.42.0.5", true).await?;
    let zone_of = |slices: Vec<EndpointSlice>| {
        slices
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .map(|e| e.zone.clone())
            .collect::<Vec<_>>()
    };
    eventually("zone-a", || async {
        Ok((zone_of(env.slices_of("db").await?) == [Some("zone-a".to_string())]).then_some(()))
    })
    .await?;
    let relabel = json!({"metadata": {"labels": {"topology.kubernetes.io/zone": "zone-b"}}});
    nodes
        .patch("node-1", &PatchParams::default(), &Patch::Merge(&relabel))
        .await?;
    eventually("zone-b", || async {
        Ok((zone_of(env.slices_of("db").await?) == [Some("zone-b".to_string())]).then_some(()))
    })
    .await?;
    env.shutdown().await;
    Ok(())
}
