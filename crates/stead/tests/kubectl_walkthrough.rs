//! End to end: a real `stead server` on loopback driven by the real kubectl binaries through the
//! walkthrough of the README (issue "The Kubernetes API that the real kubectl accepts").
//!
//! kubectl 1.29 and 1.33 are called directly (not through the version dispatcher), each against
//! its own server and data dir.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod common;

const WEB_YAML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/e2e/manifests/web.yaml"
);

struct Server {
    child: Child,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let data = tempfile::tempdir().unwrap();
    let (child, kubeconfig) =
        common::spawn_server(data.path(), &["--disable-agent"], Stdio::inherit());
    Server {
        child,
        kubeconfig,
        home: tempfile::tempdir().unwrap(),
        _data: data,
    }
}

/// The versioned kubectl binaries sit next to the resolved `kubectl` dispatcher.
fn kubectl_binary(minor: u32) -> PathBuf {
    let which = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .unwrap();
    let dispatcher = PathBuf::from(String::from_utf8_lossy(&which.stdout).trim());
    let bin = dispatcher
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!("kubectl.1.{minor}"));
    assert!(
        bin.exists(),
        "{} not found: the machine image provides kubectl 1.27-1.33",
        bin.display()
    );
    bin
}

struct Kubectl<'a> {
    bin: PathBuf,
    server: &'a Server,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Kubectl<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("KUBECONFIG", &self.server.kubeconfig)
            .env("HOME", self.server.home.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        let o = self.command(args).output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs and requires success.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.code, 0,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            o.stdout, o.stderr
        );
        o.stdout
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }
}

