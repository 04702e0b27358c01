//! The contracts between the node agent's pod logic (the kubelet part, `kubelet/`) and the
//! machinery under it: [`Images`] (the content-addressed image store, `image/`) and
//! [`Runtime`] (pod sandboxes and container processes, `sandbox/`). Shaped like the CRI image
//! and runtime services, cut down to what stead uses. Fakes of both live in the kubelet tests.
//!
//! Everything here is plain data plus two traits; nothing decides anything. Identifiers are
//! stable across agent restarts: a restarted agent lists sandboxes and containers and finds
//! its pods again instead of starting them twice.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

/// How an image reference is resolved (`imagePullPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// Credentials for one registry host, from a pod's `imagePullSecrets` (dockerconfigjson).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// The registry host as written in the secret (`localhost:5000`, `https://index.docker.io/v1/`).
    pub registry: String,
    pub username: String,
    pub password: String,
}

/// An image ready to run: its unpacked layers and its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<hex>` of the image config (what `kubectl get pod -o yaml` shows as `imageID`
    /// after the repo: `docker.io/library/redis@sha256:...` or this id).
    pub id: String,
    /// `<repo>@sha256:<manifest digest>` when known (pulled or imported with a manifest).
    pub repo_digest: Option<String>,
    /// Unpacked layer directories, lowest first: the overlay lower dirs (overlayfs's
    /// `lowerdir=` option lists them the other way round, top first). Whiteouts in them are
    /// already in overlayfs form. Shared between images and containers: never write to them.
    pub layers: Vec<PathBuf>,
    pub config: ImageConfig,
}

/// The parts of an OCI image config a container uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `uid`, `uid:gid`, `name` or `name:group` as in the image config.
    pub user: Option<String>,
}

/// Why an image is not available; the kubelet turns these into container waiting reasons
/// (`ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`, `InvalidImageName`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("couldn't parse image name {0:?}")]
    InvalidName(String),
    #[error("container image {0:?} is not present with pull policy of Never")]
    NeverPull(String),
    /// Registry unreachable, not found, unauthorized, bad content; the message says which.
    #[error("{0}")]
    Pull(String),
}

/// The node's image store.
pub trait Images: Send + Sync + 'static {
    /// Makes `reference` available according to `policy`, pulling with `auth` if needed.
    fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        auth: &[RegistryAuth],
    ) -> impl Future<Output = Result<Image, ImageError>> + Send;
}

/// Identifies a pod sandbox: the pod's uid.
pub type SandboxId = String;

/// What a pod sandbox needs: namespaces, hostname, network, DNS and hosts files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The pod uid; names the sandbox's state directory, cgroup parent and veth.
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// `spec.hostname` or the pod name (UTS namespace).
    pub hostname: String,
    /// The contents of the pod's `/etc/hosts` and `/etc/resolv.conf` (bind-mounted read-only
    /// into every container unless the container mounts its own at that path).
    pub hosts_file: String,
    pub resolv_conf: String,
    /// `spec.hostNetwork`: no network namespace of its own.
    pub host_network: bool,
    /// `spec.shareProcessNamespace`: the containers share one PID namespace with the pause
    /// process (which is PID 1 there); otherwise each container has its own, its command PID 1.
    pub share_process_namespace: bool,
    /// Labels kept with the sandbox so a restarted agent can tell which pod it belongs to.
    pub labels: BTreeMap<String, String>,
}

/// A sandbox as the runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStatus {
    pub id: SandboxId,
    pub namespace: String,
    pub name: String,
    /// The pod's address on the node's pod network (none with host networking).
    pub ip: Option<IpAddr>,
    pub created_at: Timestamp,
    /// False once the pause process is gone.
    pub ready: bool,
    pub labels: BTreeMap<String, String>,
}

/// One bind mount into a container: a host path (an emptyDir, a PV's directory, a rendered
/// configMap/secret/downwardAPI directory, a hostPath) at `container_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host_path: PathBuf,
    pub container_path: String,
    pub read_only: bool,
}

/// Resource limits for the container's cgroup, from `resources` (already resolved to numbers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// CPU limit in millicores (`resources.limits.cpu`).
    pub cpu_millis: Option<u64>,
    /// CPU request in millicores, for cpu shares/weight.
    pub cpu_request_millis: Option<u64>,
    pub memory_bytes: Option<u64>,
}

/// What to run in one container. The kubelet resolved everything Kubernetes-shaped already:
/// `command` is the final argv (image entrypoint/cmd merged with the container's command/args
/// and `$(VAR)` expanded), `env` the final environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The container name within the pod.
    pub name: String,
    /// Restart count at this start; kept with the container (and in its log file name).
    pub attempt: u32,
    pub image: Image,
    /// The image reference as written in the pod (reported back in status).
    pub image_ref: String,
    pub command: Vec<String>,
    /// `NAME=value`.
    pub env: Vec<String>,
    /// Absolute path in the container; `/` when neither container nor image set one.
    pub working_dir: String,
    /// `uid` or `uid:gid` (securityContext.runAsUser/runAsGroup), else the image's user.
    pub user: Option<String>,
    pub mounts: Vec<Mount>,
    pub limits: Limits,
    /// `stdin`/`stdinOnce`/`tty` of the container spec (for `kubectl run -i --tty` / attach):
    /// with `stdin` the runtime keeps the container's stdin open for attach clients; with
    /// `stdin_once` it closes when the first client that attached stdin detaches; with `tty`
    /// the container's stdio is a terminal (output goes to the log as stdout).
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    /// Where the container's log goes (CRI format: `<RFC3339Nano> <stdout|stderr> <F|P> <line>`).
    pub log_path: PathBuf,
    pub labels: BTreeMap<String, String>,
}

