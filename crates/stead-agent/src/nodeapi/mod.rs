//! The node API: what upstream's kubelet serves on its port 10250, cut down to what the API
//! server forwards to a node — container logs, exec, attach and port-forward. The API server
//! answers `pods/<name>/log`, `exec`, `attach` and `portforward` by forwarding the request
//! here (to the address and port the Node object advertises in
//! `status.daemonEndpoints.kubeletEndpoint`), so the same path works for the built-in agent and for agents on other machines.
//!
//! HTTPS with a self-signed certificate made at start (upstream's API server does not verify
//! kubelet certificates by default either); every request must carry the cluster's bearer
//! token (`Authorization: Bearer <token>`), which only the API server and agents hold.
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}?follow&tailLines&...` ([`logs`];
//!   a follow goes on across log rotations: [`follow`])
//! - `GET|POST /exec/{namespace}/{pod}/{container}?command=...` — WebSocket
//!   (`v5`/`v4.channel.k8s.io`) or SPDY/3.1 (`Upgrade: SPDY/3.1`, kubectl before 1.30) ([`exec`])
//! - `GET|POST /attach/{namespace}/{pod}/{container}?stdin&stdout&tty...` — the same, attached
//!   to the container's own process ([`Runtime::attach`]); over a WebSocket the client leaving
//!   detaches; the container's end closes the session with `Success`.
//! - `GET|POST /portForward/{namespace}/{pod}` — SPDY/3.1, either as the HTTP upgrade or inside
//!   a WebSocket (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+) ([`portforward`], [`spdy`])
//!
//! Containers are found from the runtime's own listing ([`locate`]), so this needs nothing
//! from the pod workers.

pub mod exec;
pub mod follow;
pub mod locate;
pub mod logs;
pub mod portforward;
pub mod spdy;

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, RawQuery, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use jiff::Timestamp;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::runtime::{ContainerStatus, Runtime};
use follow::LogFollower;
use locate::{locate, locate_sandbox};
use logs::{LineReader, LogOptions};

/// An error answered as a `metav1.Status`.
#[derive(Debug, Clone)]
pub struct NodeApiError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
}

impl NodeApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        NodeApiError {
            code: StatusCode::BAD_REQUEST,
            reason: "BadRequest",
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        NodeApiError {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "InternalError",
            message: message.into(),
        }
    }

    fn unauthorized() -> Self {
        NodeApiError {
            code: StatusCode::UNAUTHORIZED,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
        }
    }
}

impl IntoResponse for NodeApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code.as_u16(),
        });
        (
            self.code,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

struct NodeApi<R> {
    runtime: Arc<R>,
    token: String,
}

/// The node API's routes over `runtime`, accepting requests that carry `token`.
pub fn router<R: Runtime>(runtime: Arc<R>, token: String) -> Router {
    let state = Arc::new(NodeApi { runtime, token });
    Router::new()
        .route(
            "/containerLogs/{ns}/{pod}/{container}",
            get(container_logs::<R>),
        )
        .route(
            "/exec/{ns}/{pod}/{container}",
            get(exec_handler::<R>).post(exec_handler::<R>),
        )
        .route(
            "/attach/{ns}/{pod}/{container}",
            get(attach_handler::<R>).post(attach_handler::<R>),
        )
        .route(
            "/portForward/{ns}/{pod}",
            get(port_forward_handler::<R>).post(port_forward_handler::<R>),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(middleware::from_fn_with_state(state.clone(), authn::<R>))
        .with_state(state)
}

async fn authn<R: Runtime>(
    State(api): State<Arc<NodeApi<R>>>,
    req: Request,
    next: Next,
) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == api.token);
    if ok || req.uri().path() == "/healthz" {
        next.run(req).await
    } else {
        NodeApiError::unauthorized().into_response()
    }
}

/// A TLS configuration with a fresh self-signed certificate for `addresses`.
pub fn self_signed_tls(addresses: &[IpAddr]) -> Result<rustls::ServerConfig, String> {
    let mut names: Vec<String> = vec!["localhost".into()];
    names.extend(addresses.iter().map(IpAddr::to_string));
    let cert = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| e.to_string())
}

/// Serves the node API on `listener` (HTTPS, HTTP/1.1 with upgrades) until `shutdown`.
pub async fn serve<R: Runtime>(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    runtime: Arc<R>,
    token: String,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let router = router(runtime, token);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "node api: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = TowerToHyperService::new(router);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn container_logs<R: Runtime>(
    State(api): State<Arc<NodeApi<R>>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, NodeApiError> {
    let opts = LogOptions::parse(query.as_deref().unwrap_or(""), Timestamp::now())
        .map_err(NodeApiError::bad_request)?;
    let found = locate(api.runtime.as_ref(), &ns, &pod, &container).await?;
    let running = found.running();
    let target = if opts.previous {
        found.previous.ok_or_else(|| {
            NodeApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
            ))
        })?
    } else {
        found.current
    };
    let follow = opts.follow && !opts.previous && running;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    let runtime = api.runtime.clone();
    tokio::spawn(stream_log(runtime, target, opts, follow, (ns, pod), tx));
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response())
}

/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Sends the log of `target` to `tx`: what is there now (since/tail applied), then, when
/// following, every new line until the container stops or the client goes away. Without
/// `follow` only the current log file is read (as upstream's kubelet does); a follow goes on
/// across rotations ([`follow::LogFollower`]).
async fn stream_log<R: Runtime>(
    runtime: Arc<R>,
    target: ContainerStatus,
    opts: LogOptions,
    follow: bool,
    (ns, pod): (String, String),
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) {
    let mut limit = logs::Limit(opts.limit_bytes);
    let mut reader = LineReader::default();
    let mut follower = Some(LogFollower::open(&target.log_path));
    let initial = if follow {
        read_new(&mut follower).await
    } else {
        read_current(target.log_path.clone()).await
    };
    let lines = reader.push(&initial);
    let first = logs::render(lines, &opts);
    if !first.is_empty() {
        let sent = match limit.take(first) {
            Some(chunk) => tx.send(Ok(chunk)).await.is_ok(),
            None => false,
        };
        if !sent {
            return;
        }
    }
    if !follow {
        return;
    }
    let mut checks = 0u32;
    loop {
        if limit.exhausted() || tx.is_closed() {
            return;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
        let more = read_new(&mut follower).await;
        if more.is_empty() {
            checks += 1;
            // Every second without output: is the container still the one running?
            if checks.is_multiple_of(10) {
                match locate(runtime.as_ref(), &ns, &pod, &target.name).await {
                    Ok(now) if now.current.id == target.id && now.running() => {}
                    _ => {
                        // Drain what was written before it stopped, then end.
                        let rest = read_new(&mut follower).await;
                        let _ = send_lines(&mut reader, &rest, &opts, &mut limit, &tx).await;
                        return;
                    }
                }
            }
            continue;
        }
        if !send_lines(&mut reader, &more, &opts, &mut limit, &tx).await {
            return;
        }
    }
}

async fn send_lines(
    reader: &mut LineReader,
    bytes: &[u8],
    opts: &LogOptions,
    limit: &mut logs::Limit,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) -> bool {
    let mut out = Vec::new();
    for line in reader.push(bytes) {
        logs::render_line(&line, opts, &mut out);
    }
    if out.is_empty() {
        return true;
    }
    match limit.take(out) {
        Some(chunk) => tx.send(Ok(chunk)).await.is_ok(),
        None => false,
    }
}

/// What the follower has not read yet (files are read on the blocking pool).
async fn read_new(follower: &mut Option<LogFollower>) -> Vec<u8> {
    let Some(mut f) = follower.take() else {
        return Vec::new();
    };
    match tokio::task::spawn_blocking(move || {
        let bytes = f.read_new();
        (f, bytes)
    })
    .await
    {
        Ok((f, bytes)) => {
            *follower = Some(f);
            bytes
        }
        Err(_) => Vec::new(),
    }
}

/// The log's current file whole (nothing if it does not exist yet).
async fn read_current(path: PathBuf) -> Vec<u8> {
    tokio::fs::read(path).await.unwrap_or_default()
}

/// `kubectl exec` or `kubectl attach`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Exec,
    Attach,
}

async fn exec_handler<R: Runtime>(
    state: State<Arc<NodeApi<R>>>,
    path: Path<(String, String, String)>,
    query: RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> Result<Response, NodeApiError> {
    stream_handler(Stream::Exec, state, path, query, headers, upgrade, req).await
}

async fn attach_handler<R: Runtime>(
    state: State<Arc<NodeApi<R>>>,
    path: Path<(String, String, String)>,
    query: RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> Result<Response, NodeApiError> {
    stream_handler(Stream::Attach, state, path, query, headers, upgrade, req).await
}

async fn stream_handler<R: Runtime>(
    kind: Stream,
    State(api): State<Arc<NodeApi<R>>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> Result<Response, NodeApiError> {
    let what = match kind {
        Stream::Exec => "exec",
        Stream::Attach => "attach",
    };
    let query = query.as_deref().unwrap_or("");
    let spec = match kind {
        Stream::Exec => exec::exec_spec(query),
        Stream::Attach => exec::attach_spec(query),
    }
    .map_err(NodeApiError::bad_request)?;
    let found = locate(api.runtime.as_ref(), &ns, &pod, &container).await?;
    if !found.running() {
        return Err(NodeApiError::bad_request(format!(
            "container not found (\"{container}\")"
        )));
    }
    if spdy::is_upgrade(&headers) {
        // No protocol header at all is the oldest client (`channel.k8s.io`).
        let protocol = match spdy::negotiate(&headers, &exec::SPDY_PROTOCOLS) {
            Some(p) => p,
            None if spdy::offered(&headers).is_empty() => "channel.k8s.io",
            None => {
                return Err(NodeApiError::bad_request(format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {:?}, server supports {:?}",
                    spdy::offered(&headers),
                    exec::SPDY_PROTOCOLS
                )));
            }
        };
        let runtime = api.runtime.clone();
        let id = found.current.id;
        let on_upgrade = hyper::upgrade::on(req);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let session = spdy::Session::start(TokioIo::new(upgraded));
            let start = async {
                match kind {
                    Stream::Exec => runtime.exec(&id, &spec).await,
                    Stream::Attach => runtime.attach(&id, &spec).await.map(exec::attached),
                }
                .map_err(|e| e.to_string())
            };
            exec::pump_spdy(session, spec.clone(), protocol, start).await;
        });
        return Ok(spdy::upgrade_response(protocol));
    }
    let upgrade = upgrade
        .map_err(|e| NodeApiError::bad_request(format!("{what} needs a WebSocket upgrade: {e}")))?;
    let upgrade = upgrade.protocols(exec::PROTOCOLS);
    let v5 = match upgrade.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(p) => p == exec::PROTOCOLS[0],
        None => {
            return Err(NodeApiError::bad_request(format!(
                "{what} needs one of the WebSocket subprotocols {:?}",
                exec::PROTOCOLS
            )));
        }
    };
    let runtime = api.runtime.clone();
    let id = found.current.id;
    Ok(upgrade.on_upgrade(move |socket| async move {
        match kind {
            Stream::Exec => match runtime.exec(&id, &spec).await {
                Ok(session) => exec::pump(socket, session, v5).await,
                Err(e) => exec::fail(socket, &e.to_string()).await,
            },
            Stream::Attach => match runtime.attach(&id, &spec).await {
                Ok(session) => exec::pump_attach(socket, session, v5).await,
                Err(e) => exec::fail(socket, &e.to_string()).await,
            },
        }
    }))
}

async fn port_forward_handler<R: Runtime>(
    State(api): State<Arc<NodeApi<R>>>,
    Path((ns, pod)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> Result<Response, NodeApiError> {
    let sandbox = locate_sandbox(api.runtime.as_ref(), &ns, &pod).await?;
    let target = portforward::Target {
        sandbox: sandbox.id,
        pod: format!("{ns}/{pod}"),
    };
    let runtime = api.runtime.clone();
    if spdy::is_upgrade(&headers) {
        let offered = spdy::offered(&headers);
        if !offered.is_empty() && spdy::negotiate(&headers, &[portforward::SPDY_PROTOCOL]).is_none()
        {
            return Err(NodeApiError::bad_request(format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports [{:?}]",
                portforward::SPDY_PROTOCOL
            )));
        }
        let on_upgrade = hyper::upgrade::on(req);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let session = spdy::Session::start(TokioIo::new(upgraded));
            portforward::serve(session, runtime, target).await;
        });
        return Ok(spdy::upgrade_response(portforward::SPDY_PROTOCOL));
    }
    let upgrade = upgrade.map_err(|e| {
        NodeApiError::bad_request(format!(
            "port-forward needs a SPDY/3.1 or WebSocket upgrade: {e}"
        ))
    })?;
    let mut protocols = vec![portforward::WEBSOCKET_PROTOCOL];
    protocols.extend(portforward::CHANNEL_PROTOCOLS);
    let upgrade = upgrade.protocols(protocols);
    match upgrade.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(portforward::WEBSOCKET_PROTOCOL) => Ok(upgrade.on_upgrade(move |socket| async move {
            let session = spdy::Session::start(spdy::over_websocket(socket));
            portforward::serve(session, runtime, target).await;
        })),
        Some(_) => {
            let ports = portforward::query_ports(query.as_deref().unwrap_or(""))
                .map_err(NodeApiError::bad_request)?;
            Ok(upgrade.on_upgrade(move |socket| {
                portforward::serve_channels(socket, runtime, target, ports)
            }))
        }
        None => Err(NodeApiError::bad_request(format!(
            "port-forward needs one of the WebSocket subprotocols {:?} or {:?}",
            portforward::WEBSOCKET_PROTOCOL,
            portforward::CHANNEL_PROTOCOLS
        ))),
    }
}
