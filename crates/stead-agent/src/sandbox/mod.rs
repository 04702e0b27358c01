//! The sandbox runtime: stead's own container runtime, no external runtime binary. It
//! implements [`crate::runtime::Runtime`] with Linux namespaces, overlayfs and cgroups.
//!
//! # How a pod runs
//!
//! - **Node network** ([`network`]): one network namespace the runtime creates and keeps as an
//!   nsfs bind mount at `<state>/netns/node`, holding the bridge (`stead0`, the pod range's
//!   first address; the range is the node's `spec.podCIDR`, a `/24` the control plane
//!   assigns, and pods started before a range change keep their addresses, see
//!   [`network::NodeNetwork::ensure`]). Links to other nodes' namespaces on the same machine
//!   are [`crate::peering`]'s. The host's interfaces, routes and firewall are never touched. Other
//!   components make sockets in it with [`SandboxRuntime::in_node_netns`] and friends; the
//!   service proxy ([`crate::proxy`]) keeps its nftables table `ip stead` there, removed by
//!   [`SandboxRuntime::teardown_node`].
//! - **Sandbox**: a pause process, pid 1 of a new PID namespace, holding the pod's UTS
//!   (hostname), IPC and network namespaces (a veth pair from the bridge to `eth0`, an address
//!   from the pod range, default route via the bridge). A `host_network` pod shares the node
//!   namespace instead (and has no address of its own).
//! - **Container**: a shim (the helper re-exec'd, a new session reparented to init, like
//!   conmon) forks the container process into a new PID namespace where it is PID 1 (or, with
//!   `shareProcessNamespace`, the pause process's, where pause reaps orphans), the pause
//!   process's net, UTS and IPC namespaces and a new mount namespace: an overlay of the image layers with a per-container
//!   upper dir, fresh `/proc`, a minimal `/dev`, read-only `/sys`, the pod's hosts/resolv.conf/
//!   hostname files and the volume mounts (mount points resolved through the image's symlinks
//!   inside the rootfs), then `pivot_root`, user, working dir, exec. The shim
//!   writes the CRI log (rotated by size, [`crate::log_rotation`]) and, when the process ends, `exit.json`; so exits that happen while
//!   the agent is down are seen by the next agent. It keeps the container's stdin (a pipe,
//!   or a pty with `tty`) and serves `attach.sock` for [`Runtime::attach`] ([`attach`]).
//! - **cgroups** ([`cgroup`]): v1 or v2, `<cgroup_parent>/pod<uid>/{pause,<container>}`, with
//!   memory and cpu limits; removing a pod kills every process in its cgroup tree.
//! - **State** ([`state`]): JSON records under `<state>/sandboxes/<uid>/`; nothing lives only
//!   in the agent's memory.
//!
//! All namespace work happens in helper processes ([`helper`]): the agent's executable
//! re-exec'd with [`HELPER_ARG`], dispatched by [`helper_main`] before any thread starts. The
//! one exception is [`network::in_netns`], which enters a network namespace on a dedicated
//! thread that ends afterwards.
//!
//! # Files
//!
//! `mod.rs` (config, the [`Runtime`] impl, node-netns sockets), `sandboxes.rs` and
//! `containers.rs` (lifecycles on the blocking side), `exec.rs` (exec/exec_sync, pty),
//! `attach.rs` (the agent's side of the shim's attach socket),
//! [`network`], [`cgroup`], [`state`], and the helper processes: [`helper`] (dispatch, pause,
//! exec), `shim.rs` (the supervisor and CRI log), `rootfs.rs` (the container's mounts and
//! exec), `container_user.rs` (user names from the image's passwd/group).
//!
//! # Known limits
//!
//! A container's stdin is `/dev/null` unless it has `stdin` or `tty`; a container with `tty`
//! gets its terminal from its own devpts (`/dev/pts/0`). An exec with a tty gets a pty from
//! the host's devpts: the command sees a terminal (isatty, window size, resize) but
//! `tty`/ttyname cannot name it inside the container. No seccomp, capabilities are not dropped, no user namespace: containers run as real root
//! unless a user is set.
//!
//! # Measured (debug build, 2 shared cores)
//!
//! `create_sandbox` 28–50 ms, plus `start_container` to a running container 50–115 ms in all,
//! with the machine at load average 9 (before netlink: 20–35 and 45–55 ms at a lower load);
//! RSS of the pause process about 1.3 MB and of a shim about 2 MB
//! (`measure_pod_start_time_and_helper_memory` in `tests/sandbox.rs` prints them). Each
//! sandbox's pause and network times are logged at debug level (`sandbox created`); release
//! figures are in `docs/BENCHMARKS.md`.

