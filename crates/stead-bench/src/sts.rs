//! Benchmark 6: StatefulSets on the fake node (`stead server --runtime fake`, issue 3). Each
//! scale-up runs on a fresh server and is measured from outside with two watches opened before
//! the set is created (its pods, and the set itself), so every time is an arrival on a watch:
//!
//! - a Parallel set 0 → N (1 000) with one PersistentVolumeClaim per pod (a class nobody
//!   provisions, so the claims stay Pending, which the controller does not wait for): time until
//!   all N pods are Ready on the pod watch, and until the set's `status.readyReplicas` says so;
//! - an OrderedReady set 0 → M (100) without claims: the same times, plus the *reaction time* of
//!   every step, from the event showing pod n Ready to the ADDED event of pod n+1 (and the
//!   number of store revisions in between);
//! - K sets of one replica, one after another: time from just before the set's POST to the
//!   ADDED event of its pod 0;
//! - per pod, its ADDED → its Ready event: the fake node's share (binding + status write);
//! - API requests per pod: `apiserver_request_total` from `/metrics` before the set's POST and
//!   after the scale-up settled, by verb, minus the benchmark's own requests, over N.
//!
//! Every wait is bounded; a run that does not finish in time fails the benchmark.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use rustls::ClientConfig;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::http::{self, Conn};
use crate::server::{Server, cpu_time};
use crate::stats::Summary;
use crate::tls;

/// Longest a scale-up may take before the benchmark gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Pause after a scale-up before the request counters are read again, so trailing status
/// writes are counted.
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Counts {
    /// Replicas of the Parallel set (0: skip).
    pub parallel: usize,
    /// Replicas of the OrderedReady set (0: skip).
    pub ordered: usize,
    /// One-replica sets timed from POST to pod 0 (0: skip).
    pub first_pod: usize,
    /// `--store` of the servers (`embedded`, or `etcd://...`: give each run a fresh etcd, and run
    /// the Parallel and OrderedReady sets in separate runs, since every server of a run shares it).
    pub store: String,
}

/// One scale-up from 0.
pub struct ScaleUp {
    pub policy: &'static str,
    pub replicas: usize,
    pub claims: bool,
    /// From just before the set's POST.
    pub first_created: Duration,
    pub all_created: Duration,
    pub all_ready: Duration,
    /// The set's status reporting every replica ready.
    pub status_ready: Duration,
    /// Per pod, its ADDED event → its first Ready event: the fake node's binding and status
    /// write, with the watch deliveries in between.
    pub node_latency: Summary,
    /// Requests by verb (HTTP method) during the scale-up, without the benchmark's own.
    pub requests: Vec<(String, u64)>,
    /// Server CPU time over the scale-up (user + system, 10 ms resolution).
    pub server_cpu: Duration,
}

impl ScaleUp {
    pub fn requests_total(&self) -> u64 {
        self.requests.iter().map(|(_, n)| n).sum()
    }
}

pub struct StsResult {
    pub parallel: Option<ScaleUp>,
    pub ordered: Option<ScaleUp>,
    /// Pod n Ready → pod n+1 ADDED, over the OrderedReady run.
    pub reaction: Option<Summary>,
    /// Store revisions between those two events: (median, max).
    pub reaction_revisions: Option<(u64, u64)>,
    /// POST of a one-replica set → its pod 0 ADDED.
    pub first_pod: Option<Summary>,
}

pub async fn run(stead: &Path, counts: &Counts) -> Result<StsResult> {
    let mut result = StsResult {
        parallel: None,
        ordered: None,
        reaction: None,
        reaction_revisions: None,
        first_pod: None,
    };
    if counts.parallel > 0 {
        eprintln!("stead-bench: Parallel StatefulSet 0 → {}", counts.parallel);
        let server = FakeServer::start(stead, &counts.store)?;
        let (up, _) = server.scale_up("Parallel", counts.parallel, true).await?;
        result.parallel = Some(up);
    }
    if counts.ordered > 0 || counts.first_pod > 0 {
        let server = FakeServer::start(stead, &counts.store)?;
        if counts.ordered > 0 {
            eprintln!(
                "stead-bench: OrderedReady StatefulSet 0 → {}",
                counts.ordered
            );
            let (up, pods) = server
                .scale_up("OrderedReady", counts.ordered, false)
                .await?;
            let (reaction, revisions) = reactions(&pods, set_name("OrderedReady"), counts.ordered)?;
            result.ordered = Some(up);
            result.reaction = Some(reaction);
            result.reaction_revisions = Some(revisions);
        }
        if counts.first_pod > 0 {
            eprintln!("stead-bench: {} one-replica sets", counts.first_pod);
            result.first_pod = Some(server.first_pods(counts.first_pod).await?);
        }
    }
    Ok(result)
}

