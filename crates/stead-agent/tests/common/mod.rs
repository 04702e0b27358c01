//! Set-up shared by the root sandbox tests (`sandbox.rs`, `proxy.rs`): whether sandboxes can
//! run here, a busybox image layer, and removing every sandbox and the node when a test ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stead_agent::runtime::{ContainerSpec, Image, ImageConfig, Limits};

use stead_agent::sandbox::SandboxRuntime;

/// The static busybox the layer is made of (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// Whether the sandbox runtime can run here (root, busybox); prints why not.
pub fn can_run_sandboxes() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: the sandbox runtime needs root");
        return false;
    }
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipping: {BUSYBOX} is missing (apt-get install busybox-static)");
        return false;
    }
    true
}

/// `/bin/busybox` plus a link per applet, `/etc/passwd` and `/etc/group` (root and nobody).
pub fn busybox_layer(layer: &Path) {
    let bin = layer.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    std::fs::create_dir_all(layer.join("etc")).unwrap();
    std::fs::write(
        layer.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(layer.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// Removes every sandbox and the node namespace of `rt` (a clone of the test's runtime), from
/// a thread of its own so that it works from `Drop` inside a test's tokio runtime.
pub fn reset(rt: SandboxRuntime) {
    let _ = std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = tokio.block_on(rt.reset());
    })
    .join();
}

/// A container `name` of the busybox `layer` running `sh -c script`, logging to `log_path`.
pub fn busybox_container(
    layer: &Path,
    name: &str,
    script: &str,
    log_path: PathBuf,
) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        attempt: 0,
        image: Image {
            id: "sha256:busybox".into(),
            repo_digest: None,
            layers: vec![layer.to_path_buf()],
            config: ImageConfig::default(),
        },
        image_ref: "busybox".into(),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into()],
        working_dir: "/".into(),
        user: None,
        mounts: Vec::new(),
        limits: Limits::default(),
        stdin: false,
        stdin_once: false,
        tty: false,
        log_path,
        labels: BTreeMap::new(),
    }
}
