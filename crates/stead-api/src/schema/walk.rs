//! Walking an object alongside its schema to find (or drop) the fields the schema does not know.
//!
//! This is what `fieldValidation` needs: upstream's strict JSON decoder reports each unknown field
//! by its path, fields joined by `.` and list positions as `[i]`
//! (`spec.template.spec.containers[0].bogus`); `Warn` and `Ignore` drop them. Maps
//! (`additionalProperties`, e.g. `metadata.labels`) accept any key; schemas with neither
//! properties nor additionalProperties (`RawExtension`, `FieldsV1`, IntOrString, Quantity) accept
//! any value. Start at [`unknown_fields`].

use serde_json::{Map, Value};

use super::generate::REF_PREFIX;

/// What the schema says about one key of an object.
enum Child<'a> {
    /// A known field (or a map value) with this schema.
    Known(&'a Value),
    /// Anything goes below here.
    Any,
    /// The schema does not know this field.
    Unknown,
}

/// Follow `$ref` and single-element `allOf` wrappers to the schema that describes the value.
fn resolve<'a>(defs: &'a Map<String, Value>, mut schema: &'a Value) -> Option<&'a Value> {
    // A cycle of pure references cannot occur in generated schemas; bound the loop anyway.
    for _ in 0..32 {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            schema = defs.get(r.strip_prefix(REF_PREFIX)?)?;
            continue;
        }
        match schema.get("allOf").and_then(Value::as_array) {
            Some(all) if all.len() == 1 && schema.get("properties").is_none() => schema = &all[0],
            _ => return Some(schema),
        }
    }
    None
}

fn child<'a>(schema: &'a Value, key: &str) -> Child<'a> {
    if let Some(prop) = schema.get("properties").and_then(|p| p.get(key)) {
        return Child::Known(prop);
    }
    match schema.get("additionalProperties") {
        Some(additional) if additional.is_object() => return Child::Known(additional),
        Some(Value::Bool(true)) => return Child::Any,
        _ => {}
    }
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if preserve || schema.get("properties").is_none() {
        Child::Any
    } else {
        Child::Unknown
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Collect the paths of unknown fields below `value`.
pub(super) fn collect(
    defs: &Map<String, Value>,
    schema: &Value,
    value: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    let Some(schema) = resolve(defs, schema) else {
        return;
    };
    match value {
        Value::Object(obj) => {
            for (key, v) in obj {
                match child(schema, key) {
                    Child::Known(s) => collect(defs, s, v, &join(path, key), out),
                    Child::Any => {}
                    Child::Unknown => out.push(join(path, key)),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    collect(defs, item_schema, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Remove unknown fields below `value`.
pub(super) fn prune(defs: &Map<String, Value>, schema: &Value, value: &mut Value) {
    let Some(schema) = resolve(defs, schema) else {
        return;
    };
    match value {
        Value::Object(obj) => {
            obj.retain(|key, v| match child(schema, key) {
                Child::Known(s) => {
                    prune(defs, s, v);
                    true
                }
                Child::Any => true,
                Child::Unknown => false,
            });
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for v in items.iter_mut() {
                    prune(defs, item_schema, v);
                }
            }
        }
        _ => {}
    }
}
