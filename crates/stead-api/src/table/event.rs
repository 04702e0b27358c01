//! The event printer, shared by core/v1 and events.k8s.io/v1 Events (upstream stores both as
//! the core type, so `events.k8s.io` fields are read through their core names).

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::doc;
use super::duration::{since, timestamp};
use super::{Column, str_at};

pub(crate) fn columns() -> Vec<Column> {
    vec![
        Column::new("Last Seen", doc::<Event>("lastTimestamp")),
        Column::new("Type", doc::<Event>("type")),
        Column::new("Reason", doc::<Event>("reason")),
        Column::new("Object", doc::<Event>("involvedObject")),
        Column::new("Subobject", doc::<ObjectReference>("fieldPath")).wide(),
        Column::new("Source", doc::<Event>("source")).wide(),
        Column::new("Message", doc::<Event>("message")),
        Column::new("First Seen", doc::<Event>("firstTimestamp")).wide(),
        Column::new("Count", doc::<Event>("count")).wide(),
        Column {
            format: "name",
            ..Column::new("Name", doc::<ObjectMeta>("name"))
        }
        .wide(),
    ]
}

/// The fields the printer reads, by their core/v1 names.
struct EventView<'a> {
    obj: &'a Value,
    involved: &'static str,
    message: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    source: &'static str,
    reporting_controller: &'static str,
}

const CORE: EventView<'static> = EventView {
    obj: &Value::Null,
    involved: "/involvedObject",
    message: "/message",
    first: "/firstTimestamp",
    last: "/lastTimestamp",
    count: "/count",
    source: "/source",
    reporting_controller: "/reportingComponent",
};

const EVENTS_V1: EventView<'static> = EventView {
    obj: &Value::Null,
    involved: "/regarding",
    message: "/note",
    first: "/deprecatedFirstTimestamp",
    last: "/deprecatedLastTimestamp",
    count: "/deprecatedCount",
    source: "/deprecatedSource",
    reporting_controller: "/reportingController",
};

fn non_empty_or<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

fn cells(v: EventView<'_>, now: Timestamp) -> Vec<Value> {
    let obj = v.obj;
    let first_ts = timestamp(obj.pointer(v.first));
    let first_seen = match first_ts {
        Some(_) => since(first_ts, now),
        None => since(timestamp(obj.get("eventTime")), now),
    };
    let mut last_seen = match timestamp(obj.pointer(v.last)) {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = obj.pointer(v.count).and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = obj.get("series").filter(|s| s.is_object()) {
        last_seen = since(timestamp(series.get("lastObservedTime")), now);
        count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        // Singleton events carry no count in the new API.
        count = 1;
    }
    let kind = str_at(obj, &format!("{}/kind", v.involved)).to_lowercase();
    let name = str_at(obj, &format!("{}/name", v.involved));
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let component = non_empty_or(
        str_at(obj, &format!("{}/component", v.source)),
        str_at(obj, v.reporting_controller),
    );
    let host = non_empty_or(
        str_at(obj, &format!("{}/host", v.source)),
        str_at(obj, "/reportingInstance"),
    );
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last_seen),
        json!(str_at(obj, "/type")),
        json!(str_at(obj, "/reason")),
        json!(target),
        json!(str_at(obj, &format!("{}/fieldPath", v.involved))),
        json!(source),
        json!(str_at(obj, v.message).trim()),
        json!(first_seen),
        json!(count),
        json!(str_at(obj, "/metadata/name")),
    ]
}

pub(crate) fn core_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    cells(EventView { obj, ..CORE }, now)
}

pub(crate) fn events_v1_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    cells(EventView { obj, ..EVENTS_V1 }, now)
}
