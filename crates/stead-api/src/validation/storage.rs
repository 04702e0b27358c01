//! PersistentVolumeClaim, PersistentVolume and StorageClass validation (upstream
//! `pkg/apis/core/validation` and `pkg/apis/storage/validation`).

use serde_json::{Value, json};

use super::json::{arr_of, has, obj_of, semantic_eq, str_of, value_of};
use super::meta::{meta_create, meta_update, validate_label_selector};
use super::names;
use super::pod::VOLUME_SOURCES;
use super::quantity;
use crate::error::FieldError;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

fn access_modes(spec: &Value, path: &str, errs: &mut Vec<FieldError>, required_detail: &str) {
    let modes = arr_of(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.accessModes"),
            required_detail,
        ));
    }
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported(
                format!("{path}.accessModes"),
                m,
                ACCESS_MODES,
            ));
        }
    }
}

fn class_name(spec: &Value, key: &str, path: &str, errs: &mut Vec<FieldError>) {
    let class = str_of(spec, key);
    if !class.is_empty() {
        for msg in names::name_is_dns_subdomain(class, false) {
            errs.push(FieldError::invalid(format!("{path}.{key}"), class, msg));
        }
    }
}

fn volume_mode(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str)
        && !VOLUME_MODES.contains(&mode)
    {
        errs.push(FieldError::not_supported(
            format!("{path}.volumeMode"),
            mode,
            VOLUME_MODES,
        ));
    }
}

/// Upstream `ValidatePersistentVolumeClaimSpec` at `path` (also used for StatefulSet claim
/// templates by nobody in 1.33, see `statefulset.md` §2.1 item 11).
pub fn validate_claim_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    access_modes(spec, path, &mut errs, "at least 1 access mode is required");
    if let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) {
        errs.extend(validate_label_selector(sel, &format!("{path}.selector")));
    }
    let storage_path = format!("{path}.resources[storage]");
    match spec
        .get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(FieldError::required(storage_path, "")),
        Some(q) => {
            if quantity::of_value(q).is_none_or(|v| v <= 0.0) {
                errs.push(FieldError::invalid(
                    storage_path,
                    q.clone(),
                    "must be greater than zero",
                ));
            }
        }
    }
    class_name(spec, "storageClassName", path, &mut errs);
    volume_mode(spec, path, &mut errs);
    errs
}

/// Upstream `ValidatePersistentVolumeClaim`.
pub fn validate_claim_create(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    errs.extend(validate_claim_spec(
        obj.get("spec").unwrap_or(&Value::Null),
        "spec",
    ));
    errs
}

/// Upstream `ValidatePersistentVolumeClaimUpdate`: spec immutable except requests (bound claims),
/// a first `volumeName`, and `volumeAttributesClassName`; size may not shrink.
pub fn validate_claim_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta_update(new, old);
    errs.extend(validate_claim_create(new));
    let null = Value::Null;
    let (ns, os) = (
        new.get("spec").unwrap_or(&null),
        old.get("spec").unwrap_or(&null),
    );
    let mut new_clone = ns.clone();
    let mut old_clone = os.clone();
    if str_of(os, "volumeName").is_empty()
        && let Some(m) = old_clone.as_object_mut()
    {
        m.insert("volumeName".into(), value_of(ns, "volumeName"));
    }
    if !has(os, "storageClassName")
        && let Some(m) = old_clone.as_object_mut()
    {
        m.insert("storageClassName".into(), value_of(ns, "storageClassName"));
    }
    let bound = new.get("status").map(|s| str_of(s, "phase")) == Some("Bound");
    let old_storage = os
        .get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| r.get("storage"))
        .cloned();
    if let Some(m) = new_clone.as_object_mut() {
        m.insert(
            "volumeAttributesClassName".into(),
            value_of(os, "volumeAttributesClassName"),
        );
        if bound
            && let Some(req) = m
                .get_mut("resources")
                .and_then(|r| r.get_mut("requests"))
                .and_then(Value::as_object_mut)
        {
            match &old_storage {
                Some(s) => req.insert("storage".into(), s.clone()),
                None => req.remove("storage"),
            };
        }
    }
    if !semantic_eq(&new_clone, &old_clone) {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    let size = |s: &Value| {
        s.get("resources")
            .and_then(|r| r.get("requests"))
            .and_then(|r| r.get("storage"))
            .and_then(quantity::of_value)
    };
    if let (Some(n), Some(o)) = (size(ns), size(os))
        && n < o
    {
        errs.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than previous value",
        ));
    }
    errs
}

