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
    _dir: tempfile::TempDir,
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
    /// command installs it) or it never answers.
    pub async fn start() -> (EtcdProcess, EtcdStore) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run etcd (apt-get install etcd-server; scripts/test does)");
        let process = EtcdProcess {
            url: format!("etcd://127.0.0.1:{client}"),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match EtcdStore::connect(&process.url).await {
                Ok(store) if store.current_revision().await.is_ok() => return (process, store),
                Ok(_) => {}
                Err(e) => assert!(Instant::now() < deadline, "etcd never answered: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
