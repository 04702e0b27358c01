//! Volume binding (upstream VolumeBinding), for the claims a pod mounts
//! (`persistentVolumeClaim` volumes and generic `ephemeral` ones, claim `<pod>-<volume>`).
//!
//! [`pod_claims`] is the pre-filter, one verdict for the whole pod (same strings as upstream):
//! a claim that does not exist (`persistentvolumeclaim "x" not found`), is being deleted, or is
//! Lost stops the pod; so does an unbound claim whose class binds immediately (`pod has unbound
//! immediate PersistentVolumeClaims`): the volume binder must bind it first.
//!
//! [`filter`] is per node: a bound claim's PersistentVolume must exist and its
//! `nodeAffinity.required` must match the node (`node(s) had volume node affinity conflict`). An
//! unbound claim of a WaitForFirstConsumer class ("delayed") fits any node the class's
//! `allowedTopologies` allow (`node(s) didn't find available persistent volumes to bind`):
//! its provisioner creates the volume where the scheduler puts the pod, told through the claim's
//! `volume.kubernetes.io/selected-node` annotation. A delayed claim that already carries that
//! annotation is being provisioned there, so only that node fits.
//!
//! Not modelled: matching pre-created PVs of a `kubernetes.io/no-provisioner` class (they are
//! treated like provisioned ones), capacity tracking, attach limits.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};

use crate::filters::{FilterResult, Rejection};
use crate::selector::node_selector_terms_match;
use crate::snapshot::{Snapshot, key};

/// The annotation that tells a provisioner which node the scheduler chose.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const REASON_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
pub const REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const REASON_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
pub const REASON_PV_MISSING: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";

/// A pod's claims after the pre-filter.
#[derive(Debug, Clone, Default)]
pub struct PodClaims {
    /// Claims with a volume (`spec.volumeName`).
    pub bound: Vec<Arc<PersistentVolumeClaim>>,
    /// Unbound claims of WaitForFirstConsumer classes: provisioned once the pod has a node.
    pub delayed: Vec<Arc<PersistentVolumeClaim>>,
}

impl PodClaims {
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty() && self.delayed.is_empty()
    }
}

/// The claim names `pod` mounts, and whether each is an ephemeral volume's.
pub fn claim_names(pod: &Pod) -> Vec<(String, bool)> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some((c.claim_name.clone(), false))
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| (format!("{pod_name}-{}", v.name), true))
            }
        })
        .collect()
}

fn is_wait_for_first_consumer(claim: &PersistentVolumeClaim, snapshot: &Snapshot) -> bool {
    let class = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or_default();
    snapshot
        .classes
        .get(class)
        .and_then(|c| c.volume_binding_mode.as_deref())
        == Some("WaitForFirstConsumer")
}

fn volume_name(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty())
}

/// Whether the claim is Bound (its volume exists and the binder finished).
pub fn is_bound(claim: &PersistentVolumeClaim) -> bool {
    claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

/// The pre-filter: the pod's claims, or the message that stops the pod on every node.
pub fn pod_claims(pod: &Pod, snapshot: &Snapshot) -> Result<PodClaims, String> {
    let ns = pod.metadata.namespace.as_deref();
    let mut out = PodClaims::default();
    let mut unbound_immediate = false;
    for (name, ephemeral) in claim_names(pod) {
        let Some(claim) = snapshot.claims.get(&key(ns, Some(&name))) else {
            return Err(if ephemeral {
                format!(
                    "waiting for ephemeral volume controller to create the persistentvolumeclaim \"{name}\""
                )
            } else {
                format!("persistentvolumeclaim \"{name}\" not found")
            });
        };
        let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase == Some("Lost") {
            return Err(format!(
                "persistentvolumeclaim \"{name}\" bound to non-existent persistentvolume \"{}\"",
                volume_name(claim).unwrap_or_default()
            ));
        }
        if claim.metadata.deletion_timestamp.is_some() {
            return Err(format!("persistentvolumeclaim \"{name}\" is being deleted"));
        }
        if volume_name(claim).is_some() {
            out.bound.push(claim.clone());
        } else if is_wait_for_first_consumer(claim, snapshot) {
            out.delayed.push(claim.clone());
        } else {
            unbound_immediate = true;
        }
    }
    if unbound_immediate {
        return Err(REASON_UNBOUND_IMMEDIATE.to_string());
    }
    Ok(out)
}

/// The node annotated on a delayed claim, if provisioning was already asked for.
pub fn selected_node(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE))
        .map(String::as_str)
        .filter(|n| !n.is_empty())
}

fn class_allows(claim: &PersistentVolumeClaim, snapshot: &Snapshot, node: &Node) -> bool {
    let class = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or_default();
    let Some(terms) = snapshot
        .classes
        .get(class)
        .and_then(|c| c.allowed_topologies.as_deref())
        .filter(|t| !t.is_empty())
    else {
        return true;
    };
    let labels = node.metadata.labels.as_ref();
    terms.iter().any(|term| {
        term.match_label_expressions.iter().flatten().all(|e| {
            labels
                .and_then(|l| l.get(&e.key))
                .is_some_and(|v| e.values.contains(v))
        })
    })
}

/// The per-node check of the pod's claims.
pub fn filter(claims: &PodClaims, snapshot: &Snapshot, node: &Node) -> FilterResult {
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    for claim in &claims.bound {
        let Some(pv) = volume_name(claim).and_then(|v| snapshot.volumes.get(v)) else {
            return Err(Rejection::unresolvable(REASON_PV_MISSING));
        };
        let required = pv
            .spec
            .as_ref()
            .and_then(|s| s.node_affinity.as_ref())
            .and_then(|a| a.required.as_ref());
        if let Some(required) = required
            && !node_selector_terms_match(&required.node_selector_terms, node)
        {
            return Err(Rejection::unresolvable(REASON_NODE_CONFLICT));
        }
    }
    for claim in &claims.delayed {
        if selected_node(claim).is_some_and(|n| n != node_name) {
            return Err(Rejection::unresolvable(REASON_NODE_CONFLICT));
        }
        if !class_allows(claim, snapshot, node) {
            return Err(Rejection::unresolvable(REASON_BIND_CONFLICT));
        }
    }
    Ok(())
}
