//! The application: shared state, authentication, and the router that sends each request to
//! discovery, OpenAPI, health or the resource handlers.
//!
//! The router is a value ([`router`]) so tests drive it with `oneshot`, no socket needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use stead_api::ApiError;

use crate::registry::Registry;
use crate::request::parse_target;
use crate::response::{Failure, json_response};
use crate::{discovery, handlers};

/// Who made a request, as established by the TLS layer (client certificate: CN is the user, O
/// the groups) or a bearer token. Every authenticated identity is also in
/// `system:authenticated`, as upstream's authenticator chain adds it (see [`App::authenticate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// As the review resources report it (`kubectl auth whoami`).
    pub fn user_info(&self) -> stead_api::review::UserInfo {
        stead_api::review::UserInfo {
            username: self.user.clone(),
            groups: self.groups.clone(),
        }
    }

    /// With `system:authenticated` among the groups.
    fn authenticated(mut self) -> Self {
        if !self
            .groups
            .iter()
            .any(|g| g == stead_api::review::AUTHENTICATED_GROUP)
        {
            self.groups
                .push(stead_api::review::AUTHENTICATED_GROUP.to_string());
        }
        self
    }
}

/// The identity proven by the connection's client certificate, inserted per request by the
/// server loop.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity(pub Option<Identity>);

/// Shared state of the API server.
pub struct App {
    pub registry: Registry,
    /// Bearer tokens accepted, with the identity each stands for.
    pub tokens: Vec<(String, Identity)>,
    /// When false, every request is served as the admin (tests without TLS).
    pub require_auth: bool,
    /// Set once controllers and the local node are up; `/readyz` reports it.
    pub ready: AtomicBool,
    /// Shared store watches, one per resource type.
    pub watch_hub: Arc<crate::watch_cache::WatchHub>,
    /// Requests served, for `/metrics`.
    pub requests: RequestCounts,
    /// The bearer token presented to node agents when forwarding logs and exec to them: the
    /// join token's secret ([`crate::join`]).
    pub node_token: String,
    /// The cluster CA certificate (PEM), served at `/cacerts` so a joining agent can check it
    /// against the hash in its join token.
    pub ca_pem: String,
}

impl App {
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            tokens: Vec::new(),
            require_auth: true,
            ready: AtomicBool::new(true),
            watch_hub: Arc::default(),
            requests: RequestCounts::default(),
            node_token: String::new(),
            ca_pem: String::new(),
        }
    }

    /// Who sent a request: its bearer token if it has one, else its client certificate (else
    /// the admin, when auth is off), with `system:authenticated` added; `None` = unauthorized.
    fn authenticate(&self, headers: &HeaderMap, peer: Option<&PeerIdentity>) -> Option<Identity> {
        let id = if let Some(auth) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            let token = auth.strip_prefix("Bearer ").map(str::trim)?;
            self.authenticate_token(token)?
        } else if let Some(PeerIdentity(Some(id))) = peer {
            id.clone()
        } else if !self.require_auth {
            Identity {
                user: "admin".into(),
                groups: vec!["system:masters".into()],
            }
        } else {
            return None;
        };
        Some(id.authenticated())
    }

    /// The identity a bearer token stands for (also what a `TokenReview` reports).
    pub fn authenticate_token(&self, token: &str) -> Option<Identity> {
        self.tokens
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, id)| id.clone().authenticated())
    }
}

fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/version" | "/healthz" | "/livez" | "/readyz" | "/cacerts"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// Requests served, by HTTP method, for `/metrics` (`apiserver_request_total`).
#[derive(Debug, Default)]
pub struct RequestCounts([AtomicU64; 8]);

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "OTHER",
];

