//! A minimal DNS client for tests, benchmarks and health checks: one question, one answer, over
//! UDP or TCP, with a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::forward::{ForwardError, forward};

/// Which transport a probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Encodes a recursive query for `name`/`qtype` with `id`; with `edns` it advertises a 1232-byte
/// UDP payload, like current resolvers.
pub fn encode_query(id: u16, name: &Name, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.set_edns(e);
    }
    msg.to_vec().unwrap_or_default()
}

/// Asks `server` one question and returns its answer (any response code).
pub async fn query(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    transport: Transport,
    deadline: Duration,
) -> Result<Message, ProbeError> {
    let name = Name::from_ascii(name).map_err(|_| ProbeError::Name(name.to_string()))?;
    let id = rand_id();
    let request = encode_query(id, &name, qtype, false);
    Ok(forward(server, &request, transport == Transport::Tcp, deadline).await?)
}

/// Why a probe got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("invalid name {0:?}")]
    Name(String),
    #[error(transparent)]
    Exchange(#[from] ForwardError),
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::Instant::now()) & 0xffff) as u16
}
