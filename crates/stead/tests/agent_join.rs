//! End to end with two nodes on one machine: `stead server --node-name node-a` (sandbox
//! runtime, needs root) and `stead agent --node-name node-b` joining it over loopback with the
//! server's `agent-token`, each with its own data dir (images imported with
//! `stead image import --data-dir`). Checks, through the real `kubectl` against the server:
//!
//! - both nodes are Ready with different pod ranges from node IPAM (`spec.podCIDR`);
//! - a pod pinned to each node runs there with an address from that node's range;
//! - the two pods reach each other across the nodes (`ping` between their addresses);
//! - `kubectl logs`, `kubectl exec` and `kubectl port-forward` reach pods on node-b through
//!   the server;
//! - the agent refuses a missing token file, a token for another CA and a wrong secret with
//!   exit code 2, one line on stderr, and no data dir written.
//!
//! At the end it deletes the pods, waits until they are gone, stops both processes and checks
//! that no sandbox and no mount is left behind under either data dir.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{PATIENCE, eventually, stop, sweep};

fn stead() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stead"))
}

/// A server (node-a) and, once joined, an agent (node-b), each on its own data dir.
struct TwoNodes {
    server: Option<Child>,
    agent: Option<Child>,
    kubeconfig: PathBuf,
    url: String,
    dir: tempfile::TempDir,
}

