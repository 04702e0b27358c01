//! The etcd backend: the [`Storage`] contract over etcd v3 (3.4 and later), for a control plane
//! whose state must outlive one machine.
//!
//! It speaks etcd's JSON gateway (`POST /v3/kv/range|txn|compaction`, streaming `/v3/watch`) over
//! plain HTTP/1.1 with pooled connections, so it needs no gRPC code generation. The mapping:
//!
//! - a stead revision is etcd's revision (a fresh etcd starts at 1; the contract only needs
//!   revisions to grow);
//! - `create` is a transaction on `create_revision == 0`; `update` and a conditional `delete` are
//!   transactions on `mod_revision == expected` and `create_revision > 0` (etcd reports a missing
//!   key's `mod_revision` as 0, so the second compare keeps `expected = 0` from creating it); a
//!   failed compare reads the key in the same transaction to answer `NotFound` or `Conflict`;
//! - watches ask etcd for history from `after` itself (so etcd refuses an `after` older than its
//!   compaction point, as the contract wants) and drop the events at `after`; `prev_kv` gives
//!   previous values; an event whose key `version` is 1 is a create;
//! - etcd does not report its compaction point except to a refused watch, so
//!   [`EtcdStore::compacted_revision`] finds it by bisecting reads at past revisions.
//!
//! Several endpoints (`etcd://a:2379,b:2379`) are tried in turn when one refuses connections;
//! a request that reached a member is never resent (its write may have happened).

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::{
    EventType, KeyValue, ListOptions, ListResult, Revision, Storage, StorageError, WatchEvent,
    WatchStream,
};

/// Events buffered per watch before the reader waits for the consumer.
const WATCH_BUFFER: usize = 1024;

