//! STUB (replaced by the validation branch).
use crate::FieldError;
use crate::defaults::Features;
use serde_json::Value;
pub fn validate_create(_group: &str, _kind: &str, _obj: &Value, _features: Features) -> Vec<FieldError> { Vec::new() }
pub fn validate_update(_group: &str, _kind: &str, _new: &Value, _old: &Value, _features: Features) -> Vec<FieldError> { Vec::new() }
pub fn validate_status_update(_group: &str, _kind: &str, _new: &Value, _old: &Value) -> Vec<FieldError> { Vec::new() }
pub fn validate_name(_group: &str, _kind: &str, name: &str, _prefix: bool) -> Vec<String> {
    if name.is_empty() { vec!["name is empty".into()] } else { Vec::new() }
}
