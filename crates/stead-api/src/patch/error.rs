//! `PatchError`: why a patch could not be applied, and how upstream's API server answers it.
//!
//! The HTTP mapping follows `k8s.io/apiserver/pkg/endpoints/handlers/patch.go`:
//! - a body that does not decode → 400 BadRequest;
//! - a JSON patch operation that fails (`test` mismatch, missing path) → 422 through
//!   `NewGenericServerResponse` (generic message, the real error as an `UnexpectedServerResponse`
//!   cause);
//! - strategic-merge sentinel errors → 400 or 422 (`interpretStrategicMergePatchError`), every
//!   other strategic-merge error is returned raw and rendered as 500 with an empty reason;
//! - server-side apply conflicts → 409 Conflict with `FieldManagerConflict` causes.

use serde_json::{Value, json};

use crate::ApiError;

/// One field another manager owns with a different value than the applied configuration sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager, already rendered the way upstream prints it: `"kubectl"` for an applier,
    /// `"kubectl-client-side-apply" using apps/v1` for an updater.
    pub manager: String,
    /// The field path in structured-merge-diff notation: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="nginx"].image`.
    pub field: String,
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not what the patch type needs (not JSON, not an object, not a list of
    /// operations). Upstream: 400 BadRequest with the decoder's message.
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch (RFC 6902) operation failed. Upstream: 422 with a generic message and this
    /// text as the cause.
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A JSON patch longer than upstream's `maxJSONPatchOperations`. Upstream: 413.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// `mergepatch.ErrBadJSONDoc`.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// `mergepatch.ErrBadPatchFormatForPrimitiveList` (`$deleteFromPrimitiveList` misuse).
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    /// `mergepatch.ErrBadPatchFormatForRetainKeys` (`$retainKeys` not a list, or a patched key
    /// missing from it).
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    /// `mergepatch.ErrBadPatchFormatForSetElementOrderList`.
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    /// `mergepatch.ErrNoListOfLists`.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// Any other strategic-merge failure (unknown `$patch` value, missing merge key, …) with
    /// upstream's message. Upstream returns these unwrapped: 500 with an empty reason.
    #[error("{0}")]
    Strategic(String),
    /// Server-side apply found fields owned by other managers with different values.
    #[error("{}", conflict_message(.0))]
    ApplyConflict(Vec<Conflict>),
    /// The applied configuration cannot be used (not an object, wrong apiVersion/kind).
    #[error("{0}")]
    ApplyInvalid(String),
}

impl PatchError {
    /// The `metav1.Status` upstream would answer. `group`, `resource`, `kind` and `name` identify
    /// the patched object (used where upstream names it; most patch errors do not).
    pub fn to_api_error(&self, group: &str, resource: &str, kind: &str, name: &str) -> ApiError {
        let _ = (group, resource, kind, name);
        match self {
            PatchError::BadRequest(m) | PatchError::ApplyInvalid(m) => {
                ApiError::bad_request(m.clone())
            }
            PatchError::BadJsonDoc
            | PatchError::BadPatchFormatForPrimitiveList
            | PatchError::BadPatchFormatForRetainKeys
            | PatchError::BadPatchFormatForSetElementOrderList => {
                ApiError::bad_request(self.to_string())
            }
            PatchError::JsonPatchFailed(_) | PatchError::NoListOfLists => {
                unprocessable(&self.to_string())
            }
            PatchError::Strategic(m) => ApiError::new(500, "", m.clone()),
            PatchError::TooManyOperations { .. } => {
                ApiError::new(413, "RequestEntityTooLarge", self.to_string())
            }
            PatchError::ApplyConflict(conflicts) => {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| {
                        json!({
                            "reason": "FieldManagerConflict",
                            "message": format!("conflict with {}", c.manager),
                            "field": c.field,
                        })
                    })
                    .collect();
                ApiError {
                    code: 409,
                    reason: "Conflict",
                    message: self.to_string(),
                    details: Some(json!({ "causes": causes })),
                }
            }
        }
    }
}

