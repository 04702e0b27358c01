//! `pods/<name>/log`, `exec`, `attach` and `portforward`: checked here (the pod exists, the
//! container is one of its own, the pod is on a node), then forwarded to the node agent that
//! runs the pod, at the address and port its Node object advertises
//! (`status.addresses`, `status.daemonEndpoints.kubeletEndpoint.Port`) — as upstream's API
//! server forwards to the kubelet.
//!
//! Upgrades (WebSocket or SPDY) are tunnelled without being understood: the request goes to the
//! node with its upgrade headers, and when the node answers 101 both connections are upgraded
//! and bytes are copied both ways until either side closes. So the protocol lives in one place,
//! the node API. Logs are streamed through as they come.
//!
//! The node is reached over HTTPS without verifying its certificate (upstream's default without
//! `--kubelet-certificate-authority`), authenticated with the join token's secret
//! ([`crate::join`]), which every node agent accepts.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use stead_api::ApiError;

use crate::app::App;
use crate::request::{Query, Target};

/// The subresources forwarded to nodes.
pub fn is_proxied(target: &Target) -> bool {
    target.rt.plural == "pods"
        && matches!(
            target.subresource.as_deref(),
            Some("log" | "exec" | "attach" | "portforward")
        )
}

/// Serves one forwarded request.
pub async fn serve(app: &App, target: &Target, req: Request<Body>) -> Result<Response, ApiError> {
    let sub = target.subresource.as_deref().unwrap_or_default();
    let name = target.name.as_deref().unwrap_or_default();
    let ns = &target.namespace;
    let pod = app.registry.get(target.rt, ns, name).await?;
    let query = Query::parse(req.uri().query());
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let path = if sub == "portforward" {
        format!("/portForward/{ns}/{name}")
    } else {
        let container = container_of(&pod, name, query.get("container"))?;
        if sub != "log" {
            let phase = pod
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("");
            if matches!(phase, "Succeeded" | "Failed") {
                return Err(ApiError::bad_request(format!(
                    "cannot {sub} into a container in a completed pod; current phase is {phase}"
                )));
            }
        }
        let path = if sub == "log" { "containerLogs" } else { sub };
        format!("/{path}/{ns}/{name}/{container}")
    };
    if node_name.is_empty() {
        if sub == "log" {
            // Upstream answers an unscheduled pod's log with nothing.
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::empty())
                .expect("static headers are valid"));
        }
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let nodes = stead_api::resource::find("", "v1", "nodes").expect("nodes are served");
    let node = app.registry.get(nodes, "", node_name).await?;
    let (ip, port) = node_endpoint(&node).ok_or_else(|| {
        ApiError::bad_request(format!("node {node_name} has no reachable agent endpoint"))
    })?;
    let uri = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    forward(app, ip, port, &uri, req).await
}

/// The container a request is for: the named one, or the only one. Errors in upstream's words.
fn container_of(pod: &Value, pod_name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let names = |field: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    match asked.filter(|c| !c.is_empty()) {
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
        Some(c)
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c) =>
        {
            Ok(c.to_string())
        }
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
    }
}

/// The node agent's address and port from a Node object: the first InternalIP (else
/// ExternalIP), and the advertised kubelet port.
fn node_endpoint(node: &Value) -> Option<(IpAddr, u16)> {
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u64::from(u16::MAX))? as u16;
    let addresses = node.pointer("/status/addresses")?.as_array()?;
    let ip = ["InternalIP", "ExternalIP"].iter().find_map(|kind| {
        addresses
            .iter()
            .filter(|a| a["type"] == *kind)
            .find_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
    })?;
    Some((ip, port))
}

/// Sends `req` to the node at `ip:port` as `uri` and relays the answer (tunnelling upgrades).
async fn forward(
    app: &App,
    ip: IpAddr,
    port: u16,
    uri: &str,
    mut req: Request<Body>,
) -> Result<Response, ApiError> {
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::unavailable(format!("error dialing backend: {what} {ip}:{port}: {e}"))
    };
    let tcp = tokio::net::TcpStream::connect((ip, port))
        .await
        .map_err(|e| unavailable("dial tcp", &e))?;
    let _ = tcp.set_nodelay(true);
    let connector = tokio_rustls::TlsConnector::from(node_tls());
    let tls = connector
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
        .map_err(|e| unavailable("tls handshake with", &e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable("http handshake with", &e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });

    let client_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let mut out = hyper::Request::builder()
        .method(req.method().clone())
        .uri(uri);
    for (k, v) in req.headers() {
        if k != header::AUTHORIZATION && k != header::HOST {
            out = out.header(k, v);
        }
    }
    let bearer =
        HeaderValue::from_str(&format!("Bearer {}", app.node_token)).map_err(ApiError::internal)?;
    let out = out
        .header(header::HOST, format!("{ip}:{port}"))
        .header(header::AUTHORIZATION, bearer)
        .body(req.into_body())
        .map_err(ApiError::internal)?;
    let mut resp = sender
        .send_request(out)
        .await
        .map_err(|e| unavailable("request to", &e))?;

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::bad_request("the request asked for no upgrade"));
        };
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Ok(client), Ok(backend)) = tokio::join!(client_upgrade, backend_upgrade) else {
                return;
            };
            let mut client = TokioIo::new(client);
            let mut backend = TokioIo::new(backend);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
        });
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// The TLS client configuration for nodes: encrypted, certificate not verified.
fn node_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyNodeCertificate(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts any node certificate but still checks the handshake signatures with it.
#[derive(Debug)]
struct AnyNodeCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyNodeCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_container_is_named_or_the_only_one() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}]}});
        assert_eq!(container_of(&pod, "p", Some("b")).unwrap(), "b");
        assert_eq!(container_of(&pod, "p", Some("i")).unwrap(), "i");
        let e = container_of(&pod, "p", None).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        let e = container_of(&pod, "p", Some("x")).unwrap_err();
        assert_eq!(e.message, "container x is not valid for pod p");
        let one = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container_of(&one, "p", Some("")).unwrap(), "only");
    }

    #[test]
    fn the_node_endpoint_comes_from_its_status() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        assert_eq!(
            node_endpoint(&node),
            Some(("127.0.0.1".parse().unwrap(), 10250))
        );
        let no_port = json!({"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}}});
        assert_eq!(node_endpoint(&no_port), None);
    }
}
