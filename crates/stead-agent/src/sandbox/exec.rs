//! `exec_sync` and `exec`: a helper process joins the container's namespaces and cgroup and
//! runs the command; its stdio are pipes (or a pty) the runtime hands out as async streams.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::SandboxRuntime;
use super::helper::HELPER_ARG;
use super::state::ExecLaunch;
use crate::runtime::{ContainerId, ExecOutput, ExecSession, ExecSpec, RuntimeError};

fn failed(what: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Failed(what.to_string())
}

async fn command(
    rt: &SandboxRuntime,
    id: &ContainerId,
    argv: &[String],
    tty: bool,
) -> Result<Command, RuntimeError> {
    if argv.is_empty() {
        return Err(failed(format!("exec in container {id}: no command")));
    }
    let id2 = id.clone();
    let (pid, working_dir, cgroup_procs) =
        rt.blocking(move |inner| inner.exec_target(&id2)).await?;
    let launch = ExecLaunch {
        pid,
        working_dir,
        tty,
        cgroup_procs,
        command: argv.to_vec(),
    };
    let mut cmd = Command::new(&rt.inner.config.helper_exe);
    cmd.arg(HELPER_ARG)
        .arg("exec")
        .arg(serde_json::to_string(&launch).map_err(failed)?);
    cmd.kill_on_drop(true);
    Ok(cmd)
}

pub(super) async fn exec_sync(
    rt: &SandboxRuntime,
    id: &ContainerId,
    argv: &[String],
    timeout: Duration,
) -> Result<ExecOutput, RuntimeError> {
    let mut cmd = command(rt, id, argv, false).await?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|e| failed(format!("exec in container {id}: {e}")))?;
    // Dropping the child on timeout kills the helper; its command dies with it (parent-death
    // signal).
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(ExecOutput {
            exit_code: exit_code(out.status),
            stdout: out.stdout,
            stderr: out.stderr,
        }),
        Ok(Err(e)) => Err(failed(format!("exec in container {id}: {e}"))),
        Err(_) => Err(failed(format!(
            "exec in container {id}: command timed out after {timeout:?}"
        ))),
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

pub(super) async fn exec(
    rt: &SandboxRuntime,
    id: &ContainerId,
    spec: &ExecSpec,
) -> Result<ExecSession, RuntimeError> {
    let mut cmd = command(rt, id, &spec.command, spec.tty).await?;
    if spec.tty {
        return exec_tty(cmd, id, spec).await;
    }
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(pipe(spec.stdin))
        .stdout(pipe(spec.stdout))
        .stderr(pipe(spec.stderr));
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("exec in container {id}: {e}")))?;
    let stdin = child
        .stdin
        .take()
        .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>);
    let stdout = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
    let stderr = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
    let (tx, exit) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let code = child.wait().await.map(exit_code).unwrap_or(255);
        let _ = tx.send(code);
    });
    Ok(ExecSession {
        stdin,
        stdout,
        stderr,
        exit,
        resize: None,
    })
}

async fn exec_tty(
    mut cmd: Command,
    id: &ContainerId,
    spec: &ExecSpec,
) -> Result<ExecSession, RuntimeError> {
    let pty = nix::pty::openpty(None, None)
        .map_err(|e| failed(format!("exec in container {id}: openpty: {e}")))?;
    let replica = pty.slave;
    let dup = |fd: &OwnedFd| {
        fd.try_clone()
            .map_err(|e| failed(format!("exec in container {id}: {e}")))
    };
    cmd.stdin(Stdio::from(dup(&replica)?))
        .stdout(Stdio::from(dup(&replica)?))
        .stderr(Stdio::from(replica));
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("exec in container {id}: {e}")))?;
    let master = pty.master;
    let reader = tokio::fs::File::from_std(std::fs::File::from(dup(&master)?));
    let writer = tokio::fs::File::from_std(std::fs::File::from(dup(&master)?));
    let (resize_tx, mut resize_rx) = tokio::sync::mpsc::channel::<(u16, u16)>(8);
    let resize_fd = master;
    tokio::spawn(async move {
        while let Some((cols, rows)) = resize_rx.recv().await {
            let size = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ reads a winsize struct that lives across the call; the fd is
            // the pty's controlling side, owned by this task.
            unsafe {
                libc::ioctl(resize_fd.as_raw_fd(), libc::TIOCSWINSZ, &size);
            }
        }
    });
    let (tx, exit) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let code = child.wait().await.map(exit_code).unwrap_or(255);
        let _ = tx.send(code);
    });
    // With a tty, stderr is folded into stdout.
    let stdout: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>> = spec
        .stdout
        .then(|| Box::new(PtyReader(reader)) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
    Ok(ExecSession {
        stdin: spec
            .stdin
            .then(|| Box::new(writer) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>),
        stdout,
        stderr: None,
        exit,
        resize: Some(resize_tx),
    })
}

/// The pty's reading side: EIO (every replica closed) is end of stream.
struct PtyReader(tokio::fs::File);

impl tokio::io::AsyncRead for PtyReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match std::pin::Pin::new(&mut self.0).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::EIO) => {
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}
