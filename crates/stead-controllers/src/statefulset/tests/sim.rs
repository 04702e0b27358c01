//! An in-memory world for the randomized tests: it applies a plan's actions like the API server
//! and garbage collector would, advances pods like a kubelet, and checks the spec §9 invariants
//! of every plan against the world it was computed from.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::fixtures::*;
use crate::statefulset::claims::{expected_refs, pod_claims};
use crate::statefulset::health::{
    is_available, is_failed, is_healthy, is_succeeded, is_terminating,
};
use crate::statefulset::identity::{
    get_ordinal, identity_matches, name_of, pod_revision, storage_matches,
};
use crate::statefulset::plan::scaled_max_unavailable;
use crate::statefulset::spec::{self, UpdateStrategy};
use crate::statefulset::{Action, DeleteReason, Features, Plan, plan};

/// The world one StatefulSet lives in.
#[derive(Clone, Debug)]
pub struct World {
    pub set: StatefulSet,
    pub pods: BTreeMap<String, Pod>,
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
    pub revisions: BTreeMap<String, ControllerRevision>,
    pub now: i64,
    pub uids: u64,
    pub features: Features,
    /// Deleted pods linger as terminating until the kubelet removes them.
    pub slow_termination: bool,
}

impl World {
    pub fn new(set: StatefulSet, features: Features, slow_termination: bool) -> Self {
        World {
            set,
            pods: BTreeMap::new(),
            claims: BTreeMap::new(),
            revisions: BTreeMap::new(),
            now: 0,
            uids: 0,
            features,
            slow_termination,
        }
    }

    fn uid(&mut self) -> String {
        self.uids += 1;
        format!("uid-{}", self.uids)
    }

    /// One controller sync: plan, check the plan, apply it.
    pub fn sync(&mut self) -> Result<Plan, String> {
        let pods: Vec<Pod> = self.pods.values().cloned().collect();
        let claims: Vec<PersistentVolumeClaim> = self.claims.values().cloned().collect();
        let revisions: Vec<ControllerRevision> = self.revisions.values().cloned().collect();
        let p = plan(
            &self.set,
            &pods,
            &claims,
            &revisions,
            at(self.now),
            self.features,
        )
        .map_err(|e| e.to_string())?;
        check_plan(self, &p)?;
        self.apply(&p)?;
        check_world(self)?;
        Ok(p)
    }

    fn apply(&mut self, p: &Plan) -> Result<(), String> {
        for action in &p.actions {
            match action {
                Action::CreateRevision(r) => {
                    let name = r.metadata.name.clone().unwrap_or_default();
                    if self.revisions.insert(name.clone(), r.clone()).is_some() {
                        return Err(format!("revision {name} created twice"));
                    }
                }
                Action::UpdateRevision { name, revision } => match self.revisions.get_mut(name) {
                    Some(r) => r.revision = *revision,
                    None => return Err(format!("renumbered missing revision {name}")),
                },
                Action::DeleteRevision { name } => {
                    self.revisions.remove(name);
                }
                Action::CreateClaim { claim, .. } => {
                    let name = claim.metadata.name.clone().unwrap_or_default();
                    let mut claim = claim.clone();
                    claim.metadata.uid = Some(self.uid());
                    if self.claims.insert(name.clone(), claim).is_some() {
                        return Err(format!("claim {name} created twice"));
                    }
                }
                Action::UpdateClaimOwnerRefs {
                    claim,
                    owner_references,
                } => match self.claims.get_mut(claim) {
                    Some(c) => c.metadata.owner_references = Some(owner_references.clone()),
                    None => return Err(format!("updated missing claim {claim}")),
                },
                Action::CreatePod(pod) => {
                    let name = name_of(pod).to_string();
                    let mut pod = pod.clone();
                    pod.metadata.uid = Some(self.uid());
                    pod.status = Some(PodStatus {
                        phase: Some("Pending".to_string()),
                        ..PodStatus::default()
                    });
                    if self.pods.insert(name.clone(), pod).is_some() {
                        return Err(format!("pod {name} created while one exists"));
                    }
                }
                Action::DeletePod { name, .. } => {
                    if self.slow_termination {
                        if let Some(pod) = self.pods.get_mut(name) {
                            pod.metadata.deletion_timestamp = Some(Time(at(self.now)));
                        }
                    } else {
                        self.remove_pod(name);
                    }
                }
                Action::UpdatePodIdentity(pod) => {
                    self.pods.insert(name_of(pod).to_string(), pod.clone());
                }
                Action::AdoptRevision { .. }
                | Action::AdoptPod { .. }
                | Action::ReleasePod { .. } => {
                    return Err(format!("unexpected {action:?}"));
                }
            }
        }
        if p.write_status {
            self.set.status = Some(p.status.clone());
        }
        Ok(())
    }

