use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::fixtures::*;
use crate::statefulset::claims::*;
use crate::statefulset::spec::{Retention, RetentionPolicy};

fn policy(when_scaled: Retention, when_deleted: Retention) -> RetentionPolicy {
    RetentionPolicy {
        when_deleted,
        when_scaled,
    }
}

#[test]
fn retention_table_matches_every_row_of_the_spec() {
    // Ref: spec §4.9 table, checkClaimInvariants in stateful_set_control_test.go
    use Retention::{Delete, Retain};
    let rows = [
        (Retain, Retain, false, (false, false)),
        (Retain, Retain, true, (false, false)),
        (Retain, Delete, false, (true, false)),
        (Retain, Delete, true, (true, false)),
        (Delete, Retain, false, (false, false)),
        (Delete, Retain, true, (false, true)),
        (Delete, Delete, false, (true, false)),
        (Delete, Delete, true, (false, true)),
    ];
    for (scaled, deleted, condemned, (want_set, want_pod)) in rows {
        let got = expected_refs(policy(scaled, deleted), condemned);
        assert_eq!(
            (got.set, got.pod),
            (want_set, want_pod),
            "whenScaled={scaled:?} whenDeleted={deleted:?} condemned={condemned}"
        );
    }
}

#[test]
fn pod_claims_are_named_and_labelled_from_templates_and_selector() {
    let mut s = with_claim_template(set("web", 3), "data");
    if let Some(t) = spec_mut(&mut s).volume_claim_templates.as_mut() {
        t[0].metadata.labels = Some(labels(&[("tier", "db"), ("app", "overridden")]));
    }
    let claims = pod_claims(&s, 4);
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].metadata.name.as_deref(), Some("data-web-4"));
    assert_eq!(claims[0].metadata.namespace.as_deref(), Some(NS));
    assert_eq!(
        claims[0].metadata.labels,
        Some(labels(&[("app", "foo"), ("tier", "db")]))
    );
    assert!(claims[0].metadata.owner_references.is_none());
}

fn set_ref() -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: "StatefulSet".to_string(),
        name: "web".to_string(),
        uid: SET_UID.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[test]
fn claim_refs_are_rewritten_to_the_policy_for_live_and_condemned_pods() {
    let s = with_policy(
        with_claim_template(set("web", 2), "data"),
        "Delete",
        "Delete",
    );
    let rev = revision(&s, 1);
    let live = pod_at(&s, 1, &rev);
    let condemned = pod_at(&s, 2, &rev);
    // Live pod under Delete/Delete: a set controller ref, no pod ref.
    let c = claim("data-web-1");
    assert_eq!(claim_refs_update(&s, &live, &c), Some(vec![set_ref()]));
    // Condemned pod: the set ref is replaced by a pod controller ref.
    let mut c = claim("data-web-2");
    c.metadata.owner_references = Some(vec![set_ref()]);
    let refs = claim_refs_update(&s, &condemned, &c).unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].kind.as_str(), refs[0].uid.as_str()),
        ("Pod", "uid-web-2")
    );
    assert_eq!(refs[0].controller, Some(true));
}

#[test]
fn foreign_refs_stay_first_and_a_foreign_controller_blocks_our_refs() {
    // Ref: e2e "should not delete PVCs when there is another controller"
    let s = with_policy(
        with_claim_template(set("web", 4), "data"),
        "Delete",
        "Retain",
    );
    let rev = revision(&s, 1);
    let pod = pod_at(&s, 1, &rev);
    let external = OwnerReference {
        api_version: "v1".to_string(),
        kind: "ConfigMap".to_string(),
        name: "cm".to_string(),
        uid: "cm-uid".to_string(),
        controller: None,
        block_owner_deletion: None,
    };
    let mut c = claim("data-web-1");
    c.metadata.owner_references = Some(vec![external.clone()]);
    assert_eq!(
        claim_refs_update(&s, &pod, &c),
        Some(vec![external.clone(), set_ref()])
    );
    // A foreign controller: nothing is added, and our refs are scrubbed if present.
    let mut foreign = external.clone();
    foreign.controller = Some(true);
    let mut c = claim("data-web-1");
    c.metadata.owner_references = Some(vec![foreign.clone()]);
    assert_eq!(claim_refs_update(&s, &pod, &c), None);
    c.metadata.owner_references = Some(vec![foreign.clone(), set_ref()]);
    assert_eq!(claim_refs_update(&s, &pod, &c), Some(vec![foreign]));
}

#[test]
fn a_stale_set_ref_is_never_touched_and_a_non_controller_ref_is_upgraded() {
    let s = with_policy(
        with_claim_template(set("web", 4), "data"),
        "Delete",
        "Retain",
    );
    let pod = pod_at(&s, 3, &revision(&s, 1));
    let mut stale = set_ref();
    stale.uid = "older".to_string();
    let mut c = claim("data-web-3");
    c.metadata.owner_references = Some(vec![stale]);
    assert!(claim_refs_up_to_date(&s, &pod, &c));
    let mut weak = set_ref();
    weak.controller = Some(false);
    c.metadata.owner_references = Some(vec![weak]);
    assert_eq!(claim_refs_update(&s, &pod, &c), Some(vec![set_ref()]));
}

#[test]
fn retain_retain_removes_our_refs() {
    // Ref: spec §4.9 item 7 ("If the policy is changed back to Retain the refs are removed")
    let s = with_claim_template(set("web", 2), "data");
    let pod = pod_at(&s, 0, &revision(&s, 1));
    let mut c = claim("data-web-0");
    c.metadata.owner_references = Some(vec![set_ref()]);
    assert_eq!(claim_refs_update(&s, &pod, &c), Some(vec![]));
}

#[test]
fn a_conflicting_controller_is_another_controller_or_an_earlier_incarnation() {
    // Ref: upstream hasUnexpectedController, spec §4.9 rule 2
    let retain = with_claim_template(set("web", 2), "data");
    let delete = with_policy(retain.clone(), "Delete", "Retain");
    let pod = pod_at(&delete, 1, &revision(&delete, 1));
    let foreign = OwnerReference {
        api_version: "v1".to_string(),
        kind: "ConfigMap".to_string(),
        name: "cm".to_string(),
        uid: "cm-uid".to_string(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    let mut c = claim("data-web-1");
    c.metadata.owner_references = Some(vec![foreign.clone()]);
    assert!(has_conflicting_controller(&delete, &pod, &c));
    assert!(
        !has_conflicting_controller(&retain, &pod, &c),
        "Retain/Retain never conflicts"
    );
    // A foreign ref that is not a controller, or our own controller ref: no conflict.
    let mut plain = foreign.clone();
    plain.controller = None;
    c.metadata.owner_references = Some(vec![plain, set_ref()]);
    assert!(!has_conflicting_controller(&delete, &pod, &c));
    // A ref to an earlier set of the same name conflicts.
    let mut stale = set_ref();
    stale.uid = "older".to_string();
    c.metadata.owner_references = Some(vec![stale]);
    assert!(has_conflicting_controller(&delete, &pod, &c));
    assert_eq!(
        conflicting_controller_message("data-web-1"),
        "PersistentVolumeClaim data-web-1 has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"
    );
}
