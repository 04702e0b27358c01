//! The garbage collector's pure parts: graph transitions and per-object plans.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use stead_controllers::gc::plan::{owner_key, plan, unresolved_owners};
use stead_controllers::gc::{
    Action, FOREGROUND, Graph, Node, ORPHAN, ObjectKey, OwnerState, Propagation,
};

fn key(plural: &str, group: &str, ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        resource: stead_api::resource::RESOURCES
            .iter()
            .find(|r| r.plural == plural && r.group == group)
            .expect("served"),
        namespace: ns.into(),
        name: name.into(),
    }
}

fn cm(name: &str, uid: &str) -> Node {
    Node {
        key: key("configmaps", "", "default", name),
        uid: uid.into(),
        resource_version: "1".into(),
        owners: vec![],
        deleting: false,
        finalizers: vec![],
    }
}

fn pod(name: &str, uid: &str) -> Node {
    Node {
        key: key("pods", "", "default", name),
        ..cm(name, uid)
    }
}

fn sts(name: &str, uid: &str) -> Node {
    Node {
        key: key("statefulsets", "apps", "default", name),
        ..cm(name, uid)
    }
}

fn reference(owner: &Node, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: owner.key.resource.api_version(),
        kind: owner.key.resource.kind.into(),
        name: owner.key.name.clone(),
        uid: owner.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }
}

fn owned(mut n: Node, owner: &Node, block: bool) -> Node {
    n.owners.push(reference(owner, block));
    n
}

fn deleting(mut n: Node, finalizer: &str) -> Node {
    n.deleting = true;
    n.finalizers.push(finalizer.into());
    n
}

fn none() -> BTreeMap<String, OwnerState> {
    BTreeMap::new()
}

fn dangling(uid: &str) -> BTreeMap<String, OwnerState> {
    BTreeMap::from([(uid.to_string(), OwnerState::Dangling)])
}

fn uids(v: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
    v.into_iter().map(|s| s.as_ref().to_string()).collect()
}

#[test]
fn removing_an_owner_queues_its_dependents_and_a_dangling_owner_gets_them_deleted() {
    // Ref: upstream TestGarbageCollectorSync / "should delete pods created by rc when not orphaning"
    let owner = cm("owner", "o");
    let mut g = Graph::new();
    g.upsert(owner.clone());
    assert!(g.upsert(owned(cm("a", "a"), &owner, false)).is_empty());
    assert!(g.upsert(owned(cm("b", "b"), &owner, false)).is_empty());

    let queued = g.remove("o");
    assert_eq!(uids(&queued), uids(["a", "b"]));

    let lookups = unresolved_owners(&g, "a");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].uid, "o");
    assert_eq!(lookups[0].key, key("configmaps", "", "default", "owner"));

    let p = plan(&g, "a", &dangling("o"));
    assert_eq!(p.actions.len(), 1);
    match &p.actions[0] {
        Action::Delete {
            target,
            propagation,
        } => {
            assert_eq!(target.uid, "a");
            assert_eq!(target.resource_version, "1");
            assert_eq!(*propagation, Propagation::Background);
        }
        other => panic!("expected a delete, got {other:?}"),
    }
}

#[test]
fn an_owner_neither_observed_nor_looked_up_counts_as_present() {
    let owner = cm("owner", "o");
    let mut g = Graph::new();
    let queued = g.upsert(owned(cm("a", "a"), &owner, false));
    assert_eq!(uids(&queued), uids(["a"]), "an unknown owner needs a look");
    assert!(plan(&g, "a", &none()).actions.is_empty());
    let present = BTreeMap::from([("o".to_string(), OwnerState::Solid)]);
    assert!(plan(&g, "a", &present).actions.is_empty());
}

#[test]
fn a_dependent_with_a_live_owner_only_loses_the_dangling_reference() {
    // Ref: upstream attemptToDeleteItem "item has at least one existing owner, will not garbage collect"
    let gone = cm("gone", "g");
    let live = cm("live", "l");
    let mut g = Graph::new();
    g.upsert(live.clone());
    g.upsert(owned(owned(cm("dep", "d"), &gone, true), &live, false));
    let p = plan(&g, "d", &dangling("g"));
    assert_eq!(
        p.actions,
        vec![Action::RemoveOwnerRefs {
            target: stead_controllers::gc::Target {
                key: key("configmaps", "", "default", "dep"),
                uid: "d".into(),
                resource_version: "1".into(),
            },
            owners: uids(["g"]),
            remaining: vec![reference(&live, false)],
        }]
    );
}

