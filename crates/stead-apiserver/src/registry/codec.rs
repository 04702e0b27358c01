//! Turning request bodies into well-typed objects and objects into stored bytes.
//!
//! Every object passes through its k8s-openapi type once on the way in ([`normalize`]): that is
//! the type check upstream's decoder does (`replicas: "3"` is refused) and it drops fields the
//! type does not know. Stored bytes never carry `metadata.resourceVersion`; it is filled from the
//! store's revision on the way out ([`decode_stored`]).

use bytes::Bytes;
use serde_json::Value;
use stead_api::{ApiError, ResourceType, meta};
use stead_storage::KeyValue;

macro_rules! normalize_as {
    ($value:expr, $($group:literal $kind:literal => $ty:ty),* $(,)?) => {
        |group: &str, kind: &str, value: Value| -> Option<Result<Value, String>> {
            match (group, kind) {
                $(($group, $kind) => Some(
                    serde_json::from_value::<$ty>(value)
                        .and_then(serde_json::to_value)
                        .map_err(|e| e.to_string()),
                ),)*
                _ => None,
            }
        }
    };
}

/// Round-trips `value` through the k8s-openapi type of `(group, kind)`. `None` if stead has no
/// type for it (the value is kept as it is).
fn typed_round_trip(group: &str, kind: &str, value: Value) -> Option<Result<Value, String>> {
    use k8s_openapi::api::{
        apps, authentication, authorization, autoscaling, coordination, core, discovery, events,
        storage,
    };
    let f = normalize_as!(value,
        "" "ConfigMap" => core::v1::ConfigMap,
        "" "Endpoints" => core::v1::Endpoints,
        "" "Event" => core::v1::Event,
        "" "Namespace" => core::v1::Namespace,
        "" "Node" => core::v1::Node,
        "" "PersistentVolumeClaim" => core::v1::PersistentVolumeClaim,
        "" "PersistentVolume" => core::v1::PersistentVolume,
        "" "Pod" => core::v1::Pod,
        "" "Secret" => core::v1::Secret,
        "" "ServiceAccount" => core::v1::ServiceAccount,
        "" "Service" => core::v1::Service,
        "" "Binding" => core::v1::Binding,
        "apps" "ControllerRevision" => apps::v1::ControllerRevision,
        "apps" "StatefulSet" => apps::v1::StatefulSet,
        "autoscaling" "Scale" => autoscaling::v1::Scale,
        "events.k8s.io" "Event" => events::v1::Event,
        "authentication.k8s.io" "SelfSubjectReview" => authentication::v1::SelfSubjectReview,
        "authentication.k8s.io" "TokenReview" => authentication::v1::TokenReview,
        "authorization.k8s.io" "LocalSubjectAccessReview" => authorization::v1::LocalSubjectAccessReview,
        "authorization.k8s.io" "SelfSubjectAccessReview" => authorization::v1::SelfSubjectAccessReview,
        "authorization.k8s.io" "SelfSubjectRulesReview" => authorization::v1::SelfSubjectRulesReview,
        "authorization.k8s.io" "SubjectAccessReview" => authorization::v1::SubjectAccessReview,
        "storage.k8s.io" "StorageClass" => storage::v1::StorageClass,
        "coordination.k8s.io" "Lease" => coordination::v1::Lease,
        "discovery.k8s.io" "EndpointSlice" => discovery::v1::EndpointSlice,
    );
    f(group, kind, value)
}

/// Checks `apiVersion`/`kind` of a request body against the endpoint, fills them when absent,
/// and type-checks the body through its k8s-openapi type.
pub fn normalize(
    group: &str,
    version: &str,
    kind: &str,
    mut value: Value,
) -> Result<Value, ApiError> {
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: the request body is not a JSON object"
        )));
    };
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        _ => {
            obj.insert("apiVersion".into(), Value::String(api_version));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind})"
            )));
        }
        _ => {
            obj.insert("kind".into(), Value::String(kind.to_string()));
        }
    }
    // Timestamps the server owns may arrive as null from clients that echo Go zero values.
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|_, v| !v.is_null());
    }
    match typed_round_trip(group, kind, value.clone()) {
        None => Ok(value),
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: {e}"
        ))),
    }
}

/// The bytes stored for an object of `rt`: its stored form's JSON without
/// `metadata.resourceVersion`.
pub fn encode_stored(rt: &ResourceType, obj: &Value) -> Bytes {
    let mut obj = stead_api::convert::to_storage(rt, obj.clone());
    meta::metadata_mut(&mut obj).remove("resourceVersion");
    Bytes::from(serde_json::to_vec(&obj).expect("a Value always serializes"))
}

