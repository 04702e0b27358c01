//! The helper processes of the sandbox runtime: the same executable as the agent re-exec'd with
//! [`HELPER_ARG`] as its first argument, so that namespace work happens in a fresh,
//! single-threaded process and never on a tokio thread.
//!
//! Subcommands (the second argument):
//!
//! - `mknetns <path>`: creates a network namespace and bind-mounts it on `<path>`.
//! - `nsexec <netns> <program> [args...]`: runs a program inside a network namespace.
//! - `pause <hostname> new|<netns>`: forks the pod's pause process (pid 1 of a new PID
//!   namespace, with new UTS and IPC namespaces and a new network namespace or the given one),
//!   prints its pid and returns. The pause process reaps orphans and exits on SIGTERM.
//! - `shim <container dir>`: forks the container's supervisor (a new session, reparented to
//!   init), which starts the container process from `launch.json`, prints a [`ShimReport`] line,
//!   copies the container's stdout/stderr into its CRI log and writes `exit.json` at the end.
//! - `exec <json>`: joins a running container ([`ExecLaunch`]) and runs a command in it; exits
//!   with the command's exit code (128 + signal when killed).

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
use nix::sys::signalfd::SignalFd;
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, pipe2, setgid, setgroups, setuid};

use super::container_user::resolve_user;
use super::state::{
    ExecLaunch, ExitRecord, Launch, ProcId, ShimReport, now_rfc3339, read_json, write_json,
};

/// The hidden first argument that turns the agent's executable into the helper.
pub const HELPER_ARG: &str = "__sandbox";

/// Where the helper looks for programs when the container's environment sets no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs one helper subcommand; `args` are the arguments after [`HELPER_ARG`]. Call it first
/// thing in `main`, before any thread or async runtime starts. Never returns.
pub fn helper_main(args: &[String]) -> ! {
    let result = match args.first().map(String::as_str) {
        Some("mknetns") if args.len() == 2 => mknetns(Path::new(&args[1])),
        Some("nsexec") if args.len() >= 3 => nsexec(Path::new(&args[1]), &args[2..]),
        Some("pause") if args.len() == 3 => pause(&args[1], &args[2]),
        Some("shim") if args.len() == 2 => shim(Path::new(&args[1])),
        Some("exec") if args.len() == 2 => exec(&args[1]),
        _ => Err(format!("unknown helper invocation {args:?}")),
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(message) => {
            eprintln!("stead sandbox helper: {message}");
            std::process::exit(1)
        }
    }
}

fn ctx<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn open_ns(pid: i32, kind: &str) -> Result<File, String> {
    File::open(format!("/proc/{pid}/ns/{kind}")).map_err(ctx(&format!("open ns {kind} of {pid}")))
}

/// Rust's runtime ignores SIGPIPE; programs we exec expect the default.
fn reset_signals() {
    // SAFETY: installing SIG_DFL runs no handler code; the process is single-threaded.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Points stdin, stdout and stderr at /dev/null (for processes that outlive their caller).
fn detach_stdio() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

fn fork_or_fail() -> Result<ForkResult, String> {
    // SAFETY: every helper subcommand runs in a fresh single-threaded process, so the child of
    // fork has a consistent copy of the whole address space.
    unsafe { fork() }.map_err(ctx("fork"))
}

fn mknetns(path: &Path) -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(ctx("unshare net"))?;
    if !path.exists() {
        File::create(path).map_err(ctx("create netns file"))?;
    }
    mount(
        Some("/proc/self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(ctx("bind-mount netns"))
}

fn nsexec(netns: &Path, argv: &[String]) -> Result<(), String> {
    let ns = File::open(netns).map_err(ctx("open netns"))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(ctx("setns net"))?;
    reset_signals();
    let args = cstrings(argv)?;
    nix::unistd::execvp(&args[0], &args).map_err(ctx(&format!("exec {}", argv[0])))?;
    unreachable!()
}

fn cstrings(items: &[String]) -> Result<Vec<CString>, String> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("NUL in {s:?}")))
        .collect()
}

