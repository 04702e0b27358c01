//! Test support: layer tars and whole images built in memory, written as OCI-layout archives
//! or docker-save tarballs, and pushed to a real registry (see `registry_harness`).

use std::io::Write;

use tar::{EntryType, Header};

use super::digest::sha256;
use super::oci::{self, Descriptor, Index, Manifest, Platform};

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

const MTIME: u64 = 1_700_000_000;

/// Builds a layer tar entry by entry. Names are written into the header as given (so tests can
/// write the `..` that the tar crate's own setters refuse).
pub struct LayerBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(path: &str, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        let name = &mut h.as_old_mut().name;
        assert!(path.len() < name.len(), "test paths are short");
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn append(mut self, mut h: Header, data: &[u8]) -> Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(self, path: &str, mode: u32) -> Self {
        let h = Self::header(path, EntryType::Directory, mode, 0);
        self.append(h, &[])
    }

    pub fn file(self, path: &str, data: &[u8], mode: u32) -> Self {
        self.file_owned(path, data, mode, 0, 0)
    }

    pub fn file_owned(self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        let mut h = Self::header(path, EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.append(h, data)
    }

    /// A regular file whose name may contain `..`.
    pub fn raw_file(self, path: &str, data: &[u8]) -> Self {
        self.file(path, data, 0o644)
    }

    pub fn symlink(self, path: &str, to: &str) -> Self {
        let mut h = Self::header(path, EntryType::Symlink, 0o777, 0);
        h.set_link_name_literal(to).unwrap();
        self.append(h, &[])
    }

    pub fn hardlink(self, path: &str, to: &str) -> Self {
        let mut h = Self::header(path, EntryType::Link, 0o644, 0);
        h.set_link_name_literal(to).unwrap();
        self.append(h, &[])
    }

    pub fn device(self, path: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        let mut h = Self::header(path, kind, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.append(h, &[])
    }

    pub fn build(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An image built in memory: its layer blobs (as stored in a registry or archive), config and
/// manifest, with their digests.
pub struct TestImage {
    /// Uncompressed layer tars, lowest first.
    pub layers: Vec<Vec<u8>>,
    /// The layer blobs: gzip when built with `gzip`, else the tars themselves.
    pub blobs: Vec<Vec<u8>>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    pub fn new(layers: Vec<Vec<u8>>, gzip_layers: bool, cmd: &[&str]) -> TestImage {
        let blobs: Vec<Vec<u8>> = layers
            .iter()
            .map(|l| if gzip_layers { gzip(l) } else { l.clone() })
            .collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": oci::host_architecture(),
            "os": "linux",
            "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/data", "User": "1000:1000"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let manifest = Manifest {
            schema_version: 2,
            media_type: oci::OCI_MANIFEST.into(),
            config: descriptor(oci::OCI_CONFIG, &config),
            layers: blobs
                .iter()
                .map(|b| {
                    descriptor(
                        if gzip_layers {
                            oci::OCI_LAYER_GZIP
                        } else {
                            "application/vnd.oci.image.layer.v1.tar"
                        },
                        b,
                    )
                })
                .collect(),
        };
        TestImage {
            layers,
            blobs,
            config,
            manifest: serde_json::to_vec(&manifest).unwrap(),
        }
    }

    /// A small two-layer image: files, a symlink, a hardlink, then a whiteout and an opaque
    /// directory in the second layer (whiteouts only as root, where they can be unpacked).
    pub fn sample(gzip_layers: bool) -> TestImage {
        let base = LayerBuilder::new()
            .dir("bin", 0o755)
            .file("bin/hello", b"#!/bin/sh\necho hello\n", 0o755)
            .symlink("bin/hi", "hello")
            .hardlink("bin/hello2", "bin/hello")
            .dir("etc", 0o755)
            .file("etc/old", b"old", 0o644)
            .file("etc/keep", b"keep", 0o644)
            .dir("var", 0o755)
            .file("var/cached", b"c", 0o644)
            .build();
        let mut top = LayerBuilder::new().file("etc/new", b"new", 0o600);
        if is_root() {
            top = top
                .file("etc/.wh.old", b"", 0o644)
                .dir("var", 0o755)
                .file("var/.wh..wh..opq", b"", 0o644)
                .file("var/fresh", b"f", 0o644);
        }
        TestImage::new(vec![base, top.build()], gzip_layers, &["/bin/hello"])
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config)
    }

    pub fn manifest_digest(&self) -> String {
        sha256(&self.manifest)
    }

    pub fn manifest_descriptor(&self) -> Descriptor {
        let mut d = descriptor(oci::OCI_MANIFEST, &self.manifest);
        d.platform = Some(Platform {
            architecture: oci::host_architecture().into(),
            os: "linux".into(),
            variant: None,
        });
        d
    }
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: sha256(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: Default::default(),
    }
}

/// An index holding `manifests` (a multi-platform list).
pub fn index_of(manifests: Vec<Descriptor>) -> Vec<u8> {
    serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: oci::OCI_INDEX.into(),
        manifests,
    })
    .unwrap()
}

/// Appends a file to an outer archive.
pub fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn add_blob(b: &mut tar::Builder<Vec<u8>>, data: &[u8]) {
    add(b, &format!("blobs/sha256/{}", &sha256(data)[7..]), data);
}

/// An OCI image-layout archive with each image under its name (`ref.name` annotation with the
/// full reference, as `ctr export` writes it).
pub fn oci_archive(images: &[(&str, &TestImage)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut manifests = Vec::new();
    for (name, img) in images {
        for blob in &img.blobs {
            add_blob(&mut b, blob);
        }
        add_blob(&mut b, &img.config);
        add_blob(&mut b, &img.manifest);
        let mut d = descriptor(oci::OCI_MANIFEST, &img.manifest);
        d.annotations
            .insert(oci::ANNOTATION_REF_NAME.into(), name.to_string());
        manifests.push(d);
    }
    add(&mut b, "index.json", &index_of(manifests));
    b.into_inner().unwrap()
}

/// A legacy `docker save` tarball: `manifest.json`, `<id>.json` configs, `<n>/layer.tar`.
pub fn docker_save(images: &[(&[&str], &TestImage)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    for (i, (tags, img)) in images.iter().enumerate() {
        let config_name = format!("{}.json", &img.config_digest()[7..]);
        add(&mut b, &config_name, &img.config);
        let mut layers = Vec::new();
        for (j, l) in img.layers.iter().enumerate() {
            let p = format!("layer{i}{j}/layer.tar");
            add(&mut b, &p, l);
            layers.push(p);
        }
        manifest.push(serde_json::json!({
            "Config": config_name, "RepoTags": tags, "Layers": layers,
        }));
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

/// A real distribution registry (`docker-registry`, Debian) on a loopback port, with
/// filesystem storage in a temp dir; killed on drop.
pub struct TestRegistry {
    child: std::process::Child,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub host: String,
    pub tls: bool,
    /// Basic-auth credentials the registry requires, if any.
    pub user: Option<(String, String)>,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
    /// The CA (DER) that signed the registry's certificate, with `tls`.
    pub ca: Option<rustls_pki_types::CertificateDer<'static>>,
}

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestRegistry {
    /// Starts a registry, or `None` (with the reason printed) when the binary is missing.
    pub async fn start(tls: bool, user: Option<(&str, &str)>) -> Option<TestRegistry> {
        if !std::path::Path::new(REGISTRY_BIN).exists() {
            eprintln!("skipping: {REGISTRY_BIN} is not installed (Debian package docker-registry)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n  secret: stead-test\n",
            dir.path().join("storage").display()
        );
        let mut roots = rustls::RootCertStore::empty();
        let mut ca_der = None;
        if tls {
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca_cert = ca_params.self_signed(&ca_key).unwrap();
            let issuer = rcgen::Issuer::new(ca_params, &ca_key);
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
            std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("cert.pem").display(),
                dir.path().join("key.pem").display()
            ));
            let der = ca_cert.der().clone();
            roots.add(der.clone()).unwrap();
            ca_der = Some(der);
        }
        if let Some((u, p)) = user {
            let out = std::process::Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (Debian package apache2-utils)");
            assert!(out.status.success());
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: stead-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = std::process::Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let tls_config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        let reg = TestRegistry {
            child,
            dir,
            host,
            tls,
            user: user.map(|(u, p)| (u.to_string(), p.to_string())),
            client,
            ca: ca_der,
        };
        for _ in 0..200 {
            if let Ok(r) = reg
                .request(http::Method::GET, "/v2/", None, Vec::new())
                .await
                && (r.0.is_success() || r.0 == http::StatusCode::UNAUTHORIZED)
            {
                return Some(reg);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "registry did not come up: {}",
            std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.contains("://") {
            path_or_url.to_string()
        } else {
            let scheme = if self.tls { "https" } else { "http" };
            format!("{scheme}://{}{path_or_url}", self.host)
        }
    }

    /// One request (with the registry's Basic credentials); (status, Location, body).
    pub async fn request(
        &self,
        method: http::Method,
        path_or_url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(http::StatusCode, Option<String>, Vec<u8>), String> {
        use base64::Engine as _;
        use http_body_util::BodyExt as _;
        let mut req = http::Request::builder()
            .method(method)
            .uri(self.url(path_or_url));
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some((u, p)) = &self.user {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.header(http::header::AUTHORIZATION, format!("Basic {b}"));
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok((status, location, body))
    }

    /// Monolithic blob upload: POST to start, PUT with the digest.
    pub async fn push_blob(&self, repo: &str, blob: &[u8]) {
        let (status, location, body) = self
            .request(
                http::Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                None,
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(
            status,
            http::StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let location = location.expect("upload Location");
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={}", sha256(blob));
        let (status, _, body) = self
            .request(
                http::Method::PUT,
                &put,
                Some("application/octet-stream"),
                blob.to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(
            status,
            http::StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }

    pub async fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
        let (status, _, resp) = self
            .request(
                http::Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                Some(media_type),
                body.to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(
            status,
            http::StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&resp)
        );
    }

    /// Pushes an image's blobs and manifest and tags it.
    pub async fn push(&self, repo: &str, tag: &str, image: &TestImage) {
        for b in &image.blobs {
            self.push_blob(repo, b).await;
        }
        self.push_blob(repo, &image.config).await;
        self.push_manifest(repo, tag, oci::OCI_MANIFEST, &image.manifest)
            .await;
    }

    /// How many manifest GETs for `repo:tag` the registry logged.
    pub fn manifest_gets(&self, repo: &str, tag: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap();
        let needle = format!("\"GET /v2/{repo}/manifests/{tag} ");
        log.lines().filter(|l| l.contains(&needle)).count()
    }
}

/// A front for a registry that demands Bearer tokens the way Docker Hub does: requests
/// without `Authorization: Bearer <token>` get a 401 challenge naming its `/token` realm,
/// which hands out the token anonymously; authorized GETs are passed to the registry.
pub struct TokenFront {
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The query strings `/token` was called with.
    pub token_requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenFront {
    pub async fn start(upstream: &str) -> TokenFront {
        use http_body_util::{BodyExt as _, Full};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let token_requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let (me, upstream, requests) = (host.clone(), upstream.to_string(), token_requests.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (me, upstream, requests, client) = (
                    me.clone(),
                    upstream.clone(),
                    requests.clone(),
                    client.clone(),
                );
                let service = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| {
                        let (me, upstream, requests, client) = (
                            me.clone(),
                            upstream.clone(),
                            requests.clone(),
                            client.clone(),
                        );
                        async move {
                            let path = req.uri().path_and_query().unwrap().as_str().to_string();
                            let reply = |status: http::StatusCode, body: Vec<u8>| {
                                http::Response::builder()
                                    .status(status)
                                    .body(Full::new(bytes::Bytes::from(body)))
                                    .unwrap()
                            };
                            if let Some(query) = path.strip_prefix("/token?") {
                                requests.lock().unwrap().push(query.to_string());
                                return Ok::<_, std::convert::Infallible>(reply(
                                    http::StatusCode::OK,
                                    br#"{"token":"t0k3n","expires_in":300}"#.to_vec(),
                                ));
                            }
                            let authorized = req
                                .headers()
                                .get(http::header::AUTHORIZATION)
                                .is_some_and(|a| a == "Bearer t0k3n");
                            if !authorized {
                                let repo = path
                                    .strip_prefix("/v2/")
                                    .and_then(|p| p.split("/manifests/").next())
                                    .and_then(|p| p.split("/blobs/").next())
                                    .unwrap_or("");
                                let mut r = reply(http::StatusCode::UNAUTHORIZED, Vec::new());
                                r.headers_mut().insert(
                                http::header::WWW_AUTHENTICATE,
                                format!(
                                    "Bearer realm=\"http://{me}/token\",service=\"stead-test\",scope=\"repository:{repo}:pull\""
                                )
                                .parse()
                                .unwrap(),
                            );
                                return Ok(r);
                            }
                            let mut up = http::Request::get(format!("http://{upstream}{path}"));
                            if let Some(a) = req.headers().get(http::header::ACCEPT) {
                                up = up.header(http::header::ACCEPT, a);
                            }
                            let resp = client
                                .request(up.body(Full::new(bytes::Bytes::new())).unwrap())
                                .await
                                .unwrap();
                            let status = resp.status();
                            let headers = resp.headers().clone();
                            let body = resp.into_body().collect().await.unwrap().to_bytes();
                            let mut r = reply(status, body.to_vec());
                            for h in [http::header::CONTENT_TYPE, http::header::LOCATION] {
                                if let Some(v) = headers.get(&h) {
                                    r.headers_mut().insert(h, v.clone());
                                }
                            }
                            Ok(r)
                        }
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TokenFront {
            host,
            token_requests,
            task,
        }
    }
}
