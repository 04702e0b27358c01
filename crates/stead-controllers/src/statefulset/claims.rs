//! PersistentVolumeClaims of StatefulSet pods (spec §3.3, §4.9): naming, construction from the
//! claim templates, and the retention policy's owner-reference rules. Start at
//! [`expected_refs`] (the policy table) and [`claim_refs_update`] (what to write, if anything).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::identity::{controller_ref, get_ordinal};
use super::spec::{self, Retention, RetentionPolicy};

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set_name: &str, ordinal: i32) -> String {
    format!("{template}-{set_name}-{ordinal}")
}

/// The names of the claims the pod at `ordinal` uses, in template order (what [`pod_claims`]
/// names, without building the claims).
pub fn pod_claim_names(set: &StatefulSet, ordinal: i32) -> Vec<String> {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or(&[])
        .iter()
        .map(|t| {
            claim_name(
                t.metadata.name.as_deref().unwrap_or(""),
                spec::name(set),
                ordinal,
            )
        })
        .collect()
}

/// The claims the pod at `ordinal` uses, one per `volumeClaimTemplates` entry, in template order:
/// a copy of the template renamed, moved to the set's namespace, labelled with the template labels
/// overlaid by `selector.matchLabels`, without owner references and without status.
pub fn pod_claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let templates = set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or(&[]);
    let match_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    templates
        .iter()
        .map(|template| {
            let mut claim = template.clone();
            let template_name = template.metadata.name.clone().unwrap_or_default();
            claim.metadata.name = Some(claim_name(&template_name, spec::name(set), ordinal));
            claim.metadata.namespace = Some(spec::namespace(set).to_string());
            let labels = match claim.metadata.labels.take() {
                Some(mut labels) => {
                    labels.extend(match_labels.clone());
                    labels
                }
                None => match_labels.clone(),
            };
            claim.metadata.labels = (!labels.is_empty()).then_some(labels);
            claim.metadata.owner_references = None;
            claim.status = None;
            claim
        })
        .collect()
}

/// Which of "our" owner references a claim should carry (a row of the §4.9 table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedRefs {
    /// A controller reference to the StatefulSet.
    pub set: bool,
    /// A controller reference to the pod using the claim.
    pub pod: bool,
}

/// The §4.9 table: the refs a claim should have under `policy`, given whether its pod is
/// condemned (ordinal outside `[start, end]`).
pub fn expected_refs(policy: RetentionPolicy, condemned: bool) -> ExpectedRefs {
    match (policy.when_scaled, policy.when_deleted) {
        (Retention::Retain, Retention::Retain) => ExpectedRefs {
            set: false,
            pod: false,
        },
        (Retention::Retain, Retention::Delete) => ExpectedRefs {
            set: true,
            pod: false,
        },
        (Retention::Delete, Retention::Retain) => ExpectedRefs {
            set: false,
            pod: condemned,
        },
        (Retention::Delete, Retention::Delete) => ExpectedRefs {
            set: !condemned,
            pod: condemned,
        },
    }
}

/// An owner seen by the claim rules: apiVersion/kind/name/uid.
struct Owner<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
    uid: &'a str,
}

impl Owner<'_> {
    /// `matchesRef`: same apiVersion, kind and name (uid not compared).
    fn matches(&self, r: &OwnerReference) -> bool {
        r.api_version == self.api_version && r.kind == self.kind && r.name == self.name
    }
    /// `hasStaleOwnerRef`: a ref to an older incarnation (same name, other uid).
    fn is_stale(&self, r: &OwnerReference) -> bool {
        self.matches(r) && r.uid != self.uid
    }
}

fn set_owner(set: &StatefulSet) -> Owner<'_> {
    Owner {
        api_version: "apps/v1",
        kind: "StatefulSet",
        name: spec::name(set),
        uid: spec::uid(set),
    }
}

fn pod_owner(pod: &Pod) -> Owner<'_> {
    Owner {
        api_version: "v1",
        kind: "Pod",
        name: pod.metadata.name.as_deref().unwrap_or(""),
        uid: pod.metadata.uid.as_deref().unwrap_or(""),
    }
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim.metadata.owner_references.as_deref().unwrap_or(&[])
}

/// `hasOwnerRef`: some ref carries the owner's uid.
fn has_owner_ref(claim: &PersistentVolumeClaim, uid: &str) -> bool {
    refs(claim).iter().any(|r| r.uid == uid)
}

/// Whether the claim carries a ref to an earlier incarnation of this pod (same name, other uid).
/// A placeholder pod has no uid, so any pod ref on its claim counts (`PodClaimIsStale`).
pub fn has_stale_pod_ref(claim: &PersistentVolumeClaim, pod: &Pod) -> bool {
    let owner = pod_owner(pod);
    refs(claim).iter().any(|r| owner.is_stale(r))
}

