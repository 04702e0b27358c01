//! Pulling from an OCI distribution registry (the v2 API): resolve a tag or digest to a
//! manifest (OCI or Docker schema2, indexes narrowed to this node's platform), fetch the config
//! and the missing layers, verify every digest, unpack, then name the image.
//!
//! Authentication follows the registry's `WWW-Authenticate` challenge: `Bearer` gets a token
//! from the realm (anonymously, or with the pod's pull-secret credentials as Basic auth),
//! `Basic` sends the credentials directly. Registries are reached over HTTPS; registries on
//! loopback (and hosts listed as insecure) fall back to plain HTTP when the TLS connection
//! fails, like containerd's localhost rule.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use tokio::io::AsyncWriteExt as _;

use super::Error;
use super::digest::sha256;
use super::oci::{self, ConfigFile, ManifestDoc};
use super::reference::{self, DOCKER_HUB, Reference};
use super::store::{NameEntry, Store, check_digest};
use crate::runtime::RegistryAuth;

/// How the node reaches registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// CA certificates trusted besides the system's (for a registry with a private CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Registry hosts (`host:port` as in image names) that may be reached over plain HTTP when
    /// TLS fails; loopback registries always may.
    pub insecure: Vec<String>,
}

const MAX_MANIFEST: usize = 4 << 20;
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const PARALLEL_LAYERS: usize = 3;

/// An HTTP(S) client for registries.
pub struct Registry {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    insecure: Vec<String>,
}

impl Registry {
    pub fn new(options: &RegistryOptions) -> Result<Registry, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        for cert in &options.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| Error::Invalid(format!("extra registry CA: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Invalid(format!("tls: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(30)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Registry {
            client: Client::builder(TokioExecutor::new()).build(https),
            insecure: options.insecure.clone(),
        })
    }

    /// Pulls `reference` into `store` and names it; `auth` is the credential to try (none:
    /// anonymous).
    pub async fn pull(
        &self,
        store: &Arc<Store>,
        reference: &Reference,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), Error> {
        let host = if reference.domain == DOCKER_HUB {
            "registry-1.docker.io".to_string()
        } else {
            reference.domain.clone()
        };
        let may_fall_back =
            reference::is_loopback(&host) || self.insecure.contains(&reference.domain);
        let mut s = Session {
            registry: self,
            base: format!("https://{host}"),
            may_fall_back,
            repo: reference.path.clone(),
            auth,
            authorization: None,
        };
        let name = reference.to_string();
        let resolve = |e: Error| Error::wrap(format!("failed to resolve reference {name:?}"), e);

        let (top_bytes, top_type) = s
            .manifest(reference.object())
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::NotFound(format!("{name}: not found")),
                e => e,
            })
            .map_err(resolve)?;
        let top_digest = sha256(&top_bytes);
        if let Some(pinned) = &reference.digest {
            check_digest(&format!("manifest {pinned}"), &top_bytes, pinned)?;
        }
        let (manifest_digest, manifest_bytes) =
            match ManifestDoc::parse(&top_bytes, top_type.as_deref()).map_err(Error::Invalid)? {
                ManifestDoc::Manifest(_) => (top_digest.clone(), top_bytes.clone()),
                ManifestDoc::Index(list) => {
                    let d = oci::pick_platform(&list.manifests).ok_or_else(|| {
                        Error::NotFound(format!(
                            "no match for platform in manifest: linux/{}: not found",
                            oci::host_architecture()
                        ))
                    })?;
                    let (bytes, _) = s.manifest(&d.digest).await?;
                    check_digest(&format!("manifest {}", d.digest), &bytes, &d.digest)?;
                    (d.digest.clone(), bytes)
                }
            };
        let ManifestDoc::Manifest(manifest) =
            ManifestDoc::parse(&manifest_bytes, None).map_err(Error::Invalid)?
        else {
            return Err(Error::Invalid(format!(
                "manifest {manifest_digest} is an index inside an index"
            )));
        };

        let config_digest = manifest.config.digest.clone();
        let config_bytes = if store.has_blob(&config_digest) {
            store.read_blob(&config_digest)?
        } else {
            let bytes = s.blob_bytes(&config_digest).await?;
            store.write_blob(&config_digest, &bytes)?;
            bytes
        };
        let config = ConfigFile::parse(&config_bytes).map_err(Error::Invalid)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Invalid(format!(
                "manifest {manifest_digest}: {} layers but {} diffIDs in the config",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }

        let missing: Vec<(String, String)> = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .filter(|(_, diff_id)| !store.has_layer(diff_id))
            .map(|(l, d)| (l.digest.clone(), d.clone()))
            .collect();
        let s = &s;
        futures::stream::iter(missing)
            .map(|(digest, diff_id)| async move { s.layer(store, &digest, &diff_id).await })
            .buffer_unordered(PARALLEL_LAYERS)
            .try_collect::<Vec<()>>()
            .await?;

        if top_digest != manifest_digest {
            store.write_blob(&top_digest, &top_bytes)?;
        }
        store.write_blob(&manifest_digest, &manifest_bytes)?;
        let entry = NameEntry {
            target: Some(top_digest),
            manifest: Some(manifest_digest),
            config: config_digest,
            layers: config.rootfs.diff_ids.clone(),
            size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
        };
        let store2 = store.clone();
        tokio::task::spawn_blocking(move || {
            store2.update_names(|n| {
                n.images.insert(name, entry);
            })
        })
        .await
        .map_err(|e| Error::Registry(format!("name update: {e}")))?
    }
}

