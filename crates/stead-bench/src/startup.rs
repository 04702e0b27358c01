//! Benchmark 1: time from spawning `stead server` to the first `200` from `GET /readyz` over HTTPS.
//!
//! The port is chosen before the spawn, so a blocking probe starts connecting at once: a refused
//! connect is retried after 100 µs; an accepted one does a TLS handshake (any server certificate,
//! since on a first start the CA does not exist yet) and `GET /readyz`. Each round runs a first
//! start on a fresh data dir (CA, certificates, token and store are created) followed by a warm
//! start on that same dir, so slow drift on the machine affects both alike.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::server::{command, free_loopback_addr, stop};
use crate::tls;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const RETRY: Duration = Duration::from_micros(100);

pub struct StartupResult {
    pub first: Vec<Duration>,
    pub warm: Vec<Duration>,
}

pub fn run(stead: &Path, runs: usize) -> Result<StartupResult> {
    let probe = tls::probe()?;
    let mut result = StartupResult {
        first: Vec::with_capacity(runs),
        warm: Vec::with_capacity(runs),
    };
    for _ in 0..runs {
        let dir = tempfile::Builder::new()
            .prefix("stead-bench-start-")
            .tempdir()
            .context("temp dir")?;
        result.first.push(one_start(stead, dir.path(), &probe)?);
        result.warm.push(one_start(stead, dir.path(), &probe)?);
    }
    Ok(result)
}

/// Spawns the server, returns the time until `/readyz` answered 200, then stops it.
fn one_start(stead: &Path, data_dir: &Path, probe: &Arc<ClientConfig>) -> Result<Duration> {
    let addr = free_loopback_addr()?;
    let t0 = Instant::now();
    let mut child = command(stead, data_dir, addr)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawn {}", stead.display()))?;
    let outcome = wait_ready(addr, probe, t0, &mut child);
    stop(&mut child);
    outcome
}

fn wait_ready(
    addr: SocketAddr,
    probe: &Arc<ClientConfig>,
    t0: Instant,
    child: &mut std::process::Child,
) -> Result<Duration> {
    loop {
        if t0.elapsed() > START_TIMEOUT {
            bail!("/readyz not 200 within {START_TIMEOUT:?}");
        }
        match TcpStream::connect(addr) {
            Ok(sock) => {
                if let Ok(true) = readyz(sock, probe) {
                    return Ok(t0.elapsed());
                }
            }
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!("stead server exited before serving: {status}");
                }
            }
        }
        std::thread::sleep(RETRY);
    }
}

/// One HTTPS `GET /readyz` on `sock`; true when the status is 200.
fn readyz(sock: TcpStream, probe: &Arc<ClientConfig>) -> Result<bool> {
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let conn = ClientConnection::new(probe.clone(), tls::loopback_name())?;
    let mut tls = StreamOwned::new(conn, sock);
    tls.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    tls.flush()?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf.starts_with(b"HTTP/1.1 200"))
}