/// A [`Storage`] backed by an etcd cluster.
pub struct EtcdStore {
    http: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port` per member.
    endpoints: Vec<String>,
    /// The member used last (the next one is tried when it refuses connections).
    current: AtomicUsize,
}

impl EtcdStore {
    /// Connects to the members of `etcd://HOST:PORT[,HOST:PORT...]` (a bare `HOST:PORT,...` list
    /// works too) and checks that one answers.
    pub async fn connect(url: &str) -> Result<EtcdStore, StorageError> {
        let list = url.strip_prefix("etcd://").unwrap_or(url);
        let endpoints: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| format!("http://{}", e.trim_end_matches('/')))
            .collect();
        if endpoints.is_empty() {
            return Err(StorageError::Backend(format!(
                "{url}: want etcd://HOST:PORT[,HOST:PORT...]"
            )));
        }
        let store = EtcdStore {
            http: Client::builder(TokioExecutor::new()).build_http(),
            endpoints,
            current: AtomicUsize::new(0),
        };
        store.current_revision().await?;
        Ok(store)
    }

    /// POSTs `body` to `path` on a member; etcd's own errors come back as `Err(message)`
    /// inside `Ok`, transport failures as `StorageError::Backend`.
    async fn call(&self, path: &str, body: Value) -> Result<Result<Value, String>, StorageError> {
        let response = self.send(path, body).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(backend)?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).map_err(backend)?;
        if status.is_success() {
            Ok(Ok(value))
        } else {
            let message = value["error"]
                .as_str()
                .or(value["message"].as_str())
                .unwrap_or("etcd refused the request")
                .to_string();
            Ok(Err(message))
        }
    }

    /// Sends one request, moving on to the next member while members refuse connections.
    async fn send(
        &self,
        path: &str,
        body: Value,
    ) -> Result<hyper::Response<hyper::body::Incoming>, StorageError> {
        let body = Bytes::from(body.to_string());
        let first = self.current.load(Ordering::Relaxed);
        let mut last_error = String::new();
        for i in 0..self.endpoints.len() {
            let member = (first + i) % self.endpoints.len();
            let request = hyper::Request::post(format!("{}{path}", self.endpoints[member]))
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .map_err(backend)?;
            match self.http.request(request).await {
                Ok(response) => {
                    self.current.store(member, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(e) if e.is_connect() => last_error = format!("{}: {e}", self.endpoints[member]),
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StorageError::Backend(format!(
            "no etcd member answers: {last_error}"
        )))
    }

    /// A range read; etcd's compaction and future-revision refusals become the contract's errors.
    async fn range(&self, body: Value, revision: Option<Revision>) -> Result<Value, StorageError> {
        match self.call("/v3/kv/range", body).await? {
            Ok(v) => Ok(v),
            Err(message) => Err(self.read_error(message, revision.unwrap_or(0)).await),
        }
    }

    async fn read_error(&self, message: String, requested: Revision) -> StorageError {
        if message.contains("required revision has been compacted") {
            match self.compacted_revision().await {
                Ok(compacted) => StorageError::Compacted {
                    requested,
                    compacted,
                },
                Err(e) => e,
            }
        } else if message.contains("required revision is a future revision") {
            match self.current_revision().await {
                Ok(current) => StorageError::FutureRevision { requested, current },
                Err(e) => e,
            }
        } else {
            StorageError::Backend(message)
        }
    }

    /// A transaction: `(succeeded, header revision, responses)`.
    async fn txn(
        &self,
        compare: Vec<Value>,
        success: Vec<Value>,
        failure: Vec<Value>,
    ) -> Result<(bool, Revision, Vec<Value>), StorageError> {
        let body = json!({"compare": compare, "success": success, "failure": failure});
        let v = self
            .call("/v3/kv/txn", body)
            .await?
            .map_err(StorageError::Backend)?;
        let responses = v["responses"].as_array().cloned().unwrap_or_default();
        Ok((
            v["succeeded"].as_bool().unwrap_or(false),
            number(&v["header"]["revision"]),
            responses,
        ))
    }

    /// Why a compare on `key` failed, from the key as the failure branch read it.
    fn refusal(key: &str, expected: Revision, responses: &[Value]) -> StorageError {
        let current = responses
            .first()
            .and_then(|r| r["response_range"]["kvs"].as_array())
            .and_then(|kvs| kvs.first());
        match current {
            None => StorageError::NotFound {
                key: key.to_string(),
            },
            Some(kv) => StorageError::Conflict {
                key: key.to_string(),
                expected,
                actual: number(&kv["mod_revision"]),
            },
        }
    }

    /// Whether a read at `revision` is still possible.
    async fn readable_at(&self, revision: Revision) -> Result<bool, StorageError> {
        let body = json!({"key": b64("\0"), "revision": revision.to_string(), "count_only": true});
        match self.call("/v3/kv/range", body).await? {
            Ok(_) => Ok(true),
            Err(m) if m.contains("required revision has been compacted") => Ok(false),
            Err(m) => Err(StorageError::Backend(m)),
        }
    }
}

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("etcd: {e}"))
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// etcd's JSON gives 64-bit numbers as strings and leaves out zeros.
fn number(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn decode(v: &Value) -> Bytes {
    v.as_str()
        .and_then(|s| B64.decode(s).ok())
        .map(Bytes::from)
        .unwrap_or_default()
}

fn key_value(kv: &Value) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(&decode(&kv["key"])).into_owned(),
        value: decode(&kv["value"]),
        create_revision: number(&kv["create_revision"]),
        mod_revision: number(&kv["mod_revision"]),
    }
}

/// The end of the key range holding every key that starts with `prefix` (etcd's convention:
/// the prefix with its last byte below 0xff incremented; `\0` = to the end of the keyspace).
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return B64.encode(&bytes);
        }
    }
    B64.encode([0u8])
}

fn exists(key: &str) -> Value {
    json!({"target": "CREATE", "key": b64(key), "result": "GREATER", "create_revision": "0"})
}

fn read(key: &str) -> Value {
    json!({"request_range": {"key": b64(key)}})
}

