//! WATCH: newline-delimited JSON events over a chunked response.
//!
//! Semantics (kubectl-protocol §10): no `resourceVersion` or `"0"` starts with a synthetic ADDED
//! per existing object; `sendInitialEvents=true` ends those with a BOOKMARK annotated
//! `k8s.io/initial-events-end`; a too-old revision yields one ERROR event with code 410; selectors
//! filter events, and an object moving out of a selector is reported DELETED.

use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use stead_api::table::IncludeObject;
use stead_api::{ApiError, FieldError, ResourceType, meta};

use stead_storage::{EventType, ListOptions, Storage, StorageError, WatchStream};
use tokio::sync::broadcast;

use crate::watch_cache::{Change, WatchHub};
use tokio::sync::mpsc;

use crate::app::App;
use crate::handlers::selectors;
use crate::registry::{ListQuery, codec};
use crate::request::{Output, Query, Target};
use crate::response::to_table;

const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

fn invalid_list_options(detail: FieldError) -> ApiError {
    ApiError::invalid("meta.k8s.io", "ListOptions", "", &[detail])
}

/// One event line, with the object converted to a Table when asked.
fn event_line(
    kind: &str,
    obj: &Value,
    rt: &ResourceType,
    output: Output,
    include: IncludeObject,
) -> bytes::Bytes {
    let object = match output {
        Output::Table { beta } if kind != "ERROR" && kind != "BOOKMARK" => to_table(
            rt,
            &[obj],
            include,
            beta,
            json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
        ),
        _ => obj.clone(),
    };
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .expect("a Value always serializes");
    line.push(b'\n');
    bytes::Bytes::from(line)
}

fn bookmark(rt: &ResourceType, revision: u64, initial_end: bool) -> Value {
    let mut m = json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
    if initial_end {
        m["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": m})
}

fn matches(rt: &ResourceType, q: &ListQuery, obj: &Value) -> bool {
    q.labels.matches(&meta::labels(obj)) && q.fields.matches(rt, obj)
}

pub async fn serve(
    app: &App,
    target: &Target,
    query: &Query,
    output: Output,
) -> Result<Response, ApiError> {
    let rt = target.rt;
    let q = selectors(rt, query)?;
    let bookmarks = query.flag("allowWatchBookmarks")?;
    let send_initial = query.get("sendInitialEvents").map(|v| v == "true");
    let rv_match = query.get("resourceVersionMatch").unwrap_or("");
    match (send_initial, rv_match) {
        (Some(_), "NotOlderThan") => {}
        (Some(_), _) => {
            return Err(invalid_list_options(FieldError::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )));
        }
        (None, "") => {}
        (None, _) => {
            return Err(invalid_list_options(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            )));
        }
    }
    if send_initial == Some(true) && !bookmarks {
        return Err(invalid_list_options(FieldError::forbidden(
            "allowWatchBookmarks",
            "allowWatchBookmarks must be true if sendInitialEvents = true",
        )));
    }
    let rv = query.get("resourceVersion").unwrap_or("");
    let initial = match send_initial {
        Some(s) => s,
        None => rv.is_empty() || rv == "0",
    };
    let start: Option<u64> = if rv.is_empty() || rv == "0" {
        None
    } else {
        Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?,
        )
    };
    let timeout = query
        .int("timeoutSeconds")?
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let include =
        IncludeObject::parse(query.get("includeObject")).map_err(ApiError::bad_request)?;

    let store = app.registry.store().clone();
    let prefix = if target.namespace.is_empty() {
        rt.key_prefix()
    } else {
        rt.namespace_prefix(&target.namespace)
    };

    // The initial state and the revision to watch after.
    let mut first_lines = Vec::new();
    let after = if initial {
        let page = store
            .list(&prefix, ListOptions::default())
            .await
            .map_err(ApiError::internal)?;
        for kv in &page.items {
            let obj = codec::decode_kv(rt, kv)?;
            if matches(rt, &q, &obj) {
                first_lines.push(event_line("ADDED", &obj, rt, output, include));
            }
        }
        if send_initial == Some(true) {
            first_lines.push(event_line(
                "BOOKMARK",
                &bookmark(rt, page.revision, true),
                rt,
                output,
                include,
            ));
        }
        page.revision
    } else {
        start.unwrap_or(0)
    };

    let (tx, rx) = mpsc::channel::<bytes::Bytes>(64);
    let rt_copy: &'static ResourceType = rt;
    let hub = app.watch_hub.clone();
    tokio::spawn(async move {
        let rt = rt_copy;
        let send_error = |e: ApiError| event_line("ERROR", &e.to_status(), rt, output, include);
        for line in first_lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let mut source = match Source::open(&hub, &store, rt, &prefix, after).await {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(send_error(e)).await;
                return;
            }
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        let mut last_rev = after;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(event_line("BOOKMARK", &bookmark(rt, last_rev, false), rt, output, include)).await.is_err() {
                        return;
                    }
                }
                next = source.next(after) => {
                    let change = match next {
                        Next::End => return,
                        Next::Error(e) => {
                            let _ = tx.send(send_error(e)).await;
                            return;
                        }
                        Next::Change(c) => c,
                    };
                    last_rev = change.revision;
                    if !change.key.starts_with(&prefix) {
                        continue;
                    }
                    let now_matches = matches(rt, &q, &change.object);
                    let was_matching = match change.kind {
                        EventType::Update if !q.labels.is_empty() || !q.fields.is_empty() => {
                            change.prev().is_some_and(|p| matches(rt, &q, p))
                        }
                        EventType::Update => true,
                        _ => false,
                    };
                    let kind = match (change.kind, was_matching, now_matches) {
                        (EventType::Create, _, true) => "ADDED",
                        (EventType::Update, true, true) => "MODIFIED",
                        (EventType::Update, false, true) => "ADDED",
                        (EventType::Update, true, false) => "DELETED",
                        (EventType::Delete, _, true) => "DELETED",
                        _ => continue,
                    };
                    let line = match output {
                        Output::Json => json_event_line(kind, &change.json),
                        _ => event_line(kind, &change.object, rt, output, include),
                    };
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
        }
    });

    let body = Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::io::Error>),
    );
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(body)
        .expect("static headers are valid"))
}