#[test]
fn foreground_owner_waits_for_blocking_dependents_only() {
    // Ref: upstream processDeletingDependentsItem / blockingDependents
    let owner = cm("owner", "o");
    let mut g = Graph::new();
    g.upsert(owner.clone());
    g.upsert(owned(cm("blocking", "b"), &owner, true));
    g.upsert(owned(cm("free", "f"), &owner, false));

    let queued = g.upsert(deleting(owner.clone(), FOREGROUND));
    assert_eq!(uids(&queued), uids(["b", "f", "o"]));

    // Dependents of a waiting owner are deleted; having no dependents, in the background.
    for dep in ["b", "f"] {
        let p = plan(&g, dep, &none());
        assert!(
            matches!(
                p.actions.as_slice(),
                [Action::Delete { propagation: Propagation::Background, target }] if target.uid == dep
            ),
            "{dep}: {p:?}"
        );
    }
    // The owner keeps its finalizer while the blocking dependent exists.
    let p = plan(&g, "o", &none());
    assert!(p.actions.is_empty());
    assert_eq!(p.waiting_for, uids(["b"]));
    assert_eq!(p.enqueue, uids(["b"]));

    // Once the blocking dependent is gone, the owner is queued and its finalizer goes, even though
    // the non-blocking dependent still exists.
    let queued = g.remove("b");
    assert!(queued.contains("o"));
    let p = plan(&g, "o", &none());
    match p.actions.as_slice() {
        [
            Action::RemoveFinalizer {
                target,
                finalizer,
                remaining,
            },
        ] => {
            assert_eq!(target.uid, "o");
            assert_eq!(*finalizer, FOREGROUND);
            assert!(remaining.is_empty());
        }
        other => panic!("expected the finalizer removal, got {other:?}"),
    }
}

#[test]
fn a_dependent_that_has_dependents_of_its_own_is_deleted_in_the_foreground() {
    // Ref: upstream attemptToDeleteItem "at least one owner of item has FinalizerDeletingDependents,
    // and the item itself has dependents"
    let set = sts("web", "s");
    let web0 = owned(pod("web-0", "p"), &set, true);
    let mut g = Graph::new();
    g.upsert(set.clone());
    g.upsert(web0.clone());
    g.upsert(owned(cm("web-0-data", "c"), &web0, true));
    g.upsert(deleting(set, FOREGROUND));
    let p = plan(&g, "p", &none());
    assert!(matches!(
        p.actions.as_slice(),
        [Action::Delete {
            propagation: Propagation::Foreground,
            ..
        }]
    ));
}

#[test]
fn a_dependent_with_a_live_owner_and_a_waiting_owner_drops_the_waiting_reference() {
    let waiting = cm("waiting", "w");
    let live = cm("live", "l");
    let mut g = Graph::new();
    g.upsert(live.clone());
    g.upsert(waiting.clone());
    g.upsert(owned(owned(cm("dep", "d"), &waiting, true), &live, true));
    g.upsert(deleting(waiting, FOREGROUND));
    let p = plan(&g, "d", &none());
    match p.actions.as_slice() {
        [
            Action::RemoveOwnerRefs {
                owners, remaining, ..
            },
        ] => {
            assert_eq!(owners, &uids(["w"]));
            assert_eq!(remaining, &vec![reference(&live, true)]);
        }
        other => panic!("{other:?}"),
    }
    // The waiting owner is queued again when the reference goes.
    let mut dep = owned(cm("dep", "d"), &live, true);
    dep.resource_version = "2".into();
    assert!(g.upsert(dep).contains("w"));
}

