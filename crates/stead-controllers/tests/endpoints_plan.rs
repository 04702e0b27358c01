//! The endpoints controllers' pure computation and plans, and plans carried out against the
//! stateful fake.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointSubset, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use stead_controllers::endpoints::fake::FakeEndpoints;
use stead_controllers::endpoints::slices::{
    CONTROLLER_NAME, MANAGED_BY, SERVICE_NAME, TRIGGER_TIME, plan_slices,
};
use stead_controllers::endpoints::subsets::desired_subsets;
use stead_controllers::endpoints::{
    EffectError, EndpointsWrite, PodView, ServiceView, Snapshot, execute, plan,
};

const NS: &str = "ns";

fn service(name: &str, spec: Value) -> ServiceView {
    let mut spec = spec;
    // What the API server's defaulting would fill in.
    if spec.get("selector").is_none() {
        spec["selector"] = json!({"app": "db"});
    }
    if spec.get("clusterIP").is_none() {
        spec["clusterIP"] = json!("10.43.0.20");
    }
    if spec.get("ipFamilies").is_none() {
        spec["ipFamilies"] = json!(["IPv4"]);
    }
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "uid": format!("{name}-uid"),
                     "labels": {"team": "a"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec,
    }))
    .expect("valid service");
    ServiceView::from_service(&svc)
}

/// A Running pod labelled `app: db` with `ip`, Ready when `ready`, one container port `redis`.
fn pod(name: &str, ip: &str, ready: bool) -> PodView {
    pod_with(name, ip, ready, |_| {})
}

fn pod_with(name: &str, ip: &str, ready: bool, edit: impl FnOnce(&mut Value)) -> PodView {
    let mut p = json!({
        "metadata": {"name": name, "namespace": NS, "uid": format!("{name}-uid"),
                     "labels": {"app": "db"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "redis", "image": "redis",
                 "ports": [{"name": "redis", "containerPort": 6379}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                                   "lastTransitionTime": "2026-01-01T00:00:05Z"}]},
    });
    edit(&mut p);
    let pod: Pod = serde_json::from_value(p).expect("valid pod");
    PodView::from_pod(&pod)
}

fn ips(list: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>) -> Vec<String> {
    list.iter().flatten().map(|a| a.ip.clone()).collect()
}

/// (name, number) of each port of a subset.
type Ports = Vec<(Option<String>, i32)>;

fn ports(s: &EndpointSubset) -> Ports {
    s.ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone(), p.port))
        .collect()
}

#[test]
fn ready_pods_are_addresses_and_unready_ones_not_ready_addresses() {
    // Ref: upstream TestSyncEndpointsItemsPreexisting / "should add unready pods to notReadyAddresses"
    let svc = service("db", json!({"ports": [{"port": 6379, "targetPort": 6379}]}));
    let pods = [
        pod("db-0", "10.42.0.5", true),
        pod("db-1", "10.42.0.6", false),
    ];
    let subsets = desired_subsets(&svc, &pods);
    assert_eq!(subsets.len(), 1);
    assert_eq!(ips(&subsets[0].addresses), ["10.42.0.5"]);
    assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.42.0.6"]);
    assert_eq!(ports(&subsets[0]), [(None, 6379)]);
    let target = subsets[0].addresses.as_ref().unwrap()[0]
        .target_ref
        .clone()
        .unwrap();
    assert_eq!(
        (
            target.kind.as_deref(),
            target.name.as_deref(),
            target.uid.as_deref()
        ),
        (Some("Pod"), Some("db-0"), Some("db-0-uid"))
    );
    assert_eq!(
        subsets[0].addresses.as_ref().unwrap()[0]
            .node_name
            .as_deref(),
        Some("node-1")
    );
}

#[test]
fn publish_not_ready_addresses_lists_every_pod_as_ready_even_terminating_ones() {
    let svc = service(
        "db",
        json!({"publishNotReadyAddresses": true, "ports": [{"port": 6379}]}),
    );
    let terminating = pod_with("db-2", "10.42.0.7", true, |p| {
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:01:00Z");
    });
    let pods = [
        pod("db-0", "10.42.0.5", true),
        pod("db-1", "10.42.0.6", false),
        terminating,
    ];
    let subsets = desired_subsets(&svc, &pods);
    assert_eq!(
        ips(&subsets[0].addresses),
        ["10.42.0.5", "10.42.0.6", "10.42.0.7"]
    );
    assert!(subsets[0].not_ready_addresses.is_none());
}

