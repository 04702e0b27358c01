//! The `stead` binary: command-line parsing and wiring only. Everything it runs lives in the
//! library crates (`stead-apiserver`, `stead-storage`, ...).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "stead",
    about = "A Kubernetes StatefulSet system in one binary",
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Runtime {
    Sandbox,
    Fake,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server, controllers) and, unless disabled, a node agent.
    Server {
        /// Where stead keeps everything (store, TLS material, images, volumes, pod state, logs).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// HTTPS listen address; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
        /// `embedded` (default) or `etcd://HOST:PORT[,HOST:PORT...]`.
        #[arg(long, default_value = "embedded")]
        store: String,
        /// Run the control plane only: pods are created but nothing runs them.
        #[arg(long)]
        disable_agent: bool,
        #[arg(long, value_enum, default_value = "sandbox")]
        runtime: Runtime,
        #[arg(long)]
        node_name: Option<String>,
        #[arg(long, default_value = "cluster.local")]
        cluster_domain: String,
    },
    /// Run a node agent that joins a server.
    Agent {
        #[arg(long)]
        server: String,
        #[arg(long)]
        token_file: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        node_name: Option<String>,
        #[arg(long, value_enum, default_value = "sandbox")]
        runtime: Runtime,
    },
    /// Manage the node's image store.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Print the stead version.
    Version,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Import an OCI archive or docker-save tarball.
    Import {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        file: PathBuf,
    },
    /// List imported images.
    Ls {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// `/var/lib/stead` as root, else `$XDG_DATA_HOME/stead` (or `~/.local/share/stead`).
fn default_data_dir() -> PathBuf {
    // /proc/self is owned by the process's user.
    let is_root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if is_root {
        return PathBuf::from("/var/lib/stead");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("stead");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/stead")
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("stead: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // The sandbox runtime re-execs this binary for its namespace helpers: dispatch them before
    // anything else starts (no threads, no async runtime).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(stead_agent::sandbox::HELPER_ARG) {
        stead_agent::sandbox::helper_main(&args[2..]);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Version => {
            println!(
                "stead {} (Kubernetes API v1.33.0)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Command::Server {
            data_dir,
            listen,
            store,
            disable_agent,
            runtime,
            node_name,
            cluster_domain,
        } => {
            if store != "embedded" && !store.starts_with("etcd://") {
                return fail(format!(
                    "--store {store}: want embedded or etcd://HOST:PORT[,HOST:PORT...]"
                ));
            }
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            let agent = match (disable_agent, runtime) {
                (true, _) => Agent::None,
                (false, Runtime::Fake) => {
                    Agent::Fake(node_name.unwrap_or_else(stead_agent::default_node_name))
                }
                (false, Runtime::Sandbox) => Agent::Sandbox {
                    node_name: node_name.unwrap_or_else(stead_agent::default_node_name),
                    data_dir: data_dir.clone(),
                    cluster_domain,
                },
            };
            run_server(
                stead_apiserver::ServerConfig {
                    data_dir,
                    listen,
                    features: Default::default(),
                },
                &store,
                agent,
            )
        }
        Command::Agent { .. } => fail("agent: the node agent is not available in this build yet"),
        Command::Image { command } => image_command(command),
    }
}

/// `stead image import|ls`: works on the store directly, beside a running server.
fn image_command(command: ImageCommand) -> ExitCode {
    use stead_agent::image;
    match command {
        ImageCommand::Import { data_dir, file } => {
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            match image::import(&data_dir, &file) {
                Ok(imported) => {
                    for i in imported {
                        println!("imported {} {}", i.name, i.id);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("image import {}: {e}", file.display())),
            }
        }
        ImageCommand::Ls { data_dir } => {
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            let images = match image::list(&data_dir) {
                Ok(i) => i,
                Err(e) => return fail(format!("image ls: {e}")),
            };
            let rows: Vec<[String; 4]> = images
                .into_iter()
                .map(|i| {
                    let hex = i.id.strip_prefix("sha256:").unwrap_or(&i.id);
                    [
                        i.repository,
                        i.tag.unwrap_or_else(|| "<none>".into()),
                        hex.chars().take(13).collect(),
                        image::human_size(i.size),
                    ]
                })
                .collect();
            let header = ["REPOSITORY", "TAG", "IMAGE ID", "SIZE"].map(String::from);
            let mut widths = header.clone().map(|h| h.len());
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let line = row
                    .iter()
                    .zip(widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect::<Vec<_>>()
                    .join("   ");
                println!("{}", line.trim_end());
            }
            ExitCode::SUCCESS
        }
    }
}

/// The node agent `stead server` runs beside the control plane.
enum Agent {
    /// `--disable-agent`.
    None,
    /// `--runtime fake`: a fake node of this name.
    Fake(String),
    /// `--runtime sandbox`: the real node agent, its node API and the cluster DNS.
    Sandbox {
        node_name: String,
        data_dir: PathBuf,
        cluster_domain: String,
    },
}

/// Where the cluster DNS answers inside the node network namespace (pods' `nameserver`).
const CLUSTER_DNS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 43, 0, 10);

/// Runs the server and, beside it, the controllers and the `agent`.
fn run_server(config: stead_apiserver::ServerConfig, store: &str, agent: Agent) -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEAD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("start runtime: {e}")),
    };
    runtime.block_on(async move {
        let started = if store.starts_with("etcd://") {
            match stead_storage::etcd::EtcdStore::connect(store).await {
                Ok(etcd) => {
                    stead_apiserver::start_with_store(config, std::sync::Arc::new(etcd)).await
                }
                Err(e) => return fail(format!("--store {store}: {e}")),
            }
        } else {
            stead_apiserver::start(config).await
        };
        let mut server = match started {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let controllers = match Controllers::start(&server.kubeconfig, server.addr, agent).await {
            Ok(c) => c,
            Err(e) => {
                server.stop().await;
                return fail(format!("start controllers: {e:#}"));
            }
        };
        server.set_ready();
        println!("export KUBECONFIG={}", server.kubeconfig.display());
        tokio::select! {
            r = server.wait() => {
                controllers.stop().await;
                match r {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(format!("server stopped: {e}")),
                }
            }
            _ = shutdown_signal() => {
                // Controllers first: they are clients of the server.
                controllers.stop().await;
                server.stop().await;
                ExitCode::SUCCESS
            }
        }
    })
}

/// The controllers (and the fake node, with `--runtime fake`) `stead server` runs in-process,
/// each a client of the API server over HTTPS with the admin kubeconfig, exactly as it would run
/// on another machine.
struct Controllers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Controllers {
    async fn start(
        kubeconfig: &std::path::Path,
        api_addr: SocketAddr,
        agent: Agent,
    ) -> anyhow::Result<Controllers> {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = kube::Client::try_from(config)?;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        let fake_node = matches!(agent, Agent::Fake(_));
        match agent {
            Agent::None => {}
            Agent::Fake(node) => tasks.push(tokio::spawn(stead_agent::run_fake_node(
                client.clone(),
                node,
                stopped(rx.clone()),
            ))),
            Agent::Sandbox {
                node_name,
                data_dir,
                cluster_domain,
            } => {
                let node = start_sandbox_node(
                    &client,
                    node_name,
                    data_dir,
                    cluster_domain,
                    api_addr,
                    || stopped(rx.clone()),
                )
                .await?;
                tasks.extend(node);
            }
        }
        // The fake node binds pods to itself (kwok-like); everywhere else the scheduler does.
        if !fake_node {
            tasks.push(tokio::spawn(stead_scheduler::run(
                client.clone(),
                stead_scheduler::DEFAULT_SCHEDULER,
                stopped(rx.clone()),
            )));
        }
        tasks.extend([
            tokio::spawn(stead_controllers::endpoints::run_with(
                client.clone(),
                stead_controllers::endpoints::KubeEndpoints::new(client.clone()),
                stead_controllers::endpoints::Config {
                    apiserver: Some(api_addr),
                    ..Default::default()
                },
                stopped(rx.clone()),
            )),
            tokio::spawn(stead_controllers::gc::run(
                client.clone(),
                stopped(rx.clone()),
            )),
            tokio::spawn(stead_controllers::namespace::run(
                client.clone(),
                stopped(rx.clone()),
            )),
            // Binder, local-path provisioner and the pvc/pv-protection finalizers the API server
            // adds on create (without it a deleted claim stays Terminating).
            tokio::spawn(stead_controllers::volume::run(
                client.clone(),
                stopped(rx.clone()),
            )),
            tokio::spawn(stead_controllers::statefulset::run(client, stopped(rx))),
        ]);
        Ok(Controllers { stop, tasks })
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The real node beside the control plane: the sandbox runtime, its node API (logs, exec) on
/// a free loopback port, the cluster DNS, the service proxy and the `kubernetes` Service relay
/// inside the node network namespace, and the kubelet.
async fn start_sandbox_node<F: Future<Output = ()> + Send + 'static>(
    client: &kube::Client,
    node_name: String,
    data_dir: PathBuf,
    cluster_domain: String,
    api_addr: SocketAddr,
    stopped: impl Fn() -> F,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    use anyhow::Context;
    use std::sync::Arc;
    use stead_agent::sandbox::{SandboxConfig, SandboxRuntime};

    let exe = std::env::current_exe().context("locate the stead binary")?;
    let state = data_dir.join("sandbox");
    let runtime =
        tokio::task::spawn_blocking(move || SandboxRuntime::new(SandboxConfig::new(state, exe)))
            .await?
            .context("start the sandbox runtime")?;
    let runtime = Arc::new(runtime);
    let images = stead_agent::image::ImageStore::open(&data_dir).context("open the image store")?;
    let token = std::fs::read_to_string(data_dir.join("token")).context("read the node token")?;

    let api_ip: std::net::IpAddr = stead_agent::node::object::HOST_IP.parse()?;
    let api_listener = tokio::net::TcpListener::bind((api_ip, 0))
        .await
        .context("bind the node API")?;
    let api_port = api_listener.local_addr()?.port();
    let tls = stead_agent::nodeapi::self_signed_tls(&[api_ip]).map_err(anyhow::Error::msg)?;

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
        cluster_domain: cluster_domain.clone(),
        ..Default::default()
    };

    let reclaimer =
        stead_agent::reclaim::run_reclaimer(client.clone(), node_name.clone(), stopped());
    let mut node = stead_agent::NodeConfig::new(node_name, data_dir);
    node.cluster_domain = cluster_domain;
    node.api_port = api_port;

    let dns_client = client.clone();
    let dns_stop = stopped();
    let proxy = stead_agent::proxy::run_proxy(client.clone(), runtime.clone(), stopped());
    // The `kubernetes` Service reaches the API server through a relay in the node namespace.
    let mut upstream = api_addr;
    if upstream.ip().is_unspecified() {
        upstream.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let relay = stead_agent::proxy::run_relay(
        runtime.clone(),
        stead_agent::proxy::KUBERNETES_SERVICE,
        upstream,
        stopped(),
    );
    Ok(vec![
        tokio::spawn(proxy),
        tokio::spawn(async move {
            if let Err(e) = relay.await {
                tracing::error!(error = %e, "kubernetes service relay stopped");
            }
        }),
        tokio::spawn(stead_agent::nodeapi::serve(
            api_listener,
            tls,
            runtime.clone(),
            token.trim().to_string(),
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
            node,
            runtime,
            Arc::new(images),
            stopped(),
        )),
    ])
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
