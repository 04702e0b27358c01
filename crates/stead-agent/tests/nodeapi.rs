//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward` end to end through a real API
//! server: a kube client (or a real kubectl) asks the API server, which forwards to the node
//! API of the pod's node, which finds the container through a runtime. The runtime here is a
//! fake behind the `Runtime` trait whose "containers" are log files the test writes, whose
//! exec (and attach) runs host processes and whose pod port 8080 is a loopback echo server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{AsyncBufReadExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, AttachParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::json;
use stead_agent::log_rotation::{LogRotation, RotatingLog};
use stead_agent::nodeapi;
use stead_agent::runtime::*;
use tokio::io::AsyncReadExt;

#[derive(Default)]
struct FakeRuntime {
    containers: Mutex<Vec<ContainerStatus>>,
    /// What the pod's port 8080 reaches.
    echo: Mutex<Option<std::net::SocketAddr>>,
}

fn container(attempt: u32, log_path: PathBuf, running: bool) -> ContainerStatus {
    let now = Timestamp::now();
    ContainerStatus {
        id: format!("c{attempt}"),
        sandbox: "uid-1".into(),
        name: "c".into(),
        attempt,
        image_id: "sha256:0".into(),
        image_ref: "busybox".into(),
        state: if running {
            ContainerState::Running { started_at: now }
        } else {
            ContainerState::Exited {
                started_at: Some(now),
                finished_at: now,
                exit_code: 1,
                signal: None,
                reason: None,
                message: None,
            }
        },
        log_path,
        labels: BTreeMap::new(),
    }
}

fn unused<T>() -> Result<T, RuntimeError> {
    Err(RuntimeError::Failed("not used by this test".into()))
}

impl Runtime for FakeRuntime {
    async fn create_sandbox(&self, _: &SandboxSpec) -> Result<SandboxStatus, RuntimeError> {
        unused()
    }
    async fn start_container(
        &self,
        _: &SandboxId,
        _: &ContainerSpec,
    ) -> Result<ContainerId, RuntimeError> {
        unused()
    }
    async fn stop_container(&self, _: &ContainerId, _: Duration) -> Result<(), RuntimeError> {
        unused()
    }
    async fn remove_container(&self, _: &ContainerId) -> Result<(), RuntimeError> {
        unused()
    }
    async fn remove_sandbox(&self, _: &SandboxId, _: Duration) -> Result<(), RuntimeError> {
        unused()
    }
    async fn list(&self) -> Result<(Vec<SandboxStatus>, Vec<ContainerStatus>), RuntimeError> {
        let sandbox = SandboxStatus {
            id: "uid-1".into(),
            namespace: "default".into(),
            name: "p".into(),
            ip: None,
            created_at: Timestamp::now(),
            ready: true,
            labels: BTreeMap::new(),
        };
        Ok((vec![sandbox], self.containers.lock().unwrap().clone()))
    }
    async fn exec_sync(
        &self,
        _: &ContainerId,
        _: &[String],
        _: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        unused()
    }
    async fn exec(&self, _: &ContainerId, spec: &ExecSpec) -> Result<ExecSession, RuntimeError> {
        use std::process::Stdio;
        let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        let mut child = tokio::process::Command::new(&spec.command[0])
            .args(&spec.command[1..])
            .stdin(piped(spec.stdin))
            .stdout(piped(spec.stdout))
            .stderr(piped(spec.stderr))
            .spawn()
            .map_err(|e| RuntimeError::Failed(e.to_string()))?;
        let stdin = child.stdin.take().map(|s| Box::new(s) as _);
        let stdout = child.stdout.take().map(|s| Box::new(s) as _);
        let stderr = child.stderr.take().map(|s| Box::new(s) as _);
        let (tx, exit) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
            let _ = tx.send(code);
        });
        Ok(ExecSession {
            stdin,
            stdout,
            stderr,
            exit,
            resize: None,
        })
    }
    /// The "container's process" attached to is a host shell started for the occasion.
    async fn attach(&self, id: &ContainerId, spec: &ExecSpec) -> Result<ExecSession, RuntimeError> {
        let shell = ExecSpec {
            command: vec!["sh".into()],
            ..spec.clone()
        };
        self.exec(id, &shell).await
    }
    async fn connect(
        &self,
        sandbox: &SandboxId,
        port: u16,
    ) -> Result<tokio::net::TcpStream, RuntimeError> {
        let echo = *self.echo.lock().unwrap();
        match echo {
            Some(addr) if sandbox == "uid-1" && port == 8080 => {
                tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| RuntimeError::Failed(e.to_string()))
            }
            _ => Err(RuntimeError::Failed(format!(
                "dial tcp :{port}: connection refused"
            ))),
        }
    }
}

