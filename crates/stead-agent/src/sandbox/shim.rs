//! The shim: the container's supervisor, like conmon. Forked by the `shim` helper into a new
//! session (so it outlives the agent), it starts the container process in the pod's
//! namespaces, reports its pid, copies its stdout/stderr into the CRI log
//! (`<RFC3339Nano> <stream> <F|P> <line>`) and records how it ended in `exit.json`
//! (`OOMKilled` when the cgroup counted an OOM kill).

#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, pipe2};

use super::helper::{ctx, detach_stdio, fork_or_fail, open_ns};
use super::rootfs::start_container;
use super::state::{ExitRecord, Launch, ProcId, ShimReport, now_rfc3339, read_json, write_json};

/// Splits a stream into CRI log lines: `<RFC3339Nano> <stream> <F|P> <line>`.
struct LogStream {
    name: &'static str,
    buf: Vec<u8>,
    open: bool,
}

/// Lines longer than this are split into partial (`P`) records.
const MAX_LOG_LINE: usize = 16 * 1024;

impl LogStream {
    fn new(name: &'static str) -> Self {
        LogStream {
            name,
            buf: Vec::new(),
            open: true,
        }
    }

    fn push(&mut self, data: &[u8], log: &mut File) {
        self.buf.extend_from_slice(data);
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            self.write(&line[..line.len() - 1], 'F', log);
        }
        while self.buf.len() >= MAX_LOG_LINE {
            let part: Vec<u8> = self.buf.drain(..MAX_LOG_LINE).collect();
            self.write(&part, 'P', log);
        }
    }

    fn finish(&mut self, log: &mut File) {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.write(&rest, 'F', log);
        }
    }

    fn write(&self, line: &[u8], tag: char, log: &mut File) {
        let mut record = format!("{} {} {tag} ", now_rfc3339(), self.name).into_bytes();
        record.extend_from_slice(line);
        record.push(b'\n');
        let _ = log.write_all(&record);
    }
}

pub(super) fn shim(dir: &Path) -> Result<(), String> {
    let launch: Launch = read_json(&dir.join("launch.json"))
        .map_err(ctx("read launch.json"))?
        .ok_or("no launch.json")?;
    let (report_r, report_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("pipe"))?;
    match fork_or_fail()? {
        ForkResult::Parent { .. } => {
            drop(report_w);
            let mut report = String::new();
            File::from(report_r)
                .read_to_string(&mut report)
                .map_err(ctx("read report"))?;
            if report.is_empty() {
                return Err("the shim ended without a report".into());
            }
            print!("{report}");
            Ok(())
        }
        ForkResult::Child => {
            drop(report_r);
            let _ = nix::unistd::setsid();
            detach_stdio();
            let mut report = Some(File::from(report_w));
            let code = match supervise(&launch, &mut report) {
                Ok(()) => 0,
                Err(message) => {
                    let line = ShimReport {
                        process: None,
                        shim: None,
                        started_at: None,
                        error: Some(message),
                    };
                    send_report(&mut report, &line);
                    1
                }
            };
            std::process::exit(code)
        }
    }
}

/// Writes the one report line and closes the pipe, which lets the waiting helper return.
fn send_report(report: &mut Option<File>, line: &ShimReport) {
    if let Some(mut pipe) = report.take() {
        let _ = writeln!(pipe, "{}", serde_json::to_string(line).unwrap_or_default());
    }
}

