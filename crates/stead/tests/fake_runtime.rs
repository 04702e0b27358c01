//! End to end: `stead server --runtime fake` with the real kubectl 1.33 and the Python client.
//! The fake node registers itself, binds the StatefulSet's pods, reports them Running and Ready
//! with addresses, confirms their deletion (so deleted pods come back and scale-down proceeds in
//! order), and the garbage collector removes the pods with their set. Also: `--disable-agent`
//! starts silently and registers no node. (The default sandbox runtime is exercised by
//! `sandbox_walkthrough.rs`.)

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{PATIENCE, eventually};

const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";
const WEB_YAML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/e2e/manifests/web.yaml"
);
const NODE: &str = "stead-e2e-node";

struct Server {
    child: Child,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server; its stderr is captured only when `capture_stderr` (nobody reads it until the
/// server stops, so a chatty server could fill the pipe).
fn start(extra: &[&str], capture_stderr: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let stderr = if capture_stderr {
        Stdio::piped()
    } else {
        Stdio::inherit()
    };
    let (child, kubeconfig) = common::spawn_server(&dir.path().join("data"), extra, stderr);
    Server {
        child,
        kubeconfig,
        dir,
    }
}

impl Server {
    fn kubectl(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KUBECTL);
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path());
        c
    }

    /// Runs kubectl and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args).output().expect("run kubectl");
        assert!(
            o.status.success(),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Stops the server and returns everything it wrote on stderr.
    fn stop_and_stderr(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

/// The walkthrough manifest without `minReadySeconds` (it would make OrderedReady take 20 s).
fn web_manifest(dir: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(WEB_YAML).unwrap();
    assert!(text.contains("minReadySeconds: 10"));
    let path = dir.join("web.yaml");
    std::fs::write(
        &path,
        text.replace("minReadySeconds: 10", "minReadySeconds: 0"),
    )
    .unwrap();
    path
}

fn uid(pod: &serde_json::Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap().to_string()
}

#[test]
fn the_fake_node_runs_the_web_statefulset_through_its_lifecycle() {
    let server = start(&["--runtime", "fake", "--node-name", NODE], false);
    let manifest = web_manifest(server.dir.path());
    let manifest = manifest.to_str().unwrap();
    server.ok(&["apply", "-f", manifest]);
    server.ok(&[
        "wait",
        "--for=jsonpath={.status.readyReplicas}=3",
        "sts/web",
        "--timeout=60s",
    ]);

    // Running 1/1 with an address from the pod range, on the fake node.
    let wide = server.ok(&["get", "pods", "-o", "wide"]);
    let mut ips = Vec::new();
    for ordinal in 0..3 {
        let name = format!("web-{ordinal}");
        let line = wide
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} listed:\n{wide}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cols[1..4], ["1/1", "Running", "0"], "{line}");
        assert!(cols[5].starts_with("10.42."), "{line}");
        assert_eq!(cols[6], NODE, "{line}");
        ips.push(cols[5].to_string());
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "pod addresses are unique: {wide}");

    let pod = server.json(&["get", "pod", "web-0"]);
    let status = &pod["status"];
    assert_eq!(status["hostIP"], "127.0.0.1");
    assert_eq!(status["podIPs"][0]["ip"], status["podIP"]);
    let c = &status["containerStatuses"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["imageID"], "fake://registry.k8s.io/nginx-slim:0.24");
    assert_eq!(c["containerID"], format!("fake://{}-nginx", uid(&pod)));
    assert!(c["state"]["running"]["startedAt"].is_string(), "{c}");
    let conditions: Vec<(&str, &str)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    for t in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodScheduled",
    ] {
        assert!(conditions.contains(&(t, "True")), "{t}: {conditions:?}");
    }

    // The node is Ready, and the Python client reads it and the pods.
    let nodes = server.ok(&["get", "nodes"]);
    let node_line = nodes
        .lines()
        .find(|l| l.starts_with(NODE))
        .unwrap_or_else(|| panic!("node listed:\n{nodes}"));
    let cols: Vec<&str> = node_line.split_whitespace().collect();
    assert_eq!(cols[1], "Ready", "{node_line}");
    assert_eq!(cols.last(), Some(&"v1.33.0"), "{node_line}");
    python_reads_node_and_pods(&server);
    let lease = server.json(&["get", "lease", "-n", "kube-node-lease", NODE]);
    assert_eq!(lease["spec"]["holderIdentity"], NODE);

    // The node reports ephemeral storage, so a pod that requests some is scheduled.
    let node = server.json(&["get", "node", NODE]);
    assert!(
        node["status"]["allocatable"]["ephemeral-storage"].is_string(),
        "{}",
        node["status"]
    );
    server.ok(&[
        "run",
        "eph",
        "--image=busybox:1.28",
        "--restart=Never",
        r#"--overrides={"spec":{"containers":[{"name":"eph","image":"busybox:1.28","resources":{"requests":{"ephemeral-storage":"1Gi"}}}]}}"#,
    ]);
    server.ok(&["wait", "--for=condition=Ready", "pod/eph", "--timeout=60s"]);
    server.ok(&["delete", "pod", "eph", "--timeout=30s"]);

