//! The Python `kubernetes` client against a real `stead server`: starts a server, runs
//! `tests/e2e/python/test_client.py` with `KUBECONFIG` pointing at the admin kubeconfig, and
//! requires it to exit 0. The script itself holds the checks; its output is printed here.

mod common;

use std::process::Command;

use anyhow::{Context, Result, bail};

use common::TestServer;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/e2e/python/test_client.py"
);

/// Fails (never skips) when the Python client is not installed.
fn require_python_client() -> Result<()> {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .context("python3 is not runnable; install Python 3 and `pip install kubernetes`")?;
    if !probe.status.success() {
        bail!(
            "the Python `kubernetes` package is missing: run `pip install kubernetes` \
             (the project's test command installs it)\n{}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_drives_every_served_resource() -> Result<()> {
    require_python_client()?;
    let server = TestServer::start().await?;
    let kubeconfig = server.kubeconfig();
    // The script blocks; the server keeps serving on the runtime's worker threads meanwhile.
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(SCRIPT)
            .env("KUBECONFIG", kubeconfig)
            .output()
    })
    .await?
    .context("run test_client.py")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    server.stop().await;
    if !output.status.success() {
        let summary = stdout.lines().last().unwrap_or("(no output)");
        bail!("test_client.py exited with {}: {summary}", output.status);
    }
    Ok(())
}
