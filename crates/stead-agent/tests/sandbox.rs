//! The sandbox runtime against the real kernel: namespaces, overlayfs, cgroups, the node
//! bridge. Needs root (CI runs as root) and `busybox-static` (the test image's only layer).
//! Each test has its own state dir, node network namespace and cgroup parent, so tests run in
//! parallel processes without meeting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stead_agent::log_rotation::{LogRotation, rotated_files};
use stead_agent::runtime::{
    ContainerSpec, ContainerState, ContainerStatus, ExecSpec, Limits, Mount, Runtime, SandboxSpec,
    SandboxStatus,
};
use stead_agent::sandbox::{SandboxConfig, SandboxRuntime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

const HELPER: &str = env!("CARGO_BIN_EXE_stead-sandbox-helper");

struct Node {
    rt: SandboxRuntime,
    dir: tempfile::TempDir,
    layer: PathBuf,
    cgroup_parent: String,
    log_rotation: LogRotation,
}

impl Node {
    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A second runtime over the same state dir: what a restarted agent makes.
    fn restart(&self) -> SandboxRuntime {
        SandboxRuntime::new(self.config()).expect("restart runtime")
    }

    fn config(&self) -> SandboxConfig {
        let mut config = config(self.dir.path(), &self.cgroup_parent);
        config.container_log = self.log_rotation;
        config
    }
}

fn config(dir: &Path, cgroup_parent: &str) -> SandboxConfig {
    let mut config = SandboxConfig::new(dir.join("state"), HELPER);
    config.cgroup_parent = cgroup_parent.to_string();
    config
}

impl Drop for Node {
    fn drop(&mut self) {
        common::reset(self.rt.clone());
    }
}

/// A node, or `None` (with the reason printed) when not root or busybox is missing.
fn node() -> Option<Node> {
    node_with(LogRotation::default())
}

/// A node whose container logs rotate as given.
fn node_with(log_rotation: LogRotation) -> Option<Node> {
    if !common::can_run_sandboxes() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer");
    common::busybox_layer(&layer);
    let cgroup_parent = format!("stead-test-{}", std::process::id());
    let mut config = config(dir.path(), &cgroup_parent);
    config.container_log = log_rotation;
    let rt = SandboxRuntime::new(config).expect("runtime");
    Some(Node {
        rt,
        dir,
        layer,
        cgroup_parent,
        log_rotation,
    })
}

fn sandbox_spec(uid: &str, hostname: &str) -> SandboxSpec {
    SandboxSpec {
        uid: uid.into(),
        namespace: "default".into(),
        name: hostname.into(),
        hostname: hostname.into(),
        hosts_file: format!("127.0.0.1\tlocalhost\n10.42.0.99\t{hostname}\n"),
        resolv_conf: "nameserver 10.43.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n".into(),
        host_network: false,
        share_process_namespace: false,
        labels: BTreeMap::from([("pod".to_string(), hostname.to_string())]),
    }
}

fn container_spec(node: &Node, name: &str, script: &str) -> ContainerSpec {
    let log_path = node.dir.path().join("logs").join(format!("{name}.log"));
    common::busybox_container(&node.layer, name, script, log_path)
}

async fn status(rt: &SandboxRuntime, id: &str) -> ContainerStatus {
    let (_, containers) = rt.list().await.unwrap();
    containers
        .into_iter()
        .find(|c| c.id == id)
        .expect("container listed")
}

/// Waits (bounded) for the container to exit and returns its state.
async fn wait_exit(rt: &SandboxRuntime, id: &str) -> ContainerState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = status(rt, id).await.state;
        if matches!(state, ContainerState::Exited { .. }) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} did not exit: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn exit_code(state: &ContainerState) -> i32 {
    match state {
        ContainerState::Exited { exit_code, .. } => *exit_code,
        other => panic!("not exited: {other:?}"),
    }
}

/// The log's lines without the CRI prefix, checking the prefix on the way.
fn log_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let ts = parts.next().unwrap();
            assert!(
                ts.parse::<jiff::Timestamp>().is_ok() && ts.ends_with('Z'),
                "timestamp in {line:?}"
            );
            assert_eq!(
                ts.split('.').nth(1).map(str::len),
                Some(10),
                "nanoseconds in {line:?}"
            );
            assert!(
                matches!(parts.next(), Some("stdout" | "stderr")),
                "stream in {line:?}"
            );
            assert!(matches!(parts.next(), Some("F" | "P")), "tag in {line:?}");
            parts.next().unwrap_or("").to_string()
        })
        .collect()
}

