//! StatefulSet status (spec §4.8, §6): counters over a pod list, completing a rolling update, and
//! whether the computed status differs enough from the stored one to be written.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::Pod;

use super::health::{is_available, is_created, is_running_and_ready, is_terminating};
use super::identity::pod_revision;
use super::spec::{self, UpdateStrategy};

/// The counters of `computeReplicaStatus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Created pods (terminating and condemned included).
    pub replicas: i32,
    /// Running and Ready pods (terminating pods can count).
    pub ready: i32,
    /// Ready pods that are also available per `minReadySeconds`.
    pub available: i32,
    /// Created, non-terminating pods at the current revision.
    pub current: i32,
    /// Created, non-terminating pods at the update revision.
    pub updated: i32,
}

/// Counts `pods` (placeholders, i.e. not-created pods, only drop out).
pub fn count_pods<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    min_ready_seconds: i32,
    now: Timestamp,
    current_revision: &str,
    update_revision: &str,
) -> Counts {
    let mut c = Counts::default();
    for pod in pods {
        let created = is_created(pod);
        if created {
            c.replicas += 1;
        }
        if is_running_and_ready(pod) {
            c.ready += 1;
            if is_available(pod, min_ready_seconds, now) {
                c.available += 1;
            }
        }
        if created && !is_terminating(pod) {
            let revision = pod_revision(pod);
            if revision == current_revision {
                c.current += 1;
            }
            if revision == update_revision {
                c.updated += 1;
            }
        }
    }
    c
}

/// Writes `counts` into `status` (replacing the counters, as `updateStatus` does).
pub fn apply_counts(status: &mut StatefulSetStatus, counts: Counts) {
    status.replicas = counts.replicas;
    status.ready_replicas = Some(counts.ready);
    status.available_replicas = Some(counts.available);
    status.current_replicas = Some(counts.current);
    status.updated_replicas = Some(counts.updated);
}

/// `completeRollingUpdate` (§4.8 step 1): for RollingUpdate, once `updated == ready ==
/// status.replicas == spec.replicas`, the update revision becomes current. Never for OnDelete.
pub fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let want = spec::replicas(set);
    let rolling = matches!(
        spec::update_strategy(set),
        UpdateStrategy::RollingUpdate { .. }
    );
    if rolling
        && status.updated_replicas.unwrap_or(0) == want
        && status.ready_replicas.unwrap_or(0) == want
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

/// `inconsistentStatus` (§4.8 step 2): a newer observed generation, or a different value of any
/// counter or revision name. `collisionCount` and `conditions` are not compared.
pub fn status_needs_update(set: &StatefulSet, status: &StatefulSetStatus) -> bool {
    let old = set.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    status.observed_generation.unwrap_or(0) > old.observed_generation.unwrap_or(0)
        || status.replicas != old.replicas
        || n(status.current_replicas) != n(old.current_replicas)
        || n(status.ready_replicas) != n(old.ready_replicas)
        || n(status.updated_replicas) != n(old.updated_replicas)
        || s(&status.current_revision) != s(&old.current_revision)
        || n(status.available_replicas) != n(old.available_replicas)
        || s(&status.update_revision) != s(&old.update_revision)
}
