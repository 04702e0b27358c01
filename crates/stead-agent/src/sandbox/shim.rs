//! The shim: the container's supervisor, like conmon. Forked by the `shim` helper into a new
//! session (so it outlives the agent), it starts the container process in the pod's
//! namespaces, reports its pid, copies its stdout/stderr into the CRI log
//! (`<RFC3339Nano> <stream> <F|P> <line>`, rotated by size: [`crate::log_rotation`]) and records how it ended in `exit.json`
//! (`OOMKilled` when the cgroup counted an OOM kill).
//!
//! It also serves the container's attach socket (`attach.sock` in the container dir, protocol
//! in [`super::attach`]): clients get the live output, write to the container's stdin (a pipe
//! the shim keeps open, or the terminal with `tty`) and resize the terminal. With `tty` the
//! container's stdio is a pseudo terminal from the container's own devpts (`/dev/pts/0`
//! inside), opened by the container process after `pivot_root` and sent to the shim over a
//! socket; it is the process's controlling terminal, and its output goes to the log as
//! stdout. With `stdinOnce`, stdin closes (a terminal gets ^D) when the first client that
//! attached stdin leaves, and that first client is sent the output written before it came (up
//! to 64 KiB), so a short `kubectl run -i` command is seen whole.

#![allow(unsafe_code)]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, pipe2};

