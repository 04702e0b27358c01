//! Carries out a [`Plan`]'s actions through [`StatefulSetEffects`] with upstream's semantics, and
//! records the events upstream records (spec Appendix A). Start at [`execute`].
//!
//! - Actions run in order; the first error stops the sync (the loop requeues with backoff).
//! - Parallel sets run consecutive per-pod work (claims, create, repair, delete of a terminal or
//!   condemned pod) in slow-start batches of 1, 2, 4, … (at most [`MAX_BATCH`]), the pods of a
//!   batch concurrently, each pod's own actions in order; after a batch with an error nothing more
//!   runs (upstream `slowStartBatch` inside `runForAll`).
//! - "Already done" answers are success: AlreadyExists on a pod or claim create (a stale cache;
//!   no event, like upstream), NotFound on a delete or on adopting/releasing a vanished object.

use futures::future::join_all;
use k8s_openapi::api::apps::v1::StatefulSet;

use super::action::{Action, DeleteReason};
use super::effects::{EffectError, Related, SetEvent, Severity, StatefulSetEffects};
use super::spec;

/// Upstream's cap on a slow-start batch (`MaxBatchSize`).
pub const MAX_BATCH: usize = 500;

/// A failed action: which write, about what, and the server's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("statefulset {set}: {what}: {source}")]
pub struct ExecError {
    /// `namespace/name` of the set.
    pub set: String,
    /// The write, e.g. `create pod web-2`.
    pub what: String,
    /// The server's answer.
    #[source]
    pub source: EffectError,
}

/// What [`execute`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// Per action of the plan: whether it took effect (or was found already done).
    pub done: Vec<bool>,
    /// The first error, if the sync stopped early.
    pub error: Option<ExecError>,
}

impl Executed {
    /// Whether every action took effect.
    pub fn complete(&self) -> bool {
        self.error.is_none() && self.done.iter().all(|d| *d)
    }
}

/// Runs `actions` (from one plan of `set`) and records their events.
pub async fn execute<E: StatefulSetEffects>(
    effects: &E,
    set: &StatefulSet,
    actions: &[Action],
) -> Executed {
    let mut done = vec![false; actions.len()];
    let parallel = spec::is_parallel(set);
    let mut i = 0;
    while i < actions.len() {
        let units = if parallel {
            batchable_units(set, actions, i)
        } else {
            Vec::new()
        };
        if units.is_empty() {
            match apply(effects, set, &actions[i]).await {
                Ok(()) => done[i] = true,
                Err(error) => {
                    return Executed {
                        done,
                        error: Some(error),
                    };
                }
            }
            i += 1;
            continue;
        }
        let end = units.last().map_or(i, |u| u.end);
        if let Err(error) = run_slow_start(effects, set, actions, &units, &mut done).await {
            return Executed {
                done,
                error: Some(error),
            };
        }
        i = end;
    }
    Executed { done, error: None }
}

/// A run of consecutive actions about one pod: `actions[start..end]`.
#[derive(Debug, Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
}

/// The pod a per-pod action is about, for Parallel batching; `None` for actions that always run
/// on their own (revisions, adoption, rolling-update deletes).
fn pod_of(set: &StatefulSet, action: &Action) -> Option<String> {
    match action {
        Action::CreateClaim { pod, .. } => Some(pod.clone()),
        Action::CreatePod(pod) | Action::UpdatePodIdentity(pod) => pod.metadata.name.clone(),
        Action::DeletePod { name, reason } if *reason != DeleteReason::Update => Some(name.clone()),
        // Claim names end with `-<ordinal>` of their pod.
        Action::UpdateClaimOwnerRefs { claim, .. } => claim
            .rsplit_once('-')
            .map(|(_, ordinal)| format!("{}-{ordinal}", spec::name(set))),
        _ => None,
    }
}

/// The per-pod units starting at `from`: consecutive per-pod actions, split where the pod
/// changes, ending before an action that is not per-pod or whose pod already has a unit (so a
/// condemned pod's claim fix and its deletion never share a batch).
fn batchable_units(set: &StatefulSet, actions: &[Action], from: usize) -> Vec<Unit> {
    let mut units: Vec<(String, Unit)> = Vec::new();
    for (i, action) in actions.iter().enumerate().skip(from) {
        let Some(pod) = pod_of(set, action) else {
            break;
        };
        if let Some((last, unit)) = units.last_mut()
            && *last == pod
        {
            unit.end = i + 1;
            continue;
        }
        if units.iter().any(|(p, _)| *p == pod) {
            break;
        }
        units.push((
            pod,
            Unit {
                start: i,
                end: i + 1,
            },
        ));
    }
    units.into_iter().map(|(_, u)| u).collect()
}

