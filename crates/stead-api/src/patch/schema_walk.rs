//! Walking an OpenAPI v3 `components.schemas` map to learn how each field patches and merges.
//!
//! A [`Schema`] is a cursor on one field: the schema object written at the field (which carries
//! `x-kubernetes-patch-strategy` and friends) plus the definition it resolves to through `$ref` or
//! `allOf: [{$ref}]` (which carries `properties`, `additionalProperties`, `x-kubernetes-map-type`).
//! An unknown cursor (no schema, a field not in the definition) answers "no strategy" everywhere,
//! so callers fall back to JSON-merge semantics for maps and replacement for lists.

use serde_json::{Map, Value};

const REF_PREFIX: &str = "#/components/schemas/";
/// How many `$ref` hops to follow before giving up (guards against reference cycles).
const MAX_REF_HOPS: usize = 16;

/// A cursor on one field's schema.
#[derive(Clone, Copy)]
pub struct Schema<'a> {
    defs: &'a Map<String, Value>,
    /// The schema object written where the field is declared.
    raw: Option<&'a Map<String, Value>>,
    /// The definition `raw` resolves to (equal to `raw` when it has no reference).
    resolved: Option<&'a Map<String, Value>>,
    /// The definition name, when reached through a reference (`io.k8s.api.core.v1.PodSpec`).
    name: Option<&'a str>,
}

impl<'a> Schema<'a> {
    /// The cursor on a top-level definition (`io.k8s.api.apps.v1.StatefulSet`); unknown if absent.
    pub fn root(defs: &'a Map<String, Value>, name: &'a str) -> Self {
        match defs.get(name).and_then(Value::as_object) {
            Some(def) => Schema {
                defs,
                raw: Some(def),
                resolved: Some(def),
                name: Some(name),
            },
            None => Schema::unknown(defs),
        }
    }

    /// A cursor that knows nothing.
    pub fn unknown(defs: &'a Map<String, Value>) -> Self {
        Schema {
            defs,
            raw: None,
            resolved: None,
            name: None,
        }
    }

    fn at(defs: &'a Map<String, Value>, raw: &'a Value) -> Self {
        let Some(raw) = raw.as_object() else {
            return Schema::unknown(defs);
        };
        let (resolved, name) = resolve(defs, raw);
        Schema {
            defs,
            raw: Some(raw),
            resolved: Some(resolved),
            name,
        }
    }

    /// Whether anything is known about this field.
    pub fn is_known(&self) -> bool {
        self.raw.is_some()
    }

    /// Whether the definition lists `properties` (a Go struct upstream).
    pub fn is_struct(&self) -> bool {
        self.resolved
            .is_some_and(|r| r.get("properties").is_some_and(Value::is_object))
    }

    /// The Go struct name upstream would print (`PodSpec`), from the definition name.
    pub fn struct_name(&self) -> &str {
        self.name
            .map(|n| n.rsplit('.').next().unwrap_or(n))
            .unwrap_or("")
    }

