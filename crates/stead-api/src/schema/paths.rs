//! The `paths` section of a group-version document: one entry per URL, operations as upstream.
//!
//! kubectl reads two things here: the PATCH operation tagged with a kind's
//! `x-kubernetes-group-version-kind` must list the `fieldValidation` query parameter (or kubectl
//! falls back to client-side validation, which needs `/openapi/v2`), and its `requestBody.content`
//! must list `application/strategic-merge-patch+json` (or kubectl does not use these schemas to
//! build strategic merge patches). Create-only reviews get a single POST path. Start at
//! [`paths_for`].

use serde_json::{Map, Value, json};

use super::generate::REF_PREFIX;
use crate::resource::{ResourceType, Subresource};

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];
const WATCH_CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/yaml",
];
const PATCH_CONTENT_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// Resolves (group, version, kind) to a definition name.
pub(super) type Names<'a> = &'a dyn Fn(&str, &str, &str) -> Option<String>;

/// `/api/v1` or `/apis/<group>/<version>`.
pub(super) fn url_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// All paths of one group-version.
pub(super) fn paths_for(
    group: &str,
    version: &str,
    resources: &[&ResourceType],
    names: Names<'_>,
) -> Map<String, Value> {
    let prefix = url_prefix(group, version);
    let ident = op_ident(group, version);
    let tag = format!("{}_{version}", tag_group(group));
    let mut paths = Map::new();
    paths.insert(
        format!("{prefix}/"),
        json!({"get": {
            "description": "get available resources",
            "operationId": format!("get{ident}APIResources"),
            "responses": responses(&[("200", "OK")], &format!("{META}APIResourceList"), CONTENT_TYPES),
            "tags": [tag],
        }}),
    );
    for r in resources {
        let Some(def) = names(r.group, r.version, r.kind) else {
            continue;
        };
        let list_def = format!("{def}List");
        let ctx = Ctx {
            r,
            ident: &ident,
            tag: &tag,
            gvk: gvk(r.group, r.version, r.kind),
        };
        if r.is_create_only() {
            let (path, entry) = review_path(&ctx, &prefix, &def);
            paths.insert(path, entry);
            continue;
        }
        let (collection, item) = if r.namespaced {
            paths.insert(
                format!("{prefix}/{}", r.plural),
                json!({
                    "get": ctx.op("list", "list or watch objects of kind", &format!("{}ForAllNamespaces", r.kind), "list",
                        list_params(), None, responses(&[("200", "OK")], &list_def, WATCH_CONTENT_TYPES)),
                    "parameters": [param("pretty")],
                }),
            );
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
                format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural),
            )
        } else {
            (
                format!("{prefix}/{}", r.plural),
                format!("{prefix}/{}/{{name}}", r.plural),
            )
        };
        let scope = if r.namespaced { "Namespaced" } else { "" };
        let scoped_kind = format!("{scope}{}", r.kind);
        let mut path_params = vec![param("pretty")];
        if r.namespaced {
            path_params.insert(0, param("namespace"));
        }
        paths.insert(
            collection,
            json!({
                "delete": ctx.op("delete", "delete collection of", &format!("Collection{scoped_kind}"), "deletecollection",
                    delete_collection_params(), Some(body(&format!("{META}DeleteOptions"))),
                    responses(&[("200", "OK")], &format!("{META}Status"), CONTENT_TYPES)),
                "get": ctx.op("list", "list or watch objects of kind", &scoped_kind, "list",
                    list_params(), None, responses(&[("200", "OK")], &list_def, WATCH_CONTENT_TYPES)),
                "parameters": path_params,
                "post": ctx.op("create", "create a", &scoped_kind, "post",
                    write_params(false), Some(body(&def)),
                    responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &def, CONTENT_TYPES)),
            }),
        );
        let mut item_params = vec![param("name"), param("pretty")];
        if r.namespaced {
            item_params.insert(1, param("namespace"));
        }
        paths.insert(
            item.clone(),
            json!({
                "delete": ctx.op("delete", "delete a", &scoped_kind, "delete",
                    delete_params(), Some(body(&format!("{META}DeleteOptions"))),
                    responses(&[("200", "OK"), ("202", "Accepted")], &format!("{META}Status"), CONTENT_TYPES)),
                "get": ctx.op("read", "read the specified", &scoped_kind, "get", vec![], None,
                    responses(&[("200", "OK")], &def, CONTENT_TYPES)),
                "parameters": item_params,
                "patch": ctx.patch_op("partially update the specified", &scoped_kind, &def),
                "put": ctx.put_op("replace the specified", &scoped_kind, &def),
            }),
        );
        for sub in r.subresources {
            if let Some(entry) =
                subresource_path(&ctx, sub, &scoped_kind, &def, item_params.clone(), names)
            {
                paths.insert(format!("{item}/{}", sub.name), entry);
            }
        }
    }
    paths
}

