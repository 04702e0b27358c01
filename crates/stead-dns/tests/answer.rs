//! The pure answering function against snapshots built from Service and EndpointSlice objects:
//! every record shape of the Kubernetes DNS specification, no sockets.
// Ref: https://github.com/kubernetes/dns/blob/master/docs/specification.md

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use stead_dns::{Answer, Response, Snapshot, answer};

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn port(name: &str, number: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: number,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn cluster_ip(ns: &str, name: &str, ip: &str, ports: Vec<ServicePort>) -> Arc<Service> {
    Arc::new(Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.into()),
            cluster_ips: Some(vec![ip.into()]),
            ports: Some(ports),
            ..Default::default()
        }),
        status: None,
    })
}

fn headless(ns: &str, name: &str, publish_not_ready: bool) -> Arc<Service> {
    Arc::new(Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            cluster_ips: Some(vec!["None".into()]),
            ports: Some(vec![port("web", 80)]),
            publish_not_ready_addresses: Some(publish_not_ready),
            ..Default::default()
        }),
        status: None,
    })
}

fn external(ns: &str, name: &str, target: &str) -> Arc<Service> {
    Arc::new(Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(target.into()),
            ..Default::default()
        }),
        status: None,
    })
}

/// `(address, hostname, ready)`.
type Ep<'a> = (&'a str, Option<&'a str>, Option<bool>);

