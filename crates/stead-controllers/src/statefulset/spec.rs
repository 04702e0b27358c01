//! Read-only accessors over a `StatefulSet` that apply the API server's defaults (spec §1), so the
//! algorithm never has to unpack `Option`s. A set read back from the API server is already
//! defaulted; these functions only matter for hand-built sets (tests) and keep the algorithm total.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The spec, or an empty one when absent (an absent spec means zero claim templates etc.).
pub fn spec(set: &StatefulSet) -> StatefulSetSpec {
    set.spec.clone().unwrap_or_default()
}

/// `metadata.name` (empty when absent).
pub fn name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or("")
}

/// `metadata.namespace` (empty when absent).
pub fn namespace(set: &StatefulSet) -> &str {
    set.metadata.namespace.as_deref().unwrap_or("")
}

/// `metadata.uid` (empty when absent).
pub fn uid(set: &StatefulSet) -> &str {
    set.metadata.uid.as_deref().unwrap_or("")
}

/// `spec.replicas`, defaulted to 1; negative values (rejected by validation) count as 0.
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0)
}

/// `spec.ordinals.start`, or 0 (spec §3.1).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// The last ordinal of the replica range: `start + replicas - 1` (below `start` when replicas is 0).
pub fn end_ordinal(set: &StatefulSet) -> i32 {
    start_ordinal(set).saturating_add(replicas(set)) - 1
}

/// Whether `ordinal` lies in `[start, end]`.
pub fn in_ordinal_range(set: &StatefulSet, ordinal: i32) -> bool {
    ordinal >= start_ordinal(set) && ordinal <= end_ordinal(set)
}

/// `podManagementPolicy == Parallel`; anything else (including unset) is OrderedReady.
pub fn is_parallel(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        == Some("Parallel")
}

/// `spec.minReadySeconds` (0 when unset or negative).
pub fn min_ready_seconds(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
        .max(0)
}

/// `spec.revisionHistoryLimit`, defaulted to 10. Negative means "keep everything" (spec §5.6).
pub fn revision_history_limit(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
}

/// `spec.serviceName` (empty when unset).
pub fn service_name(set: &StatefulSet) -> String {
    set.spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .unwrap_or_default()
}

/// The update strategy as the controller sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateStrategy {
    /// `RollingUpdate`. `rolling_update` is `None` when the user wrote `type: RollingUpdate`
    /// without a `rollingUpdate` struct (spec §1 item 2): then the partition is 0 and the "legacy"
    /// revision choice of §3.8 applies.
    RollingUpdate {
        rolling_update: Option<RollingUpdate>,
    },
    /// `OnDelete`: pods change revision only when something else deletes them.
    OnDelete,
}

/// The contents of `spec.updateStrategy.rollingUpdate`.
#[derive(Clone, Debug, PartialEq)]
pub struct RollingUpdate {
    /// Slots below this index keep the current revision (defaulted 0).
    pub partition: i32,
    /// Only honoured when the `MaxUnavailableStatefulSet` feature is on.
    pub max_unavailable: Option<IntOrString>,
}

/// The update strategy; an unset type defaults to `RollingUpdate` with an empty struct (§1 item 2).
pub fn update_strategy(set: &StatefulSet) -> UpdateStrategy {
    let strategy = set.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    let Some(strategy) = strategy else {
        return UpdateStrategy::RollingUpdate {
            rolling_update: Some(RollingUpdate {
                partition: 0,
                max_unavailable: None,
            }),
        };
    };
    match strategy.type_.as_deref() {
        Some("OnDelete") => UpdateStrategy::OnDelete,
        None | Some("") if strategy.rolling_update.is_none() => UpdateStrategy::RollingUpdate {
            rolling_update: Some(RollingUpdate {
                partition: 0,
                max_unavailable: None,
            }),
        },
        _ => UpdateStrategy::RollingUpdate {
            rolling_update: strategy.rolling_update.as_ref().map(|r| RollingUpdate {
                partition: r.partition.unwrap_or(0).max(0),
                max_unavailable: r.max_unavailable.clone(),
            }),
        },
    }
}

/// The partition in slots (`0` without a `rollingUpdate` struct or for OnDelete).
pub fn partition(set: &StatefulSet) -> i32 {
    match update_strategy(set) {
        UpdateStrategy::RollingUpdate {
            rolling_update: Some(r),
        } => r.partition,
        _ => 0,
    }
}

/// One half of `persistentVolumeClaimRetentionPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Retention {
    /// Keep the claim (no owner reference for this half of the policy).
    Retain,
    /// Let the garbage collector delete the claim with its owner.
    Delete,
}

/// `persistentVolumeClaimRetentionPolicy` with unset or unknown values read as `Retain`
/// (upstream logs unknown values and treats them as Retain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetentionPolicy {
    /// `whenDeleted`: what happens to claims when the set is deleted.
    pub when_deleted: Retention,
    /// `whenScaled`: what happens to a condemned pod's claims when the set scales down.
    pub when_scaled: Retention,
}

impl RetentionPolicy {
    /// Both halves `Retain`: the controller keeps no owner references on claims.
    pub fn is_retain_retain(&self) -> bool {
        self.when_deleted == Retention::Retain && self.when_scaled == Retention::Retain
    }
}

fn retention(value: Option<&str>) -> Retention {
    match value {
        Some("Delete") => Retention::Delete,
        _ => Retention::Retain,
    }
}

/// The retention policy of the set.
pub fn retention_policy(set: &StatefulSet) -> RetentionPolicy {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    RetentionPolicy {
        when_deleted: retention(policy.and_then(|p| p.when_deleted.as_deref())),
        when_scaled: retention(policy.and_then(|p| p.when_scaled.as_deref())),
    }
}