mod attach;
pub mod cgroup;
mod container_user;
mod containers;
mod exec;
pub mod helper;
mod netlink;
pub mod network;
mod rootfs;
mod sandboxes;
mod shim;
pub mod state;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{
    ContainerId, ContainerSpec, ContainerStatus, ExecOutput, ExecSession, ExecSpec, Runtime,
    RuntimeError, SandboxId, SandboxSpec, SandboxStatus,
};

pub use helper::{HELPER_ARG, helper_main};
pub use network::Cidr;

use crate::log_rotation::LogRotation;

/// How the sandbox runtime is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where sandboxes, containers, the node netns file and address allocations live.
    pub state_dir: PathBuf,
    /// The executable that runs [`helper_main`] when given [`HELPER_ARG`] first
    /// (`std::env::current_exe()` for the `stead` binary).
    pub helper_exe: PathBuf,
    /// The pod range, e.g. `10.42.0.0/16`, or the node's `spec.podCIDR` (`10.42.1.0/24`); the
    /// bridge takes its first address.
    pub pod_cidr: String,
    /// The bridge's name in the node network namespace (at most 15 characters).
    pub bridge: String,
    /// The cgroup under each hierarchy's root that holds the pods (`stead`).
    pub cgroup_parent: String,
    /// When container logs rotate and how many files each keeps (`containerLogMaxSize`,
    /// `containerLogMaxFiles`; upstream's 10Mi and 5 by default).
    pub container_log: LogRotation,
}

impl SandboxConfig {
    /// The defaults: pod range 10.42.0.0/16 on bridge `stead0`, cgroup parent `stead`,
    /// container logs rotated at 10Mi keeping 5 files.
    pub fn new(state_dir: impl Into<PathBuf>, helper_exe: impl Into<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            state_dir: state_dir.into(),
            helper_exe: helper_exe.into(),
            pod_cidr: "10.42.0.0/16".into(),
            bridge: "stead0".into(),
            cgroup_parent: "stead".into(),
            container_log: LogRotation::default(),
        }
    }
}

/// The sandbox runtime. Cheap to clone; every clone works on the same state dir.
#[derive(Clone)]
pub struct SandboxRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    net: network::NodeNetwork,
    cgroups: cgroup::Cgroups,
}

impl SandboxRuntime {
    /// Creates (or, after a restart, adopts) the node network namespace and bridge. Blocking:
    /// call it before serving, or from `spawn_blocking`.
    pub fn new(config: SandboxConfig) -> Result<SandboxRuntime, RuntimeError> {
        let cidr: Cidr = config.pod_cidr.parse().map_err(RuntimeError::Failed)?;
        std::fs::create_dir_all(config.state_dir.join("sandboxes"))
            .map_err(|e| RuntimeError::Failed(format!("create state dir: {e}")))?;
        let net = network::NodeNetwork::ensure(
            &config.state_dir,
            &config.helper_exe,
            &config.bridge,
            cidr,
        )
        .map_err(RuntimeError::Failed)?;
        let cgroups = cgroup::Cgroups::detect(&config.cgroup_parent);
        Ok(SandboxRuntime {
            inner: Arc::new(Inner {
                config,
                net,
                cgroups,
            }),
        })
    }

    /// The node network namespace file (`setns` target, `nsenter --net=`).
    pub fn node_netns(&self) -> &Path {
        &self.inner.net.netns
    }