impl RequestCounts {
    fn count(&self, method: &axum::http::Method) {
        let i = METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len() - 1);
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The total over all methods.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Prometheus text exposition.
    fn render(&self) -> String {
        let mut out = String::from(
            "# HELP apiserver_request_total Counter of apiserver requests broken out by HTTP method.\n\
             # TYPE apiserver_request_total counter\n",
        );
        for (m, c) in METHODS.iter().zip(&self.0) {
            out.push_str(&format!(
                "apiserver_request_total{{verb=\"{m}\"}} {}\n",
                c.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

async fn authn(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    app.requests.count(req.method());
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<PeerIdentity>();
    match app.authenticate(req.headers(), peer) {
        Some(id) => {
            let mut req = req;
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        None => Failure(ApiError::unauthorized()).into_response(),
    }
}

fn text(code: StatusCode, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(body.into())
        .expect("static headers are valid")
}

fn openapi(path: &str) -> Response {
    if path.is_empty() {
        return json_response(StatusCode::OK, stead_api::schema::openapi_index());
    }
    match stead_api::schema::openapi_document(path) {
        Some((bytes, hash)) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "public, immutable")
            .header(header::ETAG, format!("\"{hash}\""))
            .body(Body::from(bytes))
            .expect("static headers are valid"),
        None => Failure(ApiError::no_route()).into_response(),
    }
}

/// `/openapi/v2`, served only in the protobuf form kubectl 1.27–1.28 ask for.
fn openapi_v2(headers: &HeaderMap) -> Response {
    let wants = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("com.github.proto-openapi.spec.v2"));
    if !wants {
        return Failure(ApiError::no_route()).into_response();
    }
    Response::builder()
        .status(StatusCode::OK)
        // Go's media-type parser rejects the `@` of the requested type; the body is raw protobuf.
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(stead_api::schema::openapi_v2_document()))
        .expect("static headers are valid")
}

/// A health endpoint's answer as kube-apiserver writes it: `ok` when every check passes (unless
/// `?verbose` asks for the list), else the list of checks, `[+]name ok` or `[-]name failed`,
/// and `<endpoint> check passed|failed`, with 503.
fn health(endpoint: &str, checks: &[(&str, bool)], query: Option<&str>) -> Response {
    let passed = checks.iter().all(|(_, ok)| *ok);
    let verbose = query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.split('=').next() == Some("verbose"))
    });
    if passed && !verbose {
        return text(StatusCode::OK, "ok");
    }
    let mut body = String::new();
    for (name, ok) in checks {
        if *ok {
            body.push_str(&format!("[+]{name} ok\n"));
        } else {
            body.push_str(&format!("[-]{name} failed: reason withheld\n"));
        }
    }
    let (status, outcome) = if passed {
        (StatusCode::OK, "passed")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "failed")
    };
    body.push_str(&format!("{endpoint} check {outcome}\n"));
    text(status, body)
}

async fn route(State(app): State<Arc<App>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    match path.trim_end_matches('/') {
        "/version" => return json_response(StatusCode::OK, &discovery::version()),
        "/healthz" | "/livez" => {
            let name = &path.trim_end_matches('/')[1..];
            return health(name, &[("ping", true)], req.uri().query());
        }
        // Public like k3s' `/cacerts`: the joining agent trusts it only if its hash matches
        // the join token.
        "/cacerts" => {
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Body::from(app.ca_pem.clone()))
                .expect("static headers are valid");
        }
        "/readyz" => {
            let ready = app.ready.load(Ordering::Acquire);
            return health(
                "readyz",
                &[("ping", true), ("stead-components", ready)],
                req.uri().query(),
            );
        }
        "/metrics" => {
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(Body::from(app.requests.render()))
                .expect("static headers are valid");
        }
        "/api" => return discovery::core(req.headers()),
        "/apis" => return discovery::groups(req.headers()),
        "/api/v1" => {
            return match discovery::resource_list("", "v1") {
                Some(l) => json_response(StatusCode::OK, &l),
                None => Failure(ApiError::no_route()).into_response(),
            };
        }
        "/openapi/v3" => return openapi(""),
        "/openapi/v2" => return openapi_v2(req.headers()),
        p if p.starts_with("/openapi/v3/") => return openapi(&p["/openapi/v3/".len()..]),
        p if p.starts_with("/apis/") => {
            let segs: Vec<&str> = p.trim_start_matches("/apis/").split('/').collect();
            match segs.as_slice() {
                [g] => return discovery::group(g),
                [g, v] => {
                    return match discovery::resource_list(g, v) {
                        Some(l) => json_response(StatusCode::OK, &l),
                        None => Failure(ApiError::no_route()).into_response(),
                    };
                }
                _ => {}
            }
        }
        _ => {}
    }
    match parse_target(&path) {
        Ok(Some(target)) => handlers::resource(&app, target, req).await,
        Ok(None) => Failure(ApiError::no_route()).into_response(),
        Err(e) => Failure(e).into_response(),
    }
}

/// The whole HTTP surface as one router.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .fallback(route)
        .layer(middleware::from_fn_with_state(app.clone(), authn))
        .with_state(app)
}