/// The shim proper: starts the container and supervises it to its end.
fn supervise(launch: &Launch, report: &mut Option<File>) -> Result<(), String> {
    if let Some(parent) = launch.log_path.parent() {
        fs::create_dir_all(parent).map_err(ctx("create log dir"))?;
    }
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log_path)
        .map_err(ctx("open log"))?;
    let (out_r, out_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("pipe"))?;
    let (err_r, err_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("pipe"))?;
    let (status_r, status_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("pipe"))?;
    let pid_ns = open_ns(launch.pause_pid, "pid")?;
    let other_ns = [
        (open_ns(launch.pause_pid, "net")?, CloneFlags::CLONE_NEWNET),
        (open_ns(launch.pause_pid, "uts")?, CloneFlags::CLONE_NEWUTS),
        (open_ns(launch.pause_pid, "ipc")?, CloneFlags::CLONE_NEWIPC),
    ];
    setns(pid_ns.as_fd(), CloneFlags::CLONE_NEWPID).map_err(ctx("setns pid"))?;
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None).map_err(ctx("block SIGCHLD"))?;
    let sigfd = SignalFd::with_flags(&chld, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
        .map_err(ctx("signalfd"))?;

    let child = match fork_or_fail()? {
        ForkResult::Child => {
            drop((out_r, err_r, status_r));
            let _ = nix::unistd::dup2_stdout(&out_w);
            let _ = nix::unistd::dup2_stderr(&err_w);
            let message = match start_container(launch, &other_ns) {
                Ok(never) => match never {},
                Err(message) => message,
            };
            let _ = File::from(status_w).write_all(message.as_bytes());
            std::process::exit(128)
        }
        ForkResult::Parent { child } => child,
    };
    drop((out_w, err_w, status_w));
    let started_at = now_rfc3339();
    let mut start_error = String::new();
    let _ = File::from(status_r).read_to_string(&mut start_error);
    let shim = ProcId::of(std::process::id() as i32);
    if !start_error.is_empty() {
        let _ = waitpid(child, None);
        let exit = ExitRecord {
            exit_code: 128,
            signal: None,
            started_at: None,
            finished_at: now_rfc3339(),
            reason: Some("StartError".into()),
            message: Some(start_error.clone()),
        };
        write_json(&launch.exit_path, &exit).map_err(ctx("write exit"))?;
        LogStream::new("stderr").write(start_error.as_bytes(), 'F', &mut log);
        let line = ShimReport {
            process: None,
            shim,
            started_at: None,
            error: Some(start_error),
        };
        send_report(report, &line);
        return Ok(());
    }
    let line = ShimReport {
        process: ProcId::of_any(child.as_raw()),
        shim,
        started_at: Some(started_at.clone()),
        error: None,
    };
    send_report(report, &line);

    let status = pump_until_exit(child, [out_r, err_r], &sigfd, &mut log);
    let (exit_code, signal) = match status {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
        _ => (255, None),
    };
    let oom = signal == Some(Signal::SIGKILL as i32) && oom_killed(launch.oom_file.as_deref());
    let exit = ExitRecord {
        exit_code,
        signal,
        started_at: Some(started_at),
        finished_at: now_rfc3339(),
        reason: oom.then(|| "OOMKilled".to_string()),
        message: None,
    };
    write_json(&launch.exit_path, &exit).map_err(ctx("write exit"))
}

/// Copies the container's output into the log until the container process exits, then drains
/// what is left without waiting for other holders of the pipes.
fn pump_until_exit(
    child: Pid,
    pipes: [OwnedFd; 2],
    sigfd: &SignalFd,
    log: &mut File,
) -> WaitStatus {
    let mut streams = [LogStream::new("stdout"), LogStream::new("stderr")];
    let mut buf = vec![0u8; 64 * 1024];
    let mut exited = None;
    loop {
        let timeout = if exited.is_some() {
            PollTimeout::ZERO
        } else {
            PollTimeout::NONE
        };
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        for (i, fd) in pipes.iter().enumerate() {
            if streams[i].open {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        let ready = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => 0,
        };
        let revents: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if revents[0] {
            let _ = sigfd.read_signal();
        }
        let mut slot = 1;
        for (i, fd) in pipes.iter().enumerate() {
            if !streams[i].open {
                continue;
            }
            if revents[slot] {
                match nix::unistd::read(fd, &mut buf) {
                    Ok(0) | Err(_) => {
                        streams[i].open = false;
                        streams[i].finish(log);
                    }
                    Ok(n) => streams[i].push(&buf[..n], log),
                }
            }
            slot += 1;
        }
        if exited.is_none()
            && let Ok(status) = waitpid(child, Some(WaitPidFlag::WNOHANG))
            && status != WaitStatus::StillAlive
        {
            exited = Some(status);
        }
        let all_closed = streams.iter().all(|s| !s.open);
        if let Some(status) = exited
            && (ready == 0 || all_closed)
        {
            for s in &mut streams {
                s.finish(log);
            }
            return status;
        }
    }
}

fn oom_killed(file: Option<&Path>) -> bool {
    let Some(text) = file.and_then(|f| fs::read_to_string(f).ok()) else {
        return false;
    };
    text.lines().any(|l| {
        l.strip_prefix("oom_kill ")
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    })
}
