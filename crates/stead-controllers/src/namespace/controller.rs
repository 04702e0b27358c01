//! The namespace controller's state and executor: the namespaces seen on the watch, a queue of
//! names, and [`NamespaceController::process`], which runs one deletion round over every
//! namespaced resource type and then reports or finalizes as [`decide`] says.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::time::Instant;

use super::effects::NamespaceEffects;
use super::plan::{ContentReport, NamespacePlan, NamespaceView, decide, needs_cleanup};
use crate::gc::effects::EffectError;
use crate::queue::{Backoff, WorkQueue};

/// What processing one namespace came to.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceOutcome {
    /// Nothing to do: unknown, not terminating, or already finalized by us.
    Idle,
    /// Content remains; the namespace was requeued to look again later.
    Waiting(NamespacePlan),
    /// The namespace was finalized.
    Finalized,
    /// A status or finalize write failed; requeued with backoff.
    Retry(EffectError),
}

/// How long to wait before looking at a namespace whose content is still going: grows while the
/// content stays, from `base` up to `max`.
pub fn content_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    }
}

#[derive(Debug)]
pub struct NamespaceController {
    pub namespaces: BTreeMap<String, NamespaceView>,
    pub queue: WorkQueue<String>,
}

impl Default for NamespaceController {
    fn default() -> Self {
        Self {
            namespaces: BTreeMap::new(),
            queue: WorkQueue::new(content_backoff()),
        }
    }
}

impl NamespaceController {
    /// Records a namespace as the watch shows it; queues it when it needs emptying.
    pub fn observe(&mut self, ns: NamespaceView) {
        let name = ns.name.clone();
        let queue = needs_cleanup(&ns);
        self.namespaces.insert(name.clone(), ns);
        if queue {
            self.queue.add(name);
        }
    }

    /// Records that a namespace is gone.
    pub fn remove(&mut self, name: &str) {
        self.namespaces.remove(name);
        self.queue.forget(&name.to_string());
    }

    /// One round for namespace `name`: delete every namespaced type's collection, list what is
    /// left, update the conditions, finalize when empty.
    pub async fn process<E: NamespaceEffects>(
        &mut self,
        name: &str,
        effects: &E,
        now: Instant,
    ) -> NamespaceOutcome {
        let Some(ns) = self.namespaces.get(name).cloned() else {
            return NamespaceOutcome::Idle;
        };
        if !needs_cleanup(&ns) {
            self.queue.forget(&ns.name);
            return NamespaceOutcome::Idle;
        }
        let report = delete_content(effects, &ns.name).await;
        let plan = decide(&ns, &report, &Time(jiff::Timestamp::now()));
        let result = match &plan.finalize {
            Some(finalizers) => effects.finalize(&ns, finalizers).await,
            None if plan.update_status => effects.set_conditions(&ns, &plan.conditions).await,
            None => Ok(()),
        };
        match (result, plan.finalize.is_some()) {
            (Ok(()) | Err(EffectError::NotFound), true) => {
                tracing::info!(namespace = %ns.name, "namespace controller: finalized");
                self.queue.forget(&ns.name);
                NamespaceOutcome::Finalized
            }
            (Ok(()) | Err(EffectError::NotFound), false) => {
                self.queue.add_rate_limited(ns.name.clone(), now);
                NamespaceOutcome::Waiting(plan)
            }
            (Err(e), _) => {
                tracing::debug!(namespace = %ns.name, error = %e, "namespace controller: requeue");
                self.queue.add_rate_limited(ns.name.clone(), now);
                NamespaceOutcome::Retry(e)
            }
        }
    }
}

/// Deletes every namespaced type's objects in `ns` and reports what is left. Failures are
/// collected, not fatal: other types still get deleted this round.
pub async fn delete_content<E: NamespaceEffects>(effects: &E, ns: &str) -> ContentReport {
    let mut report = ContentReport::default();
    for rt in stead_api::resource::RESOURCES
        .iter()
        .filter(|rt| rt.namespaced && rt.verbs.contains(&"deletecollection"))
    {
        if let Err(e) = effects.delete_collection(rt, ns).await {
            report
                .failures
                .push(format!("{}: {e}", rt.qualified_plural()));
            continue;
        }
        match effects.remaining(rt, ns).await {
            Ok(r) if r.count > 0 => report.remaining.push(r),
            Ok(_) => {}
            Err(e) => report
                .failures
                .push(format!("{}: {e}", rt.qualified_plural())),
        }
    }
    report
}
