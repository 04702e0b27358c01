//! Conversions between API versions that share one stored form.
//!
//! `events.k8s.io/v1` Events and core `v1` Events are one resource upstream: both APIs read and
//! write the same objects, so an event a controller records through `events.k8s.io` shows up in
//! `kubectl describe` (which reads core events). stead stores the core form; these functions map
//! field names at the storage boundary (upstream `pkg/apis/events/v1/conversion.go`).

use serde_json::{Map, Value};

use crate::resource::ResourceType;

/// (events.k8s.io/v1 field, core/v1 field) pairs that differ only in name.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn is_events_v1(rt: &ResourceType) -> bool {
    (rt.group, rt.kind) == ("events.k8s.io", "Event")
}

fn rename(obj: &mut Map<String, Value>, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    for (from, to) in pairs {
        if let Some(v) = obj.remove(from) {
            obj.insert(to.to_string(), v);
        }
    }
}

/// The stored form of an object of `rt`.
pub fn to_storage(rt: &ResourceType, mut obj: Value) -> Value {
    if is_events_v1(rt)
        && let Some(map) = obj.as_object_mut()
    {
        rename(map, EVENT_FIELDS.iter().copied());
        map.insert("apiVersion".into(), Value::String("v1".into()));
    }
    obj
}

/// An object of `rt` from its stored form.
pub fn from_storage(rt: &ResourceType, mut obj: Value) -> Value {
    if is_events_v1(rt)
        && let Some(map) = obj.as_object_mut()
    {
        rename(map, EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)));
        map.insert(
            "apiVersion".into(),
            Value::String("events.k8s.io/v1".into()),
        );
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::find;
    use serde_json::json;

    #[test]
    fn an_events_v1_event_is_stored_as_a_core_event_and_read_back_unchanged() {
        let rt = find("events.k8s.io", "v1", "events").unwrap();
        let e = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "regarding": {"kind": "StatefulSet", "name": "web", "uid": "u"},
            "note": "create Pod web-0 in StatefulSet web successful",
            "reason": "SuccessfulCreate", "type": "Normal",
            "reportingController": "statefulset-controller", "reportingInstance": "node-1",
            "eventTime": "2026-01-01T00:00:00.000000Z", "action": "Create",
        });
        let stored = to_storage(rt, e.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "web");
        assert_eq!(stored["message"], e["note"]);
        assert_eq!(stored["reportingComponent"], "statefulset-controller");
        assert!(stored.get("regarding").is_none());
        assert_eq!(from_storage(rt, stored), e);
    }

    #[test]
    fn other_resources_pass_through() {
        let rt = find("", "v1", "events").unwrap();
        let e = json!({"apiVersion": "v1", "kind": "Event", "message": "m"});
        assert_eq!(to_storage(rt, e.clone()), e);
        assert_eq!(from_storage(rt, e.clone()), e);
    }
}
