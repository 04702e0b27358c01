//! What every node agent shares, the fake one and the kubelet: this machine's facts
//! (`host.rs`), the Node object and its Lease built from them (`object.rs`, pure), the
//! registration and the heartbeats (`heartbeat.rs`), and a work queue of keys with per-key
//! backoff (`queue.rs`).

pub mod heartbeat;
pub mod host;
pub mod object;
pub mod queue;

pub use host::{HostFacts, default_node_name};
pub use object::NodeProfile;
