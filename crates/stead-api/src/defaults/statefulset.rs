//! StatefulSet defaulting (`SetDefaults_StatefulSet`, statefulset.md §1) including the nested pod
//! template and claim template defaults, and the Go wire-presence rules (§1 item 9).

use serde_json::{Value, json};

use super::{Features, child, each, pod, set_if_absent, set_if_empty, storage};

/// Defaults a whole StatefulSet in place.
pub fn apply(obj: &mut Value, features: Features) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    set_if_empty(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(strategy) = child(spec, "updateStrategy") {
        let ty_empty = strategy
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if ty_empty {
            strategy["type"] = json!("RollingUpdate");
            set_if_absent(strategy, "rollingUpdate", json!({}));
        }
        let rolling = strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate");
        if let Some(r) = strategy
            .get_mut("rollingUpdate")
            .filter(|r| rolling && r.is_object())
        {
            set_if_absent(r, "partition", json!(0));
            if features.max_unavailable_statefulset {
                set_if_absent(r, "maxUnavailable", json!(1));
            }
        }
    }
    if let Some(policy) = child(spec, "persistentVolumeClaimRetentionPolicy") {
        set_if_empty(policy, "whenDeleted", json!("Retain"));
        set_if_empty(policy, "whenScaled", json!("Retain"));
    }
    set_if_absent(spec, "replicas", json!(1));
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    // Go serializes these without omitempty.
    set_if_absent(spec, "serviceName", json!(""));
    if let Some(template) = child(spec, "template") {
        if let Some(meta) = child(template, "metadata") {
            embedded_meta(meta);
        }
        if let Some(pod_spec) = template.get_mut("spec").filter(|s| s.is_object()) {
            pod::apply_pod_spec(pod_spec);
        }
    }
    each(spec, "volumeClaimTemplates", |claim| {
        if !claim.is_object() {
            return;
        }
        set_if_empty(claim, "apiVersion", json!("v1"));
        set_if_empty(claim, "kind", json!("PersistentVolumeClaim"));
        if let Some(meta) = child(claim, "metadata") {
            embedded_meta(meta);
        }
        storage::apply_claim(claim);
    });
    if let Some(status) = child(obj, "status") {
        set_if_absent(status, "replicas", json!(0));
        set_if_absent(status, "availableReplicas", json!(0));
    }
}

/// An embedded `ObjectMeta` serializes its zero `creationTimestamp` as `null` in 1.33.
fn embedded_meta(meta: &mut Value) {
    if let Some(m) = meta.as_object_mut() {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
}
