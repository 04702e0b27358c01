//! Reviews: the create-only resources that answer a question about the requester instead of
//! storing anything (`kubectl auth can-i`, `kubectl auth can-i --list`, `kubectl auth whoami`).
//!
//! stead has no RBAC: every authenticated user may do everything, like upstream's `AlwaysAllow`
//! authorizer. So every access review is allowed (with no reason, as `AlwaysAllow` gives none),
//! every rules review lists the one rule that allows all, and identity reviews report who the
//! API server authenticated the request as.
//!
//! Start at [`answer`]: it takes a review body already admitted (type-checked through its
//! k8s-openapi type), checks it as upstream's validation does, and returns the object the
//! POST answers with (201). Upstream: `pkg/registry/authorization/*/rest.go`,
//! `pkg/registry/authentication/{selfsubjectreview,tokenreview}`,
//! `pkg/apis/authorization/validation`.

use serde_json::{Map, Value, json};

use crate::{ApiError, FieldError, ResourceType};

/// The group every authenticated user is in (upstream adds it in its authenticator chain).
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Who a request was authenticated as (upstream `user.Info`, without uid and extra).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// `userInfo` / `user` as the authentication.k8s.io types spell it (empty fields omitted).
    fn to_json(&self) -> Value {
        let mut user = Map::new();
        if !self.username.is_empty() {
            user.insert("username".into(), json!(self.username));
        }
        if !self.groups.is_empty() {
            user.insert("groups".into(), json!(self.groups));
        }
        Value::Object(user)
    }
}

/// What a review needs from the request beyond its body.
pub struct ReviewRequest<'a> {
    /// The namespace in the URL (`""` for cluster-scoped reviews).
    pub namespace: &'a str,
    /// Who sent the request.
    pub requester: &'a UserInfo,
    /// Authenticates a bearer token as the API server would (for `TokenReview`).
    pub authenticate_token: &'a dyn Fn(&str) -> Option<UserInfo>,
    /// The time to stamp on `SelfSubjectReview`, RFC 3339.
    pub now: &'a str,
}

