//! The OpenAPI v3 documents stead serves, generated from the k8s-openapi types, and schema walks.
//!
//! kubectl needs `/openapi/v3` for three things: to learn that the server validates fields
//! (`fieldValidation` on each kind's PATCH operation), to build strategic merge patches (the
//! `x-kubernetes-patch-*` extensions of the component schemas), and for `kubectl explain`
//! (descriptions and `x-kubernetes-group-version-kind` on top-level kinds). The server uses the same
//! schemas for `fieldValidation` ([`unknown_fields`], [`prune_unknown_fields`]) and its strategic
//! merge patch navigates [`definitions`].
//!
//! # Layout
//! - [`generate`](self::generate): schemars → definitions, list kinds, GVK extensions. Start here.
//! - [`extensions`](self::extensions): the table of patch strategies, merge keys and list types.
//! - [`paths`](self::paths): the operations of each resource, as upstream declares them.
//! - [`document`](self::document): per-group-version documents, reachable schemas, index, hashes.
//! - [`walk`](self::walk): unknown-field detection and pruning.
//! - [`openapi_v2`](self::openapi_v2): the minimal protobuf `/openapi/v2` kubectl 1.27–1.28 need.
//!
//! Everything is generated once, lazily, on first use (server start does not pay for it).

mod document;
mod extensions;
mod generate;
mod openapi_v2;
mod paths;
mod walk;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use serde_json::{Map, Value};

pub use document::KUBERNETES_VERSION;
use generate::KindDef;

/// The generated definitions and kinds: what the server's own schema walks need.
struct Generated {
    definitions: Map<String, Value>,
    kinds: Vec<KindDef>,
}

fn generated() -> &'static Generated {
    static GENERATED: OnceLock<Generated> = OnceLock::new();
    GENERATED.get_or_init(|| {
        let g = generate::generate();
        Generated {
            definitions: g.definitions,
            kinds: g.kinds,
        }
    })
}

/// The serialized `/openapi/v3` documents, built only when a client asks for them.
fn documents() -> &'static document::Documents {
    static DOCUMENTS: OnceLock<document::Documents> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let g = generated();
        document::build(&g.definitions, &g.kinds)
    })
}

/// The `/openapi/v3` index: `{"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=…"},…}}`.
pub fn openapi_index() -> &'static Value {
    &documents().index
}

/// The document for `api/v1`, `apis/apps/v1`, … (the part of the URL after `/openapi/v3/`) as
/// serialized JSON and its hash (the `hash` query value the index hands out, usable as an ETag);
/// `None` for paths stead does not serve.
pub fn openapi_document(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = path.trim_matches('/');
    documents()
        .documents
        .iter()
        .find(|d| d.path == path)
        .map(|d| (d.bytes.as_slice(), d.hash.as_str()))
}

/// The protobuf `/openapi/v2` document (operations and their `fieldValidation` parameter only).
pub fn openapi_v2_document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(openapi_v2::document)
}

/// Every component schema of every served group-version, by upstream name
/// (`io.k8s.api.core.v1.PodSpec`), with the patch and list extensions.
pub fn definitions() -> &'static Map<String, Value> {
    &generated().definitions
}

/// The definition name of a kind: `("apps", "v1", "StatefulSet")` → `io.k8s.api.apps.v1.StatefulSet`.
/// Knows the served kinds, their `…List` kinds, `autoscaling/v1` `Scale`, `policy/v1` `Eviction`,
/// `v1` `Binding` and `v1` `Status`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    generated()
        .kinds
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
        .map(|k| k.name.as_str())
}

/// The paths of the fields of `obj` that the schema `root` (a definition name) does not know, in
/// upstream's strict-decoding format: `spec.template.spec.containers[0].bogus`, `bogusField`.
/// Map-typed fields (`metadata.labels`) accept any key. An unknown `root` yields nothing.
pub fn unknown_fields(root: &str, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(schema) = definitions().get(root) {
        walk::collect(definitions(), schema, obj, "", &mut out);
    }
    out
}

/// Remove the fields [`unknown_fields`] would report (`fieldValidation=Ignore|Warn`).
pub fn prune_unknown_fields(root: &str, obj: &mut Value) {
    if let Some(schema) = definitions().get(root) {
        walk::prune(definitions(), schema, obj);
    }
}
