//! The real node a stead process runs — `stead server`'s own node and `stead agent`'s — wired
//! in one place. The two differ only in where the kube client comes from, the API server
//! address the `kubernetes` Service relay connects to, and the node's data dir and address.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use stead_agent::sandbox::{SandboxConfig, SandboxRuntime};

/// Where the cluster DNS answers inside the node network namespace (pods' `nameserver`).
const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);

/// What differs between the nodes stead runs.
pub struct SandboxNode {
    pub node_name: String,
    /// Images, pod state, logs and volumes live here (`sandbox/`, `images/`, `pods/`,
    /// `volumes/`).
    pub data_dir: PathBuf,
    pub cluster_domain: String,
    /// Where the node API listens (a free port) and the Node's `InternalIP`.
    pub node_ip: IpAddr,
    /// The bearer token the node API accepts: the one the API server presents (the join
    /// token's secret).
    pub api_token: String,
    /// The API server, for the `kubernetes` Service relay in the node network namespace.
    pub api_server: SocketAddr,
}

/// Starts the node: its node API (logs, exec, attach, port-forward) on `node_ip`, registration
/// and a wait for the pod range the control plane assigns (`spec.podCIDR`), the sandbox
/// runtime with its bridge on that range, the cluster DNS, the service proxy, the
/// `kubernetes` Service relay and the links to other nodes' namespaces on this machine
/// (`stead_agent::peering`) inside the node network namespace, the volume reclaimer and the
/// kubelet. Returns the tasks, which end after `stopped()` completes.
pub async fn start_sandbox_node<F: Future<Output = ()> + Send + 'static>(
    client: &kube::Client,
    node: SandboxNode,
    stopped: impl Fn() -> F,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let SandboxNode {
        node_name,
        data_dir,
        cluster_domain,
        node_ip,
        api_token,
        api_server,
    } = node;
    let api_listener = tokio::net::TcpListener::bind((node_ip, 0))
        .await
        .with_context(|| format!("bind the node API on {node_ip}"))?;
    let api_port = api_listener.local_addr()?.port();
    let tls = stead_agent::nodeapi::self_signed_tls(&[node_ip]).map_err(anyhow::Error::msg)?;
    let images = stead_agent::image::ImageStore::open(&data_dir).context("open the image store")?;

    let mut config = stead_agent::NodeConfig::new(node_name.clone(), data_dir.clone());
    config.cluster_domain = cluster_domain.clone();
    config.api_port = api_port;
    config.node_ip = node_ip.to_string();
    config.pod_cidr = tokio::select! {
        r = stead_agent::wait_for_pod_cidr(client, &config) => {
            r.context("wait for the node's pod range")?
        }
        () = stopped() => anyhow::bail!("stopped while waiting for the node's pod range"),
    };

    let exe = std::env::current_exe().context("locate the stead binary")?;
    let mut sandbox = SandboxConfig::new(data_dir.join("sandbox"), exe);
    sandbox.pod_cidr = config.pod_cidr.clone();
    let runtime = tokio::task::spawn_blocking(move || SandboxRuntime::new(sandbox))
        .await?
        .context("start the sandbox runtime")?;
    let runtime = Arc::new(runtime);
    config.annotations.insert(
        stead_agent::peering::NETNS_ANNOTATION.to_string(),
        runtime.node_netns().display().to_string(),
    );

    let dns_addr = SocketAddr::from((CLUSTER_DNS, 53));
    runtime
        .add_node_address(CLUSTER_DNS)
        .context("add the cluster DNS address")?;
    let udp = runtime
        .bind_udp_in_node_netns(dns_addr)
        .context("bind cluster DNS (udp)")?;
    let tcp = runtime
        .bind_tcp_in_node_netns(dns_addr)
        .context("bind cluster DNS (tcp)")?;
    let dns_config = stead_dns::DnsConfig {
        cluster_domain,
        ..Default::default()
    };

    let reclaimer = stead_agent::reclaim::run_reclaimer(client.clone(), node_name, stopped());
    let dns_client = client.clone();
    let dns_stop = stopped();
    let proxy = stead_agent::proxy::run_proxy(client.clone(), runtime.clone(), stopped());
    let peering = stead_agent::peering::run_peering(
        client.clone(),
        runtime.clone(),
        config.node_name.clone(),
        stopped(),
    );
    // The `kubernetes` Service reaches the API server through a relay in the node namespace.
    let mut upstream = api_server;
    if upstream.ip().is_unspecified() {
        upstream.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    let relay = stead_agent::proxy::run_relay(
        runtime.clone(),
        stead_agent::proxy::KUBERNETES_SERVICE,
        upstream,
        stopped(),
    );
    Ok(vec![
        tokio::spawn(proxy),
        tokio::spawn(peering),
        tokio::spawn(async move {
            if let Err(e) = relay.await {
                tracing::error!(error = %e, "kubernetes service relay stopped");
            }
        }),
        tokio::spawn(stead_agent::nodeapi::serve(
            api_listener,
            tls,
            runtime.clone(),
            api_token,
            stopped(),
        )),
        tokio::spawn(async move {
            if let Err(e) = stead_dns::serve(dns_client, dns_config, udp, tcp, dns_stop).await {
                tracing::error!(error = %e, "cluster DNS stopped");
            }
        }),
        tokio::spawn(reclaimer),
        tokio::spawn(stead_agent::run_node(
            client.clone(),
            config,
            runtime,
            Arc::new(images),
            stopped(),
        )),
    ])
}
