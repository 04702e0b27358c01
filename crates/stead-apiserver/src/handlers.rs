//! Resource verbs: one function per verb, each reading the request, calling the registry and
//! encoding the answer. [`resource`] dispatches on method and path shape; the create-only
//! reviews (`kubectl auth can-i`, `kubectl auth whoami`) are answered without the registry.

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stead_api::table::IncludeObject;
use stead_api::{ApiError, meta, patch, schema};

use crate::app::{App, Identity};
use crate::registry::{DeleteOptions, Deleted, FieldValidation, ListQuery, WriteOptions, Written};
use crate::request::{Output, Query, Target, content_type, decode_body, negotiate};
use crate::response::{Failure, encode, json_response, with_warnings};
use crate::{scale, watch};

/// Largest request body accepted (upstream's limit is 3 MiB for most requests).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

struct Ctx<'a> {
    app: &'a App,
    target: Target,
    query: Query,
    headers: HeaderMap,
    output: Output,
    include: IncludeObject,
}

pub async fn resource(app: &App, target: Target, req: Request<Body>) -> Response {
    let result = if crate::proxy::is_proxied(&target) {
        crate::proxy::serve(app, &target, req).await
    } else {
        dispatch(app, target, req).await
    };
    match result {
        Ok(r) => r,
        Err(e) => Failure(e).into_response(),
    }
}

async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    to_bytes(body, MAX_BODY).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return ApiError::too_large(MAX_BODY);
            }
            source = s.source();
        }
        ApiError::bad_request(format!("reading the request body: {e}"))
    })
}

async fn dispatch(app: &App, target: Target, req: Request<Body>) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let output = negotiate(&parts.headers)?;
    let include =
        IncludeObject::parse(query.get("includeObject")).map_err(ApiError::bad_request)?;
    let ctx = Ctx {
        app,
        target,
        query,
        headers: parts.headers,
        output,
        include,
    };
    let named = ctx.target.name.is_some();
    if ctx.target.rt.is_create_only() {
        // Reviews have one route, a POST on the collection (in a namespace when namespaced).
        if named || (ctx.target.rt.namespaced && ctx.target.namespace.is_empty()) {
            return Err(ApiError::no_route());
        }
        if parts.method != Method::POST {
            return Err(ApiError::method_not_allowed());
        }
        let requester = parts.extensions.get::<Identity>();
        return review(&ctx, requester, read_body(body).await?);
    }
    let sub = ctx.target.subresource.clone();
    match (parts.method, named, sub.as_deref()) {
        (Method::GET, false, _) if ctx.query.flag("watch")? => {
            watch::serve(app, &ctx.target, &ctx.query, output).await
        }
        (Method::GET, false, _) => list(&ctx).await,
        (Method::POST, false, _) => create(&ctx, read_body(body).await?).await,
        (Method::DELETE, false, _) => delete_collection(&ctx, read_body(body).await?).await,
        (method, true, Some("scale")) => {
            let bytes = read_body(body).await?;
            scale::serve(app, &ctx.target, &method, &ctx.query, &ctx.headers, &bytes).await
        }
        (Method::GET, true, Some("status") | None) => get(&ctx).await,
        (Method::PUT, true, Some("status") | None) => update(&ctx, read_body(body).await?).await,
        (Method::PATCH, true, Some("status") | None) => patch(&ctx, read_body(body).await?).await,
        (Method::DELETE, true, None) => delete(&ctx, read_body(body).await?).await,
        (Method::POST, true, Some("binding")) => binding(&ctx, read_body(body).await?).await,
        (Method::POST, true, Some("eviction")) => eviction(&ctx, read_body(body).await?).await,
        (Method::PUT, true, Some("finalize")) => update(&ctx, read_body(body).await?).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Options of a write. Without `fieldManager` the manager is the User-Agent up to its first `/`,
/// as upstream records it (`kubectl-client-side-apply` comes from the query, `OpenAPI-Generator`
/// from the Python client's agent).
pub fn write_options(q: &Query, headers: &HeaderMap) -> Result<WriteOptions, ApiError> {
    let agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let from_agent: String = agent
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    Ok(WriteOptions {
        dry_run: q.dry_run()?,
        field_manager: q
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .unwrap_or(from_agent),
        validation: FieldValidation::parse(q.get("fieldValidation"))?,
        skip_managed_fields: false,
    })
}

fn respond(ctx: &Ctx<'_>, code: StatusCode, obj: &Value) -> Response {
    encode(code, ctx.output, ctx.target.rt, obj, ctx.include)
}

/// The answer to an update or patch: 201 when the write created the object, else 200, with the
/// admission warnings.
fn respond_written(ctx: &Ctx<'_>, written: &Written, warnings: &[String]) -> Response {
    let code = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    with_warnings(respond(ctx, code, &written.object), warnings)
}

async fn get(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let obj = ctx
        .app
        .registry
        .get(ctx.target.rt, &ctx.target.namespace, name)
        .await?;
    Ok(respond(ctx, StatusCode::OK, &obj))
}

/// The label and field selectors of a LIST or WATCH.
pub fn selectors(rt: &stead_api::ResourceType, q: &Query) -> Result<ListQuery, ApiError> {
    let labels = stead_api::selector::LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = stead_api::selector::FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    fields.validate_for(rt).map_err(ApiError::bad_request)?;
    Ok(ListQuery {
        labels,
        fields,
        limit: None,
        continue_token: None,
    })
}

pub fn list_query(rt: &stead_api::ResourceType, q: &Query) -> Result<ListQuery, ApiError> {
    let ListQuery { labels, fields, .. } = selectors(rt, q)?;
    let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let continue_token = q
        .get("continue")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    if q.get("sendInitialEvents").is_some() {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            &[stead_api::FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            )],
        ));
    }
    Ok(ListQuery {
        labels,
        fields,
        limit,
        continue_token,
    })
}

