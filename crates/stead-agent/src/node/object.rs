//! The Node an agent registers, its status and its Lease, built from [`HostFacts`] and the
//! agent's [`NodeProfile`] (pure).
//!
//! Field values follow what a 1.33 kubelet reports (`pkg/kubelet/nodestatus/setters.go`):
//! condition reasons and messages, labels, capacity minus the default hard eviction threshold as
//! allocatable memory, and a `nodeInfo` with every field the clients require.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::host::HostFacts;

/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a lease is valid without renewal (kubelet `nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECONDS: i64 = 40;
/// The default pod range (k3s' default cluster CIDR).
pub const POD_CIDR: &str = "10.42.0.0/16";
/// The node's own address unless told otherwise (`stead agent --node-ip`).
pub const HOST_IP: &str = "127.0.0.1";
/// Kubelet's default hard eviction threshold `memory.available<100Mi`, subtracted from
/// allocatable memory.
const EVICTION_HARD_MEMORY_KIB: u64 = 100 * 1024;
/// The default hard eviction threshold for the node's filesystem (`nodefs.available<10%`), in
/// percent of its size: what allocatable `ephemeral-storage` keeps back.
const EVICTION_HARD_NODEFS_PERCENT: u64 = 10;

/// `metav1.Time`: RFC 3339 in whole seconds.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `metav1.MicroTime`: RFC 3339 with microseconds.
pub fn micro_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// What differs between the kinds of node agent: the fake node and the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProfile {
    /// `spec.podCIDR` at creation; empty for a real node, whose range the control plane's node
    /// IPAM assigns (`stead_controllers::nodeipam`).
    pub pod_cidr: String,
    /// The node's `InternalIP`: where the API server reaches its node API.
    pub node_ip: String,
    /// `nodeInfo.containerRuntimeVersion` (`fake://stead`, `stead://0.1`).
    pub runtime_version: String,
    /// Annotations besides the kubelet's usual ones (re-asserted on every registration).
    pub annotations: BTreeMap<String, String>,
    /// The node API's port (`status.daemonEndpoints.kubeletEndpoint.Port`); 0 when the node
    /// serves none (the fake node), so logs and exec answer that the node is unreachable.
    pub api_port: u16,
}

impl NodeProfile {
    /// The fake node's profile.
    pub fn fake() -> NodeProfile {
        NodeProfile {
            pod_cidr: POD_CIDR.to_string(),
            node_ip: HOST_IP.to_string(),
            runtime_version: "fake://stead".to_string(),
            annotations: BTreeMap::new(),
            api_port: 0,
        }
    }
}

/// The node's annotations: the kubelet's usual ones plus the profile's.
pub fn node_annotations(profile: &NodeProfile) -> Value {
    let mut a = serde_json::Map::new();
    a.insert("node.alpha.kubernetes.io/ttl".into(), json!("0"));
    a.insert(
        "volumes.kubernetes.io/controller-managed-attach-detach".into(),
        json!("true"),
    );
    for (k, v) in &profile.annotations {
        a.insert(k.clone(), json!(v));
    }
    Value::Object(a)
}

/// The Node to create: metadata, spec and status.
pub fn node_object(name: &str, host: &HostFacts, profile: &NodeProfile, now: Timestamp) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(name, host),
            "annotations": node_annotations(profile),
        },
        "spec": node_spec(profile),
        "status": node_status(name, host, profile, now, now),
    })
}

/// The spec a node registers with: its pod range when it has one of its own (the fake node),
/// else nothing (the control plane assigns one).
fn node_spec(profile: &NodeProfile) -> Value {
    if profile.pod_cidr.is_empty() {
        return json!({});
    }
    json!({"podCIDR": profile.pod_cidr, "podCIDRs": [profile.pod_cidr]})
}