#[test]
fn terminating_terminal_and_address_less_pods_stay_out_of_endpoints() {
    let svc = service("db", json!({"ports": [{"port": 6379}]}));
    let pods = [
        pod("db-0", "10.42.0.5", true),
        pod_with("db-1", "10.42.0.6", true, |p| {
            p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:01:00Z");
        }),
        pod_with("db-2", "10.42.0.7", false, |p| {
            p["status"]["phase"] = json!("Failed")
        }),
        pod_with("db-3", "", false, |p| {
            p["status"] = json!({"phase": "Pending"})
        }),
    ];
    let subsets = desired_subsets(&svc, &pods);
    assert_eq!(subsets.len(), 1);
    assert_eq!(ips(&subsets[0].addresses), ["10.42.0.5"]);
    assert!(subsets[0].not_ready_addresses.is_none());
}

#[test]
fn named_target_ports_resolve_per_pod_and_pods_without_the_name_are_skipped_for_that_port() {
    // Ref: upstream TestSyncEndpointsItemsWithLabels / "should serve multiport endpoints from pods"
    let svc = service(
        "db",
        json!({"ports": [
            {"name": "client", "port": 6379, "targetPort": "redis", "appProtocol": "redis"},
            {"name": "metrics", "port": 9121, "targetPort": 9121}]}),
    );
    let other_port = pod_with("db-1", "10.42.0.6", true, |p| {
        p["spec"]["containers"][0]["ports"] = json!([{"name": "redis", "containerPort": 7000}]);
    });
    let no_name = pod_with("db-2", "10.42.0.7", true, |p| {
        p["spec"]["containers"][0]["ports"] = json!([]);
    });
    let pods = [pod("db-0", "10.42.0.5", true), other_port, no_name];
    let subsets = desired_subsets(&svc, &pods);
    let summary: Vec<(Vec<String>, Ports)> = subsets
        .iter()
        .map(|s| (ips(&s.addresses), ports(s)))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                vec!["10.42.0.5".to_string()],
                vec![(Some("client".into()), 6379)]
            ),
            (
                vec![
                    "10.42.0.5".to_string(),
                    "10.42.0.6".to_string(),
                    "10.42.0.7".to_string()
                ],
                vec![(Some("metrics".into()), 9121)]
            ),
            (
                vec!["10.42.0.6".to_string()],
                vec![(Some("client".into()), 7000)]
            ),
        ]
    );
    let app = subsets[0].ports.as_ref().unwrap()[0].app_protocol.clone();
    assert_eq!(app.as_deref(), Some("redis"));
}

