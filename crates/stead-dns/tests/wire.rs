//! The server's wire behaviour over loopback sockets with a fixed snapshot (no API server):
//! forwarding to a loopback upstream, an upstream that never answers, truncation and TCP
//! fallback, and requests that are not plain queries.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use arc_swap::ArcSwap;
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use stead_dns::probe::{Transport, encode_query, query};
use stead_dns::{DnsConfig, Snapshot};
use tokio::sync::oneshot;

/// A headless service `big` in `default` with `n` ready endpoints `10.42.x.y`.
fn snapshot(n: usize) -> Snapshot {
    let svc = Arc::new(Service {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some("big".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            ..Default::default()
        }),
        status: None,
    });
    let slice = Arc::new(EndpointSlice {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some("big-1".into()),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/service-name".into(),
                "big".into(),
            )])),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: (0..n)
            .map(|i| Endpoint {
                addresses: vec![format!("10.42.{}.{}", i / 250, i % 250 + 1)],
                hostname: Some(format!("big-{i}")),
                ..Default::default()
            })
            .collect(),
        ports: None,
    });
    let external = Arc::new(Service {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some("search".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some("www.example.com".into()),
            ..Default::default()
        }),
        status: None,
    });
    Snapshot::build("cluster.local", 1, &[svc, external], &[slice]).expect("snapshot")
}

struct Dns {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), stead_dns::DnsError>>,
}

impl Dns {
    async fn start(config: DnsConfig, endpoints: usize) -> Result<Self> {
        let (udp, tcp) = stead_dns::bind("127.0.0.1:0".parse()?)?;
        let addr = udp.local_addr()?;
        let shared = Arc::new(ArcSwap::from_pointee(snapshot(endpoints)));
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(stead_dns::serve_snapshot(
            shared,
            config,
            udp,
            tcp,
            async move {
                let _ = rx.await;
            },
        ));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    async fn ask(&self, name: &str, qtype: RecordType, transport: Transport) -> Result<Message> {
        Ok(query(self.addr, name, qtype, transport, Duration::from_secs(10)).await?)
    }

    async fn stop(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await??;
        Ok(())
    }
}

/// A loopback upstream answering every UDP and TCP question with `192.0.2.1` (the request's id and
/// question echoed); counts nothing, stops when dropped.
async fn fake_upstream() -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let (udp, listener) = stead_dns::bind("127.0.0.1:0".parse()?)?;
    let addr = udp.local_addr()?;
    udp.set_nonblocking(true)?;
    listener.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(udp)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let Ok(len) = conn.read_u16().await else {
                continue;
            };
            let mut buf = vec![0u8; usize::from(len)];
            if conn.read_exact(&mut buf).await.is_err() {
                continue;
            }
            let Ok(request) = Message::from_vec(&buf) else {
                continue;
            };
            let reply = upstream_reply(&request);
            let _ = conn.write_u16(reply.len() as u16).await;
            let _ = conn.write_all(&reply).await;
        }
    });
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(request) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let _ = socket.send_to(&upstream_reply(&request), from).await;
        }
    });
    Ok((addr, task))
}

fn upstream_reply(request: &Message) -> Vec<u8> {
    let mut reply = Message::response(request.metadata.id, OpCode::Query);
    reply.metadata.recursion_available = true;
    reply.add_queries(request.queries.clone());
    if let Some(q) = request.queries.first() {
        reply.add_answer(Record::from_rdata(
            q.name().clone(),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        ));
    }
    reply.to_vec().expect("encode")
}

#[tokio::test]
async fn outside_names_are_relayed_to_a_loopback_upstream() -> Result<()> {
    let (upstream, fake) = fake_upstream().await?;
    let config = DnsConfig {
        upstream: Some(upstream),
        ..DnsConfig::default()
    };
    let dns = Dns::start(config, 3).await?;
    for transport in [Transport::Udp, Transport::Tcp] {
        let msg = dns.ask("example.com.", RecordType::A, transport).await?;
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert!(!msg.metadata.authoritative);
        let RData::A(a) = &msg.answers[0].data else {
            panic!("not A: {msg:?}")
        };
        assert_eq!(a.0, std::net::Ipv4Addr::new(192, 0, 2, 1));
    }
    // An ExternalName alias is followed through the upstream, as CoreDNS does.
    let alias = dns
        .ask(
            "search.default.svc.cluster.local.",
            RecordType::A,
            Transport::Udp,
        )
        .await?;
    let types: Vec<RecordType> = alias.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, vec![RecordType::CNAME, RecordType::A]);
    assert_eq!(alias.answers[1].name.to_ascii(), "www.example.com.");
    // Cluster names never reach the upstream.
    let local = dns
        .ask(
            "big-0.big.default.svc.cluster.local.",
            RecordType::A,
            Transport::Udp,
        )
        .await?;
    assert!(local.metadata.authoritative);
    let RData::A(a) = &local.answers[0].data else {
        panic!("not A")
    };
    assert_eq!(a.0, std::net::Ipv4Addr::new(10, 42, 0, 1));
    dns.stop().await?;
    fake.abort();
    Ok(())
}