fn cri(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| format!("{} stdout F {l}\n", Timestamp::now()))
        .collect()
}

struct Env {
    client: Client,
    runtime: Arc<FakeRuntime>,
    current_log: PathBuf,
    server: stead_apiserver::RunningServer,
    _dir: tempfile::TempDir,
}

async fn start() -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(dir.path()).await?;
    // What the API server presents to node APIs: the join token's secret.
    let token = server.app.node_token.clone();

    let previous_log = dir.path().join("0.log");
    let current_log = dir.path().join("1.log");
    std::fs::write(&previous_log, cri(&["before the restart"]))?;
    std::fs::write(&current_log, cri(&["l1", "l2", "l3"]))?;
    let runtime = Arc::new(FakeRuntime::default());
    *runtime.containers.lock().unwrap() = vec![
        container(0, previous_log, false),
        container(1, current_log.clone(), true),
    ];

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let tls = nodeapi::self_signed_tls(&["127.0.0.1".parse()?]).map_err(anyhow::Error::msg)?;
    tokio::spawn(nodeapi::serve(
        listener,
        tls,
        runtime.clone(),
        token,
        std::future::pending(),
    ));

    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n1"}}))?,
        )
        .await?;
    nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})),
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1",
            "containers": [{"name": "c", "image": "busybox"}]}}))?,
    )
    .await?;
    Ok(Env {
        client,
        runtime,
        current_log,
        server,
        _dir: dir,
    })
}

