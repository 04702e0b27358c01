//! Reading and writing `metadata` of an object held as JSON.
//!
//! The API server keeps objects as `serde_json::Value` so that one generic store serves every
//! kind; these helpers are the only place that knows where metadata fields live.

use serde_json::{Map, Value};

/// `obj.metadata`, created as `{}` if absent or not an object.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("made an object above");
    let m = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("made an object above")
}

/// A string field of `metadata` (`""` when absent).
pub fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    str_field(obj, "name")
}

pub fn namespace(obj: &Value) -> &str {
    str_field(obj, "namespace")
}

pub fn uid(obj: &Value) -> &str {
    str_field(obj, "uid")
}

pub fn resource_version(obj: &Value) -> &str {
    str_field(obj, "resourceVersion")
}

/// Sets a string field of `metadata`; an empty value removes it.
pub fn set_str(obj: &mut Value, field: &str, value: &str) {
    let m = metadata_mut(obj);
    if value.is_empty() {
        m.remove(field);
    } else {
        m.insert(field.to_string(), Value::String(value.to_string()));
    }
}

/// `metadata.labels` (empty map when absent).
pub fn labels(obj: &Value) -> Map<String, Value> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    let m = metadata_mut(obj);
    if finalizers.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), Value::from(finalizers.to_vec()));
    }
}

/// True once deletion has been requested (`metadata.deletionTimestamp` set).
pub fn is_deleting(obj: &Value) -> bool {
    obj.get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|v| !v.is_null())
}

/// `metadata.generation` (0 when absent).
pub fn generation(obj: &Value) -> i64 {
    obj.get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The owner references of an object.
pub fn owner_references(obj: &Value) -> Vec<Value> {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_fields_are_read_and_written_in_place() {
        let mut o = json!({"kind": "Pod"});
        assert_eq!(name(&o), "");
        set_str(&mut o, "name", "web-0");
        set_str(&mut o, "namespace", "default");
        assert_eq!((name(&o), namespace(&o)), ("web-0", "default"));
        set_str(&mut o, "namespace", "");
        assert!(o["metadata"].get("namespace").is_none());
    }

    #[test]
    fn finalizers_round_trip_and_empty_removes_the_field() {
        let mut o = json!({"metadata": {"finalizers": ["a", "b"]}});
        assert_eq!(finalizers(&o), vec!["a", "b"]);
        set_finalizers(&mut o, &[]);
        assert!(o["metadata"].get("finalizers").is_none());
    }

    #[test]
    fn deletion_is_seen_only_when_the_timestamp_is_set() {
        assert!(!is_deleting(
            &json!({"metadata": {"deletionTimestamp": null}})
        ));
        assert!(is_deleting(
            &json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
        ));
    }
}
