//! Watch streams: history catch-up from the log, then live events from the writer's broadcast.
//!
//! A watcher subscribes to the broadcast FIRST, then reads history after its start revision in
//! chunks until it reaches the head it saw, then follows the broadcast, skipping every live event at
//! or below the last revision it has already looked at. Since the writer publishes only after a
//! commit, every change is either in the history the watcher read or in the broadcast after its
//! subscription (or both, and then skipped): no gap, no duplicate.
//!
//! A watcher that falls more than the broadcast's capacity behind does not lose events: it takes a
//! fresh subscription and catches up from the log again. Only if compaction has removed history it
//! still needed does its stream end with `Err(Compacted)`. The stream ends (`None`) when the store
//! shuts down. A stream holds no strong reference to the database, so it never keeps the file lock.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use redb::Database;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::read;
use crate::{Revision, StorageError, WatchEvent, WatchStream};

/// History entries read per catch-up step (bounds a watcher's memory during catch-up).
const CATCH_UP_CHUNK: usize = 512;

/// Starts a watch of `prefix` after `after`; `live` must be subscribed before this is called.
pub(super) fn stream(
    db: Weak<Database>,
    live: broadcast::Receiver<Arc<WatchEvent>>,
    prefix: String,
    after: Revision,
) -> WatchStream {
    let watcher = Watcher {
        db,
        live,
        prefix,
        seen: after,
        phase: Phase::CatchUp,
        pending: VecDeque::new(),
    };
    Box::pin(futures::stream::unfold(watcher, |mut watcher| async move {
        let item = watcher.next().await?;
        Some((item, watcher))
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading history from the log.
    CatchUp,
    /// Following the writer's broadcast.
    Live,
    /// The stream has ended.
    Done,
}

struct Watcher {
    db: Weak<Database>,
    live: broadcast::Receiver<Arc<WatchEvent>>,
    prefix: String,
    /// Every change at or below this revision has been delivered or filtered out.
    seen: Revision,
    phase: Phase,
    /// Matching history events read but not yet delivered.
    pending: VecDeque<WatchEvent>,
}

impl Watcher {
    async fn next(&mut self) -> Option<Result<WatchEvent, StorageError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            match self.phase {
                Phase::Done => return None,
                Phase::CatchUp => {
                    if let Err(error) = self.catch_up().await {
                        self.phase = Phase::Done;
                        return error.map(Err);
                    }
                }
                Phase::Live => match self.live.recv().await {
                    Ok(event) if event.revision > self.seen => {
                        self.seen = event.revision;
                        if event.key.starts_with(&self.prefix) {
                            return Some(Ok(WatchEvent::clone(&event)));
                        }
                    }
                    Ok(_) => {} // already read from history
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(
                            missed,
                            rv = self.seen,
                            "watcher fell behind; catching up from history"
                        );
                        self.live = self.live.resubscribe();
                        self.phase = Phase::CatchUp;
                    }
                    Err(RecvError::Closed) => self.phase = Phase::Done,
                },
            }
        }
    }

    /// Reads one chunk of history; `Err(None)` means the store is gone (end quietly).
    async fn catch_up(&mut self) -> Result<(), Option<StorageError>> {
        let db = self.db.upgrade().ok_or(None)?;
        let (prefix, after) = (self.prefix.clone(), self.seen);
        let chunk =
            tokio::task::spawn_blocking(move || read::history(&db, &prefix, after, CATCH_UP_CHUNK))
                .await
                .map_err(|e| {
                    Some(StorageError::Backend(format!(
                        "watch history read failed: {e}"
                    )))
                })?
                .map_err(Some)?;
        self.pending.extend(chunk.events);
        self.seen = chunk.scanned_to;
        if chunk.reached_head {
            self.phase = Phase::Live;
        }
        Ok(())
    }
}
