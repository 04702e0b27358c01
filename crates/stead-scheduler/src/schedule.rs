//! One scheduling decision: [`schedule`] runs the pre-filter, the filters on every node (in
//! upstream's plugin order, stopping at a node's first failing filter), then scores the nodes that
//! fit and picks the best. When none fits, [`Unschedulable`] keeps every node's reasons and
//! renders upstream's message (`FitError.Error()` plus the default preemption plugin's part).
//!
//! # Scores (each 0–100 per node, summed with equal weight; the highest sum wins, ties go to
//! the node with fewer pods, then to the name that sorts first)
//! - least allocated: the free share of cpu and memory after placing the pod, averaged
//!   (requests with upstream's non-zero defaults, 100m cpu / 200Mi, so empty pods spread);
//! - preferred node affinity: the weights of matching preferred terms, scaled so the best
//!   node gets 100;
//! - PreferNoSchedule taints: 100 minus the node's untolerated ones scaled by the worst node's;
//! - preferred inter-pod (anti-)affinity: the summed weights, scaled min–max to 0–100.
//!
//! Preemption is not implemented: the message's preemption part says what upstream would
//! find when no lower-priority pod can be evicted.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::filters::{self, Rejection};
use crate::interpod::InterPod;
use crate::resources::{node_allocatable, pod_requests_for_scoring};
use crate::selector::node_selector_term_matches;
use crate::snapshot::{NodeName, NodeState, Snapshot};
use crate::volumes::{self, PodClaims};

pub const NO_NODES: &str = "no nodes available to schedule pods";
const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// Why no node fits a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    /// Nodes considered.
    pub num_nodes: usize,
    /// A verdict of the pre-filter, the same on every node (e.g. a claim not found).
    pub pre_filter: Option<String>,
    /// Each node's rejection by the first filter it failed.
    pub nodes: BTreeMap<NodeName, Rejection>,
}

impl Unschedulable {
    /// `count reason` pairs, sorted as strings the way upstream sorts them.
    fn histogram<'a>(reasons: impl Iterator<Item = &'a str>) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in reasons {
            *counts.entry(r).or_default() += 1;
        }
        let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.sort();
        parts.join(", ")
    }

    /// Upstream's message, e.g. `0/3 nodes are available: 1 node(s) didn't match Pod's node
    /// affinity/selector, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 No
    /// preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.`
    pub fn message(&self, pod: &Pod) -> String {
        let n = self.num_nodes;
        if n == 0 {
            return NO_NODES.to_string();
        }
        let mut msg = format!("0/{n} nodes are available:");
        let filters = match &self.pre_filter {
            Some(p) => p.clone(),
            None => Self::histogram(
                self.nodes
                    .values()
                    .flat_map(|r| r.reasons.iter().map(String::as_str)),
            ),
        };
        if !filters.is_empty() {
            msg.push_str(&format!(" {filters}."));
        }
        let never = pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref())
            == Some("Never");
        let preemption = if never {
            "not eligible due to preemptionPolicy=Never.".to_string()
        } else {
            let verdicts: Vec<&str> = match &self.pre_filter {
                Some(_) => vec![NOT_HELPFUL; n],
                None => self
                    .nodes
                    .values()
                    .map(|r| {
                        if r.unresolvable {
                            NOT_HELPFUL
                        } else {
                            NO_VICTIMS
                        }
                    })
                    .collect(),
            };
            format!(
                "0/{n} nodes are available: {}",
                Self::histogram(verdicts.into_iter())
            )
        };
        msg.push_str(&format!(" preemption: {preemption}."));
        msg
    }
}

impl fmt::Display for Unschedulable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "0/{} nodes are available ({} rejected)",
            self.num_nodes,
            self.nodes.len()
        )
    }
}

/// The filters, in upstream's order, on one node; the first failure decides.
fn filter_node(
    pod: &Pod,
    node: &Node,
    state: &NodeState,
    claims: &PodClaims,
    snapshot: &Snapshot,
    interpod: &InterPod,
) -> Result<(), Rejection> {
    filters::node_unschedulable(pod, node)?;
    filters::node_name(pod, node)?;
    filters::taint_toleration(pod, node)?;
    filters::node_affinity(pod, node)?;
    filters::node_ports(pod, state)?;
    filters::resources_fit(pod, state)?;
    if !claims.is_empty() {
        volumes::filter(claims, snapshot, node)?;
    }
    interpod.filter(state)
}

