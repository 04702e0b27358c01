//! STUB (replaced by the smp branch).
use serde_json::{Map, Value};
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{0}")]
    Bad(String),
}
impl PatchError {
    pub fn to_api_error(&self, _group: &str, _resource: &str, _kind: &str, _name: &str) -> crate::ApiError {
        crate::ApiError::bad_request(self.to_string())
    }
}
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| PatchError::Bad(e.to_string()))?;
    let mut out = original.clone();
    json_patch::patch(&mut out, &p).map_err(|e| PatchError::Bad(e.to_string()))?;
    Ok(out)
}
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let mut out = original.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}
pub fn strategic_merge_patch(original: &Value, patch: &Value, _schemas: &Map<String, Value>, _root: &str) -> Result<Value, PatchError> {
    merge_patch(original, patch)
}
pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub api_version: &'a str,
    pub now: &'a str,
}
pub fn server_side_apply(live: Option<&Value>, applied: &Value, _req: &ApplyRequest, _schemas: &Map<String, Value>, _root: &str) -> Result<Value, PatchError> {
    match live {
        Some(l) => merge_patch(l, applied),
        None => Ok(applied.clone()),
    }
}
pub fn record_update(_old: Option<&Value>, _new: &mut Value, _manager: &str, _api_version: &str, _now: &str, _schemas: &Map<String, Value>, _root: &str) {}