/// `{"type":"<kind>","object":<json>}\n` from an object already encoded once for every watcher.
fn json_event_line(kind: &str, object_json: &[u8]) -> bytes::Bytes {
    let mut line = Vec::with_capacity(object_json.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object_json);
    line.extend_from_slice(b"}\n");
    bytes::Bytes::from(line)
}

enum Next {
    Change(Arc<Change>),
    Error(ApiError),
    End,
}

/// Where a watcher's changes come from: the shared feed of its type when that covers its start
/// revision, else its own store watch.
enum Source {
    Hub {
        replay: std::vec::IntoIter<Arc<Change>>,
        live: broadcast::Receiver<Arc<Change>>,
        seen: u64,
    },
    Store {
        stream: WatchStream,
        rt: &'static ResourceType,
    },
}

impl Source {
    async fn open(
        hub: &WatchHub,
        store: &Arc<dyn Storage>,
        rt: &'static ResourceType,
        prefix: &str,
        after: u64,
    ) -> Result<Self, ApiError> {
        if let Some(sub) = hub.subscribe(store, rt, after).await {
            return Ok(Source::Hub {
                replay: sub.replay.into_iter(),
                live: sub.live,
                seen: after,
            });
        }
        match store.watch(prefix, after).await {
            Ok(stream) => Ok(Source::Store { stream, rt }),
            Err(StorageError::Compacted {
                requested,
                compacted,
            }) => Err(ApiError::gone(requested, compacted)),
            Err(e) => Err(ApiError::internal(e)),
        }
    }

    async fn next(&mut self, after: u64) -> Next {
        match self {
            Source::Hub { replay, live, seen } => {
                if let Some(c) = replay.next() {
                    *seen = c.revision;
                    return Next::Change(c);
                }
                loop {
                    match live.recv().await {
                        Ok(c) if c.revision <= *seen || c.revision <= after => continue,
                        Ok(c) => {
                            *seen = c.revision;
                            return Next::Change(c);
                        }
                        // Too slow for the feed, or the feed ended: the client re-watches.
                        Err(_) => return Next::End,
                    }
                }
            }
            Source::Store { stream, rt } => loop {
                match stream.next().await {
                    None => return Next::End,
                    Some(Err(StorageError::Compacted {
                        requested,
                        compacted,
                    })) => {
                        return Next::Error(ApiError::gone(requested, compacted));
                    }
                    Some(Err(e)) => return Next::Error(ApiError::internal(e)),
                    Some(Ok(ev)) => match Change::from_event(rt, ev) {
                        Some(c) => return Next::Change(Arc::new(c)),
                        None => continue,
                    },
                }
            },
        }
    }
}