/// A fresh `stead server --runtime fake` and a client configuration for it.
struct FakeServer {
    server: Server,
    config: Arc<ClientConfig>,
    _dir: tempfile::TempDir,
}

impl FakeServer {
    fn start(stead: &Path, store: &str) -> Result<FakeServer> {
        let dir = tempfile::Builder::new()
            .prefix("stead-bench-sts-")
            .tempdir()
            .context("temp dir")?;
        let server = Server::start_with(
            stead,
            dir.path(),
            Duration::from_secs(20),
            &[
                "--runtime",
                "fake",
                "--node-name",
                "bench-node",
                "--store",
                store,
            ],
        )?;
        let config = tls::admin(&server.kubeconfig)?;
        Ok(FakeServer {
            server,
            config,
            _dir: dir,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Creates a set of `replicas` in a namespace of its own and waits until every pod is Ready
    /// and the set's status says so. Returns the measures and the first ADDED and first Ready
    /// event of every pod.
    async fn scale_up(
        &self,
        policy: &'static str,
        replicas: usize,
        claims: bool,
    ) -> Result<(ScaleUp, PodTimes)> {
        let name = set_name(policy);
        let ns = format!("bench-{name}");
        let mut conn = http::connect(self.addr(), self.config.clone()).await?;
        create_namespace(&mut conn, &ns).await?;
        let (mut events, watches) = self.watch(&mut conn, &ns, true).await?;

        let before = metrics(&mut conn).await?;
        let pid = self.server.pid().to_string();
        let cpu_before = cpu_time(&pid)?;
        let t0 = Instant::now();
        conn.create(
            &format!("/apis/apps/v1/namespaces/{ns}/statefulsets"),
            statefulset(name, replicas, policy, claims),
        )
        .await?;

        let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
        let mut pods = PodTimes::default();
        let mut status_ready = None;
        let mut all_ready = None;
        while status_ready.is_none() || all_ready.is_none() {
            let seen = match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(seen)) => seen,
                Ok(None) => bail!("{policy}: the watches ended"),
                Err(_) => bail!(
                    "{policy}: {} of {replicas} pods Ready after {RUN_TIMEOUT:?}",
                    pods.ready.len()
                ),
            };
            match seen.kind {
                Kind::Set => {
                    if seen.ready_replicas == replicas as i64 && status_ready.is_none() {
                        status_ready = Some(seen.at - t0);
                    }
                }
                Kind::Pod => {
                    pods.observe(&seen);
                    if pods.ready.len() == replicas && all_ready.is_none() {
                        all_ready = Some(seen.at - t0);
                    }
                }
            }
        }
        tokio::time::sleep(SETTLE).await;
        let after = metrics(&mut conn).await?;
        let server_cpu = cpu_time(&pid)?.saturating_sub(cpu_before);
        for w in watches {
            w.abort();
        }
        // Ours in between: the set's POST and the second `/metrics` GET.
        let requests = subtract(&after, &before, &[("POST", 1), ("GET", 1)]);
        let first_created = pods.added.values().map(|e| e.at).min().context("no pod")? - t0;
        let all_created = pods.added.values().map(|e| e.at).max().context("no pod")? - t0;
        let node_latency: Vec<Duration> = pods
            .added
            .iter()
            .filter_map(|(name, added)| Some(pods.ready.get(name)?.at - added.at))
            .collect();
        let up = ScaleUp {
            policy,
            replicas,
            claims,
            first_created,
            all_created,
            all_ready: all_ready.unwrap_or_default(),
            status_ready: status_ready.unwrap_or_default(),
            node_latency: Summary::of(&node_latency, Duration::ZERO),
            requests,
            server_cpu,
        };
        Ok((up, pods))
    }

    /// `n` one-replica sets, one after another, each timed from just before its POST to the
    /// ADDED event of its pod 0; the next starts once that pod is Ready.
    async fn first_pods(&self, n: usize) -> Result<Summary> {
        let ns = "bench-first";
        let mut conn = http::connect(self.addr(), self.config.clone()).await?;
        create_namespace(&mut conn, ns).await?;
        let (mut events, watches) = self.watch(&mut conn, ns, false).await?;
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let set = format!("first-{i}");
            let pod = format!("{set}-0");
            let t0 = Instant::now();
            conn.create(
                &format!("/apis/apps/v1/namespaces/{ns}/statefulsets"),
                statefulset(&set, 1, "OrderedReady", false),
            )
            .await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let mut added = None;
            loop {
                let seen = match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(seen)) => seen,
                    Ok(None) => bail!("first pods: the watch ended"),
                    Err(_) => bail!("first pods: {pod} not Ready after 30 s"),
                };
                if seen.name != pod {
                    continue;
                }
                if seen.event == "ADDED" && added.is_none() {
                    added = Some(seen.at - t0);
                }
                if seen.ready {
                    break;
                }
            }
            samples.push(added.context("pod Ready without an ADDED event")?);
        }
        for w in watches {
            w.abort();
        }
        Ok(Summary::of(&samples, Duration::ZERO))
    }

    /// Opens a pod watch (and a StatefulSet watch if `sets`) in `ns` from its current revision.
    async fn watch(
        &self,
        conn: &mut Conn,
        ns: &str,
        sets: bool,
    ) -> Result<(
        mpsc::UnboundedReceiver<Seen>,
        Vec<tokio::task::JoinHandle<()>>,
    )> {
        let pods = format!("/api/v1/namespaces/{ns}/pods");
        let list: Value = serde_json::from_slice(&conn.get(&format!("{pods}?limit=1")).await?)
            .context("LIST body")?;
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .context("LIST without metadata.resourceVersion")?
            .to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = vec![
            open_watch(
                self.addr(),
                self.config.clone(),
                format!("{pods}?watch=true&resourceVersion={rv}"),
                Kind::Pod,
                tx.clone(),
            )
            .await?,
        ];
        if sets {
            tasks.push(
                open_watch(
                    self.addr(),
                    self.config.clone(),
                    format!(
                        "/apis/apps/v1/namespaces/{ns}/statefulsets?watch=true&resourceVersion={rv}"
                    ),
                    Kind::Set,
                    tx,
                )
                .await?,
            );
        }
        Ok((rx, tasks))
    }
}