impl Registry {
    /// Sends one request; the outer error is a registry that did not answer in time, the
    /// inner one a failed connection or exchange.
    async fn request(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Result<Response<Incoming>, hyper_util::client::legacy::Error>, Error> {
        let url = req.uri().to_string();
        tokio::time::timeout(READ_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| Error::Registry(format!("GET {url}: no answer within {READ_TIMEOUT:?}")))
    }
}

/// One pull's conversation with one registry: its scheme and its authorization.
struct Session<'a> {
    registry: &'a Registry,
    /// `https://host[:port]`, or `http://...` after a fallback.
    base: String,
    may_fall_back: bool,
    repo: String,
    auth: Option<&'a RegistryAuth>,
    /// The `Authorization` header value once a challenge was answered.
    authorization: Option<HeaderValue>,
}

impl Session<'_> {
    /// The manifest (or index) `object` names and its content type.
    async fn manifest(&mut self, object: &str) -> Result<(Vec<u8>, Option<String>), Error> {
        let path = format!("/v2/{}/manifests/{object}", self.repo);
        let resp = self.get(&path, Some(oci::MANIFEST_ACCEPT)).await?;
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = collect(resp, MAX_MANIFEST).await?;
        Ok((body, content_type))
    }

    /// A small blob (a config), verified.
    async fn blob_bytes(&mut self, digest: &str) -> Result<Vec<u8>, Error> {
        let path = format!("/v2/{}/blobs/{digest}", self.repo);
        let resp = self.get(&path, None).await?;
        let body = collect(resp, MAX_MANIFEST).await?;
        check_digest(&format!("blob {digest}"), &body, digest)?;
        Ok(body)
    }

    /// Downloads a layer blob to scratch, then unpacks it (checking blob digest and diffID).
    async fn layer(&self, store: &Arc<Store>, digest: &str, diff_id: &str) -> Result<(), Error> {
        let path = format!("/v2/{}/blobs/{digest}", self.repo);
        // Layers run in parallel, so each works on its own copy of the (settled) session.
        let mut s = Session {
            registry: self.registry,
            base: self.base.clone(),
            may_fall_back: false,
            repo: self.repo.clone(),
            auth: self.auth,
            authorization: self.authorization.clone(),
        };
        let mut resp = s.get(&path, None).await?;
        let scratch = store.scratch();
        let mut file = tokio::fs::File::create(&scratch.path)
            .await
            .map_err(|e| Error::io(&scratch.path, e))?;
        while let Some(frame) = next_frame(&mut resp).await? {
            file.write_all(&frame)
                .await
                .map_err(|e| Error::io(&scratch.path, e))?;
        }
        file.flush()
            .await
            .map_err(|e| Error::io(&scratch.path, e))?;
        drop(file);
        let (store, digest, diff_id) = (store.clone(), digest.to_string(), diff_id.to_string());
        tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&scratch.path).map_err(|e| Error::io(&scratch.path, e))?;
            store.unpack_layer(std::io::BufReader::new(f), Some(&digest), &diff_id)?;
            drop(scratch);
            Ok(())
        })
        .await
        .map_err(|e| Error::Registry(format!("unpack task: {e}")))?
    }

    /// GET `path` on the registry: answers one auth challenge, follows redirects, maps error
    /// statuses to errors.
    async fn get(&mut self, path: &str, accept: Option<&str>) -> Result<Response<Incoming>, Error> {
        let mut challenged = false;
        loop {
            let mut url = format!("{}{path}", self.base);
            let mut authorization = self.authorization.clone();
            let mut redirects = 0;
            let resp = loop {
                let resp = self.send(&url, accept, authorization.as_ref()).await?;
                if !resp.status().is_redirection() {
                    break resp;
                }
                redirects += 1;
                let location = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        Error::Registry(format!("redirect without Location from {url}"))
                    })?;
                let next = resolve_location(&url, location);
                if origin(&next) != origin(&url) {
                    authorization = None; // credentials stay with the registry
                }
                if redirects > 5 {
                    return Err(Error::Registry(format!("too many redirects from {url}")));
                }
                url = next;
            };
            match resp.status() {
                s if s.is_success() => return Ok(resp),
                StatusCode::UNAUTHORIZED if !challenged => {
                    challenged = true;
                    let challenge = resp
                        .headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                        .ok_or_else(|| {
                            Error::Unauthorized(format!("{url}: 401 without a challenge"))
                        })?;
                    self.answer(&challenge).await?;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    let msg = error_message(resp).await;
                    return Err(Error::Unauthorized(format!(
                        "pull access denied, repository does not exist or may require authorization: {msg}"
                    )));
                }
                StatusCode::NOT_FOUND => {
                    let msg = error_message(resp).await;
                    return Err(Error::NotFound(format!("{url}: not found: {msg}")));
                }
                s => {
                    let msg = error_message(resp).await;
                    return Err(Error::Registry(format!(
                        "unexpected status from GET request to {url}: {s}: {msg}"
                    )));
                }
            }
        }
    }

    /// One request; on a loopback or insecure registry, a failed TLS connection switches the
    /// session to plain HTTP once.
    async fn send(
        &mut self,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Response<Incoming>, Error> {
        let build = |url: &str| {
            let mut req = Request::get(url).header(header::USER_AGENT, "stead");
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            if let Some(a) = authorization {
                req = req.header(header::AUTHORIZATION, a.clone());
            }
            req.body(Full::new(Bytes::new()))
                .map_err(|e| Error::Registry(format!("{url}: {e}")))
        };
        match self.registry.request(build(url)?).await? {
            Ok(r) => Ok(r),
            Err(e) if self.may_fall_back && e.is_connect() && url.starts_with(&self.base) => {
                let rest = &url[self.base.len()..];
                self.base = self.base.replacen("https://", "http://", 1);
                self.may_fall_back = false;
                let url = format!("{}{rest}", self.base);
                tracing::debug!(%url, error = %e, "TLS to registry failed, using plain HTTP");
                self.registry
                    .request(build(&url)?)
                    .await?
                    .map_err(|e| Error::Registry(format!("GET {url}: {}", chain(&e))))
            }
            Err(e) => Err(Error::Registry(format!("GET {url}: {}", chain(&e)))),
        }
    }

    /// Answers a `WWW-Authenticate` challenge: Basic with the credentials, or a Bearer token
    /// from the realm.
    async fn answer(&mut self, challenge: &str) -> Result<(), Error> {
        let (scheme, params) = parse_challenge(challenge);
        let basic = self.auth.map(|a| {
            let raw = format!("{}:{}", a.username, a.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        });
        let value = match scheme.to_ascii_lowercase().as_str() {
            "basic" => basic.ok_or_else(|| {
                Error::Unauthorized(
                    "pull access denied, repository does not exist or may require authorization: no credentials for this registry".into(),
                )
            })?,
            "bearer" => {
                let realm = param(&params, "realm")
                    .ok_or_else(|| Error::Registry("bearer challenge without realm".into()))?;
                let scope = param(&params, "scope")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repo));
                let mut url = format!("{realm}?scope={}", query_escape(&scope));
                if let Some(service) = param(&params, "service") {
                    url.push_str(&format!("&service={}", query_escape(service)));
                }
                let header = basic.and_then(|b| HeaderValue::from_str(&b).ok());
                let resp = self.send(&url, None, header.as_ref()).await?;
                if !resp.status().is_success() {
                    let status = resp.status();
                    let msg = error_message(resp).await;
                    return Err(Error::Unauthorized(format!(
                        "failed to fetch anonymous token: unexpected status from GET request to {url}: {status}: {msg}"
                    )));
                }
                let body = collect(resp, 1 << 20).await?;
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: Token = serde_json::from_slice(&body)
                    .map_err(|e| Error::Registry(format!("token response: {e}")))?;
                let token = t.token.or(t.access_token).ok_or_else(|| {
                    Error::Registry("token response without a token".into())
                })?;
                format!("Bearer {token}")
            }
            other => {
                return Err(Error::Unauthorized(format!(
                    "unsupported authentication scheme {other:?}"
                )));
            }
        };
        self.authorization = Some(
            HeaderValue::from_str(&value)
                .map_err(|_| Error::Registry("credentials are not a valid header".into()))?,
        );
        Ok(())
    }
}