#[tokio::test]
async fn logs_are_forwarded_with_their_options() -> Result<()> {
    let env = start().await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    assert_eq!(pods.logs("p", &LogParams::default()).await?, "l1\nl2\nl3\n");
    let tail = LogParams {
        tail_lines: Some(1),
        timestamps: true,
        ..Default::default()
    };
    let line = pods.logs("p", &tail).await?;
    let (time, text) = line.trim_end().split_once(' ').context("a timestamp")?;
    assert!(time.parse::<Timestamp>().is_ok(), "{time}");
    assert_eq!(text, "l3");
    let previous = LogParams {
        previous: true,
        ..Default::default()
    };
    assert_eq!(pods.logs("p", &previous).await?, "before the restart\n");
    let limited = LogParams {
        limit_bytes: Some(4),
        ..Default::default()
    };
    assert_eq!(pods.logs("p", &limited).await?, "l1\nl");

    let wrong = LogParams {
        container: Some("nope".into()),
        ..Default::default()
    };
    let err = pods.logs("p", &wrong).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("container nope is not valid for pod p"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_followed_log_streams_new_lines_until_the_container_stops() -> Result<()> {
    let env = start().await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let follow = LogParams {
        follow: true,
        tail_lines: Some(1),
        ..Default::default()
    };
    let mut lines = pods.log_stream("p", &follow).await?.lines();
    assert_eq!(lines.next().await.context("first line")??, "l3");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&env.current_log)?
        .write_all_str(&cri(&["l4"]))?;
    assert_eq!(lines.next().await.context("appended line")??, "l4");
    // The container stops: the stream ends.
    env.runtime.containers.lock().unwrap()[1] = container(1, env.current_log.clone(), false);
    let rest = tokio::time::timeout(Duration::from_secs(20), lines.next()).await?;
    assert!(rest.is_none(), "{rest:?}");
    Ok(())
}

/// Lines `line-<i>` as the shim writes them, through the real rotation.
fn write_numbered(log: &mut RotatingLog, range: std::ops::Range<usize>) {
    for i in range {
        let record = format!("{} stdout F line-{i}\n", Timestamp::now());
        log.write_record(record.as_bytes()).unwrap();
    }
}

#[tokio::test]
async fn a_followed_log_loses_and_repeats_no_line_across_rotations() -> Result<()> {
    let env = start().await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    // About four records a file, three rotated files kept: a batch of ten lines rotates the
    // log two or three times and fits in what is kept.
    let rotation = LogRotation {
        max_size: 200,
        max_files: 4,
    };
    let mut log = RotatingLog::open(&env.current_log, rotation)?;
    let follow = LogParams {
        follow: true,
        tail_lines: Some(1),
        ..Default::default()
    };
    let mut lines = pods.log_stream("p", &follow).await?.lines();
    assert_eq!(lines.next().await.context("first line")??, "l3");
    const BATCH: usize = 10;
    let mut seen = Vec::new();
    for batch in 0..30 {
        write_numbered(&mut log, batch * BATCH..(batch + 1) * BATCH);
        // The next batch waits until this one was read: the follower never falls behind by
        // more than the kept files hold.
        for _ in 0..BATCH {
            seen.push(lines.next().await.context("a followed line")??);
        }
    }
    let expected: Vec<String> = (0..30 * BATCH).map(|i| format!("line-{i}")).collect();
    assert_eq!(seen, expected);
    let files = stead_agent::log_rotation::rotated_files(&env.current_log);
    assert_eq!(files.len(), 3, "{files:?}");

    // A plain read sees the current file only; the tail is the log's last lines.
    let current = pods.logs("p", &LogParams::default()).await?;
    assert!(!current.is_empty());
    assert!(
        expected.join("\n").ends_with(current.trim_end()),
        "{current}"
    );
    let tail = LogParams {
        tail_lines: Some(2),
        ..Default::default()
    };
    assert_eq!(pods.logs("p", &tail).await?, "line-298\nline-299\n");

    env.runtime.containers.lock().unwrap()[1] = container(1, env.current_log.clone(), false);
    let rest = tokio::time::timeout(Duration::from_secs(20), lines.next()).await?;
    assert!(rest.is_none(), "{rest:?}");
    Ok(())
}

trait WriteStr {
    fn write_all_str(&mut self, s: &str) -> std::io::Result<()>;
}

impl WriteStr for std::fs::File {
    fn write_all_str(&mut self, s: &str) -> std::io::Result<()> {
        std::io::Write::write_all(self, s.as_bytes())
    }
}

/// Reads a session's stdout and stderr (empty when it has none) to their ends, then its status.
async fn finish(
    mut proc: kube::api::AttachedProcess,
) -> Result<(
    String,
    String,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
)> {
    let mut out = String::new();
    proc.stdout()
        .context("stdout")?
        .read_to_string(&mut out)
        .await?;
    let mut err = String::new();
    if let Some(mut stderr) = proc.stderr() {
        stderr.read_to_string(&mut err).await?;
    }
    let status = proc
        .take_status()
        .context("status")?
        .await
        .context("a status")?;
    Ok((out, err, status))
}

#[tokio::test]
async fn exec_runs_with_stdio_and_reports_the_exit_code() -> Result<()> {
    let env = start().await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let proc = pods
        .exec(
            "p",
            ["sh", "-c", "echo out; echo err >&2; exit 3"],
            &AttachParams::default().stderr(true),
        )
        .await?;
    let (out, err, status) = finish(proc).await?;
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = status.details.and_then(|d| d.causes).unwrap_or_default();
    assert_eq!(causes[0].message.as_deref(), Some("3"));

    // stdin reaches the process and its end closes the process's input.
    let mut proc = pods
        .exec(
            "p",
            ["cat"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await?;
    let mut stdin = proc.stdin().context("stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"hello\n").await?;
    tokio::io::AsyncWriteExt::shutdown(&mut stdin).await?;
    let (out, _, status) = finish(proc).await?;
    assert_eq!(out, "hello\n");
    assert_eq!(status.status.as_deref(), Some("Success"));
    Ok(())
}

#[tokio::test]
async fn attach_streams_stdio_and_ends_with_the_container() -> Result<()> {
    let env = start().await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let mut proc = pods
        .attach(
            "p",
            &AttachParams::default()
                .container("c")
                .stdin(true)
                .stderr(true),
        )
        .await?;
    let mut stdin = proc.stdin().context("stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"echo hi; echo oops >&2; exit 4\n").await?;
    let (out, err, status) = finish(proc).await?;
    assert_eq!((out.as_str(), err.as_str()), ("hi\n", "oops\n"));
    // Like upstream's kubelet: the attach itself succeeded; the exit code is the pod's status.
    assert_eq!(status.status.as_deref(), Some("Success"));

    // A stopped container cannot be attached to.
    env.runtime.containers.lock().unwrap()[1] = container(1, env.current_log.clone(), false);
    let attached = pods
        .attach("p", &AttachParams::default().container("c"))
        .await;
    assert!(attached.is_err());
    Ok(())
}

#[tokio::test]
async fn exec_stdin_larger_than_the_pipes_flows_while_output_is_drained() -> Result<()> {
    // `cat` blocks writing its output until it is drained, and then stops reading its input:
    // the node API must keep forwarding output while a stdin write waits.
    let env = start().await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let mut proc = pods
        .exec(
            "p",
            ["cat"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await?;
    let input: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = proc.stdin().context("stdin")?;
    let sent = input.clone();
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut stdin, &sent).await?;
        tokio::io::AsyncWriteExt::shutdown(&mut stdin).await
    });
    let mut out = Vec::new();
    let mut stdout = proc.stdout().context("stdout")?;
    // A deadline for a stuck exchange, not a performance bound.
    tokio::time::timeout(
        Duration::from_secs(120),
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut out),
    )
    .await
    .context("stdout stalled: stdin and stdout deadlocked")??;
    writer.await??;
    assert_eq!(out.len(), input.len());
    assert!(out == input, "the output differs from the input");
    Ok(())
}

#[tokio::test]
async fn the_node_api_refuses_requests_without_the_token() -> Result<()> {
    use tower::ServiceExt;
    let runtime = Arc::new(FakeRuntime::default());
    let router = nodeapi::router(runtime, "secret".into());
    let req = |auth: Option<&str>| {
        let mut b = axum::http::Request::get("/containerLogs/default/p/c");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(axum::body::Body::empty()).unwrap()
    };
    let resp = router.clone().oneshot(req(None)).await?;
    assert_eq!(resp.status(), 401);
    let resp = router.clone().oneshot(req(Some("Bearer wrong"))).await?;
    assert_eq!(resp.status(), 401);
    // With the token the request gets through (the pod has no container yet).
    let resp = router.oneshot(req(Some("Bearer secret"))).await?;
    assert_eq!(resp.status(), 400);
    Ok(())
}

/// Environment variables for a kubectl run.
type Envs<'a> = &'a [(&'a str, &'a str)];

/// A kubectl of `version` ("1.29") installed beside `kubectl` (kubectl.1.29), if any.
fn kubectl(version: &str) -> Option<PathBuf> {
    let name = format!("kubectl.{version}");
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH")?).collect();
    let beside: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d.join("kubectl")).ok())
        .filter_map(|k| k.parent().map(PathBuf::from))
        .collect();
    dirs.extend(beside);
    dirs.into_iter()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

/// The pod is Running (kubectl port-forward insists), labelled for a Service `s` whose port
/// 80 targets the pod's 8080, and its port 8080 is an echo server on loopback.
async fn serve_echo(env: &Env) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    *env.runtime.echo.lock().unwrap() = Some(listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    pods.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "p"}}})),
    )
    .await?;
    pods.patch_status(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await?;
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(env.client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {
                "selector": {"app": "p"}, "ports": [{"port": 80, "targetPort": 8080}]}}))?,
        )
        .await?;
    Ok(())
}

