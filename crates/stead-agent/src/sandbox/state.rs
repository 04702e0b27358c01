//! What the sandbox runtime keeps on disk, so a restarted agent finds every pod and container
//! again: one JSON record per sandbox and per container, an exit record the shim writes when a
//! container ends, and process identities (pid plus kernel start time) that survive pid reuse.
//!
//! Layout under the state dir:
//!
//! ```text
//! netns/node                         the node network namespace (an nsfs bind mount)
//! ipam/<ip>                          one file per allocated pod address, holding the pod uid
//! sandboxes/<uid>/sandbox.json       SandboxRecord
//! sandboxes/<uid>/{hosts,resolv.conf,hostname}
//! sandboxes/<uid>/containers/<id>/container.json   ContainerRecord
//! sandboxes/<uid>/containers/<id>/launch.json      Launch (what the shim runs)
//! sandboxes/<uid>/containers/<id>/exit.json        ExitRecord (written by the shim)
//! sandboxes/<uid>/containers/<id>/attach.sock      the shim's attach socket while it runs
//! sandboxes/<uid>/containers/<id>/{upper,work,rootfs}
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::log_rotation::LogRotation;

/// A process as the kernel knows it: its pid and its start time (field 22 of `/proc/<pid>/stat`,
/// clock ticks since boot), so a recycled pid is not mistaken for the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcId {
    /// The identity of a running process, `None` when there is no such (live) process.
    pub fn of(pid: i32) -> Option<ProcId> {
        let (state, start_time) = stat(pid)?;
        (state != 'Z' && state != 'X').then_some(ProcId { pid, start_time })
    }

    /// The identity of `pid` even if it already ended and waits to be reaped (a zombie).
    pub fn of_any(pid: i32) -> Option<ProcId> {
        stat(pid).map(|(_, start_time)| ProcId { pid, start_time })
    }

    /// Whether this very process still runs (zombies count as gone).
    pub fn alive(&self) -> bool {
        ProcId::of(self.pid) == Some(*self)
    }
}

/// The state letter and start time of `pid` from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); the start time is field 22.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

/// A pod sandbox as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub hostname: String,
    pub host_network: bool,
    /// The containers join the pause process's PID namespace (`shareProcessNamespace`).
    #[serde(default)]
    pub share_pid: bool,
    pub labels: BTreeMap<String, String>,
    pub ip: Option<Ipv4Addr>,
    /// The host side of the pod's veth pair in the node network namespace.
    pub veth: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub pause: ProcId,
}

/// A container as persisted by the runtime when it starts one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox: String,
    pub name: String,
    pub attempt: u32,
    pub image_id: String,
    pub image_ref: String,
    pub log_path: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub working_dir: String,
    /// The container's init process (host pid), once exec'd.
    pub process: Option<ProcId>,
    /// The supervising shim.
    pub shim: Option<ProcId>,
    /// RFC 3339, when the process was exec'd.
    pub started_at: Option<String>,
}

/// How a container ended, written by its shim (or by the runtime for a start failure).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub started_at: Option<String>,
    pub finished_at: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// Everything the shim needs to start one container, written by the runtime next to the
/// container record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Launch {
    /// The pod's pause process: the container joins its net, UTS and IPC namespaces, and its
    /// PID namespace with `share_pid`.
    pub pause_pid: i32,
    /// Join the pause process's PID namespace instead of getting one of its own.
    #[serde(default)]
    pub share_pid: bool,
    /// Image layers, lowest first.
    pub layers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub rootfs: PathBuf,
    /// `(source, path in the container, read_only)`: the pod's hosts/resolv.conf/hostname
    /// files first, then the container's mounts.
    pub mounts: Vec<(PathBuf, String, bool)>,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: Option<String>,
    pub log_path: PathBuf,
    /// When the log rotates (the runtime's config).
    #[serde(default)]
    pub log_rotation: LogRotation,
    /// `cgroup.procs` files the container's process writes itself into.
    pub cgroup_procs: Vec<PathBuf>,
    /// `memory.oom_control` (v1) or `memory.events` (v2) of the container's cgroup.
    pub oom_file: Option<PathBuf>,
    pub exit_path: PathBuf,
    /// The container's stdin is a pipe (or, with `tty`, the terminal) the shim keeps open for
    /// attach clients; otherwise `/dev/null`.
    #[serde(default)]
    pub stdin: bool,
    /// Stdin closes when the first attach client that took it detaches.
    #[serde(default)]
    pub stdin_once: bool,
    /// The container's stdio is a pseudo terminal the shim holds the other side of.
    #[serde(default)]
    pub tty: bool,
}

/// The shim's answer to the runtime, one JSON line on the helper's stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimReport {
    pub process: Option<ProcId>,
    pub shim: Option<ProcId>,
    pub started_at: Option<String>,
    /// Set when the command could not be executed (the exit record says the same).
    pub error: Option<String>,
}

/// Arguments of the exec helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecLaunch {
    /// The container's init process (host pid).
    pub pid: i32,
    pub working_dir: String,
    pub tty: bool,
    pub cgroup_procs: Vec<PathBuf>,
    pub command: Vec<String>,
}

/// Writes `value` as JSON atomically (temp file + rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// Reads a JSON record; `Ok(None)` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The current time as RFC 3339 with nanoseconds.
pub fn now_rfc3339() -> String {
    format!("{:.9}", jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_identity_is_alive_and_a_wrong_start_time_is_not() {
        let me = ProcId::of(std::process::id() as i32).expect("own stat");
        assert!(me.alive());
        let recycled = ProcId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!recycled.alive());
    }

    #[test]
    fn timestamps_carry_nine_fraction_digits() {
        let ts = now_rfc3339();
        let frac = ts.split('.').nth(1).expect("fraction");
        assert_eq!(frac.len(), 10, "{ts}"); // 9 digits + Z
        assert!(ts.ends_with('Z'));
    }
}