/// The nodes `pod` fits on, or why it fits none.
pub fn feasible_nodes<'s>(
    pod: &Pod,
    snapshot: &'s Snapshot,
) -> Result<(Vec<&'s NodeState>, InterPod), Unschedulable> {
    let num_nodes = snapshot.nodes().count();
    let claims = match volumes::pod_claims(pod, snapshot) {
        Ok(c) => c,
        Err(message) => {
            return Err(Unschedulable {
                num_nodes,
                pre_filter: Some(message),
                nodes: BTreeMap::new(),
            });
        }
    };
    let interpod = InterPod::new(pod, snapshot);
    let mut fit = Vec::new();
    let mut rejected = BTreeMap::new();
    for state in snapshot.nodes() {
        let Some(node) = state.node.as_deref() else {
            continue;
        };
        match filter_node(pod, node, state, &claims, snapshot, &interpod) {
            Ok(()) => fit.push(state),
            Err(r) => {
                rejected.insert(state.name.clone(), r);
            }
        }
    }
    if fit.is_empty() {
        return Err(Unschedulable {
            num_nodes,
            pre_filter: None,
            nodes: rejected,
        });
    }
    Ok((fit, interpod))
}

fn least_allocated(pod: &Pod, state: &NodeState) -> i64 {
    let Some(node) = state.node.as_deref() else {
        return 0;
    };
    let (alloc, _) = node_allocatable(node);
    let want = state
        .requested_for_scoring
        .plus(&pod_requests_for_scoring(pod));
    let free_share = |have: i64, used: i64| {
        if have <= 0 || used > have {
            0
        } else {
            let free = i128::from(have - used) * 100 / i128::from(have);
            i64::try_from(free).unwrap_or(0)
        }
    };
    (free_share(alloc.milli_cpu, want.milli_cpu) + free_share(alloc.memory, want.memory)) / 2
}

fn preferred_node_affinity(pod: &Pod, node: &Node) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default()
        .iter()
        .filter(|t| t.weight != 0 && node_selector_term_matches(&t.preference, node))
        .map(|t| i64::from(t.weight))
        .sum()
}

/// Scales raw scores so the largest becomes 100 (all zero stays zero).
fn scale_to_max(raw: &[i64]) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter()
        .map(|&r| if max > 0 { r * 100 / max } else { 0 })
        .collect()
}

/// Scores of the feasible nodes, in their order (see the module doc).
pub fn score_nodes(pod: &Pod, nodes: &[&NodeState], interpod: &InterPod) -> Vec<(NodeName, i64)> {
    let affinity = scale_to_max(
        &nodes
            .iter()
            .map(|s| {
                s.node
                    .as_deref()
                    .map_or(0, |n| preferred_node_affinity(pod, n))
            })
            .collect::<Vec<_>>(),
    );
    let taints: Vec<i64> = nodes
        .iter()
        .map(|s| {
            s.node.as_deref().map_or(0, |n| {
                i64::try_from(filters::untolerated_prefer_no_schedule(pod, n)).unwrap_or(0)
            })
        })
        .collect();
    let taints: Vec<i64> = scale_to_max(&taints).iter().map(|t| 100 - t).collect();
    let pods: Vec<i64> = nodes.iter().map(|s| interpod.score(s)).collect();
    let (min, max) = (
        pods.iter().copied().min().unwrap_or(0),
        pods.iter().copied().max().unwrap_or(0),
    );
    nodes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let inter = if max > min {
                (pods[i] - min) * 100 / (max - min)
            } else {
                0
            };
            let total = least_allocated(pod, s) + affinity[i] + taints[i] + inter;
            (s.name.clone(), total)
        })
        .collect()
}

/// Picks the node for `pod`: the feasible node with the highest score (ties: fewer pods, then
/// name); or why none fits.
pub fn schedule(pod: &Pod, snapshot: &Snapshot) -> Result<NodeName, Unschedulable> {
    let (nodes, interpod) = feasible_nodes(pod, snapshot)?;
    let scores = score_nodes(pod, &nodes, &interpod);
    // Highest score; then fewest pods (spreads pods once the resource scores saturate); then
    // the name.
    let best = scores
        .into_iter()
        .zip(&nodes)
        .min_by(|((an, a), ast), ((bn, b), bst)| {
            b.cmp(a)
                .then(ast.pods.len().cmp(&bst.pods.len()))
                .then(an.cmp(bn))
        });
    Ok(best.map(|((n, _), _)| n).unwrap_or_default())
}
