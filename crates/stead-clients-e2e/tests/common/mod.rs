//! One `stead server` per test: a fresh data dir, an ephemeral port, and the admin kubeconfig the
//! server writes. Shared by the kube-rs and Python client tests.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;

use stead_apiserver::{RunningServer, ServerConfig};

pub struct TestServer {
    pub server: RunningServer,
    /// Kept alive for the server's lifetime; removed on drop.
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> anyhow::Result<Self> {
        // Another test in the same process may have installed it already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir()?;
        let server = stead_apiserver::start(ServerConfig {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse()?,
            features: Default::default(),
        })
        .await?;
        Ok(Self { server, _dir: dir })
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.server.kubeconfig.clone()
    }

    /// A kube-rs client authenticated with the admin client certificate.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.server.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}
