//! Revision history (spec §5.3, §5.6): which revisions are current and update for this sync
//! (creating, renumbering or reusing one), and which old revisions to delete.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;

use super::identity::pod_revision;
use super::revision::{
    RevisionError, data_bytes, find_equal_revisions, name_of, new_revision, next_revision,
    revisions_equal,
};
use super::spec;

/// What a sync needs to do to its revisions before touching pods.
#[derive(Clone, Debug, PartialEq)]
pub enum RevisionWrite {
    /// Create this new revision.
    Create(Box<ControllerRevision>),
    /// Renumber an existing (older) revision to `revision` — a rollback to an earlier template.
    Renumber {
        /// Name of the reused revision.
        name: String,
        /// Its new `.revision`.
        revision: i64,
    },
}

/// The outcome of `getStatefulSetRevisions`.
#[derive(Clone, Debug, PartialEq)]
pub struct Revisions {
    /// Revision named by `status.currentRevision`, or the update revision if none matches.
    pub current: ControllerRevision,
    /// The revision of the set's template (new, renumbered or existing).
    pub update: ControllerRevision,
    /// `status.collisionCount`, incremented for every name collision met.
    pub collision_count: i32,
    /// The write needed, if any.
    pub write: Option<RevisionWrite>,
}

/// `getStatefulSetRevisions` (§5.3) over `revisions` sorted in §5.5 order.
///
/// A name collision (an existing revision with the candidate's name but other data) increments the
/// collision count and rehashes, as upstream does after `AlreadyExists`.
pub fn choose_revisions(
    set: &StatefulSet,
    revisions: &[ControllerRevision],
) -> Result<Revisions, RevisionError> {
    let mut collision_count = set
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let next = next_revision(revisions);
    let mut candidate = new_revision(set, next, collision_count)?;
    let equal = find_equal_revisions(revisions, &candidate);

    let (update, write) = match (equal.last(), revisions.last()) {
        // The newest revision already has this template: nothing changes.
        (Some(last_equal), Some(last)) if revisions_equal(last, last_equal) => (last.clone(), None),
        (Some(last_equal), _) => {
            let mut reused = (*last_equal).clone();
            reused.revision = next;
            let write = RevisionWrite::Renumber {
                name: name_of(&reused).to_string(),
                revision: next,
            };
            (reused, Some(write))
        }
        (None, _) => {
            // Create; on a name clash with different data, bump the collision count and retry.
            // The hash label keeps the first hash (§5.3 step 6).
            let first_hash_labels = candidate.metadata.labels.clone();
            loop {
                let clash = revisions.iter().find(|r| name_of(r) == name_of(&candidate));
                match clash {
                    Some(existing) if data_bytes(existing) == data_bytes(&candidate) => {
                        break ((*existing).clone(), None);
                    }
                    Some(_) => {
                        collision_count = collision_count.saturating_add(1);
                        candidate = new_revision(set, next, collision_count)?;
                        candidate.metadata.labels = first_hash_labels.clone();
                    }
                    None => {
                        break (
                            candidate.clone(),
                            Some(RevisionWrite::Create(Box::new(candidate))),
                        );
                    }
                }
            }
        }
    };

    let current_name = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.as_deref())
        .unwrap_or("");
    let current = revisions
        .iter()
        .find(|r| !current_name.is_empty() && name_of(r) == current_name)
        .map(|r| {
            // A renumbered revision is both current and update: use the renumbered copy.
            if name_of(r) == name_of(&update) {
                update.clone()
            } else {
                r.clone()
            }
        })
        .unwrap_or_else(|| update.clone());
    Ok(Revisions {
        current,
        update,
        collision_count,
        write,
    })
}

/// `truncateHistory` (§5.6): names of the oldest non-live revisions beyond
/// `revisionHistoryLimit`, oldest first. Live = current, update, and the revision label of every
/// pod passed in (an unlabeled pod makes `""` live, which matches nothing).
pub fn revisions_to_delete(
    set: &StatefulSet,
    pods: &[&Pod],
    revisions: &[ControllerRevision],
    current: &str,
    update: &str,
) -> Vec<String> {
    let mut live: BTreeSet<&str> = pods.iter().map(|p| pod_revision(p)).collect();
    live.insert(current);
    live.insert(update);
    let history: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| !live.contains(name_of(r)))
        .collect();
    let limit = spec::revision_history_limit(set);
    let Ok(limit) = usize::try_from(limit) else {
        return Vec::new(); // negative: keep everything
    };
    if history.len() <= limit {
        return Vec::new();
    }
    history[..history.len() - limit]
        .iter()
        .map(|r| name_of(r).to_string())
        .collect()
}