/// What every operation of one resource shares.
struct Ctx<'a> {
    r: &'a ResourceType,
    ident: &'a str,
    tag: &'a str,
    gvk: Value,
}

impl Ctx<'_> {
    /// One operation. `verb_prefix` + ident + `suffix` forms the operationId (`listAppsV1NamespacedStatefulSet`).
    #[allow(clippy::too_many_arguments)]
    fn op(
        &self,
        verb_prefix: &str,
        description: &str,
        suffix: &str,
        action: &str,
        parameters: Vec<Value>,
        request: Option<Value>,
        responses: Value,
    ) -> Value {
        self.op_with_gvk(
            verb_prefix,
            &format!("{description} {}", self.r.kind),
            suffix,
            action,
            parameters,
            request,
            responses,
            self.gvk.clone(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn op_with_gvk(
        &self,
        verb_prefix: &str,
        description: &str,
        suffix: &str,
        action: &str,
        parameters: Vec<Value>,
        request: Option<Value>,
        responses: Value,
        gvk: Value,
    ) -> Value {
        let mut op = json!({
            "description": description,
            "operationId": format!("{verb_prefix}{}{suffix}", self.ident),
            "responses": responses,
            "tags": [self.tag],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        });
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        if let Some(request) = request {
            op["requestBody"] = request;
        }
        op
    }

    fn patch_op_gvk(&self, description: &str, suffix: &str, def: &str, gvk: Value) -> Value {
        let content: Map<String, Value> = PATCH_CONTENT_TYPES
            .iter()
            .map(|ct| {
                (
                    ct.to_string(),
                    json!({"schema": {"$ref": format!("{REF_PREFIX}{META}Patch")}}),
                )
            })
            .collect();
        self.op_with_gvk(
            "patch",
            &format!("{description} {}", self.r.kind),
            suffix,
            "patch",
            write_params(true),
            Some(json!({"content": content, "required": true})),
            responses(&[("200", "OK"), ("201", "Created")], def, CONTENT_TYPES),
            gvk,
        )
    }

    fn patch_op(&self, description: &str, suffix: &str, def: &str) -> Value {
        self.patch_op_gvk(description, suffix, def, self.gvk.clone())
    }

    fn put_op_gvk(&self, description: &str, suffix: &str, def: &str, gvk: Value) -> Value {
        let mut request = body(def);
        request["required"] = json!(true);
        self.op_with_gvk(
            "replace",
            &format!("{description} {}", self.r.kind),
            suffix,
            "put",
            write_params(false),
            Some(request),
            responses(&[("200", "OK"), ("201", "Created")], def, CONTENT_TYPES),
            gvk,
        )
    }

    fn put_op(&self, description: &str, suffix: &str, def: &str) -> Value {
        self.put_op_gvk(description, suffix, def, self.gvk.clone())
    }
}

/// A review's one path: a POST on the collection, the write parameters on the path, as upstream
/// declares its create-only storages.
fn review_path(ctx: &Ctx<'_>, prefix: &str, def: &str) -> (String, Value) {
    let r = ctx.r;
    let (path, suffix, mut params) = if r.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
            format!("Namespaced{}", r.kind),
            vec![param("namespace")],
        )
    } else {
        (format!("{prefix}/{}", r.plural), r.kind.to_string(), vec![])
    };
    params.extend(write_params(false));
    params.push(param("pretty"));
    let entry = json!({
        "parameters": params,
        "post": ctx.op("create", "create a", &suffix, "post", vec![], Some(body(def)),
            responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], def, CONTENT_TYPES)),
    });
    (path, entry)
}