/// The first ADDED and the first Ready event of every pod.
#[derive(Default)]
struct PodTimes {
    added: HashMap<String, Stamp>,
    ready: HashMap<String, Stamp>,
}

#[derive(Clone, Copy)]
struct Stamp {
    at: Instant,
    revision: u64,
}

impl PodTimes {
    fn observe(&mut self, seen: &Seen) {
        let stamp = Stamp {
            at: seen.at,
            revision: seen.revision,
        };
        if seen.event == "ADDED" {
            self.added.entry(seen.name.clone()).or_insert(stamp);
        }
        if seen.ready {
            self.ready.entry(seen.name.clone()).or_insert(stamp);
        }
    }
}

/// Pod n Ready → pod n+1 ADDED for every step of an ordered scale-up of set `set`: latencies,
/// and the (median, max) store revisions between the two events.
fn reactions(pods: &PodTimes, set: &str, replicas: usize) -> Result<(Summary, (u64, u64))> {
    let mut latency = Vec::with_capacity(replicas);
    let mut revisions = Vec::with_capacity(replicas);
    for n in 0..replicas.saturating_sub(1) {
        let ready = pods
            .ready
            .get(&format!("{set}-{n}"))
            .with_context(|| format!("{set}-{n} never Ready"))?;
        let next = pods
            .added
            .get(&format!("{set}-{}", n + 1))
            .with_context(|| format!("{set}-{} never ADDED", n + 1))?;
        if next.at < ready.at {
            bail!("{set}-{} existed before {set}-{n} was Ready", n + 1);
        }
        latency.push(next.at - ready.at);
        revisions.push(next.revision.saturating_sub(ready.revision));
    }
    if latency.is_empty() {
        bail!("an ordered scale-up needs at least 2 replicas to time a step");
    }
    revisions.sort_unstable();
    let median = revisions[(revisions.len() - 1) / 2];
    let max = revisions.last().copied().unwrap_or(0);
    Ok((Summary::of(&latency, Duration::ZERO), (median, max)))
}

