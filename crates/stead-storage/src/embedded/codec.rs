//! Byte layouts of the records the embedded store keeps in redb.
//!
//! - a current value (`kv` table, keyed by the key): `create_revision u64 LE | mod_revision u64 LE |
//!   value bytes`;
//! - a history entry (`log` table, keyed by its revision): `kind u8 | create_revision u64 LE |
//!   prev_mod_revision u64 LE | key_len u32 LE | key | value_len u32 LE | value | prev_value`, where
//!   `prev_value` (the rest of the record) is present only for updates: a delete's previous value is
//!   its `value`, and a create has none.
//!
//! A history entry holds enough to rebuild both the watch event and the key's state just before the
//! change ([`LogRecord::state_before`]), which is what reads at a past revision undo.

use bytes::Bytes;

use crate::{EventType, KeyValue, Revision, StorageError, WatchEvent};

/// Encodes a current value for the `kv` table.
pub(super) fn encode_value(
    create_revision: Revision,
    mod_revision: Revision,
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create_revision.to_le_bytes());
    out.extend_from_slice(&mod_revision.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// Decodes a `kv` table record of `key`.
pub(super) fn decode_value(key: &str, bytes: &[u8]) -> Result<KeyValue, StorageError> {
    let mut reader = Reader { bytes, key };
    let create_revision = reader.u64()?;
    let mod_revision = reader.u64()?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::copy_from_slice(reader.bytes),
        create_revision,
        mod_revision,
    })
}

/// One change as kept in the history log (its revision is the log key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LogRecord {
    pub kind: EventType,
    pub key: String,
    /// The value after the change; for a delete, the last value before it.
    pub value: Bytes,
    /// The key's create revision (for a delete: of the incarnation that was deleted).
    pub create_revision: Revision,
    /// The key's mod revision before the change (0 for a create).
    pub prev_mod_revision: Revision,
    /// The value before an update (`None` for create and delete).
    pub prev_value: Option<Bytes>,
}

impl LogRecord {
    /// The watch event this change is, at `revision`.
    pub fn to_event(&self, revision: Revision) -> WatchEvent {
        let prev_value = match self.kind {
            EventType::Create => None,
            EventType::Update => self.prev_value.clone(),
            EventType::Delete => Some(self.value.clone()),
        };
        WatchEvent {
            kind: self.kind,
            key: self.key.clone(),
            revision,
            value: self.value.clone(),
            prev_value,
        }
    }

    /// The key as it was just before this change (`None`: it did not exist).
    pub fn state_before(&self) -> Option<KeyValue> {
        let value = match self.kind {
            EventType::Create => return None,
            EventType::Update => self.prev_value.clone().unwrap_or_default(),
            EventType::Delete => self.value.clone(),
        };
        Some(KeyValue {
            key: self.key.clone(),
            value,
            create_revision: self.create_revision,
            mod_revision: self.prev_mod_revision,
        })
    }

    /// Encodes this record for the `log` table.
    pub fn encode(&self) -> Vec<u8> {
        let prev_len = self.prev_value.as_ref().map_or(0, Bytes::len);
        let mut out = Vec::with_capacity(29 + self.key.len() + self.value.len() + prev_len);
        out.push(match self.kind {
            EventType::Create => 0,
            EventType::Update => 1,
            EventType::Delete => 2,
        });
        out.extend_from_slice(&self.create_revision.to_le_bytes());
        out.extend_from_slice(&self.prev_mod_revision.to_le_bytes());
        push_sized(&mut out, self.key.as_bytes());
        push_sized(&mut out, &self.value);
        if self.kind == EventType::Update
            && let Some(prev) = &self.prev_value
        {
            out.extend_from_slice(prev);
        }
        out
    }

    /// Decodes a `log` table record (`revision` only names it in errors).
    pub fn decode(revision: Revision, bytes: &[u8]) -> Result<Self, StorageError> {
        let name = format!("history entry {revision}");
        let mut reader = Reader { bytes, key: &name };
        let kind = match reader.take(1)?[0] {
            0 => EventType::Create,
            1 => EventType::Update,
            2 => EventType::Delete,
            other => return Err(corrupt(&name, &format!("unknown event kind {other}"))),
        };
        let create_revision = reader.u64()?;
        let prev_mod_revision = reader.u64()?;
        let key = String::from_utf8(reader.sized()?.to_vec())
            .map_err(|_| corrupt(&name, "key is not UTF-8"))?;
        let value = Bytes::copy_from_slice(reader.sized()?);
        let prev_value = (kind == EventType::Update).then(|| Bytes::copy_from_slice(reader.bytes));
        Ok(Self {
            kind,
            key,
            value,
            create_revision,
            prev_mod_revision,
            prev_value,
        })
    }
}

