//! Probes (upstream `prober/worker.go`): startup, readiness, liveness per container. The state
//! machine is pure ([`ProbeState::due`], [`ProbeState::record`], [`ContainerProber::results`]);
//! [`run_probe`] does one exec / HTTP GET / TCP connect through the runtime.
//!
//! Rules: nothing runs before `initialDelaySeconds` after the container started, then every
//! `periodSeconds`; a result flips after `successThreshold` successes / `failureThreshold`
//! failures in a row. Until the startup probe succeeded, readiness and liveness do not run; a
//! container with a readiness probe starts unready, with liveness it starts alive.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::view::ContainerProbes;
use crate::runtime::Runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Liveness => "Liveness",
        }
    }
}

/// One probe's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeState {
    pub kind: ProbeKind,
    /// The current verdict.
    pub ok: bool,
    successes: i32,
    failures: i32,
    last_run: Option<Timestamp>,
}

fn secs(v: Option<i32>, default: i32) -> i64 {
    i64::from(v.unwrap_or(default).max(0))
}

impl ProbeState {
    pub fn new(kind: ProbeKind) -> ProbeState {
        // Liveness starts alive, readiness and startup start failed.
        ProbeState {
            kind,
            ok: kind == ProbeKind::Liveness,
            successes: 0,
            failures: 0,
            last_run: None,
        }
    }

    /// Whether the probe should run at `now` for a container started at `started_at`.
    pub fn due(&self, probe: &Probe, started_at: Timestamp, now: Timestamp) -> bool {
        let now_s = now.as_second();
        if now_s < started_at.as_second() + secs(probe.initial_delay_seconds, 0) {
            return false;
        }
        match self.last_run {
            None => true,
            Some(last) => now_s >= last.as_second() + secs(probe.period_seconds, 10).max(1),
        }
    }

    /// Records one result at `now`; returns true when the verdict flipped.
    pub fn record(&mut self, probe: &Probe, success: bool, now: Timestamp) -> bool {
        self.last_run = Some(now);
        if success {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let before = self.ok;
        if success && self.successes >= probe.success_threshold.unwrap_or(1).max(1) {
            self.ok = true;
        }
        if !success && self.failures >= probe.failure_threshold.unwrap_or(3).max(1) {
            self.ok = false;
        }
        before != self.ok
    }
}

/// The probes of one container (one attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerProber {
    pub startup: Option<ProbeState>,
    pub readiness: Option<ProbeState>,
    pub liveness: Option<ProbeState>,
}

impl ContainerProber {
    pub fn new(c: &Container) -> ContainerProber {
        ContainerProber {
            startup: c
                .startup_probe
                .as_ref()
                .map(|_| ProbeState::new(ProbeKind::Startup)),
            readiness: c
                .readiness_probe
                .as_ref()
                .map(|_| ProbeState::new(ProbeKind::Readiness)),
            liveness: c
                .liveness_probe
                .as_ref()
                .map(|_| ProbeState::new(ProbeKind::Liveness)),
        }
    }

    pub fn started(&self) -> bool {
        self.startup.as_ref().is_none_or(|s| s.ok)
    }

    /// The probes due at `now`, startup first; readiness and liveness only once started.
    pub fn due(&self, c: &Container, started_at: Timestamp, now: Timestamp) -> Vec<ProbeKind> {
        let mut out = vec![];
        if let (Some(s), Some(p)) = (&self.startup, &c.startup_probe)
            && !s.ok
        {
            if s.due(p, started_at, now) {
                out.push(ProbeKind::Startup);
            }
            return out;
        }
        if let (Some(s), Some(p)) = (&self.readiness, &c.readiness_probe)
            && s.due(p, started_at, now)
        {
            out.push(ProbeKind::Readiness);
        }
        if let (Some(s), Some(p)) = (&self.liveness, &c.liveness_probe)
            && s.due(p, started_at, now)
        {
            out.push(ProbeKind::Liveness);
        }
        out
    }

    /// Records a result of probe `kind`; returns true when its verdict flipped.
    pub fn record(
        &mut self,
        c: &Container,
        kind: ProbeKind,
        success: bool,
        now: Timestamp,
    ) -> bool {
        let (state, probe) = match kind {
            ProbeKind::Startup => (&mut self.startup, &c.startup_probe),
            ProbeKind::Readiness => (&mut self.readiness, &c.readiness_probe),
            ProbeKind::Liveness => (&mut self.liveness, &c.liveness_probe),
        };
        match (state, probe) {
            (Some(s), Some(p)) => s.record(p, success, now),
            _ => false,
        }
    }

