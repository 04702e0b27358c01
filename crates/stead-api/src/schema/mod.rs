//! STUB (replaced by the schema branch).
use serde_json::{Map, Value};
use std::sync::OnceLock;
pub fn openapi_index() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| serde_json::json!({"paths": {}}))
}
pub fn openapi_document(_path: &str) -> Option<(&'static [u8], &'static str)> {
    None
}
pub fn definitions() -> &'static Map<String, Value> {
    static V: OnceLock<Map<String, Value>> = OnceLock::new();
    V.get_or_init(Map::new)
}
pub fn definition_name(_group: &str, _version: &str, _kind: &str) -> Option<&'static str> {
    None
}
pub fn unknown_fields(_root: &str, _obj: &Value) -> Vec<String> {
    Vec::new()
}
pub fn prune_unknown_fields(_root: &str, _obj: &mut Value) {}
