//! The storage conformance suite against a real etcd (Debian's `etcd-server`, which
//! `scripts/test` installs): a fresh etcd process on loopback per check, since checks assert
//! exact revisions.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stead_storage::Storage;
use stead_storage::etcd::EtcdStore;

/// A running etcd, killed (and its data dir removed) on drop.
struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn fresh() -> (Arc<dyn Storage>, Option<Etcd>) {
    let dir = tempfile::tempdir().unwrap();
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
    let etcd = Etcd { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match EtcdStore::connect(&format!("etcd://127.0.0.1:{client}")).await {
            Ok(store) => return (Arc::new(store), Some(etcd)),
            Err(e) => assert!(Instant::now() < deadline, "etcd never answered: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

stead_storage::storage_conformance_tests!(fresh());