#[test]
fn pods_sharing_all_ports_share_one_subset_with_every_port() {
    let svc = service(
        "db",
        json!({"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 1}]}),
    );
    let pods = [
        pod("db-1", "10.42.0.6", true),
        pod("db-0", "10.42.0.5", true),
    ];
    let subsets = desired_subsets(&svc, &pods);
    assert_eq!(subsets.len(), 1);
    assert_eq!(
        ports(&subsets[0]),
        [(Some("a".into()), 1), (Some("b".into()), 2)]
    );
    assert_eq!(ips(&subsets[0].addresses), ["10.42.0.5", "10.42.0.6"]);
}

#[test]
fn hostname_is_published_only_when_the_subdomain_names_the_service() {
    // Ref: upstream TestPodToEndpointAddressForService / ShouldSetHostname
    let svc = service("db", json!({"clusterIP": "None"}));
    let identity = |name: &str, ip: &str, subdomain: &str| {
        pod_with(name, ip, true, |p| {
            p["spec"]["hostname"] = json!(name);
            p["spec"]["subdomain"] = json!(subdomain);
        })
    };
    let pods = [
        identity("db-0", "10.42.0.5", "db"),
        identity("db-1", "10.42.0.6", "other"),
    ];
    let subsets = desired_subsets(&svc, &pods);
    assert_eq!(
        subsets.len(),
        1,
        "headless without ports: one port-less subset"
    );
    assert!(subsets[0].ports.is_none());
    let hostnames: Vec<Option<String>> = subsets[0]
        .addresses
        .iter()
        .flatten()
        .map(|a| a.hostname.clone())
        .collect();
    assert_eq!(hostnames, [Some("db-0".to_string()), None]);

    let refs: Vec<&PodView> = pods.iter().collect();
    let plan = plan_slices(&svc, &refs, &[], None);
    let slice = plan
        .create
        .iter()
        .find(|s| s.address_type == "IPv4")
        .unwrap();
    let hostnames: Vec<Option<String>> =
        slice.endpoints.iter().map(|e| e.hostname.clone()).collect();
    assert_eq!(hostnames, [Some("db-0".to_string()), None]);
}

#[test]
fn a_service_without_ports_gets_no_endpoints_unless_headless() {
    let svc = service("db", json!({"clusterIP": "10.43.0.20"}));
    assert!(desired_subsets(&svc, &[pod("db-0", "10.42.0.5", true)]).is_empty());
}

#[test]
fn the_order_of_pods_does_not_change_the_result() {
    let svc = service(
        "db",
        json!({"ports": [{"name": "client", "port": 6379, "targetPort": "redis"}, {"name": "m", "port": 1}]}),
    );
    let mut pods: Vec<PodView> = (0..20)
        .map(|i| {
            pod(
                &format!("db-{i}"),
                &format!("10.42.0.{}", 100 - i),
                i % 3 != 0,
            )
        })
        .collect();
    let a = desired_subsets(&svc, &pods);
    pods.reverse();
    pods.swap(3, 11);
    assert_eq!(desired_subsets(&svc, &pods), a);
    let refs: Vec<&PodView> = pods.iter().collect();
    let slices_a = plan_slices(&svc, &refs, &[], None);
    let refs_rev: Vec<&PodView> = pods.iter().rev().collect();
    assert_eq!(plan_slices(&svc, &refs_rev, &[], None), slices_a);
}

#[test]
fn slice_endpoints_carry_ready_serving_and_terminating() {
    // Ref: upstream TestPodToEndpoint (terminating endpoints are published, not ready)
    let svc = service("db", json!({"ports": [{"port": 6379}]}));
    let pods = [
        pod("db-0", "10.42.0.5", true),
        pod("db-1", "10.42.0.6", false),
        pod_with("db-2", "10.42.0.7", true, |p| {
            p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:01:00Z");
        }),
    ];
    let refs: Vec<&PodView> = pods.iter().collect();
    let plan = plan_slices(&svc, &refs, &[], None);
    assert_eq!(
        plan.create.len(),
        1,
        "one IPv4 slice (ipFamilies from the cluster IP)"
    );
    let slice = &plan.create[0];
    let conditions: Vec<(String, bool, bool, bool)> = slice
        .endpoints
        .iter()
        .map(|e| {
            let c = e.conditions.clone().unwrap();
            (
                e.addresses[0].clone(),
                c.ready.unwrap(),
                c.serving.unwrap(),
                c.terminating.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [
            ("10.42.0.5".into(), true, true, false),
            ("10.42.0.6".into(), false, false, false),
            ("10.42.0.7".into(), false, true, true),
        ]
    );
    let labels = slice.metadata.labels.clone().unwrap();
    assert_eq!(labels.get(SERVICE_NAME).map(String::as_str), Some("db"));
    assert_eq!(
        labels.get(MANAGED_BY).map(String::as_str),
        Some(CONTROLLER_NAME)
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("db-"));
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Service", "db-uid", Some(true))
    );
}

fn stored(plan: &stead_controllers::endpoints::SlicePlan) -> Vec<EndpointSlice> {
    plan.create
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut s = s.clone();
            s.metadata.name = Some(format!("db-{i}"));
            s.metadata.resource_version = Some("1".into());
            s
        })
        .collect()
}

#[test]
fn more_than_a_hundred_endpoints_split_into_slices_and_a_change_touches_one() {
    // Ref: upstream TestReconcileManyPods / TestReconcileEndpointSlicesSomePreexisting
    let svc = service("db", json!({"ports": [{"port": 6379}]}));
    let pods: Vec<PodView> = (0..250)
        .map(|i| {
            pod(
                &format!("db-{i}"),
                &format!("10.42.{}.{}", i / 200, i % 200),
                true,
            )
        })
        .collect();
    let refs: Vec<&PodView> = pods.iter().collect();
    let first = plan_slices(&svc, &refs, &[], None);
    let sizes: Vec<usize> = first.create.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let existing = stored(&first);
    let existing_refs: Vec<&EndpointSlice> = existing.iter().collect();
    assert!(plan_slices(&svc, &refs, &existing_refs, None).is_empty());

    // One pod turns unready: only the slice holding it is rewritten.
    let mut changed = pods.clone();
    changed[120].ready = false;
    let refs: Vec<&PodView> = changed.iter().collect();
    let p = plan_slices(&svc, &refs, &existing_refs, None);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].endpoints.len(), 100);

    // A new pod goes into the slice with room rather than a new slice.
    let mut more = pods.clone();
    more.push(pod("db-new", "10.42.9.9", true));
    let refs: Vec<&PodView> = more.iter().collect();
    let p = plan_slices(&svc, &refs, &existing_refs, None);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].metadata.name.as_deref(), Some("db-2"));
    assert_eq!(p.update[0].endpoints.len(), 51);
}

