//! Attach: the agent's side of a container shim's attach socket (`attach.sock` in the
//! container dir), and the framing both sides speak.
//!
//! Every message is a frame: one kind byte, the payload length (u32, big endian), the
//! payload. Client to shim: [`HELLO`] (first; payload `[1]` when the client attaches stdin),
//! [`STDIN`] data, [`CLOSE_STDIN`], [`RESIZE`] (cols, rows: u16 big endian each). Shim to
//! client: [`STDOUT`] and [`STDERR`] data, then [`EXIT`] (the exit code, i32 big endian) when
//! the container ended, and the socket closes.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::SandboxRuntime;
use crate::runtime::{ContainerId, ExecSession, ExecSpec, RuntimeError};

/// The socket's file name in the container dir.
pub(super) const SOCKET: &str = "attach.sock";

pub(super) const STDIN: u8 = 0;
pub(super) const STDOUT: u8 = 1;
pub(super) const STDERR: u8 = 2;
pub(super) const EXIT: u8 = 3;
pub(super) const RESIZE: u8 = 4;
pub(super) const HELLO: u8 = 5;
pub(super) const CLOSE_STDIN: u8 = 6;

/// The largest payload a frame may carry.
const MAX_PAYLOAD: usize = 1 << 20;

/// The socket's path through an open handle of its directory: short enough for a socket
/// address however deep the state dir is.
pub(super) fn socket_path(dir: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()))
}

pub(super) fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 5);
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The first complete frame in `buf`: `(kind, payload, bytes used)`. An oversized frame is
/// taken as an empty one of unknown kind, consuming the buffer.
pub(super) fn parse(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    if buf.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MAX_PAYLOAD {
        return Some((u8::MAX, &[], buf.len()));
    }
    let end = 5 + len;
    (buf.len() >= end).then(|| (buf[0], &buf[5..end], end))
}

fn failed(what: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Failed(what.to_string())
}

type Reader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type Writer = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

pub(super) async fn attach(
    rt: &SandboxRuntime,
    id: &ContainerId,
    spec: &ExecSpec,
) -> Result<ExecSession, RuntimeError> {
    let id2 = id.clone();
    let dir = rt.blocking(move |inner| inner.attach_dir(&id2)).await?;
    let stream = tokio::task::spawn_blocking(move || {
        let dir = File::open(&dir)?;
        let stream = std::os::unix::net::UnixStream::connect(socket_path(&dir))?;
        stream.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(stream)
    })
    .await
    .map_err(failed)?
    .map_err(|e| failed(format!("attach to container {id}: {e}")))?;
    let mut stream = tokio::net::UnixStream::from_std(stream).map_err(failed)?;
    stream
        .write_all(&frame(HELLO, &[u8::from(spec.stdin)]))
        .await
        .map_err(|e| failed(format!("attach to container {id}: {e}")))?;

    let (input, to_shim) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let stdin = spec.stdin.then(|| {
        let (client, mut ours) = tokio::io::duplex(64 * 1024);
        let input = input.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match ours.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = input.send(frame(CLOSE_STDIN, &[])).await;
                        return;
                    }
                    Ok(n) => {
                        if input.send(frame(STDIN, &buf[..n])).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Box::new(client) as Writer
    });
    let resize = spec.tty.then(|| {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(u16, u16)>(8);
        let input = input.clone();
        tokio::spawn(async move {
            while let Some((cols, rows)) = rx.recv().await {
                let mut size = cols.to_be_bytes().to_vec();
                size.extend_from_slice(&rows.to_be_bytes());
                if input.send(frame(RESIZE, &size)).await.is_err() {
                    return;
                }
            }
        });
        tx
    });
    drop(input);
    let pipe = |on: bool| {
        on.then(|| {
            let (ours, client) = tokio::io::duplex(64 * 1024);
            (ours, Box::new(client) as Reader)
        })
        .unzip()
    };
    let (out_tx, stdout) = pipe(spec.stdout);
    // With a tty everything is stdout.
    let (err_tx, stderr) = pipe(spec.stderr && !spec.tty);
    let (exit_tx, exit) = tokio::sync::oneshot::channel();
    tokio::spawn(relay(stream, to_shim, out_tx, err_tx, exit_tx));
    Ok(ExecSession {
        stdin,
        stdout,
        stderr,
        exit,
        resize,
    })
}

/// Moves frames between the shim's socket and the session's streams until the shim says the
/// container ended, the socket closes, or the session is dropped (which detaches).
async fn relay(
    mut stream: tokio::net::UnixStream,
    mut to_shim: tokio::sync::mpsc::Receiver<Vec<u8>>,
    mut stdout: Option<tokio::io::DuplexStream>,
    mut stderr: Option<tokio::io::DuplexStream>,
    mut exit: tokio::sync::oneshot::Sender<i32>,
) {
    let mut inbuf = Vec::new();
    let mut input_open = true;
    loop {
        tokio::select! {
            n = stream.read_buf(&mut inbuf) => {
                if !matches!(n, Ok(n) if n > 0) {
                    return;
                }
                while let Some((kind, payload, used)) = parse(&inbuf) {
                    let target = match kind {
                        STDOUT => stdout.as_mut(),
                        STDERR => stderr.as_mut(),
                        EXIT => {
                            // Output first, then the exit: the streams end before it resolves.
                            let code = payload
                                .try_into()
                                .map(i32::from_be_bytes)
                                .unwrap_or(-1);
                            drop((stdout.take(), stderr.take()));
                            let _ = exit.send(code);
                            return;
                        }
                        _ => None,
                    };
                    if let Some(w) = target
                        && w.write_all(payload).await.is_err()
                    {
                        // The session was dropped: detach.
                        return;
                    }
                    inbuf.drain(..used);
                }
            }
            msg = to_shim.recv(), if input_open => match msg {
                Some(frame) => {
                    if stream.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                None => input_open = false,
            },
            () = exit.closed() => return,
        }
    }
}