/// `hasUnexpectedController`: a controller ref that is neither this set nor this pod.
pub fn has_unexpected_controller(
    set: &StatefulSet,
    pod: &Pod,
    claim: &PersistentVolumeClaim,
) -> bool {
    let (s, p) = (set_owner(set), pod_owner(pod));
    refs(claim)
        .iter()
        .any(|r| r.controller == Some(true) && !s.matches(r) && !p.matches(r))
}

/// Upstream `hasUnexpectedController`, which decides the `ConflictingController` Warning
/// (§4.9 rule 2): the policy is not Retain/Retain and the claim is managed by someone else — a
/// controller ref that is neither this set nor this pod, or a ref to an earlier incarnation of
/// either (same name, other uid).
pub fn has_conflicting_controller(
    set: &StatefulSet,
    pod: &Pod,
    claim: &PersistentVolumeClaim,
) -> bool {
    let policy = spec::retention_policy(set);
    if policy.when_scaled == Retention::Retain && policy.when_deleted == Retention::Retain {
        return false;
    }
    let (s, p) = (set_owner(set), pod_owner(pod));
    refs(claim).iter().any(|r| {
        if s.matches(r) {
            return r.uid != s.uid;
        }
        if p.matches(r) {
            return r.uid != p.uid;
        }
        r.controller == Some(true)
    })
}

/// The `ConflictingController` Warning's message, in upstream's words (typo included).
pub fn conflicting_controller_message(claim: &str) -> String {
    format!(
        "PersistentVolumeClaim {claim} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"
    )
}

/// `isClaimOwnerUpToDate` (§4.9 rules 1–4).
pub fn claim_refs_up_to_date(set: &StatefulSet, pod: &Pod, claim: &PersistentVolumeClaim) -> bool {
    let (s, p) = (set_owner(set), pod_owner(pod));
    // Rule 1: refs of an earlier incarnation are never touched.
    if refs(claim).iter().any(|r| s.is_stale(r) || p.is_stale(r)) {
        return true;
    }
    // Rule 2: another controller owns the claim; only scrub our refs.
    if has_unexpected_controller(set, pod, claim) {
        return !(has_owner_ref(claim, s.uid) || has_owner_ref(claim, p.uid));
    }
    // Rule 3: our refs must be controller refs.
    let non_controller = refs(claim)
        .iter()
        .any(|r| (r.uid == s.uid || r.uid == p.uid) && r.controller != Some(true));
    if non_controller {
        return false;
    }
    // Rule 4: the table.
    let condemned = !spec::in_ordinal_range(set, get_ordinal(pod));
    let want = expected_refs(spec::retention_policy(set), condemned);
    has_owner_ref(claim, s.uid) == want.set && has_owner_ref(claim, p.uid) == want.pod
}

/// `updateClaimOwnerRefForSetAndPod` (§4.9 rule 5): our refs scrubbed, then — unless another
/// controller owns the claim — the expected controller refs appended after the foreign ones.
pub fn desired_claim_refs(
    set: &StatefulSet,
    pod: &Pod,
    claim: &PersistentVolumeClaim,
) -> Vec<OwnerReference> {
    let (s, p) = (set_owner(set), pod_owner(pod));
    let unexpected = has_unexpected_controller(set, pod, claim);
    let mut out: Vec<OwnerReference> = refs(claim)
        .iter()
        .filter(|r| !s.matches(r) && !p.matches(r))
        .cloned()
        .collect();
    if !unexpected {
        let condemned = !spec::in_ordinal_range(set, get_ordinal(pod));
        let want = expected_refs(spec::retention_policy(set), condemned);
        if want.pod {
            out.push(OwnerReference {
                api_version: "v1".to_string(),
                kind: "Pod".to_string(),
                name: p.name.to_string(),
                uid: p.uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            });
        }
        if want.set {
            out.push(controller_ref(set));
        }
    }
    out
}

/// The owner references to write on `claim`, or `None` when it is up to date (or the rewrite
/// would change nothing).
pub fn claim_refs_update(
    set: &StatefulSet,
    pod: &Pod,
    claim: &PersistentVolumeClaim,
) -> Option<Vec<OwnerReference>> {
    if claim_refs_up_to_date(set, pod, claim) {
        return None;
    }
    let desired = desired_claim_refs(set, pod, claim);
    (desired.as_slice() != refs(claim)).then_some(desired)
}

/// Claims indexed by name, for lookups by the planner.
pub fn index_claims(claims: &[PersistentVolumeClaim]) -> BTreeMap<&str, &PersistentVolumeClaim> {
    claims
        .iter()
        .filter_map(|c| c.metadata.name.as_deref().map(|n| (n, c)))
        .collect()
}