/// The answer to a POST of `body` to the review resource `rt`, or the error upstream gives.
/// `body` must already be admitted (apiVersion and kind checked, type-checked).
pub fn answer(
    rt: &ResourceType,
    mut body: Value,
    req: &ReviewRequest<'_>,
) -> Result<Value, ApiError> {
    scope_namespace(rt, &mut body, req.namespace)?;
    match (rt.group, rt.kind) {
        (
            "authorization.k8s.io",
            "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview",
        ) => {
            let errors = validate_access_review(rt.kind, &body);
            if !errors.is_empty() {
                return Err(ApiError::invalid(rt.group, rt.kind, "", &errors));
            }
            // `AlwaysAllow` allows and says nothing more.
            body["status"] = json!({"allowed": true});
            Ok(body)
        }
        ("authorization.k8s.io", "SelfSubjectRulesReview") => rules_review(rt, &body),
        ("authentication.k8s.io", "SelfSubjectReview") => Ok(json!({
            "kind": rt.kind,
            "apiVersion": rt.api_version(),
            "metadata": {"creationTimestamp": req.now},
            "status": {"userInfo": req.requester.to_json()},
        })),
        ("authentication.k8s.io", "TokenReview") => token_review(body, req.authenticate_token),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The body's namespace against the URL's, as upstream's create handler does before any
/// validation: an empty one takes the URL's, a cluster-scoped review drops it, another is refused.
fn scope_namespace(
    rt: &ResourceType,
    body: &mut Value,
    url_namespace: &str,
) -> Result<(), ApiError> {
    let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) else {
        if rt.namespaced {
            body["metadata"] = json!({"namespace": url_namespace});
        }
        return Ok(());
    };
    let in_body = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    if !rt.namespaced {
        meta.remove("namespace");
    } else if in_body.is_empty() {
        meta.insert("namespace".into(), json!(url_namespace));
    } else if in_body != url_namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Upstream `ValidateSelfSubjectAccessReview`, `ValidateSubjectAccessReview` and
/// `ValidateLocalSubjectAccessReview`: exactly one of `resourceAttributes` and
/// `nonResourceAttributes`, a subject for the non-self kinds, no metadata but a namespace.
pub fn validate_access_review(kind: &str, body: &Value) -> Vec<FieldError> {
    let spec = body.get("spec").unwrap_or(&Value::Null);
    let present = |field: &str| spec.get(field).is_some_and(|v| !v.is_null());
    let resource = present("resourceAttributes");
    let non_resource = present("nonResourceAttributes");
    let mut errors = Vec::new();
    if resource && non_resource {
        errors.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            spec["nonResourceAttributes"].clone(),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if !resource && !non_resource {
        // Upstream reports the (nil) nonResourceAttributes pointer, which prints as "null".
        errors.push(FieldError::invalid(
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if kind != "SelfSubjectAccessReview" {
        let user = spec.get("user").and_then(Value::as_str).unwrap_or("");
        let has_groups = spec
            .get("groups")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty());
        if user.is_empty() && !has_groups {
            errors.push(FieldError::invalid(
                "spec.user",
                user,
                "at least one of user or group must be specified",
            ));
        }
    }
    let mut meta = body
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    meta.remove("managedFields");
    let namespace = meta
        .remove("namespace")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if kind == "LocalSubjectAccessReview" {
        if !meta.is_empty() {
            errors.push(FieldError::invalid(
                "metadata",
                body["metadata"].clone(),
                "must be empty except for namespace",
            ));
        }
        if resource {
            let asked = spec
                .pointer("/resourceAttributes/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            if asked != namespace {
                errors.push(FieldError::invalid(
                    "spec.resourceAttributes.namespace",
                    asked,
                    "must match metadata.namespace",
                ));
            }
        }
        if non_resource {
            errors.push(FieldError::invalid(
                "spec.nonResourceAttributes",
                spec["nonResourceAttributes"].clone(),
                "disallowed on this kind of request",
            ));
        }
    } else if !meta.is_empty() || !namespace.is_empty() {
        errors.push(FieldError::invalid(
            "metadata",
            body["metadata"].clone(),
            "must be empty",
        ));
    }
    errors
}

/// `SelfSubjectRulesReview`: a namespace is required; the answer is a new object holding only
/// the status (upstream does not echo the spec), and everything is allowed.
fn rules_review(rt: &ResourceType, body: &Value) -> Result<Value, ApiError> {
    let namespace = body
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if namespace.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    Ok(json!({
        "kind": rt.kind,
        "apiVersion": rt.api_version(),
        "metadata": {},
        "spec": {},
        "status": {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        },
    }))
}

/// `TokenReview`: the request with `status.authenticated` and the token's user. A token the
/// server does not know is not an error: `authenticated` stays false (and is omitted).
fn token_review(
    mut body: Value,
    authenticate: &dyn Fn(&str) -> Option<UserInfo>,
) -> Result<Value, ApiError> {
    let token = body
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    body["status"] = match authenticate(token) {
        Some(user) => json!({"authenticated": true, "user": user.to_json()}),
        None => json!({"user": {}}),
    };
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::find;

    fn admin() -> UserInfo {
        UserInfo {
            username: "admin".into(),
            groups: vec!["system:masters".into(), AUTHENTICATED_GROUP.into()],
        }
    }

    fn ask(plural: &str, namespace: &str, body: Value) -> Result<Value, ApiError> {
        let rt = find(
            if plural.ends_with("subjectreviews") || plural == "tokenreviews" {
                "authentication.k8s.io"
            } else {
                "authorization.k8s.io"
            },
            "v1",
            plural,
        )
        .expect("served");
        let user = admin();
        let known = |t: &str| (t == "secret").then(admin);
        answer(
            rt,
            body,
            &ReviewRequest {
                namespace,
                requester: &user,
                authenticate_token: &known,
                now: "2026-01-01T00:00:00Z",
            },
        )
    }

    #[test]
    fn every_access_review_is_allowed_without_a_reason() {
        let body = json!({"metadata": {}, "spec": {"resourceAttributes": {"verb": "create", "resource": "pods"}}});
        let out = ask("selfsubjectaccessreviews", "", body.clone()).unwrap();
        assert_eq!(out["status"], json!({"allowed": true}));
        assert_eq!(out["spec"], body["spec"], "the request is echoed");
        let mut sar = body.clone();
        sar["spec"]["user"] = json!("someone");
        assert_eq!(
            ask("subjectaccessreviews", "", sar).unwrap()["status"]["allowed"],
            true
        );
    }

    #[test]
    fn an_access_review_needs_exactly_one_kind_of_attributes() {
        // Ref: upstream validation_test "resource and nonresource attributes both set / neither".
        let neither = ask("selfsubjectaccessreviews", "", json!({"spec": {}})).unwrap_err();
        assert_eq!(neither.code, 422);
        assert_eq!(
            neither.message,
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
        );
        let both = ask(
            "selfsubjectaccessreviews",
            "",
            json!({"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}),
        )
        .unwrap_err();
        assert_eq!(both.code, 422);
        assert!(
            both.message
                .contains("spec.nonResourceAttributes: Invalid value: ")
                && both
                    .message
                    .ends_with("cannot be specified in combination with resourceAttributes"),
            "{}",
            both.message
        );
    }

    #[test]
    fn subject_access_reviews_need_a_user_or_a_group_and_empty_metadata() {
        let err = ask(
            "subjectaccessreviews",
            "",
            json!({"metadata": {"name": "x"}, "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}}),
        )
        .unwrap_err();
        let fields: Vec<&str> = err.details.as_ref().unwrap()["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["spec.user", "metadata"]);
        let groups_only = json!({"spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}, "groups": ["g"]}});
        assert!(ask("subjectaccessreviews", "", groups_only).is_ok());
    }

    #[test]
    fn a_local_review_takes_its_namespace_from_the_url_and_must_ask_about_it() {
        let body = json!({"spec": {"user": "u", "resourceAttributes": {"namespace": "demo", "verb": "get", "resource": "pods"}}});
        let out = ask("localsubjectaccessreviews", "demo", body.clone()).unwrap();
        assert_eq!(out["metadata"]["namespace"], "demo");
        assert_eq!(out["status"]["allowed"], true);
        let elsewhere = ask("localsubjectaccessreviews", "other", body.clone()).unwrap_err();
        assert!(
            elsewhere
                .message
                .contains("spec.resourceAttributes.namespace: Invalid value: \"demo\": must match metadata.namespace"),
            "{}",
            elsewhere.message
        );
        let mut mismatched = body;
        mismatched["metadata"] = json!({"namespace": "x"});
        assert_eq!(
            ask("localsubjectaccessreviews", "demo", mismatched)
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn the_rules_review_allows_everything_and_needs_a_namespace() {
        let out = ask(
            "selfsubjectrulesreviews",
            "",
            json!({"spec": {"namespace": "default"}}),
        )
        .unwrap();
        assert_eq!(
            out["status"],
            json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            })
        );
        let err = ask("selfsubjectrulesreviews", "", json!({"spec": {}})).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "no namespace on request")
        );
    }

    #[test]
    fn the_self_subject_review_reports_the_requester() {
        let out = ask("selfsubjectreviews", "", json!({"metadata": {}})).unwrap();
        assert_eq!(
            out["status"]["userInfo"],
            json!({"username": "admin", "groups": ["system:masters", "system:authenticated"]})
        );
        assert_eq!(out["metadata"]["creationTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(out["kind"], "SelfSubjectReview");
    }

    #[test]
    fn a_token_review_authenticates_the_token_it_carries() {
        let known = ask("tokenreviews", "", json!({"spec": {"token": "secret"}})).unwrap();
        assert_eq!(known["status"]["authenticated"], true);
        assert_eq!(known["status"]["user"]["username"], "admin");
        let unknown = ask("tokenreviews", "", json!({"spec": {"token": "guess"}})).unwrap();
        assert_eq!(unknown["status"], json!({"user": {}}));
        assert_eq!(
            ask("tokenreviews", "", json!({"spec": {}}))
                .unwrap_err()
                .code,
            400
        );
    }
}
