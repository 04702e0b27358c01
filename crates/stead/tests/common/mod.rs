//! Support shared by the sandbox end-to-end tests.

use std::path::Path;

/// Removes whatever sandboxes are left under the data dir (none, when the pods were deleted
/// through the API), then the node network namespace and the runtime's parent cgroups.
pub fn sweep(data: &Path) -> usize {
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
        // A failed reset left something behind: count it as left over.
        tokio.block_on(rt.reset()).unwrap_or(usize::MAX)
    })
    .join()
    .unwrap_or(0)
}
