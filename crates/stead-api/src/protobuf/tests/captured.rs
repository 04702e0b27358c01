//! The `CAPTURED_*` constants are the exact bytes kubectl 1.32/1.33 sent to a recording stub
//! server (`shared/tools/kubectl-stub`), base64-encoded.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::protobuf::{decode, is_protobuf};

/// `kubectl.1.32 create configmap x --from-literal=a=b` (capture `proto1`).
pub(super) const CAPTURED_CONFIGMAP: &str =
    "azhzAAoPCgJ2MRIJQ29uZmlnTWFwEhsKEQoBeBIAGgAiACoAMgA4AEIAEgYKAWESAWIaACIA";
/// `kubectl.1.33 create configmap cm2 --from-literal=a=b --from-literal=empty=`.
pub(super) const CAPTURED_CONFIGMAP_EMPTY_VALUE: &str =
    "azhzAAoPCgJ2MRIJQ29uZmlnTWFwEigKEwoDY20yEgAaACIAKgAyADgAQgASBgoBYRIBYhIJCgVlbXB0eRIAGgAiAA==";
/// `kubectl.1.33 create secret generic s --from-literal=k=v`.
pub(super) const CAPTURED_SECRET: &str =
    "azhzAAoMCgJ2MRIGU2VjcmV0Eh0KEQoBcxIAGgAiACoAMgA4AEIAEgYKAWsSAXYaABoAIgA=";
/// `kubectl.1.33 create secret docker-registry reg --docker-server=r.io --docker-username=u
/// --docker-password=p`.
pub(super) const CAPTURED_SECRET_DOCKER: &str = "azhzAAoMCgJ2MRIGU2VjcmV0EowBChMKA3JlZxIAGgAiACoAMgA4AEIAElUKES5kb2NrZXJjb25maWdqc29uEkB7ImF1dGhzIjp7InIuaW8iOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19Gh5rdWJlcm5ldGVzLmlvL2RvY2tlcmNvbmZpZ2pzb24aACIA";
/// `kubectl.1.33 create namespace demo`.
pub(super) const CAPTURED_NAMESPACE: &str =
    "azhzAAoPCgJ2MRIJTmFtZXNwYWNlEhwKFAoEZGVtbxIAGgAiACoAMgA4AEIAEgAaAgoAGgAiAA==";
/// `kubectl.1.33 create serviceaccount sa1`.
pub(super) const CAPTURED_SERVICEACCOUNT: &str =
    "azhzAAoUCgJ2MRIOU2VydmljZUFjY291bnQSFQoTCgNzYTESABoAIgAqADIAOABCABoAIgA=";
/// `kubectl.1.33 create service clusterip my --tcp=80:8080`.
pub(super) const CAPTURED_SERVICE_CLUSTERIP: &str = "azhzAAoNCgJ2MRIHU2VydmljZRJmCh0KAm15EgAaACIAKgAyADgAQgBaCQoDYXBwEgJteRJBChsKBzgwLTgwODASA1RDUBhQIgcIABCQPxoAKAASCQoDYXBwEgJteRoAIglDbHVzdGVySVA6AEIAUgBaAGAAaAAaAgoAGgAiAA==";
/// `kubectl.1.33 create service nodeport np --tcp=80:http`.
pub(super) const CAPTURED_SERVICE_NODEPORT: &str = "azhzAAoNCgJ2MRIHU2VydmljZRJoCh0KAm5wEgAaACIAKgAyADgAQgBaCQoDYXBwEgJucBJDCh4KBzgwLWh0dHASA1RDUBhQIgoIARAAGgRodHRwKAASCQoDYXBwEgJucBoAIghOb2RlUG9ydDoAQgBSAFoAYABoABoCCgAaACIA";
/// `kubectl.1.33 create service externalname ex --external-name=example.com`.
pub(super) const CAPTURED_SERVICE_EXTERNALNAME: &str = "azhzAAoNCgJ2MRIHU2VydmljZRJXCh0KAmV4EgAaACIAKgAyADgAQgBaCQoDYXBwEgJleBIyEgkKA2FwcBICZXgaACIMRXh0ZXJuYWxOYW1lOgBCAFILZXhhbXBsZS5jb21aAGAAaAAaAgoAGgAiAA==";
/// `kubectl.1.33 create service loadbalancer lb --tcp=443:8443`.
pub(super) const CAPTURED_SERVICE_LOADBALANCER: &str = "azhzAAoNCgJ2MRIHU2VydmljZRJrCh0KAmxiEgAaACIAKgAyADgAQgBaCQoDYXBwEgJsYhJGCh0KCDQ0My04NDQzEgNUQ1AYuwMiBwgAEPtBGgAoABIJCgNhcHASAmxiGgAiDExvYWRCYWxhbmNlcjoAQgBSAFoAYABoABoCCgAaACIA";
/// `kubectl.1.33 create token sa1`.
pub(super) const CAPTURED_TOKEN_REQUEST: &str = "azhzAAooChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESDFRva2VuUmVxdWVzdBIaChAKABIAGgAiACoAMgA4AEIAEgAaBAoAEgAaACIA";
/// `kubectl.1.33 create token sa1 --duration=1h --audience=aud1 --bound-object-kind=Pod
/// --bound-object-name=p --bound-object-uid=u1`.
pub(super) const CAPTURED_TOKEN_REQUEST_BOUND: &str = "azhzAAooChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESDFRva2VuUmVxdWVzdBI1ChAKABIAGgAiACoAMgA4AEIAEhsKBGF1ZDEaEAoDUG9kEgJ2MRoBcCICdTEgkBwaBAoAEgAaACIA";

