//! Strategic merge patch (`application/strategic-merge-patch+json`) over `serde_json::Value`.
//!
//! Start at [`strategic_merge_patch`]. The behaviour follows upstream
//! `k8s.io/apimachinery/pkg/util/strategicpatch` `StrategicMergeMapPatch` (with
//! `MergeParallelList` and `IgnoreUnmatchedNulls` set, as the API server uses it):
//! - maps merge recursively; `null` deletes a key;
//! - lists whose field says `x-kubernetes-patch-strategy: merge` merge element-wise by
//!   `x-kubernetes-patch-merge-key` (lists of scalars merge as sets); other lists are replaced;
//! - directives: `$patch: replace|delete` on a map, `{"$patch": "replace"}` and
//!   `{<key>: v, "$patch": "delete"}` as list elements, `$retainKeys`,
//!   `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`.
//!
//! Merge strategies come from the OpenAPI v3 definitions (see [`super::schema_walk`]); where the
//! schema is unknown, maps merge like JSON merge patch and lists are replaced. One deliberate
//! difference: values copied from the patch (a key absent from the original, `$patch: replace`)
//! always have their directives and `null`s removed, so no `$…` key can reach storage.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::PatchError;
use super::error::go_fmt;
use super::json::go_json_kind;
use super::order::{index_of, normalize_element_order};
use super::schema_walk::Schema;

pub(crate) const DIRECTIVE: &str = "$patch";
pub(crate) const RETAIN_KEYS: &str = "$retainKeys";
pub(crate) const SET_ELEMENT_ORDER: &str = "$setElementOrder";
pub(crate) const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Applies `patch` to `original`, learning merge strategies from the OpenAPI v3 `schemas`
/// (`components.schemas`) starting at the definition `root` (`io.k8s.api.apps.v1.StatefulSet`).
///
/// `original` must be an object (or `null` for "nothing yet"); `patch` must be an object.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    schemas: &Map<String, Value>,
    root: &str,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_json_kind(patch)
        )));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::BadJsonDoc),
    };
    merge_map(original, patch, Schema::root(schemas, root)).map(Value::Object)
}

/// Merges a patch map into an original map (upstream `mergeMap`).
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Schema,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return map_directive(directive, patch);
    }
    apply_retain_keys(&mut original, patch)?;
    let ordered = merge_ordered_lists(&mut original, patch, schema)?;

    for (key, patch_v) in patch {
        if key == RETAIN_KEYS || key.starts_with(SET_ELEMENT_ORDER) || ordered.contains(key) {
            continue;
        }
        let (field, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(rest) => (
                rest.strip_prefix('/')
                    .ok_or(PatchError::BadPatchFormatForPrimitiveList)?,
                true,
            ),
            None => (key.as_str(), false),
        };
        if patch_v.is_null() {
            original.remove(field);
            continue;
        }
        let field_schema = schema.field(field);
        let Some(orig_v) = original.get_mut(field) else {
            if !delete_list && let Some(v) = strip_directives(patch_v) {
                original.insert(field.to_string(), v);
            }
            continue;
        };
        match (orig_v, patch_v) {
            (_, p) if delete_list && !p.is_array() => {
                return Err(PatchError::BadPatchFormatForPrimitiveList);
            }
            (Value::Array(o), Value::Array(p)) => {
                let merged = merge_list(std::mem::take(o), p, field_schema, delete_list)?;
                original.insert(field.to_string(), Value::Array(merged));
            }
            (_, _) if delete_list => {}
            (Value::Object(o), Value::Object(p)) => {
                let merged = if field_schema.replaces() {
                    strip_map(p)
                } else {
                    merge_map(std::mem::take(o), p, field_schema)?
                };
                original.insert(field.to_string(), Value::Object(merged));
            }
            (_, p) => match strip_directives(p) {
                Some(v) => {
                    original.insert(field.to_string(), v);
                }
                None => {
                    original.remove(field);
                }
            },
        }
    }
    Ok(original)
}