async fn run_to_end(
    node: &Node,
    pod: &SandboxStatus,
    spec: &ContainerSpec,
) -> (ContainerState, Vec<String>) {
    let id = node.rt.start_container(&pod.id, spec).await.unwrap();
    let state = wait_exit(&node.rt, &id).await;
    (state, log_lines(&spec.log_path))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_sees_its_pod_hostname_files_network_and_pid_namespace() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-a", "web-0"))
        .await
        .unwrap();
    let ip = pod.ip.expect("pod ip").to_string();
    let mut spec = container_spec(
        &node,
        "main",
        "hostname; cat /etc/hosts /etc/resolv.conf; echo cmd1=$(tr '\\0' ' ' < /proc/1/cmdline); \
         echo procs=$(cat /proc/[0-9]*/comm | sort -u | tr '\\n' ' '); echo links=$(ls /sys/class/net | sort | tr '\\n' ' '); \
         ip -o -4 addr show dev eth0; echo foo=$FOO; pwd; echo err >&2",
    );
    spec.env.push("FOO=bar baz".into());
    spec.working_dir = "/work/here".into();
    let (state, lines) = run_to_end(&node, &pod, &spec).await;
    assert_eq!(exit_code(&state), 0, "{lines:?}");
    assert_eq!(lines[0], "web-0");
    assert!(
        lines.contains(&"10.42.0.99\tweb-0".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"nameserver 10.43.0.10".to_string()),
        "{lines:?}"
    );
    // The container's command is PID 1 of a PID namespace of its own.
    let cmd1 = lines.iter().find(|l| l.starts_with("cmd1=")).unwrap();
    assert!(cmd1.starts_with("cmd1=/bin/sh -c hostname;"), "{cmd1}");
    // Only the container's processes: the shell and the pipeline's commands (not the pause
    // process, no host process, not the test runner). Busybox runs some applets by executing
    // itself again through /proc/self/exe: such a pipeline command is named `exe`.
    let procs = lines.iter().find_map(|l| l.strip_prefix("procs=")).unwrap();
    for comm in procs.split_whitespace() {
        assert!(
            ["sh", "cat", "sort", "tr", "exe"].contains(&comm),
            "unexpected process {comm} in {procs}"
        );
    }
    assert!(lines.contains(&"links=eth0 lo".to_string()), "{lines:?}");
    let addr = lines
        .iter()
        .find(|l| l.contains("inet "))
        .expect("eth0 address");
    assert!(addr.contains(&format!("inet {ip}/16")), "{addr}");
    assert!(lines.contains(&"foo=bar baz".to_string()));
    assert!(lines.contains(&"/work/here".to_string()));
    assert!(lines.contains(&"err".to_string()));
    let log = std::fs::read_to_string(&spec.log_path).unwrap();
    assert!(log.lines().any(|l| l.contains(" stderr F err")), "{log}");
}

