//! Field sets and `metadata.managedFields` entries, in upstream's `FieldsV1` encoding.
//!
//! A field set is a set of paths; a path is a list of elements in the `fieldsV1` spelling:
//! `f:<field>`, `k:<json of key fields>` (an element of a list keyed by map keys),
//! `v:<json value>` (an element of a set), `i:<index>` (an element of an atomic-less list without
//! keys). `fieldsV1` nests these as JSON objects: `{}` marks a member leaf, `".": {}` marks a node
//! that is itself a member and also has members below it.
//!
//! Two walks compute sets from objects (structured-merge-diff semantics, simplified):
//! [`applied_set`] is `ToFieldSet` of an applied configuration (leaves, list elements, map
//! entries, empty maps); [`changed_set`] is what a write added or modified relative to the old
//! object (upstream `Compare`'s `Added ∪ Modified`).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::schema_walk::Schema;

/// One path element in `fieldsV1` spelling (`f:spec`, `k:{"name":"nginx"}`, `v:"x"`, `i:0`).
pub type PathElement = String;
/// A path from the object root.
pub type FieldPath = Vec<PathElement>;
/// A set of paths.
pub type FieldSet = BTreeSet<FieldPath>;

/// Paths upstream never records (`stripmeta.go`): type and identity metadata.
const STRIPPED: &[&[&str]] = &[
    &["f:apiVersion"],
    &["f:kind"],
    &["f:metadata"],
    &["f:metadata", "f:name"],
    &["f:metadata", "f:namespace"],
    &["f:metadata", "f:creationTimestamp"],
    &["f:metadata", "f:selfLink"],
    &["f:metadata", "f:uid"],
    &["f:metadata", "f:clusterName"],
    &["f:metadata", "f:generation"],
    &["f:metadata", "f:managedFields"],
    &["f:metadata", "f:resourceVersion"],
];

/// Removes the paths upstream strips from every field set.
pub fn strip_meta(set: &mut FieldSet) {
    for p in STRIPPED {
        let p: FieldPath = p.iter().map(|s| s.to_string()).collect();
        set.remove(&p);
    }
}

/// How a list is owned and merged.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    /// Owned and replaced as one value.
    Atomic,
    /// A set of scalars; elements are `v:<value>`.
    Set,
    /// Elements identified by these key fields (with the schema default used when an element
    /// omits one, like `protocol: TCP` for ports); elements are `k:{…}`.
    Map(Vec<(String, Option<Value>)>),
}

/// The list kind of a field, as upstream's schema conversion decides it: `x-kubernetes-list-type`
/// first, then a `merge` patch strategy (with a merge key → map, without → set), else atomic.
pub fn list_kind(schema: &Schema) -> ListKind {
    match schema.list_type() {
        Some("atomic") => return ListKind::Atomic,
        Some("set") => return ListKind::Set,
        Some("map") => {
            return ListKind::Map(
                schema
                    .list_map_keys()
                    .iter()
                    .map(|k| keyed(schema, k))
                    .collect(),
            );
        }
        _ => {}
    }
    if schema.merges() {
        return match schema.merge_key() {
            Some(k) => ListKind::Map(vec![keyed(schema, k)]),
            None => ListKind::Set,
        };
    }
    ListKind::Atomic
}

fn keyed(schema: &Schema, key: &str) -> (String, Option<Value>) {
    let default = schema
        .items()
        .field(key)
        .default_value()
        .filter(|d| !d.is_null())
        .cloned();
    (key.to_string(), default)
}

/// The path element naming `item` (at `index`) in a list of the given kind.
pub fn item_element(kind: &ListKind, item: &Value, index: usize) -> PathElement {
    match kind {
        ListKind::Set => format!("v:{item}"),
        ListKind::Map(keys) => {
            let mut fields: Vec<(&String, &Value)> = keys
                .iter()
                .filter_map(|(k, default)| {
                    item.get(k.as_str()).or(default.as_ref()).map(|v| (k, v))
                })
                .collect();
            if fields.is_empty() {
                return format!("i:{index}");
            }
            fields.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String((*k).clone())))
                .collect();
            format!("k:{{{}}}", body.join(","))
        }
        ListKind::Atomic => format!("i:{index}"),
    }
}

