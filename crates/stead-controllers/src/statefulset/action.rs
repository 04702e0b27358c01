//! The output of [`super::plan`]: the status to write, the writes to perform, and why the sync
//! stopped where it did.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Feature switches the algorithm honours (passed in, never read from globals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `MaxUnavailableStatefulSet`: rolling updates may take down up to
    /// `rollingUpdate.maxUnavailable` pods at once (§4.7 step 3). Off upstream in 1.31–1.33;
    /// stead enables it.
    pub max_unavailable_statefulset: bool,
}

/// Why a pod is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteReason {
    /// Phase Failed or Succeeded: deleted now, recreated by a later sync once it is gone (§4.5.1).
    Terminal,
    /// Ordinal outside `[start, end]` after a scale-down or a start change (§4.6).
    Condemned,
    /// At an outdated revision during a rolling update (§4.7).
    Update,
}

/// One write, in the order upstream issues them. The executor performs them in order and stops at
/// the first error (then requeues with backoff), except that for Parallel sets it may run
/// consecutive pod creations or deletions concurrently in slow-start batches (1, 2, 4, … capped
/// at 500), stopping after the first batch with an error — upstream's `slowStartBatch`.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Adopt an orphan revision matching the selector (patch in the controller ref, UID
    /// precondition, after re-checking the set is live).
    AdoptRevision {
        /// Revision name.
        name: String,
    },
    /// Create this revision.
    CreateRevision(ControllerRevision),
    /// Set an existing revision's `.revision` (rollback to an earlier template reuses it).
    UpdateRevision {
        /// Revision name.
        name: String,
        /// New `.revision`.
        revision: i64,
    },
    /// Delete an old revision (history truncation, oldest first; stop at the first error).
    DeleteRevision {
        /// Revision name.
        name: String,
    },
    /// Adopt an orphan pod (patch in the controller ref with the pod UID as precondition).
    AdoptPod {
        /// Pod name.
        name: String,
        /// Pod UID (precondition).
        uid: String,
    },
    /// Release a pod this set controls but that no longer matches (`$patch: delete` of the ref).
    ReleasePod {
        /// Pod name.
        name: String,
        /// Pod UID (precondition).
        uid: String,
    },
    /// Create a claim for `pod` (AlreadyExists is an error without an event).
    CreateClaim {
        /// The pod the claim is for (for events).
        pod: String,
        /// The claim to create.
        claim: PersistentVolumeClaim,
    },
    /// Replace a claim's owner references (retention policy, §4.9).
    UpdateClaimOwnerRefs {
        /// Claim name.
        claim: String,
        /// The complete new `ownerReferences`.
        owner_references: Vec<OwnerReference>,
    },
    /// Create this pod.
    CreatePod(Pod),
    /// Delete a pod (no preconditions, default grace period; NotFound ignored for updates).
    DeletePod {
        /// Pod name.
        name: String,
        /// Why.
        reason: DeleteReason,
    },
    /// Update a pod whose identity or storage drifted: the full object with name, namespace,
    /// pod-name/pod-index labels and claim volumes repaired (retry on conflict).
    UpdatePodIdentity(Pod),
}

/// Why the sync stopped before doing everything the set asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockReason {
    /// OrderedReady: the pod was created this sync; later ordinals wait for it.
    Created,
    /// The pod is Failed/Succeeded; it was deleted (or is being deleted) and is recreated once gone.
    Terminal,
    /// The pod is terminating; OrderedReady waits until it is gone.
    Terminating,
    /// The pod is not Running and Ready.
    NotRunningAndReady,
    /// The pod is Ready but `minReadySeconds` has not elapsed; `remaining` until it is available.
    NotAvailable {
        /// Time until the pod counts as available.
        remaining: Duration,
    },
    /// A claim of this pod still carries a previous incarnation's pod ref (whenScaled=Delete):
    /// creation waits for the garbage collector to delete it.
    StaleClaim {
        /// Claim name.
        claim: String,
    },
    /// A claim of this pod is being deleted; upstream reports `pvc <name> is being deleted`.
    ClaimTerminating {
        /// Claim name.
        claim: String,
    },
    /// maxUnavailable: as many pods as allowed are already unavailable.
    MaxUnavailable {
        /// Unavailable replicas counted.
        unavailable: i32,
        /// The allowed maximum.
        max_unavailable: i32,
    },
}

impl BlockReason {
    /// Whether upstream surfaces this as a sync error (rate-limited requeue) rather than waiting
    /// for a pod event. PVCs have no informer handlers, so these must be retried by the caller.
    pub fn is_error(&self) -> bool {
        matches!(self, BlockReason::ClaimTerminating { .. })
    }
}

/// The result of one sync, computed without IO.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status the sync arrives at (after `completeRollingUpdate`), assuming every action
    /// succeeds. Pods created by this plan are not counted (upstream counts placeholders as not
    /// created); pods deleted by it still are.
    pub status: StatefulSetStatus,
    /// Whether `status` differs from the stored status in a compared field (§4.8); write it via
    /// `/status` only then. Upstream writes it even when actions failed.
    pub write_status: bool,
    /// Writes, in order.
    pub actions: Vec<Action>,
    /// The pod and reason the sync stopped at, if it stopped waiting for something.
    pub blocked_on: Option<(String, BlockReason)>,
    /// Requeue after this long even without events (`minReadySeconds` while not all available,
    /// §4.1 step 6).
    pub requeue_after: Option<Duration>,
    /// Claims the retention-policy routine looked at this sync that another controller manages
    /// (§4.9 rule 2), in the order it met them; each is worth a `ConflictingController` Warning
    /// on the set (rate-limited by the caller: this routine runs on every sync, upstream's only
    /// when something changed).
    pub conflicting_claims: Vec<String>,
}
