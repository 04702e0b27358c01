//! The reconcile algorithm (spec §4.2–§4.8, upstream `updateStatefulSet`) as a pure function:
//! [`plan`] takes a snapshot and returns the writes one sync would issue, the status it would
//! write, and where it stopped. Read [`plan`] top to bottom; each phase is a method of [`Sync`].

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use stead_api::selector::LabelSelector;

use super::action::{Action, BlockReason, DeleteReason, Features, Plan};
use super::adopt::{claim_pods, owned_revisions};
use super::claims::{
    claim_refs_update, has_conflicting_controller, has_stale_pod_ref, pod_claim_names, pod_claims,
};
use super::health::{
    available_in, is_created, is_failed, is_healthy, is_pending, is_running_and_ready,
    is_succeeded, is_terminating,
};
use super::history::{RevisionWrite, choose_revisions, revisions_to_delete};
use super::identity::{
    RevisionChoice, get_ordinal, identity_matches, name_of, new_pod, pod_revision,
    revision_for_ordinal, storage_matches, update_identity, update_storage,
};
use super::revision::{
    RevisionError, name_of as revision_name, sort_revisions, template_from_revision,
};
use super::spec::{self, Retention, UpdateStrategy};
use super::status::{apply_counts, complete_rolling_update, count_pods, status_needs_update};

/// Why no plan could be made. Upstream logs the first and does not retry; the second needs a
/// changed revision or template.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `spec.selector` does not convert to a selector.
    #[error("statefulset {set}: invalid selector: {message}")]
    InvalidSelector {
        /// `namespace/name`.
        set: String,
        /// Conversion error.
        message: String,
    },
    /// A revision could not be built or read.
    #[error("statefulset {set}: {source}")]
    Revision {
        /// `namespace/name`.
        set: String,
        /// The cause.
        #[source]
        source: RevisionError,
    },
}

/// One sync of `set`.
///
/// * `pods`: the pods in the set's namespace (the cache); claim rules pick the managed ones.
/// * `claims`: the PVCs in the set's namespace.
/// * `revisions`: the ControllerRevisions in the set's namespace.
///
/// The objects may be owned or shared (`Pod` or `Arc<Pod>`, ...): the plan only reads them.
/// * `now`: the clock, for `minReadySeconds`.
///
/// Actions are what upstream would issue if every call succeeded; a failing call ends the sync
/// early upstream, and the next sync recomputes from the new snapshot.
pub fn plan<P, C, R>(
    set: &StatefulSet,
    pods: &[P],
    claims: &[C],
    revisions: &[R],
    now: Timestamp,
    features: Features,
) -> Result<Plan, PlanError>
where
    P: Borrow<Pod>,
    C: Borrow<PersistentVolumeClaim>,
    R: Borrow<ControllerRevision>,
{
    let key = format!("{}/{}", spec::namespace(set), spec::name(set));
    let selector_spec = set
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let selector = LabelSelector::from_label_selector(&selector_spec).map_err(|message| {
        PlanError::InvalidSelector {
            set: key.clone(),
            message,
        }
    })?;
    let revision_err = |source| PlanError::Revision {
        set: key.clone(),
        source,
    };

    let mut actions = Vec::new();
    // §4.3.1 and §4.2 step 1: revisions first (adopted and sorted), then pods.
    let mut owned = owned_revisions(set, &selector, revisions, &mut actions);
    sort_revisions(&mut owned);
    let managed = claim_pods(set, &selector, pods, &mut actions);

    // §5.3: current and update revisions.
    let chosen = choose_revisions(set, &owned).map_err(revision_err)?;
    match &chosen.write {
        Some(RevisionWrite::Create(r)) => actions.push(Action::CreateRevision((**r).clone())),
        Some(RevisionWrite::Renumber { name, revision }) => actions.push(Action::UpdateRevision {
            name: name.clone(),
            revision: *revision,
        }),
        None => {}
    }
    let current_name = revision_name(&chosen.current).to_string();
    let update_name = revision_name(&chosen.update).to_string();
    let current_template = template_from_revision(&chosen.current).map_err(revision_err)?;
    let update_template = template_from_revision(&chosen.update).map_err(revision_err)?;

    let mut sync = Sync {
        set,
        claims: claims
            .iter()
            .map(Borrow::borrow)
            .filter_map(|c: &PersistentVolumeClaim| c.metadata.name.as_deref().map(|n| (n, c)))
            .collect(),
        now,
        min_ready: spec::min_ready_seconds(set),
        monotonic: !spec::is_parallel(set),
        actions,
        blocked: None,
        claims_created: BTreeSet::new(),
        claims_updated: BTreeSet::new(),
        conflicting_claims: Vec::new(),
        current: (current_name.clone(), current_template),
        update: (update_name.clone(), update_template),
    };

    // §4.3: status skeleton counted over every managed pod.
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(current_name.clone()),
        update_revision: Some(update_name.clone()),
        collision_count: Some(chosen.collision_count),
        ..StatefulSetStatus::default()
    };
    apply_counts(
        &mut status,
        count_pods(
            managed.iter().copied(),
            sync.min_ready,
            now,
            &current_name,
            &update_name,
        ),
    );
    if set.metadata.deletion_timestamp.is_none() {
        sync.run(&managed, &mut status, features);
    }

    complete_rolling_update(set, &mut status);
    let write_status = status_needs_update(set, &status);
    let min_ready = spec::min_ready_seconds(set);
    let requeue_after = (min_ready > 0
        && status.available_replicas.unwrap_or(0) != spec::replicas(set))
    .then(|| Duration::from_secs(u64::from(min_ready.unsigned_abs())));

    // §5.6: truncate history on every sync.
    for name in revisions_to_delete(set, &managed, &owned, &current_name, &update_name) {
        sync.actions.push(Action::DeleteRevision { name });
    }
    Ok(Plan {
        status,
        write_status,
        actions: sync.actions,
        blocked_on: sync.blocked,
        requeue_after,
        conflicting_claims: sync.conflicting_claims,
    })
}