#[test]
fn a_service_without_endpoints_keeps_one_placeholder_slice() {
    let svc = service("db", json!({"ports": [{"port": 6379}]}));
    let p = plan_slices(&svc, &[], &[], None);
    assert_eq!(p.create.len(), 1);
    assert!(p.create[0].endpoints.is_empty());
    let existing = stored(&p);
    let refs: Vec<&EndpointSlice> = existing.iter().collect();
    assert!(plan_slices(&svc, &[], &refs, None).is_empty());

    // The first pod rewrites the placeholder instead of creating a second slice.
    let pods = [pod("db-0", "10.42.0.5", true)];
    let pod_refs: Vec<&PodView> = pods.iter().collect();
    let p = plan_slices(&svc, &pod_refs, &refs, None);
    assert!(p.create.is_empty() && p.delete.is_empty(), "{p:?}");
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].metadata.name.as_deref(), Some("db-0"));
    assert_eq!(p.update[0].endpoints.len(), 1);
}

#[test]
fn a_port_change_rewrites_the_slice_instead_of_replacing_it() {
    let pods = [pod("db-0", "10.42.0.5", true)];
    let refs: Vec<&PodView> = pods.iter().collect();
    let before = service("db", json!({"ports": [{"port": 6379}]}));
    let existing = stored(&plan_slices(&before, &refs, &[], None));
    let existing_refs: Vec<&EndpointSlice> = existing.iter().collect();
    let after = service("db", json!({"ports": [{"port": 6380}]}));
    let p = plan_slices(&after, &refs, &existing_refs, None);
    assert!(p.create.is_empty() && p.delete.is_empty(), "{p:?}");
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].ports.as_ref().unwrap()[0].port, Some(6380));
}

