//! Router tests without sockets for the review resources (`kubectl auth can-i`, `kubectl auth
//! can-i --list`, `kubectl auth whoami`): discovery, the answers for the real requester, the
//! invalid cases, the protobuf bodies kubectl 1.32+ sends, and that nothing is ever stored.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use stead_apiserver::app::{App, Identity, PeerIdentity, router};
use stead_apiserver::registry::Registry;
use stead_storage::Storage;
use stead_storage::embedded::EmbeddedStore;
use tower::ServiceExt;

const NODE_TOKEN: &str = "node-secret";

struct Harness {
    router: axum::Router,
    store: Arc<EmbeddedStore>,
}

impl Harness {
    /// Authentication on, as `stead server` runs: a client certificate or a known token.
    async fn new() -> Self {
        let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
        let registry = Registry::new(store.clone(), Default::default());
        stead_apiserver::bootstrap::ensure_defaults(&registry)
            .await
            .unwrap();
        let mut app = App::new(registry);
        app.tokens
            .push((NODE_TOKEN.into(), stead_apiserver::join::node_identity()));
        Self {
            router: router(Arc::new(app)),
            store,
        }
    }

    /// Sends a request as the admin client certificate (CN=admin, O=system:masters) unless a
    /// bearer token is given.
    async fn call(
        &self,
        method: Method,
        uri: &str,
        content_type: &str,
        token: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let mut req = req.body(body.into()).unwrap();
        req.extensions_mut().insert(PeerIdentity(Some(Identity {
            user: "admin".into(),
            groups: vec!["system:masters".into()],
        })));
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let raw = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&raw).unwrap_or(Value::Null))
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            uri,
            "application/json",
            None,
            body.to_string(),
        )
        .await
    }

    async fn revision(&self) -> u64 {
        self.store.current_revision().await.unwrap()
    }
}

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
const SSRR: &str = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
const SAR: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
const LSAR: &str = "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews";
const SSR: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const TOKEN_REVIEW: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// What kubectl 1.27–1.31 send for `kubectl auth can-i create pods`.
fn can_i_create_pods() -> Value {
    json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
        "status": {"allowed": false}
    })
}

#[tokio::test]
async fn discovery_lists_the_reviews_as_create_only() {
    let h = Harness::new().await;
    let (status, list) = h
        .call(
            Method::GET,
            "/apis/authorization.k8s.io/v1",
            "",
            None,
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resources: Vec<(&str, bool, &Value)> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["namespaced"].as_bool().unwrap(),
                &r["verbs"],
            )
        })
        .collect();
    let create = json!(["create"]);
    assert_eq!(
        resources,
        [
            ("localsubjectaccessreviews", true, &create),
            ("selfsubjectaccessreviews", false, &create),
            ("selfsubjectrulesreviews", false, &create),
            ("subjectaccessreviews", false, &create),
        ]
    );
    let (_, groups) = h.call(Method::GET, "/apis", "", None, Body::empty()).await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"authentication.k8s.io") && names.contains(&"authorization.k8s.io"),
        "{names:?}"
    );
}

#[tokio::test]
async fn a_self_subject_access_review_is_allowed_and_nothing_is_stored() {
    // Ref: upstream AlwaysAllow authorizer: allowed, no reason.
    let h = Harness::new().await;
    let before = h.revision().await;
    let (status, body) = h.post(SSAR, can_i_create_pods()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], json!({"allowed": true}));
    assert_eq!(body["kind"], "SelfSubjectAccessReview");
    assert_eq!(
        body["spec"]["resourceAttributes"],
        json!({"namespace": "default", "verb": "create", "resource": "pods"})
    );
    for uri in [SSAR, SSRR, SAR, LSAR, SSR, TOKEN_REVIEW] {
        let (status, _) = h.call(Method::GET, uri, "", None, Body::empty()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "GET {uri}");
    }
    let (status, _) = h
        .call(Method::GET, &format!("{SSAR}/x"), "", None, Body::empty())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(h.revision().await, before, "reviews write nothing");
}

#[tokio::test]
async fn an_access_review_with_neither_or_both_attributes_is_invalid() {
    let h = Harness::new().await;
    let mut neither = can_i_create_pods();
    neither["spec"] = json!({});
    let (status, body) = h.post(SSAR, neither).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(
        body["message"],
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
    );
    assert_eq!(
        body["details"],
        json!({"group": "authorization.k8s.io", "kind": "SelfSubjectAccessReview", "causes": [{
            "reason": "FieldValueInvalid",
            "message": "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
            "field": "spec.resourceAttributes"
        }]})
    );
    let mut both = can_i_create_pods();
    both["spec"]["nonResourceAttributes"] = json!({"path": "/healthz", "verb": "get"});
    let (status, body) = h.post(SSAR, both).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.nonResourceAttributes"
    );
}

