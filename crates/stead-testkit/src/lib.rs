//! Test support for stead's integration tests (a dev-dependency only): a real API server
//! in-process on a loopback port with a kube client for it, the way every controller, the
//! scheduler, DNS and the node agent meet it in `stead server`.

use std::path::Path;

use anyhow::Result;
use kube::{Client, Config};
use tokio::sync::watch;

/// Starts an API server on `127.0.0.1:0` over `data_dir` (created if missing) and returns it
/// with a client that uses the admin kubeconfig it wrote.
pub async fn server(data_dir: &Path) -> Result<(stead_apiserver::RunningServer, Client)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = stead_apiserver::start(stead_apiserver::ServerConfig {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        features: Default::default(),
    })
    .await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = Client::try_from(config)?;
    Ok((server, client))
}

/// Completes once the stop switch is set: the shutdown future handed to components under test.
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
