//! `metadata` validation shared by every kind (upstream `ValidateObjectMeta` /
//! `ValidateObjectMetaUpdate`), plus labels, annotations and label selectors, which kinds also use
//! on nested templates.

use serde_json::{Value, json};

use super::json::{arr_of, int_of, obj_of, str_of, string_map, value_of};
use super::names;
use crate::error::FieldError;

/// Upstream `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// A `ValidateNameFunc`: the messages for a bad name (`prefix` = it is a generateName).
pub type NameFn = fn(&str, bool) -> Vec<String>;

/// Create-time metadata validation. `meta` is the object's `metadata` (or `Null`).
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_fn: NameFn,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = str_of(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                format!("{path}.generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = str_of(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid(format!("{path}.name"), name, msg));
        }
    }
    let namespace = str_of(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(format!("{path}.namespace"), ""));
        } else {
            for msg in names::name_is_dns_label(namespace, false) {
                errs.push(FieldError::invalid(
                    format!("{path}.namespace"),
                    namespace,
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            format!("{path}.namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = int_of(meta, "generation") {
        errs.extend(nonnegative(g, &format!("{path}.generation")));
    }
    errs.extend(validate_common(meta, path));
    errs.extend(validate_finalizers(meta, &format!("{path}.finalizers")));
    errs
}

/// Labels, annotations and owner references: checked on create and on update.
fn validate_common(meta: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_labels(
        meta.get("labels").unwrap_or(&Value::Null),
        &format!("{path}.labels"),
    );
    errs.extend(validate_annotations(
        meta.get("annotations").unwrap_or(&Value::Null),
        &format!("{path}.annotations"),
    ));
    errs.extend(validate_owner_references(
        meta,
        &format!("{path}.ownerReferences"),
    ));
    errs
}

/// [`validate_object_meta`] of the whole object `obj`'s `metadata`.
pub fn meta_create(obj: &Value, namespaced: bool, name_fn: NameFn) -> Vec<FieldError> {
    validate_object_meta(
        obj.get("metadata").unwrap_or(&Value::Null),
        namespaced,
        name_fn,
        "metadata",
    )
}

/// [`validate_object_meta_update`] of the whole objects' `metadata`.
pub fn meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    validate_object_meta_update(
        new.get("metadata").unwrap_or(&null),
        old.get("metadata").unwrap_or(&null),
        "metadata",
    )
}

/// Update-time metadata validation (upstream `ValidateObjectMetaAccessorUpdate`). The caller must
/// have copied the stored `resourceVersion` into `new` for unconditional updates, as upstream's
/// store does before validating.
pub fn validate_object_meta_update(new: &Value, old: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
        let old_f: Vec<&str> = arr_of(old, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut extra: Vec<&str> = arr_of(new, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
            errs.push(FieldError::forbidden(
                format!("{path}.finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    let rv = str_of(new, "resourceVersion");
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            format!("{path}.resourceVersion"),
            rv,
            "must be specified for an update",
        ));
    }
    let (new_gen, old_gen) = (
        int_of(new, "generation").unwrap_or(0),
        int_of(old, "generation").unwrap_or(0),
    );
    if new_gen < old_gen {
        errs.push(FieldError::invalid(
            format!("{path}.generation"),
            new_gen,
            "must not be decremented",
        ));
    }
    for key in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let (n, o) = (value_of(new, key), value_of(old, key));
        if !same_scalar(&n, &o) {
            let shown = if n.is_null() && matches!(key, "name" | "namespace" | "uid") {
                json!("")
            } else {
                n
            };
            errs.push(FieldError::invalid(
                format!("{path}.{key}"),
                shown,
                "field is immutable",
            ));
        }
    }
    errs.extend(validate_common(new, path));
    errs
}

/// `null`, absent and `""` are the same Go zero value for these scalar fields.
fn same_scalar(a: &Value, b: &Value) -> bool {
    let zero = |v: &Value| v.is_null() || v.as_str() == Some("");
    (zero(a) && zero(b)) || a == b
}

/// A required field with a fixed set of values: `Required` when `value` is empty, `Unsupported
/// value` (listing `supported` in this order) when it is not one of them.
pub fn required_one_of(path: &str, value: &str, supported: &[&str]) -> Option<FieldError> {
    if value.is_empty() {
        Some(FieldError::required(path, ""))
    } else if !supported.contains(&value) {
        Some(FieldError::not_supported(path, value, supported))
    } else {
        None
    }
}

/// `must be greater than or equal to 0`.
pub fn nonnegative(value: i64, path: &str) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(
            path,
            value,
            "must be greater than or equal to 0",
        )]
    } else {
        Vec::new()
    }
}

/// Upstream `ValidateLabels`: errors carry the map's path, never the key.
pub fn validate_labels(labels: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let wrapper = json!({ "l": labels });
    for (k, v) in string_map(&wrapper, "l") {
        errs.extend(validate_label_name(k, path));
        for msg in names::label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// Upstream `ValidateLabelName`.
pub fn validate_label_name(key: &str, path: &str) -> Vec<FieldError> {
    names::qualified_name(key)
        .into_iter()
        .map(|msg| FieldError::invalid(path, key, msg))
        .collect()
}

/// Upstream `ValidateAnnotations`: keys are case-insensitive qualified names; total size ≤ 256 KiB.
pub fn validate_annotations(annotations: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = annotations.as_object() else {
        return errs;
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        for msg in names::qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
    }
    let size: usize = map
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// Upstream `ValidateOwnerReferences`.
fn validate_owner_references(meta: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    let refs = arr_of(meta, "ownerReferences");
    for r in refs {
        let api_version = str_of(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            let v = str_of(r, key);
            if v.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{path}.{key}"),
                    v,
                    "must not be empty",
                ));
            }
        }
        if api_version == "v1" && str_of(r, "kind") == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let cur = format!("{}/{}", str_of(r, "kind"), str_of(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"),
                )),
                None => first_controller = Some(cur),
            }
        }
    }
    errs
}

