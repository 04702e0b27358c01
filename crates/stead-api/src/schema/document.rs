//! Assembling the per-group-version documents and the `/openapi/v3` index.
//!
//! A document is `{"openapi":"3.0.0","info":…,"paths":…,"components":{"schemas":…}}` where the
//! schemas are exactly the definitions reachable from the paths. Each document is serialized once
//! and hashed (upper-case hex SHA-512, as upstream's `serverRelativeURL` hashes); the index points at
//! `/openapi/v3/<gv>?hash=<hash>`, so a changed document gets a new URL and kubectl's HTTP cache
//! never serves a stale one. Start at [`build`].

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use super::generate::{KindDef, REF_PREFIX};
use super::paths::{paths_for, url_prefix};
use crate::resource::{RESOURCES, ResourceType};

/// The Kubernetes version the documents describe (matches the k8s-openapi feature).
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// One served group-version document, serialized.
pub(super) struct Document {
    /// `api/v1` or `apis/apps/v1`: the part of the URL after `/openapi/v3/`.
    pub path: String,
    pub bytes: Vec<u8>,
    pub hash: String,
}

/// All documents and the index that points at them.
pub(super) struct Documents {
    pub documents: Vec<Document>,
    pub index: Value,
}

/// Build every group-version document from the generated definitions.
pub(super) fn build(definitions: &Map<String, Value>, kinds: &[KindDef]) -> Documents {
    let names = |group: &str, version: &str, kind: &str| {
        kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)
            .map(|k| k.name.clone())
    };
    let mut documents = Vec::new();
    let mut index = Map::new();
    for (group, version) in group_versions() {
        let resources: Vec<&ResourceType> = RESOURCES
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .collect();
        let paths = paths_for(group, version, &resources, &names);
        let schemas = reachable(definitions, &Value::Object(paths.clone()));
        let doc = json!({
            "components": {"schemas": schemas},
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "openapi": "3.0.0",
            "paths": paths,
        });
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let hash = hex_sha512(&bytes);
        let path = url_prefix(group, version)
            .trim_start_matches('/')
            .to_string();
        index.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
        documents.push(Document { path, bytes, hash });
    }
    Documents {
        documents,
        index: json!({"paths": index}),
    }
}

/// The served group-versions in discovery order.
fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The definitions `root` refers to, directly or through other definitions.
pub(super) fn reachable(definitions: &Map<String, Value>, root: &Value) -> Map<String, Value> {
    let mut seen = BTreeSet::new();
    let mut pending = Vec::new();
    collect_refs(root, &mut pending);
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(def) = definitions.get(&name) {
            collect_refs(def, &mut pending);
        }
    }
    seen.into_iter()
        .filter_map(|name| definitions.get(&name).map(|d| (name, d.clone())))
        .collect()
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    if let Some(name) = v.as_str().and_then(|r| r.strip_prefix(REF_PREFIX)) {
                        out.push(name.to_string());
                    }
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn hex_sha512(bytes: &[u8]) -> String {
    let digest = Sha512::digest(bytes);
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(out, "{b:02X}");
    }
    out
}
