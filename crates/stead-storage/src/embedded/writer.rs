//! The group-committing writer: one thread that owns every write transaction.
//!
//! Callers send a [`Request`] over a channel and await its reply. The thread takes the first queued
//! request, drains whatever else is queued (up to [`BatchLimits`]), applies each operation in order
//! inside ONE redb write transaction, commits it with `Durability::Immediate` (one fsync for the whole
//! batch), then publishes the batch's watch events in revision order and answers every caller.
//!
//! Each operation is checked on its own: a create of an existing key or a stale compare-and-swap
//! fails only that operation, and the later operations of the batch see the earlier ones' writes. A
//! failure of redb itself (IO, commit) fails every operation of the batch, none of which happened.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, Table};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::codec::{LogRecord, decode_value, encode_value};
use super::{COMPACTED, KV, LOG, META, REVISION, Revisions, backend};
use crate::{EventType, KeyValue, Revision, StorageError, WatchEvent};

/// A write the writer thread applies.
#[derive(Debug)]
pub(super) enum Op {
    Write(Write),
    Compact { revision: Revision },
}

/// A write to one key.
#[derive(Debug)]
pub(super) enum Write {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

impl Write {
    fn key(&self) -> &str {
        match self {
            Write::Create { key, .. } | Write::Update { key, .. } | Write::Delete { key, .. } => {
                key
            }
        }
    }
}

impl Op {
    /// Bytes this operation adds to a batch (to bound a transaction's size).
    fn weight(&self) -> usize {
        match self {
            Op::Write(Write::Create { key, value } | Write::Update { key, value, .. }) => {
                key.len() + value.len()
            }
            Op::Write(Write::Delete { key, .. }) => key.len(),
            Op::Compact { .. } => 0,
        }
    }
}

/// What a successful operation answers.
#[derive(Debug)]
pub(super) enum Done {
    /// A create or update, at this revision.
    Written(Revision),
    /// A delete at this revision, with the value it removed.
    Deleted(Revision, KeyValue),
    /// A compaction (possibly a no-op).
    Compacted,
}

pub(super) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done, StorageError>>,
}

/// Bounds of one group commit.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchLimits {
    pub max_ops: usize,
    pub max_bytes: usize,
}

/// The writer thread's body; returns when every sender is gone and the queue is empty.
pub(super) fn run(
    db: Arc<Database>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    revisions: Arc<Revisions>,
    limits: BatchLimits,
) {
    while let Some(first) = requests.blocking_recv() {
        let mut weight = first.op.weight();
        let mut batch = vec![first];
        while batch.len() < limits.max_ops && weight < limits.max_bytes {
            let Ok(next) = requests.try_recv() else { break };
            weight += next.op.weight();
            batch.push(next);
        }
        commit_batch(&db, batch, &events, &revisions);
    }
}

/// The effect of one committed batch.
struct Applied {
    results: Vec<Result<Done, StorageError>>,
    events: Vec<WatchEvent>,
    head: Revision,
    compacted: Revision,
}