/// `…/{name}/status`, `…/{name}/scale` and the pod and namespace subresources.
fn subresource_path(
    ctx: &Ctx<'_>,
    sub: &Subresource,
    scoped_kind: &str,
    parent_def: &str,
    item_params: Vec<Value>,
    names: Names<'_>,
) -> Option<Value> {
    let group = sub.group.unwrap_or(ctx.r.group);
    let version = sub.version.unwrap_or(ctx.r.version);
    let sub_gvk = gvk(group, version, sub.kind);
    let suffix = format!("{scoped_kind}{}", capitalize(sub.name));
    let string_response = json!({"200": {"content": {"*/*": {"schema": {"type": "string"}}}, "description": "OK"}, "401": {"description": "Unauthorized"}});
    let entry = match sub.name {
        "status" | "scale" => {
            let def = if sub.name == "status" {
                parent_def.to_string()
            } else {
                names(group, version, sub.kind)?
            };
            let gvk_value = if sub.name == "status" {
                ctx.gvk.clone()
            } else {
                sub_gvk
            };
            json!({
                "get": ctx.op_with_gvk("read", &format!("read {} of the specified {}", sub.name, ctx.r.kind), &suffix, "get",
                    vec![], None, responses(&[("200", "OK")], &def, CONTENT_TYPES), gvk_value.clone()),
                "parameters": item_params,
                "patch": ctx.patch_op_gvk(&format!("partially update {} of the specified", sub.name), &suffix, &def, gvk_value.clone()),
                "put": ctx.put_op_gvk(&format!("replace {} of the specified", sub.name), &suffix, &def, gvk_value),
            })
        }
        "binding" | "eviction" => {
            let def = names(group, version, sub.kind)?;
            let mut params = item_params;
            params.extend(write_params(false));
            json!({
                "parameters": params,
                "post": ctx.op_with_gvk("create", &format!("create {} of a {}", sub.name, ctx.r.kind), &suffix, "post",
                    vec![], Some(body(&def)),
                    responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &def, CONTENT_TYPES), sub_gvk),
            })
        }
        "finalize" => {
            let mut params = item_params;
            params.extend(write_params(false));
            let mut request = body(parent_def);
            request["required"] = json!(true);
            json!({
                "parameters": params,
                "put": ctx.op_with_gvk("replace", &format!("replace finalize of the specified {}", ctx.r.kind), &suffix, "put",
                    vec![], Some(request),
                    responses(&[("200", "OK"), ("201", "Created")], parent_def, CONTENT_TYPES), ctx.gvk.clone()),
            })
        }
        "log" => {
            let mut params = item_params;
            params.extend(
                [
                    "container",
                    "follow",
                    "limitBytes",
                    "previous",
                    "sinceSeconds",
                    "tailLines",
                    "timestamps",
                ]
                .iter()
                .map(|n| param(n)),
            );
            let content: Map<String, Value> = [
                "application/json",
                "application/vnd.kubernetes.protobuf",
                "application/yaml",
                "text/plain",
            ]
            .iter()
            .map(|ct| (ct.to_string(), json!({"schema": {"type": "string"}})))
            .collect();
            json!({
                "get": ctx.op_with_gvk("read", &format!("read log of the specified {}", ctx.r.kind), &suffix, "get",
                    vec![], None, json!({"200": {"content": content, "description": "OK"}, "401": {"description": "Unauthorized"}}),
                    ctx.gvk.clone()),
                "parameters": params,
            })
        }
        // Connect subresources (attach, exec, portforward): GET and POST upgrade the connection.
        _ => {
            let mut params = item_params;
            params.retain(|p| p["name"] != "pretty");
            let extra: &[&str] = match sub.name {
                "exec" => &["command", "container", "stderr", "stdin", "stdout", "tty"],
                "attach" => &["container", "stderr", "stdin", "stdout", "tty"],
                "portforward" => &["ports"],
                _ => &[],
            };
            params.extend(extra.iter().map(|n| param(n)));
            let mut entry = Map::new();
            for (method, word) in [("get", "Get"), ("post", "Post")] {
                if sub
                    .verbs
                    .contains(&if method == "get" { "get" } else { "create" })
                {
                    entry.insert(
                        method.to_string(),
                        ctx.op_with_gvk(
                            "connect",
                            &format!(
                                "connect {} requests to {} of {}",
                                method.to_uppercase(),
                                sub.name,
                                ctx.r.kind
                            ),
                            &format!("{word}{suffix}"),
                            "connect",
                            vec![],
                            None,
                            string_response.clone(),
                            sub_gvk.clone(),
                        ),
                    );
                }
            }
            entry.insert("parameters".into(), Value::Array(params));
            Value::Object(entry)
        }
    };
    Some(entry)
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// `CoreV1`, `AppsV1`, `StorageV1`, `EventsV1`: the group part of upstream's operation ids.
fn op_ident(group: &str, version: &str) -> String {
    format!("{}{}", capitalize(&tag_group(group)), capitalize(version))
}