/// The object of `rt` stored as `value`, with `metadata.resourceVersion` set to `revision`.
pub fn decode_stored(rt: &ResourceType, value: &[u8], revision: u64) -> Result<Value, ApiError> {
    let obj: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
    let mut obj = stead_api::convert::from_storage(rt, obj);
    meta::set_str(&mut obj, "resourceVersion", &revision.to_string());
    Ok(obj)
}

/// The stored JSON of an object with `"resourceVersion":"<revision>"` inserted into its
/// metadata, without decoding it. `None` when the bytes do not have that shape (no top-level
/// `metadata` object, or an empty one).
pub fn splice_resource_version(stored: &[u8], revision: u64) -> Option<Vec<u8>> {
    let at = top_level_metadata(stored)?;
    if stored.get(at) == Some(&b'}') {
        return None;
    }
    let rv = format!(r#""resourceVersion":"{revision}","#);
    let mut out = Vec::with_capacity(stored.len() + rv.len());
    out.extend_from_slice(&stored[..at]);
    out.extend_from_slice(rv.as_bytes());
    out.extend_from_slice(&stored[at..]);
    Some(out)
}

/// Where the members of the object's own `"metadata":{` begin: the first one at the top level of
/// the stored object. Keys that sort before `metadata` may hold objects with a `metadata` of
/// their own (a ControllerRevision's `data` holds a pod template), so nesting and strings are
/// followed rather than taking the first match.
fn top_level_metadata(stored: &[u8]) -> Option<usize> {
    const MARK: &[u8] = br#""metadata":{"#;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in stored.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' if depth == 1 && stored[i..].starts_with(MARK) => return Some(i + MARK.len()),
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            _ => {}
        }
    }
    None
}

pub fn decode_kv(rt: &ResourceType, kv: &KeyValue) -> Result<Value, ApiError> {
    decode_stored(rt, &kv.value, kv.mod_revision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_api_version_and_kind_are_filled_in() {
        let v = normalize(
            "apps",
            "v1",
            "StatefulSet",
            json!({"metadata": {"name": "web"}}),
        )
        .unwrap();
        assert_eq!(v["apiVersion"], "apps/v1");
        assert_eq!(v["kind"], "StatefulSet");
    }

    #[test]
    fn a_body_of_another_version_is_refused() {
        let e = normalize(
            "apps",
            "v1",
            "StatefulSet",
            json!({"apiVersion": "apps/v2"}),
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message
                .contains("does not match the expected API version (apps/v1)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_wrongly_typed_field_is_a_bad_request_naming_the_kind() {
        let e = normalize(
            "apps",
            "v1",
            "StatefulSet",
            json!({"spec": {"replicas": "three"}}),
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message
                .starts_with("StatefulSet in version \"v1\" cannot be handled as a StatefulSet: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn splicing_the_resource_version_equals_decoding() {
        let rt = stead_api::resource::find("", "v1", "pods").unwrap();
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"metadata": "x"}}, "spec": {}});
        let bytes = encode_stored(rt, &obj);
        let spliced: Value =
            serde_json::from_slice(&splice_resource_version(&bytes, 42).unwrap()).unwrap();
        assert_eq!(spliced, decode_stored(rt, &bytes, 42).unwrap());
        assert_eq!(splice_resource_version(br#"{"metadata":{}}"#, 1), None);
    }

    // A ControllerRevision's `data` sorts before its `metadata` and holds a pod template with a
    // `metadata` of its own: the version goes to the revision's metadata, never into the
    // template (where it would make the revision differ from the set's template).
    #[test]
    fn the_resource_version_goes_to_the_top_level_metadata_only() {
        let rt = stead_api::resource::find("apps", "v1", "controllerrevisions").unwrap();
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "data": {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "args": ["\"metadata\":{", "{[\\"]}]}}}},
            "metadata": {"name": "web-abc"}, "revision": 1
        });
        let bytes = encode_stored(rt, &obj);
        let spliced: Value =
            serde_json::from_slice(&splice_resource_version(&bytes, 7).unwrap()).unwrap();
        assert_eq!(spliced, decode_stored(rt, &bytes, 7).unwrap());
        assert_eq!(spliced["metadata"]["resourceVersion"], "7");
        assert_eq!(
            spliced["data"]["spec"]["template"]["metadata"],
            json!({"labels": {"app": "x"}})
        );
        assert_eq!(
            splice_resource_version(br#"{"data":{"metadata":{"a":1}}}"#, 1),
            None
        );
    }

    #[test]
    fn stored_bytes_drop_the_resource_version_and_reads_restore_it() {
        let obj = json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        let rt = stead_api::resource::find("", "v1", "configmaps").unwrap();
        let bytes = encode_stored(rt, &obj);
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
        let back = decode_stored(rt, &bytes, 9).unwrap();
        assert_eq!(back["metadata"]["resourceVersion"], "9");
    }
}
