//! Inter-pod affinity and anti-affinity (upstream InterPodAffinity), over topology domains: a
//! domain is a (topologyKey, value) pair of node labels, e.g. (`kubernetes.io/hostname`, `n1`).
//!
//! [`InterPod::new`] counts once per pod, over every pod the snapshot holds (upstream's
//! PreFilter), so the per-node [`InterPod::filter`] and [`InterPod::score`] are lookups:
//! - pods matching each of the incoming pod's required affinity / anti-affinity terms, per domain;
//! - domains where an existing pod's required anti-affinity term matches the incoming pod;
//! - weights of preferred terms, both the incoming pod's and existing pods' that match it.
//!
//! Term namespaces: `namespaces` plus `namespaceSelector`, or the term owner's namespace when
//! both are empty. stead does not watch Namespaces, so a `namespaceSelector` is evaluated against
//! the one label every namespace carries, `kubernetes.io/metadata.name` (`{}` selects all).
//! `matchLabelKeys`/`mismatchLabelKeys` are not applied.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

use crate::filters::{FilterResult, Rejection};
use crate::selector::label_selector_matches;
use crate::snapshot::{NodeState, Snapshot};

pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

type Domain = (String, String);

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or_default()
}

/// Whether `term`, written in a pod of namespace `owner_ns`, selects `pod`.
pub fn term_matches(term: &PodAffinityTerm, owner_ns: &str, pod: &Pod) -> bool {
    let ns = namespace(pod);
    let listed = term.namespaces.as_deref().unwrap_or_default();
    let ns_ok = if listed.is_empty() && term.namespace_selector.is_none() {
        ns == owner_ns
    } else {
        listed.iter().any(|n| n == ns)
            || term.namespace_selector.as_ref().is_some_and(|sel| {
                let labels: BTreeMap<String, String> =
                    [("kubernetes.io/metadata.name".to_string(), ns.to_string())].into();
                label_selector_matches(sel, Some(&labels))
            })
    };
    // A term without a label selector selects no pod.
    ns_ok
        && term
            .label_selector
            .as_ref()
            .is_some_and(|sel| label_selector_matches(sel, pod.metadata.labels.as_ref()))
}

