//! What the garbage collector does about one object, decided purely from the [`Graph`] (upstream
//! `attemptToDeleteItem`, `processDeletingDependentsItem` and `attemptToOrphanWorker`).
//!
//! Start at [`plan`]. Owners the graph has never seen are classified by a live read first: the
//! executor asks for them with [`unresolved_owners`] and passes the answers in as `resolved`, so
//! a watch that lags behind (a dependent observed before its new owner) never gets a dependent
//! deleted. An owner that is neither in the graph nor resolved counts as present.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::graph::{FOREGROUND, Graph, Node, ORPHAN, ObjectKey, blocks};

/// `propagationPolicy` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Background => "Background",
            Propagation::Foreground => "Foreground",
            Propagation::Orphan => "Orphan",
        }
    }
}

/// How an owner reference stands (upstream `classifyReferences`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner does not exist (or a different object holds its name).
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
}

/// An owner to read from the API server: where to find it and the uid the reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerLookup {
    pub key: ObjectKey,
    pub uid: String,
}

/// The object an action writes, with the preconditions the write carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: ObjectKey,
    pub uid: String,
    /// The version the decision was made from; a write against a newer one conflicts and the
    /// object is looked at again.
    pub resource_version: String,
}

impl Target {
    fn of(node: &Node) -> Target {
        Target {
            key: node.key.clone(),
            uid: node.uid.clone(),
            resource_version: node.resource_version.clone(),
        }
    }
}

/// One write the collector makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete a dependent whose owners are all gone or going.
    Delete {
        target: Target,
        propagation: Propagation,
    },
    /// Drop references to `owners` from a dependent; `remaining` is the resulting list.
    RemoveOwnerRefs {
        target: Target,
        owners: Vec<String>,
        remaining: Vec<OwnerReference>,
    },
    /// Set `blockOwnerDeletion: false` on every reference (breaks foreground cycles).
    UnblockOwnerRefs {
        target: Target,
        owner_refs: Vec<OwnerReference>,
    },
    /// Remove a GC finalizer; `remaining` is the resulting list.
    RemoveFinalizer {
        target: Target,
        finalizer: &'static str,
        remaining: Vec<String>,
    },
}

/// The decision for one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Writes to make, in order; stop at the first failure.
    pub actions: Vec<Action>,
    /// Other objects to look at (the blocking dependents of a foreground owner).
    pub enqueue: Vec<String>,
    /// Why a foreground owner cannot finish yet: its blocking dependents still present.
    pub waiting_for: Vec<String>,
}

/// Where the owner named by `r` lives, seen from a dependent in `namespace`. `None` when the kind
/// is not served or a cluster-scoped object names a namespaced owner (both are left alone, as
/// upstream does).
pub fn owner_key(r: &OwnerReference, namespace: &str) -> Option<ObjectKey> {
    let resource = stead_api::resource::find_kind(&r.api_version, &r.kind)?;
    if resource.namespaced && namespace.is_empty() {
        return None;
    }
    Some(ObjectKey {
        resource,
        namespace: if resource.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name: r.name.clone(),
    })
}

/// Owners of `uid` the graph does not know, which [`plan`] needs classified by a live read.
pub fn unresolved_owners(graph: &Graph, uid: &str) -> Vec<OwnerLookup> {
    let Some(node) = graph.get(uid) else {
        return Vec::new();
    };
    if node.deleting {
        return Vec::new();
    }
    node.owners
        .iter()
        .filter(|r| graph.get(&r.uid).is_none())
        .filter_map(|r| {
            Some(OwnerLookup {
                key: owner_key(r, &node.key.namespace)?,
                uid: r.uid.clone(),
            })
        })
        .collect()
}

/// Decides what to do about the object `uid`.
pub fn plan(graph: &Graph, uid: &str, resolved: &BTreeMap<String, OwnerState>) -> Plan {
    let Some(node) = graph.get(uid) else {
        return Plan::default();
    };
    if node.orphaning() {
        return orphan(graph, node);
    }
    if node.deleting_dependents() {
        return finish_foreground(graph, node);
    }
    if node.deleting {
        // Deletion is a one-way trip: its dependents are handled once it is gone.
        return Plan::default();
    }
    collect(graph, node, resolved)
}

