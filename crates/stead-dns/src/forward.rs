//! Relaying questions outside the cluster domain to the upstream resolver, over the protocol the
//! client used, within one deadline. Any failure (timeout, refused, garbage) is the caller's
//! SERVFAIL; nothing here retries or waits longer than the deadline.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Why a forwarded question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("upstream {0} did not answer in time")]
    Timeout(SocketAddr),
    #[error("upstream {upstream}: {source}")]
    Io {
        upstream: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {0} sent an undecodable answer")]
    Decode(SocketAddr),
}

/// Sends the raw `request` to `upstream` over UDP (or TCP when `tcp`) and returns its answer.
pub async fn forward(
    upstream: SocketAddr,
    request: &[u8],
    tcp: bool,
    deadline: Duration,
) -> Result<Message, ForwardError> {
    let exchange = async {
        let bytes = match tcp {
            false => exchange_udp(upstream, request).await,
            true => exchange_tcp(upstream, request).await,
        }
        .map_err(|source| ForwardError::Io { upstream, source })?;
        Message::from_vec(&bytes).map_err(|_| ForwardError::Decode(upstream))
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| ForwardError::Timeout(upstream))?
}

async fn exchange_udp(upstream: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(request).await?;
    let id = request.get(..2);
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // A connected socket only receives from `upstream`; skip stale answers to other ids.
        if buf.get(..2) == id && n >= 12 {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(upstream: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(request.len()).map_err(std::io::Error::other)?;
    let mut framed = Vec::with_capacity(request.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(request);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// The first `nameserver` of a resolv.conf, with port 53: the default upstream. `None` when the
/// file is missing or names no usable server.
pub fn upstream_from_resolv_conf(path: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("nameserver"), Some(addr)) => {
                // Strip an IPv6 zone (`fe80::1%eth0`): tokio cannot route by it anyway.
                let addr = addr.split('%').next()?;
                Some(SocketAddr::new(addr.parse().ok()?, 53))
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<SocketAddr> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, text).expect("write");
        upstream_from_resolv_conf(&path)
    }

    #[test]
    fn the_first_nameserver_of_resolv_conf_is_the_upstream() {
        let text =
            "# generated\nsearch example.com\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n";
        assert_eq!(parse(text), Some("192.0.2.53:53".parse().unwrap()));
        assert_eq!(
            parse("nameserver fe80::1%eth0\n"),
            Some("[fe80::1]:53".parse().unwrap())
        );
    }

    #[test]
    fn resolv_conf_without_a_usable_nameserver_means_no_upstream() {
        assert_eq!(parse("search example.com\nnameserver not-an-ip\n"), None);
        assert_eq!(
            upstream_from_resolv_conf(Path::new("/nonexistent/resolv.conf")),
            None
        );
    }
}
