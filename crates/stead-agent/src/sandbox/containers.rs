//! Container lifecycle on the runtime's blocking side: start (records, cgroup, shim), stop,
//! remove, and the status computed from the records and the exit the shim wrote.

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Inner;
use super::helper::HELPER_ARG;
use super::state::{
    ContainerRecord, ExitRecord, Launch, ShimReport, now_rfc3339, read_json, write_json,
};
use crate::runtime::{ContainerSpec, ContainerState, ContainerStatus, RuntimeError};

fn failed(what: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Failed(what.to_string())
}

/// A new container id: 32 random hex digits.
fn new_id() -> Result<String, RuntimeError> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| failed(format!("container id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn parse_ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl Inner {
    fn container_dir(&self, sandbox: &str, id: &str) -> PathBuf {
        self.sandbox_dir(sandbox).join("containers").join(id)
    }

    /// Every container record of a sandbox.
    pub(super) fn container_records(&self, sandbox: &str) -> Vec<ContainerRecord> {
        let Ok(entries) = fs::read_dir(self.sandbox_dir(sandbox).join("containers")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                read_json::<ContainerRecord>(&e.path().join("container.json"))
                    .ok()
                    .flatten()
            })
            .collect()
    }

    /// Finds a container by id across sandboxes.
    pub(super) fn container_record(&self, id: &str) -> Result<ContainerRecord, RuntimeError> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(RuntimeError::NotFound(format!("container {id:?}")));
        }
        let entries = fs::read_dir(self.sandboxes_dir())
            .map_err(|e| failed(format!("list sandboxes: {e}")))?;
        for entry in entries.flatten() {
            let path = entry
                .path()
                .join("containers")
                .join(id)
                .join("container.json");
            if let Some(record) = read_json::<ContainerRecord>(&path)
                .map_err(|e| failed(format!("container {id}: {e}")))?
            {
                return Ok(record);
            }
        }
        Err(RuntimeError::NotFound(format!("container {id}")))
    }

    fn exit_record(&self, c: &ContainerRecord) -> Option<ExitRecord> {
        read_json(&self.container_dir(&c.sandbox, &c.id).join("exit.json"))
            .ok()
            .flatten()
    }

    pub(super) fn start_container(
        &self,
        sandbox: &str,
        spec: &ContainerSpec,
    ) -> Result<String, RuntimeError> {
        let record = self.live_sandbox(sandbox)?;
        let id = new_id()?;
        let dir = self.container_dir(sandbox, &id);
        let what = format!(
            "container {}/{} in sandbox {sandbox}",
            spec.name, spec.attempt
        );
        for sub in ["upper", "work", "rootfs"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(|e| failed(format!("{what}: create {sub}: {e}")))?;
        }
        if spec.image.layers.is_empty() {
            return Err(failed(format!("{what}: the image has no layers")));
        }
        let (cgroup_procs, oom_file) = self
            .cgroups
            .create_container(sandbox, &id, &spec.limits)
            .map_err(|e| failed(format!("{what}: create cgroup: {e}")))?;
        let mut container = ContainerRecord {
            id: id.clone(),
            sandbox: sandbox.to_string(),
            name: spec.name.clone(),
            attempt: spec.attempt,
            image_id: spec.image.id.clone(),
            image_ref: spec.image_ref.clone(),
            log_path: spec.log_path.clone(),
            labels: spec.labels.clone(),
            working_dir: spec.working_dir.clone(),
            process: None,
            shim: None,
            started_at: None,
        };
        write_json(&dir.join("container.json"), &container)
            .map_err(|e| failed(format!("{what}: write record: {e}")))?;
        // Logs outlive their container's record: the sandbox's removal deletes them.
        let mut logs = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.sandbox_dir(sandbox).join("log_paths"))
            .map_err(|e| failed(format!("{what}: record log path: {e}")))?;
        std::io::Write::write_all(
            &mut logs,
            format!("{}\n", spec.log_path.display()).as_bytes(),
        )
        .map_err(|e| failed(format!("{what}: record log path: {e}")))?;

        // The pod's files first, unless the container mounts its own at that path.
        let sandbox_dir = self.sandbox_dir(sandbox);
        let mut mounts: Vec<(PathBuf, String, bool)> = Vec::new();
        for (file, path) in [
            ("hosts", "/etc/hosts"),
            ("resolv.conf", "/etc/resolv.conf"),
            ("hostname", "/etc/hostname"),
        ] {
            if !spec
                .mounts
                .iter()
                .any(|m| m.container_path.trim_end_matches('/') == path)
            {
                mounts.push((sandbox_dir.join(file), path.to_string(), true));
            }
        }
        mounts.extend(
            spec.mounts
                .iter()
                .map(|m| (m.host_path.clone(), m.container_path.clone(), m.read_only)),
        );
        let launch = Launch {
            pause_pid: record.pause.pid,
            share_pid: record.share_pid,
            layers: spec.image.layers.clone(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            rootfs: dir.join("rootfs"),
            mounts,
            command: spec.command.clone(),
            env: spec.env.clone(),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            log_path: spec.log_path.clone(),
            log_rotation: self.config.container_log,
            cgroup_procs,
            oom_file,
            exit_path: dir.join("exit.json"),
            stdin: spec.stdin,
            stdin_once: spec.stdin && spec.stdin_once,
            tty: spec.tty,
        };
        write_json(&dir.join("launch.json"), &launch)
            .map_err(|e| failed(format!("{what}: write launch: {e}")))?;

        let out = Command::new(&self.config.helper_exe)
            .arg(HELPER_ARG)
            .arg("shim")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(format!("{what}: run shim: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: ShimReport = serde_json::from_str(stdout.trim()).map_err(|_| {
            failed(format!(
                "{what}: shim: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
        if report.shim.is_none() && report.error.is_some() {
            // The shim failed before it could start anything: nothing ran.
            let message = report.error.unwrap_or_default();
            let exit = ExitRecord {
                exit_code: 128,
                signal: None,
                started_at: None,
                finished_at: now_rfc3339(),
                reason: Some("StartError".into()),
                message: Some(message),
            };
            let _ = write_json(&dir.join("exit.json"), &exit);
            return Ok(id);
        }
        container.process = report.process;
        container.shim = report.shim;
        container.started_at = report.started_at;
        write_json(&dir.join("container.json"), &container)
            .map_err(|e| failed(format!("{what}: write record: {e}")))?;
        Ok(id)
    }

    pub(super) fn container_status(&self, c: &ContainerRecord) -> ContainerStatus {
        // Liveness first, then the exit record: the shim writes the record before it ends, so a
        // shim seen gone here has left whatever record it wrote for the read below.
        let process_alive = c.process.is_some_and(|p| p.alive());
        let shim_alive = c.shim.is_some_and(|s| s.alive());
        let state = if let Some(exit) = self.exit_record(c) {
            ContainerState::Exited {
                started_at: exit.started_at.as_deref().map(parse_ts),
                finished_at: parse_ts(&exit.finished_at),
                exit_code: exit.exit_code,
                signal: exit.signal,
                reason: exit.reason,
                message: exit.message,
            }
        } else {
            match c.process {
                // Running, or ended and the shim is about to record the exit.
                Some(_) if process_alive || shim_alive => ContainerState::Running {
                    started_at: parse_ts(c.started_at.as_deref().unwrap_or("")),
                },
                Some(_) => ContainerState::Exited {
                    started_at: c.started_at.as_deref().map(parse_ts),
                    finished_at: jiff::Timestamp::now(),
                    exit_code: 255,
                    signal: None,
                    reason: Some("Unknown".into()),
                    message: Some("the container's shim ended without recording an exit".into()),
                },
                None => ContainerState::Created,
            }
        };
        ContainerStatus {
            id: c.id.clone(),
            sandbox: c.sandbox.clone(),
            name: c.name.clone(),
            attempt: c.attempt,
            image_id: c.image_id.clone(),
            image_ref: c.image_ref.clone(),
            state,
            log_path: c.log_path.clone(),
            labels: c.labels.clone(),
        }
    }

    /// Whether the container is done: exit recorded, or neither it nor its shim runs.
    fn finished(&self, c: &ContainerRecord) -> bool {
        self.exit_record(c).is_some()
            || !(c.process.is_some_and(|p| p.alive()) || c.shim.is_some_and(|s| s.alive()))
    }

    pub(super) fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let c = self.container_record(id)?;
        let Some(process) = c.process else {
            return Ok(());
        };
        if self.finished(&c) {
            return Ok(());
        }
        let _ = kill(Pid::from_raw(process.pid), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !self.finished(&c) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if process.alive() {
            let _ = kill(Pid::from_raw(process.pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !self.finished(&c) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.finished(&c) {
            Ok(())
        } else {
            Err(failed(format!(
                "container {id}: still running after SIGKILL"
            )))
        }
    }

    pub(super) fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let c = match self.container_record(id) {
            Ok(c) => c,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !self.finished(&c) {
            self.stop_container(id, Duration::ZERO)?;
        }
        self.cgroups.remove_container(&c.sandbox, id);
        let dir = self.container_dir(&c.sandbox, id);
        fs::remove_dir_all(&dir)
            .map_err(|e| failed(format!("container {id}: remove {}: {e}", dir.display())))
    }

    /// A running container's directory, which holds its shim's attach socket.
    pub(super) fn attach_dir(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        let c = self.container_record(id)?;
        if self.finished(&c) || !c.process.is_some_and(|p| p.alive()) {
            return Err(failed(format!("container {id} is not running")));
        }
        Ok(self.container_dir(&c.sandbox, id))
    }

    /// A running container's host pid, working dir and cgroup files (for exec).
    pub(super) fn exec_target(
        &self,
        id: &str,
    ) -> Result<(i32, String, Vec<PathBuf>), RuntimeError> {
        let c = self.container_record(id)?;
        let process = c
            .process
            .filter(|p| p.alive())
            .ok_or_else(|| failed(format!("container {id} is not running")))?;
        Ok((
            process.pid,
            c.working_dir.clone(),
            self.cgroups.container_procs(&c.sandbox, id),
        ))
    }
}
