//! STUB (replaced by the tables branch).
use serde_json::{Map, Value};
#[derive(Debug, Clone, Default)]
pub struct LabelSelector { reqs: Vec<(String, String)> }
impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("unsupported selector {part}"))?;
            reqs.push((k.trim().to_string(), v.trim_start_matches('=').trim().to_string()));
        }
        Ok(Self { reqs })
    }
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.reqs.iter().all(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v.as_str()))
    }
    pub fn is_empty(&self) -> bool { self.reqs.is_empty() }
    pub fn from_label_selector(sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> Result<Self, String> {
        Ok(Self { reqs: sel.match_labels.clone().unwrap_or_default().into_iter().collect() })
    }
}
impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.reqs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(f, "{}", parts.join(","))
    }
}
#[derive(Debug, Clone, Default)]
pub struct FieldSelector { reqs: Vec<(String, String)> }
impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let l = LabelSelector::parse(s)?; Ok(Self { reqs: l.reqs })
    }
    pub fn validate_for(&self, _rt: &crate::resource::ResourceType) -> Result<(), String> { Ok(()) }
    pub fn matches(&self, _rt: &crate::resource::ResourceType, obj: &Value) -> bool {
        self.reqs.iter().all(|(k, v)| {
            let mut cur = obj;
            for p in k.split('.') { cur = match cur.get(p) { Some(c) => c, None => return v.is_empty() }; }
            cur.as_str() == Some(v.as_str())
        })
    }
    pub fn is_empty(&self) -> bool { self.reqs.is_empty() }
}