/// `core`, `apps`, `storage`: upstream's tag spelling of a group.
fn tag_group(group: &str) -> String {
    if group.is_empty() {
        "core".into()
    } else {
        group.split('.').next().unwrap_or(group).to_string()
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn responses(codes: &[(&str, &str)], def: &str, content_types: &[&str]) -> Value {
    let content: Map<String, Value> = content_types
        .iter()
        .map(|ct| {
            (
                ct.to_string(),
                json!({"schema": {"$ref": format!("{REF_PREFIX}{def}")}}),
            )
        })
        .collect();
    let mut out = Map::new();
    for (code, description) in codes {
        out.insert(
            code.to_string(),
            json!({"content": content, "description": description}),
        );
    }
    out.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

fn body(def: &str) -> Value {
    json!({"content": {"*/*": {"schema": {"$ref": format!("{REF_PREFIX}{def}")}}}})
}

fn list_params() -> Vec<Value> {
    [
        "allowWatchBookmarks",
        "continue",
        "fieldSelector",
        "labelSelector",
        "limit",
        "resourceVersion",
        "resourceVersionMatch",
        "sendInitialEvents",
        "timeoutSeconds",
        "watch",
    ]
    .iter()
    .map(|n| param(n))
    .collect()
}

fn delete_params() -> Vec<Value> {
    [
        "dryRun",
        "gracePeriodSeconds",
        "orphanDependents",
        "propagationPolicy",
    ]
    .iter()
    .map(|n| param(n))
    .collect()
}

fn delete_collection_params() -> Vec<Value> {
    [
        "continue",
        "dryRun",
        "fieldSelector",
        "gracePeriodSeconds",
        "labelSelector",
        "limit",
        "orphanDependents",
        "propagationPolicy",
        "resourceVersion",
        "resourceVersionMatch",
        "sendInitialEvents",
        "timeoutSeconds",
    ]
    .iter()
    .map(|n| param(n))
    .collect()
}

/// `dryRun`, `fieldManager`, `fieldValidation`, and for PATCH also `force`.
fn write_params(patch: bool) -> Vec<Value> {
    let mut names = vec!["dryRun", "fieldManager", "fieldValidation"];
    if patch {
        names.push("force");
    }
    names.into_iter().map(param).collect()
}

/// One parameter as upstream declares it.
fn param(name: &str) -> Value {
    let (location, ty, description) = match name {
        "name" => ("path", "string", "name of the resource"),
        "namespace" => (
            "path",
            "string",
            "object name and auth scope, such as for teams and projects",
        ),
        "pretty" => (
            "query",
            "string",
            "If 'true', then the output is pretty printed.",
        ),
        "dryRun" => (
            "query",
            "string",
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        ),
        "fieldManager" => (
            "query",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        "fieldValidation" => (
            "query",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: drops unknown fields silently. - Warn: drops unknown fields and sends a warning header for each. - Strict: fails the request on unknown or duplicate fields.",
        ),
        "force" => (
            "query",
            "boolean",
            "Force is going to \"force\" Apply requests. It must be unset for non-apply patch requests.",
        ),
        "gracePeriodSeconds" | "limit" | "timeoutSeconds" | "sinceSeconds" | "tailLines"
        | "limitBytes" => ("query", "integer", ""),
        "orphanDependents"
        | "allowWatchBookmarks"
        | "sendInitialEvents"
        | "watch"
        | "follow"
        | "previous"
        | "timestamps"
        | "stderr"
        | "stdin"
        | "stdout"
        | "tty" => ("query", "boolean", ""),
        "ports" => ("query", "integer", "List of ports to forward"),
        _ => ("query", "string", ""),
    };
    let mut p = json!({"in": location, "name": name, "schema": {"type": ty, "uniqueItems": true}});
    if !description.is_empty() {
        p["description"] = json!(description);
    }
    if location == "path" {
        p["required"] = json!(true);
    }
    p
}
