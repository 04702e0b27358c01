//! One sync of one set (upstream `sync(key)` + `UpdateStatefulSet`): plan from a [`Snapshot`],
//! execute, write the status, say why progress waits, and decide when to look again. Start at
//! [`sync_set`]; the run loop feeds it snapshots from its caches, tests from a fake world.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use tokio::time::Instant;

use super::action::{Action, BlockReason, DeleteReason, Features, Plan};
use super::claims::conflicting_controller_message;
use super::effects::{Related, SetEvent, Severity, StatefulSetEffects};
use super::execute::{ExecError, Executed, execute};
use super::plan::{PlanError, plan};
use super::spec;
use super::status::status_needs_update;

/// What one sync reads: the set and the cached objects of its namespace, shared with the caches
/// (a sync never copies the pods it reads).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub set: StatefulSet,
    pub pods: Vec<Arc<Pod>>,
    pub claims: Vec<Arc<PersistentVolumeClaim>>,
    pub revisions: Vec<Arc<ControllerRevision>>,
}

/// When to sync the set again without an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Only on a change (a watch event).
    OnChange,
    /// After this delay (`minReadySeconds`).
    After(Duration),
    /// After the key's growing backoff (an error, or a wait the watches cannot end).
    Backoff,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("statefulset {set}: update status: {source}")]
    Status {
        set: String,
        #[source]
        source: super::effects::EffectError,
    },
}

/// The outcome of [`sync_set`].
#[derive(Debug)]
pub struct SyncOutcome {
    /// The plan computed (absent when planning failed).
    pub plan: Option<Plan>,
    /// What the executor did.
    pub executed: Option<Executed>,
    /// Whether the status was written.
    pub status_written: bool,
    /// The first error.
    pub error: Option<SyncError>,
    pub requeue: Requeue,
}

/// Rate limit of the events a sync repeats while nothing changes (`Waiting`,
/// `ConflictingController`): at most one per set, subject (pod or claim) and kind per
/// `interval` — what upstream's event correlator does to repeated events.
///
/// A `Waiting` event is also held back until the same block has lasted `grace`: an OrderedReady
/// set waits a few milliseconds for every pod it creates, and an event per pod would cost the
/// API server one write per pod for nothing (upstream records no such event at all).
#[derive(Debug)]
pub struct WaitingEvents {
    interval: Duration,
    grace: Duration,
    last: Mutex<HashMap<(String, String, &'static str), Instant>>,
    /// Per set, the block seen by its last sync and since when.
    blocks: Mutex<HashMap<String, (String, &'static str, Instant)>>,
}

/// What [`WaitingEvents::observe`] allows for a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingDecision {
    /// Record the event now.
    Emit,
    /// Not yet: the block is younger than the grace period; look again after this long.
    Later(Duration),
    /// Rate-limited: an event for it was recorded within the interval.
    Quiet,
}

impl WaitingEvents {
    /// Events at most once per `interval`, without a grace period.
    pub fn new(interval: Duration) -> Self {
        Self::with_grace(interval, Duration::ZERO)
    }

