//! A bounded benchmark of the cluster DNS over UDP on loopback: queries/s and latency
//! percentiles for StatefulSet pod names (`web-N.web.default.svc.cluster.local`) and pod-IP names
//! (`10-42-x-y.default.pod.cluster.local`), answered from a snapshot of one headless service with
//! 1 000 ready endpoints. Prints, never asserts.
//!
//! `cargo run --release -p stead-dns --example udp_bench [QUERIES] [CONCURRENCY]`
//! (defaults 20000 and 16). Everything stays on 127.0.0.1 and stops by itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use stead_dns::probe::encode_query;
use stead_dns::{DnsConfig, Snapshot};

const PODS: usize = 1000;

/// One headless service `web` and its EndpointSlice with `pods` ready endpoints `web-N`.
fn objects(pods: usize) -> (Vec<Arc<Service>>, Vec<Arc<EndpointSlice>>) {
    let svc = Arc::new(Service {
        metadata: ObjectMeta {
            namespace: Some("default".into()),
            name: Some("web".into()),
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
            name: Some("web-1".into()),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/service-name".into(),
                "web".into(),
            )])),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: (0..pods)
            .map(|i| Endpoint {
                addresses: vec![pod_ip(i)],
                hostname: Some(format!("web-{i}")),
                ..Default::default()
            })
            .collect(),
        ports: None,
    });
    (vec![svc], vec![slice])
}

fn snapshot(pods: usize) -> Snapshot {
    let (services, slices) = objects(pods);
    Snapshot::build("cluster.local", 1, &services, &slices).expect("snapshot")
}

fn pod_ip(i: usize) -> String {
    format!("10.{}.{}.{}", 42 + i / 62500, (i / 250) % 250, i % 250 + 1)
}

/// Sends `names` round-robin from `concurrency` sockets, one query in flight per socket; returns
/// (wall time, per-query latencies, failures).
async fn run(
    server: SocketAddr,
    names: Arc<Vec<Name>>,
    queries: usize,
    concurrency: usize,
) -> (Duration, Vec<Duration>, usize) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind");
            socket.connect(server).await.expect("connect");
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut buf = vec![0u8; 4096];
            for i in (worker..queries).step_by(concurrency) {
                let id = (i & 0xffff) as u16;
                let request = encode_query(id, &names[i % names.len()], RecordType::A, false);
                let sent = Instant::now();
                if socket.send(&request).await.is_err() {
                    failures += 1;
                    continue;
                }
                let got = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await;
                match got {
                    Ok(Ok(n)) => match Message::from_vec(&buf[..n]) {
                        Ok(m)
                            if m.metadata.id == id
                                && m.metadata.response_code == ResponseCode::NoError
                                && m.answers.len() == 1 =>
                        {
                            latencies.push(sent.elapsed())
                        }
                        _ => failures += 1,
                    },
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut all = Vec::with_capacity(queries);
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.expect("worker");
        all.extend(l);
        failures += f;
    }
    (started.elapsed(), all, failures)
}

fn report(what: &str, wall: Duration, mut latencies: Vec<Duration>, failures: usize) {
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or_default()
    };
    println!(
        "{what}: {} answered, {failures} failed, {:.0} queries/s, p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        latencies.len() as f64 / wall.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or_default(),
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let queries: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);

    let (udp, tcp) = stead_dns::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let server = udp.local_addr().expect("addr");
    // What one watch event costs: the whole table is rebuilt from the reflector stores.
    for pods in [PODS, 10 * PODS] {
        let (services, slices) = objects(pods);
        let started = Instant::now();
        let built = Snapshot::build("cluster.local", 1, &services, &slices).expect("snapshot");
        println!(
            "snapshot rebuild with {pods} endpoints: {:?} ({} names)",
            started.elapsed(),
            built.len()
        );
    }
    let shared = Arc::new(ArcSwap::from_pointee(snapshot(PODS)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dns = tokio::spawn(stead_dns::serve_snapshot(
        shared,
        DnsConfig::default(),
        udp,
        tcp,
        async move {
            let _ = stopped.await;
        },
    ));

    let statefulset: Vec<Name> = (0..PODS)
        .map(|i| Name::from_ascii(format!("web-{i}.web.default.svc.cluster.local.")).expect("name"))
        .collect();
    let pod_ips: Vec<Name> = (0..PODS)
        .map(|i| {
            let dashed = pod_ip(i).replace('.', "-");
            Name::from_ascii(format!("{dashed}.default.pod.cluster.local.")).expect("name")
        })
        .collect();
    println!("{queries} queries, {concurrency} sockets, {PODS} pods, UDP on {server}");
    // Warm-up, not reported.
    let _ = run(server, Arc::new(statefulset.clone()), 1000, concurrency).await;
    let (wall, lat, failed) = run(server, Arc::new(statefulset), queries, concurrency).await;
    report("statefulset pod names", wall, lat, failed);
    let (wall, lat, failed) = run(server, Arc::new(pod_ips), queries, concurrency).await;
    report("pod ip names", wall, lat, failed);

    let _ = stop.send(());
    let _ = dns.await;
}