/// Upstream `ValidateFinalizers`.
fn validate_finalizers(meta: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let finalizers: Vec<&str> = arr_of(meta, "finalizers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in &finalizers {
        for msg in names::qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, msg));
        }
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            json!(finalizers),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Upstream `ValidateLabelSelector` with `AllowInvalidLabelValueInSelector: false`.
pub fn validate_label_selector(selector: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_labels(
        selector.get("matchLabels").unwrap_or(&Value::Null),
        &format!("{path}.matchLabels"),
    );
    for (i, expr) in arr_of(selector, "matchExpressions").iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = arr_of(expr, "values");
        match str_of(expr, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                format!("{p}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_label_name(
            str_of(expr, "key"),
            &format!("{p}.key"),
        ));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in names::label_value(v) {
                errs.push(FieldError::invalid(format!("{p}.values[{j}]"), v, msg));
            }
        }
    }
    errs
}

/// Whether `selector` (a `LabelSelector`) matches `labels`; `None` selector matches nothing and an
/// empty one everything, as upstream's `LabelSelectorAsSelector`.
pub fn selector_matches(selector: Option<&Value>, labels: &Value) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return false;
    };
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(ml) = obj_of(sel, "matchLabels") {
        for (k, v) in ml {
            if get(k) != v.as_str() {
                return false;
            }
        }
    }
    for expr in arr_of(sel, "matchExpressions") {
        let key = str_of(expr, "key");
        let values: Vec<&str> = arr_of(expr, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let ok = match str_of(expr, "operator") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether the selector has neither `matchLabels` nor `matchExpressions` entries.
pub fn selector_is_empty(selector: &Value) -> bool {
    obj_of(selector, "matchLabels").is_none_or(|m| m.is_empty())
        && arr_of(selector, "matchExpressions").is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_missing_name_says_name_or_generate_name_is_required() {
        // Ref: apimachinery ValidateObjectMetaAccessor
        let errs = validate_object_meta(
            &json!({"namespace": "default"}),
            true,
            names::name_is_dns_subdomain,
            "metadata",
        );
        assert_eq!(
            strings(&errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
    }

    #[test]
    fn namespace_is_required_for_namespaced_and_forbidden_for_cluster_kinds() {
        let errs = validate_object_meta(
            &json!({"name": "a"}),
            true,
            names::name_is_dns_subdomain,
            "metadata",
        );
        assert_eq!(strings(&errs), vec!["metadata.namespace: Required value"]);
        let errs = validate_object_meta(
            &json!({"name": "a", "namespace": "x"}),
            false,
            names::name_is_dns_subdomain,
            "metadata",
        );
        assert_eq!(
            strings(&errs),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn bad_label_values_and_keys_report_the_labels_path() {
        let meta = json!({"name": "a", "namespace": "d", "labels": {"a/b/c": "ok", "k": "-bad"}});
        let errs = strings(&validate_object_meta(
            &meta,
            true,
            names::name_is_dns_subdomain,
            "metadata",
        ));
        assert_eq!(errs.len(), 2);
        assert!(errs[0].starts_with(
            "metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist"
        ));
        assert!(errs[1].starts_with(
            "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string"
        ));
    }

    #[test]
    fn owner_references_need_kind_name_uid_and_one_controller() {
        let meta = json!({"name": "a", "namespace": "d", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "1", "controller": true},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "", "uid": "2", "controller": true}
        ]});
        let errs = strings(&validate_object_meta(
            &meta,
            true,
            names::name_is_dns_subdomain,
            "metadata",
        ));
        assert_eq!(
            errs[0],
            "metadata.ownerReferences.name: Invalid value: \"\": must not be empty"
        );
        assert!(errs[1].ends_with(
            "Only one reference can have Controller set to true. Found \"true\" in references for StatefulSet/web and StatefulSet/"
        ));
    }

    #[test]
    fn update_rejects_renames_and_missing_resource_version() {
        // Ref: apimachinery ValidateObjectMetaAccessorUpdate
        let old = json!({"name": "a", "namespace": "d", "uid": "u1", "resourceVersion": "5"});
        let new = json!({"name": "b", "namespace": "d", "uid": "u1"});
        assert_eq!(
            strings(&validate_object_meta_update(&new, &old, "metadata")),
            vec![
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
                "metadata.name: Invalid value: \"b\": field is immutable",
            ]
        );
    }

    #[test]
    fn no_new_finalizers_once_deleting() {
        let old = json!({"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["x.io/a"]});
        let new = json!({"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["x.io/a", "x.io/b"]});
        assert_eq!(
            strings(&validate_object_meta_update(&new, &old, "metadata")),
            vec![
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x.io/b\"}"
            ]
        );
    }

    #[test]
    fn selectors_match_like_upstream() {
        let labels = json!({"app": "nginx", "tier": "web"});
        assert!(!selector_matches(None, &labels));
        assert!(selector_matches(Some(&json!({})), &labels));
        assert!(selector_matches(
            Some(&json!({"matchLabels": {"app": "nginx"}})),
            &labels
        ));
        assert!(!selector_matches(
            Some(
                &json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]})
            ),
            &labels
        ));
        let errs = validate_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            "spec.selector",
        );
        assert_eq!(
            strings(&errs),
            vec![
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            ]
        );
    }
}
