//! ControllerRevisions of a StatefulSet (spec §5.1, §5.2, §5.5): the template patch stored in
//! `data`, its hash and the revision name, equality, ordering, and reading a template back out.
//! Choosing current/update revisions and truncating history live in [`super::history`].
//!
//! Bit-compatibility: the hash covers the Go rendering of the patch, so [`revision_patch`] adds
//! the values Go's encoder emits but k8s-openapi omits (`metadata.creationTimestamp: null`,
//! `resources: {}` on every container) and drops what Go's `omitempty` drops (empty label,
//! annotation, request and limit maps). Other Go zero-value differences (for example a pointer
//! field explicitly set to its zero value inside an exotic volume source) are not reproduced;
//! the §5.2 vector and the defaulted templates the API server hands out are.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Map, Value};

use super::go_json;
use super::identity::controller_ref;
use super::spec;

/// Label on every revision carrying its hash (`controller.kubernetes.io/hash`).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// Errors reading or building revisions.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// The set's template could not be rendered as JSON.
    #[error("encode pod template: {0}")]
    Encode(#[source] serde_json::Error),
    /// A stored revision's `data` is not a `{"spec":{"template":…}}` patch.
    #[error("controllerrevision {name}: data has no spec.template")]
    NoTemplate {
        /// The revision's name.
        name: String,
    },
    /// A stored revision's template does not decode as a PodTemplateSpec.
    #[error("controllerrevision {name}: decode template: {source}")]
    Decode {
        /// The revision's name.
        name: String,
        /// The decode error.
        #[source]
        source: serde_json::Error,
    },
}

/// The revision patch (§5.1): `{"spec":{"template":<template with "$patch":"replace">}}` with
/// Go's zero values applied. Render it with [`go_json::encode`] for the stored bytes.
pub fn revision_patch(set: &StatefulSet) -> Result<Value, RevisionError> {
    let template = set
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut value = serde_json::to_value(&template).map_err(RevisionError::Encode)?;
    go_zero_values(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert("$patch".to_string(), Value::String("replace".to_string()));
    }
    let mut template_holder = Map::new();
    template_holder.insert("template".to_string(), value);
    let mut root = Map::new();
    root.insert("spec".to_string(), Value::Object(template_holder));
    Ok(Value::Object(root))
}

/// Makes a serialized PodTemplateSpec look like Go's rendering of the same struct.
fn go_zero_values(template: &mut Value) {
    let Value::Object(map) = template else { return };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        for key in ["labels", "annotations"] {
            drop_if_empty(meta, key);
        }
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
    if let Some(Value::Object(spec)) = map.get_mut("spec") {
        drop_if_empty(spec, "nodeSelector");
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            let Some(Value::Array(containers)) = spec.get_mut(list) else {
                continue;
            };
            for container in containers {
                let Value::Object(container) = container else {
                    continue;
                };
                let resources = container
                    .entry("resources")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(resources) = resources {
                    drop_if_empty(resources, "limits");
                    drop_if_empty(resources, "requests");
                }
            }
        }
    }
}

fn drop_if_empty(map: &mut Map<String, Value>, key: &str) {
    let empty = match map.get(key) {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        map.remove(key);
    }
}

/// FNV-1 (not 1a), 32 bit: multiply by the prime, then XOR each byte.
pub fn fnv1_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, b| {
        h.wrapping_mul(16_777_619) ^ u32::from(*b)
    })
}

/// `rand.SafeEncodeString`: each byte mapped into an alphabet without vowels or confusables.
pub fn safe_encode(s: &str) -> String {
    const ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// `history.HashControllerRevision`: FNV-1 over the data bytes followed by the decimal collision
/// count (when present), printed in decimal and safe-encoded.
pub fn hash_revision_data(raw: &[u8], collision_count: Option<i32>) -> String {
    let mut bytes = raw.to_vec();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(count.to_string().as_bytes());
    }
    safe_encode(&fnv1_32(&bytes).to_string())
}

/// `history.ControllerRevisionName`: the set name cut to 223 bytes, `-`, the hash.
pub fn revision_name(set_name: &str, hash: &str) -> String {
    let mut cut = set_name.len().min(223);
    while !set_name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}", &set_name[..cut])
}

/// The Go-rendered bytes of a revision's data (what upstream compares and hashes).
pub fn data_bytes(revision: &ControllerRevision) -> String {
    match &revision.data {
        Some(RawExtension(v)) => go_json::encode(v),
        None => String::new(),
    }
}

/// `newRevision` (§5.1): data = the patch, labels = template labels + hash label, annotations =
/// the set's annotations, controller ref to the set, name `<set>-<hash>`.
pub fn new_revision(
    set: &StatefulSet,
    revision: i64,
    collision_count: i32,
) -> Result<ControllerRevision, RevisionError> {
    let patch = revision_patch(set)?;
    let hash = hash_revision_data(go_json::encode(&patch).as_bytes(), Some(collision_count));
    let mut labels: BTreeMap<String, String> = set
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.to_string(), hash.clone());
    Ok(ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(spec::name(set), &hash)),
            namespace: Some(spec::namespace(set).to_string()),
            labels: Some(labels),
            annotations: set.metadata.annotations.clone().filter(|a| !a.is_empty()),
            owner_references: Some(vec![controller_ref(set)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(patch)),
        revision,
    })
}

/// One more than the highest `.revision` (1 for no revisions).
pub fn next_revision(revisions: &[ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// `history.EqualRevision`: false if both hash labels parse as int32 and differ (practically never,
/// §10 item 12); otherwise byte equality of the Go-rendered data.
pub fn revisions_equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let parsed = |r: &ControllerRevision| {
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL))
            .and_then(|h| h.parse::<i32>().ok())
    };
    if let (Some(x), Some(y)) = (parsed(a), parsed(b))
        && x != y
    {
        return false;
    }
    data_bytes(a) == data_bytes(b)
}

/// `history.FindEqualRevisions`: the revisions equal to `needle`, in the order given.
pub fn find_equal_revisions<'a>(
    revisions: &'a [ControllerRevision],
    needle: &ControllerRevision,
) -> Vec<&'a ControllerRevision> {
    revisions
        .iter()
        .filter(|r| revisions_equal(r, needle))
        .collect()
}

/// §5.5 order: `.revision` ascending, then older `creationTimestamp`, then name.
pub fn compare_revisions(a: &ControllerRevision, b: &ControllerRevision) -> Ordering {
    a.revision
        .cmp(&b.revision)
        .then_with(|| {
            let ts = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
            ts(a).cmp(&ts(b))
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Sorts revisions in §5.5 order.
pub fn sort_revisions(revisions: &mut [ControllerRevision]) {
    revisions.sort_by(compare_revisions);
}

/// `ApplyRevision`: the pod template stored in a revision (the `$patch` directive removed).
pub fn template_from_revision(
    revision: &ControllerRevision,
) -> Result<PodTemplateSpec, RevisionError> {
    let name = revision.metadata.name.clone().unwrap_or_default();
    let template = revision
        .data
        .as_ref()
        .and_then(|d| d.0.get("spec"))
        .and_then(|s| s.get("template"))
        .ok_or_else(|| RevisionError::NoTemplate { name: name.clone() })?;
    let mut template = template.clone();
    if let Value::Object(map) = &mut template {
        map.remove("$patch");
    }
    serde_json::from_value(template).map_err(|source| RevisionError::Decode { name, source })
}

/// A revision's name (empty when absent).
pub fn name_of(revision: &ControllerRevision) -> &str {
    revision.metadata.name.as_deref().unwrap_or("")
}
