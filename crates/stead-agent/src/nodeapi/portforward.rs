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
        match from_pod.read(&mut buf).await {
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
