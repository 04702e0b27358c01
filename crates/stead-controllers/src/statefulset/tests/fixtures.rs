//! Builders for sets, pods and claims used across the tests.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetOrdinals,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const NS: &str = "default";
pub const SET_UID: &str = "set-uid";

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&[("app", "foo")])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".to_string(),
                image: Some(image.to_string()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

/// A defaulted-looking set: OrderedReady, RollingUpdate partition 0, Retain/Retain, no claims.
pub fn set(name: &str, replicas: i32) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NS.to_string()),
            uid: Some(SET_UID.to_string()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "foo")])),
                ..LabelSelector::default()
            },
            service_name: Some("svc".to_string()),
            template: template("img:1"),
            pod_management_policy: Some("OrderedReady".to_string()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    max_unavailable: None,
                }),
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_string()),
                    when_scaled: Some("Retain".to_string()),
                },
            ),
            revision_history_limit: Some(10),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

pub fn spec_mut(set: &mut StatefulSet) -> &mut StatefulSetSpec {
    set.spec.get_or_insert_with(StatefulSetSpec::default)
}

pub fn with_claim_template(mut set: StatefulSet, name: &str) -> StatefulSet {
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..PersistentVolumeClaim::default()
    };
    spec_mut(&mut set)
        .volume_claim_templates
        .get_or_insert_with(Vec::new)
        .push(claim);
    set
}

pub fn with_policy(mut set: StatefulSet, when_deleted: &str, when_scaled: &str) -> StatefulSet {
    spec_mut(&mut set).persistent_volume_claim_retention_policy =
        Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_deleted: Some(when_deleted.to_string()),
            when_scaled: Some(when_scaled.to_string()),
        });
    set
}

pub fn parallel(mut set: StatefulSet) -> StatefulSet {
    spec_mut(&mut set).pod_management_policy = Some("Parallel".to_string());
    set
}

pub fn on_delete(mut set: StatefulSet) -> StatefulSet {
    spec_mut(&mut set).update_strategy = Some(StatefulSetUpdateStrategy {
        type_: Some("OnDelete".to_string()),
        rolling_update: None,
    });
    set
}

pub fn with_partition(
    mut set: StatefulSet,
    partition: i32,
    max_unavailable: Option<i32>,
) -> StatefulSet {
    spec_mut(&mut set).update_strategy = Some(StatefulSetUpdateStrategy {
        type_: Some("RollingUpdate".to_string()),
        rolling_update: Some(RollingUpdateStatefulSetStrategy {
            partition: Some(partition),
            max_unavailable: max_unavailable.map(IntOrString::Int),
        }),
    });
    set
}

pub fn with_start(mut set: StatefulSet, start: i32) -> StatefulSet {
    spec_mut(&mut set).ordinals = Some(StatefulSetOrdinals { start: Some(start) });
    set
}

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Sets the pod's phase and Ready condition (transition at `since`).
pub fn with_phase(mut pod: Pod, phase: &str, ready: bool, since: Timestamp) -> Pod {
    pod.status = Some(PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".to_string(),
            status: if ready { "True" } else { "False" }.to_string(),
            last_transition_time: Some(Time(since)),
            ..PodCondition::default()
        }]),
        ..PodStatus::default()
    });
    pod
}

pub fn ready(pod: Pod) -> Pod {
    with_phase(pod, "Running", true, at(0))
}

pub fn terminating(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(Time(at(0)));
    pod
}

pub fn with_uid(mut pod: Pod, uid: &str) -> Pod {
    pod.metadata.uid = Some(uid.to_string());
    pod
}

/// Revision `number` of the set's current template (collision count 0).
pub fn revision(set: &StatefulSet, number: i64) -> k8s_openapi::api::apps::v1::ControllerRevision {
    match super::super::revision::new_revision(set, number, 0) {
        Ok(r) => r,
        Err(e) => panic!("new_revision: {e}"),
    }
}

/// The pod `ordinal` as the controller would create it at `rev`, with a uid, Running and Ready.
pub fn pod_at(
    set: &StatefulSet,
    ordinal: i32,
    rev: &k8s_openapi::api::apps::v1::ControllerRevision,
) -> Pod {
    let template = set
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let name = rev.metadata.name.clone().unwrap_or_default();
    let pod = super::super::identity::new_pod(set, &template, &name, ordinal);
    let uid = format!("uid-{}", pod.metadata.name.clone().unwrap_or_default());
    ready(with_uid(pod, &uid))
}

pub fn claim(name: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NS.to_string()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        ..PersistentVolumeClaim::default()
    }
}
