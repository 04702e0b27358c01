//! Pod and container cgroups, on cgroup v1 (one directory per controller) or v2 (one unified
//! tree), detected at start.
//!
//! Layout: `<parent>/pod<uid>/pause` holds the pause process and `<parent>/pod<uid>/<container
//! id>` each container (v2 forbids processes in a cgroup that has children with controllers,
//! so the pod cgroup itself holds none). Shims and exec helpers' parents stay outside.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::runtime::Limits;

const ROOT: &str = "/sys/fs/cgroup";
/// v1 controllers the runtime uses (those present are used).
const V1_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
const CFS_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct Cgroups {
    /// The hierarchies' roots: one per v1 controller, or the single v2 root.
    roots: Vec<PathBuf>,
    v2: bool,
    parent: String,
}

impl Cgroups {
    /// Detects the cgroup version; `parent` names the runtime's cgroup under each root.
    pub fn detect(parent: &str) -> Cgroups {
        let v2 = Path::new(ROOT).join("cgroup.controllers").exists();
        let roots = if v2 {
            vec![PathBuf::from(ROOT)]
        } else {
            V1_CONTROLLERS
                .iter()
                .map(|c| Path::new(ROOT).join(c))
                .filter(|p| p.join("cgroup.procs").exists())
                .collect()
        };
        Cgroups {
            roots,
            v2,
            parent: parent.to_string(),
        }
    }

    pub fn is_v2(&self) -> bool {
        self.v2
    }

    fn pod_dirs(&self, pod: &str) -> Vec<PathBuf> {
        self.roots
            .iter()
            .map(|r| r.join(&self.parent).join(format!("pod{pod}")))
            .collect()
    }

    /// Creates the pod's cgroup and its `pause` leaf; returns the leaf's `cgroup.procs` files.
    pub fn create_pod(&self, pod: &str) -> io::Result<Vec<PathBuf>> {
        if self.v2 {
            self.enable_v2_controllers(pod)?;
        }
        let mut procs = Vec::new();
        for dir in self.pod_dirs(pod) {
            let leaf = dir.join("pause");
            fs::create_dir_all(&leaf)?;
            procs.push(leaf.join("cgroup.procs"));
        }
        Ok(procs)
    }

    fn enable_v2_controllers(&self, pod: &str) -> io::Result<()> {
        let root = Path::new(ROOT);
        let parent = root.join(&self.parent);
        let pod_dir = parent.join(format!("pod{pod}"));
        fs::create_dir_all(&pod_dir)?;
        for dir in [root.to_path_buf(), parent, pod_dir] {
            for controller in ["+memory", "+cpu", "+pids"] {
                let _ = fs::write(dir.join("cgroup.subtree_control"), controller);
            }
        }
        Ok(())
    }

    /// Creates a container's cgroup with its limits; returns its `cgroup.procs` files and the
    /// file that counts OOM kills.
    pub fn create_container(
        &self,
        pod: &str,
        id: &str,
        limits: &Limits,
    ) -> io::Result<(Vec<PathBuf>, Option<PathBuf>)> {
        let mut procs = Vec::new();
        let mut oom = None;
        for (root, pod_dir) in self.roots.iter().zip(self.pod_dirs(pod)) {
            let dir = pod_dir.join(id);
            fs::create_dir_all(&dir)?;
            procs.push(dir.join("cgroup.procs"));
            if self.v2 {
                if let Some(bytes) = limits.memory_bytes {
                    fs::write(dir.join("memory.max"), bytes.to_string())?;
                    let _ = fs::write(dir.join("memory.swap.max"), "0");
                }
                if let Some(millis) = limits.cpu_millis {
                    fs::write(
                        dir.join("cpu.max"),
                        format!("{} {CFS_PERIOD_US}", quota(millis)),
                    )?;
                }
                if let Some(millis) = limits.cpu_request_millis {
                    fs::write(dir.join("cpu.weight"), weight(shares(millis)).to_string())?;
                }
                oom = Some(dir.join("memory.events"));
                continue;
            }
            match root.file_name().and_then(|n| n.to_str()) {
                Some("memory") => {
                    if let Some(bytes) = limits.memory_bytes {
                        fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                        // Without swap accounting this file is absent; that is fine.
                        let _ =
                            fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                    }
                    oom = Some(dir.join("memory.oom_control"));
                }
                Some("cpu") => {
                    if let Some(millis) = limits.cpu_millis {
                        fs::write(dir.join("cpu.cfs_period_us"), CFS_PERIOD_US.to_string())?;
                        fs::write(dir.join("cpu.cfs_quota_us"), quota(millis).to_string())?;
                    }
                    if let Some(millis) = limits.cpu_request_millis {
                        fs::write(dir.join("cpu.shares"), shares(millis).to_string())?;
                    }
                }
                _ => {}
            }
        }
        Ok((procs, oom))
    }

