//! NodePort allocation for Services of type NodePort (and LoadBalancer, unless
//! `allocateLoadBalancerNodePorts: false`), from upstream's default range 30000–32767.
//!
//! Like the cluster IPs of [`super::service_ip`], each port in use is a key
//! `/stead/nodeports/<port>` created with create-if-absent, holding `namespace/name` of its
//! Service, so two Services can never get the same port. Ports of one Service that differ only
//! in protocol may share a node port, as upstream allows.
//!
//! The registry calls [`reserve`] before writing a Service (create or update), releases what it
//! reserved if the write fails, and after a successful write releases what the old object held
//! and the new one no longer does ([`in_use`]); deletion releases everything.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use serde_json::{Value, json};
use stead_api::{ApiError, FieldError, meta};
use stead_storage::{Storage, StorageError};

/// The node port range (upstream's `--service-node-port-range` default).
pub const RANGE: RangeInclusive<u16> = 30000..=32767;

fn key(port: u16) -> String {
    format!("/stead/nodeports/{port}")
}

/// Whether a Service of this spec gets node ports.
pub fn wanted(svc: &Value) -> bool {
    match svc.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => true,
        Some("LoadBalancer") => {
            svc.pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false)
        }
        _ => false,
    }
}

/// The node ports a stored Service holds.
pub fn in_use(svc: &Value) -> BTreeSet<u16> {
    ports(svc)
        .iter()
        .filter_map(node_port)
        .filter(|n| RANGE.contains(n))
        .collect()
}

fn ports(svc: &Value) -> Vec<Value> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn node_port(port: &Value) -> Option<u16> {
    port.get("nodePort")
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
}