/// The well-known labels a kubelet sets on its node.
pub fn node_labels(name: &str, host: &HostFacts) -> Value {
    json!({
        "beta.kubernetes.io/arch": host.architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": host.architecture,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    })
}

/// The node's status as of the heartbeat `now`: resources, conditions (all healthy since
/// `since`, the registration), addresses and `nodeInfo`.
pub fn node_status(
    name: &str,
    host: &HostFacts,
    profile: &NodeProfile,
    since: Timestamp,
    now: Timestamp,
) -> Value {
    let cpus = host.cpus.to_string();
    let memory = format!("{}Ki", host.memory_kib);
    let allocatable_memory = format!(
        "{}Ki",
        host.memory_kib.saturating_sub(EVICTION_HARD_MEMORY_KIB)
    );
    let (heartbeat, transition) = (time(now), time(since));
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_,
            "status": status,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        })
    };
    let mut capacity = json!({
        "cpu": cpus,
        "memory": memory,
        "pods": "110",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    let mut allocatable = json!({
        "cpu": cpus,
        "memory": allocatable_memory,
        "pods": "110",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    if host.storage_bytes > 0 {
        // As a kubelet writes them: capacity in Ki, allocatable in bytes.
        let kept_back = host
            .storage_bytes
            .saturating_mul(EVICTION_HARD_NODEFS_PERCENT)
            / 100;
        capacity["ephemeral-storage"] = json!(format!("{}Ki", host.storage_bytes / 1024));
        allocatable["ephemeral-storage"] = json!((host.storage_bytes - kept_back).to_string());
    }
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID",
                "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": profile.node_ip},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": profile.api_port}},
        "nodeInfo": {
            "machineID": host.machine_id,
            "systemUUID": host.system_uuid,
            "bootID": host.boot_id,
            "kernelVersion": host.kernel_version,
            "osImage": host.os_image,
            "containerRuntimeVersion": profile.runtime_version,
            "kubeletVersion": "v1.33.0",
            // Deprecated; a 1.33 kubelet leaves it empty, but clients require the field.
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": host.architecture,
        },
    })
}

/// The node's Lease, owned by the Node (so it goes when the Node goes).
pub fn lease_object(name: &str, node_uid: &str, now: Timestamp) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Node",
                "name": name,
                "uid": node_uid,
            }],
        },
        "spec": lease_spec(name, now),
    })
}

