//! The `kubernetes` Service's way to the API server. Its endpoint is the API server's own
//! address, usually the host's loopback, which no NAT rule in the node namespace can reach; so
//! the agent (whose sockets live in the host namespace) listens on the Service address inside
//! the node namespace and copies bytes to the API server: a userspace proxy for this one
//! Service, like kube-proxy's old userspace mode. TLS passes through untouched.

use std::future::Future;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

use crate::sandbox::SandboxRuntime;

/// Relays connections to `listen` (added to the node namespace's loopback) to `upstream` until
/// `shutdown`. Errors binding are returned at once; per-connection errors end that connection
/// only.
pub async fn run_relay(
    runtime: Arc<SandboxRuntime>,
    listen: SocketAddrV4,
    upstream: SocketAddr,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let rt = runtime.clone();
    let std_listener = tokio::task::spawn_blocking(move || {
        rt.add_node_address(*listen.ip())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let l = rt.bind_tcp_in_node_netns(SocketAddr::V4(listen))?;
        l.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(l)
    })
    .await
    .map_err(std::io::Error::other)??;
    let listener = TcpListener::from_std(std_listener)?;
    let accept = async {
        loop {
            let (mut inbound, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "kubernetes service relay: accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                match TcpStream::connect(upstream).await {
                    Ok(mut out) => {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %upstream, "kubernetes service relay: connect")
                    }
                }
            });
        }
    };
    tokio::select! {
        () = shutdown => {}
        () = accept => {}
    }
    Ok(())
}