#[test]
fn ipv6_pods_publish_ipv6_addresses_per_the_service_families() {
    let dual = |name: &str, v4: &str, v6: &str| {
        pod_with(name, v4, true, |p| {
            p["status"]["podIPs"] = json!([{"ip": v4}, {"ip": v6}]);
        })
    };
    let pods = [
        dual("db-0", "10.42.0.5", "fd00::5"),
        dual("db-1", "10.42.0.6", "fd00::6"),
    ];
    let v6 = service(
        "db",
        json!({"ipFamilies": ["IPv6"], "clusterIP": "fd00:43::10", "ports": [{"port": 80}]}),
    );
    assert_eq!(
        ips(&desired_subsets(&v6, &pods)[0].addresses),
        ["fd00::5", "fd00::6"]
    );
    let both = service(
        "db",
        json!({"ipFamilies": ["IPv4", "IPv6"], "clusterIP": "None", "ports": [{"port": 80}]}),
    );
    let refs: Vec<&PodView> = pods.iter().collect();
    let p = plan_slices(&both, &refs, &[], None);
    let by_type: Vec<(String, Vec<String>)> = p
        .create
        .iter()
        .map(|s| {
            (
                s.address_type.clone(),
                s.endpoints
                    .iter()
                    .flat_map(|e| e.addresses.clone())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        by_type,
        [
            (
                "IPv4".to_string(),
                vec!["10.42.0.5".to_string(), "10.42.0.6".into()]
            ),
            (
                "IPv6".to_string(),
                vec!["fd00::5".to_string(), "fd00::6".into()]
            ),
        ]
    );
    // An IPv4-only service does not publish the IPv6 addresses.
    let v4 = service(
        "db",
        json!({"ipFamilies": ["IPv4"], "ports": [{"port": 80}]}),
    );
    assert_eq!(
        ips(&desired_subsets(&v4, &pods)[0].addresses),
        ["10.42.0.5", "10.42.0.6"]
    );
}

fn snapshot(fake: &FakeEndpoints, svc: Option<&ServiceView>, pods: &[PodView]) -> Snapshot {
    Snapshot {
        namespace: NS.into(),
        name: "db".into(),
        service: svc.cloned(),
        pods: pods.iter().cloned().map(Arc::new).collect(),
        endpoints: fake.endpoints(NS, "db").map(Arc::new),
        slices: fake.slices(NS).into_iter().map(Arc::new).collect(),
        trigger: Some(jiff::Timestamp::from_second(1_767_225_605).unwrap()),
        apiserver: None,
    }
}

#[tokio::test]
async fn plans_create_then_settle_then_follow_readiness_then_delete() {
    let fake = FakeEndpoints::default();
    let svc = service(
        "db",
        json!({"clusterIP": "None", "ports": [{"port": 6379}]}),
    );
    let mut pods = vec![
        pod("db-0", "10.42.0.5", true),
        pod("db-1", "10.42.0.6", true),
    ];

    let p = plan(&snapshot(&fake, Some(&svc), &pods));
    assert!(matches!(p.endpoints, Some(EndpointsWrite::Create(_))));
    let done = execute(&fake, NS, "db", p).await;
    assert_eq!(done.error, None);
    assert_eq!(done.written.len(), 2, "the Endpoints and one slice");
    let ep = fake.endpoints(NS, "db").expect("created");
    let labels = ep.metadata.labels.clone().unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        labels
            .get("service.kubernetes.io/headless")
            .map(String::as_str),
        Some("")
    );
    assert_eq!(
        labels
            .get("endpoints.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpoint-controller")
    );
    assert!(ep.metadata.annotations.unwrap().contains_key(TRIGGER_TIME));

    // Nothing changed: nothing to write, even with a new trigger time.
    let writes = fake.writes();
    assert!(plan(&snapshot(&fake, Some(&svc), &pods)).is_empty());
    assert_eq!(fake.writes(), writes);

    // db-1 turns unready: an update of each.
    pods[1].ready = false;
    let p = plan(&snapshot(&fake, Some(&svc), &pods));
    assert!(matches!(p.endpoints, Some(EndpointsWrite::Update(_))));
    assert_eq!((p.slices.create.len(), p.slices.update.len()), (0, 1));
    execute(&fake, NS, "db", p).await;
    let ep = fake.endpoints(NS, "db").unwrap();
    let subset = &ep.subsets.unwrap()[0];
    assert_eq!(ips(&subset.addresses), ["10.42.0.5"]);
    assert_eq!(ips(&subset.not_ready_addresses), ["10.42.0.6"]);
    assert!(plan(&snapshot(&fake, Some(&svc), &pods)).is_empty());

    // The service is deleted: the Endpoints and our slices go.
    let p = plan(&snapshot(&fake, None, &[]));
    assert_eq!(p.endpoints, Some(EndpointsWrite::Delete));
    assert_eq!(p.slices.delete.len(), 1);
    execute(&fake, NS, "db", p).await;
    assert!(fake.endpoints(NS, "db").is_none());
    assert!(fake.slices(NS).is_empty());
}

#[tokio::test]
async fn a_failed_write_is_reported_and_the_other_writes_still_happen() {
    let fake = FakeEndpoints::default();
    fake.fail("create_endpoints", 0, EffectError::Other("boom".into()));
    let svc = service("db", json!({"ports": [{"port": 6379}]}));
    let pods = [pod("db-0", "10.42.0.5", true)];
    let done = execute(&fake, NS, "db", plan(&snapshot(&fake, Some(&svc), &pods))).await;
    assert_eq!(done.error, Some(EffectError::Other("boom".into())));
    assert_eq!(fake.slices(NS).len(), 1, "the slice was still created");
    fake.heal();
    let p = plan(&snapshot(&fake, Some(&svc), &pods));
    assert!(matches!(p.endpoints, Some(EndpointsWrite::Create(_))));
    assert!(p.slices.is_empty());
    assert_eq!(execute(&fake, NS, "db", p).await.error, None);
}

#[tokio::test]
async fn services_without_selector_are_left_alone_but_the_kubernetes_service_gets_the_apiserver() {
    let fake = FakeEndpoints::default();
    let mut manual = service("db", json!({"ports": [{"port": 6379}]}));
    manual.selector = None;
    assert!(
        plan(&snapshot(
            &fake,
            Some(&manual),
            &[pod("db-0", "10.42.0.5", true)]
        ))
        .is_empty()
    );

    let kubernetes: Service = serde_json::from_value(json!({
        "metadata": {"name": "kubernetes", "namespace": "default", "uid": "k"},
        "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
    }))
    .unwrap();
    let snap = |fake: &FakeEndpoints| Snapshot {
        namespace: "default".into(),
        name: "kubernetes".into(),
        service: Some(ServiceView::from_service(&kubernetes)),
        pods: Vec::new(),
        endpoints: fake.endpoints("default", "kubernetes").map(Arc::new),
        slices: fake.slices("default").into_iter().map(Arc::new).collect(),
        trigger: None,
        apiserver: Some("10.0.2.15:6443".parse().unwrap()),
    };
    let done = execute(&fake, "default", "kubernetes", plan(&snap(&fake))).await;
    assert_eq!(done.error, None);
    let ep = fake.endpoints("default", "kubernetes").unwrap();
    let subset = &ep.subsets.unwrap()[0];
    assert_eq!(ips(&subset.addresses), ["10.0.2.15"]);
    assert_eq!(ports(subset), [(Some("https".into()), 6443)]);
    let slices = fake.slices("default");
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0].metadata.name.as_deref(), Some("kubernetes"));
    assert_eq!(slices[0].endpoints[0].addresses, ["10.0.2.15"]);
    assert!(plan(&snap(&fake)).is_empty());
}

