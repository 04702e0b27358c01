//! `pods/log`, `pods/exec` and `pods/attach` end to end through a real API server: a kube client asks the API
//! server, which forwards to the node API of the pod's node, which finds the container through
//! a runtime. The runtime here is a fake behind the `Runtime` trait whose "containers" are log
//! files the test writes and whose exec (and attach) runs host processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{AsyncBufReadExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, AttachParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde_json::json;
use stead_agent::nodeapi;
use stead_agent::runtime::*;
use tokio::io::AsyncReadExt;

#[derive(Default)]
struct FakeRuntime {
    containers: Mutex<Vec<ContainerStatus>>,
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
    async fn connect(&self, _: &SandboxId, _: u16) -> Result<tokio::net::TcpStream, RuntimeError> {
        unused()
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
    _server: stead_apiserver::RunningServer,
    _dir: tempfile::TempDir,
}

async fn start() -> Result<Env> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let server = stead_apiserver::start(stead_apiserver::ServerConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        features: Default::default(),
    })
    .await?;
    let kc = kube::config::Kubeconfig::read_from(&server.kubeconfig)?;
    let client = Client::try_from(Config::from_custom_kubeconfig(kc, &Default::default()).await?)?;
    let token = std::fs::read_to_string(dir.path().join("token"))?
        .trim()
        .to_string();

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
        _server: server,
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

trait WriteStr {
    fn write_all_str(&mut self, s: &str) -> std::io::Result<()>;
}

impl WriteStr for std::fs::File {
    fn write_all_str(&mut self, s: &str) -> std::io::Result<()> {
        std::io::Write::write_all(self, s.as_bytes())
    }
}

#[tokio::test]
async fn exec_runs_with_stdio_and_reports_the_exit_code() -> Result<()> {
    let env = start().await?;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let mut proc = pods
        .exec(
            "p",
            ["sh", "-c", "echo out; echo err >&2; exit 3"],
            &AttachParams::default().stderr(true),
        )
        .await?;
    let mut out = String::new();
    proc.stdout()
        .context("stdout")?
        .read_to_string(&mut out)
        .await?;
    let mut err = String::new();
    proc.stderr()
        .context("stderr")?
        .read_to_string(&mut err)
        .await?;
    let status = proc
        .take_status()
        .context("status")?
        .await
        .context("a status")?;
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
    let mut out = String::new();
    proc.stdout()
        .context("stdout")?
        .read_to_string(&mut out)
        .await?;
    let status = proc
        .take_status()
        .context("status")?
        .await
        .context("a status")?;
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
    let mut out = String::new();
    proc.stdout()
        .context("stdout")?
        .read_to_string(&mut out)
        .await?;
    let mut err = String::new();
    proc.stderr()
        .context("stderr")?
        .read_to_string(&mut err)
        .await?;
    let status = proc
        .take_status()
        .context("status")?
        .await
        .context("a status")?;
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
