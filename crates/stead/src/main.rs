//! The `stead` binary: command-line parsing and wiring only. Everything it runs lives in the
//! library crates (`stead-apiserver`, `stead-storage`, ...).

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
            cluster_domain: _,
        } => {
            if store != "embedded" {
                return fail(format!(
                    "--store {store}: only the embedded store is available in this build"
                ));
            }
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            let agent = match (disable_agent, runtime) {
                (true, _) => Agent::None,
                (false, Runtime::Fake) => {
                    Agent::Fake(node_name.unwrap_or_else(stead_agent::default_node_name))
                }
                (false, Runtime::Sandbox) => Agent::SandboxUnavailable,
            };
            run_server(
                stead_apiserver::ServerConfig {
                    data_dir,
                    listen,
                    features: Default::default(),
                },
                agent,
            )
        }
        Command::Agent { .. } => fail("agent: the node agent is not available in this build yet"),
        Command::Image { .. } => fail("image: the image store is not available in this build yet"),
    }
}

/// The node agent `stead server` runs beside the control plane.
enum Agent {
    /// `--disable-agent`.
    None,
    /// `--runtime fake`: a fake node of this name.
    Fake(String),
    /// `--runtime sandbox`, not in this build: a warning once the server is up, and no agent.
    SandboxUnavailable,
}

/// Runs the server and, beside it, the controllers and the `agent`.
fn run_server(config: stead_apiserver::ServerConfig, agent: Agent) -> ExitCode {
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
        let mut server = match stead_apiserver::start(config).await {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let sandbox_unavailable = matches!(agent, Agent::SandboxUnavailable);
        let controllers = match Controllers::start(&server.kubeconfig, agent).await {
            Ok(c) => c,
            Err(e) => {
                server.stop().await;
                return fail(format!("start controllers: {e:#}"));
            }
        };
        server.set_ready();
        // Only once everything is up: a start that fails says one line, its error.
        if sandbox_unavailable {
            eprintln!(
                "stead: the sandbox runtime is not available in this build; pods stay Pending (use --runtime fake, or --disable-agent)"
            );
        }
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
    async fn start(kubeconfig: &std::path::Path, agent: Agent) -> anyhow::Result<Controllers> {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = kube::Client::try_from(config)?;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        match agent {
            Agent::None | Agent::SandboxUnavailable => {}
            Agent::Fake(node) => tasks.push(tokio::spawn(stead_agent::run_fake_node(
                client.clone(),
                node,
                stopped(rx.clone()),
            ))),
        }
        tasks.extend([
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