#[tokio::test]
async fn over_a_thousand_addresses_are_cut_marked_and_then_left_alone() {
    // Ref: upstream TestTruncateEndpoints / capacityAnnotationSetCorrectly
    let fake = FakeEndpoints::default();
    let svc = service(
        "db",
        json!({"ports": [{"name": "web", "port": 80}, {"name": "m", "port": 81, "targetPort": "redis"}]}),
    );
    let pods: Vec<PodView> = (0..1100)
        .map(|i| {
            pod_with(
                &format!("db-{i}"),
                &format!("10.42.{}.{}", i / 200, i % 200),
                true,
                |p| {
                    if i >= 600 {
                        p["spec"]["containers"][0]["ports"] = json!([]);
                    }
                },
            )
        })
        .collect();
    let done = execute(&fake, NS, "db", plan(&snapshot(&fake, Some(&svc), &pods))).await;
    assert_eq!(done.error, None);
    let ep = fake.endpoints(NS, "db").unwrap();
    let total: usize = ep
        .subsets
        .iter()
        .flatten()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    assert_eq!(total, 1000);
    assert_eq!(
        ep.metadata
            .annotations
            .unwrap()
            .get("endpoints.kubernetes.io/over-capacity")
            .map(String::as_str),
        Some("truncated")
    );
    assert!(
        plan(&snapshot(&fake, Some(&svc), &pods))
            .endpoints
            .is_none()
    );
    assert_eq!(
        fake.slices(NS).len(),
        11,
        "slices are not capped: 1100 / 100"
    );
}