/// The Lease's spec as of `now` (also the merge patch that renews it).
pub fn lease_spec(name: &str, now: Timestamp) -> Value {
    json!({
        "holderIdentity": name,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": micro_time(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFacts {
        HostFacts {
            hostname: "box".into(),
            cpus: 2,
            memory_kib: 24_578_932,
            kernel_version: "6.18.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            machine_id: "0123456789abcdef0123456789abcdef".into(),
            boot_id: "b".into(),
            system_uuid: "01234567-89ab-cdef-0123-456789abcdef".into(),
            architecture: "amd64".into(),
            storage_bytes: 53_673_205_760,
        }
    }

    fn at() -> Timestamp {
        "2026-11-22T10:00:00.123456789Z".parse().unwrap()
    }

    #[test]
    fn times_are_whole_seconds_and_lease_times_microseconds() {
        assert_eq!(time(at()), "2026-11-22T10:00:00Z");
        assert_eq!(micro_time(at()), "2026-11-22T10:00:00.123456Z");
    }

    #[test]
    fn allocatable_memory_keeps_back_the_eviction_threshold() {
        let s = node_status("box", &host(), &NodeProfile::fake(), at(), at());
        assert_eq!(s["capacity"]["memory"], "24578932Ki");
        assert_eq!(s["allocatable"]["memory"], "24476532Ki");
        assert_eq!(s["capacity"]["cpu"], "2");
        assert_eq!(s["allocatable"]["pods"], "110");
    }

    // Ref: pkg/kubelet/nodestatus/setters.go (MachineInfo) and the default `nodefs.available<10%`.
    #[test]
    fn ephemeral_storage_is_the_data_dir_filesystem_less_the_eviction_threshold() {
        let s = node_status("box", &host(), &NodeProfile::fake(), at(), at());
        assert_eq!(s["capacity"]["ephemeral-storage"], "52415240Ki");
        assert_eq!(s["allocatable"]["ephemeral-storage"], "48305885184");
        let unknown = HostFacts {
            storage_bytes: 0,
            ..host()
        };
        let s = node_status("box", &unknown, &NodeProfile::fake(), at(), at());
        assert!(s["capacity"].get("ephemeral-storage").is_none(), "{s}");
    }

    // Ref: pkg/kubelet/nodestatus/setters.go (ReadyCondition, MemoryPressureCondition, ...)
    #[test]
    fn conditions_are_healthy_with_the_kubelet_reasons() {
        let s = node_status("box", &host(), &NodeProfile::fake(), at(), at());
        let got: Vec<(&str, &str, &str)> = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap(),
                    c["status"].as_str().unwrap(),
                    c["reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID"),
                ("Ready", "True", "KubeletReady"),
            ]
        );
        assert_eq!(
            s["conditions"][3]["message"],
            "kubelet is posting ready status"
        );
        assert_eq!(
            s["conditions"][3]["lastHeartbeatTime"],
            "2026-11-22T10:00:00Z"
        );
    }

    #[test]
    fn a_heartbeat_moves_only_the_heartbeat_time() {
        let later: Timestamp = "2026-11-22T10:05:00Z".parse().unwrap();
        let s = node_status("box", &host(), &NodeProfile::fake(), at(), later);
        assert_eq!(
            s["conditions"][3]["lastHeartbeatTime"],
            "2026-11-22T10:05:00Z"
        );
        assert_eq!(
            s["conditions"][3]["lastTransitionTime"],
            "2026-11-22T10:00:00Z"
        );
    }

    #[test]
    fn node_info_has_every_field_clients_require() {
        let s = node_status("box", &host(), &NodeProfile::fake(), at(), at());
        let info = s["nodeInfo"].as_object().unwrap();
        for field in [
            "architecture",
            "bootID",
            "containerRuntimeVersion",
            "kernelVersion",
            "kubeProxyVersion",
            "kubeletVersion",
            "machineID",
            "operatingSystem",
            "osImage",
            "systemUUID",
        ] {
            assert!(info[field].is_string(), "{field}");
        }
        assert_eq!(info["kubeletVersion"], "v1.33.0");
        assert_eq!(info["containerRuntimeVersion"], "fake://stead");
        assert_eq!(
            s["addresses"],
            json!([{"type": "InternalIP", "address": "127.0.0.1"},
                   {"type": "Hostname", "address": "box"}])
        );
    }

    #[test]
    fn the_node_is_labelled_with_its_name_os_and_arch() {
        let n = node_object("n1", &host(), &NodeProfile::fake(), at());
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "n1");
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/arch"], "amd64");
        assert_eq!(n["spec"]["podCIDR"], "10.42.0.0/16");
        assert_eq!(n["status"]["addresses"][1]["address"], "n1");
    }

    #[test]
    fn a_real_node_registers_without_a_pod_range_at_its_own_address() {
        let profile = NodeProfile {
            pod_cidr: String::new(),
            node_ip: "10.1.2.3".into(),
            ..NodeProfile::fake()
        };
        let n = node_object("n1", &host(), &profile, at());
        assert_eq!(n["spec"], json!({}));
        assert_eq!(
            n["status"]["addresses"][0],
            json!({"type": "InternalIP", "address": "10.1.2.3"})
        );
    }

    #[test]
    fn the_lease_is_owned_by_the_node_and_renewed_now() {
        let l = lease_object("n1", "u-1", at());
        assert_eq!(l["metadata"]["namespace"], "kube-node-lease");
        assert_eq!(l["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(
            l["spec"],
            json!({"holderIdentity": "n1", "leaseDurationSeconds": 40,
                   "renewTime": "2026-11-22T10:00:00.123456Z"})
        );
    }
}