#[tokio::test]
async fn a_silent_upstream_answers_servfail_after_the_deadline() -> Result<()> {
    // Bound but never read: the question goes nowhere but this socket.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let config = DnsConfig {
        upstream: Some(silent.local_addr()?),
        upstream_timeout: Duration::from_millis(300),
        ..DnsConfig::default()
    };
    let dns = Dns::start(config, 1).await?;
    let started = Instant::now();
    let msg = dns
        .ask("example.com.", RecordType::A, Transport::Udp)
        .await?;
    assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
    println!("servfail after {:?}", started.elapsed());
    // Over TCP the upstream refuses the connection (nothing listens): SERVFAIL too.
    let msg = dns
        .ask("example.com.", RecordType::A, Transport::Tcp)
        .await?;
    assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
    dns.stop().await
}

#[tokio::test]
async fn without_upstream_outside_names_answer_servfail() -> Result<()> {
    let dns = Dns::start(DnsConfig::default(), 1).await?;
    for transport in [Transport::Udp, Transport::Tcp] {
        let msg = dns.ask("example.com.", RecordType::A, transport).await?;
        assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
    }
    // An ExternalName alias still answers its CNAME.
    let alias = dns
        .ask(
            "search.default.svc.cluster.local.",
            RecordType::A,
            Transport::Udp,
        )
        .await?;
    assert_eq!(alias.metadata.response_code, ResponseCode::NoError);
    assert_eq!(alias.answers.len(), 1);
    dns.stop().await
}

#[tokio::test]
async fn large_answers_truncate_over_udp_and_come_whole_over_tcp() -> Result<()> {
    let dns = Dns::start(DnsConfig::default(), 200).await?;
    let name = "big.default.svc.cluster.local.";
    let udp = dns.ask(name, RecordType::A, Transport::Udp).await?;
    assert!(udp.metadata.truncation, "200 A records exceed 512 bytes");
    let tcp = dns.ask(name, RecordType::A, Transport::Tcp).await?;
    assert!(!tcp.metadata.truncation);
    let mut ips: Vec<IpAddr> = tcp
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 200);
    dns.stop().await
}

#[tokio::test]
async fn requests_that_are_not_plain_queries_are_refused_cleanly() -> Result<()> {
    let dns = Dns::start(DnsConfig::default(), 1).await?;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(dns.addr).await?;
    let name = Name::from_ascii("big.default.svc.cluster.local.")?;

    // An UPDATE: not implemented.
    let mut update = Message::from_vec(&encode_query(7, &name, RecordType::A, false))?;
    update.metadata.op_code = OpCode::Update;
    socket.send(&update.to_vec()?).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf)).await??;
    let reply = Message::from_vec(&buf[..n])?;
    assert_eq!(reply.metadata.id, 7);
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);

    // The server keeps answering after it.
    let ok = dns
        .ask(
            "big.default.svc.cluster.local.",
            RecordType::A,
            Transport::Udp,
        )
        .await?;
    assert_eq!(ok.metadata.response_code, ResponseCode::NoError);
    dns.stop().await
}

#[tokio::test]
async fn edns_queries_get_edns_answers_and_bigger_udp_payloads() -> Result<()> {
    let dns = Dns::start(DnsConfig::default(), 30).await?;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(dns.addr).await?;
    let name = Name::from_ascii("big.default.svc.cluster.local.")?;
    socket
        .send(&encode_query(9, &name, RecordType::A, true))
        .await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf)).await??;
    let reply = Message::from_vec(&buf[..n])?;
    assert!(reply.edns.is_some());
    // 30 A records (~500+ bytes) fit in the advertised 1232 bytes: not truncated.
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 30);
    dns.stop().await
}
