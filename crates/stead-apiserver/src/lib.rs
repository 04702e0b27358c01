//! The HTTP face of stead: a Kubernetes-compatible API server over a [`stead_storage::Storage`].
//!
//! # Layout
//! - [`start`] (this file): what `stead server` runs — lock the data dir, load or create the PKI,
//!   open the store, create the default namespaces, bind, write the kubeconfig, serve.
//! - [`app`]: shared state, authentication, the router (start here to follow a request).
//! - [`request`] / [`response`]: reading paths, queries, `Accept` and bodies; writing objects,
//!   Tables and `Status` errors.
//! - [`handlers`]: one function per verb (a POST to a review resource is answered there by
//!   [`stead_api::review`] for the authenticated requester, never stored); [`watch`], [`scale`]: the streaming and subresource
//!   verbs ([`watch_cache`] fans one store watch per type out to all watchers); [`discovery`]: `/api`, `/apis`, `/version`.
//! - [`registry`]: the generic store with per-resource strategies — verb semantics live there.
//! - [`join`]: the join token file node agents join with (`<data-dir>/agent-token`).
//! - [`serve`], [`tls`], [`kubeconfig`], [`bootstrap`]: the server's plumbing.

pub mod app;
pub mod bootstrap;
mod compactor;
pub mod discovery;
pub mod handlers;
pub mod join;
pub mod kubeconfig;
pub mod proxy;
pub mod registry;
pub mod request;
pub mod response;
pub mod scale;
pub mod serve;
pub mod tls;
pub mod watch;
pub mod watch_cache;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stead_api::defaults::Features;
use stead_storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::{App, Identity};
use crate::registry::Registry;

/// What `stead server` was asked to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub features: Features,
}

/// Why the server could not start. Each renders as one line for the CLI.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data dir {0} is in use by another stead server")]
    Locked(PathBuf),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("open store: {0}")]
    Store(#[from] stead_storage::StorageError),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("bootstrap: {0}")]
    Bootstrap(stead_api::ApiError),
}

/// A running server.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    compactor: tokio::task::JoinHandle<()>,
    _lock: File,
}

impl RunningServer {
    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.compactor.abort();
    }

    /// Marks the server ready: `/readyz` answers 200 from now on.
    pub fn set_ready(&self) {
        self.app
            .ready
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Waits until the server stops by itself (it does not, short of an accept-loop failure).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `<data_dir>/token` on first start: an admin bearer token (node agents join with
/// the separate [`join`] token).
fn load_or_create_token(dir: &Path) -> Result<String, StartError> {
    let path = dir.join("token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(data_dir_error(&path)(e)),
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let tmp = dir.join("token.tmp");
    std::fs::write(&tmp, format!("{token}\n")).map_err(data_dir_error(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(data_dir_error(&path))?;
    Ok(token)
}

/// Starts the API server on the embedded store under the data dir: returns once it accepts
/// connections and the kubeconfig is written.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    start_on(config, None).await
}

/// [`start`] on `store` (e.g. etcd) instead of the embedded store; the data dir still holds the
/// TLS material, the token and the kubeconfig.
pub async fn start_with_store(
    config: ServerConfig,
    store: Arc<dyn Storage>,
) -> Result<RunningServer, StartError> {
    start_on(config, Some(store)).await
}

async fn start_on(
    config: ServerConfig,
    store: Option<Arc<dyn Storage>>,
) -> Result<RunningServer, StartError> {
    // Bind first: a taken port fails before anything is written.
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(data_dir_error(dir))?;
    let lock_path = dir.join("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(data_dir_error(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(StartError::Locked(dir.clone()));
    }

    let pki = tls::Pki::load_or_create(dir, config.listen.ip())?;
    let tls_config = Arc::new(pki.server_config()?);
    let token = load_or_create_token(dir)?;
    let join_path = dir.join(join::TOKEN_FILE);
    let join_token = join::load_or_create(dir, &pki.ca_pem).map_err(data_dir_error(&join_path))?;

    let store: Arc<dyn Storage> = match store {
        Some(store) => store,
        None => {
            let db_dir = dir.join("db");
            std::fs::create_dir_all(&db_dir).map_err(data_dir_error(&db_dir))?;
            Arc::new(stead_storage::embedded::EmbeddedStore::open(
                &db_dir.join("stead.redb"),
            )?)
        }
    };
    let history = store.clone();
    let registry = Registry::new(store, config.features);
    bootstrap::ensure_defaults(&registry)
        .await
        .map_err(StartError::Bootstrap)?;

    let mut app = App::new(registry);
    app.ca_pem = pki.ca_pem.clone();
    // Node agents (the local one too) accept the join secret from the API server.
    app.node_token = join_token.secret.clone();
    app.tokens
        .push((join_token.secret.clone(), join::node_identity()));
    app.tokens.push((
        token,
        Identity {
            user: "stead-admin".into(),
            groups: vec!["system:masters".into()],
        },
    ));
    // Not ready until the caller has its controllers (and node) up: see `RunningServer::set_ready`.
    app.ready = std::sync::atomic::AtomicBool::new(false);
    let app = Arc::new(app);

    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let url = format!("https://{host}:{}", addr.port());
    let kubeconfig = dir.join("kubeconfig.yaml");
    let text =
        kubeconfig::admin_kubeconfig(&url, &pki.ca_pem, &pki.admin_cert_pem, &pki.admin_key_pem);
    let tmp = dir.join("kubeconfig.yaml.tmp");
    std::fs::write(&tmp, text).map_err(data_dir_error(&tmp))?;
    std::fs::rename(&tmp, &kubeconfig).map_err(data_dir_error(&kubeconfig))?;

    let compactor = tokio::spawn(compactor::run(history, compactor::INTERVAL));
    let (tx, rx) = oneshot::channel();
    let router = app::router(app.clone());
    let task = tokio::spawn(serve::serve(listener, Some(tls_config), router, async {
        let _ = rx.await;
    }));
    Ok(RunningServer {
        addr,
        kubeconfig,
        app,
        shutdown: Some(tx),
        task,
        compactor,
        _lock: lock,
    })
}