use super::attach;
use super::helper::{ctx, detach_stdio, fork_or_fail, open_ns};
use super::rootfs::start_container;
use super::state::{ExitRecord, Launch, ProcId, ShimReport, now_rfc3339, read_json, write_json};
use crate::log_rotation::RotatingLog;

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

    fn push(&mut self, data: &[u8], log: &mut RotatingLog) {
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

    fn finish(&mut self, log: &mut RotatingLog) {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.write(&rest, 'F', log);
        }
    }

    fn write(&self, line: &[u8], tag: char, log: &mut RotatingLog) {
        let mut record = format!("{} {} {tag} ", now_rfc3339(), self.name).into_bytes();
        record.extend_from_slice(line);
        record.push(b'\n');
        let _ = log.write_record(&record);
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
    let mut log =
        RotatingLog::open(&launch.log_path, launch.log_rotation).map_err(ctx("open log"))?;
    let stdio = Stdio::new(launch)?;
    let (status_r, status_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("pipe"))?;
    let listener = bind_attach_socket(&launch.exit_path)?;
    let other_ns = [
        (open_ns(launch.pause_pid, "net")?, CloneFlags::CLONE_NEWNET),
        (open_ns(launch.pause_pid, "uts")?, CloneFlags::CLONE_NEWUTS),
        (open_ns(launch.pause_pid, "ipc")?, CloneFlags::CLONE_NEWIPC),
    ];
    // The PID namespace the forked container process is born in: the pod's shared one, or a
    // fresh one where it is PID 1 (as with runc and upstream's default).
    if launch.share_pid {
        let pid_ns = open_ns(launch.pause_pid, "pid")?;
        setns(pid_ns.as_fd(), CloneFlags::CLONE_NEWPID).map_err(ctx("setns pid"))?;
    } else {
        unshare(CloneFlags::CLONE_NEWPID).map_err(ctx("unshare pid"))?;
    }
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None).map_err(ctx("block SIGCHLD"))?;
    let sigfd = SignalFd::with_flags(&chld, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
        .map_err(ctx("signalfd"))?;

    let child = match fork_or_fail()? {
        ForkResult::Child => {
            drop(status_r);
            let console = stdio.install_in_child();
            let message = match start_container(launch, &other_ns, console) {
                Ok(never) => match never {},
                Err(message) => message,
            };
            let _ = File::from(status_w).write_all(message.as_bytes());
            std::process::exit(128)
        }
        ForkResult::Parent { child } => child,
    };
    drop(status_w);
    let started_at = now_rfc3339();
    let mut start_error = String::new();
    let _ = File::from(status_r).read_to_string(&mut start_error);
    let shim = ProcId::of(std::process::id() as i32);
    if !start_error.is_empty() {
        let _ = waitpid(child, None);
        drop(listener);
        let _ = fs::remove_file(launch.exit_path.with_file_name(attach::SOCKET));
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
    let (outputs, stdin, pty) = match stdio.into_shim_side() {
        Ok(sides) => sides,
        Err(e) => {
            let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            return Err(e);
        }
    };
    let line = ShimReport {
        process: ProcId::of_any(child.as_raw()),
        shim,
        started_at: Some(started_at.clone()),
        error: None,
    };
    send_report(report, &line);

    let mut attach = Attach::new(listener, stdin, pty, launch.stdin_once);
    let status = pump_until_exit(child, outputs, &sigfd, &mut log, &mut attach);
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
    let written = write_json(&launch.exit_path, &exit).map_err(ctx("write exit"));
    // Attached clients hear of the end once it is on record.
    attach.finish(exit_code);
    drop(attach);
    let _ = fs::remove_file(launch.exit_path.with_file_name(attach::SOCKET));
    written
}

/// The container's stdio as the shim sets it up: output pipes and, when the container takes
/// stdin, a stdin pipe; or, with a tty, a socket over which the container process sends the
/// controlling side of the terminal it opens in its own devpts.
struct Stdio {
    /// `(read side, write side, stream name)`.
    outputs: Vec<(OwnedFd, Option<OwnedFd>, &'static str)>,
    /// `(container side, shim side)` of the stdin pipe.
    stdin: Option<(OwnedFd, OwnedFd)>,
    /// With a tty: `(shim end, container end)` of the console socket.
    console: Option<(OwnedFd, OwnedFd)>,
    tty_stdin: bool,
}

impl Stdio {
    fn new(launch: &Launch) -> Result<Stdio, String> {
        let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
        if launch.tty {
            let pair = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(ctx("socketpair"))?;
            return Ok(Stdio {
                outputs: Vec::new(),
                stdin: None,
                console: Some(pair),
                tty_stdin: launch.stdin,
            });
        }
        let (out_r, out_w) = pipe2(cloexec).map_err(ctx("pipe"))?;
        let (err_r, err_w) = pipe2(cloexec).map_err(ctx("pipe"))?;
        let stdin = if launch.stdin {
            Some(pipe2(cloexec).map_err(ctx("pipe"))?)
        } else {
            None
        };
        Ok(Stdio {
            outputs: vec![
                (out_r, Some(out_w), "stdout"),
                (err_r, Some(err_w), "stderr"),
            ],
            stdin,
            console: None,
            tty_stdin: false,
        })
    }

    /// In the forked container process: stdio onto the pipes. With a tty, returns the console
    /// socket for [`take_console`] once the container's root is in place.
    fn install_in_child(&self) -> Option<&OwnedFd> {
        if let Some((_, theirs)) = &self.console {
            return Some(theirs);
        }
        if let Some((r, _)) = &self.stdin {
            let _ = nix::unistd::dup2_stdin(r);
        }
        if let Some(w) = &self.outputs[0].1 {
            let _ = nix::unistd::dup2_stdout(w);
        }
        if let Some(w) = &self.outputs[1].1 {
            let _ = nix::unistd::dup2_stderr(w);
        }
        None
    }

    /// In the shim once the container process runs: the container's sides closed; returns the
    /// output streams, the stdin writer (nonblocking) and the terminal's controlling side (for
    /// resizes).
    #[allow(clippy::type_complexity)]
    fn into_shim_side(
        mut self,
    ) -> Result<
        (
            Vec<(OwnedFd, &'static str)>,
            Option<OwnedFd>,
            Option<OwnedFd>,
        ),
        String,
    > {
        let (outputs, stdin, pty) = if let Some((ours, theirs)) = self.console.take() {
            drop(theirs);
            let master = receive_console(&ours)?;
            let pty = master.try_clone().map_err(ctx("dup pty"))?;
            let stdin = if self.tty_stdin {
                Some(master.try_clone().map_err(ctx("dup pty"))?)
            } else {
                None
            };
            (vec![(master, "stdout")], stdin, Some(pty))
        } else {
            let outputs = self.outputs.into_iter().map(|(r, _, n)| (r, n)).collect();
            (outputs, self.stdin.map(|(_, w)| w), None)
        };
        if let Some(fd) = &stdin {
            set_nonblocking(fd)?;
        }
        Ok((outputs, stdin, pty))
    }
}

/// In the container process after `pivot_root`: opens a terminal in the container's own
/// devpts, gives it to the container's user (`uid`, `gid`: a non-root process can reopen its
/// `tty`, as under runc), makes it stdio and the controlling terminal of a new session, and
/// sends the controlling side to the shim over `console`.
pub(super) fn take_console(console: &OwnedFd, uid: u32, gid: u32) -> Result<(), String> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let flags = nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY;
    let master = nix::pty::posix_openpt(flags | nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(ctx("open /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(ctx("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(ctx("unlockpt"))?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor of the replica, which
    // is owned from here on.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags.bits()) };
    if fd < 0 {
        return Err(format!(
            "open the terminal's replica: {}",
            nix::errno::Errno::last()
        ));
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    let replica = unsafe { OwnedFd::from_raw_fd(fd) };
    nix::unistd::fchown(
        &replica,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(ctx("give the terminal to the container's user"))?;
    let _ = nix::unistd::setsid();
    nix::unistd::dup2_stdin(&replica).map_err(ctx("dup2"))?;
    nix::unistd::dup2_stdout(&replica).map_err(ctx("dup2"))?;
    nix::unistd::dup2_stderr(&replica).map_err(ctx("dup2"))?;
    drop(replica);
    // SAFETY: TIOCSCTTY takes an int argument; stdin is the terminal's replica and this
    // process just became a session leader.
    unsafe {
        libc::ioctl(0, libc::TIOCSCTTY, 0);
    }
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        console.as_raw_fd(),
        &[std::io::IoSlice::new(b"t")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(ctx("send the terminal to the shim"))?;
    Ok(())
}

/// The terminal's controlling side, sent by the container process.
fn receive_console(console: &OwnedFd) -> Result<OwnedFd, String> {
    use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(
        console.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(ctx("receive the terminal"))?;
    for cmsg in msg.cmsgs().map_err(ctx("receive the terminal"))? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            // SAFETY: SCM_RIGHTS installed `fd` in this process; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err("the container process sent no terminal".into())
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), String> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(ctx("fcntl"))?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map(|_| ())
    .map_err(ctx("fcntl"))
}

/// Binds the attach socket next to `exit_path` (through `/proc/self/fd`, since the container
/// dir's path may be longer than a socket address allows).
fn bind_attach_socket(exit_path: &Path) -> Result<UnixListener, String> {
    let dir = exit_path.parent().ok_or("no container dir")?;
    let dir = File::open(dir).map_err(ctx("open container dir"))?;
    let path = super::attach::socket_path(&dir);
    let _ = fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(ctx("bind attach socket"))?;
    listener
        .set_nonblocking(true)
        .map_err(ctx("attach socket"))?;
    Ok(listener)
}

/// One attached client.
struct Client {
    sock: UnixStream,
    inbuf: Vec<u8>,
    /// It said it attaches stdin (so its leaving counts for `stdinOnce`).
    stdin: bool,
    dead: bool,
}

/// Most output kept for the first client of a `stdinOnce` container (what it printed before
/// `kubectl run -i` could attach).
const MAX_REPLAY: usize = 64 * 1024;

/// The attach side of the shim: the socket, its clients, the container's stdin and terminal.
struct Attach {
    listener: UnixListener,
    clients: Vec<Client>,
    stdin: Option<OwnedFd>,
    /// Stdin bytes not yet taken by the container.
    pending: Vec<u8>,
    /// Close stdin once `pending` is written.
    closing: bool,
    stdin_once: bool,
    pty: Option<OwnedFd>,
    /// Output frames kept until the first client attaches (`stdinOnce` only).
    replay: Option<Vec<u8>>,
}

impl Attach {
    fn new(
        listener: UnixListener,
        stdin: Option<OwnedFd>,
        pty: Option<OwnedFd>,
        stdin_once: bool,
    ) -> Attach {
        Attach {
            listener,
            clients: Vec::new(),
            stdin,
            pending: Vec::new(),
            closing: false,
            stdin_once,
            pty,
            replay: stdin_once.then(Vec::new),
        }
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            if sock.set_nonblocking(false).is_err()
                || sock
                    .set_write_timeout(Some(std::time::Duration::from_secs(5)))
                    .is_err()
            {
                continue;
            }
            let mut client = Client {
                sock,
                inbuf: Vec::new(),
                stdin: false,
                dead: false,
            };
            if let Some(replay) = self.replay.take()
                && client.sock.write_all(&replay).is_err()
            {
                client.dead = true;
            }
            self.clients.push(client);
        }
    }

    /// Sends output to every client.
    fn broadcast(&mut self, kind: u8, data: &[u8]) {
        let frame = attach::frame(kind, data);
        if let Some(replay) = &mut self.replay
            && replay.len() + frame.len() <= MAX_REPLAY
        {
            replay.extend_from_slice(&frame);
        }
        for c in &mut self.clients {
            if !c.dead && c.sock.write_all(&frame).is_err() {
                c.dead = true;
            }
        }
    }

    /// Reads what client `i` sent and acts on its frames.
    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 16 * 1024];
        let n = match self.clients[i].sock.read(&mut buf) {
            Ok(0) | Err(_) => {
                self.clients[i].dead = true;
                return;
            }
            Ok(n) => n,
        };
        self.clients[i].inbuf.extend_from_slice(&buf[..n]);
        while let Some((kind, payload, used)) = attach::parse(&self.clients[i].inbuf) {
            let payload = payload.to_vec();
            self.clients[i].inbuf.drain(..used);
            match kind {
                attach::HELLO => self.clients[i].stdin = payload.first() == Some(&1),
                attach::STDIN if self.stdin.is_some() && !self.closing => {
                    self.pending.extend_from_slice(&payload);
                }
                attach::CLOSE_STDIN if self.stdin_once => self.close_stdin(),
                attach::RESIZE if payload.len() == 4 => {
                    let cols = u16::from_be_bytes([payload[0], payload[1]]);
                    let rows = u16::from_be_bytes([payload[2], payload[3]]);
                    self.resize(cols, rows);
                }
                _ => {}
            }
        }
        self.flush_stdin();
    }

    fn resize(&self, cols: u16, rows: u16) {
        let Some(pty) = &self.pty else { return };
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize struct that lives across the call; the fd is the
        // terminal's controlling side, owned by the shim.
        unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(pty),
                libc::TIOCSWINSZ,
                &size,
            );
        }
    }

    /// Stdin ends: a pipe closes (after what is pending); a terminal gets end-of-file (^D).
    fn close_stdin(&mut self) {
        if self.stdin.is_none() || self.closing {
            return;
        }
        if self.pty.is_some() {
            self.pending.push(4);
        }
        self.closing = true;
        self.flush_stdin();
    }

    /// Writes pending stdin as far as the container takes it.
    fn flush_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            match nix::unistd::write(fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return,
                Err(_) => {
                    self.pending.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
        if self.closing {
            self.stdin = None;
        }
    }

    /// Forgets clients that went away; the first one with stdin closes it under `stdinOnce`.
    fn reap(&mut self) {
        let mut close = false;
        self.clients.retain(|c| {
            if c.dead && c.stdin {
                close = true;
            }
            !c.dead
        });
        if close && self.stdin_once {
            self.close_stdin();
        }
    }

    /// The container ended: every client gets the exit code, then the socket closes.
    fn finish(&mut self, code: i32) {
        let frame = attach::frame(attach::EXIT, &code.to_be_bytes());
        for c in &mut self.clients {
            let _ = c.sock.write_all(&frame);
        }
        self.clients.clear();
    }
}

/// What a poll slot stands for.
enum Slot {
    Signal,
    Output(usize),
    Listener,
    Client(usize),
    Stdin,
}

/// Copies the container's output into the log and to attached clients until the container
/// process exits, then drains what is left without waiting for other holders of the pipes.
/// Meanwhile it accepts attach clients and feeds their input to the container's stdin.
fn pump_until_exit(
    child: Pid,
    outputs: Vec<(OwnedFd, &'static str)>,
    sigfd: &SignalFd,
    log: &mut RotatingLog,
    attach: &mut Attach,
) -> WaitStatus {
    let mut streams: Vec<LogStream> = outputs.iter().map(|(_, n)| LogStream::new(n)).collect();
    let mut buf = vec![0u8; 64 * 1024];
    let mut exited = None;
    loop {
        let timeout = if exited.is_some() {
            PollTimeout::ZERO
        } else {
            PollTimeout::NONE
        };
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        let mut slots = vec![Slot::Signal];
        for (i, (fd, _)) in outputs.iter().enumerate() {
            if streams[i].open {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Output(i));
            }
        }
        if exited.is_none() {
            fds.push(PollFd::new(attach.listener.as_fd(), PollFlags::POLLIN));
            slots.push(Slot::Listener);
            for (i, c) in attach.clients.iter().enumerate() {
                fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Client(i));
            }
            if let Some(fd) = attach.stdin.as_ref().filter(|_| !attach.pending.is_empty()) {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                slots.push(Slot::Stdin);
            }
        }
        if let Err(e) = poll(&mut fds, timeout)
            && e != nix::errno::Errno::EINTR
        {
            // Nothing sensible is left to do but look again.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let revents: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut output_ready = false;
        for (slot, ready) in slots.iter().zip(revents) {
            if !ready {
                continue;
            }
            match *slot {
                Slot::Signal => {
                    let _ = sigfd.read_signal();
                }
                Slot::Output(i) => {
                    output_ready = true;
                    match nix::unistd::read(&outputs[i].0, &mut buf) {
                        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                        Ok(0) | Err(_) => {
                            streams[i].open = false;
                            streams[i].finish(log);
                        }
                        Ok(n) => {
                            streams[i].push(&buf[..n], log);
                            let kind = if outputs[i].1 == "stderr" {
                                attach::STDERR
                            } else {
                                attach::STDOUT
                            };
                            attach.broadcast(kind, &buf[..n]);
                        }
                    }
                }
                Slot::Listener => attach.accept(),
                Slot::Client(i) => attach.read_client(i),
                Slot::Stdin => attach.flush_stdin(),
            }
        }
        attach.reap();
        // Once the exit is known, a poll that finds no output left ends it.
        let all_closed = streams.iter().all(|s| !s.open);
        if let Some(status) = exited
            && (!output_ready || all_closed)
        {
            for s in &mut streams {
                s.finish(log);
            }
            return status;
        }
        if exited.is_none()
            && let Ok(status) = waitpid(child, Some(WaitPidFlag::WNOHANG))
            && status != WaitStatus::StillAlive
        {
            exited = Some(status);
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
