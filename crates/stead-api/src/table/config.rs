//! ConfigMap, Secret and ServiceAccount printers.

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::docs::doc;
use super::duration::age;
use super::{Column, len_at, str_at};

pub(crate) fn configmap_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Data", doc::<ConfigMap>("data")),
        Column::age(),
    ]
}

/// DATA counts `data` and `binaryData` keys.
pub(crate) fn configmap_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(len_at(obj, "/data") + len_at(obj, "/binaryData")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn secret_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Type", doc::<Secret>("type")),
        Column::new("Data", doc::<Secret>("data")),
        Column::age(),
    ]
}

pub(crate) fn secret_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(str_at(obj, "/type")),
        json!(len_at(obj, "/data")),
        json!(age(obj, now)),
    ]
}

pub(crate) fn serviceaccount_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Secrets", doc::<ServiceAccount>("secrets")),
        Column::age(),
    ]
}

pub(crate) fn serviceaccount_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(str_at(obj, "/metadata/name")),
        json!(len_at(obj, "/secrets")),
        json!(age(obj, now)),
    ]
}
