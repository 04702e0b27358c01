//! A `stead server` child process under test: spawn it on a data dir and a loopback port, read the
//! admin kubeconfig it writes, read its memory from `/proc`, and stop it with SIGTERM.
//!
//! Start with [`Server::start`]; [`Kubeconfig`] holds the URL and PEM material a client needs.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;

/// A free loopback port, found by binding port 0 and releasing it. The caller passes it to the
/// server so a probe can start connecting before the server has printed anything.
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    l.local_addr().context("local_addr")
}

/// The `stead server --disable-agent` command line for `data_dir` and `addr`, stdout/stderr to
/// be set by the caller.
pub fn command(stead: &Path, data_dir: &Path, addr: SocketAddr) -> Command {
    command_with(stead, data_dir, addr, &["--disable-agent"])
}

/// The `stead server` command line for `data_dir` and `addr` with `extra` arguments.
pub fn command_with(stead: &Path, data_dir: &Path, addr: SocketAddr, extra: &[&str]) -> Command {
    let mut c = Command::new(stead);
    c.arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .args(extra);
    c
}

/// A running server; stopped (SIGTERM, then SIGKILL after 10 s) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub kubeconfig: Kubeconfig,
}

impl Server {
    /// Spawns the server with `--disable-agent` and waits (at most `timeout`) until it prints
    /// `export KUBECONFIG=...`.
    pub fn start(stead: &Path, data_dir: &Path, timeout: Duration) -> Result<Self> {
        Self::start_with(stead, data_dir, timeout, &["--disable-agent"])
    }

    /// [`Server::start`] with other agent arguments (e.g. `--runtime fake`).
    pub fn start_with(
        stead: &Path,
        data_dir: &Path,
        timeout: Duration,
        extra: &[&str],
    ) -> Result<Self> {
        let addr = free_loopback_addr()?;
        let mut child = command_with(stead, data_dir, addr, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawn {}", stead.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                    let _ = tx.send(PathBuf::from(path));
                    break;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let path = match rx.recv_timeout(timeout) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!(
                    "stead server did not print its kubeconfig within {timeout:?} (exit: {status:?})"
                );
            }
        };
        let kubeconfig = Kubeconfig::read(&path)?;
        if kubeconfig.server != format!("https://{addr}") {
            bail!(
                "kubeconfig names {}, expected https://{addr}",
                kubeconfig.server
            );
        }
        Ok(Self {
            child,
            addr,
            kubeconfig,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS` (resident memory) in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmRSS")
    }

    /// `VmHWM` (peak resident memory) in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmHWM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Sends SIGTERM (through `kill`, to stay free of `unsafe`) and waits; SIGKILL after 10 s.
pub fn stop(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!(
        "stead-bench: server {} ignored SIGTERM for 10 s; killing it",
        child.id()
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// One field (in kB) of `/proc/PID/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// CPU time (user + system) a process has used, from `/proc/PID/stat` (10 ms resolution).
pub fn cpu_time(pid: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .context("malformed stat")
    };
    // Linux reports in USER_HZ, which is 100 on every mainstream architecture.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The soft limit on open files of this process (children inherit it).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// What a client needs from the admin kubeconfig stead writes.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl Kubeconfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parse {}", path.display()))
    }

    /// Reads the single-cluster, single-user layout stead writes (`key: value` lines).
    pub fn parse(text: &str) -> Result<Self> {
        let field = |key: &str| -> Result<&str> {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':'))
                .map(str::trim)
                .with_context(|| format!("no {key}"))
        };
        let b64 = |key: &str| -> Result<Vec<u8>> {
            base64::engine::general_purpose::STANDARD
                .decode(field(key)?)
                .with_context(|| format!("{key} is not base64"))
        };
        Ok(Self {
            server: field("server")?.to_string(),
            ca_pem: b64("certificate-authority-data")?,
            cert_pem: b64("client-certificate-data")?,
            key_pem: b64("client-key-data")?,
        })
    }
}
