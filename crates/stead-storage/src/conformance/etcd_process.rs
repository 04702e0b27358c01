//! A throw-away etcd for tests: Debian's `etcd` binary (package `etcd-server`) on loopback
//! ports with its data in a temp dir, killed when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Storage;
use crate::etcd::EtcdStore;

/// A running etcd member; `url` is what `--store` takes.
pub struct EtcdProcess {
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl EtcdProcess {
    /// Starts etcd and waits until it answers; panics if the binary is missing (the test
    /// command installs it) or it never answers. An etcd that exits at once (a port taken
    /// between our probe and its bind) is started again on other ports.
    pub async fn start() -> (EtcdProcess, EtcdStore) {
        const ATTEMPTS: usize = 3;
        let mut last_log = String::new();
        for _ in 0..ATTEMPTS {
            let mut process = Self::spawn();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(store) = EtcdStore::connect(&process.url).await
                    && store.current_revision().await.is_ok()
                {
                    return (process, store);
                }
                if process.child.try_wait().ok().flatten().is_some() {
                    last_log = process.log();
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd at {} never answered; its log:\n{}",
                    process.url,
                    process.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("etcd exited at once {ATTEMPTS} times; its last log:\n{last_log}");
    }

    fn spawn() -> EtcdProcess {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log file");
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run etcd (apt-get install etcd-server; scripts/test does)");
        EtcdProcess {
            url: format!("etcd://127.0.0.1:{client}"),
            child,
            dir,
        }
    }

    /// The last lines etcd wrote to its log.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}
