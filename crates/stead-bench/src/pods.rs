//! Benchmark 7: pods that really run (`stead server` with the sandbox runtime; needs root). The
//! busybox test image is built from this machine's packages and imported first, so no pull is
//! timed. Measured from outside through a pod watch opened before anything is created:
//!
//! - N pods (100) one after another, each timed from just before its POST to the watch event
//!   showing it Ready (scheduling, sandbox, network, overlay rootfs, container start, status);
//! - the same N pods' memory: the server's RSS, and the RSS of the per-pod processes (pause and
//!   container shims, `stead __sandbox ...`) divided by N — the per-pod overhead;
//! - an OrderedReady StatefulSet of M (10) busybox replicas from its POST to all pods Ready.
//!
//! Every wait is bounded. The pods and the set are deleted before the server stops, and the
//! node network namespace is unmounted afterwards, so nothing is left behind.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::http::{self, Conn};
use crate::server::{Server, proc_status_kib};
use crate::stats::Summary;
use crate::sts::{Kind, Seen, create_namespace, open_watch};
use crate::tls;

const NS: &str = "bench-pods";
const WAIT: Duration = Duration::from_secs(120);

pub struct PodsResult {
    /// POST → Ready, one pod at a time.
    pub sequential: Summary,
    /// The server process's RSS with the N pods running.
    pub server_rss_kib: u64,
    /// Pause + shim RSS per running pod.
    pub per_pod_kib: u64,
    pub ordered_replicas: usize,
    /// POST of the set → all its pods Ready.
    pub ordered_all_ready: Duration,
}

pub async fn run(stead: &Path, pods: usize, ordered: usize) -> Result<PodsResult> {
    let dir = tempfile::Builder::new()
        .prefix("stead-bench-pods-")
        .tempdir()
        .context("temp dir")?;
    eprintln!("stead-bench: test images");
    let images = stead_testimages::ensure_built(&stead_testimages::default_cache_dir())
        .context("build the test images")?;
    let busybox = images
        .iter()
        .find(|i| i.names.iter().any(|n| n.starts_with("busybox:")))
        .context("no busybox image")?;
    let status = Command::new(stead)
        .args(["image", "import", "--data-dir"])
        .arg(dir.path())
        .arg(&busybox.path)
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("stead image import failed: {status}");
    }

    let server = Server::start_with(stead, dir.path(), Duration::from_secs(30), &[])?;
    let result = measure(&server, pods, ordered).await;
    drop(server);
    // The node network namespace outlives the server (pods survive restarts); the benchmark's
    // does not.
    let _ = Command::new("umount")
        .arg("-l")
        .arg(dir.path().join("sandbox/netns/node"))
        .status();
    result
}

async fn measure(server: &Server, pods: usize, ordered: usize) -> Result<PodsResult> {
    let config = tls::admin(&server.kubeconfig)?;
    let mut conn = http::connect(server.addr, config.clone()).await?;
    wait_for_node(&mut conn).await?;
    create_namespace(&mut conn, NS).await?;
    let list: Value = serde_json::from_slice(
        &conn
            .get(&format!("/api/v1/namespaces/{NS}/pods?limit=1"))
            .await?,
    )?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("LIST without resourceVersion")?
        .to_string();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let watch = open_watch(
        server.addr,
        config,
        format!("/api/v1/namespaces/{NS}/pods?watch=true&resourceVersion={rv}"),
        Kind::Pod,
        tx,
    )
    .await?;

    eprintln!("stead-bench: {pods} pods, one after another");
    let mut samples = Vec::with_capacity(pods);
    for i in 0..pods {
        let name = format!("p-{i}");
        let t0 = Instant::now();
        conn.create(&format!("/api/v1/namespaces/{NS}/pods"), pod(&name))
            .await?;
        wait_until(&mut events, |s| s.name == name && s.ready).await?;
        samples.push(t0.elapsed());
    }
    let server_rss_kib = proc_status_kib(server.pid(), "VmRSS")?;
    let per_pod_kib = sandbox_processes_rss_kib()? / pods.max(1) as u64;

    delete_all(&mut conn, &mut events, pods).await?;

    eprintln!("stead-bench: OrderedReady StatefulSet of {ordered} busybox pods");
    let t0 = Instant::now();
    conn.create(
        &format!("/apis/apps/v1/namespaces/{NS}/statefulsets"),
        statefulset(ordered),
    )
    .await?;
    let mut ready = std::collections::HashSet::new();
    while ready.len() < ordered {
        let seen = wait_until(&mut events, |s| s.ready).await?;
        ready.insert(seen.name);
    }
    let ordered_all_ready = t0.elapsed();
    delete(
        &mut conn,
        &format!("/apis/apps/v1/namespaces/{NS}/statefulsets/set"),
    )
    .await?;
    let mut gone = 0;
    while gone < ordered {
        wait_until(&mut events, |s| s.event == "DELETED").await?;
        gone += 1;
    }
    watch.abort();
    Ok(PodsResult {
        sequential: Summary::of(&samples, Duration::ZERO),
        server_rss_kib,
        per_pod_kib,
        ordered_replicas: ordered,
        ordered_all_ready,
    })
}

/// Waits (at most [`WAIT`]) for the next event matching `accept`.
async fn wait_until(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>,
    accept: impl Fn(&Seen) -> bool,
) -> Result<Seen> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(seen)) if accept(&seen) => return Ok(seen),
            Ok(Some(_)) => {}
            Ok(None) => bail!("the pod watch ended"),
            Err(_) => bail!("no matching pod event within {WAIT:?}"),
        }
    }
}

/// Waits until the node has registered and is Ready.
async fn wait_for_node(conn: &mut Conn) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let nodes: Value = serde_json::from_slice(&conn.get("/api/v1/nodes").await?)?;
        let ready = nodes["items"].as_array().is_some_and(|items| {
            items.iter().any(|n| {
                n["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
        });
        if ready {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no Ready node within {WAIT:?}")
}

/// Deletes the namespace's pods and waits for `n` DELETED events.
async fn delete_all(
    conn: &mut Conn,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>,
    n: usize,
) -> Result<()> {
    delete(conn, &format!("/api/v1/namespaces/{NS}/pods")).await?;
    for _ in 0..n {
        wait_until(events, |s| s.event == "DELETED").await?;
    }
    Ok(())
}

/// A DELETE, its answer read to the end so the connection can carry the next request.
async fn delete(conn: &mut Conn, path: &str) -> Result<()> {
    use http_body_util::BodyExt;
    let resp = conn
        .send(hyper::Method::DELETE, path, None, Bytes::new())
        .await?;
    if !resp.status().is_success() {
        bail!("DELETE {path}: {}", resp.status());
    }
    resp.into_body().collect().await?;
    Ok(())
}

/// The summed RSS of every `stead __sandbox` process (pause processes and container shims).
fn sandbox_processes_rss_kib() -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).nth(1) == Some(b"__sandbox".as_slice()) {
            total += proc_status_kib(pid, "VmRSS").unwrap_or(0);
        }
    }
    Ok(total)
}

fn container() -> Value {
    json!({"name": "app", "image": "busybox:1.28", "command": ["sleep", "3600"]})
}

fn pod(name: &str) -> Bytes {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [container()]},
    });
    Bytes::from(pod.to_string())
}

fn statefulset(replicas: usize) -> Bytes {
    let set = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "set"},
        "spec": {
            "replicas": replicas,
            "serviceName": "set",
            "selector": {"matchLabels": {"app": "set"}},
            "template": {
                "metadata": {"labels": {"app": "set"}},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [container()]},
            },
        },
    });
    Bytes::from(set.to_string())
}