fn slice(ns: &str, svc: &str, name: &str, eps: &[Ep<'_>]) -> Arc<EndpointSlice> {
    let mut m = meta(ns, name);
    m.labels = Some(BTreeMap::from([(
        "kubernetes.io/service-name".to_string(),
        svc.to_string(),
    )]));
    let family = match eps.first().map(|e| e.0.contains(':')) {
        Some(true) => "IPv6",
        _ => "IPv4",
    };
    Arc::new(EndpointSlice {
        metadata: m,
        address_type: family.into(),
        endpoints: eps
            .iter()
            .map(|(addr, host, ready)| Endpoint {
                addresses: vec![addr.to_string()],
                hostname: host.map(str::to_string),
                conditions: Some(EndpointConditions {
                    ready: *ready,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("web".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    })
}

/// A cluster with one of each kind of service in `default`.
fn world() -> Snapshot {
    let services = vec![
        cluster_ip(
            "default",
            "kubernetes",
            "10.43.0.1",
            vec![port("https", 443)],
        ),
        cluster_ip(
            "default",
            "api",
            "10.43.0.20",
            vec![port("http", 80), port("", 81)],
        ),
        headless("default", "nginx", false),
        headless("default", "loose", true),
        headless("default", "empty", false),
        external("default", "search", "www.example.com"),
        external("default", "alias", "api.default.svc.cluster.local"),
    ];
    let slices = vec![
        slice(
            "default",
            "nginx",
            "nginx-abc",
            &[
                ("10.42.0.5", Some("web-0"), Some(true)),
                ("10.42.0.6", Some("web-1"), Some(true)),
                ("10.42.0.7", Some("web-2"), Some(false)),
                ("10.42.0.8", None, None),
            ],
        ),
        slice(
            "default",
            "loose",
            "loose-abc",
            &[
                ("10.42.1.5", Some("db-0"), Some(true)),
                ("10.42.1.6", Some("db-1"), Some(false)),
            ],
        ),
        slice(
            "default",
            "empty",
            "empty-abc",
            &[("10.42.2.5", Some("x-0"), Some(false))],
        ),
        // A slice whose service does not exist contributes nothing.
        slice(
            "default",
            "ghost",
            "ghost-abc",
            &[("10.42.3.5", None, None)],
        ),
    ];
    Snapshot::build("cluster.local", 7, &services, &slices).expect("snapshot")
}

fn ask(snapshot: &Snapshot, name: &str, qtype: RecordType) -> Response {
    let query = Query::query(Name::from_ascii(name).expect("name"), qtype);
    match answer(snapshot, &query) {
        Answer::Local(r) => r,
        Answer::Forward => panic!("{name} {qtype}: forwarded"),
    }
}

fn addresses(records: &[Record]) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = list.iter().map(|s| s.parse().expect("ip")).collect();
    v.sort();
    v
}

fn assert_negative(r: &Response, code: ResponseCode) {
    assert_eq!(r.code, code);
    assert!(r.answers.is_empty(), "{:?}", r.answers);
    assert_eq!(r.authority.len(), 1);
    let RData::SOA(soa) = &r.authority[0].data else {
        panic!("authority is not an SOA: {:?}", r.authority)
    };
    assert_eq!(soa.minimum, 5);
    assert_eq!(r.authority[0].ttl, 5);
    assert_eq!(
        r.authority[0].name,
        Name::from_ascii("cluster.local.").unwrap()
    );
}

#[test]
fn cluster_ip_service_resolves_to_its_cluster_ip() {
    // Ref: spec 2.3.1
    let r = ask(
        &world(),
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(r.code, ResponseCode::NoError);
    assert_eq!(addresses(&r.answers), ips(&["10.43.0.1"]));
    assert!(r.answers.iter().all(|a| a.ttl == 5));
}

#[test]
fn cluster_ip_service_has_no_endpoint_records() {
    let s = world();
    let r = ask(
        &s,
        "kubernetes.default.svc.cluster.local.",
        RecordType::AAAA,
    );
    assert_negative(&r, ResponseCode::NoError);
}

#[test]
fn endpoints_of_a_cluster_ip_service_resolve_by_hostname_like_coredns() {
    // A StatefulSet whose serviceName is a ClusterIP service (seed 001's redis-sts): CoreDNS
    // answers <hostname>.<service> for its endpoints; the service name stays its cluster IP.
    let services = vec![cluster_ip("default", "redis-svc", "10.43.0.30", vec![])];
    let slices = vec![slice(
        "default",
        "redis-svc",
        "redis-svc-abc",
        &[
            ("10.42.0.5", Some("redis-sts-0"), Some(true)),
            ("10.42.0.6", Some("redis-sts-1"), Some(false)),
        ],
    )];
    let s = Snapshot::build("cluster.local", 1, &services, &slices).unwrap();
    let pod = ask(
        &s,
        "redis-sts-0.redis-svc.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(addresses(&pod.answers), ips(&["10.42.0.5"]));
    let not_ready = ask(
        &s,
        "redis-sts-1.redis-svc.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_negative(&not_ready, ResponseCode::NXDomain);
    let svc = ask(&s, "redis-svc.default.svc.cluster.local.", RecordType::A);
    assert_eq!(addresses(&svc.answers), ips(&["10.43.0.30"]));
}

#[test]
fn headless_service_resolves_to_every_ready_endpoint() {
    // Ref: spec 2.4.1; an endpoint with no ready condition counts as ready (API: nil = true)
    let r = ask(&world(), "nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        addresses(&r.answers),
        ips(&["10.42.0.5", "10.42.0.6", "10.42.0.8"])
    );
}

#[test]
fn not_ready_endpoints_are_hidden_unless_the_service_publishes_them() {
    let s = world();
    let hidden = ask(&s, "web-2.nginx.default.svc.cluster.local.", RecordType::A);
    assert_negative(&hidden, ResponseCode::NXDomain);
    let all = ask(&s, "loose.default.svc.cluster.local.", RecordType::A);
    assert_eq!(addresses(&all.answers), ips(&["10.42.1.5", "10.42.1.6"]));
    let db1 = ask(&s, "db-1.loose.default.svc.cluster.local.", RecordType::A);
    assert_eq!(addresses(&db1.answers), ips(&["10.42.1.6"]));
}

#[test]
fn headless_service_without_ready_endpoints_is_nxdomain() {
    // Ref: spec 2.4.1 "If there are no ready endpoints for the headless Service, the answer should be NXDOMAIN"
    let r = ask(&world(), "empty.default.svc.cluster.local.", RecordType::A);
    assert_negative(&r, ResponseCode::NXDomain);
}

#[test]
fn endpoint_hostnames_resolve_to_their_pod() {
    // Ref: spec 2.4.1 <hostname>.<service>.<ns>.svc.<zone>
    let r = ask(
        &world(),
        "web-0.nginx.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(addresses(&r.answers), ips(&["10.42.0.5"]));
}

#[test]
fn endpoints_without_hostname_resolve_by_dashed_address() {
    let s = world();
    let r = ask(
        &s,
        "10-42-0-8.nginx.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(addresses(&r.answers), ips(&["10.42.0.8"]));
    // An endpoint with a hostname is named only by it.
    let r = ask(
        &s,
        "10-42-0-5.nginx.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_negative(&r, ResponseCode::NXDomain);
}

#[test]
fn srv_of_a_cluster_ip_service_points_at_the_service_with_its_address() {
    // Ref: spec 2.3.2
    let r = ask(
        &world(),
        "_https._tcp.kubernetes.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(r.answers.len(), 1);
    let RData::SRV(srv) = &r.answers[0].data else {
        panic!("not SRV")
    };
    assert_eq!(srv.port, 443);
    assert_eq!(
        srv.target,
        Name::from_ascii("kubernetes.default.svc.cluster.local.").unwrap()
    );
    assert_eq!(addresses(&r.additionals), ips(&["10.43.0.1"]));
}

#[test]
fn unnamed_ports_have_no_srv_record() {
    let s = world();
    let named = ask(
        &s,
        "_http._tcp.api.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(named.answers.len(), 1);
    let other = ask(
        &s,
        "_81._tcp.api.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_negative(&other, ResponseCode::NXDomain);
}

#[test]
fn srv_of_a_headless_service_has_one_record_per_ready_endpoint() {
    // Ref: spec 2.4.2 (N ready endpoints × M named ports)
    let r = ask(
        &world(),
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    );
    let mut targets: Vec<(String, u16)> = r
        .answers
        .iter()
        .map(|a| match &a.data {
            RData::SRV(srv) => (srv.target.to_ascii(), srv.port),
            other => panic!("not SRV: {other:?}"),
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            (
                "10-42-0-8.nginx.default.svc.cluster.local.".to_string(),
                8080
            ),
            ("web-0.nginx.default.svc.cluster.local.".to_string(), 8080),
            ("web-1.nginx.default.svc.cluster.local.".to_string(), 8080),
        ]
    );
    assert_eq!(
        addresses(&r.additionals),
        ips(&["10.42.0.5", "10.42.0.6", "10.42.0.8"])
    );
    let names: Vec<String> = r.additionals.iter().map(|a| a.name.to_ascii()).collect();
    assert!(names.contains(&"web-0.nginx.default.svc.cluster.local.".to_string()));
}

#[test]
fn ptr_of_a_cluster_ip_names_the_service() {
    // Ref: spec 2.3.3
    let r = ask(&world(), "1.0.43.10.in-addr.arpa.", RecordType::PTR);
    let RData::PTR(ptr) = &r.answers[0].data else {
        panic!("not PTR")
    };
    assert_eq!(ptr.0.to_ascii(), "kubernetes.default.svc.cluster.local.");
}

#[test]
fn ptr_of_an_endpoint_address_names_the_pod() {
    // Ref: spec 2.4.3
    let s = world();
    let r = ask(&s, "5.0.42.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(r.answers.len(), 1);
    let RData::PTR(ptr) = &r.answers[0].data else {
        panic!("not PTR")
    };
    assert_eq!(ptr.0.to_ascii(), "web-0.nginx.default.svc.cluster.local.");
    // A not-ready endpoint has no PTR: the reverse name is not ours, upstream's.
    let query = Query::query(
        Name::from_ascii("7.0.42.10.in-addr.arpa.").unwrap(),
        RecordType::PTR,
    );
    assert_eq!(answer(&s, &query), Answer::Forward);
}

#[test]
fn external_name_service_is_a_cname() {
    // Ref: spec 2.5
    let r = ask(&world(), "search.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.code, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 1);
    let RData::CNAME(target) = &r.answers[0].data else {
        panic!("not CNAME: {:?}", r.answers)
    };
    assert_eq!(target.0.to_ascii(), "www.example.com.");
    // Stub resolvers do not follow aliases: the server resolves the target upstream.
    assert_eq!(r.chase, Some(Name::from_ascii("www.example.com.").unwrap()));
}

#[test]
fn cname_to_a_cluster_name_is_followed() {
    let r = ask(&world(), "alias.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.answers.len(), 2);
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(addresses(&r.answers), ips(&["10.43.0.20"]));
    assert_eq!(r.chase, None);
}

#[test]
fn pod_names_resolve_to_the_address_they_spell() {
    // Ref: spec 2.6 (CoreDNS `pods insecure`)
    let s = world();
    let r = ask(&s, "10-42-0-99.default.pod.cluster.local.", RecordType::A);
    assert_eq!(addresses(&r.answers), ips(&["10.42.0.99"]));
    assert_eq!(
        r.answers[0].name.to_ascii(),
        "10-42-0-99.default.pod.cluster.local."
    );
    let v6 = ask(
        &s,
        "fd00-0-0-0-0-0-0-5.other.pod.cluster.local.",
        RecordType::AAAA,
    );
    assert_eq!(addresses(&v6.answers), ips(&["fd00::5"]));
    let nodata = ask(
        &s,
        "10-42-0-99.default.pod.cluster.local.",
        RecordType::AAAA,
    );
    assert_negative(&nodata, ResponseCode::NoError);
    let bad = ask(&s, "not-an-ip.default.pod.cluster.local.", RecordType::A);
    assert_negative(&bad, ResponseCode::NXDomain);
    let interior = ask(&s, "default.pod.cluster.local.", RecordType::A);
    assert_negative(&interior, ResponseCode::NoError);
}

#[test]
fn unknown_names_in_the_domain_are_nxdomain_with_the_soa() {
    let s = world();
    for name in [
        "nope.default.svc.cluster.local.",
        "web-9.nginx.default.svc.cluster.local.",
        "nginx.other.svc.cluster.local.",
        "something.cluster.local.",
        // What a pod's search list produces for an already-qualified name.
        "web-0.nginx.default.svc.cluster.local.default.svc.cluster.local.",
    ] {
        assert_negative(&ask(&s, name, RecordType::A), ResponseCode::NXDomain);
    }
}

#[test]
fn existing_names_without_the_asked_type_are_nodata_with_the_soa() {
    let s = world();
    assert_negative(
        &ask(
            &s,
            "web-0.nginx.default.svc.cluster.local.",
            RecordType::AAAA,
        ),
        ResponseCode::NoError,
    );
    assert_negative(
        &ask(&s, "kubernetes.default.svc.cluster.local.", RecordType::MX),
        ResponseCode::NoError,
    );
    // Empty non-terminals exist.
    for name in ["default.svc.cluster.local.", "svc.cluster.local."] {
        assert_negative(&ask(&s, name, RecordType::A), ResponseCode::NoError);
    }
}

#[test]
fn names_compare_case_insensitively_and_answer_as_asked() {
    let r = ask(
        &world(),
        "WEB-0.Nginx.DEFAULT.svc.Cluster.Local.",
        RecordType::A,
    );
    assert_eq!(addresses(&r.answers), ips(&["10.42.0.5"]));
    assert_eq!(
        r.answers[0].name.to_ascii(),
        "WEB-0.Nginx.DEFAULT.svc.Cluster.Local."
    );
}

#[test]
fn zone_apex_answers_soa_and_schema_version() {
    let s = world();
    let soa = ask(&s, "cluster.local.", RecordType::SOA);
    assert_eq!(soa.answers.len(), 1);
    assert_eq!(soa.answers[0].record_type(), RecordType::SOA);
    let txt = ask(&s, "dns-version.cluster.local.", RecordType::TXT);
    let RData::TXT(t) = &txt.answers[0].data else {
        panic!("not TXT")
    };
    assert_eq!(t.to_string(), "1.1.0");
}

#[test]
fn names_outside_the_domain_are_forwarded() {
    let s = world();
    for name in ["example.com.", "local.", "cluster.local.example.com."] {
        let query = Query::query(Name::from_ascii(name).unwrap(), RecordType::A);
        assert_eq!(answer(&s, &query), Answer::Forward, "{name}");
    }
}

#[test]
fn a_custom_cluster_domain_is_honoured() {
    let services = vec![cluster_ip("prod", "db", "10.43.0.9", vec![])];
    let s = Snapshot::build("Corp.Example.", 1, &services, &[]).unwrap();
    let r = ask(&s, "db.prod.svc.corp.example.", RecordType::A);
    assert_eq!(addresses(&r.answers), ips(&["10.43.0.9"]));
    let query = Query::query(
        Name::from_ascii("db.prod.svc.cluster.local.").unwrap(),
        RecordType::A,
    );
    assert_eq!(answer(&s, &query), Answer::Forward);
}

#[test]
fn an_unsynced_snapshot_answers_servfail_inside_the_domain() {
    let s = Snapshot::unsynced("cluster.local").unwrap();
    let r = ask(&s, "kubernetes.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.code, ResponseCode::ServFail);
    assert!(r.authority.is_empty());
}

#[test]
fn other_classes_are_refused_inside_the_domain() {
    let mut query = Query::query(
        Name::from_ascii("kubernetes.default.svc.cluster.local.").unwrap(),
        RecordType::A,
    );
    query.set_query_class(DNSClass::CH);
    let Answer::Local(r) = answer(&world(), &query) else {
        panic!("forwarded")
    };
    assert_eq!(r.code, ResponseCode::Refused);
}

#[test]
fn endpoints_in_several_slices_are_merged_and_deduplicated() {
    let services = vec![headless("default", "nginx", false)];
    let slices = vec![
        slice(
            "default",
            "nginx",
            "a",
            &[("10.42.0.5", Some("web-0"), Some(true))],
        ),
        slice(
            "default",
            "nginx",
            "b",
            &[
                ("10.42.0.6", Some("web-1"), Some(true)),
                ("10.42.0.5", Some("web-0"), Some(true)),
            ],
        ),
        // Same name in another namespace belongs to another service.
        slice("other", "nginx", "c", &[("10.42.9.9", None, None)]),
    ];
    let s = Snapshot::build("cluster.local", 1, &services, &slices).unwrap();
    let r = ask(&s, "nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(addresses(&r.answers), ips(&["10.42.0.5", "10.42.0.6"]));
}

#[test]
fn ipv6_endpoints_answer_aaaa_and_ip6_arpa_ptr() {
    let services = vec![headless("default", "nginx", false)];
    let slices = vec![slice(
        "default",
        "nginx",
        "v6",
        &[("fd00::7", Some("web-0"), Some(true))],
    )];
    let s = Snapshot::build("cluster.local", 1, &services, &slices).unwrap();
    let r = ask(
        &s,
        "web-0.nginx.default.svc.cluster.local.",
        RecordType::AAAA,
    );
    assert_eq!(addresses(&r.answers), ips(&["fd00::7"]));
    let reverse = stead_dns::snapshot::reverse_name("fd00::7".parse().unwrap());
    let r = ask(&s, &reverse.to_ascii(), RecordType::PTR);
    assert_eq!(r.answers.len(), 1);
}