    pub fn results(&self) -> ContainerProbes {
        let started = self.started();
        ContainerProbes {
            started,
            ready: started && self.readiness.as_ref().is_none_or(|s| s.ok),
            liveness_failed: started && self.liveness.as_ref().is_some_and(|s| !s.ok),
        }
    }
}

/// The probe of `kind` in `c`.
pub fn probe_of(c: &Container, kind: ProbeKind) -> Option<&Probe> {
    match kind {
        ProbeKind::Startup => c.startup_probe.as_ref(),
        ProbeKind::Readiness => c.readiness_probe.as_ref(),
        ProbeKind::Liveness => c.liveness_probe.as_ref(),
    }
}

/// A probe port: a number, or the name of one of the container's ports.
pub fn resolve_port(c: &Container, port: &IntOrString) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .or_else(|| name.parse().ok()),
    }
}

/// The HTTP/1.1 request of an httpGet probe.
pub fn http_request(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") {
        req.push_str(&format!("Host: {host}:{port}\r\n"));
    }
    if !has("user-agent") {
        req.push_str("User-Agent: kube-probe/1.33\r\n");
    }
    if !has("accept") {
        req.push_str("Accept: */*\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    req
}

/// Whether an HTTP response head means success: a status in 200–399.
pub fn http_success(head: &str) -> Result<bool, String> {
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok((200..400).contains(&code)),
        _ => Err(format!("malformed HTTP response: {line:?}")),
    }
}

/// Runs one probe; `Err` carries the failure message for the `Unhealthy` event.
pub async fn run_probe<R: Runtime>(
    runtime: &R,
    sandbox: &str,
    container_id: &str,
    pod_ip: Option<&str>,
    c: &Container,
    probe: &Probe,
) -> Result<(), String> {
    let timeout = Duration::from_secs(secs(probe.timeout_seconds, 1).max(1) as u64);
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match runtime
            .exec_sync(&container_id.to_string(), &cmd, timeout)
            .await
        {
            Ok(o) if o.exit_code == 0 => Ok(()),
            Ok(o) => Err(format!(
                "command {cmd:?} exited with {}: {}",
                o.exit_code,
                String::from_utf8_lossy(&o.stdout).trim()
            )),
            Err(e) => Err(e.to_string()),
        };
    }
    if let Some(t) = &probe.tcp_socket {
        let port = resolve_port(c, &t.port).ok_or("invalid port")?;
        return match tokio::time::timeout(timeout, runtime.connect(&sandbox.to_string(), port))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {}:{port}: {e}", pod_ip.unwrap_or(""))),
            Err(_) => Err(format!(
                "dial tcp {}:{port}: i/o timeout",
                pod_ip.unwrap_or("")
            )),
        };
    }
    if let Some(h) = &probe.http_get {
        let port = resolve_port(c, &h.port).ok_or("invalid port")?;
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect();
        let host = h
            .host
            .clone()
            .or(pod_ip.map(str::to_string))
            .unwrap_or_default();
        let path = h.path.clone().unwrap_or_default();
        let req = http_request(&host, port, &path, &headers);
        let get = async {
            let mut s = runtime
                .connect(&sandbox.to_string(), port)
                .await
                .map_err(|e| e.to_string())?;
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 1024];
            let mut got = 0;
            while got < buf.len() {
                let n = s.read(&mut buf[got..]).await.map_err(|e| e.to_string())?;
                if n == 0 || buf[..got + n].contains(&b'\n') {
                    got += n;
                    break;
                }
                got += n;
            }
            let head = String::from_utf8_lossy(&buf[..got]).into_owned();
            match http_success(&head)? {
                true => Ok(()),
                false => Err(format!(
                    "HTTP probe failed with statuscode: {}",
                    head.split_whitespace().nth(1).unwrap_or("")
                )),
            }
        };
        return match tokio::time::timeout(timeout, get).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "Get \"http://{host}:{port}{path}\": context deadline exceeded"
            )),
        };
    }
    Ok(())
}

#[cfg(test)]
#[path = "probes_tests.rs"]
mod tests;