fn walkthrough(minor: u32) {
    let server = start_server();
    let k = Kubectl {
        bin: kubectl_binary(minor),
        server: &server,
    };

    let version = k.ok(&["version"]);
    assert!(
        version.contains("Server Version") && version.contains("v1.33.0"),
        "{version}"
    );
    let resources = k.ok(&["api-resources"]);
    let sts_line = resources
        .lines()
        .find(|l| l.starts_with("statefulsets "))
        .expect("statefulsets listed");
    assert!(
        sts_line
            .split_whitespace()
            .eq(["statefulsets", "sts", "apps/v1", "true", "StatefulSet"]),
        "{sts_line}"
    );
    assert!(
        k.ok(&["get", "ns"])
            .lines()
            .any(|l| l.starts_with("default ") && l.contains("Active"))
    );
    auth(&k, minor);

    let applied = k.ok(&["apply", "-f", WEB_YAML]);
    assert!(
        applied.contains("service/nginx created")
            && applied.contains("statefulset.apps/web created"),
        "{applied}"
    );
    let again = k.ok(&["apply", "-f", WEB_YAML]);
    assert!(again.contains("service/nginx unchanged"), "{again}");

    let wide = k.ok(&["get", "sts,svc,pods", "-o", "wide"]);
    let sts_row: Vec<&str> = wide
        .lines()
        .find(|l| l.starts_with("statefulset.apps/web"))
        .expect("sts row")
        .split_whitespace()
        .collect();
    assert_eq!(sts_row[1], "0/3");
    assert_eq!(sts_row[3..], ["nginx", "registry.k8s.io/nginx-slim:0.24"]);
    let svc_row: Vec<&str> = wide
        .lines()
        .find(|l| l.starts_with("service/nginx"))
        .expect("svc row")
        .split_whitespace()
        .collect();
    assert_eq!(svc_row[1..5], ["ClusterIP", "None", "<none>", "80/TCP"]);

    let yaml = k.ok(&["get", "sts", "web", "-o", "yaml"]);
    for expected in [
        "podManagementPolicy: OrderedReady",
        "serviceName: nginx",
        "revisionHistoryLimit: 10",
        "partition: 0",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in\n{yaml}");
    }
    let described = k.ok(&["describe", "sts", "web"]);
    assert!(
        described.contains("Replicas:") && described.contains("3 desired"),
        "{described}"
    );
    assert!(described.contains("Port:         80/TCP"), "{described}");

    assert!(
        k.ok(&["scale", "sts", "web", "--replicas=5"])
            .contains("statefulset.apps/web scaled")
    );
    assert_eq!(
        k.ok(&["get", "sts", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );

    k.ok(&[
        "patch",
        "sts",
        "web",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}}}"#,
    ]);
    let set = k.json(&["get", "sts", "web"]);
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.25");
    assert_eq!(
        container["ports"][0]["containerPort"], 80,
        "strategic merge keeps the other container fields"
    );
    let generation = set["metadata"]["generation"].as_i64().unwrap();

    k.ok(&[
        "patch",
        "sts",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}"#,
    ]);
    assert_eq!(
        k.ok(&[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.spec.updateStrategy.rollingUpdate.partition}"
        ]),
        "2"
    );

    k.ok(&["label", "sts", "web", "tier=db"]);
    k.ok(&["annotate", "sts", "web", "note=x"]);
    let set = k.json(&["get", "sts", "web"]);
    assert_eq!(set["metadata"]["labels"]["tier"], "db");
    assert_eq!(set["metadata"]["annotations"]["note"], "x");
    assert_eq!(
        set["metadata"]["generation"].as_i64().unwrap(),
        generation + 1,
        "labels do not bump generation"
    );

    let edited = k
        .command(&["edit", "sts", "web"])
        .env("EDITOR", "sed -i s/replicas:\\ 5/replicas:\\ 6/")
        .output()
        .unwrap();
    assert!(
        edited.status.success(),
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    assert_eq!(
        k.ok(&["get", "sts", "web", "-o", "jsonpath={.spec.replicas}"]),
        "6"
    );

    let ssa = k.ok(&[
        "apply",
        "--server-side",
        "-f",
        WEB_YAML,
        "--force-conflicts",
    ]);
    assert!(
        ssa.contains("statefulset.apps/web serverside-applied"),
        "{ssa}"
    );
    assert_eq!(
        k.ok(&["get", "sts", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );

    let changed = server.home.path().join("changed.yaml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(WEB_YAML)
            .unwrap()
            .replace("replicas: 3", "replicas: 4"),
    )
    .unwrap();
    let diff = k.run(&["diff", "-f", changed.to_str().unwrap()]);
    assert_eq!(
        diff.code, 1,
        "diff exits 1 when there are differences: {}",
        diff.stderr
    );
    assert!(diff.stdout.contains("+  replicas: 4"), "{}", diff.stdout);
    assert_eq!(
        k.ok(&["get", "sts", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3",
        "diff is a dry run"
    );

    // kubectl 1.27 and 1.28 explain from /openapi/v2 definitions, which stead does not serve.
    if minor >= 29 {
        let explained = k.ok(&["explain", "statefulset.spec.updateStrategy"]);
        assert!(explained.contains("rollingUpdate"), "{explained}");
    }

    assert!(
        k.ok(&["create", "namespace", "demo"])
            .contains("namespace/demo created")
    );
    assert!(
        k.ok(&[
            "create",
            "configmap",
            "c",
            "--from-literal=a=b",
            "-n",
            "demo"
        ])
        .contains("configmap/c created")
    );
    assert_eq!(
        k.ok(&["get", "cm", "c", "-n", "demo", "-o", "jsonpath={.data.a}"]),
        "b"
    );

    let mut watcher = k
        .command(&["get", "sts", "-w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    assert!(header.starts_with("NAME"), "{header}");
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("web ") && first.contains("0/3"),
        "{first}"
    );
    k.ok(&["scale", "sts", "web", "--replicas=2"]);
    let next = lines.next().unwrap().unwrap();
    assert!(
        next.starts_with("web ") && next.contains("0/2"),
        "the watch shows the next change: {next}"
    );
    let _ = watcher.kill();
    let _ = watcher.wait();

    let waited = k.ok(&[
        "wait",
        "--for=jsonpath={.spec.replicas}=2",
        "sts/web",
        "--timeout=20s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");

    let deleted = k.ok(&["delete", "-f", WEB_YAML]);
    assert!(
        deleted.contains("statefulset.apps \"web\" deleted"),
        "{deleted}"
    );
    let gone = k.run(&["get", "sts"]);
    assert!(
        gone.stderr.contains("No resources found"),
        "{}{}",
        gone.stdout,
        gone.stderr
    );
    let services = k.ok(&["get", "svc"]);
    assert!(
        !services.contains("nginx") && services.contains("kubernetes"),
        "{services}"
    );
    let missing = k.run(&["get", "sts", "web"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("Error from server (NotFound): statefulsets.apps \"web\" not found"),
        "{}",
        missing.stderr
    );
}

/// `kubectl auth`: stead allows every authenticated user everything (like upstream's
/// AlwaysAllow), and the admin kubeconfig's certificate says who that is.
fn auth(k: &Kubectl<'_>, minor: u32) {
    let can = k.run(&["auth", "can-i", "create", "pods"]);
    assert_eq!(
        (can.code, can.stdout.trim()),
        (0, "yes"),
        "auth can-i: {}",
        can.stderr
    );
    let can = k.run(&[
        "auth",
        "can-i",
        "get",
        "pods/web-0",
        "--subresource=log",
        "-n",
        "demo",
    ]);
    assert_eq!((can.code, can.stdout.trim()), (0, "yes"), "{}", can.stderr);
    let can = k.run(&["auth", "can-i", "get", "/healthz"]);
    assert_eq!((can.code, can.stdout.trim()), (0, "yes"), "{}", can.stderr);

    let list = k.ok(&["auth", "can-i", "--list"]);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.first().map(|r| r[0]),
        Some("Resources"),
        "a header row: {list}"
    );
    assert!(rows.contains(&vec!["*.*", "[]", "[]", "[*]"]), "{list}");
    assert!(rows.contains(&vec!["[*]", "[]", "[*]"]), "{list}");

    // kubectl 1.27 asks only authentication.k8s.io/v1beta1 and v1alpha1, which a 1.33 server
    // does not serve; 1.28 and later ask v1 first.
    if minor >= 28 {
        let whoami = k.ok(&["auth", "whoami"]);
        let rows: Vec<Vec<&str>> = whoami
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(rows.contains(&vec!["Username", "admin"]), "{whoami}");
        assert!(
            rows.contains(&vec!["Groups", "[system:masters", "system:authenticated]"]),
            "{whoami}"
        );
        let json = k.json(&["auth", "whoami"]);
        assert_eq!(json["status"]["userInfo"]["username"], "admin");
    }
}

#[test]
fn kubectl_1_33_walkthrough() {
    walkthrough(33);
}

#[test]
fn kubectl_1_32_walkthrough() {
    walkthrough(32);
}

#[test]
fn kubectl_1_31_walkthrough() {
    walkthrough(31);
}

#[test]
fn kubectl_1_30_walkthrough() {
    walkthrough(30);
}

#[test]
fn kubectl_1_29_walkthrough() {
    walkthrough(29);
}

#[test]
fn kubectl_1_28_walkthrough() {
    walkthrough(28);
}

#[test]
fn kubectl_1_27_walkthrough() {
    walkthrough(27);
}

#[test]
fn node_ports_are_allocated_unique_and_given_back() {
    let server = start_server();
    let k = Kubectl {
        bin: kubectl_binary(33),
        server: &server,
    };
    let node_port = |name: &str| {
        k.json(&["get", "svc", name])["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .map(|n| n.to_string())
    };
    // `kubectl create service nodeport NAME --tcp=PORT:PORT [--node-port=N]`.
    let create = |name: &str, port: &str, node_port: Option<&str>| {
        let tcp = format!("--tcp={port}:{port}");
        let mut args = vec!["create", "service", "nodeport", name, &tcp];
        let flag = node_port.map(|n| format!("--node-port={n}"));
        args.extend(flag.as_deref());
        k.run(&args)
    };
    assert_eq!(create("a", "80", None).code, 0);
    let taken = node_port("a").expect("a node port");
    assert!(
        (30000..=32767).contains(&taken.parse::<u32>().unwrap()),
        "{taken}"
    );
    let row = k.ok(&["get", "svc", "a", "--no-headers"]);
    assert!(row.contains(&format!("80:{taken}/TCP")), "{row}");

    // Taken, or outside the range: refused with upstream's reason, nothing created.
    let o = create("b", "81", Some(&taken));
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains(&format!(
            "spec.ports[0].nodePort: Invalid value: {taken}: provided port is already allocated"
        )),
        "{}",
        o.stderr
    );
    let o = create("c", "80", Some("80"));
    assert!(
        o.stderr.contains(
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        ),
        "{}",
        o.stderr
    );
    assert_ne!(k.run(&["get", "svc", "b"]).code, 0);

    // An update that leaves the port out keeps it; a change to ClusterIP gives it back.
    k.ok(&["label", "svc", "a", "tier=web"]);
    assert_eq!(node_port("a").as_deref(), Some(taken.as_str()));
    k.ok(&[
        "patch",
        "svc",
        "a",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    assert_eq!(node_port("a"), None);
    assert_eq!(create("b", "81", Some(&taken)).code, 0);
    // Deleting the Service gives it back too.
    k.ok(&["delete", "svc", "b"]);
    assert_eq!(create("d", "82", Some(&taken)).code, 0);
}

#[test]
fn a_second_server_on_the_same_data_dir_fails_with_one_line() {
    let server = start_server();
    let data = server.kubeconfig.parent().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is in use by another stead server"), "{err}");
}

#[test]
fn requests_without_credentials_are_unauthorized_except_health_and_version() {
    let server = start_server();
    let k = Kubectl {
        bin: kubectl_binary(33),
        server: &server,
    };
    let url = k.ok(&[
        "config",
        "view",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let anon = |path: &str| {
        let o = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{url}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(anon("/version"), "200");
    assert_eq!(anon("/readyz"), "200");
    assert_eq!(anon("/api/v1/namespaces"), "401");
}

#[test]
fn a_taken_port_fails_with_one_line_and_writes_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!data.exists(), "nothing is written when the port is taken");
}

#[test]
fn bad_flags_fail_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(["server", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(["server", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