/// Renders a path the way conflicts print it: `.spec.template.spec.containers[name="nginx"].image`.
pub fn render_path(path: &[PathElement]) -> String {
    let mut out = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            let parts: Vec<String> = match serde_json::from_str::<Map<String, Value>>(k) {
                Ok(m) => m.iter().map(|(name, v)| format!("{name}={v}")).collect(),
                Err(_) => vec![k.to_string()],
            };
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = pe.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

/// The child of `v` named by a path element, if present.
pub fn child<'a>(v: &'a Value, pe: &str, kind: Option<&ListKind>) -> Option<&'a Value> {
    if let Some(f) = pe.strip_prefix("f:") {
        return v.get(f);
    }
    let items = v.as_array()?;
    if let Some(i) = pe.strip_prefix("i:") {
        return items.get(i.parse::<usize>().ok()?);
    }
    let kind = kind?;
    items
        .iter()
        .enumerate()
        .find(|(i, item)| item_element(kind, item, *i) == pe)
        .map(|(_, item)| item)
}

/// `ToFieldSet` of an applied configuration: every scalar leaf, atomic value, list element, map
/// entry, empty map and `null`.
pub fn applied_set(applied: &Value, schema: Schema) -> FieldSet {
    let mut out = FieldSet::new();
    walk_applied(applied, schema, &mut Vec::new(), &mut out);
    strip_meta(&mut out);
    out
}

fn walk_applied(v: &Value, schema: Schema, path: &mut FieldPath, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !schema.is_atomic_map() => {
            if m.is_empty() {
                out.insert(path.clone());
            }
            for (k, child) in m {
                path.push(format!("f:{k}"));
                walk_applied(child, schema.field(k), path, out);
                if !schema.is_struct() {
                    out.insert(path.clone());
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let kind = list_kind(&schema);
            if kind == ListKind::Atomic {
                out.insert(path.clone());
                return;
            }
            for (i, item) in items.iter().enumerate() {
                path.push(item_element(&kind, item, i));
                walk_applied(item, schema.items(), path, out);
                out.insert(path.clone());
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// What a write from `old` to `new` added or modified (upstream `Compare`: `Added ∪ Modified`).
/// `old = None` is a create, compared against an empty object in which non-pointer structs
/// (`default: {}` in the schema) already exist, as upstream's typed empty object does.
pub fn changed_set(old: Option<&Value>, new: &Value, schema: Schema) -> FieldSet {
    let mut out = FieldSet::new();
    walk_changed(old, true, new, schema, true, &mut Vec::new(), &mut out);
    strip_meta(&mut out);
    out
}

/// What a write from `old` to `new` removed (upstream `Compare`: `Removed`).
pub fn removed_set(old: &Value, new: &Value, schema: Schema) -> FieldSet {
    let mut out = FieldSet::new();
    walk_changed(
        Some(new),
        true,
        old,
        schema,
        false,
        &mut Vec::new(),
        &mut out,
    );
    strip_meta(&mut out);
    out
}

/// Walks `new`; records nodes absent from `old` (and, when `modified` is set, leaves whose value
/// differs). `present` says whether the node exists on the old side even when `old` is `None`.
fn walk_changed(
    old: Option<&Value>,
    present: bool,
    new: &Value,
    schema: Schema,
    modified: bool,
    path: &mut FieldPath,
    out: &mut FieldSet,
) {
    let exists = old.is_some() || present;
    match new {
        Value::Object(m) if !schema.is_atomic_map() => {
            if !exists {
                out.insert(path.clone());
            }
            for (k, child) in m {
                let child_schema = schema.field(k);
                let child_old = old.and_then(|o| o.get(k));
                let child_present = exists && child_schema.always_present();
                path.push(format!("f:{k}"));
                walk_changed(
                    child_old,
                    child_present,
                    child,
                    child_schema,
                    modified,
                    path,
                    out,
                );
                path.pop();
            }
        }
        Value::Array(items) if list_kind(&schema) != ListKind::Atomic => {
            let kind = list_kind(&schema);
            for (i, item) in items.iter().enumerate() {
                let pe = item_element(&kind, item, i);
                let old_item = old.and_then(|o| child(o, &pe, Some(&kind)));
                path.push(pe);
                if old_item.is_none() {
                    out.insert(path.clone());
                }
                walk_changed(old_item, false, item, schema.items(), modified, path, out);
                path.pop();
            }
        }
        _ => match old {
            None => {
                out.insert(path.clone());
            }
            Some(o) if modified && o != new => {
                out.insert(path.clone());
            }
            _ => {}
        },
    }
}

/// Decodes a `fieldsV1` object into a set of paths.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    decode(v, &mut Vec::new(), &mut out);
    out
}

fn decode(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        path.push(k.clone());
        if child.as_object().is_some_and(Map::is_empty) {
            out.insert(path.clone());
        } else {
            decode(child, path, out);
        }
        path.pop();
    }
}

/// Encodes a set of paths as a `fieldsV1` object.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            let entry = node.entry(pe.clone()).or_insert_with(|| json!({}));
            node = match entry {
                Value::Object(m) => m,
                _ => unreachable_object(entry),
            };
        }
        if !path.is_empty() && !node.is_empty() {
            node.insert(".".into(), json!({}));
        }
    }
    // A member that later gained children needs its "." marker.
    mark_members(&mut root, set, &mut Vec::new());
    Value::Object(root)
}

