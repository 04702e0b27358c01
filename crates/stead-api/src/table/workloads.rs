//! StatefulSet and ControllerRevision printers.

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::doc;
use super::duration::age;
use super::{Column, arr_at, container_cells, str_at};

pub(crate) fn statefulset_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Ready", "Number of the pod with ready state"),
        Column::age(),
        Column::new("Containers", "Names of each container in the template.").wide(),
        Column::new(
            "Images",
            "Images referenced by each container in the template.",
        )
        .wide(),
    ]
}

/// READY is `status.readyReplicas/spec.replicas` (replicas defaults to 1, as the API does).
pub(crate) fn statefulset_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let ready = obj
        .pointer("/status/readyReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let desired = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (names, images) = container_cells(arr_at(obj, "/spec/template/spec/containers"));
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(format!("{ready}/{desired}")),
        json!(age(obj, now)),
        json!(names),
        json!(images),
    ]
}

pub(crate) fn revision_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Controller", "Controller of the object"),
        Column::new("Revision", doc::<ControllerRevision>("revision")),
        Column::age(),
    ]
}

/// CONTROLLER is `<kind>.<group>/<name>` lower-cased from the controller owner reference
/// (`statefulset.apps/web`), `<none>` without one.
pub(crate) fn controller_name(obj: &Value) -> String {
    let Some(owner) = arr_at(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".to_string();
    };
    let group = str_at(owner, "/apiVersion")
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    let kind = str_at(owner, "/kind");
    let name = str_at(owner, "/name");
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    if group_kind.is_empty() {
        return name.to_string();
    }
    format!("{}/{name}", group_kind.to_lowercase())
}

pub(crate) fn revision_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(controller_name(obj)),
        json!(obj.get("revision").and_then(Value::as_i64).unwrap_or(0)),
        json!(age(obj, now)),
    ]
}
