//! Benchmark 5: watch fan-out. N watches on ConfigMaps in `default`, each on its own HTTP/1.1 TLS
//! connection (as client-go does), all from the current resourceVersion; then one ConfigMap is
//! created per round and every watcher's delivery latency is measured from just before the POST
//! is sent to the arrival of the chunk that completes the event line (the line's object name is
//! checked after the timestamp is taken). Round 0 is a warm-up and is not counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use rustls::ClientConfig;
use tokio::sync::mpsc;

use crate::http;
use crate::requests::configmap;
use crate::server::{cpu_time, proc_status_kib};
use crate::stats::Summary;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const OPEN_PARALLEL: usize = 32;
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

pub struct WatchResult {
    pub watchers: usize,
    pub open_wall: Duration,
    /// Delivery latency over every watcher of every counted round.
    pub delivery: Summary,
    /// Latency of the creating POST itself.
    pub write: Summary,
    /// Deliveries that did not arrive within the round timeout.
    pub missed: usize,
    /// CPU time per counted write: the server's, and this benchmark's (the 1 000 clients).
    pub server_cpu_per_write: Duration,
    pub client_cpu_per_write: Duration,
    /// Server RSS (KiB) with every watch open, after the last round.
    pub rss_kib: u64,
}

/// An event line as it arrived at one watcher.
struct Arrival {
    at: Instant,
    name: String,
}

pub async fn run(
    server_pid: u32,
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    watchers: usize,
    writes: usize,
) -> Result<WatchResult> {
    let mut conn = http::connect(addr, config.clone()).await?;
    let list = conn.get(&format!("{CONFIGMAPS}?limit=1")).await?;
    let list: serde_json::Value = serde_json::from_slice(&list).context("LIST body")?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("LIST without metadata.resourceVersion")?
        .to_string();

    let (tx, mut rx) = mpsc::unbounded_channel::<Arrival>();
    let open_start = Instant::now();
    let path = format!("{CONFIGMAPS}?watch=true&resourceVersion={rv}");
    let tasks: Vec<tokio::task::JoinHandle<()>> = futures::stream::iter(0..watchers)
        .map(|_| open_watch(addr, config.clone(), path.clone(), tx.clone()))
        .buffer_unordered(OPEN_PARALLEL)
        .try_collect()
        .await?;
    let open_wall = open_start.elapsed();
    drop(tx);

    let mut delivery = Vec::with_capacity(watchers * writes);
    let mut write = Vec::with_capacity(writes);
    let mut missed = 0;
    let server_pid = server_pid.to_string();
    let mut cpu_before = (Duration::ZERO, Duration::ZERO);
    for round in 0..=writes {
        if round == 1 {
            cpu_before = (cpu_time(&server_pid)?, cpu_time("self")?);
        }
        let name = format!("watch-{round}");
        let t0 = Instant::now();
        conn.create(CONFIGMAPS, configmap(&name)).await?;
        let wrote = t0.elapsed();
        let deadline = tokio::time::Instant::now() + ROUND_TIMEOUT;
        let mut got = Vec::with_capacity(watchers);
        while got.len() < watchers {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(a)) if a.name == name => got.push(a.at.duration_since(t0)),
                Ok(Some(a)) => bail!("watcher saw {:?} while waiting for {name:?}", a.name),
                Ok(None) => bail!("every watch stream ended"),
                Err(_) => break,
            }
        }
        if round > 0 {
            missed += watchers - got.len();
            delivery.extend(got);
            write.push(wrote);
        }
    }
    let per_write =
        |now: Duration, before: Duration| now.saturating_sub(before) / writes.max(1) as u32;
    let server_cpu_per_write = per_write(cpu_time(&server_pid)?, cpu_before.0);
    let client_cpu_per_write = per_write(cpu_time("self")?, cpu_before.1);
    let rss_kib = proc_status_kib(server_pid.parse()?, "VmRSS")?;
    for t in tasks {
        t.abort();
    }
    if delivery.is_empty() {
        bail!("no watch event arrived");
    }
    Ok(WatchResult {
        watchers,
        open_wall,
        delivery: Summary::of(&delivery, Duration::ZERO),
        write: Summary::of(&write, Duration::ZERO),
        missed,
        server_cpu_per_write,
        client_cpu_per_write,
        rss_kib,
    })
}

/// Opens one watch and reports the arrival of each event line with its object's name.
async fn open_watch(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: String,
    tx: mpsc::UnboundedSender<Arrival>,
) -> Result<tokio::task::JoinHandle<()>> {
    http::watch_lines(addr, config, &path, move |line, at| {
        let name = object_name(line).unwrap_or_default();
        tx.send(Arrival { at, name }).is_ok()
    })
    .await
}

/// The first `"name":"…"` of an event line: the object's own name for ConfigMaps (metadata comes
/// first in what stead writes and it holds no owner references here). A byte search, so that the
/// 1 000 clients cost as little CPU as possible.
fn object_name(line: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"name\":\"";
    let start = line.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = line[start..].iter().position(|&b| b == b'"')?;
    String::from_utf8(line[start..start + len].to_vec()).ok()
}
