use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::fixtures::*;
use crate::statefulset::go_json;
use crate::statefulset::revision::*;

/// The defaulted template of upstream's `testdata/compatibility_revision_1.33.0.json`.
fn compatibility_set() -> k8s_openapi::api::apps::v1::StatefulSet {
    let mut s = set("test", 1);
    spec_mut(&mut s).template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            annotations: Some(labels(&[("test", "value")])),
            labels: Some(labels(&[("app", "foo")])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "test".to_string(),
                image: Some("test".to_string()),
                image_pull_policy: Some("Always".to_string()),
                termination_message_path: Some("/dev/termination-log".to_string()),
                termination_message_policy: Some("File".to_string()),
                ..Container::default()
            }],
            dns_policy: Some("ClusterFirst".to_string()),
            restart_policy: Some("Always".to_string()),
            scheduler_name: Some("default-scheduler".to_string()),
            security_context: Some(PodSecurityContext::default()),
            termination_grace_period_seconds: Some(30),
            ..PodSpec::default()
        }),
    };
    s
}

const VECTOR_DATA: &str = r#"{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},"creationTimestamp":null,"labels":{"app":"foo"}},"spec":{"containers":[{"image":"test","imagePullPolicy":"Always","name":"test","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}"#;

#[test]
fn the_1_33_compatibility_vector_hashes_to_c77f6d978() {
    // Ref: spec §5.2 test vector (testdata/compatibility_revision_1.33.0.json)
    assert_eq!(fnv1_32(format!("{VECTOR_DATA}0").as_bytes()), 733_928_534);
    assert_eq!(
        hash_revision_data(VECTOR_DATA.as_bytes(), Some(0)),
        "c77f6d978"
    );
}

#[test]
fn a_defaulted_template_encodes_byte_for_byte_like_go_and_names_the_revision() {
    // Ref: TestStatefulSetCompatibility (1.33 revision must be reproduced, not recreated)
    let s = compatibility_set();
    let patch = revision_patch(&s).unwrap_or_default();
    assert_eq!(go_json::encode(&patch), VECTOR_DATA);
    let rev = revision(&s, 1);
    assert_eq!(rev.metadata.name.as_deref(), Some("test-c77f6d978"));
    assert_eq!(
        rev.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL))
            .map(String::as_str),
        Some("c77f6d978")
    );
    assert_eq!(
        rev.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str),
        Some("foo")
    );
    assert_eq!(rev.revision, 1);
}

#[test]
fn the_collision_count_changes_the_hash() {
    let a = hash_revision_data(VECTOR_DATA.as_bytes(), Some(0));
    let b = hash_revision_data(VECTOR_DATA.as_bytes(), Some(1));
    let none = hash_revision_data(VECTOR_DATA.as_bytes(), None);
    assert_ne!(a, b);
    assert_ne!(a, none);
    assert!(b.chars().all(|c| "456789bcdf".contains(c)));
}

#[test]
fn safe_encoding_maps_digits_into_the_consonant_alphabet() {
    assert_eq!(safe_encode("0123456789"), "456789bcdf");
}

#[test]
fn revision_names_cut_the_set_name_to_223_bytes() {
    let long = "a".repeat(300);
    let name = revision_name(&long, "c77f6d978");
    assert_eq!(name.len(), 223 + 1 + 9);
}

#[test]
fn a_template_round_trips_through_a_revision() {
    let s = compatibility_set();
    let rev = revision(&s, 1);
    let tpl = template_from_revision(&rev).ok();
    // The Go zero value `resources: {}` comes back as an empty struct.
    let mut want = s.spec.map(|sp| sp.template);
    if let Some(c) = want
        .as_mut()
        .and_then(|t| t.spec.as_mut())
        .map(|s| &mut s.containers[0])
    {
        c.resources = Some(Default::default());
    }
    assert_eq!(tpl, want);
}

#[test]
fn revisions_with_equal_data_are_equal_regardless_of_number_and_labels() {
    let s = set("web", 1);
    let a = revision(&s, 1);
    let mut b = revision(&s, 7);
    b.metadata.labels = Some(BTreeMap::new());
    assert!(revisions_equal(&a, &b));
    let mut other = set("web", 1);
    spec_mut(&mut other).template = template("img:2");
    assert!(!revisions_equal(&a, &revision(&other, 1)));
}

#[test]
fn revisions_sort_by_number_then_name() {
    let s = set("web", 1);
    let mut a = revision(&s, 2);
    a.metadata.name = Some("b".to_string());
    let mut b = revision(&s, 2);
    b.metadata.name = Some("a".to_string());
    let c = revision(&s, 1);
    let mut list = vec![a, b, c];
    sort_revisions(&mut list);
    let order: Vec<(i64, String)> = list
        .iter()
        .map(|r| (r.revision, r.metadata.name.clone().unwrap_or_default()))
        .collect();
    assert_eq!(order[0].0, 1);
    assert_eq!(order[1], (2, "a".to_string()));
    assert_eq!(order[2], (2, "b".to_string()));
    assert_eq!(next_revision(&list), 3);
    assert_eq!(next_revision(&[]), 1);
}
