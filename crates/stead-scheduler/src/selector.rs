//! Matching labels and nodes: label selectors (`matchLabels` + `matchExpressions`) and node
//! selector terms (`matchExpressions` over labels, `matchFields` over `metadata.name`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

type Labels = BTreeMap<String, String>;

/// Whether `labels` satisfy `selector` (an empty selector matches everything).
pub fn label_selector_matches(selector: &LabelSelector, labels: Option<&Labels>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    labels_ok
        && selector.match_expressions.iter().flatten().all(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            let value = get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// One node selector requirement against a value (`None`: the label is absent).
fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        // Gt/Lt take exactly one integer value; a non-integer label never matches.
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value.and_then(number), values) else {
                return false;
            };
            let Some(bound) = number(bound) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether `node` satisfies one term: every expression and every field requirement. A term
/// with neither matches no node (upstream).
pub fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    let name = node.metadata.name.as_deref().unwrap_or_default();
    expressions
        .iter()
        .all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
        && fields.iter().all(|r| {
            // `metadata.name` is the only field a node selector may name.
            r.key == "metadata.name" && requirement_matches(r, Some(name))
        })
}

/// Whether `node` satisfies any of the terms (they are ORed).
pub fn node_selector_terms_match(terms: &[NodeSelectorTerm], node: &Node) -> bool {
    terms.iter().any(|t| node_selector_term_matches(t, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": labels}})).unwrap()
    }

    fn term(v: serde_json::Value) -> NodeSelectorTerm {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn node_selector_operators() {
        let n = node(json!({"zone": "a", "cores": "8"}));
        let ok = |v| node_selector_term_matches(&term(v), &n);
        assert!(ok(
            json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]})
        ));
        assert!(!ok(
            json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]})
        ));
        assert!(ok(
            json!({"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]})
        ));
        assert!(ok(
            json!({"matchExpressions": [{"key": "zone", "operator": "Exists"}]})
        ));
        assert!(ok(
            json!({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]})
        ));
        assert!(ok(
            json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]})
        ));
        assert!(!ok(
            json!({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]})
        ));
        assert!(!ok(
            json!({"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["4"]}]})
        ));
        assert!(ok(
            json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})
        ));
        assert!(!ok(
            json!({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]})
        ));
        assert!(!ok(json!({})), "an empty term matches nothing");
    }

    #[test]
    fn label_selector_operators() {
        let labels: Labels = [("app".to_string(), "web".to_string())].into();
        let sel = |v| serde_json::from_value::<LabelSelector>(v).unwrap();
        assert!(label_selector_matches(&sel(json!({})), Some(&labels)));
        assert!(label_selector_matches(
            &sel(json!({"matchLabels": {"app": "web"}})),
            Some(&labels)
        ));
        assert!(!label_selector_matches(
            &sel(json!({"matchLabels": {"app": "db"}})),
            Some(&labels)
        ));
        assert!(label_selector_matches(
            &sel(json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})),
            Some(&labels)
        ));
        assert!(!label_selector_matches(
            &sel(
                json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]})
            ),
            Some(&labels)
        ));
    }
}
