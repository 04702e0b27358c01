//! The service proxy: makes `ClusterIP:port` reach a ready endpoint, from pods and from the node
//! network namespace, the way kube-proxy's nftables mode does — kernel NAT rules, no process
//! on the data path.
//!
//! # Layout
//!
//! - [`plan`] (pure): Services + EndpointSlices → [`plan::ProxyPlan`], the service ports with
//!   their ready endpoints (named target ports resolved through the slices, headless Services
//!   skipped, session affinity and its timeout).
//! - [`nft`] (pure): a plan → one `nft -f` script over the `ip stead` table only (the rest of
//!   the namespace's ruleset is never touched), applied atomically; its docs draw the table.
//! - this file (IO): [`prepare_node`] (IP forwarding and the service range route in the node
//!   namespace), [`Proxy::apply`] (runs `nft -f -` there) and [`run_proxy`], the loop over
//!   kube-rs reflectors that re-applies after every change.
//!
//! - [`relay`] (IO): the `kubernetes` Service. Its endpoint is the API server's loopback
//!   address on the host, which no NAT rule in the node namespace can reach (the plan leaves
//!   loopback endpoints out), so [`relay::run_relay`] listens on 10.43.0.1:443 inside the node
//!   namespace and copies bytes to the API server.
//!
//! # Measured (debug build, 2 shared cores)
//!
//! Two endpoints per Service, every other one with ClientIP affinity
//! (`measure_rule_apply_time_for_100_and_1000_services` in `tests/proxy.rs` prints them):
//! 100 Services — first apply 35–90 ms, a partial update (one endpoint moved) 13–33 ms;
//! 1000 Services — first apply about 0.5 s, a partial update 50–100 ms. Most of it is `nft`
//! and the kernel transaction; building the plan takes under 10 ms for 1000. An unchanged
//! plan is not applied at all.
//!
//! # Known limits
//!
//! IPv4 only; node ports answer on the node namespace's own addresses (from pods, e.g. the
//! bridge address; from the node namespace) — nothing outside it reaches them, and a node port
//! without endpoints is refused by the kernel (no listener) rather than rejected by a rule; no
//! `externalTrafficPolicy`/`internalTrafficPolicy`, no terminating-endpoint fallback.
//! Backends see the bridge address as the client (see [`nft`]).

pub mod nft;
pub mod plan;
pub mod relay;

use std::future::Future;
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

use crate::sandbox::SandboxRuntime;

pub use plan::{ProxyPlan, plan};
pub use relay::run_relay;

/// The `kubernetes` Service's address (the service range's first address) and port.
pub const KUBERNETES_SERVICE: std::net::SocketAddrV4 =
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(10, 43, 0, 1), 443);

/// The service range (k3s' default), routed to the bridge inside the node namespace so that
/// connections from the node namespace itself reach the NAT rules.
pub const SERVICE_CIDR: &str = "10.43.0.0/16";

/// Why applying rules failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("run {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {stderr}")]
    Failed { what: String, stderr: String },
}

/// Runs nft scripts in one node namespace, remembering what the last one left.
pub struct Proxy {
    runtime: Arc<SandboxRuntime>,
    applied: Option<nft::Applied>,
}

impl Proxy {
    pub fn new(runtime: Arc<SandboxRuntime>) -> Proxy {
        Proxy {
            runtime,
            applied: None,
        }
    }

    /// Makes the `stead` table equal to `plan` in one transaction. Blocking (runs `nft`).
    pub fn apply(&mut self, plan: &ProxyPlan) -> Result<(), ProxyError> {
        let (script, applied) = nft::script(plan, self.applied.as_ref(), self.runtime.bridge());
        match run_nft(&self.runtime, &script) {
            Ok(()) => {
                self.applied = Some(applied);
                Ok(())
            }
            Err(e) => {
                // Unknown state now: the next script starts from a fresh table.
                self.applied = None;
                Err(e)
            }
        }
    }
}

