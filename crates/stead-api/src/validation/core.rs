//! The smaller core kinds: ConfigMap, Secret, Namespace, Node, ServiceAccount, Endpoints,
//! EndpointSlice, Lease, Event (both groups) and ControllerRevision. Upstream rules that users can
//! hit; internals nobody writes by hand are accepted.

use base64::Engine;
use serde_json::{Map, Value};

use super::json::{arr_of, int_of, obj_of, str_of, value_of};
use super::meta::{meta_create, meta_update, nonnegative, required_one_of};
use super::names;
use crate::error::FieldError;

/// Upstream `core.MaxSecretSize` (also the ConfigMap limit).
const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// Keys of `data`/`binaryData` style maps, sorted; returns the sum of value sizes.
fn validate_keys(
    map: Option<&Map<String, Value>>,
    field: &str,
    other: Option<&Map<String, Value>>,
    other_name: &str,
    decode: bool,
    errs: &mut Vec<FieldError>,
) -> usize {
    let Some(map) = map else { return 0 };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut size = 0;
    for k in keys {
        let path = format!("{field}[{k}]");
        for msg in names::config_map_key(k) {
            errs.push(FieldError::invalid(&path, k.as_str(), msg));
        }
        if other.is_some_and(|o| o.contains_key(k)) {
            errs.push(FieldError::invalid(
                &path,
                k.as_str(),
                format!("duplicate of key present in {other_name}"),
            ));
        }
        let v = map[k].as_str().unwrap_or("");
        size += if decode {
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_or(v.len(), |b| b.len())
        } else {
            v.len()
        };
    }
    size
}

/// Upstream `ValidateConfigMap`.
pub fn validate_config_map(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    let (data, binary) = (obj_of(obj, "data"), obj_of(obj, "binaryData"));
    let mut size = validate_keys(data, "data", binary, "binaryData", false, &mut errs);
    size += validate_keys(binary, "binaryData", data, "data", true, &mut errs);
    if size > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE));
    }
    errs
}

/// The `immutable: true` rules shared by ConfigMap and Secret updates.
fn immutable_rules(new: &Value, old: &Value, fields: &[&str], errs: &mut Vec<FieldError>) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        let norm = |o: &Value| {
            o.get(*f)
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or(Value::Object(Map::new()))
        };
        if norm(new) != norm(old) {
            errs.push(FieldError::forbidden(
                *f,
                "field is immutable when `immutable` is set",
            ));
        }
    }
}

/// Upstream `ValidateConfigMapUpdate`.
pub fn validate_config_map_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta_update(new, old);
    immutable_rules(new, old, &["data", "binaryData"], &mut errs);
    errs.extend(validate_config_map(new));
    errs
}

/// Upstream `ValidateSecret`: keys, size, and the keys each well-known type requires.
pub fn validate_secret(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    let data = obj_of(obj, "data");
    let size = validate_keys(data, "data", None, "", true, &mut errs);
    if size > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let has_key = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let required_keys: &[&str] = match str_of(obj, "type") {
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/service-account-token" => {
            let meta = obj.get("metadata").unwrap_or(&Value::Null);
            let ann = obj_of(meta, "annotations");
            if ann.is_none_or(|a| {
                a.get("kubernetes.io/service-account.name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
            }) {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
            &[]
        }
        "kubernetes.io/basic-auth" => {
            if !has_key("username") && !has_key("password") {
                errs.push(FieldError::required("data[username]", ""));
                errs.push(FieldError::required("data[password]", ""));
            }
            &[]
        }
        _ => &[],
    };
    for k in required_keys {
        if !has_key(k) {
            errs.push(FieldError::required(format!("data[{k}]"), ""));
        }
    }
    errs
}

/// Upstream `ValidateSecretUpdate`: `type` is immutable, plus the `immutable: true` rules.
pub fn validate_secret_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta_update(new, old);
    if str_of(new, "type") != str_of(old, "type") {
        errs.push(FieldError::invalid(
            "type",
            str_of(new, "type"),
            "field is immutable",
        ));
    }
    immutable_rules(new, old, &["data"], &mut errs);
    errs.extend(validate_secret(new));
    errs
}

/// Upstream `ValidateNamespace`: DNS label name, qualified spec finalizers.
pub fn validate_namespace(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, false, names::name_is_dns_label);
    errs.extend(namespace_finalizers(obj));
    errs
}

