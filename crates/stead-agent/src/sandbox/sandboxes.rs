//! Sandbox lifecycle on the runtime's blocking side: create (pause process, cgroup, network),
//! remove (kill everything, release, unmount, delete) and listing.

use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Inner;
use super::helper::HELPER_ARG;
use super::state::{ContainerRecord, ProcId, SandboxRecord, now_rfc3339, read_json, write_json};
use crate::runtime::{ContainerStatus, RuntimeError, SandboxSpec, SandboxStatus};

fn failed(what: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Failed(what.to_string())
}

impl Inner {
    pub(super) fn sandboxes_dir(&self) -> PathBuf {
        self.config.state_dir.join("sandboxes")
    }

    pub(super) fn sandbox_dir(&self, uid: &str) -> PathBuf {
        self.sandboxes_dir().join(uid)
    }

    pub(super) fn sandbox_record(&self, uid: &str) -> Result<SandboxRecord, RuntimeError> {
        if uid.is_empty() || uid.contains('/') || uid.starts_with('.') {
            return Err(RuntimeError::NotFound(format!("sandbox {uid:?}")));
        }
        read_json(&self.sandbox_dir(uid).join("sandbox.json"))
            .map_err(|e| failed(format!("sandbox {uid}: read record: {e}")))?
            .ok_or_else(|| RuntimeError::NotFound(format!("sandbox {uid}")))
    }

    /// The sandbox's record if its pause process still runs.
    pub(super) fn live_sandbox(&self, uid: &str) -> Result<SandboxRecord, RuntimeError> {
        let record = self.sandbox_record(uid)?;
        if !record.pause.alive() {
            return Err(failed(format!("sandbox {uid}: the pause process is gone")));
        }
        Ok(record)
    }

    pub(super) fn create_sandbox(&self, spec: &SandboxSpec) -> Result<SandboxStatus, RuntimeError> {
        let uid = &spec.uid;
        if uid.is_empty() || uid.contains('/') || uid.starts_with('.') {
            return Err(failed(format!("sandbox uid {uid:?} is not a valid name")));
        }
        if let Ok(existing) = self.sandbox_record(uid) {
            return Ok(status_of(&existing));
        }
        let dir = self.sandbox_dir(uid);
        fs::create_dir_all(dir.join("containers"))
            .map_err(|e| failed(format!("sandbox {uid}: create dir: {e}")))?;
        let result = self.start_sandbox(spec);
        if result.is_err() {
            self.cleanup_sandbox(uid, None, None, &[]);
        }
        result
    }