/// Gives every port of `svc` that lacks one a free node port and reserves the ports it names,
/// when its type wants node ports. `old` is the stored Service on update (its ports are already
/// held). Returns the ports newly reserved, for the caller to release if its write fails.
pub async fn reserve(
    store: &dyn Storage,
    svc: &mut Value,
    old: Option<&Value>,
) -> Result<Vec<u16>, ApiError> {
    if !wanted(svc) {
        return Ok(Vec::new());
    }
    let name = meta::name(svc).to_string();
    let owner = format!("{}/{}", meta::namespace(svc), name);
    let held = old.map(in_use).unwrap_or_default();
    let invalid = |field: String, value: u16, why: &str| {
        ApiError::invalid(
            "",
            "Service",
            &name,
            &[FieldError::invalid(field, value, why)],
        )
    };

    // The ports the client named: in range, and not another Service's.
    let mut reserved = Vec::new();
    let mut named: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    let mut result = Ok(());
    for (i, port) in ports(svc).iter().enumerate() {
        let Some(n) = node_port(port) else { continue };
        let field = format!("spec.ports[{i}].nodePort");
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP");
        if !named.entry(n).or_default().insert(protocol.to_string()) {
            result = Err(ApiError::invalid(
                "",
                "Service",
                &name,
                &[FieldError::duplicate(field, n)],
            ));
            break;
        }
        if !RANGE.contains(&n) {
            result = Err(invalid(
                field,
                n,
                &format!(
                    "provided port is not in the valid range. The range of valid ports is {}-{}",
                    RANGE.start(),
                    RANGE.end()
                ),
            ));
            break;
        }
        if held.contains(&n) || reserved.contains(&n) {
            continue;
        }
        match claim(store, n, &owner).await {
            Ok(true) => reserved.push(n),
            Ok(false) => {
                result = Err(invalid(field, n, "provided port is already allocated"));
                break;
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // Then a free port for each port without one.
    if result.is_ok() {
        let missing = ports(svc).iter().filter(|p| node_port(p).is_none()).count();
        let mut fresh = Vec::new();
        for _ in 0..missing {
            match allocate(store, &owner).await {
                Ok(n) => fresh.push(n),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        reserved.extend(&fresh);
        if result.is_ok() {
            let mut fresh = fresh.into_iter();
            if let Some(list) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for port in list.iter_mut().filter(|p| node_port(p).is_none()) {
                    if let (Some(n), Some(map)) = (fresh.next(), port.as_object_mut()) {
                        map.insert("nodePort".into(), json!(n));
                    }
                }
            }
        }
    }
    if let Err(e) = result {
        release(store, reserved).await;
        return Err(e);
    }
    Ok(reserved)
}

/// Takes `port` for `owner`: `false` when another Service holds it.
async fn claim(store: &dyn Storage, port: u16, owner: &str) -> Result<bool, ApiError> {
    match store
        .create(&key(port), bytes::Bytes::from(owner.to_string()))
        .await
    {
        Ok(_) => Ok(true),
        Err(StorageError::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// A free port, walking the range from a random offset.
async fn allocate(store: &dyn Storage, owner: &str) -> Result<u16, ApiError> {
    let size = u32::from(RANGE.end() - RANGE.start()) + 1;
    let start = uuid::Uuid::new_v4().as_u128() as u32 % size;
    for i in 0..size {
        let n = *RANGE.start() + ((start + i) % size) as u16;
        if claim(store, n, owner).await? {
            return Ok(n);
        }
    }
    Err(ApiError::internal("range of valid node ports is full"))
}

/// Frees `ports`.
pub async fn release(store: &dyn Storage, ports: impl IntoIterator<Item = u16>) {
    for port in ports {
        let _ = store.delete(&key(port), None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stead_storage::embedded::EmbeddedStore;

    fn service(name: &str, ty: &str, ports: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"},
               "spec": {"type": ty, "ports": ports}})
    }

    #[tokio::test]
    async fn every_port_gets_a_distinct_node_port_in_the_range() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let mut svc = service(
            "a",
            "NodePort",
            json!([{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]),
        );
        let reserved = reserve(&store, &mut svc, None).await.unwrap();
        let held = in_use(&svc);
        assert_eq!(held.len(), 2);
        assert!(held.iter().all(|n| RANGE.contains(n)));
        assert_eq!(reserved.into_iter().collect::<BTreeSet<_>>(), held);
    }

    #[tokio::test]
    async fn a_taken_or_out_of_range_port_is_refused_and_nothing_is_kept() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let mut a = service("a", "NodePort", json!([{"port": 80, "nodePort": 30080}]));
        reserve(&store, &mut a, None).await.unwrap();

        let mut b = service(
            "b",
            "NodePort",
            json!([{"port": 81, "nodePort": 30081}, {"port": 80, "nodePort": 30080}]),
        );
        let e = reserve(&store, &mut b, None).await.unwrap_err();
        assert_eq!(e.code, 422);
        let text = serde_json::to_string(&e.to_status()).unwrap();
        assert!(
            text.contains("provided port is already allocated"),
            "{text}"
        );
        assert!(text.contains("spec.ports[1].nodePort"), "{text}");
        // 30081, reserved before the clash, was given back.
        let mut c = service("c", "NodePort", json!([{"port": 81, "nodePort": 30081}]));
        reserve(&store, &mut c, None).await.unwrap();

        let mut d = service("d", "NodePort", json!([{"port": 80, "nodePort": 80}]));
        let e = reserve(&store, &mut d, None).await.unwrap_err();
        let text = serde_json::to_string(&e.to_status()).unwrap();
        assert!(
            text.contains("The range of valid ports is 30000-32767"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_update_keeps_its_own_ports_and_cluster_ip_services_get_none() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let mut old = service("a", "NodePort", json!([{"port": 80, "nodePort": 30080}]));
        reserve(&store, &mut old, None).await.unwrap();
        let mut new = old.clone();
        assert_eq!(
            reserve(&store, &mut new, Some(&old)).await.unwrap(),
            Vec::<u16>::new()
        );
        let mut plain = service("p", "ClusterIP", json!([{"port": 80}]));
        reserve(&store, &mut plain, None).await.unwrap();
        assert!(in_use(&plain).is_empty());
        let mut lb = service("lb", "LoadBalancer", json!([{"port": 80}]));
        lb["spec"]["allocateLoadBalancerNodePorts"] = json!(false);
        reserve(&store, &mut lb, None).await.unwrap();
        assert!(in_use(&lb).is_empty());
    }

    #[tokio::test]
    async fn the_same_node_port_for_two_protocols_of_one_service_is_allowed_once_each() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let mut dns = service(
            "dns",
            "NodePort",
            json!([{"port": 53, "protocol": "TCP", "nodePort": 30053},
                   {"port": 53, "protocol": "UDP", "nodePort": 30053}]),
        );
        reserve(&store, &mut dns, None).await.unwrap();
        let mut twice = service(
            "twice",
            "NodePort",
            json!([{"name": "a", "port": 1, "nodePort": 30001},
                   {"name": "b", "port": 2, "nodePort": 30001}]),
        );
        let e = reserve(&store, &mut twice, None).await.unwrap_err();
        let text = serde_json::to_string(&e.to_status()).unwrap();
        assert!(text.contains("Duplicate value"), "{text}");
    }
}
