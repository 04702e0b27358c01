//! StatefulSet validation exactly as kube-apiserver 1.33 (`pkg/apis/apps/validation`):
//! see `spec/statefulset.md` §2. Most of the pod template is deliberately NOT validated (§2.1
//! item 11): only selector/label agreement, template label/annotation syntax, `restartPolicy` and
//! `activeDeadlineSeconds`.

use serde_json::{Value, json};

use super::json::{has, int_of, obj_of, semantic_eq, str_of};
use super::meta::{
    meta_create, meta_update, nonnegative, selector_is_empty, selector_matches,
    validate_annotations, validate_label_selector, validate_labels,
};
use super::names;
use crate::error::FieldError;

/// Upstream `ValidateStatefulSet`.
pub fn validate_create(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_label);
    errs.extend(validate_spec(obj.get("spec").unwrap_or(&Value::Null)));
    errs
}

/// Upstream `ValidateStatefulSetUpdate`: metadata rules, the whole spec again, then the
/// immutability check (the name is deliberately not re-validated).
pub fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let mut errs = meta_update(new, old);
    let new_spec = new.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    errs.extend(validate_spec(new_spec));
    let mut clone = match new_spec {
        Value::Object(m) => m.clone(),
        _ => Default::default(),
    };
    for key in [
        "replicas",
        "template",
        "updateStrategy",
        "minReadySeconds",
        "ordinals",
        "persistentVolumeClaimRetentionPolicy",
    ] {
        match old_spec.get(key) {
            Some(v) => clone.insert(key.to_string(), v.clone()),
            None => clone.remove(key),
        };
    }
    if !semantic_eq(&Value::Object(clone), old_spec) {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    errs
}

/// Upstream `ValidateStatefulSetStatusUpdate`.
pub fn validate_status_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let status = new.get("status").unwrap_or(&null);
    let mut errs = validate_status(status);
    errs.extend(meta_update(new, old));
    let new_cc = int_of(status, "collisionCount");
    let old_cc = old.get("status").and_then(|s| int_of(s, "collisionCount"));
    // Upstream `IsDecremented`: only when both are set, or the new one was dropped.
    let decremented = match (new_cc, old_cc) {
        (Some(n), Some(o)) => n < o,
        (None, Some(_)) => true,
        _ => false,
    };
    if decremented {
        errs.push(FieldError::invalid(
            "status.collisionCount",
            new_cc.unwrap_or(0),
            "cannot be decremented",
        ));
    }
    errs
}

fn validate_status(status: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let get = |k: &str| int_of(status, k).unwrap_or(0);
    for key in [
        "replicas",
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
    ] {
        errs.extend(nonnegative(get(key), &format!("status.{key}")));
    }
    for key in ["observedGeneration", "collisionCount"] {
        if let Some(v) = int_of(status, key) {
            errs.extend(nonnegative(v, &format!("status.{key}")));
        }
    }
    let replicas = get("replicas");
    for key in [
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
    ] {
        if get(key) > replicas {
            errs.push(FieldError::invalid(
                format!("status.{key}"),
                get(key),
                "cannot be greater than status.replicas",
            ));
        }
    }
    if get("availableReplicas") > get("readyReplicas") {
        errs.push(FieldError::invalid(
            "status.availableReplicas",
            get("availableReplicas"),
            "cannot be greater than status.readyReplicas",
        ));
    }
    errs
}