/// Upstream `NewGenericServerResponse(422, …)`: a fixed message; the real error is the cause.
fn unprocessable(server_message: &str) -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid",
        message: "the server rejected our request due to an error in our request".to_string(),
        details: Some(json!({
            "causes": [{ "reason": "UnexpectedServerResponse", "message": server_message }]
        })),
    }
}

/// Upstream's `getConflictMessage`: one conflict inline, several grouped by manager (sorted).
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.field
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Renders a JSON value the way Go's `%v` prints the `map[string]interface{}` it decoded to
/// (upstream error messages embed patch fragments this way): `map[image:nginx name:web]`.
pub(crate) fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_fmt).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_fmt(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_conflict_reads_inline_with_the_field_path() {
        // Ref: k8s.io/apimachinery/pkg/util/managedfields/internal/conflict.go getConflictMessage
        let e = PatchError::ApplyConflict(vec![Conflict {
            manager: "\"kubectl-client-side-apply\" using apps/v1".into(),
            field: ".spec.replicas".into(),
        }]);
        let api = e.to_api_error("apps", "statefulsets", "StatefulSet", "web");
        assert_eq!(api.code, 409);
        assert_eq!(api.reason, "Conflict");
        assert_eq!(
            api.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            api.details.unwrap()["causes"][0],
            json!({"reason": "FieldManagerConflict",
                   "message": "conflict with \"kubectl-client-side-apply\" using apps/v1",
                   "field": ".spec.replicas"})
        );
    }

    #[test]
    fn several_conflicts_are_grouped_by_sorted_manager() {
        let c = |m: &str, f: &str| Conflict {
            manager: m.into(),
            field: f.into(),
        };
        let e = PatchError::ApplyConflict(vec![
            c("\"b\"", ".spec.x"),
            c("\"a\"", ".spec.y"),
            c("\"b\"", ".spec.z"),
        ]);
        assert_eq!(
            e.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"a\":\n- .spec.y\nconflicts with \"b\":\n- .spec.x\n- .spec.z"
        );
    }

    #[test]
    fn json_patch_failures_answer_422_with_the_error_as_cause() {
        // Ref: apiserver handlers/patch.go jsonPatcher.applyJSPatch (NewGenericServerResponse 422)
        let api =
            PatchError::JsonPatchFailed("testing value /spec/replicas failed: test failed".into())
                .to_api_error("apps", "statefulsets", "StatefulSet", "web");
        assert_eq!((api.code, api.reason), (422, "Invalid"));
        assert_eq!(
            api.message,
            "the server rejected our request due to an error in our request"
        );
        assert_eq!(
            api.details.unwrap()["causes"][0]["message"],
            "testing value /spec/replicas failed: test failed"
        );
    }

    #[test]
    fn strategic_sentinels_map_to_400_and_other_errors_to_500() {
        // Ref: apiserver handlers/patch.go interpretStrategicMergePatchError
        let bad = PatchError::BadPatchFormatForRetainKeys.to_api_error("", "pods", "Pod", "p");
        assert_eq!(
            (bad.code, bad.reason, bad.message.as_str()),
            (400, "BadRequest", "invalid patch format of retainKeys")
        );
        let lol = PatchError::NoListOfLists.to_api_error("", "pods", "Pod", "p");
        assert_eq!(lol.code, 422);
        let other = PatchError::Strategic("unknown patch type: foo in map: map[$patch:foo]".into())
            .to_api_error("", "pods", "Pod", "p");
        assert_eq!((other.code, other.reason), (500, ""));
    }

    #[test]
    fn go_fmt_prints_maps_sorted_like_go() {
        let v = json!({"name": "x", "$patch": "foo", "ports": [{"containerPort": 80}], "n": null});
        assert_eq!(
            go_fmt(&v),
            "map[$patch:foo n:<nil> name:x ports:[map[containerPort:80]]]"
        );
    }
}
