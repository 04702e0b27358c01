//! Service, Endpoints and EndpointSlice printers.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Endpoints, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::doc;
use super::duration::age;
use super::{Column, arr_at, format_labels, list_with_more, str_at};

pub(crate) fn service_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Type", doc::<ServiceSpec>("type")),
        Column::new("Cluster-IP", doc::<ServiceSpec>("clusterIP")),
        Column::new("External-IP", doc::<ServiceSpec>("externalIPs")),
        Column::new("Port(s)", doc::<ServiceSpec>("ports")),
        Column::age(),
        Column::new("Selector", doc::<ServiceSpec>("selector")).wide(),
    ]
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Load balancer ingress IPs (or hostnames), sorted and de-duplicated. Rows are always wide,
/// so upstream's 16-character clipping never applies.
fn load_balancer_ips(svc: &Value) -> String {
    let set: BTreeSet<String> = arr_at(svc, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, "/ip");
            let host = str_at(i, "/hostname");
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// EXTERNAL-IP per service type (upstream `getServiceExternalIP`).
fn external_ip(svc: &Value) -> String {
    let external_ips = strings(arr_at(svc, "/spec/externalIPs"));
    match str_at(svc, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ips(svc);
            if !external_ips.is_empty() {
                let mut all: Vec<String> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').map(str::to_string).collect()
                };
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// PORT(S): `80/TCP`, or `80:30080/TCP` with a node port; `<none>` without ports.
fn ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr_at(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let protocol = str_at(p, "/protocol");
            match p.get("nodePort").and_then(Value::as_i64).filter(|n| *n > 0) {
                Some(node_port) => format!("{port}:{node_port}/{protocol}"),
                None => format!("{port}/{protocol}"),
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".to_string()
    } else {
        pieces.join(",")
    }
}

pub(crate) fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    let cluster_ip = match str_at(svc, "/spec/clusterIPs/0") {
        "" => "<none>",
        ip => ip,
    };
    vec![
        json!(str_at(svc, "/metadata/name")),
        json!(str_at(svc, "/spec/type")),
        json!(cluster_ip),
        json!(external_ip(svc)),
        json!(ports(svc)),
        json!(age(svc, now)),
        json!(format_labels(svc.pointer("/spec/selector"))),
    ]
}

pub(crate) fn endpoints_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Endpoints", doc::<Endpoints>("subsets")),
        Column::age(),
    ]
}

/// Go `net.JoinHostPort`: brackets around IPv6 addresses.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// ENDPOINTS: up to three `ip:port` (bare IPs for port-less subsets), then ` + N more...`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, "/ip"), number));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

pub(crate) fn endpoints_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(format_endpoints(obj)),
        json!(age(obj, now)),
    ]
}

pub(crate) fn endpointslice_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("AddressType", doc::<EndpointSlice>("addressType")),
        Column::new("Ports", doc::<EndpointSlice>("ports")),
        Column::new("Endpoints", doc::<EndpointSlice>("endpoints")),
        Column::age(),
    ]
}

fn slice_ports(obj: &Value) -> String {
    const MAX: usize = 3;
    let ports = arr_at(obj, "/ports");
    let list: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| {
            match (
                p.get("port").and_then(Value::as_i64),
                p.get("name").and_then(Value::as_str),
            ) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            }
        })
        .collect();
    list_with_more(&list, ports.len() > MAX, ports.len(), MAX)
}

fn slice_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let addresses: Vec<String> = arr_at(obj, "/endpoints")
        .iter()
        .flat_map(|e| strings(arr_at(e, "/addresses")))
        .collect();
    let list: Vec<String> = addresses.iter().take(MAX).cloned().collect();
    list_with_more(&list, addresses.len() > MAX, addresses.len(), MAX)
}

pub(crate) fn endpointslice_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(str_at(obj, "/addressType")),
        json!(slice_ports(obj)),
        json!(slice_endpoints(obj)),
        json!(age(obj, now)),
    ]
}
