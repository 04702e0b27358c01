//! The cluster DNS over real sockets on loopback, fed by a real in-process stead API server: the
//! test creates Services and EndpointSlices through the API (playing the EndpointSlice
//! controller) and queries over UDP and TCP, and with `dig` when it is installed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use stead_dns::DnsConfig;
use stead_dns::probe::{Transport, query};
use tokio::sync::watch;

struct Env {
    server: Option<stead_apiserver::RunningServer>,
    client: Client,
    dns: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), stead_dns::DnsError>>>,
    _dir: tempfile::TempDir,
}

use stead_testkit::{eventually, stopped};

async fn start() -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(dir.path()).await?;
    let (udp, tcp) = stead_dns::bind("127.0.0.1:0".parse()?)?;
    let dns = udp.local_addr()?;
    let (stop, rx) = watch::channel(false);
    // The network rule: no upstream, nothing leaves loopback.
    let config = DnsConfig::default();
    let task = tokio::spawn(stead_dns::serve(
        client.clone(),
        config,
        udp,
        tcp,
        stopped(rx),
    ));
    Ok(Env {
        server: Some(server),
        client,
        dns,
        stop,
        task: Some(task),
        _dir: dir,
    })
}

impl Env {
    async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            t.await??;
        }
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        Ok(())
    }

    async fn ask(&self, name: &str, qtype: RecordType, transport: Transport) -> Result<Message> {
        Ok(query(self.dns, name, qtype, transport, Duration::from_secs(5)).await?)
    }

    fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn slices(&self) -> Api<EndpointSlice> {
        Api::namespaced(self.client.clone(), "default")
    }
}

