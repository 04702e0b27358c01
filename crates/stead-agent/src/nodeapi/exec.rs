//! `kubectl exec` and `kubectl attach` over a WebSocket with the Kubernetes channel protocol (`v5.channel.k8s.io`,
//! and `v4` for older clients): every binary message starts with a channel byte — 0 stdin,
//! 1 stdout, 2 stderr, 3 the final Status, 4 terminal resize, 255 close (v5: `[255, 0]`
//! half-closes stdin) — then the payload. The exit status goes out once on channel 3 as a
//! `metav1.Status`, then the socket closes with code 1000.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

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

async fn pump_session(socket: WebSocket, mut session: ExecSession, v5: bool, attach: bool) {
    let (mut tx, mut rx) = socket.split();
    let mut out_buf = vec![0u8; 32 * 1024];
    let mut err_buf = vec![0u8; 32 * 1024];
    let mut exit = None;
    let mut exit_rx = session.exit;
    let mut client_open = true;
    loop {
        let outputs_done = session.stdout.is_none() && session.stderr.is_none();
        if outputs_done && exit.is_some() {
            break;
        }
        tokio::select! {
            n = read_chunk(&mut session.stdout, &mut out_buf) => match n {
                Some(n) => if tx.send(frame(STDOUT, &out_buf[..n])).await.is_err() { return },
                None => session.stdout = None,
            },
            n = read_chunk(&mut session.stderr, &mut err_buf) => match n {
                Some(n) => if tx.send(frame(STDERR, &err_buf[..n])).await.is_err() { return },
                None => session.stderr = None,
            },
            code = &mut exit_rx, if exit.is_none() => {
                exit = Some(code.unwrap_or(-1));
            },
            msg = rx.next(), if client_open => match msg {
                Some(Ok(Message::Binary(data))) => {
                    handle_input(&data, &mut session.stdin, &session.resize, v5).await;
                }
                Some(Ok(Message::Text(text))) => {
                    handle_input(text.as_bytes(), &mut session.stdin, &session.resize, v5).await;
                }
                Some(Ok(_)) => {}
                // The client went away: stdin ends; the process is left to finish.
                Some(Err(_)) | None => {
                    session.stdin = None;
                    client_open = false;
                    if exit.is_some() || attach { return; }
                }
            },
        }
    }
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