    /// The schema of a named field: a declared property, else the `additionalProperties` value
    /// schema of a map, else unknown.
    pub fn field(&self, name: &str) -> Schema<'a> {
        let Some(resolved) = self.resolved else {
            return Schema::unknown(self.defs);
        };
        if let Some(prop) = resolved.get("properties").and_then(|p| p.get(name)) {
            return Schema::at(self.defs, prop);
        }
        match resolved.get("additionalProperties") {
            Some(v @ Value::Object(_)) => Schema::at(self.defs, v),
            _ => Schema::unknown(self.defs),
        }
    }

    /// Whether `name` is a declared property of a struct definition (maps accept any key).
    pub fn declares(&self, name: &str) -> bool {
        match self.resolved {
            Some(r) if self.is_struct() => {
                r.get("properties").is_some_and(|p| p.get(name).is_some())
            }
            _ => true,
        }
    }

    /// The element schema of an array.
    pub fn items(&self) -> Schema<'a> {
        match self.resolved.and_then(|r| r.get("items")) {
            Some(items) => Schema::at(self.defs, items),
            None => Schema::unknown(self.defs),
        }
    }

    /// Whether the map is a key → value map (`additionalProperties`), like `labels`.
    pub fn is_map(&self) -> bool {
        !self.is_struct()
            && self
                .resolved
                .is_some_and(|r| r.get("additionalProperties").is_some_and(Value::is_object))
    }

    /// An extension string, looked up on the field first, then on its definition.
    fn ext(&self, key: &str) -> Option<&'a str> {
        self.raw
            .and_then(|r| r.get(key))
            .or_else(|| self.resolved.and_then(|r| r.get(key)))
            .and_then(Value::as_str)
    }

    /// `x-kubernetes-patch-strategy` contains `merge`.
    pub fn merges(&self) -> bool {
        self.strategies().any(|s| s == "merge")
    }

    /// `x-kubernetes-patch-strategy` is `replace` (rare; makes a map replace wholesale).
    pub fn replaces(&self) -> bool {
        self.strategies().any(|s| s == "replace")
    }

    fn strategies(&self) -> impl Iterator<Item = &'a str> {
        self.ext("x-kubernetes-patch-strategy")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
    }

    /// `x-kubernetes-patch-merge-key`.
    pub fn merge_key(&self) -> Option<&'a str> {
        self.ext("x-kubernetes-patch-merge-key")
    }

    /// `x-kubernetes-list-type` (`atomic`, `set`, `map`).
    pub fn list_type(&self) -> Option<&'a str> {
        self.ext("x-kubernetes-list-type")
    }

    /// `x-kubernetes-list-map-keys`.
    pub fn list_map_keys(&self) -> Vec<&'a str> {
        let keys = self
            .raw
            .and_then(|r| r.get("x-kubernetes-list-map-keys"))
            .or_else(|| {
                self.resolved
                    .and_then(|r| r.get("x-kubernetes-list-map-keys"))
            });
        match keys {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// `x-kubernetes-map-type: atomic` (the object is owned and replaced as one value).
    pub fn is_atomic_map(&self) -> bool {
        self.ext("x-kubernetes-map-type") == Some("atomic")
    }

    /// The field's declared `default`, if any.
    pub fn default_value(&self) -> Option<&'a Value> {
        self.raw.and_then(|r| r.get("default"))
    }

    /// Whether the field declares `default: {}` — upstream's marker for a non-pointer struct,
    /// which is always present in a decoded object.
    pub fn always_present(&self) -> bool {
        self.raw
            .and_then(|r| r.get("default"))
            .is_some_and(|d| d.as_object().is_some_and(Map::is_empty))
    }
}

/// Follows `$ref` and single-element `allOf` wrappers to the definition.
fn resolve<'a>(
    defs: &'a Map<String, Value>,
    mut cur: &'a Map<String, Value>,
) -> (&'a Map<String, Value>, Option<&'a str>) {
    let mut name = None;
    for _ in 0..MAX_REF_HOPS {
        let target = cur
            .get("$ref")
            .and_then(Value::as_str)
            .or_else(|| match cur.get("allOf") {
                Some(Value::Array(all)) if all.len() == 1 => {
                    all[0].get("$ref").and_then(Value::as_str)
                }
                _ => None,
            });
        let Some(def_name) = target.and_then(|t| t.strip_prefix(REF_PREFIX)) else {
            break;
        };
        let Some((key, def)) = defs.get_key_value(def_name) else {
            break;
        };
        let Some(def) = def.as_object() else { break };
        name = Some(key.as_str());
        cur = def;
    }
    (cur, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Map<String, Value> {
        json!({
            "a.PodSpec": {"type": "object", "properties": {
                "containers": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/a.Container"}], "default": {}},
                               "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "volumes": {"type": "array", "items": {"$ref": "#/components/schemas/a.Volume"},
                            "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge,retainKeys"},
                "nodeSelector": {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
            }},
            "a.Container": {"type": "object", "properties": {"name": {"type": "string"}}},
            "a.Volume": {"type": "object", "properties": {"name": {"type": "string"}}}
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn fields_resolve_through_all_of_references_and_keep_their_extensions() {
        let d = defs();
        let spec = Schema::root(&d, "a.PodSpec");
        let containers = spec.field("containers");
        assert!(containers.merges());
        assert_eq!(containers.merge_key(), Some("name"));
        let item = containers.items();
        assert!(item.is_struct());
        assert_eq!(item.struct_name(), "Container");
        assert!(item.always_present());
        assert!(spec.field("volumes").merges());
        assert!(!spec.field("nope").is_known());
        assert!(!spec.declares("nope"));
        assert!(spec.field("nodeSelector").is_map());
    }
}
