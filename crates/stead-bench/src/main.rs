//! `stead-bench`: benchmarks of a release `stead server` on loopback, printed as a markdown table.
//!
//! Runs, in order: the binary's size; an idle server for `--idle-secs` whose RSS is read at the end
//! (overlapping the next step); start → `/readyz` for first and warm starts ([`startup`]); then on
//! one fresh server the request benchmarks ([`requests`]) and watch fan-out ([`watch`]); then,
//! on servers with the fake node (`--runtime fake`), the StatefulSet benchmarks ([`sts`]).
//! `--scenario api` runs only the first part, `--scenario sts` only the last.
//! See `docs/BENCHMARKS.md` for the method and results.

mod http;
mod pods;
mod requests;
mod server;
mod startup;
mod stats;
mod sts;
mod tls;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use crate::server::Server;
use crate::stats::{Summary, mib, ms};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Everything.
    All,
    /// The API server alone (`--disable-agent`): start-up, memory, requests, watch fan-out.
    Api,
    /// StatefulSets on the fake node.
    Sts,
    /// Pods that really run (sandbox runtime, root); not part of `all`.
    Pods,
}

#[derive(Parser, Clone)]
#[command(
    name = "stead-bench",
    about = "Benchmark a release `stead server` on loopback"
)]
struct Args {
    /// The stead binary to measure (build it with `cargo build --release -p stead`).
    #[arg(long, default_value = "target/release/stead")]
    stead: PathBuf,
    /// Start-ups per kind (first start on a fresh data dir, warm start on the same dir).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// How long the idle server runs before its RSS is read.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
    #[arg(long, default_value_t = 2000)]
    gets: usize,
    #[arg(long, default_value_t = 1000)]
    posts: usize,
    #[arg(long, default_value_t = 1000)]
    patches: usize,
    /// LISTs of the namespace while it holds 100 pods.
    #[arg(long, default_value_t = 200)]
    list_small: usize,
    /// LISTs of the namespace once it holds `--pods` pods.
    #[arg(long, default_value_t = 50)]
    list_large: usize,
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Connection counts of the concurrent POST runs.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    concurrency: Vec<usize>,
    /// POSTs per concurrent run.
    #[arg(long, default_value_t = 4000)]
    concurrent_posts: usize,
    /// Open watches (one connection each).
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Measured writes while the watches are open.
    #[arg(long, default_value_t = 10)]
    watch_writes: usize,
    /// The store of the StatefulSet scenario's servers: `embedded` or `etcd://HOST:PORT`.
    #[arg(long, default_value = "embedded")]
    store: String,
    /// Which benchmarks to run.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Replicas of the Parallel StatefulSet (one PVC each); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    sts_parallel: usize,
    /// Replicas of the OrderedReady StatefulSet; 0 skips it.
    #[arg(long, default_value_t = 100)]
    sts_ordered: usize,
    /// One-replica sets timed from creation to pod 0; 0 skips them.
    #[arg(long, default_value_t = 20)]
    sts_first_pod: usize,
    /// Pods created one after another on the sandbox runtime (`--scenario pods`).
    #[arg(long, default_value_t = 100)]
    pods_sequential: usize,
    /// Replicas of the OrderedReady busybox StatefulSet (`--scenario pods`).
    #[arg(long, default_value_t = 10)]
    pods_ordered: usize,
}

fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let started = Instant::now();
    if args.scenario == Scenario::Pods {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let r = runtime.block_on(pods::run(
            &args.stead,
            args.pods_sequential,
            args.pods_ordered,
        ))?;
        runtime.shutdown_timeout(Duration::from_secs(1));
        print_pods(&r);
        return Ok(());
    }
    if args.scenario != Scenario::Sts {
        api(args.clone(), started)?;
    }
    if args.scenario != Scenario::Api {
        let counts = sts::Counts {
            parallel: args.sts_parallel,
            ordered: args.sts_ordered,
            first_pod: args.sts_first_pod,
            store: args.store.clone(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let result = runtime.block_on(sts::run(&args.stead, &counts))?;
        runtime.shutdown_timeout(Duration::from_secs(1));
        println!();
        print_sts(&result);
        println!();
        println!(
            "Total run time (all benchmarks): {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Benchmarks 1–5: the API server alone.
fn api(mut args: Args, started: Instant) -> Result<()> {
    let size = std::fs::metadata(&args.stead)
        .with_context(|| {
            format!(
                "{}: build it with `cargo build --release -p stead`",
                args.stead.display()
            )
        })?
        .len();

    // Each watch costs one descriptor here and one in the server (which inherits our limit).
    if let Some(limit) = server::open_files_limit() {
        let fit = limit.saturating_sub(256) as usize;
        if args.watchers > fit {
            eprintln!(
                "stead-bench: open-files limit {limit} allows {fit} watches, not {}; raise it with `ulimit -n`",
                args.watchers
            );
            args.watchers = fit;
        }
    }

    // Two idle servers: one on a fresh data dir (its bootstrap writes, so it has done a write),
    // one restarted on an existing data dir (it has served nothing at all).
    eprintln!("stead-bench: idle servers for {} s (RSS)", args.idle_secs);
    let idle_fresh_dir = tempdir("idle-fresh")?;
    let idle_fresh = Server::start(&args.stead, idle_fresh_dir.path(), START)?;
    let idle_warm_dir = tempdir("idle-warm")?;
    drop(Server::start(&args.stead, idle_warm_dir.path(), START)?);
    let idle_warm = Server::start(&args.stead, idle_warm_dir.path(), START)?;
    let idle_since = Instant::now();

    let start = if args.runs > 0 {
        eprintln!(
            "stead-bench: {} first + {} warm starts",
            args.runs, args.runs
        );
        Some(startup::run(&args.stead, args.runs)?)
    } else {
        None
    };

    let idle_wait = Duration::from_secs(args.idle_secs).saturating_sub(idle_since.elapsed());
    std::thread::sleep(idle_wait);
    let idle_rss = (idle_fresh.rss_kib()?, idle_warm.rss_kib()?);
    drop((idle_fresh, idle_warm));

    eprintln!("stead-bench: request benchmarks");
    let load_dir = tempdir("load")?;
    let floor = requests::fdatasync_floor(load_dir.path(), 500)?;
    let load = Server::start(&args.stead, load_dir.path(), START)?;
    let config = tls::admin(&load.kubeconfig)?;
    let counts = requests::Counts {
        gets: args.gets,
        posts: args.posts,
        patches: args.patches,
        list_small: args.list_small,
        list_large: args.list_large,
        pods: args.pods,
        concurrency: args.concurrency.clone(),
        concurrent_posts: args.concurrent_posts,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let measured = runtime.block_on(requests::run(
        load.pid(),
        load.addr,
        config.clone(),
        &counts,
    ))?;
    eprintln!("stead-bench: {} watches", args.watchers);
    let fanout = if args.watchers > 0 && args.watch_writes > 0 {
        Some(runtime.block_on(watch::run(
            load.pid(),
            load.addr,
            config,
            args.watchers,
            args.watch_writes,
        ))?)
    } else {
        None
    };
    let loaded_peak = load.peak_rss_kib()?;
    drop(load);
    runtime.shutdown_timeout(Duration::from_secs(1));

    print_report(&Report {
        args: &args,
        size,
        idle_rss,
        start: start.as_ref(),
        floor,
        measured: &measured,
        fanout: fanout.as_ref(),
        loaded_peak,
        total: started.elapsed(),
    });
    Ok(())
}

const START: Duration = Duration::from_secs(20);

fn tempdir(what: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("stead-bench-{what}-"))
        .tempdir()
        .context("temp dir")
}

struct Report<'a> {
    args: &'a Args,
    size: u64,
    /// KiB: (fresh data dir, restarted on an existing dir).
    idle_rss: (u64, u64),
    start: Option<&'a startup::StartupResult>,
    floor: Summary,
    measured: &'a requests::Measured,
    fanout: Option<&'a watch::WatchResult>,
    loaded_peak: u64,
    total: Duration,
}

fn verdict(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

fn print_report(r: &Report) {
    let goal_ms = |ms: f64| Duration::from_secs_f64(ms / 1000.0);
    println!("| Measure | Result | Goal | Met |");
    println!("|---|---|---|---|");
    if let Some(s) = r.start {
        for (label, samples) in [
            ("first start, fresh data dir", &s.first),
            ("warm start", &s.warm),
        ] {
            let sum = Summary::of(samples, Duration::ZERO);
            println!(
                "| start → /readyz 200 (HTTPS), {label}, n={} | median {}, min {} | ≤ 40 ms | {} |",
                sum.count,
                ms(sum.p50),
                ms(sum.min),
                verdict(sum.p50 <= goal_ms(40.0)),
            );
        }
    }
    for (label, kib) in [
        ("first start on a fresh data dir", r.idle_rss.0),
        ("restart on an existing data dir", r.idle_rss.1),
    ] {
        let rss = kib * 1024;
        println!(
            "| idle RSS {} s after {label} (`--disable-agent`) | {} | ≤ 20 MiB | {} |",
            r.args.idle_secs,
            mib(rss),
            verdict(rss <= 20 * 1024 * 1024),
        );
    }
    println!(
        "| stripped release binary | {} | ≤ 30 MiB | {} |",
        mib(r.size),
        verdict(r.size <= 30 * 1024 * 1024),
    );
    for (what, kib) in &r.measured.memory {
        println!("| RSS {what} | {} | — | — |", mib(kib * 1024));
    }
    if let Some(w) = r.fanout {
        println!(
            "| RSS with {} watches open | {} | — | — |",
            w.watchers,
            mib(w.rss_kib * 1024)
        );
    }
    println!(
        "| peak RSS of the loaded server | {} | — | — |",
        mib(r.loaded_peak * 1024)
    );
    println!();
    println!("| Request (HTTPS, client cert) | n | p50 | p99 | max | req/s | Goal (p50) | Met |");
    println!("|---|---|---|---|---|---|---|---|");
    let floor = (
        "(disk floor) 2 KiB write + fdatasync, no server".to_string(),
        r.floor,
    );
    for (label, s) in std::iter::once(&floor).chain(&r.measured.rows) {
        let goal = if label.starts_with("GET") {
            Some(0.1)
        } else if label.ends_with("(1 conn)")
            && (label.starts_with("POST configmap") || label.starts_with("PATCH"))
        {
            Some(0.35)
        } else {
            None
        };
        let (goal_text, met) = match goal {
            Some(g) => (
                format!("≤ {g} ms"),
                verdict(s.p50 <= goal_ms(g)).to_string(),
            ),
            None => ("—".to_string(), "—".to_string()),
        };
        println!(
            "| {label} | {} | {} | {} | {} | {:.0} | {goal_text} | {met} |",
            s.count,
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            s.rate(),
        );
    }
    if let Some(w) = r.fanout {
        println!();
        println!("| Watch fan-out | Result |");
        println!("|---|---|");
        println!(
            "| watches open (1 HTTP/1.1 TLS connection each) | {} (opened in {}) |",
            w.watchers,
            ms(w.open_wall)
        );
        println!(
            "| delivery latency over {} deliveries ({} writes) | p50 {}, p99 {}, max {} |",
            w.delivery.count,
            w.write.count,
            ms(w.delivery.p50),
            ms(w.delivery.p99),
            ms(w.delivery.max),
        );
        println!(
            "| the creating POST itself | p50 {}, max {} |",
            ms(w.write.p50),
            ms(w.write.max)
        );
        println!(
            "| CPU per write, server / this client | {} / {} |",
            ms(w.server_cpu_per_write),
            ms(w.client_cpu_per_write)
        );
        println!("| deliveries missing after 30 s | {} |", w.missed);
    }
    println!();
    println!("Total run time: {:.0} s", r.total.as_secs_f64());
}

/// The StatefulSet benchmarks' tables.
fn print_pods(r: &pods::PodsResult) {
    let s = &r.sequential;
    println!("| Pods on the sandbox runtime | Result | Goal | Met |");
    println!("|---|---|---|---|");
    println!(
        "| pod POST → Ready, image present, one at a time, n={} | p50 {}, p99 {}, max {} | p99 ≤ 100 ms | {} |",
        s.count,
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        verdict(s.p99 <= Duration::from_millis(100)),
    );
    println!(
        "| OrderedReady busybox StatefulSet 0 → {}: POST → all Ready | {} | — | — |",
        r.ordered_replicas,
        ms(r.ordered_all_ready),
    );
    println!(
        "| server RSS with {} pods running | {} | — | — |",
        s.count,
        mib(r.server_rss_kib * 1024),
    );
    println!(
        "| per-pod overhead (pause + shim RSS) | {} | — | — |",
        mib(r.per_pod_kib * 1024),
    );
}

fn print_sts(r: &sts::StsResult) {
    let goal_ms = |ms: f64| Duration::from_secs_f64(ms / 1000.0);
    println!(
        "| StatefulSet on the fake node | Pods created | All Ready (pod watch) | Set status ready | Goal | Met |"
    );
    println!("|---|---|---|---|---|---|");
    for (up, goal) in [(&r.parallel, 3000.0), (&r.ordered, 1000.0)] {
        let Some(up) = up else { continue };
        println!(
            "| {} 0 → {}{} | first {}, all {} | {} | {} | ≤ {} | {} |",
            up.policy,
            up.replicas,
            if up.claims { ", 1 PVC each" } else { "" },
            ms(up.first_created),
            ms(up.all_created),
            ms(up.all_ready),
            ms(up.status_ready),
            ms(goal_ms(goal)),
            verdict(up.all_ready <= goal_ms(goal)),
        );
    }
    if let Some(s) = &r.reaction {
        let (median, max) = r.reaction_revisions.unwrap_or_default();
        println!(
            "| OrderedReady step: pod n Ready → pod n+1 ADDED, n={} | p50 {}, p99 {}, max {} (store revisions between: median {median}, max {max}) | | | ≤ 5 ms p50 | {} |",
            s.count,
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            verdict(s.p50 <= goal_ms(5.0)),
        );
    }
    for up in [&r.parallel, &r.ordered].into_iter().flatten() {
        let s = &up.node_latency;
        println!(
            "| fake node, {} run: pod ADDED → pod Ready, n={} | p50 {}, p99 {}, max {} | | | — | — |",
            up.policy,
            s.count,
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
        );
    }
    if let Some(s) = &r.first_pod {
        println!(
            "| set POST → pod 0 ADDED, n={} | p50 {}, p99 {}, max {} | | | ≤ 5 ms p50 | {} |",
            s.count,
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            verdict(s.p50 <= goal_ms(5.0)),
        );
    }
    println!();
    println!(
        "| API requests during the scale-up (all clients but the bench) | Total | Per pod | By verb | Server CPU |"
    );
    println!("|---|---|---|---|---|");
    for up in [&r.parallel, &r.ordered].into_iter().flatten() {
        let total = up.requests_total();
        let verbs: Vec<String> = up
            .requests
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        println!(
            "| {} 0 → {} | {total} | {:.2} | {} | {} |",
            up.policy,
            up.replicas,
            total as f64 / up.replicas as f64,
            verbs.join(", "),
            ms(up.server_cpu),
        );
    }
}