    /// Runs `f` on a dedicated thread inside the node network namespace.
    pub fn in_node_netns<T, F>(&self, f: F) -> std::io::Result<T>
    where
        F: FnOnce() -> std::io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        network::in_netns(&self.inner.net.netns, f)
    }

    /// A TCP listener bound inside the node network namespace (e.g. the cluster DNS address,
    /// once it is assigned to a link there).
    pub fn bind_tcp_in_node_netns(&self, addr: SocketAddr) -> std::io::Result<TcpListener> {
        self.in_node_netns(move || TcpListener::bind(addr))
    }

    /// A UDP socket bound inside the node network namespace.
    pub fn bind_udp_in_node_netns(&self, addr: SocketAddr) -> std::io::Result<UdpSocket> {
        self.in_node_netns(move || UdpSocket::bind(addr))
    }

    /// The node bridge's name in the node network namespace.
    pub fn bridge(&self) -> &str {
        &self.inner.net.bridge
    }

    /// A command that runs `program args...` inside the node network namespace (host mount
    /// namespace, so host tools and paths work): for tests and debugging.
    pub fn node_netns_command(&self, argv: &[&str]) -> Command {
        self.inner.net.ns_command(argv)
    }

    /// Adds `addr/32` to the node namespace's loopback so sockets can bind it there (for the
    /// cluster DNS address and service addresses). Idempotent.
    pub fn add_node_address(&self, addr: std::net::Ipv4Addr) -> Result<(), RuntimeError> {
        let cidr = format!("{addr}/32");
        let out = self
            .node_netns_command(&["ip", "addr", "replace", &cidr, "dev", "lo"])
            .output()
            .map_err(|e| RuntimeError::Failed(format!("add node address {addr}: {e}")))?;
        if !out.status.success() {
            return Err(RuntimeError::Failed(format!(
                "add node address {addr}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// A container's cgroup directory in the memory hierarchy (v1) or the unified tree (v2).
    pub fn container_cgroup_dir(&self, sandbox: &str, container: &str) -> Option<PathBuf> {
        self.inner.cgroups.memory_dir(sandbox, container)
    }

    /// Removes every sandbox (no grace period), then the node itself ([`Self::teardown_node`]):
    /// what a node that goes away for good leaves behind (tests). Returns how many sandboxes
    /// there were; a sandbox that cannot be removed does not stop the rest.
    pub async fn reset(&self) -> Result<usize, RuntimeError> {
        let (sandboxes, _) = self.list().await?;
        for s in &sandboxes {
            let _ = self.remove_sandbox(&s.id, Duration::ZERO).await;
        }
        self.teardown_node()?;
        Ok(sandboxes.len())
    }

    /// Removes the node network namespace (its bind mount and file) and the runtime's parent
    /// cgroups: for tearing down a node (tests). Remove every sandbox first ([`Self::reset`]).
    pub fn teardown_node(&self) -> Result<(), RuntimeError> {
        // The service proxy's nft table dies with the namespace; removing it first also cleans
        // up when something else still holds the namespace open. Missing `nft`: nothing to do.
        let _ = crate::proxy::remove_rules(self);
        self.inner.cgroups.remove_parent();
        let path = &self.inner.net.netns;
        if network::is_mount_point(path) {
            nix::mount::umount2(path.as_path(), nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| RuntimeError::Failed(format!("unmount node netns: {e}")))?;
        }
        let _ = std::fs::remove_file(path);
        Ok(())
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, RuntimeError>
    where
        F: FnOnce(&Inner) -> Result<T, RuntimeError> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| RuntimeError::Failed(format!("runtime task: {e}")))?
    }
}

impl Runtime for SandboxRuntime {
    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<SandboxStatus, RuntimeError> {
        let spec = spec.clone();
        self.blocking(move |inner| inner.create_sandbox(&spec))
            .await
    }

    async fn start_container(
        &self,
        sandbox: &SandboxId,
        spec: &ContainerSpec,
    ) -> Result<ContainerId, RuntimeError> {
        let (sandbox, spec) = (sandbox.clone(), spec.clone());
        self.blocking(move |inner| inner.start_container(&sandbox, &spec))
            .await
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError> {
        let id = id.clone();
        self.blocking(move |inner| inner.stop_container(&id, grace))
            .await
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        let id = id.clone();
        self.blocking(move |inner| inner.remove_container(&id))
            .await
    }

    async fn remove_sandbox(&self, id: &SandboxId, grace: Duration) -> Result<(), RuntimeError> {
        let id = id.clone();
        self.blocking(move |inner| inner.remove_sandbox(&id, grace))
            .await
    }

    async fn list(&self) -> Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError> {
        self.blocking(|inner| inner.list()).await
    }

    async fn list_pod(
        &self,
        uid: &str,
    ) -> Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError> {
        let uid = uid.to_string();
        self.blocking(move |inner| inner.list_pod(&uid)).await
    }

    async fn exec_sync(
        &self,
        id: &ContainerId,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        exec::exec_sync(self, id, command, timeout).await
    }

    async fn exec(&self, id: &ContainerId, spec: &ExecSpec) -> Result<ExecSession, RuntimeError> {
        exec::exec(self, id, spec).await
    }

    async fn attach(&self, id: &ContainerId, spec: &ExecSpec) -> Result<ExecSession, RuntimeError> {
        attach::attach(self, id, spec).await
    }

    async fn connect(
        &self,
        sandbox: &SandboxId,
        port: u16,
    ) -> Result<tokio::net::TcpStream, RuntimeError> {
        let sandbox = sandbox.clone();
        let record = self
            .blocking(move |inner| inner.live_sandbox(&sandbox))
            .await?;
        let netns = PathBuf::from(format!("/proc/{}/ns/net", record.pause.pid));
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A dedicated thread (never a tokio worker) enters the pod's network namespace.
        std::thread::spawn(move || {
            let result = network::in_netns(&netns, move || {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
                stream.set_nonblocking(true)?;
                Ok(stream)
            });
            let _ = tx.send(result);
        });
        let stream = rx
            .await
            .map_err(|_| RuntimeError::Failed("connect thread ended".into()))?
            .map_err(|e| RuntimeError::Failed(format!("connect to port {port} in sandbox: {e}")))?;
        tokio::net::TcpStream::from_std(stream)
            .map_err(|e| RuntimeError::Failed(format!("connect: {e}")))
    }
}
