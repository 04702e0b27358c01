//! Server-side apply (`application/apply-patch+yaml`) and ownership tracking for ordinary writes,
//! recorded in `metadata.managedFields` like upstream's field manager.
//!
//! Start at [`server_side_apply`]: merge the applied configuration into the live object, drop
//! fields this manager applied before but no longer applies (unless someone else owns them),
//! refuse (or with `force`, take over) fields another manager owns with a different value, and
//! record the applier's field set. [`record_update`] is the `operation: Update` side for
//! POST/PUT/PATCH: the writer gains every field it added or changed, others lose them.
//!
//! Simplifications against structured-merge-diff: no version conversion (all managers are read
//! in the request's version), no union normalization, no `ancient-changes` manager cap, no
//! subresource attribution, and merged associative lists keep live order with new items last.

use serde_json::{Map, Value, json};

use super::PatchError;
use super::error::Conflict;
use super::managed_fields::{
    FieldPath, FieldSet, ListKind, applied_set, changed_set, child, from_fields_v1, item_element,
    list_kind, owns_at_or_below, removed_set, render_path, to_fields_v1,
};
use super::schema_walk::Schema;

/// Who applies, and how.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// `fieldManager` (required for apply upstream).
    pub manager: &'a str,
    /// `force=true`: take ownership of conflicting fields instead of failing.
    pub force: bool,
    /// The request's `apiVersion` (`apps/v1`), recorded in the entry.
    pub api_version: &'a str,
    /// The request time, RFC 3339 with second precision (`2026-11-22T01:02:03Z`).
    pub now: &'a str,
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: String,
    set: FieldSet,
}

impl Entry {
    fn is_apply(&self) -> bool {
        self.operation == "Apply"
    }

    /// Upstream `printManager` on the manager identifier (which never carries the time).
    fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), to_fields_v1(&self.set));
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }
}