fn commit_batch(
    db: &Database,
    batch: Vec<Request>,
    events: &broadcast::Sender<Arc<WatchEvent>>,
    revisions: &Revisions,
) {
    let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
    match apply(db, &ops) {
        Ok(applied) => {
            revisions.current.store(applied.head, Ordering::SeqCst);
            revisions
                .compacted
                .store(applied.compacted, Ordering::SeqCst);
            tracing::trace!(
                ops = ops.len(),
                rv = applied.head,
                "storage batch committed"
            );
            for event in applied.events {
                // No receiver is fine: nobody is watching.
                let _ = events.send(Arc::new(event));
            }
            for (reply, result) in replies.into_iter().zip(applied.results) {
                // A caller that went away (cancelled request) does not care about the answer.
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            tracing::error!(%error, ops = ops.len(), "storage batch failed");
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// Applies `ops` in one write transaction and commits it durably (if anything changed).
fn apply(db: &Database, ops: &[Op]) -> Result<Applied, StorageError> {
    let mut txn = db.begin_write().map_err(backend("begin write"))?;
    txn.set_durability(Durability::Immediate)
        .map_err(backend("set durability"))?;
    let mut applied;
    let (head, compacted);
    {
        let mut meta = txn.open_table(META).map_err(backend("open meta"))?;
        let mut kv = txn.open_table(KV).map_err(backend("open kv"))?;
        let mut log = txn.open_table(LOG).map_err(backend("open log"))?;
        head = read_meta(&meta, REVISION)?;
        compacted = read_meta(&meta, COMPACTED)?;
        applied = Applied {
            results: Vec::with_capacity(ops.len()),
            events: Vec::new(),
            head,
            compacted,
        };
        for op in ops {
            let result = match op {
                Op::Compact { revision } => compact(&mut log, &mut applied, *revision)?,
                Op::Write(write) => apply_write(&mut kv, &mut log, &mut applied, write)?,
            };
            applied.results.push(result);
        }
        if applied.head != head || applied.compacted != compacted {
            meta.insert(REVISION, applied.head)
                .map_err(backend("write meta"))?;
            meta.insert(COMPACTED, applied.compacted)
                .map_err(backend("write meta"))?;
        }
    }
    if applied.head == head && applied.compacted == compacted {
        // Nothing changed (every operation failed its check or was a no-op): skip the fsync.
        txn.abort().map_err(backend("abort"))?;
    } else {
        txn.commit().map_err(backend("commit"))?;
    }
    Ok(applied)
}

type KvTable<'t> = Table<'t, &'static str, &'static [u8]>;
type LogTable<'t> = Table<'t, u64, &'static [u8]>;

/// Applies one create/update/delete. The outer error aborts the batch; the inner one is this
/// operation's own answer.
fn apply_write(
    kv: &mut KvTable<'_>,
    log: &mut LogTable<'_>,
    applied: &mut Applied,
    op: &Write,
) -> Result<Result<Done, StorageError>, StorageError> {
    let key = op.key();
    let current = match kv.get(key).map_err(backend("read kv"))? {
        Some(guard) => Some(decode_value(key, guard.value())?),
        None => None,
    };
    let revision = applied.head + 1;
    let (record, done) = match (op, current) {
        (Write::Create { .. }, Some(_)) => {
            return Ok(Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            }));
        }
        (Write::Update { .. } | Write::Delete { .. }, None) => {
            return Ok(Err(StorageError::NotFound {
                key: key.to_owned(),
            }));
        }
        (
            Write::Update { expected, .. }
            | Write::Delete {
                expected: Some(expected),
                ..
            },
            Some(cur),
        ) if cur.mod_revision != *expected => {
            let conflict = StorageError::Conflict {
                key: key.to_owned(),
                expected: *expected,
                actual: cur.mod_revision,
            };
            return Ok(Err(conflict));
        }
        (Write::Create { value, .. }, None) => {
            kv.insert(key, encode_value(revision, revision, value).as_slice())
                .map_err(backend("write kv"))?;
            let record = LogRecord {
                kind: EventType::Create,
                key: key.to_owned(),
                value: value.clone(),
                create_revision: revision,
                prev_mod_revision: 0,
                prev_value: None,
            };
            (record, Done::Written(revision))
        }
        (Write::Update { value, .. }, Some(cur)) => {
            let encoded = encode_value(cur.create_revision, revision, value);
            kv.insert(key, encoded.as_slice())
                .map_err(backend("write kv"))?;
            let record = LogRecord {
                kind: EventType::Update,
                key: key.to_owned(),
                value: value.clone(),
                create_revision: cur.create_revision,
                prev_mod_revision: cur.mod_revision,
                prev_value: Some(cur.value),
            };
            (record, Done::Written(revision))
        }
        (Write::Delete { .. }, Some(cur)) => {
            kv.remove(key).map_err(backend("delete kv"))?;
            let record = LogRecord {
                kind: EventType::Delete,
                key: key.to_owned(),
                value: cur.value.clone(),
                create_revision: cur.create_revision,
                prev_mod_revision: cur.mod_revision,
                prev_value: None,
            };
            (record, Done::Deleted(revision, cur))
        }
    };
    log.insert(revision, record.encode().as_slice())
        .map_err(backend("write log"))?;
    applied.events.push(record.to_event(revision));
    applied.head = revision;
    Ok(Ok(done))
}

/// Drops history entries at or below `revision` and moves the compaction point there.
fn compact(
    log: &mut LogTable<'_>,
    applied: &mut Applied,
    revision: Revision,
) -> Result<Result<Done, StorageError>, StorageError> {
    if revision > applied.head {
        return Ok(Err(StorageError::FutureRevision {
            requested: revision,
            current: applied.head,
        }));
    }
    if revision > applied.compacted {
        log.retain_in(..=revision, |_, _| false)
            .map_err(backend("compact log"))?;
        applied.compacted = revision;
    }
    Ok(Ok(Done::Compacted))
}

fn read_meta(meta: &Table<'_, &'static str, u64>, name: &str) -> Result<u64, StorageError> {
    Ok(meta
        .get(name)
        .map_err(backend("read meta"))?
        .map_or(0, |g| g.value()))
}
