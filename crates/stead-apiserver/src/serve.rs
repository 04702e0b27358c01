//! The accept loop: TLS handshake, client-certificate identity, HTTP/1.1 with upgrades, and a
//! graceful stop when `shutdown` resolves. A function of (listener, tls, router, shutdown).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::app::{Identity, PeerIdentity};
use crate::tls::identity_from_cert;

/// Serves `router` on `listener` until `shutdown` completes. With `tls = None` it speaks plain
/// HTTP (used by tests that need no TLS).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    let tls = match acceptor.accept(stream).await {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::debug!(error = %e, "tls handshake failed");
                            return;
                        }
                    };
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(|c| identity_from_cert(c.as_ref()))
                        .map(|(user, groups)| Identity { user, groups });
                    serve_connection(TokioIo::new(tls), router, PeerIdentity(identity)).await;
                }
                None => serve_connection(TokioIo::new(stream), router, PeerIdentity(None)).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, router: Router, peer: PeerIdentity)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer.clone());
        req
    });
    let service = TowerToHyperService::new(service);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new());
    if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
