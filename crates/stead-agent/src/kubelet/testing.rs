//! Stateful fakes of [`Runtime`] and [`Images`] for kubelet tests: they keep sandboxes and
//! containers in memory, record every call, and let a test kill a container, lose a sandbox or
//! make a pull fail. Injected by tests; never chosen by the kubelet itself.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use crate::runtime::{
    ContainerId, ContainerSpec, ContainerState, ContainerStatus, ExecOutput, ExecSession, ExecSpec,
    Image, ImageConfig, ImageError, Images, PullPolicy, RegistryAuth, Runtime, RuntimeError,
    SandboxId, SandboxSpec, SandboxStatus,
};

/// One call to the fake runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    CreateSandbox(String),
    StartContainer {
        sandbox: String,
        name: String,
        attempt: u32,
    },
    StopContainer(String),
    RemoveContainer(String),
    RemoveSandbox(String),
    ExecSync {
        id: String,
        command: Vec<String>,
    },
}

#[derive(Debug, Default)]
struct State {
    sandboxes: BTreeMap<SandboxId, SandboxStatus>,
    sandbox_specs: BTreeMap<SandboxId, SandboxSpec>,
    containers: BTreeMap<ContainerId, ContainerStatus>,
    specs: BTreeMap<ContainerId, ContainerSpec>,
    calls: Vec<Call>,
    next_ip: u32,
    /// Exit codes of exec'd commands (default 0), by argv.
    exec_results: HashMap<Vec<String>, i32>,
    /// Where `connect(_, port)` goes (a loopback listener of the test).
    ports: HashMap<u16, SocketAddr>,
}

/// A runtime that runs nothing: sandboxes get addresses from 10.42.0.0/16, containers run
/// until stopped or killed by the test.
#[derive(Debug, Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn sandboxes(&self) -> Vec<SandboxStatus> {
        self.lock().sandboxes.values().cloned().collect()
    }

    pub fn sandbox_spec(&self, id: &str) -> Option<SandboxSpec> {
        self.lock().sandbox_specs.get(id).cloned()
    }

    pub fn containers(&self) -> Vec<ContainerStatus> {
        self.lock().containers.values().cloned().collect()
    }

    /// The spec the container `id` was started with.
    pub fn container_spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().specs.get(id).cloned()
    }

    /// The running container `name` of sandbox `sandbox`, if any.
    pub fn running(&self, sandbox: &str, name: &str) -> Option<ContainerStatus> {
        self.lock()
            .containers
            .values()
            .find(|c| {
                c.sandbox == sandbox
                    && c.name == name
                    && matches!(c.state, ContainerState::Running { .. })
            })
            .cloned()
    }

    /// Makes container `id` exit with `exit_code` (as if its process ended).
    pub fn exit(&self, id: &str, exit_code: i32) {
        let mut s = self.lock();
        if let Some(c) = s.containers.get_mut(id) {
            let started_at = match c.state {
                ContainerState::Running { started_at } => Some(started_at),
                _ => None,
            };
            c.state = ContainerState::Exited {
                started_at,
                finished_at: Timestamp::now(),
                exit_code,
                signal: None,
                reason: None,
                message: None,
            };
        }
    }

    /// Marks sandbox `id` dead (its pause process gone).
    pub fn lose_sandbox(&self, id: &str) {
        if let Some(sb) = self.lock().sandboxes.get_mut(id) {
            sb.ready = false;
        }
    }

    /// Makes exec of `command` exit with `code`.
    pub fn set_exec_result(&self, command: &[&str], code: i32) {
        self.lock()
            .exec_results
            .insert(command.iter().map(|s| s.to_string()).collect(), code);
    }

    /// Routes `connect(_, port)` to `addr` (a loopback listener).
    pub fn route_port(&self, port: u16, addr: SocketAddr) {
        self.lock().ports.insert(port, addr);
    }

    /// Adds a sandbox and a running container as an earlier agent run would have left them.
    pub fn adopt(&self, sandbox: SandboxStatus, containers: Vec<ContainerStatus>) {
        let mut s = self.lock();
        s.sandboxes.insert(sandbox.id.clone(), sandbox);
        for c in containers {
            s.containers.insert(c.id.clone(), c);
        }
    }
}

impl Runtime for FakeRuntime {
    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<SandboxStatus, RuntimeError> {
        let mut s = self.lock();
        s.calls.push(Call::CreateSandbox(spec.uid.clone()));
        s.next_ip += 1;
        let n = s.next_ip;
        let status = SandboxStatus {
            id: spec.uid.clone(),
            namespace: spec.namespace.clone(),
            name: spec.name.clone(),
            ip: Some(IpAddr::V4(Ipv4Addr::new(
                10,
                42,
                (n >> 8) as u8,
                (n & 0xff) as u8,
            ))),
            created_at: Timestamp::now(),
            ready: true,
            labels: spec.labels.clone(),
        };
        // A sandbox re-created under the same id loses its old containers.
        s.containers.retain(|_, c| c.sandbox != spec.uid);
        s.sandboxes.insert(spec.uid.clone(), status.clone());
        s.sandbox_specs.insert(spec.uid.clone(), spec.clone());
        Ok(status)
    }

