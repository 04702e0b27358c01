//! PodSpec defaulting (upstream `SetDefaults_PodSpec`, `SetDefaults_Container`, probes, volume
//! sources, field refs), shared by Pods and every pod template; plus the Pod-only defaults
//! (`SetDefaults_Pod`: requests from limits, `enableServiceLinks`, host-network ports) and the Pod
//! create-time status (`phase: Pending`, `qosClass`).

use serde_json::{Value, json};

use super::{child, each, set_if_absent, set_if_empty, set_if_zero};
use crate::validation::quantity;

/// Upstream `DefaultTerminationGracePeriodSeconds`.
pub const DEFAULT_TERMINATION_GRACE_PERIOD: i64 = 30;

/// Defaults a whole Pod.
pub fn apply_pod(pod: &mut Value) {
    let Some(spec) = child(pod, "spec") else {
        return;
    };
    apply_pod_only(spec);
    apply_pod_spec(spec);
}

/// `SetDefaults_Pod`: only for Pods, never for templates (so not in revision hashes).
fn apply_pod_only(spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        each(spec, list, |c| {
            let Some(limits) = c
                .pointer("/resources/limits")
                .and_then(Value::as_object)
                .cloned()
            else {
                return;
            };
            let Some(resources) = child(c, "resources") else {
                return;
            };
            let Some(requests) = child(resources, "requests").and_then(Value::as_object_mut) else {
                return;
            };
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        });
    }
    set_if_absent(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            each(spec, list, |c| {
                each(c, "ports", |p| {
                    if let Some(cp) = p.get("containerPort").cloned() {
                        set_if_zero(p, "hostPort", cp);
                    }
                })
            });
        }
    }
}

/// `SetDefaults_PodSpec` and everything nested in a PodSpec.
pub fn apply_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_if_empty(spec, "dnsPolicy", json!("ClusterFirst"));
    set_if_empty(spec, "restartPolicy", json!("Always"));
    set_if_absent(spec, "securityContext", json!({}));
    set_if_absent(
        spec,
        "terminationGracePeriodSeconds",
        json!(DEFAULT_TERMINATION_GRACE_PERIOD),
    );
    set_if_empty(spec, "schedulerName", json!("default-scheduler"));
    sync_service_account(spec);
    each(spec, "volumes", apply_volume);
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each(spec, list, apply_container);
    }
}

/// Conversion keeps the deprecated `serviceAccount` equal to `serviceAccountName`.
fn sync_service_account(spec: &mut Value) {
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let old = spec
        .get("serviceAccount")
        .and_then(Value::as_str)
        .unwrap_or("");
    let effective = if name.is_empty() {
        old.to_string()
    } else {
        name.to_string()
    };
    if !effective.is_empty() {
        spec["serviceAccountName"] = json!(effective);
        spec["serviceAccount"] = json!(effective);
    }
}

/// `SetDefaults_Container` and nested defaulters.
fn apply_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = image_pull_policy(image);
    set_if_empty(c, "imagePullPolicy", json!(policy));
    set_if_empty(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_if_empty(c, "terminationMessagePolicy", json!("File"));
    each(c, "ports", |p| set_if_empty(p, "protocol", json!("TCP")));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            apply_probe(p);
        }
    }
    for hook in ["postStart", "preStop"] {
        if let Some(h) = c
            .pointer_mut(&format!("/lifecycle/{hook}"))
            .filter(|h| h.is_object())
        {
            apply_handler(h);
        }
    }
    each(c, "env", |e| {
        if let Some(from) = e.get_mut("valueFrom").filter(|f| f.is_object()) {
            apply_field_refs(from);
        }
    });
}

/// `SetDefaults_Probe` plus the handler defaults.
fn apply_probe(p: &mut Value) {
    set_if_zero(p, "timeoutSeconds", json!(1));
    set_if_zero(p, "periodSeconds", json!(10));
    set_if_zero(p, "successThreshold", json!(1));
    set_if_zero(p, "failureThreshold", json!(3));
    apply_handler(p);
}

/// `SetDefaults_HTTPGetAction` (path `/`, scheme `HTTP`) and the gRPC service default `""`.
fn apply_handler(h: &mut Value) {
    if let Some(get) = h.get_mut("httpGet").filter(|g| g.is_object()) {
        set_if_empty(get, "path", json!("/"));
        set_if_empty(get, "scheme", json!("HTTP"));
    }
    if let Some(grpc) = h.get_mut("grpc").filter(|g| g.is_object()) {
        set_if_absent(grpc, "service", json!(""));
    }
}