fn service(name: &str, cluster_ip: Option<&str>, port_name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: cluster_ip.map(str::to_string),
            selector: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
            ports: Some(vec![ServicePort {
                name: Some(port_name.into()),
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// An EndpointSlice as the EndpointSlice controller writes it: `(address, hostname, ready)`.
fn endpoint_slice(name: &str, svc: &str, eps: &[(&str, &str, bool)]) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/service-name".to_string(),
                svc.to_string(),
            )])),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: eps
            .iter()
            .map(|(addr, host, ready)| Endpoint {
                addresses: vec![addr.to_string()],
                hostname: Some(host.to_string()),
                conditions: Some(EndpointConditions {
                    ready: Some(*ready),
                    serving: Some(*ready),
                    terminating: Some(false),
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("web".into()),
            port: Some(80),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

fn addresses(msg: &Message) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = msg
        .answers
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

async fn resolves_to(env: &Env, name: &str, want: &[&str]) -> Result<()> {
    let want = ips(want);
    eventually(&format!("{name} -> {want:?}"), || async {
        let msg = env.ask(name, RecordType::A, Transport::Udp).await?;
        Ok((addresses(&msg) == want).then_some(()))
    })
    .await
}

/// Resolves `name` the way a pod's stub resolver does with
/// `search default.svc.cluster.local svc.cluster.local cluster.local` and `ndots:5`: names with
/// fewer than 5 dots try each search domain first, and an NXDOMAIN moves on to the next.
async fn resolve_like_a_pod(env: &Env, name: &str) -> Result<Vec<IpAddr>> {
    let search = [
        "default.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ];
    let mut candidates: Vec<String> = Vec::new();
    let dots = name.matches('.').count();
    if dots < 5 {
        candidates.extend(search.iter().map(|d| format!("{name}.{d}.")));
    }
    candidates.push(format!("{name}."));
    for candidate in candidates {
        let msg = env.ask(&candidate, RecordType::A, Transport::Udp).await?;
        match msg.metadata.response_code {
            ResponseCode::NXDomain => continue,
            ResponseCode::NoError if !msg.answers.is_empty() => return Ok(addresses(&msg)),
            ResponseCode::NoError => continue,
            other => bail!("{candidate}: {other}"),
        }
    }
    Ok(vec![])
}

#[tokio::test]
async fn records_follow_services_and_endpoint_slices_over_udp_and_tcp() -> Result<()> {
    let env = start().await?;
    let api = env
        .services()
        .create(&PostParams::default(), &service("api", None, "http"))
        .await?;
    let cluster_ip = api
        .spec
        .and_then(|s| s.cluster_ip)
        .context("no cluster ip allocated")?;
    env.services()
        .create(
            &PostParams::default(),
            &service("nginx", Some("None"), "web"),
        )
        .await?;
    env.slices()
        .create(
            &PostParams::default(),
            &endpoint_slice(
                "nginx-1",
                "nginx",
                &[("10.42.0.5", "web-0", true), ("10.42.0.6", "web-1", false)],
            ),
        )
        .await?;

    // ClusterIP service, over both transports.
    resolves_to(&env, "api.default.svc.cluster.local.", &[&cluster_ip]).await?;
    let tcp = env
        .ask(
            "api.default.svc.cluster.local.",
            RecordType::A,
            Transport::Tcp,
        )
        .await?;
    assert_eq!(addresses(&tcp), ips(&[&cluster_ip]));
    assert!(tcp.metadata.authoritative);

    // Headless: only the ready pod.
    resolves_to(
        &env,
        "web-0.nginx.default.svc.cluster.local.",
        &["10.42.0.5"],
    )
    .await?;
    let all = env
        .ask(
            "nginx.default.svc.cluster.local.",
            RecordType::A,
            Transport::Tcp,
        )
        .await?;
    assert_eq!(addresses(&all), ips(&["10.42.0.5"]));
    let not_ready = env
        .ask(
            "web-1.nginx.default.svc.cluster.local.",
            RecordType::A,
            Transport::Udp,
        )
        .await?;
    assert_eq!(not_ready.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(not_ready.authorities.len(), 1, "NXDOMAIN carries the SOA");

    // SRV with the target's address in the additional section.
    let srv = env
        .ask(
            "_web._tcp.nginx.default.svc.cluster.local.",
            RecordType::SRV,
            Transport::Udp,
        )
        .await?;
    assert_eq!(srv.answers.len(), 1);
    let additional: Vec<String> = srv.additionals.iter().map(|r| r.name.to_ascii()).collect();
    assert_eq!(additional, vec!["web-0.nginx.default.svc.cluster.local."]);

    // PTR for the pod and the service.
    let ptr = env
        .ask("5.0.42.10.in-addr.arpa.", RecordType::PTR, Transport::Udp)
        .await?;
    let RData::PTR(target) = &ptr.answers[0].data else {
        bail!("not a PTR: {ptr:?}")
    };
    assert_eq!(
        target.0.to_ascii(),
        "web-0.nginx.default.svc.cluster.local."
    );
    let ip: std::net::Ipv4Addr = cluster_ip.parse()?;
    let o = ip.octets();
    let reverse = format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]);
    let ptr = env.ask(&reverse, RecordType::PTR, Transport::Tcp).await?;
    assert_eq!(ptr.answers.len(), 1);

    // `nslookup web-0.nginx` from a pod in `default`.
    assert_eq!(
        resolve_like_a_pod(&env, "web-0.nginx").await?,
        ips(&["10.42.0.5"])
    );
    assert_eq!(
        resolve_like_a_pod(&env, "web-0.nginx.default.svc.cluster.local").await?,
        ips(&["10.42.0.5"])
    );

    // The pod turns Ready: the controller updates the slice, the name appears.
    let mut slice = env.slices().get("nginx-1").await?;
    slice.endpoints[1].conditions = Some(EndpointConditions {
        ready: Some(true),
        serving: Some(true),
        terminating: Some(false),
    });
    env.slices()
        .replace("nginx-1", &PostParams::default(), &slice)
        .await?;
    let updated = Instant::now();
    resolves_to(
        &env,
        "web-1.nginx.default.svc.cluster.local.",
        &["10.42.0.6"],
    )
    .await?;
    println!(
        "web-1 resolvable {:?} after its EndpointSlice update was acknowledged",
        updated.elapsed()
    );
    resolves_to(
        &env,
        "nginx.default.svc.cluster.local.",
        &["10.42.0.5", "10.42.0.6"],
    )
    .await?;

    // The slice goes away: the headless name is gone (no ready endpoints → NXDOMAIN).
    env.slices()
        .delete("nginx-1", &DeleteParams::default())
        .await?;
    eventually("nginx NXDOMAIN", || async {
        let msg = env
            .ask(
                "nginx.default.svc.cluster.local.",
                RecordType::A,
                Transport::Udp,
            )
            .await?;
        Ok((msg.metadata.response_code == ResponseCode::NXDomain).then_some(()))
    })
    .await?;

    // Outside the cluster domain with no upstream: SERVFAIL, at once.
    let outside = env
        .ask("example.com.", RecordType::A, Transport::Udp)
        .await?;
    assert_eq!(outside.metadata.response_code, ResponseCode::ServFail);

    dig_agrees(&env, &cluster_ip).await?;
    env.shutdown().await
}

/// The same answers through ISC `dig`, when installed (`bind9-dnsutils`; `scripts/test` installs
/// it). Always aimed at the loopback server; run without blocking the runtime serving it.
async fn dig_agrees(env: &Env, cluster_ip: &str) -> Result<()> {
    if std::process::Command::new("dig")
        .arg("-v")
        .output()
        .is_err()
    {
        println!("skipping the dig check: dig is not installed (apt-get install bind9-dnsutils)");
        return Ok(());
    }
    let dig = |args: &'static [&'static str]| {
        let server = format!("@{}", env.dns.ip());
        let port = env.dns.port().to_string();
        async move {
            let out = tokio::process::Command::new("dig")
                .arg(server)
                .args(["-p", &port, "+time=2", "+tries=1"])
                .args(args)
                .output()
                .await?;
            anyhow::Ok(String::from_utf8(out.stdout)?)
        }
    };
    let short = dig(&["+short", "api.default.svc.cluster.local", "A"]).await?;
    assert_eq!(short.trim(), cluster_ip);
    let short = dig(&["+short", "+tcp", "API.Default.SVC.cluster.local", "A"]).await?;
    assert_eq!(short.trim(), cluster_ip);
    let full = dig(&["nope.default.svc.cluster.local", "A"]).await?;
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    assert!(full.contains("AUTHORITY: 1"), "{full}");
    let full = dig(&["api.default.svc.cluster.local", "AAAA"]).await?;
    assert!(full.contains("status: NOERROR"), "{full}");
    assert!(full.contains("ANSWER: 0"), "{full}");
    Ok(())
}