/// `kubectl.1.33 auth whoami` (first try, authentication.k8s.io/v1).
pub(super) const CAPTURED_SELF_SUBJECT_REVIEW: &str = "azhzAAotChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESEVNlbGZTdWJqZWN0UmV2aWV3EhoKEAoAEgAaACIAKgAyADgAQgASBgoECgASABoAIgA=";
/// `kubectl.1.33 auth can-i create pods` (namespace `default` from the kubeconfig).
pub(super) const CAPTURED_ACCESS_REVIEW: &str = "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSPwoQCgASABoAIgAqADIAOABCABIhCh8KB2RlZmF1bHQSBmNyZWF0ZRoAIgAqBHBvZHMyADoAGggIABIAGgAgABoAIgA=";
/// `kubectl.1.33 auth can-i get pods/web-0 --subresource=log -n demo`.
pub(super) const CAPTURED_ACCESS_REVIEW_SUBRESOURCE: &str = "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSQQoQCgASABoAIgAqADIAOABCABIjCiEKBGRlbW8SA2dldBoAIgAqBHBvZHMyA2xvZzoFd2ViLTAaCAgAEgAaACAAGgAiAA==";
/// `kubectl.1.33 auth can-i get /healthz`.
pub(super) const CAPTURED_NON_RESOURCE_ACCESS_REVIEW: &str = "azhzAAoyChdhdXRob3JpemF0aW9uLms4cy5pby92MRIXU2VsZlN1YmplY3RBY2Nlc3NSZXZpZXcSLwoQCgASABoAIgAqADIAOABCABIREg8KCC9oZWFsdGh6EgNnZXQaCAgAEgAaACAAGgAiAA==";
/// `kubectl.1.33 auth can-i --list`.
pub(super) const CAPTURED_RULES_REVIEW: &str = "azhzAAoxChdhdXRob3JpemF0aW9uLms4cy5pby92MRIWU2VsZlN1YmplY3RSdWxlc1JldmlldxIjChAKABIAGgAiACoAMgA4AEIAEgkKB2RlZmF1bHQaBBgAIgAaACIA";

pub(super) fn captured(b64: &str) -> Vec<u8> {
    BASE64.decode(b64).expect("test vector is base64")
}

#[test]
fn captured_configmap_decodes_to_the_json_kubectl_would_have_sent() {
    // Ref: shared/spec/kubectl-protocol.md §13.3
    let body = captured(CAPTURED_CONFIGMAP);
    assert!(is_protobuf(&body));
    assert_eq!(
        decode(&body),
        Ok(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}})
        )
    );
}

#[test]
fn captured_configmap_keeps_an_empty_value() {
    assert_eq!(
        decode(&captured(CAPTURED_CONFIGMAP_EMPTY_VALUE)),
        Ok(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm2"}, "data": {"a": "b", "empty": ""}})
        )
    );
}