fn push_sized(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys and values are far below 4 GiB (the API server caps requests at a few MiB).
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

fn corrupt(what: &str, detail: &str) -> StorageError {
    StorageError::Backend(format!("corrupt record for {what}: {detail}"))
}

/// A cursor over a record that fails with a `Backend` error instead of panicking on short input.
struct Reader<'a> {
    bytes: &'a [u8],
    key: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.bytes.len() < n {
            return Err(corrupt(self.key, "record is truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, StorageError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn sized(&mut self) -> Result<&'a [u8], StorageError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        let len = usize::try_from(u32::from_le_bytes(buf))
            .map_err(|_| corrupt(self.key, "length overflows"))?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: EventType, prev: Option<&'static [u8]>) -> LogRecord {
        LogRecord {
            kind,
            key: "/apps/statefulsets/default/web".to_owned(),
            value: Bytes::from_static(b"{\"v\":2}"),
            create_revision: 3,
            prev_mod_revision: if kind == EventType::Create { 0 } else { 7 },
            prev_value: prev.map(Bytes::from_static),
        }
    }

    #[test]
    fn current_values_round_trip_with_both_revisions() {
        let encoded = encode_value(4, 9, b"hello");
        assert_eq!(encoded.len(), 21);
        let kv = decode_value("/k", &encoded).unwrap();
        assert_eq!(
            kv,
            KeyValue {
                key: "/k".into(),
                value: Bytes::from_static(b"hello"),
                create_revision: 4,
                mod_revision: 9
            }
        );
    }

    #[test]
    fn history_records_of_every_kind_round_trip() {
        for rec in [
            record(EventType::Create, None),
            record(EventType::Update, Some(b"{\"v\":1}")),
            record(EventType::Delete, None),
        ] {
            assert_eq!(LogRecord::decode(10, &rec.encode()).unwrap(), rec);
        }
    }

    #[test]
    fn an_update_with_an_empty_previous_value_keeps_it_present() {
        let rec = record(EventType::Update, Some(b""));
        let decoded = LogRecord::decode(10, &rec.encode()).unwrap();
        assert_eq!(decoded.prev_value, Some(Bytes::new()));
    }

    #[test]
    fn events_and_prior_states_follow_the_kind() {
        let create = record(EventType::Create, None);
        assert_eq!(create.to_event(3).prev_value, None);
        assert_eq!(create.state_before(), None);

        let update = record(EventType::Update, Some(b"old"));
        let event = update.to_event(8);
        assert_eq!(
            (event.kind, event.revision, event.prev_value),
            (EventType::Update, 8, Some(Bytes::from_static(b"old")))
        );
        let before = update.state_before().unwrap();
        assert_eq!(
            (before.value, before.create_revision, before.mod_revision),
            (Bytes::from_static(b"old"), 3, 7)
        );

        let delete = record(EventType::Delete, None);
        let event = delete.to_event(8);
        assert_eq!(event.value, Bytes::from_static(b"{\"v\":2}"));
        assert_eq!(event.prev_value, Some(Bytes::from_static(b"{\"v\":2}")));
        let before = delete.state_before().unwrap();
        assert_eq!(
            (before.value, before.mod_revision),
            (Bytes::from_static(b"{\"v\":2}"), 7)
        );
    }

    #[test]
    fn truncated_or_unknown_records_are_backend_errors_not_panics() {
        assert!(matches!(
            decode_value("/k", b"short"),
            Err(StorageError::Backend(_))
        ));
        let mut bytes = record(EventType::Delete, None).encode();
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            LogRecord::decode(1, &bytes),
            Err(StorageError::Backend(_))
        ));
        assert!(
            matches!(LogRecord::decode(1, &[9; 40]), Err(StorageError::Backend(m)) if m.contains("unknown event kind 9"))
        );
    }
}