async fn list(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let rt = ctx.target.rt;
    let q = list_query(rt, &ctx.query)?;
    if ctx.output == Output::Json
        && q.labels.is_empty()
        && q.fields.is_empty()
        && rt.storage_prefix.is_none()
    {
        let page = ctx
            .app
            .registry
            .list_raw(
                rt,
                &ctx.target.namespace,
                q.limit,
                q.continue_token.as_deref(),
            )
            .await?;
        return Ok(crate::response::raw_json_response(
            StatusCode::OK,
            page.to_json(rt)?,
        ));
    }
    let page = ctx
        .app
        .registry
        .list(ctx.target.rt, &ctx.target.namespace, &q)
        .await?;
    Ok(respond(ctx, StatusCode::OK, &page.into_list(ctx.target.rt)))
}

/// The write options of a create or update and its body, decoded and admitted (converted,
/// defaulted, unknown fields handled as the request asks), with the warnings that produced.
fn admit_body(ctx: &Ctx<'_>, body: &[u8]) -> Result<(WriteOptions, Value, Vec<String>), ApiError> {
    let rt = ctx.target.rt;
    let opts = write_options(&ctx.query, &ctx.headers)?;
    let raw = decode_body(&content_type(&ctx.headers), body)?;
    let (obj, warnings) =
        ctx.app
            .registry
            .admit(rt.group, rt.version, rt.kind, raw, opts.validation)?;
    Ok((opts, obj, warnings))
}

async fn create(ctx: &Ctx<'_>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let rt = ctx.target.rt;
    let (opts, obj, warnings) = admit_body(ctx, &body)?;
    let written = ctx
        .app
        .registry
        .create(rt, &ctx.target.namespace, obj, &opts)
        .await?;
    Ok(with_warnings(
        respond(ctx, StatusCode::CREATED, &written.object),
        &warnings,
    ))
}

/// POST of a review (`selfsubjectaccessreviews`, `selfsubjectreviews`, …): admitted like any
/// create, answered by [`stead_api::review`] for the authenticated requester, never stored.
fn review(
    ctx: &Ctx<'_>,
    requester: Option<&Identity>,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let requester = requester
        .map(Identity::user_info)
        .ok_or_else(|| ApiError::bad_request("no user present on request"))?;
    let (_, obj, warnings) = admit_body(ctx, &body)?;
    let authenticate = |token: &str| ctx.app.authenticate_token(token).map(|id| id.user_info());
    let answer = stead_api::review::answer(
        ctx.target.rt,
        obj,
        &stead_api::review::ReviewRequest {
            namespace: &ctx.target.namespace,
            requester: &requester,
            authenticate_token: &authenticate,
            now: &crate::registry::now_rfc3339(),
        },
    )?;
    Ok(with_warnings(
        respond(ctx, StatusCode::CREATED, &answer),
        &warnings,
    ))
}