/// `fieldRef.apiVersion` → `v1`; `resourceFieldRef.divisor` serializes as `"0"` upstream.
fn apply_field_refs(holder: &mut Value) {
    if let Some(f) = holder.get_mut("fieldRef").filter(|f| f.is_object()) {
        set_if_empty(f, "apiVersion", json!("v1"));
    }
    if let Some(r) = holder.get_mut("resourceFieldRef").filter(|r| r.is_object()) {
        set_if_absent(r, "divisor", json!("0"));
    }
}

/// `SetDefaults_Volume` (no source → `emptyDir: {}`) and the per-source defaulters.
fn apply_volume(v: &mut Value) {
    if !v.is_object() {
        return;
    }
    let has_source = crate::validation::volume_source_names()
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()));
    if !has_source {
        v["emptyDir"] = json!({});
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = v.get_mut(key).filter(|s| s.is_object()) {
            set_if_absent(src, "defaultMode", json!(420));
        }
    }
    if let Some(d) = v.get_mut("downwardAPI").filter(|d| d.is_object()) {
        each(d, "items", apply_field_refs);
    }
    if let Some(p) = v.get_mut("projected").filter(|p| p.is_object()) {
        each(p, "sources", |s| {
            if let Some(t) = s.get_mut("serviceAccountToken").filter(|t| t.is_object()) {
                set_if_absent(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = s.get_mut("downwardAPI").filter(|d| d.is_object()) {
                each(d, "items", apply_field_refs);
            }
        });
    }
    if let Some(h) = v.get_mut("hostPath").filter(|h| h.is_object()) {
        set_if_absent(h, "type", json!(""));
    }
    if let Some(i) = v.get_mut("iscsi").filter(|i| i.is_object()) {
        set_if_empty(i, "iscsiInterface", json!("default"));
    }
    if let Some(r) = v.get_mut("rbd").filter(|r| r.is_object()) {
        set_if_empty(r, "pool", json!("rbd"));
        set_if_empty(r, "user", json!("admin"));
        set_if_empty(r, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(spec) = v
        .pointer_mut("/ephemeral/volumeClaimTemplate/spec")
        .filter(|s| s.is_object())
    {
        set_if_absent(spec, "volumeMode", json!("Filesystem"));
    }
}

/// Upstream's rule: `Always` when the reference's tag is `latest` (an untagged, undigested image
/// counts as `latest`), else `IfNotPresent` (also for references that do not parse).
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return "IfNotPresent";
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    // The path (after an optional domain) must be lower case, or the reference does not parse.
    let path = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => name,
    };
    let path_no_tag = path.rsplit_once(':').map_or(path, |(p, _)| p);
    if path_no_tag.chars().any(|c| c.is_ascii_uppercase()) {
        return "IfNotPresent";
    }
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

/// Pod create-time fills: `status.phase: Pending`, `status.qosClass`, and the service account
/// admission default `default`.
pub fn prepare_pod(pod: &mut Value) {
    let qos = qos_class(pod.get("spec").unwrap_or(&Value::Null));
    if let Some(spec) = child(pod, "spec") {
        set_if_empty(spec, "serviceAccountName", json!("default"));
        sync_service_account(spec);
    }
    if let Some(status) = child(pod, "status") {
        set_if_empty(status, "phase", json!("Pending"));
        status["qosClass"] = json!(qos);
    }
}

/// Upstream `GetPodQOS` over containers and init containers (cpu and memory only).
pub fn qos_class(spec: &Value) -> &'static str {
    let mut requests: Vec<(String, f64)> = Vec::new();
    let mut limits: Vec<(String, f64)> = Vec::new();
    let mut guaranteed = true;
    let add = |acc: &mut Vec<(String, f64)>, k: &str, v: f64| match acc
        .iter_mut()
        .find(|(n, _)| n == k)
    {
        Some((_, total)) => *total += v,
        None => acc.push((k.to_string(), v)),
    };
    let containers = ["containers", "initContainers"].iter().flat_map(|l| {
        spec.get(*l)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    });
    for c in containers {
        for (which, acc) in [("requests", &mut requests), ("limits", &mut limits)] {
            let mut found = Vec::new();
            if let Some(m) = c
                .pointer(&format!("/resources/{which}"))
                .and_then(Value::as_object)
            {
                for (k, q) in m {
                    if k != "cpu" && k != "memory" {
                        continue;
                    }
                    if let Some(v) = quantity::of_value(q).filter(|v| *v > 0.0) {
                        add(acc, k, v);
                        found.push(k.clone());
                    }
                }
            }
            if which == "limits"
                && !(found.iter().any(|k| k == "cpu") && found.iter().any(|k| k == "memory"))
            {
                guaranteed = false;
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        for (k, req) in &requests {
            if limits
                .iter()
                .find(|(n, _)| n == k)
                .is_none_or(|(_, lim)| lim != req)
            {
                guaranteed = false;
            }
        }
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
