//! Support shared by the sandbox end-to-end tests.

use std::path::Path;
use std::time::Duration;

/// Removes whatever sandboxes are left under the data dir (none, when the pods were deleted
/// through the API), then the node network namespace and the runtime's parent cgroups.
pub fn sweep(data: &Path) -> usize {
    use stead_agent::runtime::Runtime;
    use stead_agent::sandbox::{SandboxConfig, SandboxRuntime};
    let state = data.join("sandbox");
    if !state.exists() {
        return 0;
    }
    let state_dir = state.clone();
    std::thread::spawn(move || {
        let config = SandboxConfig::new(state_dir, env!("CARGO_BIN_EXE_stead"));
        let Ok(rt) = SandboxRuntime::new(config) else {
            return 0;
        };
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let left = tokio.block_on(async {
            let Ok((sandboxes, _)) = rt.list().await else {
                return 0;
            };
            for s in &sandboxes {
                let _ = rt.remove_sandbox(&s.id, Duration::ZERO).await;
            }
            sandboxes.len()
        });
        let _ = rt.teardown_node();
        left
    })
    .join()
    .unwrap_or(0)
}
