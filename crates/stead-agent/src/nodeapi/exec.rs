//! `kubectl exec` and `kubectl attach` over a WebSocket with the Kubernetes channel protocol (`v5.channel.k8s.io`,
//! and `v4` for older clients): every binary message starts with a channel byte — 0 stdin,
//! 1 stdout, 2 stderr, 3 the final Status, 4 terminal resize, 255 close (v5: `[255, 0]`
//! half-closes stdin) — then the payload. The exit status goes out once on channel 3 as a
//! `metav1.Status`, then the socket closes with code 1000.
//!
//! Over SPDY (kubectl before 1.30, or its fallback; [`pump_spdy`]) the same protocol names
//! (`v5`…`v2.channel.k8s.io`, `channel.k8s.io`) are negotiated with `X-Stream-Protocol-Version`
//! and each channel is a stream the client opens, named by its `streamType` header (`stdin`,
//! `stdout`, `stderr`, `error`, `resize`). Ends of input and output are stream FINs; the exit
//! status goes on the error stream (a Status from v4 on, text before), then that stream ends.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use std::time::Duration;

use super::spdy::session::{Incoming, Outgoing};
use super::spdy::{Session, Stream};
use crate::runtime::{ExecSession, ExecSpec};

/// The subprotocols served, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// The exec options of the query: repeated `command`, `stdin`, `stdout`, `stderr`, `tty`.
pub fn exec_spec(query: &str) -> Result<ExecSpec, String> {
    let spec = stream_options(query)?;
    if spec.command.is_empty() {
        return Err("you must specify at least 1 command".into());
    }
    Ok(spec)
}

/// The attach options of the query: `stdin`, `stdout`, `stderr`, `tty` (no command).
pub fn attach_spec(query: &str) -> Result<ExecSpec, String> {
    let mut spec = stream_options(query)?;
    spec.command.clear();
    Ok(spec)
}

fn stream_options(query: &str) -> Result<ExecSpec, String> {
    let mut spec = ExecSpec {
        command: Vec::new(),
        stdin: false,
        stdout: false,
        stderr: false,
        tty: false,
    };
    for (k, v) in super::logs::form_pairs(query) {
        let on = matches!(v.as_str(), "true" | "1");
        match k.as_str() {
            "command" => spec.command.push(v),
            "stdin" | "input" => spec.stdin = on,
            "stdout" | "output" => spec.stdout = on,
            "stderr" | "error" => spec.stderr = on,
            "tty" => spec.tty = on,
            _ => {}
        }
    }
    if !(spec.stdin || spec.stdout || spec.stderr) {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    if spec.tty && spec.stderr {
        // kubectl never asks for both; with a terminal stderr is folded into stdout.
        spec.stderr = false;
    }
    Ok(spec)
}

/// The Status sent on channel 3 for an exit code.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
    }
}

