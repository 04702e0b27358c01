use std::net::{Ipv4Addr, SocketAddrV4};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use super::nft;
use super::plan::{DEFAULT_AFFINITY_TIMEOUT_SECONDS, Protocol, plan};

fn service(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .unwrap()
}

/// A slice of `service` with `ports` ([name, port, protocol]) and `(address, ready)` endpoints.
fn slice(name: &str, service: &str, ports: Value, endpoints: &[(&str, bool)]) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, ready)| json!({"addresses": [ip], "conditions": {"ready": ready}}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap()
}

fn ep(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

fn web() -> Service {
    service(
        "web",
        json!({"clusterIP": "10.43.0.5", "ports": [{"port": 80, "targetPort": 8080}]}),
    )
}

#[test]
fn a_cluster_ip_balances_over_every_ready_endpoint() {
    let slices = [slice(
        "web-abc",
        "web",
        json!([{"port": 8080, "protocol": "TCP"}]),
        &[
            ("10.42.0.7", true),
            ("10.42.0.8", true),
            ("10.42.0.9", false),
        ],
    )];
    let p = plan([&web()], &slices);
    assert_eq!(p.ports.len(), 1);
    let port = &p.ports[0];
    assert_eq!(
        (port.cluster_ip, port.protocol, port.port),
        (Ipv4Addr::new(10, 43, 0, 5), Protocol::Tcp, 80)
    );
    assert_eq!(
        port.endpoints,
        vec![ep("10.42.0.7:8080"), ep("10.42.0.8:8080")]
    );
    assert_eq!(port.affinity_timeout, None);

    let (script, applied) = nft::script(&p, None, "stead0");
    assert!(script.contains("10.43.0.5 . tcp . 80 : goto svc_default_web_tcp_80"));
    assert!(script.contains("numgen random mod 2 vmap { 0 : goto ep_default_web_tcp_80__10-42-0-7_8080, 1 : goto ep_default_web_tcp_80__10-42-0-8_8080 }"));
    assert!(script.contains("dnat to 10.42.0.7:8080"));
    assert!(script.contains("dnat to 10.42.0.8:8080"));
    assert!(!script.contains("10.42.0.9"));
    assert!(script.contains("masquerade"));
    assert!(applied.sets.is_empty());
}

#[test]
fn endpoints_from_several_slices_are_merged_and_deduplicated() {
    let ports = json!([{"port": 8080}]);
    let slices = [
        slice("web-a", "web", ports.clone(), &[("10.42.0.7", true)]),
        slice(
            "web-b",
            "web",
            ports.clone(),
            &[("10.42.0.7", true), ("10.42.0.3", true)],
        ),
        slice("other", "other", ports, &[("10.42.0.99", true)]),
    ];
    let p = plan([&web()], &slices);
    assert_eq!(
        p.ports[0].endpoints,
        vec![ep("10.42.0.3:8080"), ep("10.42.0.7:8080")]
    );
}

// Ref: kube-proxy "services without endpoints are rejected" (REJECT / ICMP unreachable).
#[test]
fn a_service_without_ready_endpoints_is_rejected_not_forwarded() {
    let slices = [slice(
        "web-abc",
        "web",
        json!([{"port": 8080}]),
        &[("10.42.0.7", false)],
    )];
    let p = plan([&web()], &slices);
    assert!(p.ports[0].endpoints.is_empty());
    let (script, applied) = nft::script(&p, None, "stead0");
    assert!(script.contains("add element ip stead no_endpoints { 10.43.0.5 . tcp . 80 }"));
    assert!(!script.contains("svc_default_web"));
    assert!(script.contains("@no_endpoints goto reject_chain"));
    assert!(script.contains("add rule ip stead reject_chain reject"));
    // The node namespace's own addresses (cluster DNS, the kubernetes relay) are never rejected.
    let local = script
        .find("filter_output fib daddr type local accept")
        .unwrap();
    let reject = script.find("filter_output ct state new").unwrap();
    assert!(local < reject);
    assert!(!applied.chains.iter().any(|c| c.starts_with("svc_")));
}

#[test]
fn a_named_target_port_takes_the_number_the_slice_carries() {
    let svc = service(
        "db",
        json!({"clusterIP": "10.43.0.6", "ports": [
            {"name": "sql", "port": 5432, "targetPort": "postgres"},
            {"name": "metrics", "port": 9000, "targetPort": "metrics"},
        ]}),
    );
    let slices = [slice(
        "db-1",
        "db",
        json!([{"name": "sql", "port": 15432}, {"name": "metrics", "port": 19000}]),
        &[("10.42.0.4", true)],
    )];
    let p = plan([&svc], &slices);
    let got: Vec<(u16, Vec<SocketAddrV4>)> = p
        .ports
        .iter()
        .map(|p| (p.port, p.endpoints.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (5432, vec![ep("10.42.0.4:15432")]),
            (9000, vec![ep("10.42.0.4:19000")]),
        ]
    );
    let (script, _) = nft::script(&p, None, "stead0");
    assert!(script.contains("10.43.0.6 . tcp . 5432 : goto svc_default_db_tcp_5432"));
    assert!(script.contains("10.43.0.6 . tcp . 9000 : goto svc_default_db_tcp_9000"));
}

#[test]
fn headless_and_external_name_services_get_no_rules() {
    let headless = service(
        "nginx",
        json!({"clusterIP": "None", "ports": [{"port": 80}]}),
    );
    let external = service(
        "ext",
        json!({"type": "ExternalName", "externalName": "example.invalid", "ports": [{"port": 80}]}),
    );
    let slices = [slice(
        "nginx-1",
        "nginx",
        json!([{"port": 80}]),
        &[("10.42.0.4", true)],
    )];
    let p = plan([&headless, &external], &slices);
    assert!(p.ports.is_empty());
    let (script, _) = nft::script(&p, None, "stead0");
    assert!(!script.contains("add element"));
}

#[test]
fn udp_ports_match_udp_slice_ports_only() {
    let svc = service(
        "dns",
        json!({"clusterIP": "10.43.0.20", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ]}),
    );
    let slices = [slice(
        "dns-1",
        "dns",
        json!([{"name": "dns", "port": 5353, "protocol": "UDP"}]),
        &[("10.42.0.5", true)],
    )];
    let p = plan([&svc], &slices);
    let udp = p
        .ports
        .iter()
        .find(|p| p.protocol == Protocol::Udp)
        .unwrap();
    let tcp = p
        .ports
        .iter()
        .find(|p| p.protocol == Protocol::Tcp)
        .unwrap();
    assert_eq!(udp.endpoints, vec![ep("10.42.0.5:5353")]);
    assert!(tcp.endpoints.is_empty(), "no TCP port in the slice");
    let (script, _) = nft::script(&p, None, "stead0");
    assert!(script.contains("10.43.0.20 . udp . 53 : goto svc_default_dns_udp_53"));
    assert!(script.contains("no_endpoints { 10.43.0.20 . tcp . 53 }"));
}

