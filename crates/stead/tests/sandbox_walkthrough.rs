//! End to end with pods that really run: `stead server` (sandbox runtime, needs root) on
//! loopback, the test images from `stead-testimages` imported with `stead image import`, and the
//! real `kubectl` driving the seed walkthroughs as a user would:
//!
//! - seed 002 (`web-seed002.yaml`, nginx): ordered start, `hostname` per pod, per-pod content that
//!   survives `kubectl delete pod`, ordered scale up and reverse scale down with the claims kept,
//!   and a deleted claim whose volume and directory go away;
//! - seed 003 (`web.yaml`): `minReadySeconds` holds each next pod back until the one before has
//!   been Ready that long; claims from the StorageClass "my-storage-class";
//! - seed 001 (`redis-pv-sts.yaml`): a value written with `redis-cli` survives deleting the pod;
//!   pods find each other by their stable DNS names;
//! - `kubectl logs` (`--tail`, `-f`, `--previous`), `kubectl exec` (exit codes, stdin) and
//!   `kubectl cp`;
//! - liveness and readiness probes.
//!
//! Each test has its own server and data dir. At the end it deletes everything, waits until
//! the pods are gone, stops the server and checks that no sandbox and no mount is left behind.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{PATIENCE, eventually, stop, sweep};

const MANIFESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/manifests");