/// Upstream `ValidatePersistentVolume`.
pub fn validate_volume_create(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, false, names::name_is_dns_subdomain);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    access_modes(spec, "spec", &mut errs, "");
    let capacity = obj_of(spec, "capacity");
    if capacity.is_none_or(|c| c.is_empty()) {
        errs.push(FieldError::required("spec.capacity", ""));
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        errs.push(FieldError::not_supported(
            "spec.capacity",
            value_of(spec, "capacity"),
            &["storage"],
        ));
    }
    if let Some(c) = capacity {
        for (k, q) in c {
            if quantity::of_value(q).is_none_or(|v| v <= 0.0) {
                errs.push(FieldError::invalid(
                    format!("spec.capacity[{k}]"),
                    q.clone(),
                    "must be greater than zero",
                ));
            }
        }
    }
    let policy = str_of(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !["Delete", "Recycle", "Retain"].contains(&policy) {
        errs.push(FieldError::not_supported(
            "spec.persistentVolumeReclaimPolicy",
            policy,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let set: Vec<&str> = VOLUME_SOURCES
        .iter()
        .copied()
        .chain(["local"])
        .filter(|s| has(spec, s))
        .collect();
    match set.as_slice() {
        [] => errs.push(FieldError::required("spec", "must specify a volume type")),
        [first, rest @ ..] => {
            for s in rest {
                errs.push(FieldError::forbidden(
                    format!("spec.{s}"),
                    "may not specify more than 1 volume type",
                ));
            }
            if matches!(*first, "hostPath" | "local") && str_of(&spec[*first], "path").is_empty() {
                errs.push(FieldError::required(format!("spec.{first}.path"), ""));
            }
            if *first == "local" && !has(spec, "nodeAffinity") {
                errs.push(FieldError::required(
                    "spec.nodeAffinity",
                    "Local volume requires node affinity",
                ));
            }
        }
    }
    class_name(spec, "storageClassName", "spec", &mut errs);
    volume_mode(spec, "spec", &mut errs);
    errs
}

/// Upstream `ValidatePersistentVolumeUpdate`: the volume source and mode are immutable.
pub fn validate_volume_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta_update(new, old);
    errs.extend(validate_volume_create(new));
    let null = Value::Null;
    let (ns, os) = (
        new.get("spec").unwrap_or(&null),
        old.get("spec").unwrap_or(&null),
    );
    let source = |s: &Value| {
        let picked: serde_json::Map<String, Value> = VOLUME_SOURCES
            .iter()
            .chain(&["local"])
            .filter_map(|k| s.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        Value::Object(picked)
    };
    if !semantic_eq(&source(ns), &source(os)) {
        errs.push(FieldError::forbidden(
            "spec.persistentvolumesource",
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    if value_of(ns, "volumeMode") != value_of(os, "volumeMode") {
        errs.push(FieldError::invalid(
            "volumeMode",
            value_of(ns, "volumeMode"),
            "field is immutable",
        ));
    }
    if has(os, "nodeAffinity")
        && !semantic_eq(&value_of(ns, "nodeAffinity"), &value_of(os, "nodeAffinity"))
    {
        errs.push(FieldError::invalid(
            "nodeAffinity",
            value_of(ns, "nodeAffinity"),
            "field is immutable",
        ));
    }
    errs
}

/// Upstream `ValidateStorageClass`.
pub fn validate_class_create(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, false, names::name_is_dns_subdomain);
    let provisioner = str_of(obj, "provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        for msg in names::qualified_name(&provisioner.to_lowercase()) {
            errs.push(FieldError::invalid("provisioner", provisioner, msg));
        }
    }
    if let Some(params) = obj_of(obj, "parameters") {
        if params.len() > 512 {
            errs.push(FieldError::invalid(
                "parameters",
                params.len() as i64,
                "must have at most 512 items",
            ));
        }
        let mut size = 0;
        for (k, v) in params {
            if k.is_empty() {
                errs.push(FieldError::invalid(
                    "parameters",
                    "",
                    "field can not be empty.",
                ));
            }
            size += k.len() + v.as_str().map_or(0, str::len);
        }
        if size > 256 * 1024 {
            errs.push(FieldError::too_long("parameters", 256 * 1024));
        }
    }
    let policy = str_of(obj, "reclaimPolicy");
    if !policy.is_empty() && policy != "Delete" && policy != "Retain" {
        errs.push(FieldError::not_supported(
            "reclaimPolicy",
            policy,
            &["Delete", "Retain"],
        ));
    }
    match obj.get("volumeBindingMode").and_then(Value::as_str) {
        None => errs.push(FieldError::required("volumeBindingMode", "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(other) => errs.push(FieldError::not_supported(
            "volumeBindingMode",
            other,
            &["Immediate", "WaitForFirstConsumer"],
        )),
    }
    errs
}

/// Upstream `ValidateStorageClassUpdate`: parameters, provisioner, reclaim policy and binding
/// mode are fixed.
pub fn validate_class_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta_update(new, old);
    let params = |o: &Value| {
        o.get("parameters")
            .cloned()
            .filter(|p| !p.is_null())
            .unwrap_or(json!({}))
    };
    if params(new) != params(old) {
        errs.push(FieldError::forbidden(
            "parameters",
            "updates to parameters are forbidden.",
        ));
    }
    if str_of(new, "provisioner") != str_of(old, "provisioner") {
        errs.push(FieldError::forbidden(
            "provisioner",
            "updates to provisioner are forbidden.",
        ));
    }
    if str_of(new, "reclaimPolicy") != str_of(old, "reclaimPolicy") {
        errs.push(FieldError::forbidden(
            "reclaimPolicy",
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    if value_of(new, "volumeBindingMode") != value_of(old, "volumeBindingMode") {
        errs.push(FieldError::invalid(
            "volumeBindingMode",
            value_of(new, "volumeBindingMode"),
            "field is immutable",
        ));
    }
    errs
}