    /// Removes a pod and, like the garbage collector, the claims it controls.
    pub fn remove_pod(&mut self, name: &str) {
        let Some(pod) = self.pods.remove(name) else {
            return;
        };
        let uid = pod.metadata.uid.unwrap_or_default();
        self.claims.retain(|_, c| {
            !c.metadata
                .owner_references
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|r| r.controller == Some(true) && r.uid == uid)
        });
    }

    /// Kubelet: Pending → Running (unready) → Ready; with `all`, every pod at once.
    pub fn advance_pod(&mut self, name: &str) {
        let now = at(self.now);
        let Some(pod) = self.pods.get(name).cloned() else {
            return;
        };
        if is_terminating(&pod) || is_failed(&pod) || is_succeeded(&pod) {
            return;
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let next = match phase.as_str() {
            "Pending" => with_phase(pod, "Running", false, now),
            "Running" if !crate::statefulset::health::is_ready(&pod) => {
                with_phase(pod, "Running", true, now)
            }
            _ => return,
        };
        self.pods.insert(name.to_string(), next);
    }

    pub fn set_phase(&mut self, name: &str, phase: &str, ready: bool) {
        let now = at(self.now);
        if let Some(pod) = self.pods.get(name).cloned() {
            self.pods
                .insert(name.to_string(), with_phase(pod, phase, ready, now));
        }
    }

    /// The world with nothing random left: every pod runs, terminations finish, time passes.
    ///
    /// Terminal (Failed/Succeeded) pods outside the ordinal range are removed too, standing in
    /// for an operator: upstream OrderedReady halts scale-down behind them forever, because only
    /// the lowest unhealthy condemned pod may be deleted (see
    /// `ordered_ready_scale_down_halts_behind_a_failed_condemned_pod`).
    pub fn calm_step(&mut self) {
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for name in names {
            let stuck = self.pods.get(&name).is_some_and(|p| {
                (is_failed(p) || is_succeeded(p))
                    && !spec::in_ordinal_range(&self.set, get_ordinal(p))
            });
            let terminating = self.pods.get(&name).is_some_and(is_terminating);
            if terminating || stuck {
                self.remove_pod(&name);
            } else {
                self.advance_pod(&name);
                self.advance_pod(&name);
            }
        }
        self.now += 40;
    }

    pub fn change(&mut self, f: impl FnOnce(&mut StatefulSet)) {
        f(&mut self.set);
        self.set.metadata.generation = Some(self.set.metadata.generation.unwrap_or(0) + 1);
    }
}

fn slot_pods(w: &World) -> Vec<Option<&Pod>> {
    let start = spec::start_ordinal(&w.set);
    (0..spec::replicas(&w.set))
        .map(|i| w.pods.get(&format!("{}-{}", spec::name(&w.set), start + i)))
        .collect()
}

