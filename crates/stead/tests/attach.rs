//! End to end: `kubectl run -i` / `kubectl attach` against a real `stead server` running pods in
//! its sandbox runtime (the seed walkthrough's `kubectl run -i --tty --image busybox:1.28
//! dns-test --restart=Never --rm`). Needs root (the sandbox runtime) and the machine's
//! packages the test images are built from; `script` (util-linux) gives kubectl a terminal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

struct Server {
    child: Child,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stop the server (SIGTERM, then SIGKILL); its pods outlive it, as on a real node, so
        // remove what is left of them and the node network namespace.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        common::sweep(self._data.path());
    }
}

/// A server with the busybox test image imported, once its node is Ready; `None` (reason
/// printed) when not root.
fn start_server() -> Option<Server> {
    if !nix_is_root() {
        eprintln!("skipping: the sandbox runtime needs root");
        return None;
    }
    let images = stead_testimages::ensure_built(&stead_testimages::default_cache_dir())
        .expect("build the test images");
    let busybox = images
        .iter()
        .find(|i| i.names.iter().any(|n| n == "busybox:1.28"))
        .expect("a busybox:1.28 image");
    let data = tempfile::tempdir().unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(["image", "import", "--data-dir"])
        .arg(data.path())
        .arg(&busybox.path)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let (child, kubeconfig) = common::spawn_server(data.path(), &[], Stdio::inherit());
    let server = Server {
        child,
        kubeconfig,
        home: tempfile::tempdir().unwrap(),
        _data: data,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = kubectl(&server, &["get", "nodes", "--no-headers"], None);
        if String::from_utf8_lossy(&out.stdout).contains(" Ready") {
            return Some(server);
        }
        assert!(Instant::now() < deadline, "no Ready node: {out:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// kubectl 1.33 (WebSocket v5 attach), next to the version dispatcher.
fn kubectl_bin() -> PathBuf {
    kubectl_version(33)
}

/// kubectl 1.`minor`, next to the version dispatcher (1.29 attaches over SPDY).
fn kubectl_version(minor: u32) -> PathBuf {
    let which = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .unwrap();
    let dispatcher = PathBuf::from(String::from_utf8_lossy(&which.stdout).trim());
    let bin = dispatcher
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!("kubectl.1.{minor}"));
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

fn kubectl_command(server: &Server, program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args)
        .env("KUBECONFIG", &server.kubeconfig)
        .env("HOME", server.home.path());
    c
}

/// Runs kubectl with `stdin` as its input (or none).
fn kubectl(server: &Server, args: &[&str], stdin: Option<&str>) -> Output {
    run_with_input(kubectl_command(server, &kubectl_bin(), args), stdin)
}

fn run_with_input(mut command: Command, stdin: Option<&str>) -> Output {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_string();
        // Written from a thread so a command that does not read cannot block the test.
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until pod `name` is gone (`--rm` deletes it; the deletion completes once the node
/// stopped it).
fn assert_pod_goes_away(server: &Server, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = kubectl(server, &["get", "pod", name], None);
        let (_, err) = text(&out);
        if !out.status.success() && err.contains("NotFound") {
            return;
        }
        assert!(Instant::now() < deadline, "pod {name} is still there");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kubectl_run_interactive_shows_output_reads_stdin_and_returns_the_exit_code() {
    let Some(server) = start_server() else { return };

    // A quick command: its output is all there (the attach gets what it printed before).
    let out = kubectl(
        &server,
        &[
            "run",
            "-i",
            "--rm",
            "--restart=Never",
            "--image=busybox:1.28",
            "t",
            "--",
            "sh",
            "-c",
            "echo hello; hostname",
        ],
        None,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.windows(2).any(|w| w == ["hello", "t"]),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        lines.iter().filter(|l| **l == "hello").count(),
        1,
        "{stdout}"
    );
    assert_pod_goes_away(&server, "t");

    // stdin goes to the container's shell; kubectl returns the container's exit code.
    let out = kubectl(
        &server,
        &[
            "run",
            "-i",
            "--rm",
            "--restart=Never",
            "--image=busybox:1.28",
            "s",
            "--",
            "sh",
        ],
        Some("hostname; exit 3\n"),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.lines().any(|l| l == "s"), "{stdout}\n{stderr}");
    assert_pod_goes_away(&server, "s");

    // The seed's DNS check: the cluster DNS answers for the API server's Service.
    let out = kubectl(
        &server,
        &[
            "run",
            "-i",
            "--rm",
            "--restart=Never",
            "--image=busybox:1.28",
            "dns",
            "--",
            "nslookup",
            "kubernetes.default.svc.cluster.local",
        ],
        None,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Name:") && stdout.contains("kubernetes.default.svc.cluster.local"),
        "{stdout}\n{stderr}"
    );
    assert_pod_goes_away(&server, "dns");
}

#[test]
fn kubectl_run_with_a_terminal_and_kubectl_attach() {
    let Some(server) = start_server() else { return };
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: script (util-linux) is missing");
        return;
    }
    // kubectl gets a terminal from `script`; what is typed reaches the container's shell.
    let line = format!(
        "{} run -i --tty --rm --restart=Never --image=busybox:1.28 tty-test -- sh",
        kubectl_bin().display()
    );
    let mut script = Command::new("script");
    script
        .args(["-qec", &line, "/dev/null"])
        .env("KUBECONFIG", &server.kubeconfig)
        .env("HOME", server.home.path());
    let out = run_with_input(
        script,
        Some("[ -t 0 ] && echo \"on-a-$(echo tty)\"; hostname; exit 7\n"),
    );
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("on-a-tty\r\n"), "{stdout}\n{stderr}");
    assert!(stdout.contains("tty-test\r\n"), "{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{stderr}");
    assert_pod_goes_away(&server, "tty-test");

    // `kubectl attach` to a running pod with stdin: input in, output out, the pod's end ends
    // it; over a WebSocket (kubectl 1.33) and over SPDY (kubectl 1.29).
    for (minor, name) in [(33, "att"), (29, "att-spdy")] {
        let pod = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{
            "restartPolicy":"Never","containers":[{{"name":"c","image":"busybox:1.28",
            "command":["sh"],"stdin":true,"stdinOnce":true}}]}}}}"#
        );
        let out = kubectl(&server, &["apply", "-f", "-"], Some(&pod));
        assert!(out.status.success(), "{:?}", text(&out));
        let out = kubectl(
            &server,
            &[
                "wait",
                "--for=condition=Ready",
                &format!("pod/{name}"),
                "--timeout=60s",
            ],
            None,
        );
        assert!(out.status.success(), "{:?}", text(&out));
        let out = run_with_input(
            kubectl_command(
                &server,
                &kubectl_version(minor),
                &["attach", "-i", name, "-c", "c"],
            ),
            Some("echo attached-$((40+2)); exit 0\n"),
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "1.{minor}: {stdout}\n{stderr}");
        assert!(
            stdout.contains("attached-42\n"),
            "1.{minor}: {stdout}\n{stderr}"
        );
    }
}