async fn update(ctx: &Ctx<'_>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let rt = ctx.target.rt;
    let name = ctx.target.name.clone().unwrap_or_default();
    let (opts, obj, warnings) = admit_body(ctx, &body)?;
    let sub = ctx
        .target
        .subresource
        .as_deref()
        .filter(|s| matches!(*s, "status" | "finalize"));
    if meta::name(&obj) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&obj)
        )));
    }
    let written = ctx
        .app
        .registry
        .update_with(rt, &ctx.target.namespace, &name, sub, &opts, |_| {
            Ok(obj.clone())
        })
        .await?;
    Ok(respond_written(ctx, &written, &warnings))
}

/// Applies a PATCH body of `content_type` to `current` (or to nothing, for server-side apply
/// creating the object).
pub fn apply_patch(
    rt: &stead_api::ResourceType,
    kind_root: &str,
    content_type: &str,
    body: &[u8],
    current: Option<&Value>,
    q: &Query,
) -> Result<Value, ApiError> {
    let name = current.map(meta::name).unwrap_or("");
    let to_api = |e: patch::PatchError| e.to_api_error(rt.group, rt.plural, rt.kind, name);
    let parse = || -> Result<Value, ApiError> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    match (content_type, current) {
        ("application/apply-patch+yaml", current) => {
            let applied = crate::request::decode_yaml(body)?;
            let manager = q.get("fieldManager").unwrap_or("");
            if manager.is_empty() {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let req = patch::ApplyRequest {
                manager,
                force: q.flag("force")?,
                api_version: &rt.api_version(),
                now: &crate::registry::now_rfc3339(),
            };
            patch::server_side_apply(current, &applied, &req, schema::definitions(), kind_root)
                .map_err(to_api)
        }
        (_, None) => Err(ApiError::not_found(rt.group, rt.plural, name)),
        ("application/json-patch+json", Some(cur)) => {
            patch::json_patch(cur, &parse()?).map_err(to_api)
        }
        ("application/merge-patch+json", Some(cur)) => {
            patch::json_merge_patch(cur, &parse()?).map_err(to_api)
        }
        ("application/strategic-merge-patch+json", Some(cur)) => {
            patch::strategic_merge_patch(cur, &parse()?, schema::definitions(), kind_root)
                .map_err(to_api)
        }
        (other, _) => Err(ApiError::unsupported_media_type(other)),
    }
}

async fn patch(ctx: &Ctx<'_>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let rt = ctx.target.rt;
    let name = ctx.target.name.clone().unwrap_or_default();
    let mut opts = write_options(&ctx.query, &ctx.headers)?;
    let ct = content_type(&ctx.headers);
    let is_apply = ct == "application/apply-patch+yaml";
    opts.skip_managed_fields = is_apply;
    let root = schema::definition_name(rt.group, rt.version, rt.kind).unwrap_or("");
    let sub = ctx.target.subresource.as_deref().filter(|s| *s == "status");
    let registry = &ctx.app.registry;
    let mut warnings = Vec::new();
    let written = registry
        .update_with(rt, &ctx.target.namespace, &name, sub, &opts, |current| {
            if current.is_none() && !is_apply {
                return Err(ApiError::not_found(rt.group, rt.plural, &name));
            }
            let mut patched = apply_patch(rt, root, &ct, &body, current, &ctx.query)?;
            if current.is_none() {
                meta::set_str(&mut patched, "name", &name);
            }
            let (obj, w) =
                registry.admit(rt.group, rt.version, rt.kind, patched, opts.validation)?;
            warnings = w;
            Ok(obj)
        })
        .await?;
    Ok(respond_written(ctx, &written, &warnings))
}

/// DeleteOptions from the body (kubectl) and the query (the Python client).
fn delete_options(q: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let b: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let str_of = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
    let dry_body = b
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        propagation_policy: str_of("propagationPolicy")
            .or_else(|| q.get("propagationPolicy").map(str::to_string)),
        grace_period_seconds: b
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or(q.int("gracePeriodSeconds")?),
        precondition_uid: b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_resource_version: b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        orphan_dependents: b.get("orphanDependents").and_then(Value::as_bool).or(
            match q.get("orphanDependents") {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            },
        ),
        dry_run: dry_body || q.dry_run()?,
    })
}

