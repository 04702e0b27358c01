//! `ApiError`: a failed request, shaped as the `metav1.Status` upstream would answer; and
//! `FieldError`: one validation cause (`field.Error` upstream).
//!
//! Constructors are named after upstream's `k8s.io/apimachinery/pkg/api/errors` helpers and produce
//! the same reasons, codes and messages, because kubectl prints them verbatim.

use serde_json::{Value, json};

/// The kind of a validation failure; renders as upstream's `field.ErrorType`.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldErrorType {
    /// `Required value`
    Required,
    /// `Invalid value: <value>`
    Invalid(Value),
    /// `Unsupported value: <value>: supported values: "A", "B"`
    NotSupported(Value, Vec<String>),
    /// `Forbidden`
    Forbidden,
    /// `Duplicate value: <value>`
    Duplicate(Value),
    /// `Too long: may not be more than N bytes`
    TooLong(usize),
    /// `Internal error`
    Internal,
}

/// One validation cause: a field path, what is wrong, and an optional detail.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorType,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorType::Required,
            detail: detail.into(),
        }
    }
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorType::Invalid(value.into()),
            detail: detail.into(),
        }
    }
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[&str],
    ) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorType::NotSupported(
                value.into(),
                supported.iter().map(|s| s.to_string()).collect(),
            ),
            detail: String::new(),
        }
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorType::Forbidden,
            detail: detail.into(),
        }
    }
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorType::Duplicate(value.into()),
            detail: String::new(),
        }
    }
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorType::TooLong(max),
            detail: String::new(),
        }
    }

    /// The cause `reason` (`FieldValueRequired`, …).
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid(_) => "FieldValueInvalid",
            FieldErrorType::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorType::TooLong(_) => "FieldValueTooLong",
            FieldErrorType::Internal => "InternalError",
        }
    }

    /// The message without the field path (upstream `ErrorBody`).
    pub fn body(&self) -> String {
        let mut s = match &self.kind {
            FieldErrorType::Required => "Required value".to_string(),
            FieldErrorType::Invalid(v) => format!("Invalid value: {}", render_value(v)),
            FieldErrorType::NotSupported(v, supported) => {
                let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                format!(
                    "Unsupported value: {}: supported values: {}",
                    render_value(v),
                    list.join(", ")
                )
            }
            FieldErrorType::Forbidden => "Forbidden".to_string(),
            FieldErrorType::Duplicate(v) => format!("Duplicate value: {}", render_value(v)),
            FieldErrorType::TooLong(max) => format!("Too long: may not be more than {max} bytes"),
            FieldErrorType::Internal => "Internal error".to_string(),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Renders a value the way upstream's `%#v`-ish field errors do: strings quoted, numbers and
/// booleans bare, anything else as compact JSON.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// A failed request. Renders as a `metav1.Status` body with `code` as the HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (name, group, kind, uid, causes), when upstream sends them.
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(kind));
    Value::Object(d)
}

fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 404 `statefulsets.apps "web" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{} {name:?} not found", qualified(resource, group)),
            details: Some(details(group, resource, name)),
        }
    }

    /// 404 for paths and resources the server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 `configmaps "c" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} {name:?} already exists", qualified(resource, group)),
            details: Some(details(group, resource, name)),
        }
    }

    /// 409 with the exact optimistic-lock message.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                qualified(resource, group)
            ),
            details: Some(details(group, resource, name)),
        }
    }

    /// 409 Conflict for a stale `resourceVersion`.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 `StatefulSet.apps "web" is invalid: spec.selector: Required value`.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let mut uniq: Vec<&FieldError> = Vec::new();
        for e in errors {
            if !uniq.iter().any(|u| u.to_string() == e.to_string()) {
                uniq.push(e);
            }
        }
        let summary = match uniq.as_slice() {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let causes: Vec<Value> = uniq
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field}))
            .collect();
        let mut d = details(group, kind, name);
        d["causes"] = Value::Array(causes);
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{} {name:?} is invalid: {summary}", qualified(kind, group)),
            details: Some(d),
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden.
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let what = if name.is_empty() {
            qualified(resource, group)
        } else {
            format!("{} {name:?}", qualified(resource, group))
        };
        Self {
            code: 403,
            reason: "Forbidden",
            message: format!("{what} is forbidden: {why}"),
            details: Some(details(group, resource, name)),
        }
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(accepted: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: {accepted}"),
        )
    }

    /// 410 `too old resource version: X (Y)`.
    pub fn gone(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 for bodies in a format the endpoint does not take.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json, application/yaml, application/vnd.kubernetes.protobuf \
                 (got {content_type:?})"
            ),
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_qualified_resource_and_puts_the_plural_in_details() {
        let e = ApiError::not_found("apps", "statefulsets", "nope");
        assert_eq!(e.message, r#"statefulsets.apps "nope" not found"#);
        assert_eq!(
            e.to_status()["details"],
            json!({"name": "nope", "group": "apps", "kind": "statefulsets"})
        );
        assert_eq!(
            ApiError::not_found("", "pods", "p").message,
            r#"pods "p" not found"#
        );
    }

    #[test]
    fn conflict_uses_the_optimistic_lock_wording() {
        let e = ApiError::stale("apps", "statefulsets", "web");
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on statefulsets.apps \"web\": the object has been modified; \
             please apply your changes to the latest version and try again"
        );
        assert_eq!(e.code, 409);
    }

    #[test]
    fn invalid_with_one_cause_reads_inline_and_several_are_bracketed() {
        let one = ApiError::invalid(
            "apps",
            "StatefulSet",
            "web",
            &[FieldError::required("spec.selector", "")],
        );
        assert_eq!(
            one.message,
            r#"StatefulSet.apps "web" is invalid: spec.selector: Required value"#
        );
        let d = one.details.unwrap();
        assert_eq!(d["kind"], "StatefulSet");
        assert_eq!(
            d["causes"][0],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"})
        );

        let two = ApiError::invalid(
            "apps",
            "StatefulSet",
            "web",
            &[
                FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0"),
                FieldError::not_supported("spec.x", "Y", &["Retain", "Delete"]),
            ],
        );
        assert_eq!(
            two.message,
            "StatefulSet.apps \"web\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, \
             spec.x: Unsupported value: \"Y\": supported values: \"Retain\", \"Delete\"]"
        );
    }
}
