//! Benchmark 4: request latency and throughput over HTTPS, authenticated with the admin client
//! certificate, in the `default` namespace of a fresh server.
//!
//! Sequential runs use ONE keep-alive connection and time each request from send to the last body
//! byte (client-side TLS and HTTP included, JSON bodies not parsed): GET of one ConfigMap, POST of
//! new ConfigMaps, merge-PATCH of one ConfigMap's label (a new value each time, so every PATCH is a
//! real durable write), LIST of 100 pods and of 10 000 pods. Concurrent runs open N connections
//! first, then every connection POSTs its share of new ConfigMaps back to back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use rustls::ClientConfig;
use tokio::sync::Barrier;

use crate::http::{self, Conn, MERGE_PATCH};
use crate::server::proc_status_kib;
use crate::stats::{Summary, mib};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";
const WARMUP: usize = 100;

/// How many requests each part makes.
#[derive(Debug, Clone)]
pub struct Counts {
    pub gets: usize,
    pub posts: usize,
    pub patches: usize,
    pub list_small: usize,
    pub list_large: usize,
    /// Pods in the namespace for the large LIST (the small LIST always sees 100).
    pub pods: usize,
    /// Connection counts for the concurrent POST runs.
    pub concurrency: Vec<usize>,
    /// POSTs per concurrent run (split evenly across its connections).
    pub concurrent_posts: usize,
}

/// One measured row: a label and its latency summary.
pub type Row = (String, Summary);

/// What the request benchmarks measured: latency rows and server RSS (KiB) at named points.
pub struct Measured {
    pub rows: Vec<Row>,
    pub memory: Vec<(String, u64)>,
}

pub fn configmap(name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"key":"value"}}}}"#
    ))
}

fn pod(i: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p-{i}"}},"spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}"#
    ))
}

/// Times `n` sequential calls of `op(conn, i)`.
async fn sequential<F>(conn: &mut Conn, n: usize, mut op: F) -> Result<Summary>
where
    F: AsyncFnMut(&mut Conn, usize) -> Result<Bytes>,
{
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        op(conn, i).await?;
        samples.push(t.elapsed());
    }
    Ok(Summary::of(&samples, start.elapsed()))
}