    // A deleted pod is confirmed gone by the node and recreated by the controller.
    let old = uid(&server.json(&["get", "pod", "web-1"]));
    server.ok(&["delete", "pod", "web-1", "--timeout=30s"]);
    eventually("web-1 recreated and Ready", || {
        let o = server
            .kubectl(&["get", "pod", "web-1", "-o", "json"])
            .output();
        let p = serde_json::from_slice::<serde_json::Value>(&o.ok()?.stdout).ok()?;
        (uid(&p) != old && p["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    });

    // Scale down to 1: web-2 goes first, then web-1.
    let mut watch = server
        .kubectl(&["get", "pods", "--watch-only", "--output-watch-events"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500)); // let the watch open
    server.ok(&["scale", "sts", "web", "--replicas=1"]);
    let mut deleted = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while deleted.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("pod deletions seen by the watch: {deleted:?}"));
        // `EVENT NAME READY STATUS ...` rows.
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&"DELETED") && cols.len() > 1 {
            deleted.push(cols[1].to_string());
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(deleted, ["web-2", "web-1"]);
    let names = server.ok(&["get", "pods", "-o", "name"]);
    assert_eq!(names.trim(), "pod/web-0");

    // Deleting the set removes its pod (garbage collector), confirmed by the node.
    server.ok(&["delete", "-f", manifest]);
    eventually("pods gone", || {
        server
            .ok(&["get", "pods", "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });
}

fn python_reads_node_and_pods(server: &Server) {
    let script = format!(
        r#"
from kubernetes import client, config
config.load_kube_config()
v1 = client.CoreV1Api()
node = v1.read_node("{NODE}")
ready = [c.status for c in node.status.conditions if c.type == "Ready"]
print("node", node.metadata.name, ready[0], node.status.node_info.kubelet_version)
for p in v1.list_namespaced_pod("default").items:
    c = p.status.container_statuses[0]
    print("pod", p.metadata.name, p.status.phase, p.spec.node_name, c.ready, c.restart_count)
"#
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .env("KUBECONFIG", &server.kubeconfig)
        .env("HOME", server.dir.path())
        .output()
        .expect("python3 is not runnable; install Python 3 and `pip install kubernetes`");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "python client failed (needs `pip install kubernetes`):\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("node {NODE} True v1.33.0"),
            format!("pod web-0 Running {NODE} True 0"),
            format!("pod web-1 Running {NODE} True 0"),
            format!("pod web-2 Running {NODE} True 0"),
        ]
    );
}

#[test]
fn a_disabled_agent_is_silent_and_registers_no_node() {
    let server = start(&["--disable-agent", "--runtime", "fake"], true);
    assert_eq!(server.ok(&["get", "nodes", "-o", "name"]).trim(), "");
    assert_eq!(server.stop_and_stderr(), "");
}

#[test]
fn with_store_etcd_the_cluster_state_lives_in_etcd() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let (etcd, _) = tokio.block_on(stead_storage::conformance::EtcdProcess::start());
    let store = ["--store", etcd.url.as_str()];
    let fake = ["--runtime", "fake", "--node-name", NODE];
    let first = start(&[&store[..], &fake[..]].concat(), false);
    let manifest = web_manifest(first.dir.path());
    first.ok(&["create", "namespace", "kept"]);
    first.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    first.ok(&[
        "wait",
        "--for=jsonpath={.status.readyReplicas}=3",
        "sts/web",
        "--timeout=60s",
    ]);
    let pods = |s: &Server| {
        let list = s.json(&["get", "pods"]);
        let mut uids: Vec<String> = list["items"].as_array().unwrap().iter().map(uid).collect();
        uids.sort();
        uids
    };
    let before = pods(&first);
    assert_eq!(before.len(), 3);
    drop(first);

    // A server with a new, empty data dir on the same etcd sees the same cluster and goes on
    // running it: the namespace, the set and the very same pods (uids), and it scales.
    let second = start(&[&store[..], &fake[..]].concat(), false);
    second.ok(&["get", "namespace", "kept"]);
    assert_eq!(pods(&second), before);
    second.ok(&["scale", "sts", "web", "--replicas=4"]);
    second.ok(&[
        "wait",
        "--for=jsonpath={.status.readyReplicas}=4",
        "sts/web",
        "--timeout=60s",
    ]);
    drop(second);
    drop(etcd);

    // An etcd that does not answer: one line, exit code 2, nothing served.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "etcd://127.0.0.1:9",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--store etcd://127.0.0.1:9"), "{err}");
    assert!(out.stdout.is_empty());
}