/// Runs `kubectl port-forward <target> 0:<port>` and returns the child and its local port.
async fn port_forward(
    kubectl: &std::path::Path,
    env: &Env,
    envs: &[(&str, &str)],
    args: &[&str],
) -> Result<(tokio::process::Child, u16)> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&env.server.kubeconfig)
        .args(["port-forward", "--address", "127.0.0.1"])
        .args(args)
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("kubectl port-forward did not start")??
        .context("kubectl port-forward ended")?;
    // "Forwarding from 127.0.0.1:41235 -> 8080"
    let port = line
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("unexpected output {line:?}"))?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, port))
}

/// Sends `data` through the local port and reads it back from the echo server.
async fn echo_through(port: u16, data: &[u8]) -> Result<Vec<u8>> {
    use tokio::io::AsyncWriteExt;
    let conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut r, mut w) = conn.into_split();
    let to_send = data.to_vec();
    let writer = tokio::spawn(async move {
        w.write_all(&to_send).await?;
        w.shutdown().await
    });
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut back))
        .await
        .context("the echo did not come back")??;
    writer.await??;
    Ok(back)
}

#[tokio::test]
async fn kubectl_port_forward_reaches_the_pod_port_over_spdy() -> Result<()> {
    let env = start().await?;
    serve_echo(&env).await?;
    // (kubectl, environment, target): 1.33 tunnels SPDY in a WebSocket, and falls back to
    // plain SPDY when told; 1.29 only speaks plain SPDY.
    let cases: [(&str, Envs, &str); 4] = [
        ("1.33", &[], "pod/p"),
        ("1.33", &[], "svc/s"),
        (
            "1.33",
            &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")],
            "pod/p",
        ),
        ("1.29", &[], "pod/p"),
    ];
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut ran = 0;
    for (version, envs, target) in cases {
        let Some(bin) = kubectl(version) else {
            println!("skipping kubectl {version}: kubectl.{version} is not installed");
            continue;
        };
        let remote = if target.starts_with("svc/") {
            "0:80"
        } else {
            "0:8080"
        };
        let (mut child, port) = port_forward(&bin, &env, envs, &[target, remote])
            .await
            .with_context(|| format!("kubectl {version} port-forward {target}"))?;
        assert_eq!(
            echo_through(port, b"hello\n").await?,
            b"hello\n",
            "{version} {target}"
        );
        // More than the 64 KiB SPDY windows, on a second connection of the same session.
        assert_eq!(echo_through(port, &big).await?, big, "{version} {target}");
        child.kill().await?;
        println!("kubectl {version} port-forward {target} {envs:?}: ok");
        ran += 1;
    }
    // A port nothing listens on: the connection ends and kubectl reports the node's error.
    if let Some(bin) = kubectl("1.33") {
        let (mut child, port) = port_forward(&bin, &env, &[], &["pod/p", "0:9999"]).await?;
        let back = echo_through(port, b"x").await.unwrap_or_default();
        assert!(back.is_empty(), "{back:?}");
        child.start_kill()?;
        let out = child.wait_with_output().await?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("error forwarding port 9999 to pod default/p"),
            "{err}"
        );
    }
    if ran == 0 {
        println!("skipped: no versioned kubectl installed");
    }
    Ok(())
}