#[test]
fn orphan_strips_references_from_every_dependent_then_drops_the_finalizer() {
    // Ref: upstream attemptToOrphanWorker
    let owner = cm("owner", "o");
    let other = cm("other", "x");
    let mut g = Graph::new();
    g.upsert(owner.clone());
    g.upsert(other.clone());
    g.upsert(owned(owned(cm("a", "a"), &owner, true), &other, false));
    g.upsert(owned(cm("b", "b"), &owner, false));
    let queued = g.upsert(deleting(owner, ORPHAN));
    assert_eq!(uids(&queued), uids(["o"]));

    let p = plan(&g, "o", &none());
    assert_eq!(p.actions.len(), 3);
    match &p.actions[0] {
        Action::RemoveOwnerRefs {
            target, remaining, ..
        } => {
            assert_eq!(target.uid, "a");
            assert_eq!(remaining, &vec![reference(&other, false)]);
        }
        a => panic!("{a:?}"),
    }
    match &p.actions[1] {
        Action::RemoveOwnerRefs {
            target, remaining, ..
        } => {
            assert_eq!(target.uid, "b");
            assert!(remaining.is_empty());
        }
        a => panic!("{a:?}"),
    }
    assert!(matches!(
        &p.actions[2],
        Action::RemoveFinalizer { finalizer, target, .. } if *finalizer == ORPHAN && target.uid == "o"
    ));
}

#[test]
fn objects_being_deleted_without_gc_finalizers_are_left_alone() {
    let owner = cm("owner", "o");
    let mut g = Graph::new();
    let mut dep = owned(pod("web-0", "p"), &owner, true);
    dep.deleting = true;
    g.upsert(dep);
    assert!(unresolved_owners(&g, "p").is_empty());
    assert!(plan(&g, "p", &dangling("o")).actions.is_empty());
    assert!(plan(&g, "missing", &none()).actions.is_empty());
}

#[test]
fn existing_gc_finalizers_on_an_orphaned_dependent_choose_its_propagation() {
    // Ref: upstream attemptToDeleteItem "if an existing orphan finalizer is already on the object, honor it"
    let owner = cm("owner", "o");
    let mut g = Graph::new();
    let mut dep = owned(cm("a", "a"), &owner, false);
    dep.finalizers.push(ORPHAN.into());
    g.upsert(dep);
    assert!(matches!(
        plan(&g, "a", &dangling("o")).actions.as_slice(),
        [Action::Delete {
            propagation: Propagation::Orphan,
            ..
        }]
    ));
}

#[test]
fn a_foreground_cycle_unblocks_the_references_before_deleting() {
    // Ref: upstream attemptToDeleteItem "to prevent potential cycle, its ownerReferences are going
    // to be modified to be non-blocking"
    let a0 = cm("a", "a");
    let b0 = cm("b", "b");
    let a = owned(a0.clone(), &b0, true);
    let b = owned(b0, &a0, true);
    let mut g = Graph::new();
    g.upsert(a.clone());
    g.upsert(b);
    let queued = g.upsert(deleting(a, FOREGROUND));
    assert!(queued.contains("b"));
    let p = plan(&g, "b", &none());
    match p.actions.as_slice() {
        [
            Action::UnblockOwnerRefs { owner_refs, .. },
            Action::Delete {
                propagation: Propagation::Foreground,
                ..
            },
        ] => {
            assert_eq!(owner_refs.len(), 1);
            assert_eq!(owner_refs[0].block_owner_deletion, Some(false));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn owner_keys_follow_the_scope_of_the_owner_kind() {
    let node_ref = OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: "n1".into(),
        uid: "n".into(),
        ..Default::default()
    };
    let k = owner_key(&node_ref, "default").unwrap();
    assert_eq!((k.resource.plural, k.namespace.as_str()), ("nodes", ""));
    let sts_ref = OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: "web".into(),
        uid: "s".into(),
        ..Default::default()
    };
    assert_eq!(
        owner_key(&sts_ref, "prod").unwrap(),
        key("statefulsets", "apps", "prod", "web")
    );
    // A cluster-scoped object cannot be owned by a namespaced one; unknown kinds are skipped.
    assert_eq!(owner_key(&sts_ref, ""), None);
    let unknown = OwnerReference {
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        ..sts_ref
    };
    assert_eq!(owner_key(&unknown, "prod"), None);
}
