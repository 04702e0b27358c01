//! SPDY/3.1, as Kubernetes clients speak it for exec/attach (kubectl before 1.30, and the
//! fallback of newer ones) and port-forward: [`frame`] turns frames into bytes and back,
//! [`session`] runs a server-side session over a byte transport. The transport is either the
//! HTTP connection itself after `Upgrade: SPDY/3.1` ([`upgrade_response`] answers the
//! request), or a WebSocket whose binary messages carry the SPDY byte stream (kubectl 1.31+
//! port-forward, subprotocol `SPDY/3.1+portforward.k8s.io`; [`over_websocket`]).

pub mod frame;
pub mod session;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

pub use session::{Session, Stream};

/// The header clients list their stream protocols in, and the server answers its choice in.
pub const PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// True when the request asks to upgrade to SPDY/3.1.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("spdy/3.1"))
}

/// The stream protocols the client offers, in its order of preference.
pub fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first protocol the client offers that the server supports.
pub fn negotiate(headers: &HeaderMap, supported: &[&'static str]) -> Option<&'static str> {
    offered(headers)
        .iter()
        .find_map(|p| supported.iter().find(|s| **s == p).copied())
}

/// The `101 Switching Protocols` answer to a SPDY upgrade that chose `protocol`.
pub fn upgrade_response(protocol: &str) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header(PROTOCOL_HEADER, protocol)
        .body(Body::empty())
        .expect("a valid response")
}

/// A byte transport over `socket`: what is written goes out as binary messages, what arrives
/// in binary (or text) messages is read. Ends when either side closes.
pub fn over_websocket(socket: WebSocket) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let (mut ws_tx, mut ws_rx) = socket.split();
        let (mut rd, mut wr) = tokio::io::split(ours);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            tokio::select! {
                msg = ws_rx.next() => match msg {
                    Some(Ok(Message::Binary(data))) => {
                        if wr.write_all(&data).await.is_err() { break; }
                    }
                    Some(Ok(Message::Text(text))) => {
                        if wr.write_all(text.as_bytes()).await.is_err() { break; }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                n = rd.read(&mut buf) => match n {
                    Ok(0) | Err(_) => {
                        let _ = ws_tx.send(Message::Close(None)).await;
                        break;
                    }
                    Ok(n) => {
                        let data = bytes::Bytes::copy_from_slice(&buf[..n]);
                        if ws_tx.send(Message::Binary(data)).await.is_err() { break; }
                    }
                },
            }
        }
        let _ = wr.shutdown().await;
    });
    theirs
}