/// The set (and namespace suffix) of a scale-up run.
fn set_name(policy: &str) -> &'static str {
    if policy == "Parallel" {
        "parallel"
    } else {
        "ordered"
    }
}

fn statefulset(name: &str, replicas: usize, policy: &str, claims: bool) -> Bytes {
    let mut set = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "podManagementPolicy": policy,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    });
    if claims {
        set["spec"]["volumeClaimTemplates"] = json!([{
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "bench-unprovisioned",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }]);
    }
    Bytes::from(set.to_string())
}

pub(crate) async fn create_namespace(conn: &mut Conn, ns: &str) -> Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    conn.create("/api/v1/namespaces", Bytes::from(body.to_string()))
        .await?;
    Ok(())
}

/// `apiserver_request_total` by verb, from `/metrics`.
async fn metrics(conn: &mut Conn) -> Result<HashMap<String, u64>> {
    let body = conn.get("/metrics").await?;
    Ok(parse_metrics(&String::from_utf8_lossy(&body)))
}

fn parse_metrics(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("apiserver_request_total{verb=\"")?;
            let (verb, rest) = rest.split_once("\"}")?;
            Some((verb.to_string(), rest.trim().parse().ok()?))
        })
        .collect()
}

/// `after - before` by verb, minus `ours`; verbs with no requests are left out.
fn subtract(
    after: &HashMap<String, u64>,
    before: &HashMap<String, u64>,
    ours: &[(&str, u64)],
) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = after
        .iter()
        .map(|(verb, n)| {
            let own = ours.iter().find(|(v, _)| v == verb).map_or(0, |(_, k)| *k);
            let delta = n
                .saturating_sub(before.get(verb).copied().unwrap_or(0))
                .saturating_sub(own);
            (verb.clone(), delta)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pod,
    Set,
}

/// One watch event as it arrived.
pub(crate) struct Seen {
    pub at: Instant,
    pub kind: Kind,
    pub event: String,
    pub name: String,
    pub revision: u64,
    /// A pod's Ready condition is True.
    pub ready: bool,
    /// A set's `status.readyReplicas`.
    pub ready_replicas: i64,
}

fn parse_event(line: &[u8], kind: Kind, at: Instant) -> Option<Seen> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let obj = &v["object"];
    let ready = obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    Some(Seen {
        at,
        kind,
        event: v["type"].as_str()?.to_string(),
        name: obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
        revision: obj["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
        ready,
        ready_replicas: obj["status"]["readyReplicas"].as_i64().unwrap_or(0),
    })
}

/// Opens one watch and reports each parsed event (stamped with the arrival of the chunk that
/// completed it).
pub(crate) async fn open_watch(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: String,
    kind: Kind,
    tx: mpsc::UnboundedSender<Seen>,
) -> Result<tokio::task::JoinHandle<()>> {
    http::watch_lines(addr, config, &path, move |line, at| {
        match parse_event(line, kind, at) {
            Some(seen) => tx.send(seen).is_ok(),
            None => true,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_counters_are_read_by_verb_and_our_own_subtracted() {
        let before = parse_metrics(
            "# TYPE apiserver_request_total counter\n\
             apiserver_request_total{verb=\"GET\"} 10\n\
             apiserver_request_total{verb=\"POST\"} 3\n",
        );
        let after = parse_metrics(
            "apiserver_request_total{verb=\"GET\"} 12\n\
             apiserver_request_total{verb=\"POST\"} 2004\n\
             apiserver_request_total{verb=\"PATCH\"} 1000\n",
        );
        assert_eq!(
            subtract(&after, &before, &[("POST", 1), ("GET", 1)]),
            [
                ("POST".to_string(), 2000),
                ("PATCH".to_string(), 1000),
                ("GET".to_string(), 1)
            ]
        );
    }

    #[test]
    fn a_watch_line_gives_name_revision_and_readiness() {
        let line = br#"{"type":"MODIFIED","object":{"metadata":{"name":"web-0","resourceVersion":"42"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}}"#;
        let seen = parse_event(line, Kind::Pod, Instant::now()).unwrap();
        assert_eq!(
            (
                seen.event.as_str(),
                seen.name.as_str(),
                seen.revision,
                seen.ready
            ),
            ("MODIFIED", "web-0", 42, true)
        );
    }
}
