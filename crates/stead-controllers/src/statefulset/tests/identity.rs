use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::fixtures::*;
use crate::statefulset::identity::*;

#[test]
fn pod_names_parse_with_a_greedy_parent_and_decimal_ordinal() {
    // Ref: stateful_set_utils.go getParentNameAndOrdinal, regex (.*)-([0-9]+)$
    assert_eq!(parse_pod_name("web-0"), ("web", 0));
    assert_eq!(parse_pod_name("my-web-12"), ("my-web", 12));
    assert_eq!(parse_pod_name("web-01"), ("web", 1));
    assert_eq!(parse_pod_name("web"), ("", -1));
    assert_eq!(parse_pod_name("web-"), ("", -1));
    assert_eq!(parse_pod_name("web-1a"), ("", -1));
    assert_eq!(parse_pod_name("web-99999999999"), ("web", -1));
}

#[test]
fn new_pod_carries_identity_labels_hostname_owner_and_claim_volumes() {
    let set = with_claim_template(with_claim_template(set("web", 3), "data"), "logs");
    let tpl = template("img:1");
    let pod = new_pod(&set, &tpl, "web-abc", 2);
    assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
    let l = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(l.get("app").map(String::as_str), Some("foo"));
    assert_eq!(l.get(POD_NAME_LABEL).map(String::as_str), Some("web-2"));
    assert_eq!(l.get(POD_INDEX_LABEL).map(String::as_str), Some("2"));
    assert_eq!(l.get(REVISION_LABEL).map(String::as_str), Some("web-abc"));
    let owners = pod.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "StatefulSet");
    assert_eq!(owners[0].api_version, "apps/v1");
    assert_eq!(owners[0].uid, SET_UID);
    assert_eq!(owners[0].controller, Some(true));
    assert_eq!(owners[0].block_owner_deletion, Some(true));
    let spec = pod.spec.clone().unwrap_or_default();
    assert_eq!(spec.hostname.as_deref(), Some("web-2"));
    assert_eq!(spec.subdomain.as_deref(), Some("svc"));
    let vols: Vec<(String, String)> = spec
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            (
                v.name,
                v.persistent_volume_claim
                    .map(|c| c.claim_name)
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        vols,
        vec![
            ("data".to_string(), "data-web-2".to_string()),
            ("logs".to_string(), "logs-web-2".to_string())
        ]
    );
    assert!(identity_matches(&set, &pod));
    assert!(storage_matches(&set, &pod));
}

#[test]
fn claim_volumes_replace_same_named_template_volumes_and_keep_others() {
    let set = with_claim_template(set("web", 1), "data");
    let mut tpl = template("img:1");
    if let Some(spec) = tpl.spec.as_mut() {
        spec.volumes = Some(vec![
            k8s_openapi::api::core::v1::Volume {
                name: "data".to_string(),
                empty_dir: Some(Default::default()),
                ..Default::default()
            },
            k8s_openapi::api::core::v1::Volume {
                name: "scratch".to_string(),
                empty_dir: Some(Default::default()),
                ..Default::default()
            },
        ]);
    }
    let pod = new_pod(&set, &tpl, "r", 0);
    let vols = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
    assert_eq!(vols.len(), 2);
    assert_eq!(vols[0].name, "data");
    assert!(vols[0].persistent_volume_claim.is_some() && vols[0].empty_dir.is_none());
    assert_eq!(vols[1].name, "scratch");
}

#[test]
fn identity_does_not_match_a_padded_name_a_foreign_namespace_or_a_missing_label() {
    // Ref: spec §3.4, §4.10 ("web-01 occupies slot 1; its identity never matches")
    let set = set("web", 3);
    let good = new_pod(&set, &template("i"), "r", 1);
    let mut padded = good.clone();
    padded.metadata.name = Some("web-01".to_string());
    assert!(!identity_matches(&set, &padded));
    let mut foreign = good.clone();
    foreign.metadata.namespace = Some("other".to_string());
    assert!(!identity_matches(&set, &foreign));
    let mut unlabeled = good.clone();
    if let Some(l) = unlabeled.metadata.labels.as_mut() {
        l.remove(POD_NAME_LABEL);
    }
    assert!(!identity_matches(&set, &unlabeled));
    update_identity(&set, &mut unlabeled);
    assert!(identity_matches(&set, &unlabeled));
    let stranger = Pod {
        metadata: ObjectMeta {
            name: Some("db-1".to_string()),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    };
    assert!(!is_member_of(&set, &stranger));
}

#[test]
fn storage_mismatch_is_repaired_by_update_storage() {
    let plain = set("web", 1);
    let with_claims = with_claim_template(plain.clone(), "data");
    let mut pod = new_pod(&plain, &template("i"), "r", 0);
    assert!(!storage_matches(&with_claims, &pod));
    update_storage(&with_claims, &mut pod);
    assert!(storage_matches(&with_claims, &pod));
}

#[test]
fn revision_choice_follows_partition_legacy_and_on_delete_rules() {
    // Ref: spec §3.8
    let s = with_start(with_partition(set("web", 5), 2, None), 3);
    assert_eq!(revision_for_ordinal(&s, 4), RevisionChoice::Current);
    assert_eq!(revision_for_ordinal(&s, 5), RevisionChoice::Update);
    let mut legacy = set("web", 5);
    if let Some(st) = spec_mut(&mut legacy).update_strategy.as_mut() {
        st.rolling_update = None;
    }
    legacy.status = Some(k8s_openapi::api::apps::v1::StatefulSetStatus {
        current_replicas: Some(2),
        ..Default::default()
    });
    assert_eq!(revision_for_ordinal(&legacy, 1), RevisionChoice::Current);
    assert_eq!(revision_for_ordinal(&legacy, 2), RevisionChoice::Update);
    let od = on_delete(set("web", 5));
    assert_eq!(revision_for_ordinal(&od, 0), RevisionChoice::Update);
}

#[test]
fn a_versioned_pod_uses_the_revision_template_not_the_live_one() {
    let old = set("web", 2);
    let rev = revision(&old, 1);
    let mut live = old.clone();
    spec_mut(&mut live).template = template("img:2");
    let pod = new_versioned_pod(&live, &rev, 1).ok();
    let image = pod
        .as_ref()
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.containers[0].image.clone());
    assert_eq!(image.as_deref(), Some("img:1"));
    assert_eq!(
        pod.and_then(|p| p.metadata.labels)
            .and_then(|l| l.get(REVISION_LABEL).cloned()),
        rev.metadata.name
    );
}