fn pause(hostname: &str, network: &str) -> Result<(), String> {
    let mut flags = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if network == "new" {
        flags |= CloneFlags::CLONE_NEWNET;
    } else {
        let ns = File::open(network).map_err(ctx("open node netns"))?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(ctx("setns node net"))?;
    }
    unshare(flags).map_err(ctx("unshare"))?;
    nix::unistd::sethostname(hostname).map_err(ctx("sethostname"))?;
    match fork_or_fail()? {
        ForkResult::Parent { child } => {
            println!("{child}");
            Ok(())
        }
        ForkResult::Child => {
            let _ = nix::unistd::setsid();
            detach_stdio();
            let _ = std::env::set_current_dir("/");
            let mut set = SigSet::empty();
            for s in [
                Signal::SIGCHLD,
                Signal::SIGTERM,
                Signal::SIGINT,
                Signal::SIGHUP,
            ] {
                set.add(s);
            }
            let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
            loop {
                match set.wait() {
                    Ok(Signal::SIGCHLD) => {
                        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                            if status == WaitStatus::StillAlive {
                                break;
                            }
                        }
                    }
                    Ok(_) => std::process::exit(0),
                    Err(_) => {}
                }
            }
        }
    }
}

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

fn shim(dir: &Path) -> Result<(), String> {
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

/// The container's init path, in the forked child: namespaces, cgroup, root filesystem, user,
/// then exec. Returns only on failure, with the message for the exit record.
fn start_container(
    launch: &Launch,
    other_ns: &[(File, CloneFlags)],
) -> Result<std::convert::Infallible, String> {
    for (ns, kind) in other_ns {
        setns(ns.as_fd(), *kind).map_err(ctx("setns"))?;
    }
    for procs in &launch.cgroup_procs {
        fs::write(procs, "0").map_err(ctx(&format!("join cgroup {}", procs.display())))?;
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(ctx("unshare mount"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(ctx("make / private"))?;
    umask(Mode::empty());
    build_rootfs(launch)?;
    pivot_into(&launch.rootfs)?;
    umask(Mode::from_bits_truncate(0o022));

    let env = with_defaults(&launch.env);
    let (uid, gid, groups, home) = resolve_user(launch.user.as_deref(), Path::new("/"))?;
    let mut env = env;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    let cwd = if launch.working_dir.is_empty() {
        "/"
    } else {
        launch.working_dir.as_str()
    };
    let _ = fs::create_dir_all(cwd);
    let mut all_groups = vec![Gid::from_raw(gid)];
    all_groups.extend(groups.into_iter().map(Gid::from_raw));
    setgroups(&all_groups).map_err(ctx("setgroups"))?;
    setgid(Gid::from_raw(gid)).map_err(ctx("setgid"))?;
    setuid(Uid::from_raw(uid)).map_err(ctx("setuid"))?;
    std::env::set_current_dir(cwd)
        .map_err(ctx(&format!("chdir to cwd (\"{cwd}\") set in config.json")))?;
    exec_in_root(&launch.command, &env)
}

fn with_defaults(env: &[String]) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// Looks `argv[0]` up in the environment's `PATH` (inside the current root) and execs it.
fn exec_in_root(argv: &[String], env: &[String]) -> Result<std::convert::Infallible, String> {
    let program = argv.first().ok_or("exec: no command")?;
    let path = if program.contains('/') {
        PathBuf::from(program)
    } else {
        let search = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        search
            .split(':')
            .map(|dir| Path::new(dir).join(program))
            .find(|p| is_executable(p))
            .ok_or_else(|| format!("exec: \"{program}\": executable file not found in $PATH"))?
    };
    if !path.exists() {
        return Err(format!(
            "exec: \"{program}\": stat {program}: no such file or directory"
        ));
    }
    let path_c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| "NUL in path")?;
    let args = cstrings(argv)?;
    let envs = cstrings(env)?;
    reset_signals();
    let e = nix::unistd::execve(&path_c, &args, &envs).unwrap_err();
    Err(format!("exec: \"{program}\": {}", e.desc().to_lowercase()))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `path` inside `root` (no symlink resolution: container paths are taken literally).
fn in_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn mnt(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        format!(
            "mount {} on {}: {e}",
            fstype.or(src).unwrap_or("?"),
            target.display()
        )
    })
}

fn build_rootfs(launch: &Launch) -> Result<(), String> {
    let root = &launch.rootfs;
    let lower: Vec<String> = launch
        .layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        launch.upper.display(),
        launch.work.display()
    );
    mnt(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(&options),
    )?;

    let proc_dir = in_root(root, "/proc");
    fs::create_dir_all(&proc_dir).map_err(ctx("mkdir /proc"))?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mnt(Some("proc"), &proc_dir, Some("proc"), nosuid, None)?;

    let sys = in_root(root, "/sys");
    fs::create_dir_all(&sys).map_err(ctx("mkdir /sys"))?;
    mnt(
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        nosuid | MsFlags::MS_RDONLY,
        None,
    )?;

    build_dev(&in_root(root, "/dev"))?;

    for (source, target, read_only) in &launch.mounts {
        bind(source, &in_root(root, target), *read_only)?;
    }
    Ok(())
}

fn build_dev(dev: &Path) -> Result<(), String> {
    fs::create_dir_all(dev).map_err(ctx("mkdir /dev"))?;
    mnt(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        mknod(
            &dev.join(name),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(ctx(&format!("mknod /dev/{name}")))?;
    }
    let pts = dev.join("pts");
    fs::create_dir_all(&pts).map_err(ctx("mkdir /dev/pts"))?;
    mnt(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    let shm = dev.join("shm");
    fs::create_dir_all(&shm).map_err(ctx("mkdir /dev/shm"))?;
    mnt(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(link)).map_err(ctx(&format!("symlink /dev/{link}")))?;
    }
    Ok(())
}

/// Bind-mounts `source` on `target`, creating the mount point (a directory or an empty file,
/// like the source).
fn bind(source: &Path, target: &Path, read_only: bool) -> Result<(), String> {
    let is_dir = fs::metadata(source)
        .map_err(ctx(&format!("mount source {}", source.display())))?
        .is_dir();
    if is_dir {
        fs::create_dir_all(target).map_err(ctx(&format!("mkdir {}", target.display())))?;
    } else if !target.exists() {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(ctx(&format!("mkdir {}", parent.display())))?;
        }
        File::create(target).map_err(ctx(&format!("create {}", target.display())))?;
    }
    let src = source.to_str().ok_or("non-UTF-8 mount source")?;
    mnt(
        Some(src),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if read_only {
        mnt(
            None,
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

fn pivot_into(root: &Path) -> Result<(), String> {
    std::env::set_current_dir(root).map_err(ctx("chdir rootfs"))?;
    nix::unistd::pivot_root(".", ".").map_err(ctx("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(ctx("detach old root"))?;
    std::env::set_current_dir("/").map_err(ctx("chdir /"))
}

fn exec(json: &str) -> Result<(), String> {
    let launch: ExecLaunch = serde_json::from_str(json).map_err(ctx("exec arguments"))?;
    let pid = launch.pid;
    let environ =
        fs::read(format!("/proc/{pid}/environ")).map_err(ctx("read container environment"))?;
    let env: Vec<String> = environ
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).map_err(ctx("read container status"))?;
    let id_of = |key: &str| -> u32 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let (uid, gid) = (id_of("Uid:"), id_of("Gid:"));
    let namespaces = [
        (open_ns(pid, "pid")?, CloneFlags::CLONE_NEWPID),
        (open_ns(pid, "net")?, CloneFlags::CLONE_NEWNET),
        (open_ns(pid, "ipc")?, CloneFlags::CLONE_NEWIPC),
        (open_ns(pid, "uts")?, CloneFlags::CLONE_NEWUTS),
        (open_ns(pid, "mnt")?, CloneFlags::CLONE_NEWNS),
    ];
    for procs in &launch.cgroup_procs {
        let _ = fs::write(procs, "0");
    }
    for (ns, kind) in &namespaces {
        setns(ns.as_fd(), *kind).map_err(ctx("setns"))?;
    }
    match fork_or_fail()? {
        ForkResult::Child => {
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            if launch.tty {
                let _ = nix::unistd::setsid();
                // SAFETY: TIOCSCTTY takes an int argument; stdin is the pty's replica.
                unsafe {
                    libc::ioctl(io::stdin().as_raw_fd(), libc::TIOCSCTTY, 0);
                }
            }
            let result = (|| {
                setgroups(&[Gid::from_raw(gid)]).map_err(ctx("setgroups"))?;
                setgid(Gid::from_raw(gid)).map_err(ctx("setgid"))?;
                setuid(Uid::from_raw(uid)).map_err(ctx("setuid"))?;
                if std::env::set_current_dir(&launch.working_dir).is_err() {
                    let _ = std::env::set_current_dir("/");
                }
                exec_in_root(&launch.command, &with_defaults(&env))
            })();
            let message = match result {
                Ok(never) => match never {},
                Err(message) => message,
            };
            eprintln!("{message}");
            std::process::exit(
                if message.contains("not found") || message.contains("no such file") {
                    127
                } else {
                    126
                },
            )
        }
        ForkResult::Parent { child } => {
            // Stay out of the way of signals meant for the command.
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => std::process::exit(128 + sig as i32),
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(format!("wait: {e}")),
                }
            }
        }
    }
}