#[test]
fn client_ip_affinity_remembers_the_client_for_its_timeout() {
    let default_timeout = service(
        "a",
        json!({"clusterIP": "10.43.0.7", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}),
    );
    let short = service(
        "b",
        json!({"clusterIP": "10.43.0.8", "sessionAffinity": "ClientIP",
               "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
               "ports": [{"port": 80}]}),
    );
    let slices = [
        slice(
            "a-1",
            "a",
            json!([{"port": 80}]),
            &[("10.42.0.2", true), ("10.42.0.3", true)],
        ),
        slice("b-1", "b", json!([{"port": 80}]), &[("10.42.0.4", true)]),
    ];
    let p = plan([&default_timeout, &short], &slices);
    assert_eq!(
        p.ports[0].affinity_timeout,
        Some(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
    );
    assert_eq!(p.ports[1].affinity_timeout, Some(60));
    let (script, applied) = nft::script(&p, None, "stead0");
    let set = "aff_default_a_tcp_80__10-42-0-2_80";
    assert!(script.contains(&format!(
        "set {set} {{ type ipv4_addr; flags dynamic, timeout; }}"
    )));
    assert!(script.contains(&format!("add rule ip stead svc_default_a_tcp_80 ip saddr @{set} goto ep_default_a_tcp_80__10-42-0-2_80")));
    assert!(script.contains(&format!("update @{set} {{ ip saddr timeout 10800s }}")));
    assert!(script.contains("update @aff_default_b_tcp_80__10-42-0-4_80 { ip saddr timeout 60s }"));
    assert_eq!(applied.sets.len(), 3);
    // The affinity lookups come before the random pick in the service chain.
    let lookup = script.find("svc_default_a_tcp_80 ip saddr @").unwrap();
    let pick = script.find("svc_default_a_tcp_80 numgen").unwrap();
    assert!(lookup < pick);
}

#[test]
fn loopback_endpoints_are_left_out() {
    let kubernetes = service(
        "kubernetes",
        json!({"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}),
    );
    let slices = [slice(
        "kubernetes",
        "kubernetes",
        json!([{"name": "https", "port": 6443}]),
        &[("127.0.0.1", true)],
    )];
    let p = plan([&kubernetes], &slices);
    assert!(p.ports[0].endpoints.is_empty());
}

#[test]
fn the_first_script_recreates_the_table_and_later_ones_remove_only_what_went_away() {
    let slices = |ips: &[&str]| {
        let eps: Vec<(&str, bool)> = ips.iter().map(|ip| (*ip, true)).collect();
        [slice("web-abc", "web", json!([{"port": 8080}]), &eps)]
    };
    let mut svc = web();
    svc.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());

    let first = plan([&svc], &slices(&["10.42.0.7", "10.42.0.8"]));
    let (script, applied) = nft::script(&first, None, "stead0");
    let add = script.find("add table ip stead").unwrap();
    let delete = script.find("delete table ip stead").unwrap();
    assert!(
        add < delete,
        "add first so the delete cannot fail on a missing table"
    );
    assert!(!script.contains("flush"));

    let second = plan([&svc], &slices(&["10.42.0.7"]));
    let (script, next) = nft::script(&second, Some(&applied), "stead0");
    assert!(!script.contains("delete table"));
    assert!(script.contains("delete chain ip stead ep_default_web_tcp_80__10-42-0-8_8080"));
    assert!(script.contains("delete set ip stead aff_default_web_tcp_80__10-42-0-8_8080"));
    assert!(script.contains("flush chain ip stead svc_default_web_tcp_80"));
    assert!(script.contains("add rule ip stead svc_default_web_tcp_80 numgen random mod 1"));
    // The surviving endpoint's affinity set keeps its clients.
    assert!(!script.contains("flush set ip stead aff_"));
    assert!(!script.contains("delete set ip stead aff_default_web_tcp_80__10-42-0-7_8080"));
    assert!(!script.contains("10.42.0.8:8080"));
    assert_eq!(next.sets.len(), 1);

    let (script, after) = nft::script(&plan([], []), Some(&next), "stead0");
    assert!(script.contains("delete element ip stead services { 10.43.0.5 . tcp . 80 }"));
    assert!(script.contains("delete element ip stead cluster_ips { 10.43.0.5 }"));
    assert!(script.contains("delete chain ip stead svc_default_web_tcp_80"));
    assert_eq!(after.chains.len(), 6, "only the fixed chains remain");
    assert!(after.sets.is_empty());
    assert_eq!(after, nft::script(&plan([], []), None, "stead0").1);
}

#[test]
fn a_partial_update_touches_only_the_service_ports_that_changed() {
    let other = service(
        "other",
        json!({"clusterIP": "10.43.0.9", "ports": [{"port": 53, "protocol": "UDP"}]}),
    );
    let web_slice = |ip: &str| slice("web-abc", "web", json!([{"port": 8080}]), &[(ip, true)]);
    let other_slice = slice(
        "other-1",
        "other",
        json!([{"port": 53, "protocol": "UDP"}]),
        &[("10.42.0.3", true)],
    );
    let first = plan([&web(), &other], [&web_slice("10.42.0.7"), &other_slice]);
    let (_, applied) = nft::script(&first, None, "stead0");

    // Nothing changed: nothing but the no-op `add table`.
    let (script, same) = nft::script(&first, Some(&applied), "stead0");
    assert_eq!(script, "add table ip stead\n");
    assert_eq!(same, applied);

    // One endpoint of one Service moved: the other Service is not in the script.
    let second = plan([&web(), &other], [&web_slice("10.42.0.8"), &other_slice]);
    let (script, _) = nft::script(&second, Some(&applied), "stead0");
    assert!(!script.contains("other"), "{script}");
    assert!(!script.contains("cluster_ips"), "{script}");
    assert!(script.contains("delete chain ip stead ep_default_web_tcp_80__10-42-0-7_8080"));
    assert!(script.contains("chain ep_default_web_tcp_80__10-42-0-8_8080 { }"));
    assert!(script.contains("dnat to 10.42.0.8:8080"));

    // The Service loses its endpoints: from the map to the reject set.
    let third = plan([&web(), &other], [&other_slice]);
    let (script, _) = nft::script(&third, Some(&applied), "stead0");
    assert!(script.contains("delete element ip stead services { 10.43.0.5 . tcp . 80 }"));
    assert!(script.contains("add element ip stead no_endpoints { 10.43.0.5 . tcp . 80 }"));
    assert!(script.contains("delete chain ip stead svc_default_web_tcp_80"));
}

#[test]
fn a_node_port_forwards_like_its_cluster_ip_while_it_has_endpoints() {
    let svc = |node_port: u16| {
        service(
            "web",
            json!({"type": "NodePort", "clusterIP": "10.43.0.5",
                   "ports": [{"port": 80, "targetPort": 8080, "nodePort": node_port}]}),
        )
    };
    let ready = slice(
        "web-abc",
        "web",
        json!([{"port": 8080}]),
        &[("10.42.0.7", true)],
    );
    let first = plan([&svc(30080)], [&ready]);
    assert_eq!(first.ports[0].node_port, Some(30080));
    let (script, applied) = nft::script(&first, None, "stead0");
    assert!(
        script.contains(
            "add element ip stead node_ports { tcp . 30080 : goto svc_default_web_tcp_80 }"
        ),
        "{script}"
    );
    assert!(script.contains("fib daddr type local meta l4proto . th dport vmap @node_ports"));

    // A new node port replaces the old one; losing the endpoints takes it out.
    let (script, moved) = nft::script(&plan([&svc(30081)], [&ready]), Some(&applied), "stead0");
    assert!(script.contains("delete element ip stead node_ports { tcp . 30080 }"));
    assert!(script.contains("add element ip stead node_ports { tcp . 30081 : goto"));
    let (script, _) = nft::script(&plan([&svc(30081)], []), Some(&moved), "stead0");
    assert!(script.contains("delete element ip stead node_ports { tcp . 30081 }"));
    assert!(!script.contains("add element ip stead node_ports"));

    // Two Services claiming one node port (never from the API server): the first keeps it.
    let mut other = svc(30080);
    other.metadata.name = Some("other".into());
    other.spec.as_mut().unwrap().cluster_ip = Some("10.43.0.6".into());
    let both = plan([&svc(30080), &other], [&ready]);
    let claimed: Vec<Option<u16>> = both.ports.iter().map(|p| p.node_port).collect();
    assert_eq!(claimed, [Some(30080), None]);
}
