//! What the kubelet knows about one pod besides the pod object: the runtime's view of its
//! sandbox and containers ([`PodRuntime`]), probe results ([`ProbeResults`]) and its own memory
//! of back-offs, failed starts and attempts ([`Memory`]). The inputs of the pure decisions.

use std::collections::HashMap;

use jiff::Timestamp;

use super::backoff::Backoffs;
use crate::runtime::{ContainerState, ContainerStatus, SandboxStatus};

/// Labels the kubelet puts on sandboxes and containers, to find its pods after a restart.
pub const LABEL_POD_UID: &str = "stead.io/pod-uid";
pub const LABEL_POD_NAME: &str = "stead.io/pod-name";
pub const LABEL_POD_NAMESPACE: &str = "stead.io/pod-namespace";
pub const LABEL_CONTAINER_NAME: &str = "stead.io/container-name";
pub const LABEL_ATTEMPT: &str = "stead.io/attempt";

/// The runtime's view of one pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRuntime {
    pub sandbox: Option<SandboxStatus>,
    /// Every container of the pod the runtime still knows, any attempt.
    pub containers: Vec<ContainerStatus>,
}

impl PodRuntime {
    /// Picks the pod `uid`'s sandbox and containers out of a node-wide listing.
    pub fn of(
        uid: &str,
        sandboxes: &[SandboxStatus],
        containers: &[ContainerStatus],
    ) -> PodRuntime {
        let owned = |labels: &std::collections::BTreeMap<String, String>, id: &str| {
            labels.get(LABEL_POD_UID).map(String::as_str) == Some(uid) || id == uid
        };
        PodRuntime {
            sandbox: sandboxes.iter().find(|s| owned(&s.labels, &s.id)).cloned(),
            containers: containers
                .iter()
                .filter(|c| owned(&c.labels, &c.sandbox))
                .cloned()
                .collect(),
        }
    }

    /// The newest attempt of container `name`.
    pub fn latest(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers
            .iter()
            .filter(|c| c.name == name)
            .max_by_key(|c| c.attempt)
    }

    /// The attempt before the newest one, if the runtime still has it.
    pub fn previous(&self, name: &str) -> Option<&ContainerStatus> {
        let latest = self.latest(name)?.attempt;
        self.containers
            .iter()
            .filter(|c| c.name == name && c.attempt < latest)
            .max_by_key(|c| c.attempt)
    }

    pub fn any_running(&self) -> bool {
        self.containers.iter().any(|c| {
            matches!(
                c.state,
                ContainerState::Running { .. } | ContainerState::Created
            )
        })
    }
}

/// Probe results of one container (by container id: a new container starts afresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerProbes {
    /// The startup probe succeeded, or there is none.
    pub started: bool,
    /// The readiness probe says ready, or there is none (once started).
    pub ready: bool,
    /// The liveness probe failed `failureThreshold` times in a row.
    pub liveness_failed: bool,
}

/// Probe results by container id. A container missing here has no probes run yet: started
/// and ready unless it has a startup / readiness probe.
pub type ProbeResults = HashMap<String, ContainerProbes>;

/// A container start that failed before a process existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// `ErrImagePull`, `ErrImageNeverPull`, `InvalidImageName`, `CreateContainerConfigError`,
    /// `CreateContainerError`, `RunContainerError`.
    pub reason: String,
    pub message: String,
    pub at: Timestamp,
}

impl StartFailure {
    pub fn is_pull(&self) -> bool {
        self.reason == "ErrImagePull"
    }
}

/// The kubelet's own memory of a pod, kept by its worker.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    pub backoff: Backoffs,
    /// The last failed start per container name (cleared by a successful start).
    pub failures: HashMap<String, StartFailure>,
    /// The highest attempt started per container name (survives a lost sandbox).
    pub last_attempt: HashMap<String, u32>,
}

/// The back-off key of pulls for container `name`.
pub fn pull_key(name: &str) -> String {
    format!("pull/{name}")
}

/// The back-off key of other failed starts for container `name`.
pub fn start_key(name: &str) -> String {
    format!("start/{name}")
}
