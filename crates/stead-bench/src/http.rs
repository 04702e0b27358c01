//! One HTTP/1.1 keep-alive connection over TLS (hyper 1 + tokio-rustls), the client every
//! latency and watch benchmark uses. Requests on a [`Conn`] are strictly sequential.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls;

pub const MERGE_PATCH: &str = "application/merge-patch+json";

pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

/// Connects, completes the TLS handshake and the HTTP/1.1 handshake.
pub async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<Conn> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    tcp.set_nodelay(true)?;
    let tls = TlsConnector::from(config)
        .connect(tls::loopback_name(), tcp)
        .await
        .context("TLS handshake")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Conn { sender })
}

impl Conn {
    /// Sends a request and returns the response with its body still streaming.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1")
            .header(header::ACCEPT, "application/json");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Full::new(body))?;
        self.sender.ready().await.context("connection closed")?;
        Ok(self.sender.send_request(req).await?)
    }

    /// Sends a request, reads the whole body, and fails unless the status is `expect`.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
        expect: StatusCode,
    ) -> Result<Bytes> {
        let resp = self.send(method.clone(), path, content_type, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if status != expect {
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(400)])
            );
        }
        Ok(body)
    }

    pub async fn get(&mut self, path: &str) -> Result<Bytes> {
        self.call(Method::GET, path, None, Bytes::new(), StatusCode::OK)
            .await
    }

    pub async fn create(&mut self, path: &str, body: Bytes) -> Result<Bytes> {
        self.call(
            Method::POST,
            path,
            Some("application/json"),
            body,
            StatusCode::CREATED,
        )
        .await
    }
}

/// Opens one watch on its own connection and spawns a task that hands every complete event line
/// to `on_line`, stamped with the arrival of the chunk that completed it; `on_line` returns false
/// to stop.
pub async fn watch_lines<F>(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: &str,
    mut on_line: F,
) -> Result<tokio::task::JoinHandle<()>>
where
    F: FnMut(&[u8], std::time::Instant) -> bool + Send + 'static,
{
    let mut conn = connect(addr, config).await?;
    let resp = conn.send(Method::GET, path, None, Bytes::new()).await?;
    if resp.status() != StatusCode::OK {
        bail!("watch {path}: {}", resp.status());
    }
    let mut body = resp.into_body();
    Ok(tokio::spawn(async move {
        let _conn = conn;
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let at = std::time::Instant::now();
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                if !on_line(&line, at) {
                    return;
                }
            }
        }
    }))
}