impl TwoNodes {
    fn server_data(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    fn agent_data(&self) -> PathBuf {
        self.dir.path().join("agent")
    }

    fn kubectl(&self, args: &[&str]) -> (i32, String, String) {
        let o = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.kubectl(args);
        assert_eq!(code, 0, "kubectl {args:?} failed:\n{out}{err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// `stead agent` with these arguments after `--server URL`, waiting for it to exit.
    fn agent_once(&self, args: &[&str]) -> std::process::Output {
        stead()
            .args(["agent", "--server", &self.url])
            .args(args)
            .output()
            .expect("run stead agent")
    }

    /// Deletes every pod, waits until they are gone, stops agent and server, and sweeps both
    /// data dirs. Returns the sandboxes that were still there.
    fn teardown(&mut self) -> usize {
        if self.server.is_some() {
            let _ = self.kubectl(&["delete", "pods", "--all", "--wait=false"]);
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                let (code, out, _) = self.kubectl(&["get", "pods", "-A", "-o", "name"]);
                if code == 0 && out.trim().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        // The agent first: it is a client of the server.
        if let Some(mut agent) = self.agent.take() {
            stop(&mut agent);
        }
        if let Some(mut server) = self.server.take() {
            stop(&mut server);
        }
        sweep(&self.agent_data()).saturating_add(sweep(&self.server_data()))
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn import_images(data: &Path, images: &[stead_testimages::BuiltImage]) {
    for image in images {
        let out = stead()
            .args(["image", "import", "--data-dir"])
            .arg(data)
            .arg(&image.path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "import {}: {}",
            image.path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

/// Whether `ip` lies in the IPv4 network `cidr`.
fn in_range(ip: &str, cidr: &str) -> bool {
    let (net, prefix) = cidr.split_once('/').unwrap();
    let net = u32::from(net.parse::<std::net::Ipv4Addr>().unwrap());
    let ip = u32::from(ip.parse::<std::net::Ipv4Addr>().unwrap());
    let mask = u32::MAX << (32 - prefix.parse::<u32>().unwrap());
    ip & mask == net & mask
}

/// The nginx of the seed walkthroughs, pinned to `node`.
fn pinned_nginx(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeSelector:
    kubernetes.io/hostname: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: nginx
    image: registry.cn-hangzhou.aliyuncs.com/larswang/nginx:1.0
    ports:
    - containerPort: 80
"
    )
}

/// `GET /` on a loopback port; the status line and body.
fn http_get(port: u16) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn pinned_pod(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeSelector:
    kubernetes.io/hostname: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.28
    command: [sh, -c, 'echo hello from $(hostname); exec sleep 3600']
"
    )
}

#[test]
fn an_agent_joins_with_the_token_and_runs_pods_reached_through_the_server() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: the sandbox runtime needs root");
        return;
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stead-testimages");
    let images = stead_testimages::ensure_built(&cache).unwrap_or_else(|e| {
        panic!("build the test images (scripts/test installs the packages): {e}")
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    let (server_data, agent_data) = (dir.path().join("server"), dir.path().join("agent"));
    import_images(&server_data, &images);

    let (server, kubeconfig) =
        common::spawn_server(&server_data, &["--node-name", "node-a"], Stdio::inherit());
    let url = std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: ").map(str::to_string))
        .expect("server URL in the kubeconfig");
    let mut c = TwoNodes {
        server: Some(server),
        agent: None,
        kubeconfig,
        url,
        dir,
    };

    // Refusals: exit code 2, one line on stderr, nothing written to the data dir.
    let token_path = server_data.join("agent-token");
    let token = std::fs::read_to_string(&token_path).expect("the server writes agent-token");
    assert!(token.starts_with("K10"), "{token}");
    let (hash, _) = token.trim().split_once("::node:").unwrap();
    let bad_secret = c.dir.path().join("bad-secret");
    std::fs::write(&bad_secret, format!("{hash}::node:{}\n", "0".repeat(64))).unwrap();
    let other_ca = c.dir.path().join("other-ca");
    let (_, secret) = token.trim().split_once("::node:").unwrap();
    std::fs::write(&other_ca, format!("K10{}::node:{secret}\n", "a".repeat(64))).unwrap();
    let refused = c.dir.path().join("refused");
    for (file, says) in [
        (bad_secret.as_path(), "rejected the join token"),
        (other_ca.as_path(), "does not match the join token"),
        (c.dir.path().join("missing").as_path(), "--token-file"),
    ] {
        let o = c.agent_once(&[
            "--token-file",
            file.to_str().unwrap(),
            "--data-dir",
            refused.to_str().unwrap(),
            "--node-name",
            "node-x",
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{file:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{file:?}: {stderr}");
        assert!(stderr.contains(says), "{file:?}: {stderr}");
        assert!(o.stdout.is_empty(), "{file:?}");
        assert!(!refused.exists(), "{file:?}: the data dir was written");
    }

    import_images(&agent_data, &images);
    let mut agent = stead()
        .args(["agent", "--server", &c.url, "--node-name", "node-b"])
        .arg("--token-file")
        .arg(&token_path)
        .arg("--data-dir")
        .arg(&agent_data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn stead agent");
    let mut agent_stdout = agent.stdout.take().unwrap();
    c.agent = Some(agent);

    let ranges = eventually("node-a and node-b Ready with pod ranges", || {
        let nodes = c.json(&["get", "nodes"]);
        let items = nodes["items"].as_array()?;
        let range = |name: &str| {
            let n = items.iter().find(|n| n["metadata"]["name"] == name)?;
            (condition(n, "Ready") == Some("True")).then_some(())?;
            n["spec"]["podCIDR"].as_str().map(str::to_string)
        };
        Some((range("node-a")?, range("node-b")?))
    });
    assert_ne!(ranges.0, ranges.1, "the nodes share a pod range");
    let table = c.ok(&["get", "nodes"]);
    assert_eq!(
        table.lines().filter(|l| l.contains(" Ready ")).count(),
        2,
        "{table}"
    );

    let manifests = [
        pinned_pod("on-a", "node-a"),
        pinned_pod("on-b", "node-b"),
        pinned_nginx("web-b", "node-b"),
    ];
    for manifest in manifests {
        let o = Command::new("kubectl")
            .args(["apply", "-f", "-"])
            .env("KUBECONFIG", &c.kubeconfig)
            .env("HOME", c.dir.path().join("home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut k| {
                k.stdin.take().unwrap().write_all(manifest.as_bytes())?;
                k.wait_with_output()
            })
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/on-a",
        "pod/on-b",
        "pod/web-b",
        "--timeout=240s",
    ]);
    for (pod, node, range) in [("on-a", "node-a", &ranges.0), ("on-b", "node-b", &ranges.1)] {
        let p = c.json(&["get", "pod", pod]);
        assert_eq!(p["spec"]["nodeName"], node);
        let ip = p["status"]["podIP"].as_str().expect("a pod IP");
        assert!(in_range(ip, range), "{pod}: {ip} not in {range}");
    }

    // Pods on the two nodes reach each other: node namespaces joined by a veth pair, each
    // routing the other's pod range (stead_agent::peering).
    let ip_of = |pod: &str| {
        c.json(&["get", "pod", pod])["status"]["podIP"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ip_a, ip_b) = (ip_of("on-a"), ip_of("on-b"));
    for (from, to) in [("on-a", &ip_b), ("on-b", &ip_a)] {
        eventually(&format!("{from} to reach {to}"), || {
            let (code, _, _) = c.kubectl(&["exec", from, "--", "ping", "-c1", "-W2", to]);
            (code == 0).then_some(())
        });
    }

    // Logs and exec reach node-b's node API through the server.
    eventually("the log line of on-b", || {
        (c.ok(&["logs", "on-b"]) == "hello from on-b\n").then_some(())
    });
    assert_eq!(c.ok(&["exec", "on-b", "--", "hostname"]).trim(), "on-b");
    let (code, _, err) = c.kubectl(&["exec", "on-b", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");

    // Port-forward reaches nginx on node-b through the server.
    let mut forward = Command::new("kubectl")
        .args(["port-forward", "pod/web-b", ":80"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path().join("home"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(forward.stdout.take().unwrap()).lines();
    // "Forwarding from 127.0.0.1:43121 -> 80"
    let first = lines.next().expect("port-forward output").unwrap();
    let local: u16 = first
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("port-forward said {first:?}"));
    std::thread::spawn(move || lines.for_each(drop));
    let (status, body) = http_get(local);
    let _ = forward.kill();
    let _ = forward.wait();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}\n{body}");

    let leftover = c.teardown();
    assert_eq!(
        leftover, 0,
        "sandboxes left behind after their pods were gone"
    );
    let mut printed = String::new();
    let _ = agent_stdout.read_to_string(&mut printed);
    assert_eq!(printed, "", "the agent prints nothing on stdout");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = c.dir.path().to_str().unwrap().to_string();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
    assert!(left.is_empty(), "mounts left behind: {left:#?}");
}
