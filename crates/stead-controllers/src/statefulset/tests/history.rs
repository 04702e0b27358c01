use k8s_openapi::api::apps::v1::StatefulSetStatus;

use super::fixtures::*;
use crate::statefulset::history::*;
use crate::statefulset::revision::name_of;

fn image(
    s: &k8s_openapi::api::apps::v1::StatefulSet,
    img: &str,
) -> k8s_openapi::api::apps::v1::StatefulSet {
    let mut s = s.clone();
    spec_mut(&mut s).template = template(img);
    s
}

#[test]
fn the_first_sync_creates_revision_one_as_both_current_and_update() {
    // Ref: TestStatefulSetControl_getSetRevisions "creates initial revision"
    let s = set("web", 1);
    let got = choose_revisions(&s, &[]).ok();
    let got = got.as_ref();
    assert_eq!(got.map(|g| g.update.revision), Some(1));
    assert_eq!(
        got.map(|g| name_of(&g.current) == name_of(&g.update)),
        Some(true)
    );
    assert!(matches!(
        got.and_then(|g| g.write.as_ref()),
        Some(RevisionWrite::Create(_))
    ));
}

#[test]
fn an_unchanged_template_reuses_the_newest_revision() {
    let s = set("web", 1);
    let r1 = revision(&s, 1);
    let got = choose_revisions(&s, std::slice::from_ref(&r1)).ok();
    assert_eq!(got.as_ref().and_then(|g| g.write.clone()), None);
    assert_eq!(got.map(|g| g.update), Some(r1));
}

#[test]
fn a_rollback_renumbers_the_older_equal_revision() {
    // Ref: spec §5.3 step 5, §5.4 ("revision k's number is bumped to N+1")
    let s1 = set("web", 1);
    let s2 = image(&s1, "img:2");
    let r1 = revision(&s1, 1);
    let r2 = revision(&s2, 2);
    let mut back = s1.clone();
    back.status = Some(StatefulSetStatus {
        current_revision: r2.metadata.name.clone(),
        ..StatefulSetStatus::default()
    });
    let got = choose_revisions(&back, &[r1.clone(), r2.clone()]).ok();
    let got = got.as_ref();
    assert_eq!(
        got.and_then(|g| g.write.clone()),
        Some(RevisionWrite::Renumber {
            name: name_of(&r1).to_string(),
            revision: 3
        })
    );
    assert_eq!(
        got.map(|g| name_of(&g.update).to_string()),
        r1.metadata.name.clone()
    );
    assert_eq!(
        got.map(|g| name_of(&g.current).to_string()),
        r2.metadata.name.clone()
    );
}

#[test]
fn a_name_collision_bumps_the_collision_count_and_keeps_the_first_hash_label() {
    // Ref: history.CreateControllerRevision AlreadyExists loop
    let s = set("web", 1);
    let mut squatter = revision(&image(&s, "other"), 1);
    let wanted = revision(&s, 2);
    squatter.metadata.name = wanted.metadata.name.clone();
    let got = choose_revisions(&s, std::slice::from_ref(&squatter)).ok();
    let got = got.as_ref();
    assert_eq!(got.map(|g| g.collision_count), Some(1));
    let created = match got.and_then(|g| g.write.clone()) {
        Some(RevisionWrite::Create(r)) => *r,
        other => panic!("expected a create, got {other:?}"),
    };
    assert_ne!(created.metadata.name, wanted.metadata.name);
    assert_eq!(created.metadata.labels, wanted.metadata.labels);
}

#[test]
fn truncation_keeps_live_revisions_and_the_newest_history() {
    // Ref: spec §5.6, TestStatefulSetControlLimitsHistory
    let mut s = set("web", 1);
    spec_mut(&mut s).revision_history_limit = Some(2);
    let revs: Vec<_> = (1..=6)
        .map(|i| revision(&image(&s, &format!("img:{i}")), i))
        .collect();
    let names: Vec<String> = revs.iter().map(|r| name_of(r).to_string()).collect();
    let pod = pod_at(&s, 0, &revs[0]); // pod labelled with revision 1 keeps it live
    let doomed = revisions_to_delete(&s, &[&pod], &revs, &names[4], &names[5]);
    // History (non-live) = 2,3,4; limit 2 → delete the oldest one.
    assert_eq!(doomed, vec![names[1].clone()]);
    spec_mut(&mut s).revision_history_limit = Some(-1);
    assert!(revisions_to_delete(&s, &[], &revs, &names[4], &names[5]).is_empty());
    spec_mut(&mut s).revision_history_limit = Some(0);
    assert_eq!(
        revisions_to_delete(&s, &[], &revs, &names[4], &names[5]),
        names[..4].to_vec()
    );
}
