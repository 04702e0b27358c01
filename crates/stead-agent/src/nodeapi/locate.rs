//! Finds a pod's container on this node from the runtime's own listing, so the node API needs
//! nothing from the pod workers: the newest sandbox of `<namespace>/<pod>`, and in it the
//! containers of that name by attempt.

use crate::runtime::{ContainerState, ContainerStatus, Runtime, SandboxStatus};

use super::NodeApiError;

/// A container's current instance and the one before it (for `--previous`).
#[derive(Debug, Clone)]
pub struct Located {
    pub current: ContainerStatus,
    pub previous: Option<ContainerStatus>,
}

impl Located {
    /// True while the current instance runs.
    pub fn running(&self) -> bool {
        matches!(self.current.state, ContainerState::Running { .. })
    }
}

/// Finds `container` of pod `namespace/pod`.
pub async fn locate<R: Runtime>(
    runtime: &R,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<Located, NodeApiError> {
    let (sandboxes, containers) = runtime
        .list()
        .await
        .map_err(|e| NodeApiError::internal(e.to_string()))?;
    let waiting = || {
        NodeApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        ))
    };
    let sandbox = sandboxes
        .iter()
        .filter(|s| s.namespace == namespace && s.name == pod)
        .max_by_key(|s| (s.ready, s.created_at))
        .ok_or_else(waiting)?;
    let mut instances: Vec<&ContainerStatus> = containers
        .iter()
        .filter(|c| c.sandbox == sandbox.id && c.name == container)
        .collect();
    instances.sort_by_key(|c| std::cmp::Reverse(c.attempt));
    let current = instances.first().ok_or_else(waiting)?;
    Ok(Located {
        current: (*current).clone(),
        previous: instances.get(1).map(|c| (*c).clone()),
    })
}

/// The newest sandbox of pod `namespace/pod` on this node (port-forward dials into it).
pub async fn locate_sandbox<R: Runtime>(
    runtime: &R,
    namespace: &str,
    pod: &str,
) -> Result<SandboxStatus, NodeApiError> {
    let (sandboxes, _) = runtime
        .list()
        .await
        .map_err(|e| NodeApiError::internal(e.to_string()))?;
    sandboxes
        .into_iter()
        .filter(|s| s.namespace == namespace && s.name == pod && s.ready)
        .max_by_key(|s| s.created_at)
        .ok_or_else(|| {
            NodeApiError::bad_request(format!("pod \"{pod}\" has no running sandbox on this node"))
        })
}