#[test]
fn captured_secrets_carry_data_as_base64() {
    assert_eq!(
        decode(&captured(CAPTURED_SECRET)),
        Ok(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}})
        )
    );
    assert_eq!(
        decode(&captured(CAPTURED_SECRET_DOCKER)),
        Ok(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "reg"},
            "type": "kubernetes.io/dockerconfigjson",
            // base64 of {"auths":{"r.io":{"username":"u","password":"p","auth":"dTpw"}}}
            "data": {".dockerconfigjson": "eyJhdXRocyI6eyJyLmlvIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3JkIjoicCIsImF1dGgiOiJkVHB3In19fQ=="}
        }))
    );
}

#[test]
fn captured_namespace_and_serviceaccount_are_just_metadata() {
    assert_eq!(
        decode(&captured(CAPTURED_NAMESPACE)),
        Ok(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}))
    );
    assert_eq!(
        decode(&captured(CAPTURED_SERVICEACCOUNT)),
        Ok(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa1"}}))
    );
}

#[test]
fn captured_services_have_ports_selectors_and_types() {
    let service = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}}, "spec": spec});
    assert_eq!(
        decode(&captured(CAPTURED_SERVICE_CLUSTERIP)),
        Ok(service(
            "my",
            json!({
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "my"}, "type": "ClusterIP"
            })
        ))
    );
    assert_eq!(
        decode(&captured(CAPTURED_SERVICE_NODEPORT)),
        Ok(service(
            "np",
            json!({
                "ports": [{"name": "80-http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
                "selector": {"app": "np"}, "type": "NodePort"
            })
        ))
    );
    assert_eq!(
        decode(&captured(CAPTURED_SERVICE_EXTERNALNAME)),
        Ok(service(
            "ex",
            json!({"selector": {"app": "ex"}, "type": "ExternalName", "externalName": "example.com"})
        ))
    );
    assert_eq!(
        decode(&captured(CAPTURED_SERVICE_LOADBALANCER)),
        Ok(service(
            "lb",
            json!({
                "ports": [{"name": "443-8443", "protocol": "TCP", "port": 443, "targetPort": 8443}],
                "selector": {"app": "lb"}, "type": "LoadBalancer"
            })
        ))
    );
}

#[test]
fn captured_token_requests_keep_spec_and_the_empty_token() {
    // Go's JSON has no omitempty on `spec` and `status.token`, so they are kept even when empty.
    assert_eq!(
        decode(&captured(CAPTURED_TOKEN_REQUEST)),
        Ok(
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {}, "status": {"token": ""}})
        )
    );
    assert_eq!(
        decode(&captured(CAPTURED_TOKEN_REQUEST_BOUND)),
        Ok(json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": ["aud1"], "expirationSeconds": 3600,
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u1"}},
            "status": {"token": ""}
        }))
    );
}

#[test]
fn captured_whoami_is_an_empty_self_subject_review() {
    // Go writes `status.userInfo` zero-filled; its JSON drops both (`omitempty`).
    assert_eq!(
        decode(&captured(CAPTURED_SELF_SUBJECT_REVIEW)),
        Ok(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}))
    );
}

#[test]
fn captured_access_reviews_decode_to_the_json_older_kubectl_sends() {
    // kubectl 1.29 sends this JSON for `auth can-i create pods` (capture `cap33`): the protobuf
    // body of 1.33 must mean the same, `status.allowed: false` included (no `omitempty`).
    let review = |spec: Value| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
               "spec": spec, "status": {"allowed": false}})
    };
    assert_eq!(
        decode(&captured(CAPTURED_ACCESS_REVIEW)),
        Ok(review(
            json!({"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}})
        ))
    );
    assert_eq!(
        decode(&captured(CAPTURED_ACCESS_REVIEW_SUBRESOURCE)),
        Ok(review(json!({"resourceAttributes": {
            "namespace": "demo", "verb": "get", "resource": "pods", "subresource": "log", "name": "web-0"
        }})))
    );
    assert_eq!(
        decode(&captured(CAPTURED_NON_RESOURCE_ACCESS_REVIEW)),
        Ok(review(
            json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
        ))
    );
}

#[test]
fn captured_rules_review_names_the_namespace_and_keeps_incomplete() {
    assert_eq!(
        decode(&captured(CAPTURED_RULES_REVIEW)),
        Ok(json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": "default"}, "status": {"incomplete": false}
        }))
    );
}