    /// The container cgroup directory in the memory hierarchy (v1) or the unified tree (v2).
    pub fn memory_dir(&self, pod: &str, id: &str) -> Option<PathBuf> {
        self.roots
            .iter()
            .zip(self.pod_dirs(pod))
            .find(|(root, _)| self.v2 || root.ends_with("memory"))
            .map(|(_, dir)| dir.join(id))
    }

    /// The `cgroup.procs` files of an existing container cgroup (for exec).
    pub fn container_procs(&self, pod: &str, id: &str) -> Vec<PathBuf> {
        self.pod_dirs(pod)
            .into_iter()
            .map(|d| d.join(id).join("cgroup.procs"))
            .filter(|p| p.exists())
            .collect()
    }

    /// Every process in the pod's cgroup tree.
    pub fn pod_pids(&self, pod: &str) -> Vec<i32> {
        let mut pids = Vec::new();
        if let Some(dir) = self.pod_dirs(pod).first() {
            collect_pids(dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs every process of the pod until none is left (bounded: processes forking in a
    /// loop are caught on a later round).
    pub fn kill_pod(&self, pod: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.pod_pids(pod);
            if pids.is_empty() || Instant::now() > deadline {
                return;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Removes a container's cgroup (retrying briefly while its last processes exit).
    pub fn remove_container(&self, pod: &str, id: &str) {
        for dir in self.pod_dirs(pod) {
            remove_tree(&dir.join(id));
        }
    }

    /// Removes the pod's cgroup tree in every hierarchy.
    pub fn remove_pod(&self, pod: &str) {
        for dir in self.pod_dirs(pod) {
            remove_tree(&dir);
        }
    }

    /// Removes the runtime's parent cgroups if no pod is left in them.
    pub fn remove_parent(&self) {
        for root in &self.roots {
            let _ = fs::remove_dir(root.join(&self.parent));
        }
    }
}

fn quota(millis: u64) -> u64 {
    // Kubernetes' minimum quota is 1ms per period.
    (millis * CFS_PERIOD_US / 1000).max(1000)
}

/// cpu.shares from a request in millicores, as the kubelet computes it.
fn shares(millis: u64) -> u64 {
    (millis * 1024 / 1000).clamp(2, 262_144)
}

/// cpu.weight (v2) from cpu.shares, the conversion runc uses.
fn weight(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262_142
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&entry.path(), out);
            }
        }
    }
}

/// rmdir a cgroup and its children, leaves first; retries for a while because a cgroup whose
/// last process is still exiting cannot be removed yet.
fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_numbers_follow_the_kubelet_conversions() {
        assert_eq!(quota(500), 50_000);
        assert_eq!(quota(1), 1000);
        assert_eq!(shares(250), 256);
        assert_eq!(shares(1), 2);
        assert_eq!(weight(2), 1);
        assert_eq!(weight(262_144), 10_000);
    }
}
