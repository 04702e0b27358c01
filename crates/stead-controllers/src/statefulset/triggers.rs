//! Which sets a change wakes (spec §4.0, widened): a pod wakes its controlling set, or every set
//! of its namespace whose selector matches it when it is an orphan; a revision likewise; a claim
//! wakes the set that controls it and every set whose claim names it fits
//! (`<template>-<set>-<ordinal>`), since claims are not owned by their set unless the retention
//! policy says so. Upstream has no PVC or revision handlers; stead wakes on them so that a claim
//! deleted or garbage-collected (the stale-claim and terminating-claim waits) ends a wait at once.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};
use stead_api::selector::LabelSelector;

use super::identity::{controller_of, parse_pod_name};
use super::spec;

/// The work-queue key of a set: `namespace/name`.
pub fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The key of `set`.
pub fn set_key(set: &StatefulSet) -> String {
    key(spec::namespace(set), spec::name(set))
}

fn labels(meta: &ObjectMeta) -> Map<String, Value> {
    meta.labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// Whether `set`'s selector selects an object with `meta`'s labels (an empty or invalid selector
/// selects nothing, as upstream's `getPodStatefulSets`).
pub fn selects(set: &StatefulSet, meta: &ObjectMeta) -> bool {
    let Some(selector) = set.spec.as_ref().map(|s| &s.selector) else {
        return false;
    };
    match LabelSelector::from_label_selector(selector) {
        Ok(s) if !s.is_empty() => s.matches(&labels(meta)),
        _ => false,
    }
}

/// The set named by the object's controller reference, if it is a StatefulSet.
fn controlling_set(meta: &ObjectMeta) -> Option<String> {
    let r = controller_of(meta)?;
    let group = r.api_version.split_once('/').map_or("", |(g, _)| g);
    (r.kind == "StatefulSet" && group == "apps")
        .then(|| key(meta.namespace.as_deref().unwrap_or_default(), &r.name))
}

/// Sets woken by a pod or revision with `meta`; `sets` are the cached sets of its namespace.
pub fn keys_for_owned(meta: &ObjectMeta, sets: &[Arc<StatefulSet>]) -> Vec<String> {
    if let Some(k) = controlling_set(meta) {
        return vec![k];
    }
    if controller_of(meta).is_some() {
        return Vec::new();
    }
    sets.iter()
        .filter(|s| selects(s, meta))
        .map(|s| set_key(s))
        .collect()
}

/// Sets woken by a claim with `meta`.
pub fn keys_for_claim(meta: &ObjectMeta, sets: &[Arc<StatefulSet>]) -> Vec<String> {
    let name = meta.name.as_deref().unwrap_or_default();
    let (prefix, ordinal) = parse_pod_name(name);
    let mut keys: Vec<String> = controlling_set(meta).into_iter().collect();
    if ordinal >= 0 {
        for set in sets {
            let templates = set
                .spec
                .iter()
                .flat_map(|s| s.volume_claim_templates.iter().flatten());
            let fits = templates
                .filter_map(|t| t.metadata.name.as_deref())
                .any(|t| {
                    prefix
                        .strip_prefix(t)
                        .and_then(|rest| rest.strip_prefix('-'))
                        == Some(spec::name(set))
                });
            let k = set_key(set);
            if fits && !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys
}

/// The previous and new keys a pod update wakes: both owners when the controller changed.
pub fn merge_keys(mut a: Vec<String>, b: Vec<String>) -> Vec<String> {
    for k in b {
        if !a.contains(&k) {
            a.push(k);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(name: &str, claims: &[&str]) -> Arc<StatefulSet> {
        let templates: Vec<_> = claims
            .iter()
            .map(|c| json!({"metadata": {"name": c}}))
            .collect();
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "uid": format!("{name}-uid")},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "serviceName": "svc",
                    "template": {"metadata": {"labels": {"app": name}}},
                    "volumeClaimTemplates": templates
                }
            }))
            .expect("valid set"),
        )
    }

    fn meta(v: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(v).expect("valid metadata")
    }

    #[test]
    fn a_controlled_pod_wakes_only_its_controller() {
        let sets = [set("web", &[]), set("db", &[])];
        let m = meta(
            json!({"name": "web-0", "namespace": "ns", "labels": {"app": "db"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                 "uid": "web-uid", "controller": true}]}),
        );
        assert_eq!(keys_for_owned(&m, &sets), ["ns/web"]);
    }

    #[test]
    fn an_orphan_pod_wakes_every_set_whose_selector_matches() {
        let sets = [set("web", &[]), set("db", &[])];
        let m = meta(json!({"name": "x-0", "namespace": "ns", "labels": {"app": "db"}}));
        assert_eq!(keys_for_owned(&m, &sets), ["ns/db"]);
        let other = meta(json!({"name": "x-0", "namespace": "ns",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                 "uid": "u", "controller": true}], "labels": {"app": "db"}}));
        assert!(
            keys_for_owned(&other, &sets).is_empty(),
            "another controller's pod"
        );
    }

    #[test]
    fn a_claim_wakes_the_sets_whose_claim_names_it_fits() {
        let sets = [
            set("web", &["data"]),
            set("data-web", &[]),
            set("db", &["data"]),
        ];
        let m = meta(json!({"name": "data-web-3", "namespace": "ns"}));
        assert_eq!(keys_for_claim(&m, &sets), ["ns/web"]);
        let unrelated = meta(json!({"name": "data-web", "namespace": "ns"}));
        assert!(keys_for_claim(&unrelated, &sets).is_empty());
    }
}
