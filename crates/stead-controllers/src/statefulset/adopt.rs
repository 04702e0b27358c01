//! Which pods and revisions a sync works on (spec §4.2 step 1, §4.3.1, §7.1): the controller-ref
//! manager's claim rules, producing adopt/release actions for the executor.

use std::borrow::Borrow;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};
use stead_api::selector::LabelSelector;

use super::action::Action;
use super::health::is_terminating;
use super::identity::{controller_of, is_member_of};
use super::spec;

fn label_map(meta: &ObjectMeta) -> Map<String, Value> {
    meta.labels
        .as_ref()
        .map(|l| {
            l.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default()
}

fn same_namespace(set: &StatefulSet, meta: &ObjectMeta) -> bool {
    meta.namespace.as_deref().unwrap_or("") == spec::namespace(set)
}

/// `ClaimPods` (§7.1) over the pods of the set's namespace: returns the pods this sync manages
/// (controlled by the set and matching, plus orphans being adopted), and pushes `AdoptPod` /
/// `ReleasePod` actions.
pub fn claim_pods<'a, P: Borrow<Pod>>(
    set: &StatefulSet,
    selector: &LabelSelector,
    pods: &'a [P],
    actions: &mut Vec<Action>,
) -> Vec<&'a Pod> {
    let deleting = set.metadata.deletion_timestamp.is_some();
    let mut claimed = Vec::new();
    let pods = pods.iter().map(Borrow::borrow);
    for pod in pods.filter(|p: &&Pod| same_namespace(set, &p.metadata)) {
        let matches = selector.matches(&label_map(&pod.metadata)) && is_member_of(set, pod);
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match controller_of(&pod.metadata) {
            Some(r) if r.uid != spec::uid(set) => {}
            Some(_) if matches => claimed.push(pod),
            Some(_) => {
                if !deleting {
                    actions.push(Action::ReleasePod { name, uid });
                }
            }
            None => {
                if !deleting && matches && !is_terminating(pod) {
                    actions.push(Action::AdoptPod { name, uid });
                    claimed.push(pod);
                }
            }
        }
    }
    claimed
}

/// `ListRevisions` + `adoptOrphanRevisions` (§4.3.1): revisions matching the selector that the
/// set controls or that are orphans (adopted, unless the set is being deleted).
pub fn owned_revisions<R: Borrow<ControllerRevision>>(
    set: &StatefulSet,
    selector: &LabelSelector,
    revisions: &[R],
    actions: &mut Vec<Action>,
) -> Vec<ControllerRevision> {
    let deleting = set.metadata.deletion_timestamp.is_some();
    let mut owned = Vec::new();
    let revisions = revisions.iter().map(Borrow::borrow);
    for revision in revisions.filter(|r: &&ControllerRevision| same_namespace(set, &r.metadata)) {
        if !selector.matches(&label_map(&revision.metadata)) {
            continue;
        }
        match controller_of(&revision.metadata) {
            Some(r) if r.uid != spec::uid(set) => {}
            Some(_) => owned.push(revision.clone()),
            None => {
                if !deleting {
                    actions.push(Action::AdoptRevision {
                        name: revision.metadata.name.clone().unwrap_or_default(),
                    });
                }
                owned.push(revision.clone());
            }
        }
    }
    owned
}