    fn start_sandbox(&self, spec: &SandboxSpec) -> Result<SandboxStatus, RuntimeError> {
        let uid = &spec.uid;
        let dir = self.sandbox_dir(uid);
        let hostname = format!("{}\n", spec.hostname);
        for (name, contents) in [
            ("hosts", &spec.hosts_file),
            ("resolv.conf", &spec.resolv_conf),
            ("hostname", &hostname),
        ] {
            fs::write(dir.join(name), contents)
                .map_err(|e| failed(format!("sandbox {uid}: write {name}: {e}")))?;
        }
        let ip = if spec.host_network {
            None
        } else {
            Some(
                self.net
                    .allocate(uid)
                    .map_err(|e| failed(format!("sandbox {uid}: {e}")))?,
            )
        };
        let pause_procs = self
            .cgroups
            .create_pod(uid)
            .map_err(|e| failed(format!("sandbox {uid}: create cgroup: {e}")))?;
        let network = if spec.host_network {
            self.net.netns.display().to_string()
        } else {
            "new".into()
        };
        let t0 = Instant::now(); // pause process, then network: logged at debug
        let out = Command::new(&self.config.helper_exe)
            .args([HELPER_ARG, "pause", &spec.hostname, &network])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(format!("sandbox {uid}: run pause helper: {e}")))?;
        if !out.status.success() {
            return Err(failed(format!(
                "sandbox {uid}: pause: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| failed(format!("sandbox {uid}: pause pid: {e}")))?;
        let pause = ProcId::of(pid)
            .ok_or_else(|| failed(format!("sandbox {uid}: the pause process exited at once")))?;
        // Record it at once so that a failure below still finds and kills it.
        let mut record = SandboxRecord {
            uid: uid.clone(),
            namespace: spec.namespace.clone(),
            name: spec.name.clone(),
            hostname: spec.hostname.clone(),
            host_network: spec.host_network,
            share_pid: spec.share_process_namespace,
            labels: spec.labels.clone(),
            ip,
            veth: None,
            created_at: now_rfc3339(),
            pause,
        };
        write_json(&dir.join("sandbox.json.pending"), &record)
            .map_err(|e| failed(format!("sandbox {uid}: write record: {e}")))?;
        for procs in &pause_procs {
            fs::write(procs, pid.to_string())
                .map_err(|e| failed(format!("sandbox {uid}: move pause into cgroup: {e}")))?;
        }
        let t1 = Instant::now();
        if let Some(ip) = ip {
            record.veth = Some(
                self.net
                    .attach_pod(uid, pid, ip)
                    .map_err(|e| failed(format!("sandbox {uid}: network: {e}")))?,
            );
        }
        write_json(&dir.join("sandbox.json"), &record)
            .map_err(|e| failed(format!("sandbox {uid}: write record: {e}")))?;
        let _ = fs::remove_file(dir.join("sandbox.json.pending"));
        tracing::debug!(
            sandbox = %uid,
            pause = ?(t1 - t0),
            network = ?t1.elapsed(),
            "sandbox created"
        );
        Ok(status_of(&record))
    }

    pub(super) fn remove_sandbox(&self, uid: &str, grace: Duration) -> Result<(), RuntimeError> {
        let dir = self.sandbox_dir(uid);
        let record = match self.sandbox_record(uid) {
            Ok(record) => Some(record),
            Err(RuntimeError::NotFound(_)) if dir.exists() => None,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let containers = self.container_records(uid);
        // Graceful stop of every running container at once, then kill whatever is left.
        let running: Vec<&ContainerRecord> = containers
            .iter()
            .filter(|c| c.process.is_some_and(|p| p.alive()))
            .collect();
        for c in &running {
            let _ = kill(
                Pid::from_raw(c.process.expect("running").pid),
                Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline
            && running.iter().any(|c| c.process.is_some_and(|p| p.alive()))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let pending: Option<SandboxRecord> =
            read_json(&dir.join("sandbox.json.pending")).ok().flatten();
        let record = record.or(pending);
        self.cleanup_sandbox(
            uid,
            record.as_ref(),
            record.as_ref().and_then(|r| r.veth.clone()),
            &containers,
        );
        Ok(())
    }

    /// Kills every process of the pod, waits for the shims to record exits, deletes the veth,
    /// releases the address, removes cgroups, unmounts and deletes the state and logs.
    fn cleanup_sandbox(
        &self,
        uid: &str,
        record: Option<&SandboxRecord>,
        veth: Option<String>,
        containers: &[ContainerRecord],
    ) {
        self.cgroups.kill_pod(uid);
        if let Some(pause) = record.map(|r| r.pause).filter(|p| p.alive()) {
            let _ = kill(Pid::from_raw(pause.pid), Signal::SIGKILL);
        }
        for c in containers {
            if let Some(p) = c.process.filter(|p| p.alive()) {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let busy = || {
            record.is_some_and(|r| r.pause.alive())
                || containers.iter().any(|c| c.shim.is_some_and(|s| s.alive()))
        };
        while busy() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(veth) = veth
            && self.net.link_exists(&veth)
        {
            self.net.detach_pod(&veth);
        }
        if let Some(ip) = record.and_then(|r| r.ip) {
            self.net.release(ip, uid);
        }
        self.cgroups.remove_pod(uid);
        let dir = self.sandbox_dir(uid);
        let prefix = format!("{}/", dir.display());
        let mut mounts: Vec<String> = super::network::mount_points()
            .into_iter()
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        let logs = fs::read_to_string(dir.join("log_paths")).unwrap_or_default();
        for log in logs
            .lines()
            .map(PathBuf::from)
            .chain(containers.iter().map(|c| c.log_path.clone()))
        {
            crate::log_rotation::remove_log(&log);
        }
        let _ = fs::remove_dir_all(&dir);
    }

    pub(super) fn list(&self) -> Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError> {
        let mut sandboxes = Vec::new();
        let mut containers = Vec::new();
        let entries = match fs::read_dir(self.sandboxes_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((sandboxes, containers));
            }
            Err(e) => return Err(failed(format!("list sandboxes: {e}"))),
        };
        for entry in entries.flatten() {
            let uid = entry.file_name().to_string_lossy().into_owned();
            let Ok(record) = self.sandbox_record(&uid) else {
                continue;
            };
            sandboxes.push(status_of(&record));
            for c in self.container_records(&uid) {
                containers.push(self.container_status(&c));
            }
        }
        sandboxes.sort_by(|a, b| a.id.cmp(&b.id));
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((sandboxes, containers))
    }
}

impl Inner {
    /// The sandbox named `uid` (the pod's uid, as the kubelet creates them) and its
    /// containers, reading no other sandbox.
    pub(super) fn list_pod(
        &self,
        uid: &str,
    ) -> Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError> {
        // As in `list`: a sandbox without a readable record is not listed.
        let Ok(record) = self.sandbox_record(uid) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut containers: Vec<ContainerStatus> = self
            .container_records(uid)
            .iter()
            .map(|c| self.container_status(c))
            .collect();
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((vec![status_of(&record)], containers))
    }
}

fn status_of(record: &SandboxRecord) -> SandboxStatus {
    SandboxStatus {
        id: record.uid.clone(),
        namespace: record.namespace.clone(),
        name: record.name.clone(),
        ip: record.ip.map(IpAddr::V4),
        created_at: record
            .created_at
            .parse()
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        ready: record.pause.alive(),
        labels: record.labels.clone(),
    }
}
