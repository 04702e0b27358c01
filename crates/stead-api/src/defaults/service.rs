//! Service defaulting (`SetDefaults_Service`) plus the IP-family fields upstream's registry fills
//! on single-stack IPv4 clusters (the cluster IP itself is allocated by the registry).

use serde_json::{Value, json};

use super::{child, each, set_if_absent, set_if_empty};

/// Defaults a Service in place.
pub fn apply(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    set_if_empty(spec, "sessionAffinity", json!("None"));
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 10800}});
            }
        }
        _ => {}
    }
    set_if_empty(spec, "type", json!("ClusterIP"));
    each(spec, "ports", |p| {
        set_if_empty(p, "protocol", json!("TCP"));
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset && let Some(port) = p.get("port").cloned() {
            p["targetPort"] = port;
        }
    });
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_if_empty(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" || ty == "ClusterIP" {
        set_if_absent(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_if_absent(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        // Registry IP-family fill on a single-stack IPv4 cluster: a headless Service without a
        // selector is `RequireDualStack`, everything else `SingleStack`.
        let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
        let selectorless = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(|s| s.is_empty());
        let policy = if headless && selectorless {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        set_if_absent(spec, "ipFamilyPolicy", json!(policy));
        let families_empty = spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if families_empty {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
    }
}