/// `$patch` on a map: `replace` keeps only the patch, `delete` empties the map.
fn map_directive(
    directive: &Value,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    match directive.as_str() {
        Some("replace") => Ok(strip_map(patch)),
        Some("delete") => Ok(Map::new()),
        _ => Err(bad_patch_type(directive, patch)),
    }
}

fn bad_patch_type(directive: &Value, m: &Map<String, Value>) -> PatchError {
    PatchError::Strategic(format!(
        "unknown patch type: {} in map: {}",
        go_fmt(directive),
        go_fmt(&Value::Object(m.clone()))
    ))
}

/// `$retainKeys`: drop original keys not listed; every patched key must be listed.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadPatchFormatForRetainKeys);
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch {
        let directive = k == RETAIN_KEYS
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER);
        if !v.is_null() && !directive && !listed(k) {
            return Err(PatchError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merges the named list (if patched) and orders the result as the
/// directive says (upstream `mergePatchIntoOriginal`). Returns the fields it handled.
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Schema,
) -> Result<HashSet<String>, PatchError> {
    let mut handled = HashSet::new();
    for (key, order_v) in patch {
        let Some(rest) = key.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        let field = rest
            .strip_prefix('/')
            .ok_or(PatchError::BadPatchFormatForSetElementOrderList)?;
        let order = order_v.as_array().ok_or_else(|| bad_arg_type(order_v))?;
        if !schema.declares(field) {
            return Err(PatchError::Strategic(format!(
                "unable to find api field in struct {} for the json field {field:?}",
                schema.struct_name()
            )));
        }
        let field_schema = schema.field(field);
        let merge_key = field_schema.merge_key();
        let orig_list = match original.get(field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type(other)),
        };
        let patch_list = match patch.get(field) {
            None => None,
            Some(Value::Null) => continue, // the list is deleted by the main loop
            Some(Value::Array(a)) => Some(a.as_slice()),
            Some(other) => return Err(bad_arg_type(other)),
        };
        validate_against_order(patch_list.unwrap_or_default(), order, merge_key)?;
        let merged = match (&orig_list, patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => strip_list(p),
            (Some(o), Some(p)) => merge_list(o.clone(), p, field_schema, false)?,
            (None, None) => continue,
        };
        let (in_order, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| index_of(order, item, merge_key).is_some());
        let server_order = orig_list.unwrap_or_default();
        let ordered =
            normalize_element_order(in_order, server_only, order, &server_order, merge_key);
        original.insert(field.to_string(), Value::Array(ordered));
        handled.insert(field.to_string());
    }
    Ok(handled)
}

/// Upstream `validatePatchWithSetOrderList`: the patch list's items appear in the same relative
/// order in the `$setElementOrder` list.
fn validate_against_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut next = 0;
    for item in patch_list.iter().filter(|i| i.get(DIRECTIVE).is_none()) {
        let key_of = |v: &Value| -> Result<Value, PatchError> {
            match merge_key {
                None => Ok(v.clone()),
                Some(k) => v.get(k).cloned().ok_or_else(|| no_merge_key(v, k)),
            }
        };
        let wanted = key_of(item)?;
        loop {
            let Some(candidate) = order.get(next) else {
                return Err(PatchError::Strategic(format!(
                    "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
                    go_fmt(&Value::Array(patch_list.to_vec())),
                    go_fmt(&Value::Array(order.to_vec()))
                )));
            };
            next += 1;
            if key_of(candidate)? == wanted {
                break;
            }
        }
    }
    Ok(())
}