/// Identifies a container: stable, unique on the node (`<sandbox>-<name>-<attempt>` or a
/// random hex id; `containerID` in status is `stead://<id>`).
pub type ContainerId = String;

/// The runtime's view of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: ContainerId,
    pub sandbox: SandboxId,
    pub name: String,
    pub attempt: u32,
    pub image_id: String,
    pub image_ref: String,
    pub state: ContainerState,
    pub log_path: PathBuf,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, not started (or start failed before exec: `reason`/`message` say why).
    Created,
    Running {
        started_at: Timestamp,
    },
    Exited {
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
        exit_code: i32,
        /// Set for a killed process (`signal` number) or a failure before exec.
        signal: Option<i32>,
        /// `OOMKilled` when the cgroup's memory limit killed it; `StartError` + message when
        /// the command could not be executed; `Error`/`Completed` left to the kubelet.
        reason: Option<String>,
        message: Option<String>,
    },
}

/// The outcome of an exec that ran to its end (probes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// An interactive exec or attach: the process's stdio as async byte streams and its exit code.
/// `stdin` is `None` unless asked for; with a tty, stderr is folded into stdout.
pub struct ExecSession {
    pub stdin: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    pub stdout: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
    pub stderr: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
    /// Resolves to the exit code when the process ends.
    pub exit: tokio::sync::oneshot::Receiver<i32>,
    /// Terminal size changes (cols, rows), when `tty`.
    pub resize: Option<tokio::sync::mpsc::Sender<(u16, u16)>>,
}

/// What an exec runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Errors of the runtime. `NotFound` means the sandbox or container is gone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

/// Pod sandboxes and container processes on this node.
///
/// Every method is idempotent where it can be: removing what is gone succeeds, stopping what
/// has exited succeeds. Containers keep running when the agent process exits; [`Runtime::list`]
/// finds them again.
pub trait Runtime: Send + Sync + 'static {
    /// Creates the pod's namespaces (held by a pause process), its network (veth on the node
    /// bridge, an address from the pod range) and its state directory.
    fn create_sandbox(
        &self,
        spec: &SandboxSpec,
    ) -> impl Future<Output = Result<SandboxStatus, RuntimeError>> + Send;

    /// Creates and starts a container in the sandbox; returns once it was exec'd (or failed).
    /// A command that cannot be executed is not an error: the container is listed `Exited`
    /// with exit code 128, reason `StartError` and the runtime's message.
    fn start_container(
        &self,
        sandbox: &SandboxId,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<ContainerId, RuntimeError>> + Send;

    /// Sends SIGTERM (or `signal`), waits up to `grace`, then SIGKILLs; returns once the process
    /// is gone. A container that already exited is left as it is.
    fn stop_container(
        &self,
        id: &ContainerId,
        grace: Duration,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Forgets an exited container (its rootfs upper dir and state; the log file stays until
    /// the sandbox is removed).
    fn remove_container(
        &self,
        id: &ContainerId,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Stops every container (SIGKILL after `grace`), the pause process, removes the veth,
    /// releases the address, unmounts and deletes the sandbox's state and logs.
    fn remove_sandbox(
        &self,
        id: &SandboxId,
        grace: Duration,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Every sandbox and container on the node, as they are now.
    fn list(
        &self,
    ) -> impl Future<Output = Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError>> + Send;

    /// What [`Runtime::list`] holds for the pod with this uid (its sandbox is the one whose id
    /// or pod-uid label is `uid`), possibly more. The default lists everything; a runtime that
    /// can look one pod up without reading the others overrides it (the kubelet's pod workers
    /// call it on every pass).
    fn list_pod(
        &self,
        uid: &str,
    ) -> impl Future<Output = Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError>> + Send
    {
        let _ = uid;
        self.list()
    }

    /// Runs `command` in the container to its end, or until `timeout` (then killed; the result
    /// is an error). For exec probes.
    fn exec_sync(
        &self,
        id: &ContainerId,
        command: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecOutput, RuntimeError>> + Send;

    /// Starts an interactive process in the container (`kubectl exec`).
    fn exec(
        &self,
        id: &ContainerId,
        spec: &ExecSpec,
    ) -> impl Future<Output = Result<ExecSession, RuntimeError>> + Send;

    /// Attaches to the running container's own process (`kubectl attach`, `kubectl run -i`):
    /// `spec.stdin` writes to its stdin (when the container was started with `stdin`),
    /// `stdout`/`stderr` stream its output from now on, `resize` sizes its terminal (`tty`).
    /// `spec.command` is ignored. The session's exit resolves with the container's exit code
    /// when it ends; dropping the session detaches.
    fn attach(
        &self,
        id: &ContainerId,
        spec: &ExecSpec,
    ) -> impl Future<Output = Result<ExecSession, RuntimeError>> + Send;

    /// Opens a TCP connection to `port` inside the sandbox's network namespace (port-forward,
    /// httpGet and tcpSocket probes reach the pod IP instead where there is one).
    fn connect(
        &self,
        sandbox: &SandboxId,
        port: u16,
    ) -> impl Future<Output = Result<tokio::net::TcpStream, RuntimeError>> + Send;
}