/// `Orphan`: strip the references to `owner` from every dependent, then drop the finalizer.
fn orphan(graph: &Graph, owner: &Node) -> Plan {
    let mut actions: Vec<Action> = graph
        .dependents(&owner.uid)
        .map(|dep| Action::RemoveOwnerRefs {
            target: Target::of(dep),
            owners: vec![owner.uid.clone()],
            remaining: dep
                .owners
                .iter()
                .filter(|r| r.uid != owner.uid)
                .cloned()
                .collect(),
        })
        .collect();
    actions.push(remove_finalizer(owner, ORPHAN));
    Plan {
        actions,
        ..Plan::default()
    }
}

/// `Foreground`: the owner goes once no dependent blocks it.
fn finish_foreground(graph: &Graph, owner: &Node) -> Plan {
    let blocking: Vec<&Node> = graph
        .dependents(&owner.uid)
        .filter(|d| d.owner_ref(&owner.uid).is_some_and(blocks))
        .collect();
    if blocking.is_empty() {
        return Plan {
            actions: vec![remove_finalizer(owner, FOREGROUND)],
            ..Plan::default()
        };
    }
    Plan {
        actions: Vec::new(),
        enqueue: blocking
            .iter()
            .filter(|d| !d.deleting)
            .map(|d| d.uid.clone())
            .collect(),
        waiting_for: blocking.iter().map(|d| d.uid.clone()).collect(),
    }
}

fn remove_finalizer(node: &Node, finalizer: &'static str) -> Action {
    Action::RemoveFinalizer {
        target: Target::of(node),
        finalizer,
        remaining: node
            .finalizers
            .iter()
            .filter(|f| *f != finalizer)
            .cloned()
            .collect(),
    }
}

fn classify(
    graph: &Graph,
    r: &OwnerReference,
    resolved: &BTreeMap<String, OwnerState>,
) -> OwnerState {
    match graph.get(&r.uid) {
        Some(owner) if owner.deleting_dependents() => OwnerState::Waiting,
        Some(_) => OwnerState::Solid,
        None => resolved.get(&r.uid).copied().unwrap_or(OwnerState::Solid),
    }
}

/// A live dependent: delete it when no owner is solid; otherwise drop references to owners that
/// are gone or waiting.
fn collect(graph: &Graph, node: &Node, resolved: &BTreeMap<String, OwnerState>) -> Plan {
    if node.owners.is_empty() {
        return Plan::default();
    }
    let states: Vec<(&OwnerReference, OwnerState)> = node
        .owners
        .iter()
        .map(|r| (r, classify(graph, r, resolved)))
        .collect();
    let solid = states.iter().any(|(_, s)| *s == OwnerState::Solid);
    let waiting = states.iter().any(|(_, s)| *s == OwnerState::Waiting);
    let target = Target::of(node);

    if solid {
        let drop: Vec<String> = states
            .iter()
            .filter(|(_, s)| *s != OwnerState::Solid)
            .map(|(r, _)| r.uid.clone())
            .collect();
        if drop.is_empty() {
            return Plan::default();
        }
        let remaining = node
            .owners
            .iter()
            .filter(|r| !drop.contains(&r.uid))
            .cloned()
            .collect();
        return Plan {
            actions: vec![Action::RemoveOwnerRefs {
                target,
                owners: drop,
                remaining,
            }],
            ..Plan::default()
        };
    }

    let mut actions = Vec::new();
    let propagation = if waiting && graph.has_dependents(&node.uid) {
        // An owner waits and this object has dependents of its own: delete it in the foreground
        // too. When one of its dependents is itself waiting, the references up are unblocked
        // first so that a cycle cannot wait on itself.
        if graph.dependents(&node.uid).any(|d| d.deleting_dependents()) {
            actions.push(Action::UnblockOwnerRefs {
                target: target.clone(),
                owner_refs: node
                    .owners
                    .iter()
                    .cloned()
                    .map(|mut r| {
                        if r.block_owner_deletion.is_some() {
                            r.block_owner_deletion = Some(false);
                        }
                        r
                    })
                    .collect(),
            });
        }
        Propagation::Foreground
    } else if node.has_finalizer(ORPHAN) {
        Propagation::Orphan
    } else if node.has_finalizer(FOREGROUND) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    actions.push(Action::Delete {
        target,
        propagation,
    });
    Plan {
        actions,
        ..Plan::default()
    }
}
