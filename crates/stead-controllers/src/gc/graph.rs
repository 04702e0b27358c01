//! The dependency graph the garbage collector keeps from its watches (upstream
//! `graph_builder.go`): one [`Node`] per observed object, keyed by uid, plus a reverse index from an
//! owner's uid to the uids of the objects that name it in `metadata.ownerReferences`.
//!
//! [`Graph::upsert`] and [`Graph::remove`] are pure state transitions that return the uids whose
//! processing the change may have made necessary (the "transitions" of upstream
//! `processGraphChanges`); the collector puts those into its queue.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use stead_api::ResourceType;

/// Finalizer of an object deleted with `propagationPolicy: Foreground`.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer of an object deleted with `propagationPolicy: Orphan`.
pub const ORPHAN: &str = "orphan";

/// Where an object lives: its resource type, namespace (empty for cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    pub resource: &'static ResourceType,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = self.resource.qualified_plural();
        if self.namespace.is_empty() {
            write!(f, "{plural} {}", self.name)
        } else {
            write!(f, "{plural} {}/{}", self.namespace, self.name)
        }
    }
}

/// What the collector knows about one object: identity and the metadata that drives collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub key: ObjectKey,
    pub uid: String,
    pub resource_version: String,
    pub owners: Vec<OwnerReference>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    /// Builds a node from an object's metadata; `None` when the object has no uid.
    pub fn from_meta(resource: &'static ResourceType, meta: &ObjectMeta) -> Option<Node> {
        let uid = meta.uid.clone().filter(|u| !u.is_empty())?;
        Some(Node {
            key: ObjectKey {
                resource,
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().unwrap_or_default(),
            },
            uid,
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            owners: meta.owner_references.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
        })
    }

    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: waits for its blocking dependents to go.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// Being deleted with `Orphan`: waits for its dependents to lose their references to it.
    pub fn orphaning(&self) -> bool {
        self.deleting && self.has_finalizer(ORPHAN)
    }

    /// The reference this node holds to `owner`, if any.
    pub fn owner_ref(&self, owner: &str) -> Option<&OwnerReference> {
        self.owners.iter().find(|r| r.uid == owner)
    }
}

/// True when the reference blocks foreground deletion of its owner.
pub fn blocks(r: &OwnerReference) -> bool {
    r.block_owner_deletion == Some(true)
}

/// Every observed object and who owns whom.
#[derive(Debug, Default, Clone)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    /// owner uid → uids of observed objects that reference it (the owner itself may be absent).
    dependents: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The observed objects that reference `owner`, in uid order.
    pub fn dependents(&self, owner: &str) -> impl Iterator<Item = &Node> {
        self.dependents
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|uid| self.nodes.get(uid))
    }

    pub fn has_dependents(&self, owner: &str) -> bool {
        self.dependents(owner).next().is_some()
    }

    /// Uids of every node of one resource type (used to find objects a relist no longer has).
    pub fn uids_of(&self, resource: &ResourceType) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.key.resource == resource)
            .map(|n| n.uid.clone())
            .collect()
    }

    /// Records an added or changed object; returns the uids to process.
    pub fn upsert(&mut self, node: Node) -> BTreeSet<String> {
        let mut enqueue = BTreeSet::new();
        let old = self.nodes.remove(&node.uid);

        // An owner that waits on its dependents or asked to orphan them acts on its own state.
        if node.orphaning() || node.deleting_dependents() {
            enqueue.insert(node.uid.clone());
        }
        // On entering foreground deletion every dependent is considered for deletion.
        if node.deleting_dependents() && !old.as_ref().is_some_and(Node::deleting_dependents) {
            enqueue.extend(self.dependents(&node.uid).map(|d| d.uid.clone()));
        }
        // A dependent whose owner is unknown or waiting needs a decision.
        if !node.deleting
            && node.owners.iter().any(|r| match self.nodes.get(&r.uid) {
                None => true,
                Some(owner) => owner.deleting_dependents(),
            })
        {
            enqueue.insert(node.uid.clone());
        }
        // Owners that lost this object as a (blocking) dependent may now proceed.
        if let Some(old) = &old {
            for r in &old.owners {
                let unchanged = node
                    .owner_ref(&r.uid)
                    .is_some_and(|now| blocks(now) || !blocks(r));
                if !unchanged && self.nodes.get(&r.uid).is_some_and(|o| o.deleting) {
                    enqueue.insert(r.uid.clone());
                }
            }
            self.unindex(old);
        }
        for r in &node.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(node.uid.clone());
        }
        self.nodes.insert(node.uid.clone(), node);
        enqueue
    }

    /// Records that an object is gone; returns the uids to process: its dependents (their owner
    /// may now be dangling) and its owners that are waiting on their dependents.
    pub fn remove(&mut self, uid: &str) -> BTreeSet<String> {
        let mut enqueue = BTreeSet::new();
        let Some(node) = self.nodes.remove(uid) else {
            return enqueue;
        };
        self.unindex(&node);
        for r in &node.owners {
            if self.nodes.get(&r.uid).is_some_and(|o| o.deleting) {
                enqueue.insert(r.uid.clone());
            }
        }
        enqueue.extend(self.dependents(uid).map(|d| d.uid.clone()));
        enqueue
    }

    fn unindex(&mut self, node: &Node) {
        for r in &node.owners {
            if let Some(set) = self.dependents.get_mut(&r.uid) {
                set.remove(&node.uid);
                if set.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
    }
}