fn manifest(name: &str) -> String {
    format!("{MANIFESTS}/{name}")
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A `stead server` with the sandbox runtime on its own data dir.
struct Cluster {
    server: Option<Child>,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Builds (or reuses) the test images, imports them, starts the server and waits for its
    /// node to be Ready. `None`, with the reason printed, when not root.
    fn start() -> Option<Cluster> {
        if !is_root() {
            eprintln!("skipping: the sandbox runtime needs root");
            return None;
        }
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stead-testimages");
        let images = stead_testimages::ensure_built(&cache).unwrap_or_else(|e| {
            panic!("build the test images (scripts/test installs the packages): {e}")
        });
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        for image in &images {
            let out = Command::new(env!("CARGO_BIN_EXE_stead"))
                .args(["image", "import", "--data-dir"])
                .arg(&data)
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
        let (child, kubeconfig) = common::spawn_server(&data, &[], Stdio::inherit());
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let cluster = Cluster {
            server: Some(child),
            kubeconfig,
            dir,
        };
        eventually("the node to be Ready", || {
            let nodes = cluster.json(&["get", "nodes"]);
            nodes["items"]
                .as_array()?
                .iter()
                .any(|n| condition(n, "Ready") == Some("True"))
                .then_some(())
        });
        Some(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path().join("home"));
        c
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        // Written beside the reading: kubectl may need its output read before it takes more.
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || input.write_all(&stdin));
        let o = child.wait_with_output().unwrap();
        let _ = writer.join();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs kubectl with a terminal (`script` from util-linux), typing `input`; returns what the
    /// terminal showed (lines end in `\r\n`).
    fn run_with_terminal(&self, args: &[&str], input: &str) -> String {
        let line = std::iter::once("kubectl")
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = script.spawn().expect("run script (util-linux)");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.as_bytes().to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let o = child.wait_with_output().unwrap();
        let _ = writer.join();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "kubectl {args:?} failed:\n{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// Starts `kubectl port-forward TARGET :PORT` and waits for the local port it chose.
    fn port_forward(&self, target: &str, port: u16) -> (Child, u16) {
        let mut child = self
            .command(&["port-forward", target, &format!(":{port}")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // "Forwarding from 127.0.0.1:43121 -> 80"
        let first = lines.next().expect("port-forward output").unwrap();
        let local = first
            .strip_prefix("Forwarding from 127.0.0.1:")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("port-forward said {first:?}"));
        // Keep draining what it prints so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        (child, local)
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, b"")
    }

    /// Runs kubectl and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.code, 0,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            o.stdout, o.stderr
        );
        o.stdout
    }

    fn apply_stdin(&self, yaml: &str) -> String {
        let o = self.run_with_stdin(&["apply", "-f", "-"], yaml.as_bytes());
        assert_eq!(o.code, 0, "apply failed: {}{}", o.stdout, o.stderr);
        o.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    fn pod(&self, name: &str) -> Option<Value> {
        let o = self.run(&["get", "pod", name, "-o", "json"]);
        (o.code == 0).then(|| serde_json::from_str(&o.stdout).unwrap())
    }

    /// `kubectl exec POD -- ARGS...`, requiring success; returns stdout.
    fn exec(&self, pod: &str, command: &[&str]) -> String {
        let mut args = vec!["exec", pod, "--"];
        args.extend(command);
        self.ok(&args)
    }

    /// `kubectl exec POD -- ARGS...` retried until it succeeds (a server that has just started
    /// may not listen yet; a name may take a moment to resolve); returns stdout.
    fn exec_eventually(&self, pod: &str, command: &[&str]) -> String {
        let mut args = vec!["exec", pod, "--"];
        args.extend(command);
        eventually(&format!("{args:?} to succeed"), || {
            let o = self.run(&args);
            (o.code == 0).then_some(o.stdout)
        })
    }

    /// Waits for the pod named `name` to be Ready, with a uid other than `not_uid`; returns it.
    fn ready_pod(&self, name: &str, not_uid: Option<&str>) -> Value {
        eventually(&format!("{name} Ready"), || {
            let pod = self.pod(name)?;
            let fresh = pod["metadata"]["uid"].as_str() != not_uid;
            let ready = condition(&pod, "Ready") == Some("True");
            (fresh && ready && pod["metadata"]["deletionTimestamp"].is_null()).then_some(pod)
        })
    }

    fn rollout(&self, set: &str) {
        self.ok(&["rollout", "status", &format!("sts/{set}"), "--timeout=240s"]);
    }

    /// Starts `kubectl get pods -w --output-watch-events -o json` on `selector`.
    fn watch_pods(&self, selector: &str) -> PodWatch {
        let mut child = self
            .command(&[
                "get",
                "pods",
                "-l",
                selector,
                "-w",
                "--output-watch-events",
                "-o",
                "json",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for event in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>() {
                let Ok(event) = event else { return };
                sink.lock().unwrap().push(event);
            }
        });
        PodWatch { child, events }
    }

    /// Deletes the StatefulSets and pods, waits until every pod is gone (so no sandbox stays
    /// behind), stops the server and removes what the node keeps outside the data dir's files
    /// (its network namespace mount and cgroups). Returns the sandboxes that were still there.
    fn teardown(&mut self) -> usize {
        let Some(mut server) = self.server.take() else {
            return 0;
        };
        let _ = self.run(&["delete", "statefulsets,pods", "--all", "--wait=false"]);
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline && server.try_wait().ok().flatten().is_none() {
            let o = self.run(&["get", "pods", "-A", "-o", "name"]);
            if o.code == 0 && o.stdout.trim().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        stop(&mut server);
        sweep(&self.data_dir())
    }

    /// Tears down and requires that nothing was left: no sandbox and no mount under the data
    /// dir.
    fn finish(mut self) {
        let leftover = self.teardown();
        assert_eq!(
            leftover, 0,
            "sandboxes left behind after their pods were gone"
        );
        let data = self.data_dir();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let left: Vec<&str> = mounts
            .lines()
            .filter(|l| l.contains(data.to_str().unwrap()))
            .collect();
        assert!(left.is_empty(), "mounts left behind: {left:#?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The status of condition `kind` of an object.
fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap().to_string()
}

/// The events of a `kubectl get pods -w --output-watch-events -o json`, in arrival order.
struct PodWatch {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
}

impl PodWatch {
    /// The index of the first event matching `f`, waiting for it.
    fn first(&self, what: &str, f: impl Fn(&str, &Value) -> bool) -> usize {
        eventually(&format!("watch event: {what}"), || {
            let events = self.events.lock().unwrap();
            events
                .iter()
                .position(|e| f(e["type"].as_str().unwrap_or(""), &e["object"]))
        })
    }

    /// The first event in which the pod with `uid` is Ready.
    fn ready(&self, uid: &str) -> usize {
        self.first(&format!("{uid} Ready"), |_, pod| {
            pod["metadata"]["uid"] == uid && condition(pod, "Ready") == Some("True")
        })
    }

    /// The first event that shows the pod with `uid`.
    fn seen(&self, uid: &str) -> usize {
        self.first(&format!("{uid} seen"), |_, pod| {
            pod["metadata"]["uid"] == uid
        })
    }

    /// The first event that shows the pod with `uid` terminating.
    fn terminating(&self, uid: &str) -> usize {
        self.first(&format!("{uid} terminating"), |_, pod| {
            pod["metadata"]["uid"] == uid && !pod["metadata"]["deletionTimestamp"].is_null()
        })
    }

    /// The DELETED event of the pod with `uid`.
    fn deleted(&self, uid: &str) -> usize {
        self.first(&format!("{uid} deleted"), |kind, pod| {
            kind == "DELETED" && pod["metadata"]["uid"] == uid
        })
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn seed_002_nginx_identity_content_scaling_and_claims() {
    let Some(c) = Cluster::start() else { return };
    let watch = c.watch_pods("app=nginx");
    let applied = c.ok(&["apply", "-f", &manifest("web-seed002.yaml")]);
    assert!(
        applied.contains("service/nginx created")
            && applied.contains("statefulset.apps/web created"),
        "{applied}"
    );
    c.rollout("web");

    // Ordered start: web-1 appears only once web-0 is Ready.
    let web0 = c.ready_pod("web-0", None);
    let web1 = c.ready_pod("web-1", None);
    assert!(
        watch.seen(&uid(&web1)) > watch.ready(&uid(&web0)),
        "web-1 was created before web-0 was Ready"
    );
    assert!(
        web1["metadata"]["creationTimestamp"].as_str() >= condition_time(&web0, "Ready").as_deref(),
        "web-1 created before web-0 became Ready"
    );

    for pod in ["web-0", "web-1"] {
        assert_eq!(c.exec(pod, &["hostname"]).trim(), pod);
        c.exec(
            pod,
            &[
                "sh",
                "-c",
                "echo $(hostname) > /usr/share/nginx/html/index.html",
            ],
        );
    }
    for pod in ["web-0", "web-1"] {
        assert_eq!(
            c.exec_eventually(pod, &["wget", "-qO-", "http://localhost/"]),
            format!("{pod}\n")
        );
    }
    // Pods find each other through the headless Service (the search list of resolv.conf).
    assert_eq!(
        c.exec_eventually("web-0", &["wget", "-qO-", "http://web-1.nginx/"]),
        "web-1\n"
    );

    // The seed's DNS check, as typed: a throw-away busybox pod with a terminal resolves each
    // pod's stable name to that pod's address.
    let typed = c.run_with_terminal(
        &[
            "run",
            "-i",
            "--tty",
            "--image",
            "busybox:1.28",
            "dns-test",
            "--restart=Never",
            "--rm",
        ],
        "nslookup web-0.nginx; nslookup web-1.nginx; exit\n",
    );
    for (name, pod) in [("web-0.nginx", &web0), ("web-1.nginx", &web1)] {
        let ip = pod["status"]["podIP"].as_str().unwrap();
        let answer = format!("Name:      {name}\r\nAddress 1: {ip}\r\n");
        assert!(typed.contains(&answer), "no {answer:?} in:\n{typed}");
    }
    eventually("dns-test removed (--rm)", || {
        c.pod("dns-test").is_none().then_some(())
    });

    // `kubectl port-forward` to a pod and to the Service: a local port serves the pod's page.
    let (mut forward, port) = c.port_forward("pod/web-0", 80);
    assert_eq!(http_get(port), "web-0\n");
    let _ = forward.kill();
    let _ = forward.wait();
    let (mut forward, port) = c.port_forward("svc/nginx", 80);
    let body = http_get(port);
    assert!(body == "web-0\n" || body == "web-1\n", "{body:?}");
    let _ = forward.kill();
    let _ = forward.wait();

    // `--wait=false`: the node confirms a deletion within milliseconds and the controller
    // recreates the pod under the same name at once; kubectl's own wait can miss that
    // (see README, known gaps). The test waits for the new pods itself.
    let deleted = c.ok(&["delete", "pod", "-l", "app=nginx", "--wait=false"]);
    assert!(
        deleted.contains("pod \"web-0\" deleted") && deleted.contains("pod \"web-1\" deleted"),
        "{deleted}"
    );
    let new0 = c.ready_pod("web-0", Some(&uid(&web0)));
    let new1 = c.ready_pod("web-1", Some(&uid(&web1)));
    assert!(
        watch.seen(&uid(&new1)) > watch.ready(&uid(&new0)),
        "the new web-1 was created before the new web-0 was Ready"
    );
    c.rollout("web");
    for pod in ["web-0", "web-1"] {
        assert_eq!(c.exec(pod, &["hostname"]).trim(), pod);
        // The content it wrote before it was deleted. Eventually: one run saw a single empty
        // answer from a just-started nginx (not understood yet; see the issue note); lost data
        // would never come back and fails here.
        let want = format!("{pod}\n");
        eventually(&format!("{pod} to serve the content it wrote"), || {
            let o = c.run(&["exec", pod, "--", "wget", "-qO-", "http://localhost/"]);
            (o.code == 0 && o.stdout == want).then_some(())
        });
    }

    // nginx logs its requests to the container's output.
    eventually("web-0's access log", || {
        let logs = c.ok(&["logs", "web-0"]);
        logs.contains("\"GET / HTTP/1.1\" 200").then_some(())
    });
    eventually("logs of every nginx pod", || {
        let logs = c.ok(&["logs", "-l", "app=nginx", "--prefix"]);
        let from = |pod: &str| {
            logs.lines()
                .any(|l| l.starts_with(&format!("[pod/{pod}/nginx] ")))
        };
        (from("web-0") && from("web-1")).then_some(())
    });

    // Scale up: web-2, web-3, web-4, each after the one before is Ready.
    assert!(
        c.ok(&["scale", "sts", "web", "--replicas=5"])
            .contains("statefulset.apps/web scaled")
    );
    c.rollout("web");
    let mut previous = new1;
    let mut added = Vec::new();
    for n in 2..5 {
        let pod = c.ready_pod(&format!("web-{n}"), None);
        assert!(
            watch.seen(&uid(&pod)) > watch.ready(&uid(&previous)),
            "web-{n} was created before web-{} was Ready",
            n - 1
        );
        previous = pod.clone();
        added.push(pod);
    }

    // Scale down: web-4, web-3, web-2, each only once the one after it is gone.
    c.ok(&["scale", "sts", "web", "--replicas=2"]);
    eventually("two nginx pods", || {
        let pods = c.json(&["get", "pods", "-l", "app=nginx"]);
        let mut names: Vec<&str> = pods["items"]
            .as_array()?
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        names.sort();
        (names == ["web-0", "web-1"]).then_some(())
    });
    let [web2, web3, web4] = [&added[0], &added[1], &added[2]].map(uid);
    assert!(watch.terminating(&web3) > watch.deleted(&web4));
    assert!(watch.terminating(&web2) > watch.deleted(&web3));
    assert!(watch.deleted(&web3) > watch.deleted(&web4));
    assert!(watch.deleted(&web2) > watch.deleted(&web3));
    drop(watch);

    // The claims of all five ordinals stay, Bound, labelled like their pods.
    let claims = eventually("five Bound claims", || {
        let claims = c.json(&["get", "pvc", "-l", "app=nginx"]);
        let items = claims["items"].as_array()?.clone();
        let mut names: Vec<String> = items
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        let expected: Vec<String> = (0..5).map(|n| format!("www-web-{n}")).collect();
        let bound = items.iter().all(|p| p["status"]["phase"] == "Bound");
        (names == expected && bound).then_some(items)
    });
    let www0 = claims
        .iter()
        .find(|p| p["metadata"]["name"] == "www-web-0")
        .unwrap();
    let pv_name = www0["spec"]["volumeName"].as_str().unwrap().to_string();
    let pv = c.json(&["get", "pv", &pv_name]);
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    let dir = PathBuf::from(pv["spec"]["hostPath"]["path"].as_str().unwrap());
    assert!(dir.starts_with(c.data_dir()), "{}", dir.display());
    assert_eq!(
        std::fs::read_to_string(dir.join("index.html")).unwrap(),
        "web-0\n",
        "web-0's content lives in its volume's directory"
    );

    let out = c.ok(&["delete", "statefulset", "web"]);
    assert!(out.contains("statefulset.apps \"web\" deleted"), "{out}");
    eventually("the nginx pods gone", || {
        let pods = c.json(&["get", "pods", "-l", "app=nginx"]);
        pods["items"].as_array()?.is_empty().then_some(())
    });
    let out = c.ok(&["delete", "service", "nginx"]);
    assert!(out.contains("service \"nginx\" deleted"), "{out}");
    let out = c.ok(&["delete", "pvc", "www-web-0"]);
    assert!(
        out.contains("persistentvolumeclaim \"www-web-0\" deleted"),
        "{out}"
    );
    eventually("the released volume deleted", || {
        let o = c.run(&["get", "pv", &pv_name]);
        (o.code != 0 && o.stderr.contains("NotFound")).then_some(())
    });
    eventually("the volume's directory removed", || {
        (!dir.exists()).then_some(())
    });
    let left = c.json(&["get", "pvc"]);
    assert_eq!(left["items"].as_array().unwrap().len(), 4);
    c.finish();
}

/// The body of `GET /` from 127.0.0.1:`port`.
fn http_get(port: u16) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    body.to_string()
}

/// When condition `kind` of an object last changed.
fn condition_time(object: &Value, kind: &str) -> Option<String> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["lastTransitionTime"]
        .as_str()
        .map(String::from)
}

const NFS_CLIENT_CLASS: &str = "\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: nfs-client
provisioner: stead.io/local-path
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
";

/// `redis-cli ARGS...` in `pod`, retried while the server is not accepting connections yet.
fn redis_cli(c: &Cluster, pod: &str, args: &[&str]) -> String {
    let mut argv = vec!["exec", pod, "--", "redis-cli"];
    argv.extend(args);
    eventually(&format!("redis in {pod} answering"), || {
        let o = c.run(&argv);
        let refused = o.stdout.contains("Could not connect")
            || o.stdout.contains("Connection refused")
            || o.stdout.starts_with("LOADING");
        if o.code == 0 && !refused {
            Some(o.stdout)
        } else {
            None
        }
    })
}

/// Resolves `name` from inside `pod` with `ping -c1` (getaddrinfo, with the search list) until
/// it names `ip`; returns the output.
fn ping_resolves(c: &Cluster, pod: &str, name: &str, ip: &str) -> String {
    eventually(&format!("{name} resolving to {ip} in {pod}"), || {
        let o = c.run(&["exec", pod, "--", "ping", "-c1", name]);
        (o.code == 0 && o.stdout.contains(&format!("({ip})"))).then_some(o.stdout)
    })
}

#[test]
fn seed_001_redis_value_survives_pod_deletion_and_pods_resolve_each_other() {
    let Some(c) = Cluster::start() else { return };
    let out = c.apply_stdin(NFS_CLIENT_CLASS);
    assert!(
        out.contains("storageclass.storage.k8s.io/nfs-client created"),
        "{out}"
    );
    let out = c.ok(&["apply", "-f", &manifest("redis-pv-sts.yaml")]);
    assert!(
        out.contains("statefulset.apps/redis-pv-sts created")
            && out.contains("service/redis-pv-sts-svc created"),
        "{out}"
    );
    c.rollout("redis-pv-sts");
    for n in 0..2 {
        let claim = c.json(&["get", "pvc", &format!("redis-100m-pvc-redis-pv-sts-{n}")]);
        assert_eq!(claim["status"]["phase"], "Bound");
        assert_eq!(claim["spec"]["storageClassName"], "nfs-client");
        let pv = c.json(&["get", "pv", claim["spec"]["volumeName"].as_str().unwrap()]);
        assert_eq!(pv["spec"]["storageClassName"], "nfs-client");
        assert_eq!(pv["spec"]["accessModes"][0], "ReadWriteMany");
    }

    let pod0 = c.ready_pod("redis-pv-sts-0", None);
    let pod1 = c.ready_pod("redis-pv-sts-1", None);
    assert_eq!(
        c.exec("redis-pv-sts-0", &["hostname"]).trim(),
        "redis-pv-sts-0"
    );
    assert_eq!(
        redis_cli(&c, "redis-pv-sts-0", &["set", "name", "stead"]),
        "OK\n"
    );

    // Stable DNS names: short (search list) and fully qualified.
    let ip1 = pod1["status"]["podIP"].as_str().unwrap();
    ping_resolves(&c, "redis-pv-sts-0", "redis-pv-sts-1.redis-pv-sts-svc", ip1);
    let fqdn1 = "redis-pv-sts-1.redis-pv-sts-svc.default.svc.cluster.local";
    let looked_up = c.exec("redis-pv-sts-0", &["nslookup", fqdn1]);
    assert!(
        looked_up.contains(&format!("Address: {ip1}")),
        "{looked_up}"
    );

    let out = c.ok(&["delete", "po", "redis-pv-sts-0", "--wait=false"]);
    assert!(out.contains("pod \"redis-pv-sts-0\" deleted"), "{out}");
    let new0 = c.ready_pod("redis-pv-sts-0", Some(&uid(&pod0)));
    assert_eq!(
        redis_cli(&c, "redis-pv-sts-0", &["get", "name"]),
        "stead\n",
        "the value written before the pod was deleted"
    );

    // The new pod's name follows it to its new address.
    let ip0 = new0["status"]["podIP"].as_str().unwrap();
    ping_resolves(&c, "redis-pv-sts-1", "redis-pv-sts-0.redis-pv-sts-svc", ip0);

    // redis-sts.yaml: serviceName names a ClusterIP service; the pods' names resolve all the
    // same (as with CoreDNS), also after `kubectl rollout restart` gives them new pods.
    let out = c.ok(&["apply", "-f", &manifest("redis-sts.yaml")]);
    assert!(
        out.contains("statefulset.apps/redis-sts created")
            && out.contains("service/redis-svc created"),
        "{out}"
    );
    c.rollout("redis-sts");
    let wide = c.ok(&["get", "sts", "redis-sts", "-o", "wide", "--no-headers"]);
    let row: Vec<&str> = wide.split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[3], row[4]),
        ("redis-sts", "2/2", "redis", "redis:5-alpine"),
        "{wide}"
    );
    let old: Vec<Value> = (0..2)
        .map(|n| c.ready_pod(&format!("redis-sts-{n}"), None))
        .collect();
    assert_eq!(c.exec("redis-sts-0", &["hostname"]).trim(), "redis-sts-0");
    let ip = |pod: &Value| pod["status"]["podIP"].as_str().unwrap().to_string();
    ping_resolves(
        &c,
        "redis-sts-0",
        "redis-sts-0.redis-svc.default",
        &ip(&old[0]),
    );
    ping_resolves(&c, "redis-sts-0", "redis-sts-1.redis-svc", &ip(&old[1]));
    let out = c.ok(&["rollout", "restart", "statefulset", "redis-sts"]);
    assert!(
        out.contains("statefulset.apps/redis-sts restarted"),
        "{out}"
    );
    c.rollout("redis-sts");
    let new: Vec<Value> = (0..2)
        .map(|n| c.ready_pod(&format!("redis-sts-{n}"), Some(&uid(&old[n]))))
        .collect();
    ping_resolves(
        &c,
        "redis-sts-1",
        "redis-sts-0.redis-svc.default",
        &ip(&new[0]),
    );
    ping_resolves(&c, "redis-sts-0", "redis-sts-1.redis-svc", &ip(&new[1]));
    // The ClusterIP service reaches the new pods.
    eventually("redis-svc answering through its cluster IP", || {
        let o = c.run(&[
            "exec",
            "redis-sts-0",
            "--",
            "redis-cli",
            "-h",
            "redis-svc",
            "ping",
        ]);
        (o.code == 0 && o.stdout == "PONG\n").then_some(())
    });
    eventually("the service's endpoints following the new pods", || {
        let ep = c.json(&["get", "endpoints", "redis-svc"]);
        let mut ips: Vec<String> = ep["subsets"][0]["addresses"]
            .as_array()?
            .iter()
            .map(|a| a["ip"].as_str().unwrap().to_string())
            .collect();
        ips.sort();
        let mut want = vec![ip(&new[0]), ip(&new[1])];
        want.sort();
        (ips == want).then_some(())
    });
    c.finish();
}

const LOGGER: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: logger
spec:
  containers:
  - name: main
    image: busybox:1.28
    command:
    - sh
    - -c
    - for i in 1 2 3 4 5; do echo line $i; done; echo ready; while [ ! -f /tmp/stop ]; do sleep 0.2; done; echo bye
";

#[test]
fn logs_exec_and_cp_with_a_busybox_pod() {
    let Some(c) = Cluster::start() else { return };
    assert!(c.apply_stdin(LOGGER).contains("pod/logger created"));
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/logger",
        "--timeout=240s",
    ]);
    const FIRST: &str = "line 1\nline 2\nline 3\nline 4\nline 5\nready\n";
    eventually("the first lines logged", || {
        (c.ok(&["logs", "logger"]) == FIRST).then_some(())
    });
    assert_eq!(c.ok(&["logs", "logger", "--tail=2"]), "line 5\nready\n");

    let o = c.run(&["exec", "logger", "--", "sh", "-c", "exit 3"]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    let o = c.run_with_stdin(&["exec", "-i", "logger", "--", "cat"], b"hi\n");
    assert_eq!((o.code, o.stdout.as_str()), (0, "hi\n"), "{}", o.stderr);
    // More than the pipes hold: output keeps flowing while stdin waits for the process.
    let big: String = (0..20_000)
        .map(|i| format!("line {i:05} of the input\n"))
        .collect();
    let o = c.run_with_stdin(&["exec", "-i", "logger", "--", "cat"], big.as_bytes());
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout == big,
        "{} of {} bytes came back",
        o.stdout.len(),
        big.len()
    );

    let home = c.dir.path().join("home");
    let local = home.join("in.txt");
    std::fs::write(&local, "copied in\nand out\n").unwrap();
    c.ok(&["cp", local.to_str().unwrap(), "logger:/tmp/in.txt"]);
    assert_eq!(
        c.exec("logger", &["cat", "/tmp/in.txt"]),
        "copied in\nand out\n"
    );
    c.exec("logger", &["sh", "-c", "echo made inside > /tmp/out.txt"]);
    let back = home.join("out.txt");
    c.ok(&["cp", "logger:/tmp/out.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "made inside\n");

    let tree = home.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), "a\n").unwrap();
    std::fs::write(tree.join("sub/b.txt"), "b\n").unwrap();
    c.ok(&["cp", tree.to_str().unwrap(), "logger:/tmp/tree"]);
    assert_eq!(
        c.exec("logger", &["cat", "/tmp/tree/a.txt", "/tmp/tree/sub/b.txt"]),
        "a\nb\n"
    );
    let tree_back = home.join("tree-back");
    c.ok(&["cp", "logger:/tmp/tree", tree_back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(tree_back.join("sub/b.txt")).unwrap(),
        "b\n"
    );

    // Follow: the lines so far, then what the container prints until it ends.
    let mut follow = c
        .command(&["logs", "-f", "logger"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut followed = Vec::new();
    let next = |followed: &mut Vec<String>| {
        let line = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("logs -f after {followed:?}: {e}"));
        followed.push(line.clone());
        line
    };
    while next(&mut followed) != "ready" {}
    c.exec("logger", &["touch", "/tmp/stop"]);
    while next(&mut followed) != "bye" {}
    assert_eq!(followed.join("\n") + "\n", format!("{FIRST}bye\n"));
    // The stream ends with the container.
    match rx.recv_timeout(PATIENCE) {
        Err(mpsc::RecvTimeoutError::Disconnected) => {}
        other => panic!("logs -f went on after the container ended: {other:?}"),
    }
    let followed = follow.wait().unwrap();
    assert!(followed.success(), "{followed}");

    // The container ended and was started again: --previous shows the ended one.
    let pod = eventually("logger restarted and Ready", || {
        let pod = c.pod("logger")?;
        let restarts = pod["status"]["containerStatuses"][0]["restartCount"].as_i64()?;
        (restarts >= 1 && condition(&pod, "Ready") == Some("True")).then_some(pod)
    });
    assert_eq!(
        pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        0
    );
    assert_eq!(
        c.ok(&["logs", "logger", "--previous"]),
        format!("{FIRST}bye\n")
    );
    eventually("the new container's lines", || {
        (c.ok(&["logs", "logger"]) == FIRST).then_some(())
    });
    c.finish();
}

const PROBED: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: liveness
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:1.28
    command: [sh, -c, touch /tmp/healthy; exec sleep 3600]
    livenessProbe:
      exec:
        command: [cat, /tmp/healthy]
      initialDelaySeconds: 2
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: readiness
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:1.28
    command: [sleep, '3600']
    readinessProbe:
      exec:
        command: [cat, /tmp/ready]
      periodSeconds: 1
";

/// The events about pod `name` with `reason`.
fn events(c: &Cluster, name: &str, reason: &str) -> Vec<Value> {
    let events = c.json(&["get", "events"]);
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .cloned()
        .collect()
}

/// The columns of `kubectl get pod NAME`'s row.
fn pod_row(c: &Cluster, name: &str) -> Vec<String> {
    let table = c.ok(&["get", "pod", name, "--no-headers"]);
    table.split_whitespace().map(String::from).collect()
}

#[test]
fn liveness_and_readiness_probes() {
    let Some(c) = Cluster::start() else { return };
    c.apply_stdin(PROBED);
    let live = c.ready_pod("liveness", None);
    assert_eq!(live["status"]["containerStatuses"][0]["restartCount"], 0);

    // Readiness: Running but not Ready while the probe fails.
    let unready = eventually("readiness Running and probed", || {
        let pod = c.pod("readiness")?;
        let running = pod["status"]["phase"] == "Running"
            && !pod["status"]["containerStatuses"][0]["state"]["running"].is_null();
        let probed = !events(&c, "readiness", "Unhealthy").is_empty();
        (running && probed).then_some(pod)
    });
    assert_eq!(condition(&unready, "Ready"), Some("False"));
    assert_eq!(unready["status"]["containerStatuses"][0]["ready"], false);
    let row = pod_row(&c, "readiness");
    assert_eq!(row[1..3], ["0/1", "Running"], "{row:?}");
    let failed = events(&c, "readiness", "Unhealthy");
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Readiness probe failed"),
        "{failed:#?}"
    );
    c.exec("readiness", &["touch", "/tmp/ready"]);
    c.ready_pod("readiness", None);
    let row = pod_row(&c, "readiness");
    assert_eq!(row[1..4], ["1/1", "Running", "0"], "{row:?}");

    // Liveness: the container is restarted once its probe fails.
    assert!(events(&c, "liveness", "Unhealthy").is_empty());
    c.exec("liveness", &["rm", "/tmp/healthy"]);
    let restarted = eventually("liveness restarted", || {
        let pod = c.pod("liveness")?;
        let restarts = pod["status"]["containerStatuses"][0]["restartCount"].as_i64()?;
        (restarts >= 1).then_some(pod)
    });
    let unhealthy = events(&c, "liveness", "Unhealthy");
    assert!(
        unhealthy.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Liveness probe failed"))),
        "{unhealthy:#?}"
    );
    let killing = events(&c, "liveness", "Killing");
    assert!(
        killing.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed liveness probe, will be restarted"))),
        "{killing:#?}"
    );
    assert!(
        !restarted["status"]["containerStatuses"][0]["lastState"]["terminated"].is_null(),
        "{:#}",
        restarted["status"]
    );
    // The new container makes the file again and stays.
    c.ready_pod("liveness", None);
    c.finish();
}

const MY_STORAGE_CLASS: &str = "\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: my-storage-class
provisioner: stead.io/local-path
volumeBindingMode: WaitForFirstConsumer
";

/// Seconds since the epoch of an API timestamp.
fn seconds(timestamp: &str) -> i64 {
    timestamp
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("timestamp {timestamp:?}: {e}"))
        .as_second()
}

#[test]
fn seed_003_min_ready_seconds_orders_the_start() {
    let Some(c) = Cluster::start() else { return };
    c.apply_stdin(MY_STORAGE_CLASS);
    let out = c.ok(&["apply", "-f", &manifest("web.yaml")]);
    assert!(out.contains("statefulset.apps/web created"), "{out}");
    c.rollout("web");
    let set = eventually("three available replicas", || {
        let set = c.json(&["get", "sts", "web"]);
        (set["status"]["availableReplicas"] == 3).then_some(set)
    });
    assert_eq!(set["status"]["readyReplicas"], 3);
    let pods: Vec<Value> = (0..3)
        .map(|n| c.ready_pod(&format!("web-{n}"), None))
        .collect();
    for n in 1..3 {
        let ready = condition_time(&pods[n - 1], "Ready").unwrap();
        let created = pods[n]["metadata"]["creationTimestamp"].as_str().unwrap();
        // Both are whole seconds: 10 s apart at least, 9 once truncated.
        assert!(
            seconds(created) - seconds(&ready) >= 9,
            "web-{n} created at {created}, web-{} Ready at {ready}: minReadySeconds is 10",
            n - 1
        );
    }
    for n in 0..3 {
        let claim = c.json(&["get", "pvc", &format!("www-web-{n}")]);
        assert_eq!(claim["status"]["phase"], "Bound");
        assert_eq!(claim["spec"]["storageClassName"], "my-storage-class");
    }
    c.finish();
}