    /// Events at most once per `interval`, for blocks that lasted at least `grace`.
    pub fn with_grace(interval: Duration, grace: Duration) -> Self {
        WaitingEvents {
            interval,
            grace,
            last: Mutex::new(HashMap::new()),
            blocks: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that a sync of `set` is blocked on `(pod, kind)` at `now` and says whether its
    /// `Waiting` event may be recorded.
    pub fn observe(
        &self,
        set: &str,
        pod: &str,
        kind: &'static str,
        now: Instant,
    ) -> WaitingDecision {
        let since = {
            let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            let entry = blocks
                .entry(set.to_string())
                .or_insert_with(|| (pod.to_string(), kind, now));
            if entry.0 != pod || entry.1 != kind {
                *entry = (pod.to_string(), kind, now);
            }
            entry.2
        };
        let age = now.saturating_duration_since(since);
        if age < self.grace {
            return WaitingDecision::Later(self.grace - age);
        }
        if self.admit(set, pod, kind, now) {
            WaitingDecision::Emit
        } else {
            WaitingDecision::Quiet
        }
    }

    /// Notes that a sync of `set` was not blocked.
    pub fn unblocked(&self, set: &str) {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        blocks.remove(set);
    }

    /// Whether an event for `(set, subject, kind)` may be emitted at `now` (and notes it if so).
    pub fn admit(&self, set: &str, subject: &str, kind: &'static str, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let key = (set.to_string(), subject.to_string(), kind);
        match last.get(&key) {
            Some(at) if now.saturating_duration_since(*at) < self.interval => false,
            _ => {
                last.insert(key, now);
                true
            }
        }
    }

    /// Drops the state of a deleted set.
    pub fn forget(&self, set: &str) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.retain(|(s, _, _), _| s != set);
        drop(last);
        self.unblocked(set);
    }
}

/// The `Waiting` event's kind (rate-limit key) and note for a block, or `None` when it is not
/// worth one (the pod was created by this very sync).
pub fn waiting_note(pod: &str, reason: &BlockReason) -> Option<(&'static str, String)> {
    let note = match reason {
        BlockReason::Created => return None,
        BlockReason::Terminal => (
            "Terminal",
            format!("waiting for failed pod {pod} to be deleted before it is recreated"),
        ),
        BlockReason::Terminating => ("Terminating", format!("waiting for {pod} to terminate")),
        BlockReason::NotRunningAndReady => (
            "NotRunningAndReady",
            format!("waiting for {pod} to be Running and Ready"),
        ),
        BlockReason::NotAvailable { .. } => (
            "NotAvailable",
            format!("waiting for {pod} to be available (minReadySeconds)"),
        ),
        BlockReason::StaleClaim { claim } => (
            "StaleClaim",
            format!("waiting for claim {claim} of a previous {pod} to be deleted"),
        ),
        BlockReason::ClaimTerminating { claim } => (
            "ClaimTerminating",
            format!("waiting for claim {claim} to be deleted before creating {pod}"),
        ),
        BlockReason::MaxUnavailable {
            unavailable,
            max_unavailable,
        } => (
            "MaxUnavailable",
            format!(
                "waiting for {pod} to be Running and Ready: {unavailable} pods unavailable, maxUnavailable {max_unavailable}"
            ),
        ),
    };
    Some(note)
}

/// One sync: plan, execute, write status (§4.8), record a rate-limited `Waiting` event naming
/// what blocks progress and rate-limited `ConflictingController` Warnings (§4.9 rule 2), and say
/// when to requeue.
pub async fn sync_set<E: StatefulSetEffects>(
    effects: &E,
    snapshot: &Snapshot,
    now: Timestamp,
    features: Features,
    waiting: &WaitingEvents,
) -> SyncOutcome {
    let set = &snapshot.set;
    let key = format!("{}/{}", spec::namespace(set), spec::name(set));
    let plan = match plan(
        set,
        &snapshot.pods,
        &snapshot.claims,
        &snapshot.revisions,
        now,
        features,
    ) {
        Ok(p) => p,
        Err(e) => {
            // An invalid selector waits for the set to change (upstream does not retry).
            let requeue = match e {
                PlanError::InvalidSelector { .. } => Requeue::OnChange,
                PlanError::Revision { .. } => Requeue::Backoff,
            };
            return SyncOutcome {
                plan: None,
                executed: None,
                status_written: false,
                error: Some(e.into()),
                requeue,
            };
        }
    };

    let executed = execute(effects, set, &plan.actions).await;
    let mut error = executed.error.clone().map(SyncError::from);

    // Upstream writes the status even after a failed action; ours is the plan's status minus the
    // writes that did not happen (a revision write that failed leaves the status unwritten).
    let mut status_written = false;
    if let Some(status) = status_after(set, &plan, &executed) {
        match effects.update_status(set, &status).await {
            Ok(()) => status_written = true,
            Err(source) => {
                error.get_or_insert(SyncError::Status {
                    set: key.clone(),
                    source,
                });
            }
        }
    }

    let mut waiting_recheck = None;
    match &plan.blocked_on {
        Some((pod, reason)) if error.is_none() => {
            if let Some((kind, note)) = waiting_note(pod, reason) {
                match waiting.observe(&key, pod, kind, Instant::now()) {
                    WaitingDecision::Emit => {
                        let event = SetEvent {
                            severity: Severity::Normal,
                            reason: "Waiting".into(),
                            action: "Reconcile",
                            note,
                            related: Some(Related::Pod(pod.clone())),
                        };
                        effects.record(set, event).await;
                    }
                    WaitingDecision::Later(after) => waiting_recheck = Some(after),
                    WaitingDecision::Quiet => {}
                }
            }
        }
        Some(_) => {}
        None => waiting.unblocked(&key),
    }

    // §4.9 rule 2: upstream warns each time its retention routine meets such a claim.
    for claim in &plan.conflicting_claims {
        if waiting.admit(&key, claim, "ConflictingController", Instant::now()) {
            let event = SetEvent {
                severity: Severity::Warning,
                reason: "ConflictingController".into(),
                action: "Update",
                note: conflicting_controller_message(claim),
                related: Some(Related::Claim(claim.clone())),
            };
            effects.record(set, event).await;
        }
    }

    let requeue = if error.is_some() || plan.blocked_on.as_ref().is_some_and(|(_, r)| r.is_error())
    {
        Requeue::Backoff
    } else {
        let available_in = match &plan.blocked_on {
            Some((_, BlockReason::NotAvailable { remaining })) => {
                Some(*remaining + Duration::from_millis(50))
            }
            _ => None,
        };
        // A block still inside the Waiting grace period is looked at again when it ends, so a
        // pod that stays unready does get its event.
        let after = [plan.requeue_after, available_in, waiting_recheck]
            .into_iter()
            .flatten()
            .min();
        match after {
            Some(d) => Requeue::After(d),
            None => Requeue::OnChange,
        }
    };
    SyncOutcome {
        plan: Some(plan),
        executed: Some(executed),
        status_written,
        error,
        requeue,
    }
}

/// The status to write after `executed`, if any: the plan's, with `currentReplicas` given back
/// for rolling-update deletes that did not happen; nothing when a revision write failed.
fn status_after(
    set: &StatefulSet,
    plan: &Plan,
    executed: &Executed,
) -> Option<k8s_openapi::api::apps::v1::StatefulSetStatus> {
    if executed.complete() {
        return plan.write_status.then(|| plan.status.clone());
    }
    let mut status = plan.status.clone();
    for (action, done) in plan.actions.iter().zip(&executed.done) {
        match action {
            Action::CreateRevision(_) | Action::UpdateRevision { .. } if !done => return None,
            Action::DeletePod {
                reason: DeleteReason::Update,
                ..
            } if !done => {
                status.current_replicas = Some(status.current_replicas.unwrap_or(0) + 1);
            }
            _ => {}
        }
    }
    status_needs_update(set, &status).then_some(status)
}