/// The credentials of `auths` that apply to a registry `domain`, in order: the secret's
/// `registry` may carry a scheme and path (`https://index.docker.io/v1/`) or a `*.` wildcard.
pub fn credentials_for<'a>(domain: &str, auths: &'a [RegistryAuth]) -> Vec<&'a RegistryAuth> {
    auths
        .iter()
        .filter(|a| {
            let host = a
                .registry
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let host = host.split('/').next().unwrap_or(host);
            let host = match host {
                "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
                    DOCKER_HUB
                }
                h => h,
            };
            match host.strip_prefix("*.") {
                Some(suffix) => domain
                    .strip_suffix(suffix)
                    .is_some_and(|p| p.ends_with('.') && p.len() > 1),
                None => host == domain,
            }
        })
        .collect()
}

/// `Bearer realm="...",service="...",scope="..."` -> ("Bearer", [(key, value)]).
fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    (scheme.to_string(), params)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let dir = base.rsplit_once('/').map_or(base, |(d, _)| d);
        format!("{dir}/{location}")
    }
}

async fn next_frame(resp: &mut Response<Incoming>) -> Result<Option<Bytes>, Error> {
    loop {
        let frame = tokio::time::timeout(READ_TIMEOUT, resp.body_mut().frame())
            .await
            .map_err(|_| Error::Registry("registry stopped sending data".into()))?;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => return Err(Error::Registry(format!("reading from registry: {e}"))),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

async fn collect(mut resp: Response<Incoming>, limit: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    while let Some(data) = next_frame(&mut resp).await? {
        out.extend_from_slice(&data);
        if out.len() > limit {
            return Err(Error::Registry(format!("response over {limit} bytes")));
        }
    }
    Ok(out)
}

/// The message of a registry error body (`{"errors":[{"code":..,"message":..}]}`), or the
/// status text.
async fn error_message(resp: Response<Incoming>) -> String {
    let status = resp.status();
    let body = collect(resp, 64 << 10).await.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let msgs: Vec<String> = v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let code = e["code"].as_str().unwrap_or("");
            let msg = e["message"].as_str().unwrap_or("");
            format!("{}: {msg}", code.to_ascii_lowercase())
        })
        .collect();
    if msgs.is_empty() {
        status.to_string()
    } else {
        msgs.join("; ")
    }
}