// Ref: shareProcessNamespace (k8s.io/api core/v1 PodSpec); runc gives each container a new
// PID namespace unless the CRI config names the sandbox's.
#[tokio::test(flavor = "multi_thread")]
async fn containers_see_each_other_only_when_the_pod_shares_its_process_namespace() {
    let Some(node) = node() else { return };
    for share in [false, true] {
        let name = if share { "shared" } else { "private" };
        let mut sandbox = sandbox_spec(&format!("pod-{name}"), name);
        sandbox.share_process_namespace = share;
        let pod = node.rt.create_sandbox(&sandbox).await.unwrap();
        let sleeper = container_spec(&node, &format!("{name}-sleeper"), "echo up; exec sleep 61");
        let sleeper_id = node.rt.start_container(&pod.id, &sleeper).await.unwrap();
        wait_for_log(&sleeper.log_path, "up").await;
        // Looks (for up to 2 s, in case the exec is still under way) for the sleeper.
        let looker = container_spec(
            &node,
            &format!("{name}-looker"),
            "seen() { for f in /proc/[0-9]*/cmdline; do \
               [ \"$(tr '\\0' ' ' < $f 2>/dev/null)\" = 'sleep 61 ' ] && echo x; done; }; \
             for i in $(seq 40); do [ -n \"$(seen)\" ] && break; sleep 0.05; done; \
             printf 'cmd1=%s\\n' \"$(tr '\\0' ' ' < /proc/1/cmdline)\"; \
             printf 'sleeper=%s\\n' \"$(seen | wc -l)\"",
        );
        let (state, lines) = run_to_end(&node, &pod, &looker).await;
        assert_eq!(exit_code(&state), 0, "{lines:?}");
        let cmd1 = lines.iter().find(|l| l.starts_with("cmd1=")).unwrap();
        let sleeper_seen = lines.iter().find(|l| l.starts_with("sleeper=")).unwrap();
        if share {
            // The pause process is PID 1 of the pod's namespace, and the other container's
            // process is visible.
            assert!(!cmd1.contains("/bin/sh"), "{cmd1}");
            assert_eq!(sleeper_seen, "sleeper=1", "{lines:?}");
        } else {
            assert!(cmd1.starts_with("cmd1=/bin/sh -c seen()"), "{cmd1}");
            assert_eq!(sleeper_seen, "sleeper=0", "{lines:?}");
        }
        node.rt
            .stop_container(&sleeper_id, Duration::ZERO)
            .await
            .unwrap();
        node.rt
            .remove_sandbox(&pod.id, Duration::from_secs(1))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_pods_reach_each_other_over_the_bridge_and_connect_reaches_a_pod_port() {
    let Some(node) = node() else { return };
    let server = node
        .rt
        .create_sandbox(&sandbox_spec("pod-server", "server"))
        .await
        .unwrap();
    let client = node
        .rt
        .create_sandbox(&sandbox_spec("pod-client", "client"))
        .await
        .unwrap();
    let server_ip = server.ip.unwrap().to_string();
    assert_ne!(server.ip, client.ip);
    let spec = container_spec(
        &node,
        "httpd",
        "mkdir -p /www && echo hello-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    let httpd = node.rt.start_container(&server.id, &spec).await.unwrap();
    assert!(matches!(
        status(&node.rt, &httpd).await.state,
        ContainerState::Running { .. }
    ));

    let fetch = container_spec(
        &node,
        "fetch",
        &format!(
            "for i in $(seq 1 100); do wget -q -O - http://{server_ip}:8080/ && exit 0; sleep 0.05; done; exit 1"
        ),
    );
    let (state, lines) = run_to_end(&node, &client, &fetch).await;
    assert_eq!(exit_code(&state), 0, "{lines:?}");
    assert!(
        lines.contains(&"hello-from-server".to_string()),
        "{lines:?}"
    );

    let mut stream = node.rt.connect(&server.id, 8080).await.unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.") && response.contains("hello-from-server"),
        "{response}"
    );

    // Host-side tools reach pods by entering the node namespace.
    let out = node
        .rt
        .node_netns_command(&[
            "/bin/busybox",
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://{server_ip}:8080/"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello-from-server\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn rootfs_writes_go_to_the_upper_dir_and_bind_mounts_are_visible() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-fs", "fs"))
        .await
        .unwrap();
    let rw = node.dir.path().join("rw");
    let ro = node.dir.path().join("ro");
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("data"), "read-only-data\n").unwrap();
    let mut spec = container_spec(
        &node,
        "writer",
        "echo new > /created && echo more >> /etc/passwd && echo x > /data/rw/x && cat /data/ro/data && \
         if echo y > /data/ro/y; then echo ro-writable; else echo ro-refused; fi",
    );
    spec.mounts = vec![
        Mount {
            host_path: rw.clone(),
            container_path: "/data/rw".into(),
            read_only: false,
        },
        Mount {
            host_path: ro.clone(),
            container_path: "/data/ro".into(),
            read_only: true,
        },
    ];
    let (state, lines) = run_to_end(&node, &pod, &spec).await;
    assert_eq!(exit_code(&state), 0, "{lines:?}");
    assert!(lines.contains(&"read-only-data".to_string()), "{lines:?}");
    assert!(lines.contains(&"ro-refused".to_string()), "{lines:?}");
    assert_eq!(std::fs::read_to_string(rw.join("x")).unwrap(), "x\n");
    assert!(!ro.join("y").exists());
    assert!(!node.layer.join("created").exists());
    assert!(
        !std::fs::read_to_string(node.layer.join("etc/passwd"))
            .unwrap()
            .contains("more")
    );
    let uppers: Vec<PathBuf> = glob_uppers(&node.state_dir());
    assert!(
        uppers.iter().any(|u| u.join("created").exists()),
        "{uppers:?}"
    );
}

fn glob_uppers(state: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pod in std::fs::read_dir(state.join("sandboxes"))
        .unwrap()
        .flatten()
    {
        for c in std::fs::read_dir(pod.path().join("containers"))
            .unwrap()
            .flatten()
        {
            out.push(c.path().join("upper"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_and_a_missing_executable_are_reported() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-exit", "exit"))
        .await
        .unwrap();
    let (ok, _) = run_to_end(&node, &pod, &container_spec(&node, "ok", "exit 0")).await;
    assert_eq!(exit_code(&ok), 0);
    let (three, _) = run_to_end(&node, &pod, &container_spec(&node, "three", "exit 3")).await;
    assert_eq!(exit_code(&three), 3);
    let mut missing = container_spec(&node, "missing", "");
    missing.command = vec!["no-such-program".into(), "arg".into()];
    let (state, _) = run_to_end(&node, &pod, &missing).await;
    match state {
        ContainerState::Exited {
            exit_code,
            reason,
            message,
            ..
        } => {
            assert_eq!(exit_code, 128);
            assert_eq!(reason.as_deref(), Some("StartError"));
            assert_eq!(
                message.as_deref(),
                Some("exec: \"no-such-program\": executable file not found in $PATH")
            );
        }
        other => panic!("{other:?}"),
    }
    let mut nobody = container_spec(&node, "nobody", "id -u; id -g");
    nobody.user = Some("nobody".into());
    let (state, lines) = run_to_end(&node, &pod, &nobody).await;
    assert_eq!(exit_code(&state), 0);
    assert_eq!(lines, vec!["65534", "65534"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_sends_term_and_kills_after_the_grace_period() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-stop", "stop"))
        .await
        .unwrap();
    let trapping = container_spec(
        &node,
        "trapping",
        "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done",
    );
    let id = node.rt.start_container(&pod.id, &trapping).await.unwrap();
    wait_for_log(&trapping.log_path, "ready").await;
    node.rt
        .stop_container(&id, Duration::from_secs(20))
        .await
        .unwrap();
    match status(&node.rt, &id).await.state {
        ContainerState::Exited {
            exit_code, signal, ..
        } => assert_eq!((exit_code, signal), (7, None)),
        other => panic!("{other:?}"),
    }
    assert!(log_lines(&trapping.log_path).contains(&"got-term".to_string()));

    let ignoring = container_spec(
        &node,
        "ignoring",
        "trap '' TERM; echo ready; while true; do sleep 0.05; done",
    );
    let id = node.rt.start_container(&pod.id, &ignoring).await.unwrap();
    wait_for_log(&ignoring.log_path, "ready").await;
    node.rt
        .stop_container(&id, Duration::from_millis(300))
        .await
        .unwrap();
    match status(&node.rt, &id).await.state {
        ContainerState::Exited {
            exit_code, signal, ..
        } => assert_eq!((exit_code, signal), (137, Some(9))),
        other => panic!("{other:?}"),
    }
    // Stopping what has exited succeeds; removing forgets it.
    node.rt.stop_container(&id, Duration::ZERO).await.unwrap();
    node.rt.remove_container(&id).await.unwrap();
    let (_, containers) = node.rt.list().await.unwrap();
    assert!(!containers.iter().any(|c| c.id == id));
}

async fn wait_for_log(path: &Path, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log_lines(path).iter().any(|l| l == line) {
        assert!(
            Instant::now() < deadline,
            "no {line:?} in {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_are_written_to_the_container_cgroup() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-limits", "limits"))
        .await
        .unwrap();
    let mut spec = container_spec(&node, "limited", "echo ready; sleep 30");
    spec.limits = Limits {
        cpu_millis: Some(500),
        cpu_request_millis: Some(250),
        memory_bytes: Some(64 << 20),
    };
    let id = node.rt.start_container(&pod.id, &spec).await.unwrap();
    let dir = node
        .rt
        .container_cgroup_dir(&pod.id, &id)
        .expect("cgroup dir");
    if dir.join("memory.max").exists() {
        assert_eq!(
            std::fs::read_to_string(dir.join("memory.max"))
                .unwrap()
                .trim(),
            (64u64 << 20).to_string()
        );
    } else {
        assert_eq!(
            std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
                .unwrap()
                .trim(),
            (64u64 << 20).to_string()
        );
        let cpu = PathBuf::from(format!(
            "/sys/fs/cgroup/cpu/{}/podpod-limits/{id}",
            node.cgroup_parent
        ));
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
                .unwrap()
                .trim(),
            "50000"
        );
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.shares"))
                .unwrap()
                .trim(),
            "256"
        );
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(
        procs.lines().count(),
        1,
        "the container process is in its cgroup: {procs}"
    );
    node.rt.stop_container(&id, Duration::ZERO).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_commands_inside_the_container() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-exec", "exec"))
        .await
        .unwrap();
    let mut spec = container_spec(
        &node,
        "main",
        "echo marker > /marker; echo ready; exec sleep 60",
    );
    spec.env.push("GREETING=hi".into());
    spec.working_dir = "/tmp".into();
    let id = node.rt.start_container(&pod.id, &spec).await.unwrap();
    wait_for_log(&spec.log_path, "ready").await;

    let argv = |s: &str| vec!["/bin/sh".to_string(), "-c".to_string(), s.to_string()];
    let out = node
        .rt
        .exec_sync(
            &id,
            &argv("cat /marker; hostname; pwd; echo $GREETING; echo oops >&2; exit 4"),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 4);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "marker\nexec\n/tmp\nhi\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");

    let missing = node
        .rt
        .exec_sync(&id, &["nope".to_string()], Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(missing.exit_code, 127);

    assert!(
        node.rt
            .exec_sync(&id, &argv("sleep 30"), Duration::from_millis(300))
            .await
            .is_err()
    );

    let spec_cat = ExecSpec {
        command: vec!["cat".into()],
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let mut session = node.rt.exec(&id, &spec_cat).await.unwrap();
    let mut stdin = session.stdin.take().unwrap();
    stdin.write_all(b"ping\n").await.unwrap();
    drop(stdin);
    let mut echoed = String::new();
    session
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut echoed)
        .await
        .unwrap();
    assert_eq!(echoed, "ping\n");
    assert_eq!(session.exit.await.unwrap(), 0);

    // With a tty: stdin is a terminal and a resize reaches it (the command waits for it).
    // Until the resize lands the window is 0x0 and `stty size` complains on the terminal,
    // which is also stdout here, so its complaints are discarded.
    let spec_tty = ExecSpec {
        command: argv(
            "while [ \"$(stty size 2>/dev/null)\" != \"40 120\" ]; do sleep 0.01; done; [ -t 0 ] && echo tty-ok",
        ),
        stdin: false,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let mut session = node.rt.exec(&id, &spec_tty).await.unwrap();
    let resize = session.resize.clone().expect("tty resize");
    resize.send((120, 40)).await.unwrap();
    let mut out = String::new();
    let mut stdout = session.stdout.take().unwrap();
    let read = stdout.read_to_string(&mut out);
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("tty exec ends")
        .unwrap();
    assert_eq!(out, "tty-ok\r\n");
    assert_eq!(session.exit.await.unwrap(), 0);
}

// Ref: kubelet containerLogMaxSize / containerLogMaxFiles (pkg/kubelet/logs/container_log_manager.go)
#[tokio::test(flavor = "multi_thread")]
async fn a_container_log_rotates_by_size_and_keeps_at_most_max_files() {
    let rotation = LogRotation {
        max_size: 4096,
        max_files: 3,
    };
    let Some(node) = node_with(rotation) else {
        return;
    };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-rotate", "rotate"))
        .await
        .unwrap();
    // About 50 bytes a record: 3000 lines rotate the log some 35 times.
    let spec = container_spec(
        &node,
        "chatty",
        "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done",
    );
    let (state, _) = run_to_end(&node, &pod, &spec).await;
    assert_eq!(exit_code(&state), 0);

    let rotated = rotated_files(&spec.log_path);
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    let logs_dir = spec.log_path.parent().unwrap();
    let on_disk = std::fs::read_dir(logs_dir).unwrap().count();
    assert_eq!(on_disk, 3, "the current file and two rotated ones");
    // Oldest first: the kept files hold one unbroken run of lines, ending with the last.
    let mut lines = Vec::new();
    for path in rotated
        .iter()
        .map(|(_, p)| p.as_path())
        .chain([spec.log_path.as_path()])
    {
        let size = std::fs::metadata(path).unwrap().len();
        assert!(
            size <= rotation.max_size,
            "{} holds {size} bytes",
            path.display()
        );
        lines.extend(log_lines(path));
    }
    let first: usize = lines[0].strip_prefix("line-").unwrap().parse().unwrap();
    let expected: Vec<String> = (first..3000).map(|i| format!("line-{i}")).collect();
    assert_eq!(lines, expected);
    assert!(first > 2000, "older lines were rotated away: {first}");

    node.rt
        .remove_sandbox(&pod.id, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(std::fs::read_dir(logs_dir).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_runtime_finds_its_pods_and_exits_that_happened_meanwhile() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-restart", "restart"))
        .await
        .unwrap();
    let gate = node.dir.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let mut spec = container_spec(
        &node,
        "waiter",
        "while [ ! -e /gate/go ]; do sleep 0.02; done; exit 5",
    );
    spec.mounts = vec![Mount {
        host_path: gate.clone(),
        container_path: "/gate".into(),
        read_only: true,
    }];
    let id = node.rt.start_container(&pod.id, &spec).await.unwrap();
    let keep = node
        .rt
        .start_container(&pod.id, &container_spec(&node, "keep", "exec sleep 60"))
        .await
        .unwrap();

    // The agent goes away (its runtime value is dropped), the container exits, a new agent
    // starts over the same state dir.
    let before = node.rt.list().await.unwrap();
    std::fs::write(gate.join("go"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let restarted = node.restart();
    let (sandboxes, containers) = restarted.list().await.unwrap();
    assert_eq!(sandboxes, before.0);
    assert_eq!(containers.len(), 2);
    // The one-pod listing the kubelet's workers use holds the same.
    let (one, theirs) = restarted.list_pod(&pod.id).await.unwrap();
    assert_eq!(one, sandboxes);
    assert_eq!(
        theirs.iter().map(|c| &c.id).collect::<Vec<_>>(),
        containers.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    assert_eq!(
        restarted.list_pod("no-such-pod").await.unwrap(),
        (vec![], vec![])
    );
    assert_eq!(exit_code(&wait_exit(&restarted, &id).await), 5);
    assert!(matches!(
        status(&restarted, &keep).await.state,
        ContainerState::Running { .. }
    ));
    assert!(sandboxes[0].ready);
    assert_eq!(
        sandboxes[0].labels.get("pod").map(String::as_str),
        Some("restart")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_sandbox_leaves_no_process_mount_veth_cgroup_or_address() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-gone", "gone"))
        .await
        .unwrap();
    let spec = container_spec(&node, "main", "sleep 60 & echo ready; wait");
    let id = node.rt.start_container(&pod.id, &spec).await.unwrap();
    wait_for_log(&spec.log_path, "ready").await;
    // A container removed before its sandbox: its log stays until the sandbox goes.
    let earlier = container_spec(&node, "earlier", "echo bye");
    let (_, lines) = run_to_end(&node, &pod, &earlier).await;
    assert_eq!(lines, vec!["bye"]);
    let (_, listed) = node.rt.list().await.unwrap();
    let earlier_id = listed
        .iter()
        .find(|c| c.name == "earlier")
        .unwrap()
        .id
        .clone();
    node.rt.remove_container(&earlier_id).await.unwrap();
    assert!(earlier.log_path.exists());
    let pod_dir = node.state_dir().join("sandboxes/pod-gone");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pod_dir.join("sandbox.json")).unwrap()).unwrap();
    let container: serde_json::Value = serde_json::from_slice(
        &std::fs::read(pod_dir.join("containers").join(&id).join("container.json")).unwrap(),
    )
    .unwrap();
    let pids: Vec<i64> = [
        &record["pause"]["pid"],
        &container["process"]["pid"],
        &container["shim"]["pid"],
    ]
    .iter()
    .map(|v| v.as_i64().unwrap())
    .collect();
    let veth = record["veth"].as_str().unwrap().to_string();
    let cgroup = node.rt.container_cgroup_dir(&pod.id, &id).unwrap();
    let pod_cgroup = cgroup.parent().unwrap().to_path_buf();
    let in_cgroup: Vec<String> = std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(in_cgroup.len(), 2, "the shell and its sleep: {in_cgroup:?}");
    let ip_file = node
        .state_dir()
        .join("ipam")
        .join(pod.ip.unwrap().to_string());
    assert!(ip_file.exists());

    node.rt
        .remove_sandbox(&pod.id, Duration::from_secs(1))
        .await
        .unwrap();

    for pid in pids.iter().map(|p| p.to_string()).chain(in_cgroup) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "process {pid} is left: {stat}"
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&pod_dir.display().to_string()),
        "mounts left under {}",
        pod_dir.display()
    );
    let links = node
        .rt
        .node_netns_command(&["ip", "-o", "link"])
        .output()
        .unwrap();
    assert!(links.status.success());
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&veth));
    assert!(!pod_cgroup.exists(), "{} is left", pod_cgroup.display());
    assert!(!ip_file.exists());
    assert!(!pod_dir.exists());
    assert!(!spec.log_path.exists());
    assert!(!earlier.log_path.exists());
    let (sandboxes, containers) = node.rt.list().await.unwrap();
    assert!(sandboxes.is_empty() && containers.is_empty());
    // Removing again succeeds.
    node.rt
        .remove_sandbox(&pod.id, Duration::ZERO)
        .await
        .unwrap();
}

/// Not an assertion of speed: prints how long a pod takes to start and what its helper
/// processes cost, for the benchmarks notes.
#[tokio::test(flavor = "multi_thread")]
async fn measure_pod_start_time_and_helper_memory() {
    let Some(node) = node() else { return };
    let mut times = Vec::new();
    for i in 0..5 {
        let start = Instant::now();
        let pod = node
            .rt
            .create_sandbox(&sandbox_spec(&format!("pod-m{i}"), &format!("m{i}")))
            .await
            .unwrap();
        let sandbox_done = start.elapsed();
        let id = node
            .rt
            .start_container(
                &pod.id,
                &container_spec(&node, &format!("c{i}"), "exec sleep 60"),
            )
            .await
            .unwrap();
        let total = start.elapsed();
        assert!(matches!(
            status(&node.rt, &id).await.state,
            ContainerState::Running { .. }
        ));
        times.push((sandbox_done, total));
    }
    let pod_dir = node.state_dir().join("sandboxes/pod-m0");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pod_dir.join("sandbox.json")).unwrap()).unwrap();
    let cdir = std::fs::read_dir(pod_dir.join("containers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let container: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cdir.join("container.json")).unwrap()).unwrap();
    let rss = |pid: i64| -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap_or("VmRSS: ?")
            .trim_start_matches("VmRSS:")
            .trim()
            .to_string()
    };
    for (i, (sandbox, total)) in times.iter().enumerate() {
        println!("pod {i}: create_sandbox {sandbox:?}, create_sandbox + start_container {total:?}");
    }
    println!(
        "RSS: pause {}, shim {}",
        rss(record["pause"]["pid"].as_i64().unwrap()),
        rss(container["shim"]["pid"].as_i64().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_over_its_memory_limit_is_reported_oom_killed() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-oom", "oom"))
        .await
        .unwrap();
    let mut spec = container_spec(
        &node,
        "hog",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
    );
    spec.limits.memory_bytes = Some(32 << 20);
    let (state, lines) = run_to_end(&node, &pod, &spec).await;
    match state {
        ContainerState::Exited {
            exit_code,
            signal,
            reason,
            ..
        } => {
            assert_eq!(
                (exit_code, signal, reason.as_deref()),
                (137, Some(9), Some("OOMKilled")),
                "{lines:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_network_pod_shares_the_node_namespace_and_has_no_address_of_its_own() {
    let Some(node) = node() else { return };
    let mut sandbox = sandbox_spec("pod-host", "hostnet");
    sandbox.host_network = true;
    let pod = node.rt.create_sandbox(&sandbox).await.unwrap();
    assert_eq!(pod.ip, None);
    let (state, lines) = run_to_end(
        &node,
        &pod,
        &container_spec(&node, "links", "hostname; ls /sys/class/net | sort"),
    )
    .await;
    assert_eq!(exit_code(&state), 0);
    assert_eq!(lines, vec!["hostnet", "lo", "stead0"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_reach_a_socket_the_agent_binds_on_a_node_address() {
    // How cluster DNS (10.43.0.10) is served: an address on the node namespace's loopback, a
    // socket bound there by the agent, reached from pods through their default route.
    let Some(node) = node() else { return };
    let addr = std::net::Ipv4Addr::new(10, 43, 0, 10);
    node.rt.add_node_address(addr).unwrap();
    node.rt.add_node_address(addr).unwrap();
    let listener = node.rt.bind_tcp_in_node_netns((addr, 8053).into()).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut conn, peer) = listener.accept().unwrap();
        conn.write_all(b"node-socket-ok\n").unwrap();
        peer
    });
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-dns", "dns"))
        .await
        .unwrap();
    let (state, lines) = run_to_end(
        &node,
        &pod,
        &container_spec(&node, "nc", "nc 10.43.0.10 8053 </dev/null"),
    )
    .await;
    assert_eq!(exit_code(&state), 0, "{lines:?}");
    assert_eq!(lines, vec!["node-socket-ok"]);
    assert_eq!(server.join().unwrap().ip(), pod.ip.unwrap());
}

fn attach_spec(stdin: bool, tty: bool) -> ExecSpec {
    ExecSpec {
        command: Vec::new(),
        stdin,
        stdout: true,
        stderr: !tty,
        tty,
    }
}

/// Reads a session stream to its end (bounded, so a hang fails the test instead).
async fn read_all(stream: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>) -> String {
    let mut out = String::new();
    let mut stream = stream.expect("stream");
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_string(&mut out))
        .await
        .expect("stream ends")
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_writes_stdin_and_reads_output_of_a_stdin_container() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-attach", "attacher"))
        .await
        .unwrap();
    // `kubectl run -i` makes a stdinOnce container; what it prints before the attach comes is
    // sent to the first client.
    let mut spec = container_spec(&node, "shell", "echo early; echo warn >&2; exec sh");
    spec.stdin = true;
    spec.stdin_once = true;
    let id = node.rt.start_container(&pod.id, &spec).await.unwrap();
    wait_for_log(&spec.log_path, "early").await;

    let mut session = node
        .rt
        .attach(&id, &attach_spec(true, false))
        .await
        .unwrap();
    let mut stdin = session.stdin.take().unwrap();
    stdin
        .write_all(b"echo hi; hostname; echo bad >&2; exit 4\n")
        .await
        .unwrap();
    let (out, err) = tokio::join!(
        read_all(session.stdout.take()),
        read_all(session.stderr.take())
    );
    assert_eq!(out, "early\nhi\nattacher\n");
    assert_eq!(err, "warn\nbad\n");
    assert_eq!(session.exit.await.unwrap(), 4);
    assert_eq!(exit_code(&wait_exit(&node.rt, &id).await), 4);
    let log = log_lines(&spec.log_path);
    assert!(log.contains(&"hi".to_string()), "{log:?}");
    // The container is gone: nothing to attach to.
    assert!(
        node.rt
            .attach(&id, &attach_spec(true, false))
            .await
            .is_err()
    );

    // stdinOnce: the first client that attached stdin leaving closes it (cat sees its end);
    // a client without stdin comes and goes without closing it.
    let mut spec = container_spec(&node, "cat", "exec cat");
    spec.stdin = true;
    spec.stdin_once = true;
    let id = node.rt.start_container(&pod.id, &spec).await.unwrap();
    let watcher = node
        .rt
        .attach(&id, &attach_spec(false, false))
        .await
        .unwrap();
    drop(watcher);
    let mut session = node
        .rt
        .attach(&id, &attach_spec(true, false))
        .await
        .unwrap();
    let mut stdin = session.stdin.take().unwrap();
    stdin.write_all(b"once\n").await.unwrap();
    stdin.flush().await.unwrap();
    wait_for_log(&spec.log_path, "once").await;
    drop(stdin);
    drop(session);
    assert_eq!(exit_code(&wait_exit(&node.rt, &id).await), 0);

    // Without stdinOnce, stdin stays open across clients.
    let mut spec = container_spec(&node, "cat2", "exec cat");
    spec.stdin = true;
    let id = node.rt.start_container(&pod.id, &spec).await.unwrap();
    for word in ["one", "two"] {
        let mut session = node
            .rt
            .attach(&id, &attach_spec(true, false))
            .await
            .unwrap();
        let mut stdin = session.stdin.take().unwrap();
        stdin
            .write_all(format!("{word}\n").as_bytes())
            .await
            .unwrap();
        drop(stdin);
        wait_for_log(&spec.log_path, word).await;
    }
    assert!(matches!(
        status(&node.rt, &id).await.state,
        ContainerState::Running { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tty_container_is_attached_through_its_terminal() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-tty", "tty"))
        .await
        .unwrap();
    let mut spec = container_spec(&node, "term", "exec sh");
    spec.stdin = true;
    spec.tty = true;
    let id = node.rt.start_container(&pod.id, &spec).await.unwrap();
    let mut session = node.rt.attach(&id, &attach_spec(true, true)).await.unwrap();
    assert!(session.stderr.is_none(), "a terminal has one output");
    session
        .resize
        .clone()
        .expect("tty resize")
        .send((120, 40))
        .await
        .unwrap();
    let mut stdin = session.stdin.take().unwrap();
    // The resize and the input travel separately: wait until the size arrived.
    stdin
        .write_all(
            b"while [ \"$(stty size)\" != \"40 120\" ]; do sleep 0.01; done; echo size-ok; \
              [ -t 0 ] && [ -t 2 ] && echo tty-ok; echo \"name=$(tty)\"; exit 3\n",
        )
        .await
        .unwrap();
    let out = read_all(session.stdout.take()).await;
    assert!(out.contains("size-ok\r\n"), "{out:?}");
    assert!(out.contains("tty-ok\r\n"), "{out:?}");
    // The terminal comes from the container's own devpts, so it has a name there.
    assert!(out.contains("name=/dev/pts/0\r\n"), "{out:?}");
    assert_eq!(session.exit.await.unwrap(), 3);
    // The terminal's output is the log's stdout.
    let log = std::fs::read_to_string(&spec.log_path).unwrap();
    assert!(log.contains(" stdout F tty-ok\r"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tty_belongs_to_the_containers_user() {
    let Some(node) = node() else { return };
    let pod = node
        .rt
        .create_sandbox(&sandbox_spec("pod-tty-user", "tty-user"))
        .await
        .unwrap();
    let mut spec = container_spec(
        &node,
        "term",
        "echo owner=$(stat -c %u:%g $(tty)); echo again > $(tty) && echo reopened",
    );
    spec.tty = true;
    spec.user = Some("1000:1000".into());
    let (state, lines) = run_to_end(&node, &pod, &spec).await;
    assert_eq!(exit_code(&state), 0, "{lines:?}");
    let lines: Vec<&str> = lines.iter().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines.contains(&"owner=1000:1000"), "{lines:?}");
    assert!(lines.contains(&"reopened"), "{lines:?}");
}