/// Spec §9 invariants of one plan, judged against the world it was computed from.
fn check_plan(w: &World, p: &Plan) -> Result<(), String> {
    let set = &w.set;
    let monotonic = !spec::is_parallel(set);
    let start = spec::start_ordinal(set);
    let min_ready = spec::min_ready_seconds(set);
    let now = at(w.now);
    let update = p.status.update_revision.clone().unwrap_or_default();
    let healthy = |pod: &Pod| is_healthy(pod) && is_available(pod, min_ready, now);
    let mut claims: BTreeSet<String> = w.claims.keys().cloned().collect();
    let (mut creates, mut condemned_deletes, mut update_deletes) = (0, 0, 0);
    for action in &p.actions {
        match action {
            Action::CreateClaim { claim, .. } => {
                claims.insert(claim.metadata.name.clone().unwrap_or_default());
            }
            Action::CreatePod(pod) => {
                creates += 1;
                let name = name_of(pod);
                let ordinal = get_ordinal(pod);
                if w.pods.contains_key(name) {
                    return Err(format!(
                        "{name} created while a pod with that identity exists"
                    ));
                }
                if !spec::in_ordinal_range(set, ordinal) {
                    return Err(format!("{name} created outside the ordinal range"));
                }
                for c in pod_claims(set, ordinal) {
                    let c = c.metadata.name.unwrap_or_default();
                    if !claims.contains(&c) {
                        return Err(format!("{name} created before its claim {c}"));
                    }
                }
                if monotonic {
                    for lower in start..ordinal {
                        let lname = format!("{}-{lower}", spec::name(set));
                        if !w.pods.get(&lname).is_some_and(healthy) {
                            return Err(format!("{name} created while {lname} is not healthy"));
                        }
                    }
                }
            }
            Action::DeletePod { name, reason } => {
                let Some(pod) = w.pods.get(name) else {
                    return Err(format!("deleted missing pod {name}"));
                };
                if is_terminating(pod) {
                    return Err(format!("deleted terminating pod {name}"));
                }
                let ordinal = get_ordinal(pod);
                match reason {
                    DeleteReason::Terminal => {
                        if !is_failed(pod) && !is_succeeded(pod) {
                            return Err(format!("{name} deleted as terminal but is not"));
                        }
                    }
                    DeleteReason::Condemned => {
                        condemned_deletes += 1;
                        if spec::in_ordinal_range(set, ordinal) {
                            return Err(format!("{name} condemned but in range"));
                        }
                        if monotonic {
                            let higher = w.pods.values().any(|q| {
                                let o = get_ordinal(q);
                                o > ordinal && !spec::in_ordinal_range(set, o)
                            });
                            if higher {
                                return Err(format!(
                                    "{name} deleted before a higher condemned pod"
                                ));
                            }
                            if slot_pods(w).iter().any(|s| !s.is_some_and(healthy)) {
                                return Err(format!(
                                    "{name} scaled down while a replica is unhealthy"
                                ));
                            }
                        }
                    }
                    DeleteReason::Update => {
                        update_deletes += 1;
                        if matches!(spec::update_strategy(set), UpdateStrategy::OnDelete) {
                            return Err(format!("{name} deleted for update under OnDelete"));
                        }
                        if ordinal - start < spec::partition(set) {
                            return Err(format!("{name} deleted for update below the partition"));
                        }
                        if pod_revision(pod) == update {
                            return Err(format!("{name} deleted for update but is up to date"));
                        }
                        if !w.features.max_unavailable_statefulset {
                            let slots = slot_pods(w);
                            let above = slots
                                .iter()
                                .skip(usize::try_from(ordinal - start + 1).unwrap_or(0));
                            for s in above {
                                if !s.is_some_and(|q| is_healthy(q) && pod_revision(q) == update) {
                                    return Err(format!(
                                        "{name} updated while a higher pod is not done"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if monotonic && creates > 1 {
        return Err(format!("OrderedReady created {creates} pods in one sync"));
    }
    if monotonic && condemned_deletes > 1 {
        return Err(format!(
            "OrderedReady deleted {condemned_deletes} condemned pods in one sync"
        ));
    }
    let max_updates = if w.features.max_unavailable_statefulset {
        let ru = match spec::update_strategy(set) {
            UpdateStrategy::RollingUpdate { rolling_update } => rolling_update,
            UpdateStrategy::OnDelete => None,
        };
        scaled_max_unavailable(
            ru.as_ref().and_then(|r| r.max_unavailable.as_ref()),
            spec::replicas(set),
        )
    } else {
        1
    };
    if update_deletes > max_updates {
        return Err(format!(
            "{update_deletes} update deletions exceed {max_updates}"
        ));
    }
    Ok(())
}

/// Invariants of the world after a plan was applied.
fn check_world(w: &World) -> Result<(), String> {
    for pod in w.pods.values() {
        if !identity_matches(&w.set, pod) {
            return Err(format!("{} has a broken identity", name_of(pod)));
        }
        if !storage_matches(&w.set, pod) {
            return Err(format!("{} has broken storage", name_of(pod)));
        }
    }
    Ok(())
}

/// What a calm world must look like once the controller has nothing left to do.
pub fn check_converged(w: &World) -> Result<(), String> {
    let set = &w.set;
    let want: BTreeSet<String> = (0..spec::replicas(set))
        .map(|i| format!("{}-{}", spec::name(set), spec::start_ordinal(set) + i))
        .collect();
    let have: BTreeSet<String> = w.pods.keys().cloned().collect();
    if want != have {
        return Err(format!("pods {have:?}, want {want:?}"));
    }
    let status = set.status.clone().unwrap_or_default();
    let n = spec::replicas(set);
    if status.replicas != n || status.ready_replicas.unwrap_or(0) != n {
        return Err(format!("status {status:?} for {n} replicas"));
    }
    if status.observed_generation != set.metadata.generation {
        return Err("observedGeneration lags".to_string());
    }
    let update = status.update_revision.clone().unwrap_or_default();
    if let UpdateStrategy::RollingUpdate { .. } = spec::update_strategy(set) {
        let partition = spec::partition(set);
        for pod in w.pods.values() {
            let slot = get_ordinal(pod) - spec::start_ordinal(set);
            if slot >= partition && pod_revision(pod) != update {
                return Err(format!("{} not updated to {update}", name_of(pod)));
            }
        }
        if partition == 0 && status.current_revision != status.update_revision {
            return Err("rolling update did not complete".to_string());
        }
    }
    let policy = spec::retention_policy(set);
    for pod in w.pods.values() {
        for c in pod_claims(set, get_ordinal(pod)) {
            let name = c.metadata.name.unwrap_or_default();
            let Some(claim) = w.claims.get(&name) else {
                return Err(format!("claim {name} of {} missing", name_of(pod)));
            };
            let refs = claim.metadata.owner_references.clone().unwrap_or_default();
            let want = expected_refs(policy, false);
            let has_set = refs.iter().any(|r| r.kind == "StatefulSet");
            let has_pod = refs.iter().any(|r| r.kind == "Pod");
            if (has_set, has_pod) != (want.set, want.pod) {
                return Err(format!("claim {name} refs {refs:?}, want {want:?}"));
            }
        }
    }
    Ok(())
}
