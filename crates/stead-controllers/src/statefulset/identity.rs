//! Pod identity (spec §3.1–§3.5): ordinals parsed from names, the labels and owner reference a
//! StatefulSet pod carries, the identity/storage checks used for repair, and pod construction
//! from a revision's template. Start at [`new_pod`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaimVolumeSource, Pod, PodSpec, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::claims::claim_name;
use super::spec;

/// Label carrying the pod's own name (`apps.StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label carrying the pod's ordinal (`apps.PodIndexLabel`, GA in 1.32).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// Label carrying the full ControllerRevision name the pod was built from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// `<set>-<ordinal>` (decimal, no padding).
pub fn pod_name(set_name: &str, ordinal: i32) -> String {
    format!("{set_name}-{ordinal}")
}

/// Splits a pod name like the regex `(.*)-([0-9]+)$`: the parent name and the ordinal, or `-1`
/// when there is no numeric suffix or it does not fit in an `i32` (the parent is still returned in
/// that case, as upstream does). Names without a numeric suffix have parent `""`.
pub fn parse_pod_name(name: &str) -> (&str, i32) {
    // The greedy `(.*)` can only end at the last '-', because every other candidate suffix would
    // contain that '-'.
    let Some(dash) = name.rfind('-') else {
        return ("", -1);
    };
    let digits = &name[dash + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return ("", -1);
    }
    let parent = &name[..dash];
    (parent, digits.parse::<i32>().unwrap_or(-1))
}

/// The pod's name.
pub fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

/// The ordinal parsed from the pod's name, `-1` if unparseable.
pub fn get_ordinal(pod: &Pod) -> i32 {
    parse_pod_name(name_of(pod)).1
}

/// Whether the pod's name says it belongs to `set` (`isMemberOf`: parent == set name).
pub fn is_member_of(set: &StatefulSet, pod: &Pod) -> bool {
    let (parent, _) = parse_pod_name(name_of(pod));
    !parent.is_empty() && parent == spec::name(set)
}

/// The `controller-revision-hash` label of a pod (`""` when absent).
pub fn pod_revision(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map(String::as_str)
        .unwrap_or("")
}

/// `identityMatches` (§3.4): name, namespace and the pod-name label agree with the ordinal.
/// Hostname, subdomain, pod-index and revision labels are deliberately not checked.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = name_of(pod);
    let (parent, ordinal) = parse_pod_name(name);
    ordinal >= 0
        && parent == spec::name(set)
        && name == pod_name(spec::name(set), ordinal)
        && pod.metadata.namespace.as_deref().unwrap_or("") == spec::namespace(set)
        && pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_NAME_LABEL))
            .map(String::as_str)
            == Some(name)
}

/// `storageMatches` (§3.5): every claim template has a same-named volume pointing at the claim
/// `<template>-<set>-<ordinal>`.
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let ordinal = get_ordinal(pod);
    if ordinal < 0 {
        return false;
    }
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    claim_template_names(set).iter().all(|template| {
        volumes.iter().any(|v| {
            &v.name == template
                && v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.as_str())
                    == Some(claim_name(template, spec::name(set), ordinal).as_str())
        })
    })
}

/// Names of `spec.volumeClaimTemplates`, in order.
pub fn claim_template_names(set: &StatefulSet) -> Vec<String> {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref())
        .map(|ts| {
            ts.iter()
                .map(|t| t.metadata.name.clone().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// `updateIdentity`: re-derives name, namespace, pod-name and pod-index labels from the ordinal.
pub fn update_identity(set: &StatefulSet, pod: &mut Pod) {
    let ordinal = get_ordinal(pod);
    let name = pod_name(spec::name(set), ordinal);
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = Some(spec::namespace(set).to_string());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.to_string(), name);
    labels.insert(POD_INDEX_LABEL.to_string(), ordinal.to_string());
}

/// `updateStorage`: claim volumes first (in template order), then the pod's other volumes; any
/// volume named like a claim template is replaced by the claim volume.
pub fn update_storage(set: &StatefulSet, pod: &mut Pod) {
    let ordinal = get_ordinal(pod);
    let templates = claim_template_names(set);
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = templates
        .iter()
        .map(|template| Volume {
            name: template.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(template, spec::name(set), ordinal),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    volumes.extend(current.into_iter().filter(|v| !templates.contains(&v.name)));
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

/// `metav1.NewControllerRef(set, apps/v1 StatefulSet)`.
pub fn controller_ref(set: &StatefulSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: "StatefulSet".to_string(),
        name: spec::name(set).to_string(),
        uid: spec::uid(set).to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The controller reference of an object, if any (`metav1.GetControllerOf`).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .find(|r| r.controller == Some(true))
}

/// `newStatefulSetPod` + `setPodRevision` (§3.2): the pod for `ordinal` built from `template`
/// (the template of revision `revision_name`), with identity, hostname/subdomain, claim volumes,
/// the controller reference and the revision label.
pub fn new_pod(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    revision_name: &str,
    ordinal: i32,
) -> Pod {
    let name = pod_name(spec::name(set), ordinal);
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            generate_name: Some(format!("{}-", spec::name(set))),
            namespace: Some(spec::namespace(set).to_string()),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            annotations: template
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.clone()),
            finalizers: template
                .metadata
                .as_ref()
                .and_then(|m| m.finalizers.clone()),
            owner_references: Some(vec![controller_ref(set)]),
            ..ObjectMeta::default()
        },
        spec: Some(template.spec.clone().unwrap_or_default()),
        status: None,
    };
    update_identity(set, &mut pod);
    if let Some(spec) = pod.spec.as_mut() {
        spec.hostname = Some(name);
        spec.subdomain = Some(spec::service_name(set));
    }
    update_storage(set, &mut pod);
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_LABEL.to_string(), revision_name.to_string());
    pod
}

/// Which revision a (re)created pod at `ordinal` gets (§3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevisionChoice {
    /// The current revision (below the partition, or the legacy nil-`rollingUpdate` rule).
    Current,
    /// The update revision (everything else, and always for OnDelete).
    Update,
}

/// §3.8: the current revision iff (RollingUpdate without a `rollingUpdate` struct and
/// `ordinal < start + status.currentReplicas`) or (`rollingUpdate` present and
/// `ordinal < start + partition`); otherwise the update revision.
pub fn revision_for_ordinal(set: &StatefulSet, ordinal: i32) -> RevisionChoice {
    let start = spec::start_ordinal(set);
    let current_replicas = set
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);
    let current = match spec::update_strategy(set) {
        spec::UpdateStrategy::RollingUpdate {
            rolling_update: None,
        } => i64::from(ordinal) < i64::from(start) + i64::from(current_replicas),
        spec::UpdateStrategy::RollingUpdate {
            rolling_update: Some(r),
        } => i64::from(ordinal) < i64::from(start) + i64::from(r.partition),
        spec::UpdateStrategy::OnDelete => false,
    };
    if current {
        RevisionChoice::Current
    } else {
        RevisionChoice::Update
    }
}

/// `newVersionedStatefulSetPod` for a known revision: the pod for `ordinal` built from the
/// template stored in `revision` and labelled with its name.
pub fn new_versioned_pod(
    set: &StatefulSet,
    revision: &k8s_openapi::api::apps::v1::ControllerRevision,
    ordinal: i32,
) -> Result<Pod, super::revision::RevisionError> {
    let template = super::revision::template_from_revision(revision)?;
    Ok(new_pod(
        set,
        &template,
        super::revision::name_of(revision),
        ordinal,
    ))
}
