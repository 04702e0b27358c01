//! `kubectl port-forward` over SPDY (`portforward.k8s.io`): for every local connection the
//! client opens two streams sharing a `requestID` header — `streamType: error` and
//! `streamType: data`, both with the pod `port`. Once both are there the node dials that port
//! inside the pod's network namespace ([`Runtime::connect`]) and copies bytes both ways; a
//! failure is written as text on the error stream. When the pod side of the connection ends,
//! the data stream and then the error stream are finished, which tells the client this
//! connection is over.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::spdy::{Session, Stream};
use crate::runtime::{Runtime, SandboxId};

/// The SPDY stream protocol (`X-Stream-Protocol-Version`).
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of kubectl 1.31+: a SPDY session inside binary messages.
pub const WEBSOCKET_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// The pod a session forwards to.
#[derive(Debug, Clone)]
pub struct Target {
    pub sandbox: SandboxId,
    /// `namespace/name`, for messages.
    pub pod: String,
}

#[derive(Default)]
struct Pair {
    error: Option<Stream>,
    data: Option<Stream>,
}

/// Serves one port-forward session until the client closes it.
pub async fn serve<R: Runtime>(mut session: Session, runtime: Arc<R>, target: Target) {
    let mut pending: HashMap<String, Pair> = HashMap::new();
    while let Some(stream) = session.accept().await {
        let request = stream.header("requestid").unwrap_or("").to_string();
        let pair = pending.entry(request.clone()).or_default();
        match stream.header("streamtype") {
            Some("error") if pair.error.is_none() => pair.error = Some(stream),
            Some("data") if pair.data.is_none() => pair.data = Some(stream),
            _ => {
                stream.outgoing.reset().await;
                continue;
            }
        }
        if pair.error.is_some() && pair.data.is_some() {
            let pair = pending.remove(&request).expect("just seen");
            let (Some(error), Some(data)) = (pair.error, pair.data) else {
                continue;
            };
            tokio::spawn(forward(runtime.clone(), target.clone(), error, data));
        }
    }
    session.close().await;
}

/// The port a data stream asks for.
fn port(stream: &Stream) -> Result<u16, String> {
    let raw = stream.header("port").unwrap_or("");
    match raw.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("invalid port {raw:?}")),
    }
}

async fn forward<R: Runtime>(runtime: Arc<R>, target: Target, error: Stream, data: Stream) {
    let port = match port(&data) {
        Ok(p) => p,
        Err(e) => return fail(&error, &data, e).await,
    };
    let conn = match runtime.connect(&target.sandbox, port).await {
        Ok(c) => c,
        Err(e) => {
            let message = format!(
                "error forwarding port {port} to pod {}, uid {}: {e}",
                target.pod, target.sandbox
            );
            return fail(&error, &data, message).await;
        }
    };
    let (mut from_pod, mut to_pod) = conn.into_split();
    let mut incoming = data.incoming;
    // Client → pod, until the client finishes or resets its side.
    tokio::spawn(async move {
        while let Some(chunk) = incoming.recv().await {
            if to_pod.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to_pod.shutdown().await;
    });
    // Pod → client, until the pod closes its side.
    let mut buf = vec![0u8; 32 * 1024];
    let mut problem = None;
    loop {
        // A client that reset the stream or went away ends the forward even if the pod
        // keeps its side open.
        let read = tokio::select! {
            read = from_pod.read(&mut buf) => read,
            () = data.outgoing.stopped() => break,
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                if data.outgoing.write(&buf[..n]).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                problem = Some(format!(
                    "error forwarding port {port} to pod {}: {e}",
                    target.pod
                ));
                break;
            }
        }
    }
    data.outgoing.finish().await;
    if let Some(message) = problem {
        let _ = error.outgoing.write(message.as_bytes()).await;
    }
    error.outgoing.finish().await;
}

/// Reports `message` on the error stream and ends the pair.
async fn fail(error: &Stream, data: &Stream, message: String) {
    let _ = error.outgoing.write(message.as_bytes()).await;
    error.outgoing.finish().await;
    data.outgoing.finish().await;
}

/// The WebSocket channel protocols of kube-rs and the Python client (`?ports=80,1234`):
/// binary messages prefixed with a channel byte, `2i` data and `2i+1` errors of the i-th port;
/// each channel first carries the port number (2 bytes, little-endian).
pub const CHANNEL_PROTOCOLS: [&str; 3] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "portforward.k8s.io",
];

/// The `ports` of a channel-protocol port-forward query.
pub fn query_ports(query: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for (k, v) in super::logs::form_pairs(query) {
        if k == "ports" {
            for p in v.split(',').filter(|p| !p.trim().is_empty()) {
                match p.trim().parse::<u16>() {
                    Ok(n) if n > 0 => ports.push(n),
                    _ => return Err(format!("invalid port {p:?}")),
                }
            }
        }
    }
    if ports.is_empty() || ports.len() > 127 {
        return Err("port-forward over the channel protocol needs 1 to 127 ports".into());
    }
    Ok(ports)
}

/// Serves a channel-protocol port-forward: one pod connection per requested port, for as
/// long as the client keeps the socket and some pod connection is open.
pub async fn serve_channels<R: Runtime>(
    socket: axum::extract::ws::WebSocket,
    runtime: Arc<R>,
    target: Target,
    ports: Vec<u16>,
) {
    use axum::extract::ws::Message;
    use futures::{SinkExt, StreamExt};

    let (mut ws_tx, mut ws_rx) = socket.split();
    let (from_pod_tx, mut from_pod) = tokio::sync::mpsc::channel::<(u8, Option<Vec<u8>>)>(16);
    let mut writers = Vec::new();
    let mut open = 0usize;
    let frame = |ch: u8, data: &[u8]| {
        let mut v = Vec::with_capacity(data.len() + 1);
        v.push(ch);
        v.extend_from_slice(data);
        Message::Binary(v.into())
    };
    for (i, &port) in ports.iter().enumerate() {
        let (data_ch, error_ch) = (2 * i as u8, 2 * i as u8 + 1);
        for ch in [data_ch, error_ch] {
            if ws_tx.send(frame(ch, &port.to_le_bytes())).await.is_err() {
                return;
            }
        }
        match runtime.connect(&target.sandbox, port).await {
            Ok(conn) => {
                let (mut r, w) = conn.into_split();
                writers.push(Some(w));
                open += 1;
                let tx = from_pod_tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tx.send((data_ch, Some(buf[..n].to_vec()))).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = tx.send((data_ch, None)).await;
                });
            }
            Err(e) => {
                writers.push(None);
                let message = format!(
                    "error forwarding port {port} to pod {}, uid {}: {e}",
                    target.pod, target.sandbox
                );
                let _ = ws_tx.send(frame(error_ch, message.as_bytes())).await;
            }
        }
    }
    while open > 0 {
        tokio::select! {
            msg = ws_rx.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    let Some((&ch, payload)) = data.split_first() else { continue };
                    // Data for a port (even channel) whose pod connection is open.
                    if ch % 2 == 0
                        && let Some(slot) = writers.get_mut(usize::from(ch / 2))
                        && let Some(w) = slot.as_mut()
                        && w.write_all(payload).await.is_err()
                    {
                        *slot = None;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            Some((ch, data)) = from_pod.recv() => match data {
                Some(data) => {
                    if ws_tx.send(frame(ch, &data)).await.is_err() { return; }
                }
                None => open -= 1,
            },
        }
    }
    let _ = ws_tx.send(Message::Close(None)).await;
}