/// Applies `applied` as `req.manager`. `live = None` creates. Returns the new object with
/// `metadata.managedFields` updated; a no-op apply returns `live` unchanged.
///
/// The caller strips fields the endpoint resets (e.g. `status` on the main resource) from
/// `applied` first, and sets server-owned metadata (uid, resourceVersion, …) afterwards.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    req: &ApplyRequest,
    schemas: &Map<String, Value>,
    root: &str,
) -> Result<Value, PatchError> {
    let schema = Schema::root(schemas, root);
    let Value::Object(applied_map) = applied else {
        return Err(PatchError::ApplyInvalid(format!(
            "error decoding YAML: expected an object, got {}",
            short_kind(applied)
        )));
    };
    if applied_map
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|mf| !mf.is_null())
    {
        return Err(PatchError::ApplyInvalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let live_obj = live
        .map(without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let mut entries = live.map(read_entries).unwrap_or_default();
    if live.is_some() && entries.is_empty() {
        // Upstream gives fields of an object nobody tracked yet to "before-first-apply".
        let set = changed_set(None, &live_obj, schema);
        if !set.is_empty() {
            entries.push(Entry {
                manager: "before-first-apply".into(),
                operation: "Update".into(),
                api_version: req.api_version.into(),
                time: None,
                subresource: String::new(),
                set,
            });
        }
    }

    let new_set = applied_set(applied, schema);
    let mine = |e: &Entry| e.is_apply() && e.manager == req.manager && e.subresource.is_empty();
    let previous = entries.iter().find(|e| mine(e)).cloned();

    let mut merged = merge(&live_obj, applied, schema);
    if let Some(prev) = &previous {
        let others: Vec<&FieldSet> = entries
            .iter()
            .filter(|e| !mine(e))
            .map(|e| &e.set)
            .collect();
        let dropped: Vec<&FieldPath> = prev.set.difference(&new_set).collect();
        for path in dropped.into_iter().rev() {
            let kept = owns_at_or_below(&new_set, path)
                || others.iter().any(|s| owns_at_or_below(s, path));
            if !kept {
                remove_path(&mut merged, path, schema);
            }
        }
    }

    let changed = changed_set(Some(&live_obj), &merged, schema);
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !mine(e)) {
        for path in e.set.intersection(&changed) {
            conflicts.push(Conflict {
                manager: e.printed(),
                field: render_path(path),
            });
        }
    }
    if !conflicts.is_empty() && !req.force {
        conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
        return Err(PatchError::ApplyConflict(conflicts));
    }
    let removed = removed_set(&live_obj, &merged, schema);
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        e.set = e
            .set
            .difference(&changed)
            .filter(|p| !removed.contains(*p))
            .cloned()
            .collect();
    }

    let unchanged = live.is_some() && merged == live_obj;
    let time = match (&previous, unchanged) {
        (Some(p), true) => p.time.clone(),
        _ => Some(req.now.to_string()),
    };
    entries.retain(|e| !mine(e));
    entries.push(Entry {
        manager: req.manager.into(),
        operation: "Apply".into(),
        api_version: req.api_version.into(),
        time,
        subresource: String::new(),
        set: new_set,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Records a non-apply write (POST/PUT/PATCH) by `manager` as `operation: Update`: the manager
/// gains every field the write added or changed, every manager loses changed and removed fields.
/// `old = None` for a create. Managed fields written explicitly in `new` (e.g. kubectl's
/// client-side-apply migration patch) are taken as the starting point, as upstream does.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    now: &str,
    schemas: &Map<String, Value>,
    root: &str,
) {
    let schema = Schema::root(schemas, root);
    let supplied = read_entries(new);
    let mut entries = if supplied.is_empty() {
        old.map(read_entries).unwrap_or_default()
    } else {
        supplied
    };
    let old_obj = old.map(without_managed_fields);
    let new_obj = without_managed_fields(new);
    let changed = changed_set(old_obj.as_ref(), &new_obj, schema);
    let removed = match &old_obj {
        Some(o) => removed_set(o, &new_obj, schema),
        None => FieldSet::new(),
    };
    let mine = |e: &Entry| {
        !e.is_apply()
            && e.manager == manager
            && e.api_version == api_version
            && e.subresource.is_empty()
    };
    for e in entries.iter_mut() {
        e.set = e
            .set
            .iter()
            .filter(|p| !changed.contains(*p) && !removed.contains(*p))
            .cloned()
            .collect();
    }
    if !changed.is_empty() {
        let mut set = changed;
        if let Some(prev) = entries.iter().find(|e| mine(e)) {
            set.extend(prev.set.iter().cloned());
        }
        entries.retain(|e| !mine(e));
        entries.push(Entry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: Some(now.into()),
            subresource: String::new(),
            set,
        });
    }
    write_entries(new, entries);
}

/// Merges an applied configuration into the live object (structured-merge-diff `Merge`): maps
/// merge, keyed lists and sets merge element-wise, atomic lists and scalars take the applied value.
fn merge(live: &Value, applied: &Value, schema: Schema) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !schema.is_atomic_map() => {
            let mut out = l.clone();
            for (k, av) in a {
                if av.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, av, schema.field(k)),
                    None => without_nulls(av),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => {
            let kind = list_kind(&schema);
            if kind == ListKind::Atomic {
                return without_nulls(applied);
            }
            let mut out = l.clone();
            for (i, item) in a.iter().enumerate() {
                let pe = item_element(&kind, item, i);
                let found = out
                    .iter()
                    .enumerate()
                    .position(|(j, o)| item_element(&kind, o, j) == pe);
                match found {
                    Some(j) => out[j] = merge(&out[j], item, schema.items()),
                    None => out.push(without_nulls(item)),
                }
            }
            Value::Array(out)
        }
        _ => without_nulls(applied),
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Removes the value at `path` from `obj`, if present; maps and lists emptied by the removal
/// are removed too (structured-merge-diff `RemoveItems` keeps no empty containers).
fn remove_path(obj: &mut Value, path: &[String], schema: Schema) {
    remove_at(obj, path, schema);
}

/// Returns whether `node` became an empty container because of the removal.
fn remove_at(node: &mut Value, path: &[String], schema: Schema) -> bool {
    let Some((pe, rest)) = path.split_first() else {
        return false;
    };
    let kind = list_kind(&schema);
    let (idx, child_schema) = match pe.strip_prefix("f:") {
        Some(f) => (None, schema.field(f)),
        None => match index_in(node, pe, &kind) {
            Some(i) => (Some(i), schema.items()),
            None => return false,
        },
    };
    let remove_here = if rest.is_empty() {
        true
    } else {
        let next = match (idx, pe.strip_prefix("f:")) {
            (Some(i), _) => node.as_array_mut().and_then(|a| a.get_mut(i)),
            (None, Some(f)) => node.get_mut(f),
            (None, None) => None,
        };
        match next {
            Some(n) => remove_at(n, rest, child_schema),
            None => return false,
        }
    };
    if !remove_here {
        return false;
    }
    match (idx, pe.strip_prefix("f:"), node) {
        (Some(i), _, Value::Array(a)) => {
            a.remove(i);
            a.is_empty()
        }
        (None, Some(f), Value::Object(m)) => {
            m.remove(f);
            m.is_empty()
        }
        _ => false,
    }
}

fn index_in(node: &Value, pe: &str, kind: &ListKind) -> Option<usize> {
    let target = child(node, pe, Some(kind))?;
    node.as_array()?
        .iter()
        .position(|v| std::ptr::eq(v, target))
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let text = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    list.iter()
        .map(|e| Entry {
            manager: text(e, "manager"),
            operation: text(e, "operation"),
            api_version: text(e, "apiVersion"),
            time: e.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: text(e, "subresource"),
            set: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
        })
        .collect()
}

/// Writes entries back in upstream's order (operation, time, manager, subresource, apiVersion),
/// dropping empty ones.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.subresource,
            &a.api_version,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.subresource,
                &b.api_version,
            ))
    });
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

fn short_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Object(_) => "an object",
    }
}
