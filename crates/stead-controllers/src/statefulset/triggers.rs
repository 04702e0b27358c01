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
