//! STUB (replaced by the tables branch).
use serde_json::{Value, json};
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject { None, Metadata, Object }
impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("") | Some("Metadata") => Ok(Self::Metadata),
            Some("Object") => Ok(Self::Object),
            Some("None") => Ok(Self::None),
            Some(o) => Err(format!("unsupported includeObject {o}")),
        }
    }
}
pub fn table(_rt: &crate::resource::ResourceType, objects: &[&Value], include: IncludeObject, _now: k8s_openapi::jiff::Timestamp) -> Value {
    let rows: Vec<Value> = objects.iter().map(|o| {
        let mut r = json!({"cells": [o["metadata"]["name"].clone(), ""]});
        match include {
            IncludeObject::None => {}
            IncludeObject::Metadata => { r["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"].clone()}); }
            IncludeObject::Object => { r["object"] = (*o).clone(); }
        }
        r
    }).collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": [
        {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0},
        {"name": "Age", "type": "string", "format": "", "description": "", "priority": 0}], "rows": rows})
}
