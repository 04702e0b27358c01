//! Test support for stead's integration tests (a dev-dependency only): a real API server
//! in-process on a loopback port with a kube client for it, the way every controller, the
//! scheduler, DNS and the node agent meet it in `stead server`.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow};
use kube::{Api, Client, Config};
use tokio::sync::watch;

/// How long [`eventually`] waits (a deadline for a stuck test, not a performance bound).
pub const PATIENCE: Duration = Duration::from_secs(60);

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

/// Polls `check` every 10 ms until it returns `Ok(Some(_))`, for at most [`PATIENCE`]. An
/// error does not end the wait (a component may still be starting); the last one is reported
/// if time runs out.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(match last_error {
                Some(e) => e.context(format!("timed out waiting for {what}")),
                None => anyhow!("timed out waiting for {what}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the object `name` of `api` no longer exists.
pub async fn gone<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} to be gone"), || async {
        Ok(api.get_opt(name).await?.is_none().then_some(()))
    })
    .await
}
