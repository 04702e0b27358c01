//! Support shared by the end-to-end tests: starting `stead server`, and cleaning up after the
//! sandbox runtime. (Each test binary uses only part of it.)
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long an eventually-true condition may take before a test gives up (a deadline for a
/// stuck test, not a performance bound).
pub const PATIENCE: Duration = Duration::from_secs(240);

/// Polls `f` until it returns `Some`, panicking with `what` once [`PATIENCE`] has passed.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Stops a `stead` process: SIGTERM, up to a minute to exit, then SIGKILL.
pub fn stop(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Spawns `stead server --listen 127.0.0.1:0 --data-dir DATA EXTRA...` and waits for the line
/// `export KUBECONFIG=...` it prints once it serves; returns the process and the kubeconfig.
/// Its stderr goes to `stderr` (a pipe nobody reads can fill up: inherit unless the test reads
/// it after stopping the server).
pub fn spawn_server(data: &Path, extra: &[&str], stderr: Stdio) -> (Child, PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn stead server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let kubeconfig = PathBuf::from(
        line.trim()
            .strip_prefix("export KUBECONFIG=")
            .unwrap_or_else(|| panic!("export line, got {line:?}")),
    );
    assert!(kubeconfig.exists(), "{} written", kubeconfig.display());
    (child, kubeconfig)
}

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
