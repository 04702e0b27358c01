//! The garbage collector's state and executor: the [`Graph`] fed by watch events, the queue of uids
//! to look at, and [`Collector::process`], which reads unknown owners, asks [`plan`] and carries
//! the plan out through [`GcEffects`]. No watches here: [`super::run`] feeds events in, and tests
//! drive the same struct with a fake world.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use tokio::time::Instant;

use super::effects::{EffectError, GcEffects};
use super::graph::{FOREGROUND, Graph, Node};
use super::plan::{Action, OwnerState, Plan, plan, unresolved_owners};
use crate::queue::{Backoff, WorkQueue};

/// A change the collector observes.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphEvent {
    /// An object was added or changed.
    Upsert(Node),
    /// An object is gone.
    Remove(String),
}

/// What processing one uid came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every planned write succeeded (or there was nothing to do).
    Done(Plan),
    /// A write or read failed; the uid was requeued with backoff.
    Retry { error: EffectError },
}

/// Uids observed to be gone, so that dependents of a removed owner need no live read (upstream
/// `absentOwnerCache`). Uids are never reused, so an entry never goes stale; the oldest are
/// forgotten past [`ABSENT_CAPACITY`].
#[derive(Debug, Default)]
struct Absent {
    set: HashSet<String>,
    order: VecDeque<String>,
}

const ABSENT_CAPACITY: usize = 4096;

impl Absent {
    fn insert(&mut self, uid: String) {
        if self.set.insert(uid.clone()) {
            self.order.push_back(uid);
            if self.order.len() > ABSENT_CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// The collector: graph + queue.
#[derive(Debug)]
pub struct Collector {
    pub graph: Graph,
    pub queue: WorkQueue<String>,
    absent: Absent,
}

impl Default for Collector {
    fn default() -> Self {
        Self::new(Backoff::default())
    }
}

impl Collector {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            graph: Graph::new(),
            queue: WorkQueue::new(backoff),
            absent: Absent::default(),
        }
    }

    /// Applies a change to the graph and queues whatever it makes worth a look.
    pub fn observe(&mut self, event: GraphEvent) {
        let enqueue = match event {
            GraphEvent::Upsert(node) => self.graph.upsert(node),
            GraphEvent::Remove(uid) => {
                let enqueue = self.graph.remove(&uid);
                self.absent.insert(uid);
                enqueue
            }
        };
        for uid in enqueue {
            self.queue.add(uid);
        }
    }

    /// Takes the next uid due at `now`.
    pub fn next(&mut self, now: Instant) -> Option<String> {
        self.queue.pop(now)
    }

    /// Looks at one object and carries out the plan. On failure the uid is requeued with backoff;
    /// on success its backoff is cleared and the plan's follow-ups are queued.
    pub async fn process<E: GcEffects>(&mut self, uid: &str, effects: &E, now: Instant) -> Outcome {
        match self.try_process(uid, effects).await {
            Ok(plan) => {
                self.queue.forget(&uid.to_string());
                for dep in &plan.enqueue {
                    self.queue.add(dep.clone());
                }
                Outcome::Done(plan)
            }
            Err(error) => {
                tracing::debug!(uid, %error, "garbage collector: requeue");
                self.queue.add_rate_limited(uid.to_string(), now);
                Outcome::Retry { error }
            }
        }
    }

    async fn try_process<E: GcEffects>(&self, uid: &str, effects: &E) -> Result<Plan, EffectError> {
        let mut resolved = BTreeMap::new();
        for lookup in unresolved_owners(&self.graph, uid) {
            if self.absent.set.contains(&lookup.uid) {
                resolved.insert(lookup.uid, OwnerState::Dangling);
                continue;
            }
            let state = match effects.get(&lookup.key).await? {
                Some(seen) if seen.uid == lookup.uid => {
                    if seen.deleting && seen.finalizers.iter().any(|f| f == FOREGROUND) {
                        OwnerState::Waiting
                    } else {
                        OwnerState::Solid
                    }
                }
                _ => OwnerState::Dangling,
            };
            resolved.insert(lookup.uid, state);
        }
        let plan = plan(&self.graph, uid, &resolved);
        // A write made earlier in this plan moves its object to a new resourceVersion; later
        // writes to the same object carry that one.
        let mut versions: HashMap<String, String> = HashMap::new();
        for action in &plan.actions {
            execute(effects, action, &mut versions).await?;
        }
        Ok(plan)
    }
}

async fn execute<E: GcEffects>(
    effects: &E,
    action: &Action,
    versions: &mut HashMap<String, String>,
) -> Result<(), EffectError> {
    let current = |t: &super::plan::Target| {
        let mut t = t.clone();
        if let Some(rv) = versions.get(&t.uid) {
            t.resource_version = rv.clone();
        }
        t
    };
    let result = match action {
        Action::Delete {
            target,
            propagation,
        } => {
            tracing::info!(object = %target.key, propagation = propagation.as_str(), "garbage collector: delete");
            effects
                .delete(&current(target), *propagation)
                .await
                .map(|()| None)
        }
        Action::RemoveOwnerRefs {
            target,
            owners,
            remaining,
        } => {
            tracing::info!(object = %target.key, ?owners, "garbage collector: remove owner references");
            effects
                .set_owner_refs(&current(target), remaining)
                .await
                .map(|rv| Some((target.uid.clone(), rv)))
        }
        Action::UnblockOwnerRefs { target, owner_refs } => effects
            .set_owner_refs(&current(target), owner_refs)
            .await
            .map(|rv| Some((target.uid.clone(), rv))),
        Action::RemoveFinalizer {
            target,
            finalizer,
            remaining,
        } => {
            tracing::info!(object = %target.key, finalizer, "garbage collector: remove finalizer");
            effects
                .set_finalizers(&current(target), remaining)
                .await
                .map(|rv| Some((target.uid.clone(), rv)))
        }
    };
    match result {
        Ok(Some((uid, rv))) => {
            versions.insert(uid, rv);
            Ok(())
        }
        Ok(None) | Err(EffectError::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}