#[tokio::test]
async fn subject_and_local_access_reviews_are_allowed_for_anyone_asked_about() {
    let h = Harness::new().await;
    let (status, body) = h
        .post(
            SAR,
            json!({"spec": {"user": "jane", "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["allowed"], true);
    assert_eq!(body["spec"]["user"], "jane");

    let (status, body) = h
        .post(
            LSAR,
            json!({"spec": {"groups": ["devs"], "resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["metadata"]["namespace"], "default");
    assert_eq!(body["status"]["allowed"], true);

    // The namespace asked about must be the one in the URL, and there is no all-namespaces path.
    let (status, body) = h
        .post(
            LSAR,
            json!({"spec": {"user": "u", "resourceAttributes": {"namespace": "kube-system", "verb": "get"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = h
        .post(
            "/apis/authorization.k8s.io/v1/localsubjectaccessreviews",
            json!({"spec": {"user": "u"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = h
        .post(
            SAR,
            json!({"spec": {"resourceAttributes": {"verb": "get"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["causes"][0]["field"], "spec.user");
}

#[tokio::test]
async fn the_rules_review_lists_one_rule_that_allows_everything() {
    let h = Harness::new().await;
    let (status, body) = h
        .post(
            SSRR,
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                   "spec": {"namespace": "default"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["status"],
        json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false
        })
    );
    let (status, body) = h.post(SSRR, json!({"spec": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "no namespace on request");
}

#[tokio::test]
async fn whoami_reports_the_certificate_or_token_identity() {
    let h = Harness::new().await;
    let (status, body) = h
        .post(
            SSR,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {"creationTimestamp": null}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "SelfSubjectReview");
    assert_eq!(
        body["status"]["userInfo"],
        json!({"username": "admin", "groups": ["system:masters", "system:authenticated"]})
    );
    assert!(body["metadata"]["creationTimestamp"].is_string());

    // A node agent joining with the join token's secret.
    let (status, body) = h
        .call(
            Method::POST,
            SSR,
            "application/json",
            Some(NODE_TOKEN),
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["status"]["userInfo"],
        json!({"username": "system:node:stead-agent", "groups": ["system:nodes", "system:authenticated"]})
    );
}

#[tokio::test]
async fn a_token_review_says_whether_the_server_knows_the_token() {
    let h = Harness::new().await;
    let (status, body) = h
        .post(TOKEN_REVIEW, json!({"spec": {"token": NODE_TOKEN}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["authenticated"], true);
    assert_eq!(
        body["status"]["user"]["username"],
        "system:node:stead-agent"
    );
    let (_, body) = h
        .post(TOKEN_REVIEW, json!({"spec": {"token": "guess"}}))
        .await;
    assert_eq!(body["status"], json!({"user": {}}));
    let (status, body) = h.post(TOKEN_REVIEW, json!({"spec": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "token is required for TokenReview in authentication"
    );
}

#[tokio::test]
async fn kubectl_1_33_protobuf_reviews_are_answered() {
    // Bodies captured from `kubectl.1.33 auth can-i create pods`, `auth can-i --list` and
    // `auth whoami` (shared/tools/kubectl-stub).
    let h = Harness::new().await;
    let before = h.revision().await;
    let pb = |b64: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    let cases = [
        (
            SSAR,
            "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSPwoQCgASABoAIgAqADIAOABCABIhCh8KB2RlZmF1bHQSBmNyZWF0ZRoAIgAqBHBvZHMyADoAGggIABIAGgAgABoAIgA=",
        ),
        (
            SSRR,
            "azhzAAoxChdhdXRob3JpemF0aW9uLms4cy5pby92MRIWU2VsZlN1YmplY3RSdWxlc1JldmlldxIjChAKABIAGgAiACoAMgA4AEIAEgkKB2RlZmF1bHQaBBgAIgAaACIA",
        ),
        (
            SSR,
            "azhzAAotChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESEVNlbGZTdWJqZWN0UmV2aWV3EhoKEAoAEgAaACIAKgAyADgAQgASBgoECgASABoAIgA=",
        ),
    ];
    let mut answers = Vec::new();
    for (uri, body) in cases {
        let (status, answer) = h
            .call(
                Method::POST,
                uri,
                "application/vnd.kubernetes.protobuf",
                None,
                pb(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{uri}: {answer}");
        answers.push(answer);
    }
    assert_eq!(answers[0]["status"]["allowed"], true);
    assert_eq!(answers[0]["spec"]["resourceAttributes"]["resource"], "pods");
    assert_eq!(
        answers[1]["status"]["resourceRules"][0]["verbs"],
        json!(["*"])
    );
    assert_eq!(answers[2]["status"]["userInfo"]["username"], "admin");
    assert_eq!(h.revision().await, before, "reviews write nothing");
}
