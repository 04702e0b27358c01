//! JSON patch (RFC 6902, `application/json-patch+json`) and JSON merge patch (RFC 7386,
//! `application/merge-patch+json`): thin wrappers over the `json-patch` crate whose failures read
//! like upstream's (`gopkg.in/evanphx/json-patch.v4`, which kube-apiserver uses).

use json_patch::{PatchErrorKind, PatchOperation};
use serde_json::Value;

use super::PatchError;

/// Upstream `maxJSONPatchOperations`: longer patches are refused with 413.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Applies an RFC 6902 patch (`patch` must be the decoded body: a JSON array of operations).
///
/// A body that is not a list of operation objects is a 400; an operation that does not apply
/// (a failing `test`, a missing path, an unknown `op`) is a 422, as upstream.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(raw_ops) = patch else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            go_json_kind(patch)
        )));
    };
    if raw_ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: raw_ops.len(),
        });
    }
    let mut ops = Vec::with_capacity(raw_ops.len());
    for raw in raw_ops {
        if !raw.is_object() {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                go_json_kind(raw)
            )));
        }
        let kind = raw.get("op").and_then(Value::as_str).unwrap_or("unknown");
        if !matches!(
            kind,
            "add" | "remove" | "replace" | "move" | "copy" | "test"
        ) {
            return Err(PatchError::JsonPatchFailed(format!(
                "Unexpected kind: {kind}"
            )));
        }
        let op: PatchOperation = serde_json::from_value(raw.clone()).map_err(|e| {
            PatchError::JsonPatchFailed(format!("{kind} operation failed to decode: {e}"))
        })?;
        ops.push(op);
    }
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| {
        let kind = ops.get(e.operation).map(op_name).unwrap_or("unknown");
        PatchError::JsonPatchFailed(describe_failure(kind, &e.path.to_string(), &e.kind))
    })?;
    Ok(doc)
}

/// Applies an RFC 7386 merge patch: objects merge recursively, `null` deletes, anything else
/// replaces. Never fails once the body is decoded.
pub fn json_merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

fn op_name(op: &PatchOperation) -> &'static str {
    match op {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

/// evanphx/json-patch v4 wording: `<context>: <sentinel>` (sentinels `test failed`,
/// `missing value`).
fn describe_failure(op: &str, path: &str, kind: &PatchErrorKind) -> String {
    match (kind, op) {
        (PatchErrorKind::TestFailed, _) => format!("testing value {path} failed: test failed"),
        (PatchErrorKind::InvalidFromPointer, _) => {
            format!(
                "{op} operation does not apply: doc is missing from path: {path}: missing value"
            )
        }
        (PatchErrorKind::CannotMoveInsideItself, _) => {
            format!("move operation does not apply: cannot move {path} inside itself")
        }
        (_, "add" | "remove") => {
            format!("{op} operation does not apply: doc is missing path: \"{path}\": missing value")
        }
        (_, "replace") => {
            format!("replace operation does not apply: doc is missing key: {path}: missing value")
        }
        (_, "test") => {
            format!("test operation does not apply: is missing path: {path}: missing value")
        }
        _ => format!(
            "{op} operation does not apply: doc is missing destination path: {path}: missing value"
        ),
    }
}

/// The JSON kind name Go's decoder uses in `cannot unmarshal X into …`.
pub(super) fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts() -> Value {
        json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 3}})
    }

    #[test]
    fn json_patch_applies_operations_in_order() {
        let p = json!([
            {"op": "test", "path": "/spec/replicas", "value": 3},
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "add", "path": "/metadata/labels/tier", "value": "db"},
            {"op": "remove", "path": "/metadata/labels/app"}
        ]);
        let out = json_patch(&sts(), &p).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"name": "web", "labels": {"tier": "db"}}, "spec": {"replicas": 5}})
        );
    }

    #[test]
    fn a_failing_test_operation_is_a_422_with_upstreams_wording() {
        // Ref: evanphx/json-patch v4 patch.go test(): "testing value %s failed" wrapping ErrTestFailed
        let p = json!([{"op": "test", "path": "/spec/replicas", "value": 4}]);
        let err = json_patch(&sts(), &p).unwrap_err();
        assert_eq!(
            err,
            PatchError::JsonPatchFailed("testing value /spec/replicas failed: test failed".into())
        );
        assert_eq!(
            err.to_api_error("apps", "statefulsets", "StatefulSet", "web")
                .code,
            422
        );
    }

    #[test]
    fn removing_a_missing_path_is_a_422() {
        let p = json!([{"op": "remove", "path": "/spec/nope/x"}]);
        let err = json_patch(&sts(), &p).unwrap_err();
        assert!(
            matches!(err, PatchError::JsonPatchFailed(ref m) if m.starts_with("remove operation does not apply"))
        );
    }

    #[test]
    fn a_body_that_is_not_a_list_is_a_400() {
        let err = json_patch(&sts(), &json!({"op": "add"})).unwrap_err();
        assert_eq!(
            err,
            PatchError::BadRequest(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into()
            )
        );
        assert_eq!(err.to_api_error("", "", "", "").code, 400);
    }

    #[test]
    fn an_unknown_op_is_unexpected_kind() {
        let err = json_patch(&sts(), &json!([{"op": "frob", "path": "/x"}])).unwrap_err();
        assert_eq!(
            err,
            PatchError::JsonPatchFailed("Unexpected kind: frob".into())
        );
    }

    #[test]
    fn merge_patch_merges_objects_and_null_deletes() {
        let out = json_merge_patch(
            &sts(),
            &json!({"metadata": {"labels": {"app": null, "x": "y"}}, "spec": {"replicas": 1}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"name": "web", "labels": {"x": "y"}}, "spec": {"replicas": 1}})
        );
    }

    #[test]
    fn merge_patch_replaces_lists_wholesale() {
        let orig = json!({"spec": {"args": ["a", "b"]}});
        assert_eq!(
            json_merge_patch(&orig, &json!({"spec": {"args": ["c"]}})).unwrap(),
            json!({"spec": {"args": ["c"]}})
        );
    }
}
