//! The `stead` binary: command-line parsing and wiring only. Everything it runs lives in the
//! library crates (`stead-apiserver`, `stead-storage`, ...).
//!
//! - this file: the CLI, `stead server` (API server, then controllers, then its own node) and
//!   `stead image`;
//! - [`node`]: the sandbox node both `stead server` and `stead agent` run;
//! - [`agent`]: `stead agent`, a node joining a server with the join token
//!   (`<server data dir>/agent-token`).

mod agent;
mod node;

use std::net::{IpAddr, SocketAddr};
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
pub(crate) enum Runtime {
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
        /// The server's URL, `https://HOST:PORT`.
        #[arg(long)]
        server: String,
        /// The join token: the server's `<data-dir>/agent-token`.
        #[arg(long)]
        token_file: PathBuf,
        /// Where this node keeps images, pod state, logs and volumes.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The Node's name (default: the host name).
        #[arg(long)]
        node_name: Option<String>,
        #[arg(long, value_enum, default_value = "sandbox")]
        runtime: Runtime,
        /// The address the node API listens on (a free port) and the Node advertises as its
        /// InternalIP; the server must reach it.
        #[arg(long, default_value = "127.0.0.1")]
        node_ip: IpAddr,
        /// The cluster domain (as the server's `--cluster-domain`).
        #[arg(long, default_value = "cluster.local")]
        cluster_domain: String,
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
        Command::Agent {
            server,
            token_file,
            data_dir,
            node_name,
            runtime,
            node_ip,
            cluster_domain,
        } => agent::run_agent(agent::AgentArgs {
            server,
            token_file,
            data_dir: data_dir.unwrap_or_else(default_data_dir),
            node_name: node_name.unwrap_or_else(stead_agent::default_node_name),
            runtime,
            node_ip,
            cluster_domain,
        }),
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

/// What every long-running command sets up first: the TLS provider, logging to stderr
/// (`STEAD_LOG`, default `warn`) and the async runtime.
fn init_process() -> Result<tokio::runtime::Runtime, ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // kube warns on every unverified connection; the agent makes exactly one, on purpose
    // (fetching the CA its join token pins), so that warning is not shown by default.
    let default = "warn,kube_client::client::tls=error";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEAD_LOG")
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("start runtime: {e}")))
}

/// Runs the server and, beside it, the controllers and the `agent`.
fn run_server(config: stead_apiserver::ServerConfig, store: &str, agent: Agent) -> ExitCode {
    let runtime = match init_process() {
        Ok(r) => r,
        Err(e) => return e,
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
        let node_token = server.app.node_token.clone();
        let controllers =
            match Controllers::start(&server.kubeconfig, server.addr, node_token, agent).await {
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

/// The controllers (and the node, unless `--disable-agent`) `stead server` runs in-process,
/// each a client of the API server over HTTPS with the admin kubeconfig, exactly as it would run
/// on another machine.
struct Controllers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Controllers {
    /// Starts the control-plane controllers first (node IPAM among them: the node waits for
    /// its pod range), then the node.
    async fn start(
        kubeconfig: &std::path::Path,
        api_addr: SocketAddr,
        node_token: String,
        agent: Agent,
    ) -> anyhow::Result<Controllers> {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = kube::Client::try_from(config)?;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut tasks = Vec::new();
        // The fake node binds pods to itself (kwok-like); everywhere else the scheduler does.
        if !matches!(agent, Agent::Fake(_)) {
            tasks.push(tokio::spawn(stead_scheduler::run(
                client.clone(),
                stead_scheduler::DEFAULT_SCHEDULER,
                stopped(),
            )));
        }
        tasks.extend([
            tokio::spawn(stead_controllers::nodeipam::run(client.clone(), stopped())),
            tokio::spawn(stead_controllers::endpoints::run_with(
                client.clone(),
                stead_controllers::endpoints::KubeEndpoints::new(client.clone()),
                stead_controllers::endpoints::Config {
                    apiserver: Some(api_addr),
                    ..Default::default()
                },
                stopped(),
            )),
            tokio::spawn(stead_controllers::gc::run(client.clone(), stopped())),
            tokio::spawn(stead_controllers::namespace::run(client.clone(), stopped())),
            // Binder, local-path provisioner and the pvc/pv-protection finalizers the API server
            // adds on create (without it a deleted claim stays Terminating).
            tokio::spawn(stead_controllers::volume::run(client.clone(), stopped())),
            tokio::spawn(stead_controllers::statefulset::run(
                client.clone(),
                stopped(),
            )),
        ]);
        let mut controllers = Controllers { stop, tasks };
        match agent {
            Agent::None => {}
            Agent::Fake(node) => controllers
                .tasks
                .push(tokio::spawn(stead_agent::run_fake_node(
                    client,
                    node,
                    stopped(),
                ))),
            Agent::Sandbox {
                node_name,
                data_dir,
                cluster_domain,
            } => {
                let node = node::SandboxNode {
                    node_name,
                    data_dir,
                    cluster_domain,
                    node_ip: stead_agent::node::object::HOST_IP.parse()?,
                    api_token: node_token,
                    api_server: api_addr,
                };
                match node::start_sandbox_node(&client, node, &stopped).await {
                    Ok(t) => controllers.tasks.extend(t),
                    Err(e) => {
                        controllers.stop().await;
                        return Err(e);
                    }
                }
            }
        }
        Ok(controllers)
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
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