pub async fn run(
    pid: u32,
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    counts: &Counts,
) -> Result<Measured> {
    let mut rows = Vec::new();
    let mut memory = Vec::new();
    let mut note = |what: String| -> Result<()> {
        memory.push((what, proc_status_kib(pid, "VmRSS")?));
        Ok(())
    };
    let mut conn = http::connect(addr, config.clone()).await?;

    conn.create(CONFIGMAPS, configmap("bench-get")).await?;
    let one = format!("{CONFIGMAPS}/bench-get");
    for _ in 0..WARMUP {
        conn.get(&one).await?;
    }
    let s = sequential(&mut conn, counts.gets, async |c, _| c.get(&one).await).await?;
    rows.push(("GET configmap (1 conn)".into(), s));

    let s = sequential(&mut conn, counts.posts, async |c, i| {
        c.create(CONFIGMAPS, configmap(&format!("seq-{i}"))).await
    })
    .await?;
    rows.push(("POST configmap (1 conn)".into(), s));

    let s = sequential(&mut conn, counts.patches, async |c, i| {
        let body = format!(r#"{{"metadata":{{"labels":{{"n":"{i}"}}}}}}"#);
        c.call(
            Method::PATCH,
            &one,
            Some(MERGE_PATCH),
            Bytes::from(body),
            StatusCode::OK,
        )
        .await
    })
    .await?;
    rows.push(("PATCH configmap label, merge (1 conn)".into(), s));

    for &conns in &counts.concurrency {
        let s = concurrent(addr, &config, conns, counts.concurrent_posts, move |i| {
            (CONFIGMAPS.to_string(), configmap(&format!("c{conns}-{i}")))
        })
        .await?;
        rows.push((format!("POST configmap ({conns} conns)"), s));
    }

    let small = counts.pods.min(100);
    let s = sequential(&mut conn, small, async |c, i| c.create(PODS, pod(i)).await).await?;
    rows.push(("POST pod (1 conn)".into(), s));
    let bytes = expect_items(&mut conn, PODS, small).await?;
    let s = sequential(&mut conn, counts.list_small, async |c, _| c.get(PODS).await).await?;
    rows.push((format!("LIST {small} pods, {} (1 conn)", mib(bytes)), s));

    if counts.pods > small {
        eprintln!("stead-bench: creating {} more pods", counts.pods - small);
        let first = small;
        let rest = counts.pods - small;
        let s = concurrent(addr, &config, 16, rest, move |i| {
            (PODS.to_string(), pod(first + i))
        })
        .await?;
        rows.push(("POST pod (16 conns, bulk load)".into(), s));
        note(format!("after creating {} pods", counts.pods))?;
        let bytes = expect_items(&mut conn, PODS, counts.pods).await?;
        let s = sequential(&mut conn, counts.list_large, async |c, _| c.get(PODS).await).await?;
        rows.push((
            format!("LIST {} pods, {} (1 conn)", counts.pods, mib(bytes)),
            s,
        ));
        note(format!(
            "after {} LISTs of {} pods",
            counts.list_large + 1,
            counts.pods
        ))?;
        // Diagnostic: the same read and decode with nothing to encode or send.
        let none = format!("{PODS}?labelSelector=bench%3Dnone");
        let s = sequential(&mut conn, counts.list_large.min(10), async |c, _| {
            c.get(&none).await
        })
        .await?;
        rows.push((
            format!(
                "LIST {} pods, labelSelector matching none (1 conn)",
                counts.pods
            ),
            s,
        ));
    }
    Ok(Measured { rows, memory })
}

/// The floor under any durable write here: `write` + `fdatasync` of 2 KiB appended to a file in
/// `dir` (the file system the server's data dir is on), `n` times.
pub fn fdatasync_floor(dir: &std::path::Path, n: usize) -> Result<Summary> {
    use std::io::Write;
    let path = dir.join("fdatasync-probe");
    let mut f = std::fs::File::create(&path).context("create fdatasync probe")?;
    let block = [0x5au8; 2048];
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        samples.push(t.elapsed());
    }
    let wall = start.elapsed();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(Summary::of(&samples, wall))
}

/// Fails unless a LIST at `path` returns exactly `n` items (run once, untimed); returns the body size.
async fn expect_items(conn: &mut Conn, path: &str, n: usize) -> Result<u64> {
    let body = conn.get(path).await?;
    let list: serde_json::Value = serde_json::from_slice(&body).context("LIST body")?;
    let got = list["items"].as_array().map_or(0, Vec::len);
    if got != n {
        bail!("LIST {path}: {got} items, expected {n}");
    }
    Ok(body.len() as u64)
}

/// `total` POSTs spread over `conns` connections (opened before the clock starts). Each request
/// index `i` in `0..total` becomes `make(i) = (path, body)`.
async fn concurrent(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    conns: usize,
    total: usize,
    make: impl Fn(usize) -> (String, Bytes) + Send + Sync + 'static,
) -> Result<Summary> {
    let make = Arc::new(make);
    let barrier = Arc::new(Barrier::new(conns + 1));
    let mut tasks = Vec::with_capacity(conns);
    for k in 0..conns {
        let mut conn = http::connect(addr, config.clone()).await?;
        let make = make.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut samples: Vec<Duration> = Vec::new();
            for i in (k..total).step_by(conns) {
                let (path, body) = make(i);
                let t = Instant::now();
                conn.create(&path, body).await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut samples = Vec::with_capacity(total);
    for t in tasks {
        samples.extend(t.await??);
    }
    Ok(Summary::of(&samples, start.elapsed()))
}