/// Runs a versioned kubectl with `args` against the test server: (stdout, stderr, exit code).
async fn run_kubectl(
    bin: &std::path::Path,
    env: &Env,
    envs: &[(&str, &str)],
    args: &[&str],
    stdin: &[u8],
) -> Result<(String, String, i32)> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(&env.server.kubeconfig)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut input = child.stdin.take().context("stdin")?;
    input.write_all(stdin).await?;
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("kubectl did not finish")??;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

#[tokio::test]
async fn kubectl_exec_over_spdy_reports_output_and_exit_code() -> Result<()> {
    let env = start().await?;
    // 1.29 speaks only SPDY (v4); 1.33 falls back to SPDY (v5) when told.
    let cases: [(&str, Envs); 3] = [
        ("1.29", &[]),
        ("1.27", &[]),
        ("1.33", &[("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")]),
    ];
    for (version, envs) in cases {
        let Some(bin) = kubectl(version) else {
            println!("skipping kubectl {version}: kubectl.{version} is not installed");
            continue;
        };
        let script = "echo out; echo err >&2; exit 3";
        let (out, err, code) = run_kubectl(
            &bin,
            &env,
            envs,
            &["exec", "p", "--", "sh", "-c", script],
            b"",
        )
        .await?;
        assert_eq!(out, "out\n", "kubectl {version}: {err}");
        assert!(err.contains("err\n"), "kubectl {version}: {err}");
        assert_eq!(code, 3, "kubectl {version}: {err}");

        // stdin reaches the process, and its end ends the process's input.
        let (out, err, code) = run_kubectl(
            &bin,
            &env,
            envs,
            &["exec", "-i", "p", "--", "cat"],
            b"hello\n",
        )
        .await?;
        assert_eq!(
            (out.as_str(), code),
            ("hello\n", 0),
            "kubectl {version}: {err}"
        );
        println!("kubectl {version} exec {envs:?}: ok");
    }
    Ok(())
}

#[tokio::test]
async fn kube_rs_port_forward_uses_the_channel_protocol() -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let env = start().await?;
    serve_echo(&env).await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let mut pf = pods.portforward("p", &[8080, 9999]).await?;
    let mut refused = pf.take_error(9999).context("error channel of 9999")?;
    let message = tokio::time::timeout(Duration::from_secs(30), &mut refused)
        .await
        .context("no error for the refused port")?;
    assert!(
        message
            .unwrap_or_default()
            .contains("error forwarding port 9999 to pod default/p"),
    );
    let mut stream = pf.take_stream(8080).context("stream of 8080")?;
    stream.write_all(b"hello\n").await?;
    let mut back = [0u8; 6];
    tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut back))
        .await
        .context("no echo")??;
    assert_eq!(&back, b"hello\n");
    drop(stream);
    pf.abort();
    Ok(())
}
