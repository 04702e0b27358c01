//! Reads: one key, a prefix range (now or at a past revision), and history chunks for watches.
//!
//! Every read runs in one redb read transaction, so it sees one committed revision. A read at a past
//! revision `at` is rebuilt from the current values and the history log: for each key changed after
//! `at`, its first later history entry says what it was at `at` ([`LogRecord::state_before`]); those
//! states are merged in key order with the current values of the unchanged keys. The cost is the
//! page of keys read plus the history written since `at`, which compaction bounds.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::iter::Peekable;
use std::ops::Bound;

use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase};

use super::codec::{LogRecord, decode_value};
use super::{COMPACTED, KV, LOG, META, REVISION, backend};
use crate::{KeyValue, ListOptions, ListResult, Revision, StorageError, WatchEvent};

/// The latest value of `key`.
pub(super) fn get(db: &Database, key: &str) -> Result<Option<KeyValue>, StorageError> {
    let txn = db.begin_read().map_err(backend("begin read"))?;
    let kv = txn.open_table(KV).map_err(backend("open kv"))?;
    match kv.get(key).map_err(backend("read kv"))? {
        Some(guard) => Ok(Some(decode_value(key, guard.value())?)),
        None => Ok(None),
    }
}

/// Keys starting with `prefix` as of `opts.revision` (or now), in key order.
pub(super) fn list(
    db: &Database,
    prefix: &str,
    opts: &ListOptions,
) -> Result<ListResult, StorageError> {
    let txn = db.begin_read().map_err(backend("begin read"))?;
    let (head, compacted) = revisions(&txn)?;
    let at = opts.revision.unwrap_or(head);
    if at > head {
        return Err(StorageError::FutureRevision {
            requested: at,
            current: head,
        });
    }
    if at < compacted {
        return Err(StorageError::Compacted {
            requested: at,
            compacted,
        });
    }
    let start_after = opts.start_after.as_deref().filter(|after| *after >= prefix);
    let in_range =
        |key: &str| key.starts_with(prefix) && start_after.is_none_or(|after| key > after);

    let kv = txn.open_table(KV).map_err(backend("open kv"))?;
    let lower = match start_after {
        Some(after) => Bound::Excluded(after),
        None => Bound::Included(prefix),
    };
    let current = kv
        .range::<&str>((lower, Bound::Unbounded))
        .map_err(backend("read kv"))?
        .map(|entry| {
            let (key, value) = entry.map_err(backend("read kv"))?;
            decode_value(key.value(), value.value())
        })
        .take_while(|kv| kv.as_ref().is_ok_and(|kv| kv.key.starts_with(prefix)) || kv.is_err());

    let changed = if at < head {
        states_at(&txn, at, head, &in_range)?
    } else {
        BTreeMap::new()
    };
    let mut merged = AtRevision {
        current: current.peekable(),
        changed: changed.into_iter().peekable(),
    };

    // `Some(0)` means no limit, as in etcd and the Kubernetes API.
    let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut more = false;
    for item in merged.by_ref() {
        let item = item?;
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(item);
    }
    Ok(ListResult {
        items,
        revision: at,
        more,
    })
}

/// What each key in range changed after `at` was at `at` (`None`: absent).
fn states_at(
    txn: &ReadTransaction,
    at: Revision,
    head: Revision,
    in_range: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, Option<KeyValue>>, StorageError> {
    let log = txn.open_table(LOG).map_err(backend("open log"))?;
    let mut states = BTreeMap::new();
    for entry in log.range((at + 1)..=head).map_err(backend("read log"))? {
        let (revision, bytes) = entry.map_err(backend("read log"))?;
        let record = LogRecord::decode(revision.value(), bytes.value())?;
        if in_range(&record.key)
            && let btree_map::Entry::Vacant(slot) = states.entry(record.key.clone())
        {
            slot.insert(record.state_before());
        }
    }
    Ok(states)
}

/// Current values merged with the past states of the keys changed since, in key order.
struct AtRevision<I: Iterator<Item = Result<KeyValue, StorageError>>> {
    current: Peekable<I>,
    changed: Peekable<btree_map::IntoIter<String, Option<KeyValue>>>,
}

impl<I: Iterator<Item = Result<KeyValue, StorageError>>> Iterator for AtRevision<I> {
    type Item = Result<KeyValue, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_changed = match (self.current.peek(), self.changed.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(Ok(_)), None) => return self.current.next(),
                (None, Some(_)) => true,
                (Some(Ok(now)), Some((key, _))) => key.as_str() <= now.key.as_str(),
            };
            if !take_changed {
                return self.current.next();
            }
            let (key, state) = self.changed.next()?;
            // The key's current value is superseded by its state at the revision.
            if matches!(self.current.peek(), Some(Ok(now)) if now.key == key) {
                self.current.next();
            }
            if let Some(state) = state {
                return Some(Ok(state));
            }
        }
    }
}

/// A slice of history read for a watcher.
pub(super) struct HistoryChunk {
    /// Events matching the prefix, in revision order.
    pub events: Vec<WatchEvent>,
    /// Every change up to here has been looked at.
    pub scanned_to: Revision,
    /// True when `scanned_to` reached the store's head at the time of the read.
    pub reached_head: bool,
}

/// Up to `max_entries` history entries after `after`, filtered by `prefix`.
pub(super) fn history(
    db: &Database,
    prefix: &str,
    after: Revision,
    max_entries: usize,
) -> Result<HistoryChunk, StorageError> {
    let txn = db.begin_read().map_err(backend("begin read"))?;
    let (head, compacted) = revisions(&txn)?;
    if after < compacted {
        return Err(StorageError::Compacted {
            requested: after,
            compacted,
        });
    }
    if after >= head {
        return Ok(HistoryChunk {
            events: Vec::new(),
            scanned_to: after,
            reached_head: true,
        });
    }
    let log: ReadOnlyTable<u64, &[u8]> = txn.open_table(LOG).map_err(backend("open log"))?;
    let mut events = Vec::new();
    let mut scanned_to = after;
    let mut scanned = 0;
    for entry in log
        .range((after + 1)..=head)
        .map_err(backend("read log"))?
        .take(max_entries)
    {
        let (revision, bytes) = entry.map_err(backend("read log"))?;
        let revision = revision.value();
        let record = LogRecord::decode(revision, bytes.value())?;
        if record.key.starts_with(prefix) {
            events.push(record.to_event(revision));
        }
        scanned_to = revision;
        scanned += 1;
    }
    if scanned < max_entries {
        // The range ran out: everything up to the head has been seen.
        scanned_to = head;
    }
    Ok(HistoryChunk {
        events,
        scanned_to,
        reached_head: scanned_to >= head,
    })
}

/// The head and compacted revisions of a read snapshot.
fn revisions(txn: &ReadTransaction) -> Result<(Revision, Revision), StorageError> {
    let meta = txn.open_table(META).map_err(backend("open meta"))?;
    let read = |name: &str| -> Result<Revision, StorageError> {
        Ok(meta
            .get(name)
            .map_err(backend("read meta"))?
            .map_or(0, |g| g.value()))
    };
    Ok((read(REVISION)?, read(COMPACTED)?))
}
