//! Cluster DNS: answers `<svc>.<ns>.svc.<domain>`, `<pod>.<svc>.<ns>.svc.<domain>`, SRV, PTR,
//! ExternalName CNAMEs and `<a-b-c-d>.<ns>.pod.<domain>` per the Kubernetes DNS specification,
//! from a watch cache of Services and EndpointSlices kept over the Kubernetes API.
//!
//! # Layout
//! - [`snapshot`]: the pure record table built from Services + EndpointSlices (start here).
//! - [`answer`]: the pure `answer(&Snapshot, &Query) -> Answer` (NXDOMAIN/NODATA with SOA, pod
//!   names, SRV additionals, CNAME, or "forward this").
//! - [`cache`]: kube-rs reflectors and the loop that rebuilds and atomically swaps the snapshot
//!   on every watch event.
//! - `server`: the hickory-server handler gluing decode → answer → encode, and forwarding.
//! - [`forward`]: relaying names outside the cluster domain to the upstream within a deadline.
//! - [`probe`]: a one-question client for tests, benchmarks and health checks.
//!
//! Entry point: [`serve`], over sockets the caller has already bound (the node agent binds the
//! cluster DNS address inside the node's network namespace; tests bind `127.0.0.1:0`).
//!
//! Tests: `tests/answer.rs` (pure, every record shape), `tests/wire.rs` (sockets, fixed
//! snapshot, forwarding), `tests/conformance.rs` (a real API server, UDP/TCP/dig). Benchmark:
//! `examples/udp_bench.rs`.

pub mod answer;
pub mod cache;
pub mod forward;
pub mod probe;
mod server;
pub mod snapshot;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_server::Server;

pub use answer::{Answer, Response, answer};
pub use snapshot::{InvalidDomain, Snapshot};

/// How the cluster DNS runs.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// The cluster domain, `cluster.local` by default.
    pub cluster_domain: String,
    /// Where names outside the cluster domain go. `None`: they answer SERVFAIL at once.
    pub upstream: Option<SocketAddr>,
    /// How long a forwarded question may take before it answers SERVFAIL.
    pub upstream_timeout: Duration,
}

impl Default for DnsConfig {
    /// `cluster.local`, no upstream, a 2 s upstream deadline.
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".into(),
            upstream: None,
            upstream_timeout: Duration::from_secs(2),
        }
    }
}

impl DnsConfig {
    /// The default config forwarding to the host's resolver (the first `nameserver` of
    /// `/etc/resolv.conf`), if it names one.
    pub fn with_host_upstream(cluster_domain: &str) -> Self {
        Self {
            cluster_domain: cluster_domain.into(),
            upstream: forward::upstream_from_resolv_conf(Path::new("/etc/resolv.conf")),
            ..Self::default()
        }
    }
}

/// Why the DNS server stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(transparent)]
    Domain(#[from] InvalidDomain),
    #[error("cluster dns socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("cluster dns: {0}")]
    Server(String),
}

/// How long an idle TCP connection from a client is kept.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Serves cluster DNS on the already-bound `udp` socket and `tcp` listener until `shutdown`
/// completes, answering from Services and EndpointSlices watched through `client`. Names inside
/// the cluster domain answer SERVFAIL until the first list of both has arrived.
pub async fn serve(
    client: kube::Client,
    config: DnsConfig,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DnsError> {
    let snapshot: cache::SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::unsynced(
        &config.cluster_domain,
    )?));
    let mut server = start_server(snapshot.clone(), &config, udp, tcp)?;
    let watch = cache::run(client, config.cluster_domain.clone(), snapshot, shutdown);
    watch.await;
    server
        .shutdown_gracefully()
        .await
        .map_err(|e| DnsError::Server(e.to_string()))
}

/// Serves a fixed `snapshot` (swappable by the caller) without watching anything: for tests and
/// benchmarks of the wire path.
pub async fn serve_snapshot(
    snapshot: cache::SharedSnapshot,
    config: DnsConfig,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DnsError> {
    let mut server = start_server(snapshot, &config, udp, tcp)?;
    shutdown.await;
    server
        .shutdown_gracefully()
        .await
        .map_err(|e| DnsError::Server(e.to_string()))
}

fn start_server(
    snapshot: cache::SharedSnapshot,
    config: &DnsConfig,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
) -> Result<Server<server::Handler>, DnsError> {
    udp.set_nonblocking(true).map_err(DnsError::Socket)?;
    tcp.set_nonblocking(true).map_err(DnsError::Socket)?;
    let udp = tokio::net::UdpSocket::from_std(udp).map_err(DnsError::Socket)?;
    let tcp = tokio::net::TcpListener::from_std(tcp).map_err(DnsError::Socket)?;
    let mut server = Server::new(server::Handler {
        snapshot,
        upstream: config.upstream,
        upstream_timeout: config.upstream_timeout,
    });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, 64);
    Ok(server)
}

/// Binds UDP and TCP on the same `addr` (port 0 picks one free port for both).
pub fn bind(addr: SocketAddr) -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    if addr.port() != 0 {
        let udp = std::net::UdpSocket::bind(addr)?;
        let tcp = std::net::TcpListener::bind(addr)?;
        return Ok((udp, tcp));
    }
    // A free UDP port may be taken for TCP: try a few.
    let mut last = None;
    for _ in 0..16 {
        let udp = std::net::UdpSocket::bind(addr)?;
        match std::net::TcpListener::bind(udp.local_addr()?) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}