/// `slowStartBatch`: batches of 1, 2, 4, … units run concurrently; stop after a failed batch.
async fn run_slow_start<E: StatefulSetEffects>(
    effects: &E,
    set: &StatefulSet,
    actions: &[Action],
    units: &[Unit],
    done: &mut [bool],
) -> Result<(), ExecError> {
    let mut next = 0;
    let mut size = 1;
    while next < units.len() {
        let batch = &units[next..(next + size).min(units.len())];
        let results = join_all(batch.iter().map(|unit| async move {
            let mut finished = Vec::new();
            for (i, action) in actions.iter().enumerate().take(unit.end).skip(unit.start) {
                if let Err(e) = apply(effects, set, action).await {
                    return (finished, Some(e));
                }
                finished.push(i);
            }
            (finished, None)
        }))
        .await;
        let mut first_error = None;
        for (finished, error) in results {
            for i in finished {
                done[i] = true;
            }
            if first_error.is_none() {
                first_error = error;
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        next += batch.len();
        size = (size * 2).min(MAX_BATCH);
    }
    Ok(())
}

fn event(
    severity: Severity,
    reason: &str,
    action: &'static str,
    note: String,
    related: Related,
) -> SetEvent {
    SetEvent {
        severity,
        reason: reason.to_string(),
        action,
        note,
        related: Some(related),
    }
}

/// Upstream `recordPodEvent`: `<verb> Pod <pod> in StatefulSet <set> successful|failed error: …`
/// with reason `Successful<Verb>` / `Failed<Verb>`.
fn pod_event(
    set: &StatefulSet,
    verb: &str,
    pod: &str,
    result: &Result<(), EffectError>,
) -> SetEvent {
    let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
    let action = match verb {
        "create" => "Create",
        "delete" => "Delete",
        _ => "Update",
    };
    let related = Related::Pod(pod.to_string());
    match result {
        Ok(()) => event(
            Severity::Normal,
            &format!("Successful{title}"),
            action,
            format!(
                "{verb} Pod {pod} in StatefulSet {} successful",
                spec::name(set)
            ),
            related,
        ),
        Err(e) => event(
            Severity::Warning,
            &format!("Failed{title}"),
            action,
            format!(
                "{verb} Pod {pod} in StatefulSet {} failed error: {e}",
                spec::name(set)
            ),
            related,
        ),
    }
}

/// Upstream `recordClaimEvent` for creates.
fn claim_event(
    set: &StatefulSet,
    claim: &str,
    pod: &str,
    result: &Result<(), EffectError>,
) -> SetEvent {
    let related = Related::Claim(claim.to_string());
    match result {
        Ok(()) => event(
            Severity::Normal,
            "SuccessfulCreate",
            "Create",
            format!(
                "create Claim {claim} Pod {pod} in StatefulSet {} success",
                spec::name(set)
            ),
            related,
        ),
        Err(e) => event(
            Severity::Warning,
            "FailedCreate",
            "Create",
            format!(
                "create Claim {claim} for Pod {pod} in StatefulSet {} failed error: {e}",
                spec::name(set)
            ),
            related,
        ),
    }
}

/// Treats "already done" answers as success.
fn tolerate(
    result: Result<(), EffectError>,
    done_when: fn(&EffectError) -> bool,
) -> Result<(), EffectError> {
    match result {
        Err(e) if done_when(&e) => Ok(()),
        other => other,
    }
}

fn not_found(e: &EffectError) -> bool {
    matches!(e, EffectError::NotFound(_))
}

/// One action: the call, its tolerance, its event.
async fn apply<E: StatefulSetEffects>(
    effects: &E,
    set: &StatefulSet,
    action: &Action,
) -> Result<(), ExecError> {
    let ns = spec::namespace(set);
    let fail = |what: String| {
        move |source: EffectError| ExecError {
            set: format!("{ns}/{}", spec::name(set)),
            what,
            source,
        }
    };
    match action {
        Action::AdoptRevision { name } => {
            let r = effects.adopt_revision(set, name).await;
            tolerate(r, not_found).map_err(fail(format!("adopt revision {name}")))
        }
        Action::CreateRevision(revision) => {
            let name = revision.metadata.name.clone().unwrap_or_default();
            effects
                .create_revision(revision)
                .await
                .map_err(fail(format!("create revision {name}")))
        }
        Action::UpdateRevision { name, revision } => effects
            .set_revision_number(ns, name, *revision)
            .await
            .map_err(fail(format!("update revision {name}"))),
        Action::DeleteRevision { name } => {
            let r = effects.delete_revision(ns, name).await;
            tolerate(r, not_found).map_err(fail(format!("delete revision {name}")))
        }
        Action::AdoptPod { name, uid } => {
            let r = effects.adopt_pod(set, name, uid).await;
            tolerate(r, not_found).map_err(fail(format!("adopt pod {name}")))
        }
        Action::ReleasePod { name, uid } => {
            let r = effects.release_pod(set, name, uid).await;
            tolerate(r, not_found).map_err(fail(format!("release pod {name}")))
        }
        Action::CreateClaim { pod, claim } => {
            let name = claim.metadata.name.clone().unwrap_or_default();
            let r = effects.create_claim(claim).await;
            if matches!(r, Err(EffectError::AlreadyExists(_))) {
                return Ok(());
            }
            effects.record(set, claim_event(set, &name, pod, &r)).await;
            r.map_err(fail(format!("create claim {name} for pod {pod}")))
        }
        Action::UpdateClaimOwnerRefs {
            claim,
            owner_references,
        } => {
            // A claim deleted meanwhile is picked up by a later sync.
            let r = effects
                .set_claim_owner_refs(ns, claim, owner_references)
                .await;
            tolerate(r, not_found).map_err(fail(format!("update claim {claim}")))
        }
        Action::CreatePod(pod) => {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let r = effects.create_pod(pod).await;
            if matches!(r, Err(EffectError::AlreadyExists(_))) {
                return Ok(());
            }
            effects
                .record(set, pod_event(set, "create", &name, &r))
                .await;
            r.map_err(fail(format!("create pod {name}")))
        }
        Action::DeletePod { name, .. } => {
            let r = effects.delete_pod(ns, name).await;
            if not_found_err(&r) {
                return Ok(());
            }
            effects
                .record(set, pod_event(set, "delete", name, &r))
                .await;
            r.map_err(fail(format!("delete pod {name}")))
        }
        Action::UpdatePodIdentity(pod) => {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let r = effects.update_pod(pod).await;
            effects
                .record(set, pod_event(set, "update", &name, &r))
                .await;
            r.map_err(fail(format!("update pod {name}")))
        }
    }
}

fn not_found_err(r: &Result<(), EffectError>) -> bool {
    matches!(r, Err(EffectError::NotFound(_)))
}