fn namespace_finalizers(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for f in arr_of(spec, "finalizers").iter().filter_map(Value::as_str) {
        let msgs = names::qualified_name(f);
        for msg in &msgs {
            errs.push(FieldError::invalid("spec.finalizers", f, msg.clone()));
        }
        if msgs.is_empty() && f != "kubernetes" && !f.contains('/') {
            errs.push(FieldError::invalid(
                "spec.finalizers",
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

/// Upstream `ValidateNamespaceUpdate` / `ValidateNamespaceFinalizeUpdate`.
pub fn validate_namespace_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta_update(new, old);
    errs.extend(namespace_finalizers(new));
    errs
}

/// Cluster-scoped kinds named as DNS subdomains with nothing else checked (Node).
pub fn validate_node(obj: &Value) -> Vec<FieldError> {
    meta_create(obj, false, names::name_is_dns_subdomain)
}

/// Namespaced kinds named as DNS subdomains with nothing else checked (ServiceAccount).
pub fn validate_plain(obj: &Value) -> Vec<FieldError> {
    meta_create(obj, true, names::name_is_dns_subdomain)
}

fn validate_endpoint_ports(
    ports: &[Value],
    path: &str,
    port_optional: bool,
    errs: &mut Vec<FieldError>,
) {
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("{path}[{i}]");
        let name = str_of(p, "name");
        if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{pp}.name"), name, msg));
            }
        }
        match int_of(p, "port") {
            None if port_optional => {}
            n => {
                let n = n.unwrap_or(0);
                for msg in names::port_num(n) {
                    errs.push(FieldError::invalid(format!("{pp}.port"), n, msg));
                }
            }
        }
        errs.extend(required_one_of(
            &format!("{pp}.protocol"),
            str_of(p, "protocol"),
            &["SCTP", "TCP", "UDP"],
        ));
    }
}

/// Upstream `ValidateEndpoints` (addresses need an IP; ports valid).
pub fn validate_endpoints(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    for (i, subset) in arr_of(obj, "subsets").iter().enumerate() {
        let sp = format!("subsets[{i}]");
        for list in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr_of(subset, list).iter().enumerate() {
                let ip = str_of(a, "ip");
                if ip.parse::<std::net::IpAddr>().is_err() {
                    errs.push(FieldError::invalid(
                        format!("{sp}.{list}[{j}].ip"),
                        ip,
                        "must be a valid IP address",
                    ));
                }
            }
        }
        validate_endpoint_ports(
            arr_of(subset, "ports"),
            &format!("{sp}.ports"),
            false,
            &mut errs,
        );
    }
    errs
}

/// Upstream `ValidateEndpointSlice`.
pub fn validate_endpoint_slice(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    errs.extend(required_one_of(
        "addressType",
        str_of(obj, "addressType"),
        &["FQDN", "IPv4", "IPv6"],
    ));
    for (i, e) in arr_of(obj, "endpoints").iter().enumerate() {
        if arr_of(e, "addresses").is_empty() {
            errs.push(FieldError::required(
                format!("endpoints[{i}].addresses"),
                "must contain at least 1 address",
            ));
        }
    }
    validate_endpoint_ports(arr_of(obj, "ports"), "ports", true, &mut errs);
    errs
}

/// Upstream `ValidateEndpointSliceUpdate`: `addressType` is immutable.
pub fn validate_endpoint_slice_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta_update(new, old);
    errs.extend(validate_endpoint_slice(new));
    if str_of(new, "addressType") != str_of(old, "addressType") {
        errs.push(FieldError::invalid(
            "addressType",
            str_of(new, "addressType"),
            "field is immutable",
        ));
    }
    errs
}

/// Upstream `ValidateLease`.
pub fn validate_lease(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if let Some(d) = int_of(spec, "leaseDurationSeconds")
        && d <= 0
    {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int_of(spec, "leaseTransitions") {
        errs.extend(nonnegative(t, "spec.leaseTransitions"));
    }
    errs
}

/// Upstream `ValidateEventCreate` for `v1` and `events.k8s.io/v1` (the two spell the object
/// reference and reporter fields differently).
pub fn validate_event(obj: &Value, events_group: bool) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    let ns = obj
        .get("metadata")
        .map(|m| str_of(m, "namespace"))
        .unwrap_or("");
    let (regarding_key, controller_key) = if events_group {
        ("regarding", "reportingController")
    } else {
        ("involvedObject", "reportingComponent")
    };
    let regarding = obj.get(regarding_key).unwrap_or(&Value::Null);
    let regarding_ns = str_of(regarding, "namespace");
    let new_style = !str_of(obj, "eventTime").is_empty();
    if !new_style {
        if events_group {
            errs.push(FieldError::required("eventTime", ""));
        }
        let ok = if regarding_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == regarding_ns
        };
        if !ok {
            errs.push(FieldError::invalid(
                format!("{regarding_key}.namespace"),
                regarding_ns,
                "does not match event.namespace",
            ));
        }
    } else {
        if regarding_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(FieldError::invalid(
                format!("{regarding_key}.namespace"),
                regarding_ns,
                "does not match event.namespace",
            ));
        }
        let controller = str_of(
            obj,
            if events_group {
                "reportingController"
            } else {
                "reportingComponent"
            },
        );
        if controller.is_empty() {
            errs.push(FieldError::required(controller_key, ""));
        }
        for msg in names::qualified_name(controller) {
            errs.push(FieldError::invalid(controller_key, controller, msg));
        }
        for key in ["reportingInstance", "action", "reason"] {
            if str_of(obj, key).is_empty() {
                errs.push(FieldError::required(key, ""));
            }
        }
    }
    errs
}

/// Upstream `ValidateControllerRevision`.
pub fn validate_controller_revision(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    if obj.get("data").is_none_or(Value::is_null) {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    errs.extend(nonnegative(
        int_of(obj, "revision").unwrap_or(0),
        "revision",
    ));
    errs
}

/// Upstream `ValidateControllerRevisionUpdate`: `data` is immutable.
pub fn validate_controller_revision_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta_update(new, old);
    errs.extend(validate_controller_revision(new));
    if value_of(new, "data") != value_of(old, "data") {
        errs.push(FieldError::invalid(
            "data",
            value_of(new, "data"),
            "field is immutable",
        ));
    }
    errs
}
