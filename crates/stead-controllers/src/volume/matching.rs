//! Which volume fits a claim (upstream `storage/helpers` `FindMatchingVolume` and
//! `checkVolumeSatisfyClaim`), node affinity, and the small readers the plans share.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, PersistentVolume, PersistentVolumeClaim,
};
use k8s_openapi::api::storage::v1::StorageClass;
use stead_api::selector::LabelSelector;
use stead_api::validation::quantity;

use super::{BETA_CLAIM_CLASS, IS_DEFAULT_CLASS, IS_DEFAULT_CLASS_BETA};

pub fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// `namespace/name` of a claim.
pub fn claim_key(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or_default(),
        claim.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The claim's class (upstream `GetPersistentVolumeClaimClass`): the beta annotation wins, then
/// `spec.storageClassName`, else `""`.
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    if let Some(c) = annotation(&claim.metadata, BETA_CLAIM_CLASS) {
        return c;
    }
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The volume's class (upstream `GetPersistentVolumeClass`).
pub fn volume_class(pv: &PersistentVolume) -> &str {
    if let Some(c) = annotation(&pv.metadata, BETA_CLAIM_CLASS) {
        return c;
    }
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The requested storage in bytes (0 when missing: validation requires it).
pub fn requested(claim: &PersistentVolumeClaim) -> f64 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| quantity::parse(&q.0))
        .unwrap_or(0.0)
}

/// The volume's capacity in bytes.
pub fn capacity(pv: &PersistentVolume) -> f64 {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| quantity::parse(&q.0))
        .unwrap_or(0.0)
}

pub fn claim_modes(claim: &PersistentVolumeClaim) -> Vec<String> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default()
}

pub fn volume_modes(pv: &PersistentVolume) -> Vec<String> {
    pv.spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default()
}

fn claim_volume_mode(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem")
}

fn volume_volume_mode(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem")
}

pub fn phase(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// True when the volume's `claimRef` names this claim (and, when it carries a uid, this very
/// claim) — upstream `IsVolumeBoundToClaim`.
pub fn bound_to_claim(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name == claim.metadata.name
        && r.namespace == claim.metadata.namespace
        && r.uid
            .as_deref()
            .is_none_or(|u| u.is_empty() || Some(u) == claim.metadata.uid.as_deref())
}

/// Why a volume cannot serve a claim (upstream `checkVolumeSatisfyClaim`), `None` when it can.
pub fn unsatisfied(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> Option<&'static str> {
    if capacity(pv) < requested(claim) {
        return Some("requested PV is too small");
    }
    if volume_class(pv) != claim_class(claim) {
        return Some("storageClassName does not match");
    }
    if volume_volume_mode(pv) != claim_volume_mode(claim) {
        return Some("incompatible volumeMode");
    }
    let have = volume_modes(pv);
    if !claim_modes(claim).iter().all(|m| have.contains(m)) {
        return Some("incompatible accessMode");
    }
    None
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        // Exactly one integer bound, as the scheduler and upstream's validation require.
        "Gt" | "Lt" if values.len() != 1 => false,
        "Gt" | "Lt" => match (value.and_then(number), number(&values[0])) {
            (Some(v), Some(bound)) if r.operator == "Gt" => v > bound,
            (Some(v), Some(bound)) => v < bound,
            _ => false,
        },
        _ => false,
    }
}

/// Whether the volume's `spec.nodeAffinity.required` admits node `name` (labels from the Node
/// object when known; `kubernetes.io/hostname` is the node name otherwise). No affinity admits
/// every node.
pub fn node_allows(pv: &PersistentVolume, name: &str, node: Option<&Node>) -> bool {
    let Some(required) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    let mut labels: BTreeMap<String, String> = node
        .and_then(|n| n.metadata.labels.clone())
        .unwrap_or_default();
    labels
        .entry("kubernetes.io/hostname".into())
        .or_insert_with(|| name.to_string());
    required.node_selector_terms.iter().any(|term| {
        let exprs = term.match_expressions.as_deref().unwrap_or_default();
        let fields = term.match_fields.as_deref().unwrap_or_default();
        (!exprs.is_empty() || !fields.is_empty())
            && exprs
                .iter()
                .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
            // Fields: only `metadata.name`, only `In` / `NotIn` (upstream's field selector);
            // anything else matches no node.
            && fields.iter().all(|r| {
                r.key == "metadata.name"
                    && matches!(r.operator.as_str(), "In" | "NotIn")
                    && requirement_matches(r, Some(name))
            })
    })
}

/// The volume for an unbound claim without `spec.volumeName` (upstream `FindMatchingVolume`):
/// a volume already pointing at the claim wins; otherwise, unless binding is delayed, the
/// smallest Available volume of the claim's class that fits its size, access modes, volume mode,
/// selector and (when a node is chosen) node. Volumes being deleted never match.
pub fn best_match<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a BTreeMap<String, Arc<PersistentVolume>>,
    node: Option<(&str, Option<&Node>)>,
    delay: bool,
) -> Option<&'a Arc<PersistentVolume>> {
    let selector = match claim.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        Some(s) => match LabelSelector::from_label_selector(s) {
            Ok(s) => Some(s),
            Err(_) => return None,
        },
        None => None,
    };
    let want = requested(claim);
    let mut best: Option<&Arc<PersistentVolume>> = None;
    for pv in volumes.values() {
        if pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if volume_volume_mode(pv) != claim_volume_mode(claim) {
            continue;
        }
        let node_ok = node.is_none_or(|(name, n)| node_allows(pv, name, n));
        if bound_to_claim(pv, claim) {
            return node_ok.then_some(pv);
        }
        if delay && node.is_none() {
            continue;
        }
        if pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some()
        {
            continue;
        }
        if !matches!(phase(pv), "Available" | "Pending" | "") {
            continue;
        }
        if volume_class(pv) != claim_class(claim) || !node_ok {
            continue;
        }
        if let Some(sel) = &selector {
            let labels: serde_json::Map<String, serde_json::Value> = pv
                .metadata
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            if !sel.matches(&labels) {
                continue;
            }
        }
        let have = volume_modes(pv);
        if !claim_modes(claim).iter().all(|m| have.contains(m)) {
            continue;
        }
        let size = capacity(pv);
        if size < want {
            continue;
        }
        if best.is_none_or(|b| size < capacity(b)) {
            best = Some(pv);
        }
    }
    best
}

/// True when the class carries a default-class annotation set to `"true"`.
pub fn is_default_class(class: &StorageClass) -> bool {
    [IS_DEFAULT_CLASS, IS_DEFAULT_CLASS_BETA]
        .iter()
        .any(|a| annotation(&class.metadata, a) == Some("true"))
}

/// The default class (upstream `GetDefaultClass`): the newest marked one, ties by name.
pub fn default_class(classes: &BTreeMap<String, Arc<StorageClass>>) -> Option<&str> {
    classes
        .values()
        .filter(|c| is_default_class(c))
        .max_by(|a, b| {
            let t = |c: &StorageClass| c.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(a).cmp(&t(b))
                .then_with(|| b.metadata.name.cmp(&a.metadata.name))
        })
        .and_then(|c| c.metadata.name.as_deref())
}

/// True for nodes whose `Ready` condition is `True`.
pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
