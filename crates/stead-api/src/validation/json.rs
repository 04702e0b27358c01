//! Reading an object held as JSON without panics: typed getters that treat a missing field, a
//! `null` and a value of the wrong type alike (absent), as Go's zero values do after decoding.

use serde_json::{Map, Value};

/// The string at `key`, or `""`.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `key`, if present.
pub fn int_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// The object at `key`, if present.
pub fn obj_of<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// The array at `key`, or an empty slice.
pub fn arr_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Whether `key` holds something other than `null`.
pub fn has(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|x| !x.is_null())
}

/// A string→string map at `key` (non-string values skipped), sorted by key as Go prints maps.
pub fn string_map<'a>(v: &'a Value, key: &str) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = obj_of(v, key)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s)))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `null` when `key` is absent, else its value (for error values).
pub fn value_of(v: &Value, key: &str) -> Value {
    v.get(key).cloned().unwrap_or(Value::Null)
}

/// A copy with `null`s and empty arrays removed recursively: upstream's semantic equality treats nil
/// and empty slices as equal, and JSON `null` is an absent pointer. Empty objects are kept (they may
/// be a set struct pointer such as `securityContext: {}`).
pub fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter_map(|(k, x)| {
                    let n = normalized(x);
                    let empty_list = matches!(&n, Value::Array(a) if a.is_empty());
                    (!n.is_null() && !empty_list).then(|| (k.clone(), n))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

/// Semantic equality of two JSON values (see [`normalized`]).
pub fn semantic_eq(a: &Value, b: &Value) -> bool {
    normalized(a) == normalized(b)
}
