//! STUB (replaced by the validation branch).
#[derive(Clone, Copy, Debug)]
pub struct Features { pub max_unavailable_statefulset: bool }
impl Default for Features { fn default() -> Self { Self { max_unavailable_statefulset: true } } }
pub fn apply(_group: &str, _kind: &str, _obj: &mut serde_json::Value, _features: Features) {}