/// Upstream `ValidateStatefulSetSpec`.
fn validate_spec(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match str_of(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }

    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    let rolling = strategy.get("rollingUpdate").filter(|r| !r.is_null());
    match str_of(strategy, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(r) = rolling {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    r.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(r) = rolling {
                errs.extend(validate_rolling_update(r));
            }
        }
        _ => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            strategy.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }

    if let Some(policy) = spec
        .get("persistentVolumeClaimRetentionPolicy")
        .filter(|p| !p.is_null())
    {
        for key in ["whenDeleted", "whenScaled"] {
            let v = str_of(policy, key);
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{key}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }

    errs.extend(nonnegative(
        int_of(spec, "replicas").unwrap_or(0),
        "spec.replicas",
    ));
    errs.extend(nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        "spec.minReadySeconds",
    ));
    if let Some(ordinals) = spec.get("ordinals").filter(|o| !o.is_null()) {
        errs.extend(nonnegative(
            int_of(ordinals, "start").unwrap_or(0),
            "spec.ordinals.start",
        ));
    }

    let selector = spec.get("selector").filter(|s| !s.is_null());
    let mut selector_ok = true;
    match selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            let sel_errs = validate_label_selector(sel, "spec.selector");
            selector_ok = sel_errs.is_empty();
            errs.extend(sel_errs);
            if selector_is_empty(sel) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    "empty selector is invalid for statefulset",
                ));
            }
        }
    }

    let template = spec.get("template").unwrap_or(&Value::Null);
    let tmeta = template.get("metadata").unwrap_or(&Value::Null);
    if !selector_ok {
        // Upstream: `LabelSelectorAsSelector` failed; the template is then not checked.
        errs.push(FieldError::invalid(
            "spec.selector",
            selector.cloned().unwrap_or(Value::Null),
            "",
        ));
    } else {
        let empty = selector.is_some_and(selector_is_empty);
        let labels = tmeta.get("labels").cloned().unwrap_or_else(|| json!({}));
        if !empty && !selector_matches(selector, &labels) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            ));
        }
        errs.extend(validate_labels(
            tmeta.get("labels").unwrap_or(&Value::Null),
            "spec.template.labels",
        ));
        errs.extend(validate_annotations(
            tmeta.get("annotations").unwrap_or(&Value::Null),
            "spec.template.annotations",
        ));
    }

    let pod_spec = template.get("spec").unwrap_or(&Value::Null);
    let restart = str_of(pod_spec, "restartPolicy");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            restart,
            &["Always"],
        ));
    }
    if has(pod_spec, "activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

/// Upstream `validateRollingUpdateStatefulSet`.
fn validate_rolling_update(r: &Value) -> Vec<FieldError> {
    let path = "spec.updateStrategy.rollingUpdate";
    let mut errs = nonnegative(
        int_of(r, "partition").unwrap_or(0),
        &format!("{path}.partition"),
    );
    let mu_path = format!("{path}.maxUnavailable");
    match r.get("maxUnavailable") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            for msg in names::percent(s) {
                errs.push(FieldError::invalid(&mu_path, s.as_str(), msg));
            }
            let pct = percent_value(s);
            // A malformed string counts as 0 (upstream `IntValue` of a non-numeric string).
            if pct.unwrap_or_else(|| s.parse::<i64>().unwrap_or(0)) == 0 {
                errs.push(FieldError::invalid(&mu_path, s.as_str(), "cannot be 0"));
            }
            if pct.is_some_and(|p| p > 100) {
                errs.push(FieldError::invalid(
                    &mu_path,
                    s.as_str(),
                    "must not be greater than 100%",
                ));
            }
        }
        Some(v) => {
            let n = v.as_i64().unwrap_or(0);
            errs.extend(nonnegative(n, &mu_path));
            if n == 0 {
                errs.push(FieldError::invalid(&mu_path, n, "cannot be 0"));
            }
        }
    }
    errs
}

/// The number of a valid percent string (`"25%"` → 25).
fn percent_value(s: &str) -> Option<i64> {
    if !names::percent(s).is_empty() {
        return None;
    }
    s.trim_end_matches('%').parse().ok()
}

/// Whether the object (new or old) sets `rollingUpdate.maxUnavailable`; used by the caller's
/// disabled-field dropping.
pub fn uses_max_unavailable(obj: &Value) -> bool {
    obj.get("spec")
        .and_then(|s| s.get("updateStrategy"))
        .and_then(|u| obj_of(u, "rollingUpdate"))
        .is_some_and(|r| r.get("maxUnavailable").is_some_and(|m| !m.is_null()))
}
