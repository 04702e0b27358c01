//! `stead agent`: a node that joins a running `stead server` over the network.
//!
//! It reads the join token (`<server data dir>/agent-token`, see `stead_apiserver::join`),
//! pins the server's CA with it and authenticates with its secret
//! ([`stead_agent::join::connect`]); only then does it lock and fill its own data dir and
//! start the node ([`crate::node::start_sandbox_node`], or the fake node). Prints nothing on
//! stdout; a bad token file, a token the server refuses or does not match, an unreachable
//! server, or a data dir in use: one line on stderr and exit code 2.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use stead_api::join::JoinToken;

use crate::node::{SandboxNode, start_sandbox_node};
use crate::{Runtime, fail, init_process, shutdown_signal};

/// What `stead agent` was asked to do.
pub struct AgentArgs {
    pub server: String,
    pub token_file: PathBuf,
    pub data_dir: PathBuf,
    pub node_name: String,
    pub runtime: Runtime,
    pub node_ip: IpAddr,
    pub cluster_domain: String,
}

/// Reads and parses the token file.
fn read_token(path: &Path) -> Result<JoinToken, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("agent: --token-file {}: {e}", path.display()))?;
    text.parse()
        .map_err(|e| format!("agent: --token-file {}: {e}", path.display()))
}

/// Takes `<data_dir>/lock` so no server or other agent uses the same data dir.
fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(dir).with_context(|| format!("data dir {}", dir.display()))?;
    let path = dir.join("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("data dir {}", dir.display()))?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "data dir {} is in use by another stead process",
            dir.display()
        );
    }
    Ok(lock)
}

/// The API server's address for the `kubernetes` Service relay: `--server`'s host and port.
async fn server_addr(server: &str) -> anyhow::Result<SocketAddr> {
    let url: http::Uri = server.parse().context("--server")?;
    let host = url.host().context("--server has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_u16().context("--server has no port")?;
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .with_context(|| format!("--server {server}: no address"))
}

/// Runs `stead agent` until SIGINT/SIGTERM.
pub fn run_agent(args: AgentArgs) -> ExitCode {
    let token = match read_token(&args.token_file) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let runtime = match init_process() {
        Ok(r) => r,
        Err(e) => return e,
    };
    runtime.block_on(async move {
        let client = match stead_agent::join::connect(&args.server, &token).await {
            Ok(c) => c,
            Err(e) => return fail(format!("agent: {e}")),
        };
        let _lock = match lock_data_dir(&args.data_dir) {
            Ok(l) => l,
            Err(e) => return fail(format!("agent: {e:#}")),
        };
        let api_server = match server_addr(&args.server).await {
            Ok(a) => a,
            Err(e) => return fail(format!("agent: {e:#}")),
        };
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let tasks = match args.runtime {
            Runtime::Fake => vec![tokio::spawn(stead_agent::run_fake_node(
                client,
                args.node_name,
                stopped(),
            ))],
            Runtime::Sandbox => {
                let node = SandboxNode {
                    node_name: args.node_name,
                    data_dir: args.data_dir,
                    cluster_domain: args.cluster_domain,
                    node_ip: args.node_ip,
                    api_token: token.secret.clone(),
                    api_server,
                };
                let start = start_sandbox_node(&client, node, &stopped);
                let started = tokio::select! {
                    r = start => r,
                    () = shutdown_signal() => return ExitCode::SUCCESS,
                };
                match started {
                    Ok(t) => t,
                    Err(e) => return fail(format!("agent: start the node: {e:#}")),
                }
            }
        };
        shutdown_signal().await;
        let _ = stop.send(true);
        for t in tasks {
            let _ = t.await;
        }
        ExitCode::SUCCESS
    })
}
