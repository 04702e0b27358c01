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
//!   init), which starts the container process from `launch.json`, prints a [`super::state::ShimReport`] line,
//!   copies the container's stdout/stderr into its CRI log and writes `exit.json` at the end.
//!
//! The shim lives in `shim.rs`, the container's root filesystem setup in `rootfs.rs`.
//!
//! - `exec <json>`: joins a running container ([`ExecLaunch`]) and runs a command in it; exits
//!   with the command's exit code (128 + signal when killed).

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, fork, setgid, setgroups, setuid};

use super::state::ExecLaunch;

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
        Some("shim") if args.len() == 2 => super::shim::shim(Path::new(&args[1])),
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

pub(super) fn ctx<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

pub(super) fn open_ns(pid: i32, kind: &str) -> Result<File, String> {
    File::open(format!("/proc/{pid}/ns/{kind}")).map_err(ctx(&format!("open ns {kind} of {pid}")))
}

/// Rust's runtime ignores SIGPIPE; programs we exec expect the default.
pub(super) fn reset_signals() {
    // SAFETY: installing SIG_DFL runs no handler code; the process is single-threaded.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Points stdin, stdout and stderr at /dev/null (for processes that outlive their caller).
pub(super) fn detach_stdio() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

pub(super) fn fork_or_fail() -> Result<ForkResult, String> {
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

pub(super) fn cstrings(items: &[String]) -> Result<Vec<CString>, String> {
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

pub(super) fn with_defaults(env: &[String]) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// Looks `argv[0]` up in the environment's `PATH` (inside the current root) and execs it.
pub(super) fn exec_in_root(
    argv: &[String],
    env: &[String],
) -> Result<std::convert::Infallible, String> {
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
