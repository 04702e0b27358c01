//! `meta.k8s.io/v1` Table conversion: what `kubectl get` prints is computed here, with the
//! upstream columns of `pkg/printers/internalversion/printers.go` (Kubernetes 1.33).
//!
//! Start with [`table`]: it picks the printer for the resource type, always generates the wide
//! (priority 1) cells like kube-apiserver, and attaches each row's object per
//! [`IncludeObject`]. Types without a printer get upstream's default table (Name, Created At).
//!
//! # Layout
//! - `duration`: [`human_duration`] and age helpers.
//! - `docs`: column descriptions read from the API types' schemas.
//! - `pod`: the pod printer and its STATUS reason logic.
//! - `workloads`, `network`, `storage`, `cluster`, `config`, `event`: the other printers.

mod cluster;
mod config;
mod docs;
mod duration;
mod event;
mod network;
mod pod;
mod storage;
mod workloads;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::OnceLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::resource::ResourceType;

pub use duration::human_duration;

/// The `includeObject` query parameter of a Table request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    /// No `object` in rows.
    None,
    /// A `PartialObjectMetadata` per row (the default).
    Metadata,
    /// The full object per row.
    Object,
}

impl IncludeObject {
    /// Absent or empty → `Metadata`; anything but `None`/`Metadata`/`Object` → upstream's
    /// BadRequest message.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(format!(
                "unrecognized includeObject value: \"{}\"",
                other.escape_debug()
            )),
        }
    }
}

/// One column definition.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: String,
    pub priority: u8,
}

impl Column {
    /// A priority-0 `string` column.
    pub fn new(name: &'static str, description: impl Into<String>) -> Self {
        Column {
            name,
            ty: "string",
            format: "",
            description: description.into(),
            priority: 0,
        }
    }

    /// The `Name` column (`format: name`).
    pub fn name() -> Self {
        Column {
            format: "name",
            ..Column::new("Name", docs::doc::<ObjectMeta>("name"))
        }
    }

    /// The `Age` column.
    pub fn age() -> Self {
        Column::new("Age", docs::doc::<ObjectMeta>("creationTimestamp"))
    }

    /// Shown only with `-o wide`.
    pub fn wide(self) -> Self {
        Column {
            priority: 1,
            ..self
        }
    }

    fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.ty, "format": self.format,
               "description": self.description, "priority": self.priority})
    }
}

/// A resource's printer: its columns and the cells of one object.
pub(crate) struct Printer {
    pub columns: fn() -> Vec<Column>,
    pub cells: fn(&Value, Timestamp) -> Vec<Value>,
}

fn printer_for(group: &str, kind: &str) -> Option<Printer> {
    let p = |columns, cells| Some(Printer { columns, cells });
    match (group, kind) {
        ("", "Pod") => p(pod::columns, pod::cells),
        ("", "ConfigMap") => p(config::configmap_columns, config::configmap_cells),
        ("", "Secret") => p(config::secret_columns, config::secret_cells),
        ("", "ServiceAccount") => p(config::serviceaccount_columns, config::serviceaccount_cells),
        ("", "Namespace") => p(cluster::namespace_columns, cluster::namespace_cells),
        ("", "Node") => p(cluster::node_columns, cluster::node_cells),
        ("coordination.k8s.io", "Lease") => p(cluster::lease_columns, cluster::lease_cells),
        ("", "Service") => p(network::service_columns, network::service_cells),
        ("", "Endpoints") => p(network::endpoints_columns, network::endpoints_cells),
        ("discovery.k8s.io", "EndpointSlice") => {
            p(network::endpointslice_columns, network::endpointslice_cells)
        }
        ("", "PersistentVolumeClaim") => p(storage::pvc_columns, storage::pvc_cells),
        ("", "PersistentVolume") => p(storage::pv_columns, storage::pv_cells),
        ("storage.k8s.io", "StorageClass") => {
            p(storage::storageclass_columns, storage::storageclass_cells)
        }
        ("apps", "StatefulSet") => p(workloads::statefulset_columns, workloads::statefulset_cells),
        ("apps", "ControllerRevision") => p(workloads::revision_columns, workloads::revision_cells),
        ("", "Event") => p(event::columns, event::core_cells),
        ("events.k8s.io", "Event") => p(event::columns, event::events_v1_cells),
        _ => None,
    }
}

/// Upstream `DefaultTableConvertor` columns, for types without a printer.
fn default_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column {
            ty: "date",
            ..Column::new("Created At", docs::doc::<ObjectMeta>("creationTimestamp"))
        },
    ]
}

/// Upstream `DefaultTableConvertor` cells: the name and the creation time in RFC 3339 (UTC).
fn default_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let created = duration::timestamp(obj.pointer("/metadata/creationTimestamp"))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![json!(str_at(obj, "/metadata/name")), json!(created)]
}

/// Column definitions as JSON, computed once per kind (descriptions come from schemas).
fn column_json(group: &str, kind: &str) -> Vec<Value> {
    static CACHE: OnceLock<HashMap<(&'static str, &'static str), Vec<Value>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        crate::resource::RESOURCES
            .iter()
            .filter_map(|rt| {
                let printer = printer_for(rt.group, rt.kind)?;
                Some((
                    (rt.group, rt.kind),
                    (printer.columns)().iter().map(Column::to_json).collect(),
                ))
            })
            .collect()
    });
    match cache.get(&(group, kind)) {
        Some(cols) => cols.clone(),
        None => {
            let columns = printer_for(group, kind).map_or_else(default_columns, |p| (p.columns)());
            columns.iter().map(Column::to_json).collect()
        }
    }
}

/// Build the Table for `objects` (one object for a GET, the items for a LIST) of type `rt`.
/// `now` is the time AGE / LAST SEEN cells are measured from. `metadata` is left `{}` for the
/// caller to fill (`resourceVersion`, `continue`).
pub fn table(
    rt: &ResourceType,
    objects: &[&Value],
    include: IncludeObject,
    now: Timestamp,
) -> Value {
    let cells_of = printer_for(rt.group, rt.kind)
        .map_or(default_cells as fn(&Value, Timestamp) -> Vec<Value>, |p| {
            p.cells
        });
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = json!({"cells": cells_of(obj, now)});
            if rt.group.is_empty()
                && rt.kind == "Pod"
                && let Some(conditions) = pod::row_conditions(obj)
            {
                row["conditions"] = conditions;
            }
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => row["object"] = (*obj).clone(),
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": column_json(rt.group, rt.kind),
        "rows": rows,
    })
}

// ---- JSON reading helpers shared by the printers ----

/// The string at `pointer`, or `""`.
pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The array at `pointer`, or an empty slice.
pub(crate) fn arr_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The number of entries of the object or array at `pointer`.
pub(crate) fn len_at(obj: &Value, pointer: &str) -> i64 {
    match obj.pointer(pointer) {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

/// Upstream `labels.FormatLabels`: `k=v` sorted by key, comma-joined, `<none>` when empty.
pub(crate) fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

/// Upstream `layoutContainerCells`: container names and images, comma-joined.
pub(crate) fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// Upstream `listWithMoreString`.
pub(crate) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}