fn success_status(rt: &stead_api::ResourceType, obj: &Value) -> Value {
    let mut details = json!({"name": meta::name(obj), "kind": rt.plural, "uid": meta::uid(obj)});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

async fn delete(ctx: &Ctx<'_>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let name = ctx.target.name.clone().unwrap_or_default();
    let opts = delete_options(&ctx.query, &body)?;
    match ctx
        .app
        .registry
        .delete(ctx.target.rt, &ctx.target.namespace, &name, &opts)
        .await?
    {
        Deleted::Gone(obj) => {
            // Registries that return the deleted object upstream (`ReturnDeletedObject`).
            let returns_object = matches!(
                (ctx.target.rt.group, ctx.target.rt.kind),
                (
                    "",
                    "Pod"
                        | "Service"
                        | "ServiceAccount"
                        | "PersistentVolume"
                        | "PersistentVolumeClaim"
                ) | ("storage.k8s.io", "StorageClass")
            );
            let body = if returns_object {
                obj
            } else {
                success_status(ctx.target.rt, &obj)
            };
            Ok(json_response(StatusCode::OK, &body))
        }
        Deleted::Pending(obj) => Ok(respond(ctx, StatusCode::OK, &obj)),
    }
}

async fn delete_collection(ctx: &Ctx<'_>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let rt = ctx.target.rt;
    let opts = delete_options(&ctx.query, &body)?;
    let q = list_query(rt, &ctx.query)?;
    let page = ctx
        .app
        .registry
        .list(
            rt,
            &ctx.target.namespace,
            &ListQuery {
                limit: None,
                continue_token: None,
                ..q
            },
        )
        .await?;
    let mut items = Vec::new();
    for obj in &page.items {
        match ctx
            .app
            .registry
            .delete(rt, meta::namespace(obj), meta::name(obj), &opts)
            .await
        {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => items.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": rt.list_kind,
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": page.resource_version.to_string()},
        "items": items,
    });
    Ok(json_response(StatusCode::OK, &list))
}

/// `pods/<name>/binding`: assigns the pod to a node, once.
async fn binding(ctx: &Ctx<'_>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let rt = ctx.target.rt;
    let name = ctx.target.name.clone().unwrap_or_default();
    let raw = decode_body(&content_type(&ctx.headers), &body)?;
    let (b, _) = ctx
        .app
        .registry
        .admit("", "v1", "Binding", raw, FieldValidation::Ignore)?;
    let node = b
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &name,
            &[stead_api::FieldError::required("target.name", "")],
        ));
    }
    let opts = write_options(&ctx.query, &ctx.headers)?;
    ctx.app
        .registry
        .update_with(
            rt,
            &ctx.target.namespace,
            &name,
            Some("binding"),
            &opts,
            |cur| {
                let cur = cur.ok_or_else(|| ApiError::not_found("", "pods", &name))?;
                if meta::is_deleting(cur) {
                    return Err(ApiError::conflict(
                        "",
                        "pods",
                        &name,
                        "pod is being deleted, cannot be assigned to a host",
                    ));
                }
                let existing = cur
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !existing.is_empty() {
                    return Err(ApiError::conflict(
                        "",
                        "pods",
                        &name,
                        &format!("pod {name} is already assigned to node {existing:?}"),
                    ));
                }
                let mut next = cur.clone();
                next["spec"]["nodeName"] = json!(node);
                let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                "lastTransitionTime": crate::registry::now_rfc3339()});
                let conds = next["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut conds: Vec<Value> = conds
                    .into_iter()
                    .filter(|c| c["type"] != "PodScheduled")
                    .collect();
                conds.push(cond);
                next["status"]["conditions"] = json!(conds);
                Ok(next)
            },
        )
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// `pods/<name>/eviction`: a delete with the eviction's options (no disruption budgets yet).
async fn eviction(ctx: &Ctx<'_>, body: bytes::Bytes) -> Result<Response, ApiError> {
    let name = ctx.target.name.clone().unwrap_or_default();
    let raw = decode_body(&content_type(&ctx.headers), &body)?;
    let opts_body = raw
        .get("deleteOptions")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let opts = delete_options(&ctx.query, opts_body.to_string().as_bytes())?;
    ctx.app
        .registry
        .delete(ctx.target.rt, &ctx.target.namespace, &name, &opts)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}
