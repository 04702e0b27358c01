//! ClusterIP allocation from the service range (default 10.43.0.0/16, like k3s).
//!
//! Each allocated address is a key `/stead/serviceips/<ip>` created with create-if-absent, so two
//! concurrent Service creates can never get the same address; the key is removed when the Service
//! is deleted. `.1` (the `kubernetes` Service) and `.10` (cluster DNS) are never handed out at
//! random.

use std::net::Ipv4Addr;

use serde_json::{Value, json};
use stead_api::{ApiError, FieldError, meta};
use stead_storage::{Storage, StorageError};

/// The service range.
#[derive(Debug, Clone, Copy)]
pub struct ServiceRange {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Default for ServiceRange {
    fn default() -> Self {
        Self {
            base: Ipv4Addr::new(10, 43, 0, 0),
            prefix: 16,
        }
    }
}

impl ServiceRange {
    fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(ip) & mask == u32::from(self.base) & mask
    }

    fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }
}

fn key(ip: Ipv4Addr) -> String {
    format!("/stead/serviceips/{ip}")
}

/// Reserves `requested`, or a free address when `None`.
pub async fn allocate(
    store: &dyn Storage,
    range: ServiceRange,
    requested: Option<Ipv4Addr>,
    owner: &str,
) -> Result<Ipv4Addr, ApiError> {
    let owner_name = owner.rsplit('/').next().unwrap_or(owner);
    let owner = bytes::Bytes::from(owner.to_string());
    if let Some(ip) = requested {
        return match store.create(&key(ip), owner).await {
            Ok(_) => Ok(ip),
            Err(StorageError::AlreadyExists { .. }) => Err(ApiError::invalid(
                "",
                "Service",
                owner_name,
                &[FieldError::invalid(
                    "spec.clusterIPs",
                    ip.to_string(),
                    "failed to allocate IP: the provided IP is already allocated",
                )],
            )),
            Err(e) => Err(ApiError::internal(e)),
        };
    }
    // Start at a random offset and walk; skip network, .1, .10 and broadcast.
    let size = range.size();
    let start = uuid::Uuid::new_v4().as_u128() as u32 % size;
    for i in 0..size {
        let n = (start + i) % size;
        if n < 2 || n == 10 || n == size - 1 {
            continue;
        }
        let ip = range.nth(n);
        match store.create(&key(ip), owner.clone()).await {
            Ok(_) => return Ok(ip),
            Err(StorageError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    Err(ApiError::internal("range of valid IPs is full"))
}

pub async fn release(store: &dyn Storage, ip: &str) {
    if let Ok(ip) = ip.parse::<Ipv4Addr>() {
        let _ = store.delete(&key(ip), None).await;
    }
}

/// Fills `spec.clusterIP(s)` of a Service being created: allocates an address unless the
/// Service is headless (`None`) or an ExternalName. Returns the address reserved, to release if
/// the create fails.
pub async fn assign(
    store: &dyn Storage,
    range: ServiceRange,
    svc: &mut Value,
) -> Result<Option<String>, ApiError> {
    let name = meta::name(svc).to_string();
    let ty = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty == "ExternalName" {
        return Ok(None);
    }
    let requested = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .or_else(|| svc.pointer("/spec/clusterIPs/0").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    check_families(svc, &name, &requested)?;
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(None);
    };
    if requested == "None" {
        spec.insert("clusterIP".into(), json!("None"));
        spec.insert("clusterIPs".into(), json!(["None"]));
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        return Ok(None);
    }
    let wanted = if requested.is_empty() {
        None
    } else {
        let ip: Ipv4Addr = requested.parse().map_err(|_| {
            ApiError::invalid(
                "",
                "Service",
                &name,
                &[FieldError::invalid(
                    "spec.clusterIPs[0]",
                    requested.clone(),
                    "must be a valid IP address",
                )],
            )
        })?;
        if !range.contains(ip) {
            return Err(ApiError::invalid(
                "",
                "Service",
                &name,
                &[FieldError::invalid(
                    "spec.clusterIPs",
                    requested.clone(),
                    "failed to allocate IP: the provided IP is not in the valid range",
                )],
            ));
        }
        Some(ip)
    };
    let owner = format!("{}/{}", meta::namespace(svc), meta::name(svc));
    let ip = allocate(store, range, wanted, &owner).await?.to_string();
    let spec = svc
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .expect("checked above");
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
    spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
    Ok(Some(ip))
}

/// The cluster is IPv4 single-stack: IPv6 families, addresses and required dual-stack are
/// refused as upstream refuses them on such a cluster.
fn check_families(svc: &Value, name: &str, requested: &str) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let families = svc
        .pointer("/spec/ipFamilies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, family) in families.iter().enumerate() {
        match family.as_str().unwrap_or("") {
            "IPv4" => {}
            "IPv6" => errors.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                "IPv6",
                "not configured on this cluster",
            )),
            other => errors.push(FieldError::not_supported(
                format!("spec.ipFamilies[{i}]"),
                other,
                &["IPv4", "IPv6"],
            )),
        }
    }
    match svc.pointer("/spec/ipFamilyPolicy").and_then(Value::as_str) {
        None | Some("SingleStack" | "PreferDualStack") => {}
        Some("RequireDualStack") => errors.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            "RequireDualStack",
            "this cluster is not configured for dual-stack services",
        )),
        Some(other) => errors.push(FieldError::not_supported(
            "spec.ipFamilyPolicy",
            other,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        )),
    }
    if requested.parse::<std::net::Ipv6Addr>().is_ok() {
        errors.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            requested,
            "IPv6 is not configured on this cluster",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("", "Service", name, &errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stead_storage::embedded::EmbeddedStore;

    #[tokio::test]
    async fn addresses_are_unique_and_inside_the_range() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let range = ServiceRange {
            base: Ipv4Addr::new(10, 43, 0, 0),
            prefix: 28,
        };
        let mut seen = std::collections::HashSet::new();
        // 16 addresses minus network, .1, .10 and broadcast = 12.
        for _ in 0..12 {
            let ip = allocate(&store, range, None, "x").await.unwrap();
            assert!(range.contains(ip));
            assert!(seen.insert(ip), "{ip} handed out twice");
        }
        assert!(allocate(&store, range, None, "x").await.is_err());
        release(&store, &seen.iter().next().unwrap().to_string()).await;
        allocate(&store, range, None, "x").await.unwrap();
    }

    #[tokio::test]
    async fn headless_services_get_none_and_a_taken_address_is_refused() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let mut headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}});
        assert_eq!(
            assign(&store, ServiceRange::default(), &mut headless)
                .await
                .unwrap(),
            None
        );
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut a = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "10.43.0.50"}});
        assign(&store, ServiceRange::default(), &mut a)
            .await
            .unwrap();
        let mut b = json!({"metadata": {"name": "b"}, "spec": {"clusterIP": "10.43.0.50"}});
        let e = assign(&store, ServiceRange::default(), &mut b)
            .await
            .unwrap_err();
        assert_eq!(e.code, 422);
        let mut c = json!({"metadata": {"name": "c"}, "spec": {"clusterIP": "192.168.0.1"}});
        assert_eq!(
            assign(&store, ServiceRange::default(), &mut c)
                .await
                .unwrap_err()
                .code,
            422
        );
    }

    #[tokio::test]
    async fn the_cluster_is_ipv4_single_stack() {
        let store = EmbeddedStore::open_in_memory().unwrap();
        let range = ServiceRange::default();
        for (spec, field) in [
            (json!({"ipFamilies": ["IPv6"]}), "spec.ipFamilies[0]"),
            (
                json!({"ipFamilyPolicy": "RequireDualStack"}),
                "spec.ipFamilyPolicy",
            ),
            (json!({"clusterIP": "fd00::10"}), "spec.clusterIPs[0]"),
        ] {
            let mut svc = json!({"metadata": {"name": "v6"}, "spec": spec});
            let e = assign(&store, range, &mut svc).await.unwrap_err();
            assert_eq!(e.code, 422);
            let text = e.to_status().to_string();
            assert!(text.contains(field), "{text}");
        }
        let mut prefer =
            json!({"metadata": {"name": "p"}, "spec": {"ipFamilyPolicy": "PreferDualStack"}});
        assign(&store, range, &mut prefer).await.unwrap();
        assert_eq!(prefer["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(prefer["spec"]["ipFamilyPolicy"], "PreferDualStack");
        let mut headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}});
        assign(&store, range, &mut headless).await.unwrap();
        assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4"]));
    }
}
