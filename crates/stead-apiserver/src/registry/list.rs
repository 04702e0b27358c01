//! LIST: selectors, `limit`/`continue` pagination at one consistent revision, and the
//! `resourceVersion` / `resourceVersionMatch` rules.

use base64::Engine;
use serde_json::{Value, json};
use stead_api::selector::{FieldSelector, LabelSelector};
use stead_api::{ApiError, ResourceType, meta};
use stead_storage::{ListOptions, StorageError};

use super::{Registry, codec};

/// A parsed LIST request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// One page of a LIST.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
}

impl ListPage {
    /// The `<Kind>List` body (moves the items: a 10 000-object list is not copied).
    pub fn into_list(self, rt: &ResourceType) -> Value {
        let mut metadata = serde_json::Map::new();
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        if let Some(c) = self.continue_token {
            metadata.insert("continue".into(), json!(c));
        }
        let mut list = serde_json::Map::new();
        list.insert("kind".into(), json!(rt.list_kind));
        list.insert("apiVersion".into(), json!(rt.api_version()));
        list.insert("metadata".into(), Value::Object(metadata));
        list.insert("items".into(), Value::Array(self.items));
        Value::Object(list)
    }
}

/// The opaque continue token: the revision the first page was read at and the last key seen.
fn encode_continue(revision: u64, last_key: &str) -> String {
    let raw = json!({"rv": revision, "start": last_key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    Ok((rv, start))
}

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter, or use the continue token in this response to \
retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list \
- objects that were created, modified, or deleted between the time the first chunk was returned and now \
may show up in the list.";

/// One page of an unfiltered LIST kept as stored bytes (see [`Registry::list_raw`]).
#[derive(Debug, Clone)]
pub struct RawListPage {
    pub items: Vec<stead_storage::KeyValue>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
}

impl RawListPage {
    /// The `<Kind>List` JSON body, written from the stored bytes with each object's
    /// `resourceVersion` spliced in: no object is decoded or re-encoded.
    pub fn to_json(&self, rt: &ResourceType) -> Result<Vec<u8>, ApiError> {
        let size: usize = self.items.iter().map(|kv| kv.value.len() + 32).sum();
        let mut out = Vec::with_capacity(size + 256);
        out.extend_from_slice(br#"{"apiVersion":"#);
        serde_json::to_writer(&mut out, &rt.api_version()).map_err(ApiError::internal)?;
        out.extend_from_slice(br#","items":["#);
        for (i, kv) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match codec::splice_resource_version(&kv.value, kv.mod_revision) {
                Some(bytes) => out.extend_from_slice(&bytes),
                None => serde_json::to_writer(&mut out, &codec::decode_kv(rt, kv)?)
                    .map_err(ApiError::internal)?,
            }
        }
        out.extend_from_slice(br#"],"kind":"#);
        serde_json::to_writer(&mut out, rt.list_kind).map_err(ApiError::internal)?;
        let mut metadata = json!({"resourceVersion": self.resource_version.to_string()});
        if let Some(c) = &self.continue_token {
            metadata["continue"] = json!(c);
        }
        out.extend_from_slice(br#","metadata":"#);
        serde_json::to_writer(&mut out, &metadata).map_err(ApiError::internal)?;
        out.push(b'}');
        Ok(out)
    }
}

impl Registry {
    /// An unfiltered LIST page as stored bytes: the fast path for plain JSON lists (clients and
    /// controllers), which need no decoding on the server.
    pub async fn list_raw(
        &self,
        rt: &ResourceType,
        ns: &str,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<RawListPage, ApiError> {
        let prefix = if ns.is_empty() {
            rt.key_prefix()
        } else {
            rt.namespace_prefix(ns)
        };
        let (revision, start_after) = match continue_token {
            Some(t) => {
                let (rv, start) = decode_continue(t)?;
                (Some(rv), Some(start))
            }
            None => (None, None),
        };
        let page = self
            .store()
            .list(
                &prefix,
                ListOptions {
                    start_after,
                    limit: limit.filter(|l| *l > 0),
                    revision,
                },
            )
            .await
            .map_err(|e| match e {
                StorageError::Compacted { .. } if continue_token.is_some() => {
                    ApiError::new(410, "Expired", EXPIRED_CONTINUE)
                }
                other => ApiError::internal(other),
            })?;
        let continue_token = match (page.more, page.items.last()) {
            (true, Some(last)) => Some(encode_continue(page.revision, &last.key)),
            _ => None,
        };
        Ok(RawListPage {
            items: page.items,
            resource_version: page.revision,
            continue_token,
        })
    }

    /// LIST `rt` in namespace `ns` (`""` = all namespaces, or a cluster-scoped type).
    pub async fn list(
        &self,
        rt: &ResourceType,
        ns: &str,
        q: &ListQuery,
    ) -> Result<ListPage, ApiError> {
        let prefix = if ns.is_empty() {
            rt.key_prefix()
        } else {
            rt.namespace_prefix(ns)
        };
        let (mut revision, mut start_after) = match &q.continue_token {
            Some(t) => {
                let (rv, start) = decode_continue(t)?;
                (Some(rv), Some(start))
            }
            None => (None, None),
        };
        let mut items = Vec::new();
        let want = q.limit.filter(|l| *l > 0);
        let filtered = !q.labels.is_empty() || !q.fields.is_empty();
        loop {
            let chunk = want.map(|w| {
                if filtered {
                    w.max(256)
                } else {
                    w - items.len()
                }
            });
            let page = self
                .store()
                .list(
                    &prefix,
                    ListOptions {
                        start_after: start_after.clone(),
                        limit: chunk,
                        revision,
                    },
                )
                .await
                .map_err(|e| match e {
                    StorageError::Compacted { .. } if q.continue_token.is_some() => {
                        ApiError::new(410, "Expired", EXPIRED_CONTINUE)
                    }
                    other => ApiError::internal(other),
                })?;
            revision = Some(page.revision);
            let mut last_key = None;
            for kv in &page.items {
                last_key = Some(kv.key.clone());
                let obj = codec::decode_kv(rt, kv)?;
                if q.labels.matches(&meta::labels(&obj)) && q.fields.matches(rt, &obj) {
                    items.push(obj);
                    if want.is_some_and(|w| items.len() >= w) {
                        let more = page.more
                            || kv.key
                                != page.items.last().map(|k| k.key.clone()).unwrap_or_default();
                        let token = more.then(|| encode_continue(page.revision, &kv.key));
                        return Ok(ListPage {
                            items,
                            resource_version: page.revision,
                            continue_token: token,
                        });
                    }
                }
            }
            if !page.more {
                return Ok(ListPage {
                    items,
                    resource_version: page.revision,
                    continue_token: None,
                });
            }
            start_after = last_key;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_garbage_is_a_bad_request() {
        let t = encode_continue(42, "/core/pods/default/web-3");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "/core/pods/default/web-3".to_string())
        );
        assert_eq!(decode_continue("%%%").unwrap_err().code, 400);
    }
}