/// Merges a patch list into an original list (upstream `mergeSliceHandler` + `mergeSlice`).
fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    schema: Schema,
    delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if delete_list {
        return Ok(original
            .into_iter()
            .filter(|v| !patch.contains(v))
            .collect());
    }
    if !schema.merges() {
        return Ok(strip_list(patch));
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let mut kinds = original.iter().chain(patch).map(go_json_kind);
    let first = kinds.next().unwrap_or("null");
    if first == "array" || kinds.clone().any(|k| k == "array") {
        return Err(PatchError::NoListOfLists);
    }
    if kinds.any(|k| k != first) {
        return Err(PatchError::Strategic(format!(
            "list element types are not identical: [{} {}]",
            go_fmt(&Value::Array(original.clone())),
            go_fmt(&Value::Array(patch.to_vec()))
        )));
    }
    if first != "object" {
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = merged.into_iter().partition(|v| patch.contains(v));
        return Ok(normalize_element_order(
            in_patch,
            server_only,
            patch,
            &original,
            None,
        ));
    }
    let Some(key) = schema.merge_key() else {
        return Err(PatchError::Strategic(
            "cannot merge lists without merge key for type struct".into(),
        ));
    };
    let (original, patch) = apply_list_directives(original, patch, key)?;
    let server_order = original.clone();
    let mut merged = original;
    for item in &patch {
        let Value::Object(item_map) = item else {
            continue;
        };
        let wanted = item.get(key).ok_or_else(|| no_merge_key(item, key))?;
        let found = find_by_key(&merged, key, wanted)?;
        match found {
            Some(i) => {
                let current = match std::mem::take(&mut merged[i]) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                merged[i] = Value::Object(merge_map(current, item_map, schema.items())?);
            }
            None => {
                if let Some(v) = strip_directives(item) {
                    merged.push(v);
                }
            }
        }
    }
    for item in &merged {
        if item.get(key).is_none() {
            return Err(no_merge_key(item, key));
        }
    }
    let (in_patch, server_only) = merged
        .into_iter()
        .partition(|v| index_of(&patch, v, Some(key)).is_some());
    Ok(normalize_element_order(
        in_patch,
        server_only,
        &patch,
        &server_order,
        Some(key),
    ))
}

/// Handles `$patch` elements of a merging list of maps (upstream `mergeSliceWithSpecialElements`):
/// `delete` removes the matching original elements, `replace` makes the rest of the patch the
/// whole list. Returns the new original and the patch without directive elements.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut rest = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            rest.push(item.clone());
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let wanted = item.get(key).ok_or_else(|| no_merge_key(item, key))?;
                original.retain(|o| o.get(key) != Some(wanted));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::Strategic(
                    "merging lists cannot yet be specified in the patch".into(),
                ));
            }
            _ => {
                let m = item.as_object().cloned().unwrap_or_default();
                return Err(bad_patch_type(directive, &m));
            }
        }
    }
    if replace {
        return Ok((strip_list(&rest), Vec::new()));
    }
    Ok((original, rest))
}

fn find_by_key(list: &[Value], key: &str, wanted: &Value) -> Result<Option<usize>, PatchError> {
    for (i, v) in list.iter().enumerate() {
        if !v.is_object() {
            return Err(PatchError::Strategic(format!(
                "value for key {i} is not a map."
            )));
        }
        if v.get(key) == Some(wanted) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::Strategic(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(item)
    ))
}

fn bad_arg_type(actual: &Value) -> PatchError {
    let go_type = match actual {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    };
    PatchError::Strategic(format!(
        "expected a []interface {{}}, but received a {go_type}"
    ))
}

/// A patch value as it should land in the object: directives and `null`s removed, maps marked
/// `$patch: delete` (and bare `{"$patch": …}` list markers) dropped. `None` = nothing to store.
pub(crate) fn strip_directives(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            if m.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                return None;
            }
            Some(Value::Object(strip_map(m)))
        }
        Value::Array(a) => Some(Value::Array(strip_list(a))),
        other => Some(other.clone()),
    }
}

fn strip_map(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !is_directive_key(k))
        .filter_map(|(k, v)| strip_directives(v).map(|v| (k.clone(), v)))
        .collect()
}

/// Like [`strip_directives`] for each element, but `null` elements stay (upstream
/// `discardNullValuesFromPatch` only drops null map values).
fn strip_list(a: &[Value]) -> Vec<Value> {
    a.iter()
        .filter(
            |item| !matches!(item, Value::Object(m) if m.contains_key(DIRECTIVE) && m.len() == 1),
        )
        .filter_map(|item| {
            if item.is_null() {
                Some(Value::Null)
            } else {
                strip_directives(item)
            }
        })
        .collect()
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE
        || k == RETAIN_KEYS
        || k.starts_with(SET_ELEMENT_ORDER)
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}