#[async_trait::async_trait]
impl Storage for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let v = self.range(json!({"key": b64(key)}), None).await?;
        Ok(v["kvs"]
            .as_array()
            .and_then(|kvs| kvs.first())
            .map(key_value))
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StorageError> {
        let start = match &opts.start_after {
            Some(after) if after.as_str() >= prefix => format!("{after}\0"),
            // etcd wants a key: `\0` is the first of all.
            _ if prefix.is_empty() => "\0".to_string(),
            _ => prefix.to_string(),
        };
        let mut body = json!({"key": b64(&start), "range_end": prefix_end(prefix)});
        if let Some(limit) = opts.limit.filter(|l| *l > 0) {
            body["limit"] = json!(limit.to_string());
        }
        if let Some(revision) = opts.revision {
            body["revision"] = json!(revision.to_string());
        }
        let v = self.range(body, opts.revision).await?;
        let items = v["kvs"]
            .as_array()
            .map(|kvs| kvs.iter().map(key_value).collect())
            .unwrap_or_default();
        Ok(ListResult {
            items,
            revision: opts
                .revision
                .unwrap_or_else(|| number(&v["header"]["revision"])),
            more: v["more"].as_bool().unwrap_or(false),
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StorageError> {
        let compare = json!({"target": "CREATE", "key": b64(key), "result": "EQUAL",
                             "create_revision": "0"});
        let put = json!({"request_put": {"key": b64(key), "value": B64.encode(&value)}});
        let (ok, revision, _) = self.txn(vec![compare], vec![put], vec![]).await?;
        if ok {
            Ok(revision)
        } else {
            Err(StorageError::AlreadyExists {
                key: key.to_string(),
            })
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StorageError> {
        let same = json!({"target": "MOD", "key": b64(key), "result": "EQUAL",
                          "mod_revision": expected.to_string()});
        let put = json!({"request_put": {"key": b64(key), "value": B64.encode(&value)}});
        let (ok, revision, responses) = self
            .txn(vec![exists(key), same], vec![put], vec![read(key)])
            .await?;
        if ok {
            Ok(revision)
        } else {
            Err(Self::refusal(key, expected, &responses))
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StorageError> {
        let mut compare = vec![exists(key)];
        if let Some(expected) = expected {
            compare.push(json!({"target": "MOD", "key": b64(key), "result": "EQUAL",
                                "mod_revision": expected.to_string()}));
        }
        let delete = json!({"request_delete_range": {"key": b64(key), "prev_kv": true}});
        let (ok, revision, responses) = self.txn(compare, vec![delete], vec![read(key)]).await?;
        if !ok {
            return Err(Self::refusal(key, expected.unwrap_or(0), &responses));
        }
        let previous = responses
            .first()
            .and_then(|r| r["response_delete_range"]["prev_kvs"].as_array())
            .and_then(|kvs| kvs.first())
            .map(key_value)
            .ok_or_else(|| backend("a delete without its previous value"))?;
        Ok((revision, previous))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let first = if prefix.is_empty() { "\0" } else { prefix };
        let body = json!({"create_request": {
            "key": b64(first),
            "range_end": prefix_end(prefix),
            // From `after` itself, so that etcd refuses an `after` it has compacted away.
            "start_revision": after.max(1).to_string(),
            "prev_kv": true,
        }});
        let response = self.send("/v3/watch", body).await?;
        if !response.status().is_success() {
            return Err(backend(format!("watch answered {}", response.status())));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_BUFFER);
        tokio::spawn(async move {
            let mut body = response.into_body();
            let mut buffer = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map(|f| f.into_data().unwrap_or_default()) else {
                    let _ = tx.send(Err(backend("the watch stream broke"))).await;
                    return;
                };
                buffer.extend_from_slice(&data);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line = buffer.split_to(end + 1);
                    let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                        continue;
                    };
                    for item in watch_items(&message["result"], after) {
                        let last = item.is_err();
                        if tx.send(item).await.is_err() || last {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        let v = self
            .range(json!({"key": b64("\0"), "count_only": true}), None)
            .await?;
        Ok(number(&v["header"]["revision"]))
    }

    async fn compacted_revision(&self) -> Result<Revision, StorageError> {
        // Reads work from the compaction point on: bisect for the first readable revision.
        let (mut low, mut high) = (1, self.current_revision().await?);
        if self.readable_at(low).await? {
            return Ok(0);
        }
        while low + 1 < high {
            let mid = low + (high - low) / 2;
            if self.readable_at(mid).await? {
                high = mid;
            } else {
                low = mid;
            }
        }
        Ok(high)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let current = self.current_revision().await?;
        if revision > current {
            return Err(StorageError::FutureRevision {
                requested: revision,
                current,
            });
        }
        let body = json!({"revision": revision.to_string(), "physical": true});
        match self.call("/v3/kv/compaction", body).await? {
            Ok(_) => Ok(()),
            // At or below the current compaction point: nothing to do.
            Err(m) if m.contains("required revision has been compacted") => Ok(()),
            Err(m) => Err(StorageError::Backend(m)),
        }
    }
}

/// The contract's items for one watch response: its events after `after`, or the error that
/// ends the stream.
fn watch_items(result: &Value, after: Revision) -> Vec<Result<WatchEvent, StorageError>> {
    if result["canceled"].as_bool() == Some(true) {
        let compacted = number(&result["compact_revision"]);
        let error = if compacted > 0 {
            StorageError::Compacted {
                requested: after,
                compacted,
            }
        } else {
            let reason = result["cancel_reason"].as_str().unwrap_or("canceled");
            backend(format!("watch canceled: {reason}"))
        };
        return vec![Err(error)];
    }
    let mut items = Vec::new();
    for event in result["events"].as_array().into_iter().flatten() {
        let kv = &event["kv"];
        let revision = number(&kv["mod_revision"]);
        if revision <= after {
            continue;
        }
        let key = String::from_utf8_lossy(&decode(&kv["key"])).into_owned();
        let previous = event
            .get("prev_kv")
            .filter(|p| p.is_object())
            .map(|p| decode(&p["value"]));
        let item = if event["type"] == "DELETE" {
            let last = previous.clone().unwrap_or_default();
            WatchEvent {
                kind: EventType::Delete,
                key,
                revision,
                value: last.clone(),
                prev_value: Some(last),
            }
        } else {
            let created = number(&kv["version"]) == 1;
            WatchEvent {
                kind: if created {
                    EventType::Create
                } else {
                    EventType::Update
                },
                key,
                revision,
                value: decode(&kv["value"]),
                prev_value: if created { None } else { previous },
            }
        };
        items.push(Ok(item));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_increment_the_last_byte() {
        assert_eq!(B64.decode(prefix_end("/a/")).unwrap(), b"/a0");
        assert_eq!(B64.decode(prefix_end("")).unwrap(), b"\0");
    }

    #[test]
    fn watch_responses_become_events_after_the_start() {
        let result = json!({"events": [
            {"kv": {"key": b64("/k/a"), "mod_revision": "4", "create_revision": "4",
                    "version": "1", "value": b64("v1")}},
            {"kv": {"key": b64("/k/a"), "mod_revision": "5", "create_revision": "4",
                    "version": "2", "value": b64("v2")},
             "prev_kv": {"key": b64("/k/a"), "value": b64("v1")}},
            {"type": "DELETE", "kv": {"key": b64("/k/a"), "mod_revision": "6"},
             "prev_kv": {"key": b64("/k/a"), "value": b64("v2")}},
        ]});
        let items: Vec<WatchEvent> = watch_items(&result, 4)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items.len(), 2, "the event at `after` itself is dropped");
        assert_eq!(items[0].kind, EventType::Update);
        assert_eq!(items[0].prev_value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(items[1].kind, EventType::Delete);
        assert_eq!(&items[1].value[..], b"v2");
        let canceled = json!({"canceled": true, "compact_revision": "9"});
        assert_eq!(
            watch_items(&canceled, 3),
            vec![Err(StorageError::Compacted {
                requested: 3,
                compacted: 9
            })]
        );
    }
}
