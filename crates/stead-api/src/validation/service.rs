//! Service validation (upstream `ValidateService` / `ValidateServiceUpdate`), the parts a user
//! meets: type, ports, selector, session affinity, and the "may not change once set" rule for
//! cluster IPs. IP allocation itself is the registry's job.

use std::collections::HashSet;

use serde_json::Value;

use super::json::{arr_of, str_of, value_of};
use super::meta::{meta_create, meta_update, required_one_of, validate_labels};
use super::names;
use crate::error::FieldError;

/// Upstream `ValidateService`.
pub fn validate_create(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns1035_label);
    errs.extend(validate_spec(obj.get("spec").unwrap_or(&Value::Null)));
    errs
}

/// Upstream `ValidateServiceUpdate`: the create rules plus unchanged cluster IPs (unless the type
/// moves to or from `ExternalName`).
pub fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let mut errs = meta_update(new, old);
    let (ns, os) = (
        new.get("spec").unwrap_or(&null),
        old.get("spec").unwrap_or(&null),
    );
    if str_of(ns, "type") != "ExternalName" && str_of(os, "type") != "ExternalName" {
        let new_ips = cluster_ips(ns);
        for (i, ip) in cluster_ips(os).iter().enumerate() {
            if new_ips.get(i).is_some_and(|n| n != ip) {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    value_of(ns, "clusterIPs"),
                    "may not change once set",
                ));
            }
        }
    }
    errs.extend(validate_spec(ns));
    errs
}

/// Upstream `ValidateServiceStatusUpdate` (metadata rules).
pub fn validate_status_update(new: &Value, old: &Value) -> Vec<FieldError> {
    meta_update(new, old)
}

/// `spec.clusterIPs`, or `[spec.clusterIP]` when only the singular field is set.
fn cluster_ips(spec: &Value) -> Vec<String> {
    let ips: Vec<String> = arr_of(spec, "clusterIPs")
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    let ip = str_of(spec, "clusterIP");
    if ip.is_empty() {
        Vec::new()
    } else {
        vec![ip.to_string()]
    }
}

fn validate_spec(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = str_of(spec, "type");
    let ports = arr_of(spec, "ports");
    let headless = str_of(spec, "clusterIP") == "None";
    match ty {
        "ClusterIP" | "NodePort" | "LoadBalancer" => {}
        "ExternalName" => {
            let ext = str_of(spec, "externalName");
            if ext.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for msg in names::dns1123_subdomain(ext.trim_end_matches('.')) {
                    errs.push(FieldError::invalid("spec.externalName", ext, msg));
                }
            }
            if !str_of(spec, "clusterIP").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
        }
        "" => errs.push(FieldError::required("spec.type", "")),
        other => errs.push(FieldError::not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let require_name = ports.len() > 1;
    let mut names_seen = HashSet::new();
    let mut port_protocols = HashSet::new();
    for (i, sp) in ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        let name = str_of(sp, "name");
        if require_name && name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{p}.name"), name, msg));
            }
            if !names_seen.insert(name.to_string()) {
                errs.push(FieldError::duplicate(format!("{p}.name"), name));
            }
        }
        let port = sp.get("port").and_then(Value::as_i64).unwrap_or(0);
        for msg in names::port_num(port) {
            errs.push(FieldError::invalid(format!("{p}.port"), port, msg));
        }
        let protocol = str_of(sp, "protocol");
        errs.extend(required_one_of(
            &format!("{p}.protocol"),
            protocol,
            &["SCTP", "TCP", "UDP"],
        ));
        match sp.get("targetPort") {
            Some(Value::String(s)) => {
                for msg in names::port_name(s) {
                    errs.push(FieldError::invalid(
                        format!("{p}.targetPort"),
                        s.as_str(),
                        msg,
                    ));
                }
            }
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                for msg in names::port_num(n) {
                    errs.push(FieldError::invalid(format!("{p}.targetPort"), n, msg));
                }
            }
            _ => {}
        }
        if sp
            .get("nodePort")
            .and_then(Value::as_i64)
            .is_some_and(|n| n != 0)
            && ty == "ClusterIP"
        {
            errs.push(FieldError::forbidden(
                format!("{p}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        if !port_protocols.insert((port, protocol.to_string())) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}]"),
                sp.clone(),
            ));
        }
    }
    errs.extend(validate_labels(
        spec.get("selector").unwrap_or(&Value::Null),
        "spec.selector",
    ));
    errs.extend(required_one_of(
        "spec.sessionAffinity",
        str_of(spec, "sessionAffinity"),
        &["ClientIP", "None"],
    ));
    let ip = str_of(spec, "clusterIP");
    if !ip.is_empty() && ip != "None" && ip.parse::<std::net::IpAddr>().is_err() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            ip,
            "must be empty, 'None', or a valid IP address",
        ));
    }
    errs
}