/// What processing one pod asks of the loop driving it (`runForAll`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Go on with the next pod.
    Continue,
    /// Stop here in OrderedReady; ignored in Parallel.
    Exit,
    /// A write is known to fail: stop in both modes (upstream returns an error).
    Fail,
}

/// The state of one sync while it walks the pods.
struct Sync<'a> {
    set: &'a StatefulSet,
    /// The namespace's claims by name (looked up once per replica and claim template).
    claims: HashMap<&'a str, &'a PersistentVolumeClaim>,
    now: Timestamp,
    min_ready: i32,
    monotonic: bool,
    actions: Vec<Action>,
    blocked: Option<(String, BlockReason)>,
    claims_created: BTreeSet<String>,
    claims_updated: BTreeSet<String>,
    /// Claims found under another controller by [`Sync::fix_claim_refs`], each once.
    conflicting_claims: Vec<String>,
    current: (String, PodTemplateSpec),
    update: (String, PodTemplateSpec),
}

impl<'a> Sync<'a> {
    /// §4.4–§4.7 after the revisions are known. Leaves the recomputed counters in `status`.
    fn run(&mut self, managed: &[&'a Pod], status: &mut StatefulSetStatus, features: Features) {
        let set = self.set;
        let start = spec::start_ordinal(set);
        let count = usize::try_from(spec::replicas(set)).unwrap_or(0);

        // §4.4: slots for [start, end], condemned above/below, unparseable ignored. Existing pods
        // are borrowed from the snapshot; only placeholders are built.
        let mut slots: Vec<Option<&'a Pod>> = vec![None; count];
        let mut condemned: Vec<&'a Pod> = Vec::new();
        for pod in managed {
            let ordinal = get_ordinal(pod);
            if spec::in_ordinal_range(set, ordinal) {
                if let Ok(i) = usize::try_from(ordinal - start) {
                    slots[i] = Some(*pod);
                }
            } else if ordinal >= 0 {
                condemned.push(*pod);
            }
        }
        let replicas: Vec<Cow<'a, Pod>> = slots
            .into_iter()
            .enumerate()
            .map(|(i, slot)| match slot {
                Some(pod) => Cow::Borrowed(pod),
                None => {
                    let ordinal = start.saturating_add(i32::try_from(i).unwrap_or(i32::MAX));
                    Cow::Owned(self.placeholder(ordinal))
                }
            })
            .collect();
        condemned.sort_by_key(|p| std::cmp::Reverse(get_ordinal(p)));
        let first_unhealthy = replicas
            .iter()
            .map(|p| &**p)
            .find(|p| !is_healthy(p))
            .or_else(|| condemned.iter().rev().copied().find(|p| !is_healthy(p)))
            .map(|p| name_of(p).to_string());

        let recount = |sync: &Sync, status: &mut StatefulSetStatus| {
            let counts = count_pods(
                replicas
                    .iter()
                    .map(|p| &**p)
                    .chain(condemned.iter().copied()),
                sync.min_ready,
                sync.now,
                &sync.current.0,
                &sync.update.0,
            );
            apply_counts(status, counts);
        };

        // §4.5 phase 1: replicas in ascending order.
        for pod in &replicas {
            match self.process_replica(pod) {
                Step::Continue => {}
                Step::Exit if !self.monotonic => {}
                Step::Exit | Step::Fail => return recount(self, status),
            }
        }

        // §4.6 step 1: condemned pods' claims get their retention refs before deletion.
        for pod in &condemned {
            self.fix_claim_refs(pod);
        }
        // §4.6 step 2: delete condemned pods, highest ordinal first.
        for pod in &condemned {
            if self.process_condemned(pod, first_unhealthy.as_deref()) == Step::Exit
                && self.monotonic
            {
                return recount(self, status);
            }
        }
        recount(self, status);

        // §4.7: updates.
        let rolling = match spec::update_strategy(set) {
            UpdateStrategy::OnDelete => return,
            UpdateStrategy::RollingUpdate { rolling_update } => rolling_update,
        };
        let update_min = rolling.as_ref().map_or(0, |r| r.partition);
        let update_min = usize::try_from(update_min).unwrap_or(0);
        if features.max_unavailable_statefulset {
            let max_unavailable = scaled_max_unavailable(
                rolling.as_ref().and_then(|r| r.max_unavailable.as_ref()),
                spec::replicas(set),
            );
            self.update_with_max_unavailable(&replicas, update_min, max_unavailable, status);
        } else {
            self.update_one_at_a_time(&replicas, update_min, status);
        }
    }

    /// A not-yet-created pod for `ordinal` at the revision §3.8 picks.
    fn placeholder(&self, ordinal: i32) -> Pod {
        let (name, template) = match revision_for_ordinal(self.set, ordinal) {
            RevisionChoice::Current => &self.current,
            RevisionChoice::Update => &self.update,
        };
        new_pod(self.set, template, name, ordinal)
    }

    fn block(&mut self, pod: &Pod, reason: BlockReason) {
        if self.blocked.is_none() {
            self.blocked = Some((name_of(pod).to_string(), reason));
        }
    }

    fn delete(&mut self, pod: &Pod, reason: DeleteReason) {
        self.actions.push(Action::DeletePod {
            name: name_of(pod).to_string(),
            reason,
        });
    }

    /// `processReplica` (§4.5).
    fn process_replica(&mut self, pod: &Pod) -> Step {
        // 1. Terminal pods are deleted; the replacement comes in a later sync.
        if is_failed(pod) || is_succeeded(pod) {
            if !is_terminating(pod) {
                self.delete(pod, DeleteReason::Terminal);
            }
            self.block(pod, BlockReason::Terminal);
            return Step::Exit;
        }
        // 2. Missing: create claims, the pod, then claim refs.
        if !is_created(pod) {
            if spec::retention_policy(self.set).when_scaled == Retention::Delete
                && let Some(claim) = self.stale_claim(pod)
            {
                self.block(pod, BlockReason::StaleClaim { claim });
                return Step::Exit;
            }
            if let Err(claim) = self.create_missing_claims(pod) {
                self.block(pod, BlockReason::ClaimTerminating { claim });
                return Step::Fail;
            }
            self.actions.push(Action::CreatePod(pod.clone()));
            self.fix_claim_refs(pod);
            if self.monotonic {
                self.block(pod, BlockReason::Created);
                return Step::Exit;
            }
            return Step::Continue;
        }
        // 3. Pending pods get missing claims recreated.
        if is_pending(pod) {
            if let Err(claim) = self.create_missing_claims(pod) {
                self.block(pod, BlockReason::ClaimTerminating { claim });
                return Step::Fail;
            }
            self.fix_claim_refs(pod);
        }
        // 4–6. OrderedReady waits for this pod.
        if self.monotonic {
            if is_terminating(pod) {
                self.block(pod, BlockReason::Terminating);
                return Step::Exit;
            }
            if !is_running_and_ready(pod) {
                self.block(pod, BlockReason::NotRunningAndReady);
                return Step::Exit;
            }
            if let Some(remaining) = self.not_available(pod) {
                self.block(pod, BlockReason::NotAvailable { remaining });
                return Step::Exit;
            }
        }
        // 7–8. Enforce identity, storage and retention.
        let identity_ok = identity_matches(self.set, pod);
        let storage_ok = storage_matches(self.set, pod);
        if !identity_ok || !storage_ok {
            let mut repaired = pod.clone();
            if !identity_ok {
                update_identity(self.set, &mut repaired);
            }
            if !storage_ok {
                update_storage(self.set, &mut repaired);
                if let Err(claim) = self.create_missing_claims(&repaired) {
                    self.block(pod, BlockReason::ClaimTerminating { claim });
                    return Step::Fail;
                }
            }
            self.fix_claim_refs(&repaired);
            self.actions.push(Action::UpdatePodIdentity(repaired));
        } else {
            self.fix_claim_refs(pod);
        }
        Step::Continue
    }

    /// `processCondemned` (§4.6 step 2). `Exit` means "stop here" in OrderedReady.
    fn process_condemned(&mut self, pod: &Pod, first_unhealthy: Option<&str>) -> Step {
        if is_terminating(pod) {
            if self.monotonic {
                self.block(pod, BlockReason::Terminating);
                return Step::Exit;
            }
            return Step::Continue;
        }
        let is_first_unhealthy = first_unhealthy == Some(name_of(pod));
        if self.monotonic && !is_first_unhealthy {
            if !is_running_and_ready(pod) {
                self.block(pod, BlockReason::NotRunningAndReady);
                return Step::Exit;
            }
            if let Some(remaining) = self.not_available(pod) {
                self.block(pod, BlockReason::NotAvailable { remaining });
                return Step::Exit;
            }
        }
        self.delete(pod, DeleteReason::Condemned);
        Step::Exit
    }

    /// §4.7 step 2 (gate off): delete the highest outdated pod at or above the partition, one per
    /// sync, waiting for every pod above it to be healthy.
    fn update_one_at_a_time(
        &mut self,
        replicas: &[Cow<'_, Pod>],
        update_min: usize,
        status: &mut StatefulSetStatus,
    ) {
        if !self.any_outdated(replicas, update_min) {
            return;
        }
        for pod in replicas.iter().skip(update_min).rev() {
            if pod_revision(pod) != self.update.0 && !is_terminating(pod) {
                self.delete(pod, DeleteReason::Update);
                status.current_replicas = Some(status.current_replicas.unwrap_or(0) - 1);
                return;
            }
            if !is_healthy(pod) {
                let reason = if is_terminating(pod) {
                    BlockReason::Terminating
                } else {
                    BlockReason::NotRunningAndReady
                };
                self.block(pod, reason);
                return;
            }
        }
    }

    /// §4.7 step 3 (gate on): count unhealthy replicas (all slots, partition ignored); delete up to
    /// `maxUnavailable - unavailable` outdated pods from the top down to the partition.
    fn update_with_max_unavailable(
        &mut self,
        replicas: &[Cow<'_, Pod>],
        update_min: usize,
        max_unavailable: i32,
        status: &mut StatefulSetStatus,
    ) {
        if !self.any_outdated(replicas, update_min) {
            return;
        }
        let unavailable =
            i32::try_from(replicas.iter().filter(|p| !is_healthy(p)).count()).unwrap_or(i32::MAX);
        if unavailable >= max_unavailable {
            if let Some(pod) = replicas.iter().rev().find(|p| !is_healthy(p)) {
                self.block(
                    pod,
                    BlockReason::MaxUnavailable {
                        unavailable,
                        max_unavailable,
                    },
                );
            }
            return;
        }
        let mut budget = max_unavailable - unavailable;
        for pod in replicas.iter().skip(update_min).rev() {
            if budget == 0 {
                break;
            }
            if pod_revision(pod) != self.update.0 && !is_terminating(pod) {
                self.delete(pod, DeleteReason::Update);
                status.current_replicas = Some(status.current_replicas.unwrap_or(0) - 1);
                budget -= 1;
            }
        }
    }

    /// Whether a pod at or above the partition still waits for its update (outdated and not
    /// already terminating). When none does, the update phase has nothing to do and nothing to
    /// wait for: it reports no block (upstream's loop would only skip or wait without effect).
    fn any_outdated(&self, replicas: &[Cow<'_, Pod>], update_min: usize) -> bool {
        replicas
            .iter()
            .skip(update_min)
            .any(|p| pod_revision(p) != self.update.0 && !is_terminating(p))
    }

    /// `Some(remaining)` when the pod is not yet available per `minReadySeconds`.
    fn not_available(&self, pod: &Pod) -> Option<Duration> {
        match available_in(pod, self.min_ready, self.now) {
            Some(Duration::ZERO) => None,
            Some(remaining) => Some(remaining),
            None => Some(Duration::from_secs(u64::from(
                self.min_ready.unsigned_abs(),
            ))),
        }
    }

    fn find_claim(&self, name: &str) -> Option<&'a PersistentVolumeClaim> {
        self.claims.get(name).copied()
    }

    /// `PodClaimIsStale`: an existing claim of the pod carrying a pod ref with another uid.
    fn stale_claim(&self, pod: &Pod) -> Option<String> {
        pod_claim_names(self.set, get_ordinal(pod))
            .into_iter()
            .find(|name| {
                self.find_claim(name)
                    .is_some_and(|claim| has_stale_pod_ref(claim, pod))
            })
    }

    /// `createPersistentVolumeClaims`: create every missing claim; `Err(name)` when one exists
    /// but is being deleted (the pod must not be created then).
    fn create_missing_claims(&mut self, pod: &Pod) -> Result<(), String> {
        let mut failed = None;
        for claim in pod_claims(self.set, get_ordinal(pod)) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            match self.find_claim(&name) {
                Some(existing) if existing.metadata.deletion_timestamp.is_some() => {
                    failed.get_or_insert(name);
                }
                Some(_) => {}
                None if self.claims_created.contains(&name) => {}
                None => {
                    self.claims_created.insert(name);
                    self.actions.push(Action::CreateClaim {
                        pod: name_of(pod).to_string(),
                        claim,
                    });
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// `UpdatePodClaimForRetentionPolicy`: rewrite the refs of existing claims that are not as the
    /// policy wants (claims missing from the snapshot are skipped), noting claims that another
    /// controller manages (upstream's `ConflictingController` Warning).
    fn fix_claim_refs(&mut self, pod: &Pod) {
        for name in pod_claim_names(self.set, get_ordinal(pod)) {
            let Some(existing) = self.find_claim(&name) else {
                continue;
            };
            if has_conflicting_controller(self.set, pod, existing)
                && !self.conflicting_claims.contains(&name)
            {
                self.conflicting_claims.push(name.clone());
            }
            if self.claims_updated.contains(&name) {
                continue;
            }
            if let Some(owner_references) = claim_refs_update(self.set, pod, existing) {
                self.claims_updated.insert(name.clone());
                self.actions.push(Action::UpdateClaimOwnerRefs {
                    claim: name,
                    owner_references,
                });
            }
        }
    }
}

/// `getStatefulSetMaxUnavailable`: an int, or a percentage of `replicas` rounded down; at least 1.
/// An unparseable value counts as 1 (upstream returns an error; validation prevents it).
pub fn scaled_max_unavailable(value: Option<&IntOrString>, replicas: i32) -> i32 {
    let scaled = match value {
        None => 1,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(1, |p| {
                i32::try_from(p * i64::from(replicas) / 100).unwrap_or(i32::MAX)
            }),
    };
    scaled.max(1)
}