/// Per-namespace sysctls the proxy needs in the node namespace: (file, value, required).
/// - IPv4 forwarding (a new namespace starts with it off): pod → ClusterIP → pod is routed.
/// - No ICMP redirects: a client on the bridge told "use 10.42.0.7 for 10.43.0.5 directly"
///   would bypass the NAT for its next packets.
/// - `bridge-nf-call-iptables` off where `br_netfilter` is loaded (on some hosts it is,
///   host-wide; the switch itself is per namespace): then bridged frames skip the IP hooks and
///   all service traffic takes the routed path above, the same on every host. With it on, a
///   pod reaching itself through its Service is DNAT'd at the bridge and the bridge refuses to
///   send the frame back out the port it came in.
const SYSCTLS: &[(&str, &str, bool)] = &[
    ("/proc/sys/net/ipv4/ip_forward", "1", true),
    ("/proc/sys/net/ipv4/conf/all/send_redirects", "0", true),
    ("/proc/sys/net/ipv4/conf/default/send_redirects", "0", true),
    ("/proc/sys/net/bridge/bridge-nf-call-iptables", "0", false),
    ("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "0", false),
];

/// Prepares the node namespace for service traffic (the [`SYSCTLS`], also `send_redirects`
/// off on the bridge) and routes the service range to the bridge there, so that connections
/// from the node namespace itself reach the NAT rules. Idempotent. Blocking.
pub fn prepare_node(runtime: &SandboxRuntime) -> Result<(), ProxyError> {
    let bridge_redirects = format!(
        "/proc/sys/net/ipv4/conf/{}/send_redirects",
        runtime.bridge()
    );
    runtime
        .in_node_netns(move || {
            // /proc/sys/net answers for the network namespace of the thread that opens it.
            let bridge = [(bridge_redirects.as_str(), "0", true)];
            for (file, value, required) in SYSCTLS.iter().chain(bridge.iter()) {
                match std::fs::write(file, value) {
                    Ok(()) => {}
                    Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(std::io::Error::new(e.kind(), format!("{file}: {e}"))),
                }
            }
            Ok(())
        })
        .map_err(|source| ProxyError::Spawn {
            what: "set sysctls in the node namespace".into(),
            source,
        })?;
    let bridge = runtime.bridge();
    run_checked(
        runtime.node_netns_command(&["ip", "route", "replace", SERVICE_CIDR, "dev", bridge]),
        "route the service range",
    )
}

/// Removes the `stead` table from the node namespace (nothing else). Blocking.
pub fn remove_rules(runtime: &SandboxRuntime) -> Result<(), ProxyError> {
    run_nft(runtime, &nft::delete_script())
}

fn run_nft(runtime: &SandboxRuntime, script: &str) -> Result<(), ProxyError> {
    let mut cmd = runtime.node_netns_command(&["nft", "-f", "-"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let spawn = |source| ProxyError::Spawn {
        what: "nft".into(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ProxyError::Failed {
            what: "nft -f".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn run_checked(mut cmd: std::process::Command, what: &str) -> Result<(), ProxyError> {
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .map_err(|source| ProxyError::Spawn {
            what: what.into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ProxyError::Failed {
            what: what.into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// How long a failed apply waits before it is tried again without a new change.
const RETRY: Duration = Duration::from_secs(5);

/// Keeps the node namespace's service rules equal to the cluster's Services and
/// EndpointSlices until `shutdown`. Changes are coalesced (a burst of watch events costs one
/// apply); nothing is applied before both reflectors have listed once. A failed apply is
/// logged and retried; the last good rules keep working meanwhile. The table is left in place
/// on shutdown (a restarted agent replaces it).
pub async fn run_proxy(
    client: Client,
    runtime: Arc<SandboxRuntime>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let has_nft = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_nft {
        tracing::error!(
            "service proxy: nft (Debian package nftables) is missing; ClusterIPs stay unreachable"
        );
        shutdown.await;
        return;
    }
    let prep = runtime.clone();
    match tokio::task::spawn_blocking(move || prepare_node(&prep)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "service proxy: prepare the node namespace"),
        Err(e) => tracing::error!(error = %e, "service proxy: prepare task"),
    }
    let changed = Arc::new(Notify::new());
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let service_events = watch(
        Api::<Service>::all(client.clone()),
        services_writer,
        changed.clone(),
    );
    let slice_events = watch(
        Api::<EndpointSlice>::all(client),
        slices_writer,
        changed.clone(),
    );
    let sync = sync_loop(runtime, services, slices, changed);
    tokio::select! {
        () = shutdown => {}
        () = service_events => {}
        () = slice_events => {}
        () = sync => {}
    }
}

async fn sync_loop(
    runtime: Arc<SandboxRuntime>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    changed: Arc<Notify>,
) {
    if services.wait_until_ready().await.is_err() || slices.wait_until_ready().await.is_err() {
        return;
    }
    let mut proxy = Some(Proxy::new(runtime));
    let mut last: Option<ProxyPlan> = None;
    loop {
        let services = services.state();
        let slices = slices.state();
        let desired = plan(
            services.iter().map(|s| s.as_ref()),
            slices.iter().map(|s| s.as_ref()),
        );
        let mut retry = false;
        if last.as_ref() != Some(&desired) {
            let mut p = proxy.take().expect("proxy is put back after every apply");
            let started = Instant::now();
            let plan_copy = desired.clone();
            let (p, result) = match tokio::task::spawn_blocking(move || {
                let r = p.apply(&plan_copy);
                (p, r)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "service proxy: apply task");
                    return;
                }
            };
            proxy = Some(p);
            match result {
                Ok(()) => {
                    tracing::debug!(
                        ports = desired.ports.len(),
                        ms = started.elapsed().as_millis() as u64,
                        "service rules applied"
                    );
                    last = Some(desired);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "service proxy: apply rules; retrying");
                    last = None;
                    retry = true;
                }
            }
        }
        if retry {
            let _ = tokio::time::timeout(RETRY, changed.notified()).await;
        } else {
            changed.notified().await;
        }
    }
}

/// Feeds one reflector and rings `changed` after every event that reached its store.
async fn watch<K>(api: Api<K>, writer: reflector::store::Writer<K>, changed: Arc<Notify>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(_) => changed.notify_one(),
            Err(e) => tracing::warn!(error = %e, "service proxy watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests;