/// An error with its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(param(&p, "realm"), Some("https://auth.docker.io/token"));
        assert_eq!(param(&p, "service"), Some("registry.docker.io"));
        assert_eq!(
            param(&p, "scope"),
            Some("repository:library/redis:pull,push")
        );
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(scheme, "Basic");
        assert_eq!(param(&p, "realm"), Some("Registry Realm"));
    }

    #[test]
    fn credentials_match_the_registry_host() {
        let a = |r: &str| RegistryAuth {
            registry: r.into(),
            username: r.into(),
            password: "p".into(),
        };
        let auths = [
            a("https://index.docker.io/v1/"),
            a("localhost:5000"),
            a("*.example.com"),
            a("http://127.0.0.1:5000/"),
        ];
        let names = |d| {
            credentials_for(d, &auths)
                .iter()
                .map(|a| a.registry.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("docker.io"), ["https://index.docker.io/v1/"]);
        assert_eq!(names("localhost:5000"), ["localhost:5000"]);
        assert_eq!(names("r.example.com"), ["*.example.com"]);
        assert!(names("example.com").is_empty());
        assert_eq!(names("127.0.0.1:5000"), ["http://127.0.0.1:5000/"]);
        assert!(names("localhost:5001").is_empty());
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/sha256:x";
        assert_eq!(origin(base), "http://127.0.0.1:5000");
        assert_eq!(
            resolve_location(base, "/storage/x"),
            "http://127.0.0.1:5000/storage/x"
        );
        assert_eq!(
            resolve_location(base, "https://cdn.example/x"),
            "https://cdn.example/x"
        );
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