fn unreachable_object(v: &mut Value) -> &mut Map<String, Value> {
    *v = json!({});
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just assigned an object"),
    }
}

fn mark_members(node: &mut Map<String, Value>, set: &FieldSet, path: &mut FieldPath) {
    for (k, child) in node.iter_mut() {
        if k == "." {
            continue;
        }
        path.push(k.clone());
        if let Value::Object(c) = child {
            let has_children = c.keys().any(|ck| ck != ".");
            if has_children && set.contains(path.as_slice()) {
                c.insert(".".into(), json!({}));
            }
            mark_members(c, set, path);
        }
        path.pop();
    }
}

/// Whether `set` contains `path` or any path below it.
pub fn owns_at_or_below(set: &FieldSet, path: &[PathElement]) -> bool {
    set.range(path.to_vec()..)
        .next()
        .is_some_and(|p| p.starts_with(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::test_schemas::{STS, schemas};

    #[test]
    fn fields_v1_round_trips_with_dot_markers_for_members_with_children() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                       "f:spec": {"f:template": {"f:spec": {"f:containers": {
                           "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}});
        let set = from_fields_v1(&v);
        assert!(set.contains(&vec!["f:metadata".to_string(), "f:labels".to_string()]));
        assert_eq!(set.len(), 5);
        assert_eq!(to_fields_v1(&set), v);
    }

    #[test]
    fn applied_set_holds_leaves_list_elements_and_map_entries() {
        let d = schemas();
        let applied = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
        let set = applied_set(&applied, Schema::root(&d, STS));
        assert_eq!(
            to_fields_v1(&set),
            json!({"f:metadata": {"f:labels": {"f:app": {}}},
                   "f:spec": {"f:replicas": {}, "f:selector": {},
                     "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}}}}}}})
        );
    }

    #[test]
    fn a_create_marks_new_maps_but_not_non_pointer_structs() {
        // Ref: real kubectl-create managedFields: `f:labels: {".": {}, …}`, `f:spec` without ".".
        let d = schemas();
        let new = json!({"metadata": {"name": "web", "labels": {"app": "web"}},
                         "spec": {"replicas": 1, "updateStrategy": {"rollingUpdate": {"partition": 0}}}});
        let set = changed_set(None, &new, Schema::root(&d, STS));
        assert_eq!(
            to_fields_v1(&set),
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                   "f:spec": {"f:replicas": {}, "f:updateStrategy": {"f:rollingUpdate": {".": {}, "f:partition": {}}}}})
        );
    }

    #[test]
    fn paths_render_like_structured_merge_diff() {
        let p: FieldPath = [
            "f:spec",
            "f:containers",
            "k:{\"name\":\"nginx\"}",
            "f:image",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(render_path(&p), ".spec.containers[name=\"nginx\"].image");
        let f: FieldPath = ["f:metadata", "f:finalizers", "v:\"x\""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(render_path(&f), ".metadata.finalizers[=\"x\"]");
    }
}
