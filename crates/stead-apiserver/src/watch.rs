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
use stead_api::table::IncludeObject;
use stead_api::{ApiError, FieldError, ResourceType, meta};
use stead_storage::{EventType, ListOptions, StorageError};
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
    tokio::spawn(async move {
        for line in first_lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let mut events = match store.watch(&prefix, after).await {
            Ok(s) => s,
            Err(StorageError::Compacted {
                requested,
                compacted,
            }) => {
                let _ = tx
                    .send(event_line(
                        "ERROR",
                        &ApiError::gone(requested, compacted).to_status(),
                        rt_copy,
                        output,
                        include,
                    ))
                    .await;
                return;
            }
            Err(e) => {
                let _ = tx
                    .send(event_line(
                        "ERROR",
                        &ApiError::internal(e).to_status(),
                        rt_copy,
                        output,
                        include,
                    ))
                    .await;
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
                    if tx.send(event_line("BOOKMARK", &bookmark(rt_copy, last_rev, false), rt_copy, output, include)).await.is_err() {
                        return;
                    }
                }
                ev = events.next() => {
                    let ev = match ev {
                        None => return,
                        Some(Err(StorageError::Compacted { requested, compacted })) => {
                            let _ = tx.send(event_line("ERROR", &ApiError::gone(requested, compacted).to_status(), rt_copy, output, include)).await;
                            return;
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(event_line("ERROR", &ApiError::internal(e).to_status(), rt_copy, output, include)).await;
                            return;
                        }
                        Some(Ok(ev)) => ev,
                    };
                    last_rev = ev.revision;
                    let Ok(obj) = codec::decode_stored(rt_copy, &ev.value, ev.revision) else { continue };
                    let now_matches = matches(rt_copy, &q, &obj);
                    let was_matching = ev
                        .prev_value
                        .as_ref()
                        .and_then(|p| codec::decode_stored(rt_copy, p, ev.revision).ok())
                        .is_some_and(|p| matches(rt_copy, &q, &p));
                    let kind = match (ev.kind, was_matching, now_matches) {
                        (EventType::Create, _, true) => "ADDED",
                        (EventType::Update, true, true) => "MODIFIED",
                        (EventType::Update, false, true) => "ADDED",
                        (EventType::Update, true, false) => "DELETED",
                        (EventType::Delete, _, true) => "DELETED",
                        _ => continue,
                    };
                    if tx.send(event_line(kind, &obj, rt_copy, output, include)).await.is_err() {
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