fn affinity(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::Affinity> {
    pod.spec.as_ref()?.affinity.as_ref()
}

fn required_affinity(pod: &Pod) -> &[PodAffinityTerm] {
    affinity(pod)
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default()
}

fn required_anti_affinity(pod: &Pod) -> &[PodAffinityTerm] {
    affinity(pod)
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default()
}

fn preferred_affinity(pod: &Pod) -> &[WeightedPodAffinityTerm] {
    affinity(pod)
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default()
}

fn preferred_anti_affinity(pod: &Pod) -> &[WeightedPodAffinityTerm] {
    affinity(pod)
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default()
}

/// The domain of `key` on this node, if the node has that label.
fn domain_of(state: &NodeState, key: &str) -> Option<Domain> {
    state
        .labels()
        .and_then(|l| l.get(key))
        .map(|v| (key.to_string(), v.clone()))
}

/// The incoming pod's view of the other pods, computed once per scheduling attempt.
#[derive(Debug, Default)]
pub struct InterPod {
    /// Per required affinity term: matching pods per domain.
    affinity: Vec<HashMap<Domain, usize>>,
    /// Whether any pod in the cluster matched any required affinity term.
    any_affinity_match: bool,
    /// Whether the incoming pod matches all its own required affinity terms.
    self_affine: bool,
    /// Per required anti-affinity term: matching pods per domain.
    anti: Vec<HashMap<Domain, usize>>,
    /// Domains where an existing pod's required anti-affinity term selects the incoming pod.
    existing_anti: HashMap<Domain, usize>,
    /// Preferred weights per domain (positive: affinity, negative: anti-affinity).
    preferred: HashMap<Domain, i64>,
    affinity_keys: Vec<String>,
    anti_keys: Vec<String>,
}

impl InterPod {
    pub fn new(pod: &Pod, snapshot: &Snapshot) -> InterPod {
        let ns = namespace(pod);
        let req_aff = required_affinity(pod);
        let req_anti = required_anti_affinity(pod);
        let pref_aff = preferred_affinity(pod);
        let pref_anti = preferred_anti_affinity(pod);
        let mut s = InterPod {
            affinity: vec![HashMap::new(); req_aff.len()],
            anti: vec![HashMap::new(); req_anti.len()],
            self_affine: req_aff.iter().all(|t| term_matches(t, ns, pod)),
            affinity_keys: req_aff.iter().map(|t| t.topology_key.clone()).collect(),
            anti_keys: req_anti.iter().map(|t| t.topology_key.clone()).collect(),
            ..InterPod::default()
        };
        let own = crate::snapshot::pod_key(pod);
        for state in snapshot.all_node_states() {
            if state.labels().is_none() {
                continue;
            }
            for (key, other) in &state.pods {
                if *key == own {
                    continue;
                }
                let other_ns = namespace(other);
                for (i, t) in req_aff.iter().enumerate() {
                    if term_matches(t, ns, other) {
                        s.any_affinity_match = true;
                        if let Some(d) = domain_of(state, &t.topology_key) {
                            *s.affinity[i].entry(d).or_default() += 1;
                        }
                    }
                }
                for (i, t) in req_anti.iter().enumerate() {
                    if term_matches(t, ns, other)
                        && let Some(d) = domain_of(state, &t.topology_key)
                    {
                        *s.anti[i].entry(d).or_default() += 1;
                    }
                }
                for t in required_anti_affinity(other) {
                    if term_matches(t, other_ns, pod)
                        && let Some(d) = domain_of(state, &t.topology_key)
                    {
                        *s.existing_anti.entry(d).or_default() += 1;
                    }
                }
                let mut add = |term: &PodAffinityTerm, matches: bool, weight: i64| {
                    if matches && let Some(d) = domain_of(state, &term.topology_key) {
                        *s.preferred.entry(d).or_default() += weight;
                    }
                };
                // The incoming pod's preferences over existing pods...
                for w in pref_aff {
                    let t = &w.pod_affinity_term;
                    add(t, term_matches(t, ns, other), i64::from(w.weight));
                }
                for w in pref_anti {
                    let t = &w.pod_affinity_term;
                    add(t, term_matches(t, ns, other), -i64::from(w.weight));
                }
                // ...and existing pods' preferences (and required affinity, weight 1, upstream's
                // hardPodAffinityWeight) over the incoming pod.
                for w in preferred_affinity(other) {
                    let t = &w.pod_affinity_term;
                    add(t, term_matches(t, other_ns, pod), i64::from(w.weight));
                }
                for w in preferred_anti_affinity(other) {
                    let t = &w.pod_affinity_term;
                    add(t, term_matches(t, other_ns, pod), -i64::from(w.weight));
                }
                for t in required_affinity(other) {
                    add(t, term_matches(t, other_ns, pod), 1);
                }
            }
        }
        s
    }

    /// The required rules on one node, in upstream's order: the pod's affinity, its
    /// anti-affinity, then existing pods' anti-affinity.
    pub fn filter(&self, state: &NodeState) -> FilterResult {
        if !self.affinity.is_empty() {
            let mut all_domains = true;
            let mut pods_exist = true;
            for (i, key) in self.affinity_keys.iter().enumerate() {
                match domain_of(state, key) {
                    Some(d) => pods_exist &= self.affinity[i].get(&d).copied().unwrap_or(0) > 0,
                    None => all_domains = false,
                }
            }
            // The first pod of a group that is affine to itself may go anywhere that has the
            // topology labels.
            let ok = all_domains && (pods_exist || (!self.any_affinity_match && self.self_affine));
            if !ok {
                return Err(Rejection::unresolvable(REASON_AFFINITY));
            }
        }
        for (i, key) in self.anti_keys.iter().enumerate() {
            if let Some(d) = domain_of(state, key)
                && self.anti[i].get(&d).copied().unwrap_or(0) > 0
            {
                return Err(Rejection::resolvable(REASON_ANTI_AFFINITY));
            }
        }
        if !self.existing_anti.is_empty() {
            let labels = state.labels();
            let hit = labels.is_some_and(|l| {
                l.iter()
                    .any(|(k, v)| self.existing_anti.contains_key(&(k.clone(), v.clone())))
            });
            if hit {
                return Err(Rejection::resolvable(REASON_EXISTING_ANTI_AFFINITY));
            }
        }
        Ok(())
    }

    /// The raw preferred-affinity score of one node (sum of weights of its domains).
    pub fn score(&self, state: &NodeState) -> i64 {
        if self.preferred.is_empty() {
            return 0;
        }
        state.labels().map_or(0, |l| {
            l.iter()
                .filter_map(|(k, v)| self.preferred.get(&(k.clone(), v.clone())))
                .sum()
        })
    }
}