    async fn start_container(
        &self,
        sandbox: &SandboxId,
        spec: &ContainerSpec,
    ) -> Result<ContainerId, RuntimeError> {
        let mut s = self.lock();
        s.calls.push(Call::StartContainer {
            sandbox: sandbox.clone(),
            name: spec.name.clone(),
            attempt: spec.attempt,
        });
        if !s.sandboxes.get(sandbox).is_some_and(|sb| sb.ready) {
            return Err(RuntimeError::NotFound(format!("sandbox {sandbox}")));
        }
        let id = format!("{sandbox}-{}-{}", spec.name, spec.attempt);
        s.containers.insert(
            id.clone(),
            ContainerStatus {
                id: id.clone(),
                sandbox: sandbox.clone(),
                name: spec.name.clone(),
                attempt: spec.attempt,
                image_id: spec.image.id.clone(),
                image_ref: spec.image_ref.clone(),
                state: ContainerState::Running {
                    started_at: Timestamp::now(),
                },
                log_path: spec.log_path.clone(),
                labels: spec.labels.clone(),
            },
        );
        s.specs.insert(id.clone(), spec.clone());
        Ok(id)
    }

    async fn stop_container(&self, id: &ContainerId, _grace: Duration) -> Result<(), RuntimeError> {
        self.lock().calls.push(Call::StopContainer(id.clone()));
        let running = self
            .lock()
            .containers
            .get(id)
            .is_some_and(|c| matches!(c.state, ContainerState::Running { .. }));
        if running {
            self.exit(id, 143);
            if let Some(c) = self.lock().containers.get_mut(id)
                && let ContainerState::Exited { signal, .. } = &mut c.state
            {
                *signal = Some(15);
            }
        }
        Ok(())
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        s.calls.push(Call::RemoveContainer(id.clone()));
        s.containers.remove(id);
        Ok(())
    }

    async fn remove_sandbox(&self, id: &SandboxId, _grace: Duration) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        s.calls.push(Call::RemoveSandbox(id.clone()));
        s.sandboxes.remove(id);
        s.containers.retain(|_, c| &c.sandbox != id);
        Ok(())
    }

    async fn list(&self) -> Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError> {
        let s = self.lock();
        Ok((
            s.sandboxes.values().cloned().collect(),
            s.containers.values().cloned().collect(),
        ))
    }

    async fn exec_sync(
        &self,
        id: &ContainerId,
        command: &[String],
        _timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let mut s = self.lock();
        s.calls.push(Call::ExecSync {
            id: id.clone(),
            command: command.to_vec(),
        });
        if !s
            .containers
            .get(id)
            .is_some_and(|c| matches!(c.state, ContainerState::Running { .. }))
        {
            return Err(RuntimeError::NotFound(id.clone()));
        }
        let exit_code = s.exec_results.get(command).copied().unwrap_or(0);
        Ok(ExecOutput {
            exit_code,
            stdout: vec![],
            stderr: vec![],
        })
    }

    async fn exec(&self, id: &ContainerId, _spec: &ExecSpec) -> Result<ExecSession, RuntimeError> {
        Err(RuntimeError::Failed(format!(
            "fake runtime: no exec into {id}"
        )))
    }

    async fn attach(
        &self,
        id: &ContainerId,
        _spec: &ExecSpec,
    ) -> Result<ExecSession, RuntimeError> {
        Err(RuntimeError::Failed(format!(
            "fake runtime: no attach to {id}"
        )))
    }

    async fn connect(
        &self,
        _sandbox: &SandboxId,
        port: u16,
    ) -> Result<tokio::net::TcpStream, RuntimeError> {
        let addr = self.lock().ports.get(&port).copied();
        let addr =
            addr.ok_or_else(|| RuntimeError::Failed(format!("connection refused: port {port}")))?;
        tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| RuntimeError::Failed(e.to_string()))
    }
}

/// One call to the fake image store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub reference: String,
    pub policy: PullPolicy,
    pub auth: Vec<RegistryAuth>,
}

/// The fake image store's state: calls made, configs set, failures set.
type ImageState = (
    Vec<Pull>,
    HashMap<String, ImageConfig>,
    HashMap<String, ImageError>,
);

/// An image store where every image exists (config from [`FakeImages::set_config`], else an
/// entrypoint of `/bin/sh`) unless told to fail.
#[derive(Debug, Clone, Default)]
pub struct FakeImages {
    state: Arc<Mutex<ImageState>>,
}

impl FakeImages {
    pub fn new() -> FakeImages {
        FakeImages::default()
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    pub fn set_config(&self, reference: &str, config: ImageConfig) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .insert(reference.into(), config);
    }

    /// Makes pulls of `reference` fail with `error` (`None`: succeed again).
    pub fn fail(&self, reference: &str, error: Option<ImageError>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match error {
            Some(e) => s.2.insert(reference.into(), e),
            None => s.2.remove(reference),
        };
    }
}

impl Images for FakeImages {
    async fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        auth: &[RegistryAuth],
    ) -> Result<Image, ImageError> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0.push(Pull {
            reference: reference.into(),
            policy,
            auth: auth.to_vec(),
        });
        if let Some(e) = s.2.get(reference) {
            return Err(e.clone());
        }
        let config = s.1.get(reference).cloned().unwrap_or_else(|| ImageConfig {
            entrypoint: vec!["/bin/sh".into()],
            ..ImageConfig::default()
        });
        Ok(Image {
            id: format!("sha256:{:0>64}", reference.len()),
            repo_digest: None,
            layers: vec![],
            config,
        })
    }
}