/// The Status sent on channel 3 when the process could not run at all.
pub fn failure_status(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"})
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// Reads one chunk from an optional stream; `None` stream or end of stream → `None`.
async fn read_chunk(
    stream: &mut Option<Box<dyn AsyncRead + Send + Unpin>>,
    buf: &mut [u8],
) -> Option<usize> {
    match stream {
        Some(s) => match s.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

/// Pumps a started exec session over `socket` until the process ends and its output is
/// drained, then sends the exit Status and closes. `v5` enables the close channel.
pub async fn pump(socket: WebSocket, session: ExecSession, v5: bool) {
    pump_session(socket, session, v5, false).await
}

/// Pumps an attach session: like [`pump`], but the client leaving detaches (the container
/// keeps running) and the container's end is reported as `Success` whatever its exit code,
/// as upstream's kubelet does: `kubectl run` reads the exit code from the pod's status, and
/// takes a failed attach as a reason to print the logs instead.
pub async fn pump_attach(socket: WebSocket, session: ExecSession, v5: bool) {
    pump_session(socket, session, v5, true).await
}

/// An attach session whose exit resolves to 0 once the container ended: for the SPDY path,
/// which reports the exit as it gets it (see [`pump_attach`] for why attach succeeds).
pub fn attached(mut session: ExecSession) -> ExecSession {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ended = std::mem::replace(&mut session.exit, rx);
    tokio::spawn(async move {
        let _ = ended.await;
        let _ = tx.send(0);
    });
    session
}

/// Pumps a session until the process ends and its output is drained, then sends the exit
/// Status and closes.
///
/// The client's frames are read on a task of their own: a write to the process's stdin may wait
/// until the process reads, and the process may first wait for its output to be drained (`cat`
/// of more than two pipe buffers), so output must keep flowing while stdin waits.
async fn pump_session(socket: WebSocket, session: ExecSession, v5: bool, attach: bool) {
    let (mut tx, rx) = socket.split();
    let ExecSession {
        stdin,
        mut stdout,
        mut stderr,
        exit: mut exit_rx,
        resize,
    } = session;
    let (gone_tx, mut client_gone) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(read_client(rx, stdin, resize, v5, gone_tx));
    let mut out_buf = vec![0u8; 32 * 1024];
    let mut err_buf = vec![0u8; 32 * 1024];
    let mut exit = None;
    let mut gone = false;
    // Whether the process ended with its output drained (rather than the client going away).
    let finished = loop {
        if stdout.is_none() && stderr.is_none() && exit.is_some() {
            break true;
        }
        tokio::select! {
            n = read_chunk(&mut stdout, &mut out_buf) => match n {
                Some(n) => if tx.send(frame(STDOUT, &out_buf[..n])).await.is_err() { break false },
                None => stdout = None,
            },
            n = read_chunk(&mut stderr, &mut err_buf) => match n {
                Some(n) => if tx.send(frame(STDERR, &err_buf[..n])).await.is_err() { break false },
                None => stderr = None,
            },
            code = &mut exit_rx, if exit.is_none() => {
                exit = Some(code.unwrap_or(-1));
            },
            // The client went away: stdin has ended; the process is left to finish (an
            // attached client detaches).
            _ = &mut client_gone, if !gone => {
                gone = true;
                if exit.is_some() || attach { break false }
            },
        }
    };
    if finished {
        let status = if attach {
            exit_status(0)
        } else {
            exit_status(exit.unwrap_or(-1))
        };
        let _ = tx.send(frame(ERROR, status.to_string().as_bytes())).await;
        let _ = tx
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    }
    input.abort();
}

/// Reads the client's frames into the process until the client goes away, then ends stdin and
/// says so on `gone`.
async fn read_client(
    mut rx: futures::stream::SplitStream<WebSocket>,
    mut stdin: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    resize: Option<tokio::sync::mpsc::Sender<(u16, u16)>>,
    v5: bool,
    gone: tokio::sync::oneshot::Sender<()>,
) {
    while let Some(Ok(msg)) = rx.next().await {
        match msg {
            Message::Binary(data) => handle_input(&data, &mut stdin, &resize, v5).await,
            Message::Text(text) => handle_input(text.as_bytes(), &mut stdin, &resize, v5).await,
            _ => {}
        }
    }
    drop(stdin);
    let _ = gone.send(());
}

/// Applies one client frame: stdin data, a resize, or (v5) the close of stdin.
async fn handle_input(
    data: &[u8],
    stdin: &mut Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    resize: &Option<tokio::sync::mpsc::Sender<(u16, u16)>>,
    v5: bool,
) {
    let Some((&channel, payload)) = data.split_first() else {
        return;
    };
    match channel {
        STDIN => {
            if let Some(w) = stdin
                && (w.write_all(payload).await.is_err() || w.flush().await.is_err())
            {
                *stdin = None;
            }
        }
        RESIZE => {
            if let (Some(tx), Ok(size)) = (resize, serde_json::from_slice::<Value>(payload)) {
                let width = size["Width"].as_u64().unwrap_or(80) as u16;
                let height = size["Height"].as_u64().unwrap_or(24) as u16;
                let _ = tx.send((width, height)).await;
            }
        }
        CLOSE if v5 && payload.first() == Some(&STDIN) => {
            if let Some(mut w) = stdin.take() {
                let _ = w.shutdown().await;
            }
        }
        _ => {}
    }
}

/// Sends a failure Status on channel 3 and closes: for an exec that could not start.
pub async fn fail(socket: WebSocket, message: &str) {
    let (mut tx, _rx) = socket.split();
    let _ = tx
        .send(frame(ERROR, failure_status(message).to_string().as_bytes()))
        .await;
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
}

/// The SPDY stream protocols served, preferred first.
pub const SPDY_PROTOCOLS: [&str; 5] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// How long the client has to open its streams after the upgrade.
const STREAM_WAIT: Duration = Duration::from_secs(30);
/// How long the client has to close the connection after the exit status.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// The streams of one SPDY exec.
#[derive(Default)]
struct SpdyStreams {
    error: Option<Outgoing>,
    stdin: Option<Incoming>,
    stdout: Option<Outgoing>,
    stderr: Option<Outgoing>,
    resize: Option<Incoming>,
}

impl SpdyStreams {
    fn complete(&self, spec: &ExecSpec, resize: bool) -> bool {
        self.error.is_some()
            && (!spec.stdin || self.stdin.is_some())
            && (!spec.stdout || self.stdout.is_some())
            && (!spec.stderr || self.stderr.is_some())
            && (!resize || self.resize.is_some())
    }

    fn add(&mut self, stream: Stream) -> Result<(), Stream> {
        let kind = stream.header("streamtype").unwrap_or("").to_string();
        match kind.as_str() {
            "error" if self.error.is_none() => self.error = Some(stream.outgoing),
            "stdin" if self.stdin.is_none() => self.stdin = Some(stream.incoming),
            "stdout" if self.stdout.is_none() => self.stdout = Some(stream.outgoing),
            "stderr" if self.stderr.is_none() => self.stderr = Some(stream.outgoing),
            "resize" if self.resize.is_none() => self.resize = Some(stream.incoming),
            _ => return Err(stream),
        }
        Ok(())
    }
}

/// Runs an exec over a SPDY session negotiated as `protocol` (one of [`SPDY_PROTOCOLS`]):
/// waits for the client's streams, starts the process with `start`, pumps its stdio and
/// reports its exit on the error stream.
pub async fn pump_spdy<F>(mut session: Session, spec: ExecSpec, protocol: &str, start: F)
where
    F: Future<Output = Result<ExecSession, String>>,
{
    let version = match protocol {
        "v5.channel.k8s.io" => 5,
        "v4.channel.k8s.io" => 4,
        "v3.channel.k8s.io" => 3,
        "v2.channel.k8s.io" => 2,
        _ => 1,
    };
    let wants_resize = spec.tty && version >= 3;
    let mut streams = SpdyStreams::default();
    let gathered = tokio::time::timeout(STREAM_WAIT, async {
        while !streams.complete(&spec, wants_resize) {
            let stream = session.accept().await?;
            if let Err(unexpected) = streams.add(stream) {
                unexpected.outgoing.reset().await;
            }
        }
        Some(())
    })
    .await;
    let (Ok(Some(())), Some(error)) = (gathered, streams.error.take()) else {
        tracing::debug!("spdy exec: the client did not open its streams");
        session.close().await;
        return;
    };
    let report = |status: Value, text: String| {
        if version >= 4 {
            status.to_string()
        } else {
            text
        }
    };
    let message = match start.await {
        Err(e) => Some(report(failure_status(&e), e)),
        Ok(process) => {
            let code = run_spdy(process, &mut streams).await;
            let status = exit_status(code);
            let text = status["message"].as_str().unwrap_or("").to_string();
            (version >= 4 || code != 0).then(|| report(status, text))
        }
    };
    if let Some(message) = message {
        let _ = error.write(message.as_bytes()).await;
    }
    error.finish().await;
    // The client closes the connection once it has read the status.
    let _ = tokio::time::timeout(CLOSE_WAIT, session.ended()).await;
    session.close().await;
}

/// Pumps the process's stdio through the streams; returns its exit code.
async fn run_spdy(mut process: ExecSession, streams: &mut SpdyStreams) -> i32 {
    if let (Some(mut input), Some(mut stdin)) = (streams.stdin.take(), process.stdin.take()) {
        tokio::spawn(async move {
            while let Some(chunk) = input.recv().await {
                if stdin.write_all(&chunk).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
            }
            let _ = stdin.shutdown().await;
        });
    }
    if let (Some(mut input), Some(resize)) = (streams.resize.take(), process.resize.take()) {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(chunk) = input.recv().await {
                buf.extend_from_slice(&chunk);
                let mut sizes = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
                let mut used = 0;
                while let Some(Ok(size)) = sizes.next() {
                    used = sizes.byte_offset();
                    let width = size["Width"].as_u64().unwrap_or(80) as u16;
                    let height = size["Height"].as_u64().unwrap_or(24) as u16;
                    if resize.send((width, height)).await.is_err() {
                        return;
                    }
                }
                buf.drain(..used);
            }
        });
    }
    tokio::join!(
        copy_out(process.stdout.take(), streams.stdout.take()),
        copy_out(process.stderr.take(), streams.stderr.take()),
    );
    process.exit.await.unwrap_or(-1)
}

/// Copies one output of the process to its stream, then finishes the stream.
async fn copy_out(from: Option<Box<dyn AsyncRead + Send + Unpin>>, to: Option<Outgoing>) {
    let mut buf = vec![0u8; 32 * 1024];
    let mut open = true;
    if let Some(mut from) = from {
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // A client that went away no longer reads; the output is still drained.
            if let (Some(to), true) = (&to, open) {
                open = to.write(&buf[..n]).await.is_ok();
            }
        }
    }
    if let Some(to) = to {
        to.finish().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_becomes_an_exec_spec() {
        let s = exec_spec("command=ls&command=%2F&container=c1&stderr=true&stdout=true").unwrap();
        assert_eq!(s.command, vec!["ls", "/"]);
        assert!(s.stdout && s.stderr && !s.stdin && !s.tty);
        let s = exec_spec("command=sh&stdin=true&stdout=true&tty=true").unwrap();
        assert!(s.tty && s.stdin && !s.stderr);
        assert!(exec_spec("stdout=true").is_err());
        assert!(exec_spec("command=ls").is_err());
        let a = attach_spec("container=c&stdin=true&stdout=true&tty=true").unwrap();
        assert!(a.stdin && a.stdout && a.tty && a.command.is_empty());
        assert!(attach_spec("container=c").is_err());
    }

    #[test]
    fn exit_codes_become_the_status_kubectl_reads() {
        assert_eq!(exit_status(0)["status"], "Success");
        let s = exit_status(3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
    }
}
