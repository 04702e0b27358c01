//! Tests of [`decode`](super::decode) on real kubectl bodies, hand-built envelopes, broken input,
//! and round trips through the test encoder.
//!
//! The `CAPTURED_*` constants are the exact bytes kubectl 1.32/1.33 sent to a recording stub
//! server (`shared/tools/kubectl-stub`), base64-encoded. Hand-built bodies spell field numbers out
//! literally (from upstream `generated.proto`) so they check the table instead of reusing it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::encode::{encode, envelope};
use super::{ProtobufError, decode, is_protobuf};

// ---------------------------------------------------------------------------------------------
// Captured kubectl bodies.

/// `kubectl.1.32 create configmap x --from-literal=a=b` (capture `proto1`).
const CAPTURED_CONFIGMAP: &str =
    "azhzAAoPCgJ2MRIJQ29uZmlnTWFwEhsKEQoBeBIAGgAiACoAMgA4AEIAEgYKAWESAWIaACIA";
/// `kubectl.1.33 create configmap cm2 --from-literal=a=b --from-literal=empty=`.
const CAPTURED_CONFIGMAP_EMPTY_VALUE: &str =
    "azhzAAoPCgJ2MRIJQ29uZmlnTWFwEigKEwoDY20yEgAaACIAKgAyADgAQgASBgoBYRIBYhIJCgVlbXB0eRIAGgAiAA==";
/// `kubectl.1.33 create secret generic s --from-literal=k=v`.
const CAPTURED_SECRET: &str =
    "azhzAAoMCgJ2MRIGU2VjcmV0Eh0KEQoBcxIAGgAiACoAMgA4AEIAEgYKAWsSAXYaABoAIgA=";
/// `kubectl.1.33 create secret docker-registry reg --docker-server=r.io --docker-username=u
/// --docker-password=p`.
const CAPTURED_SECRET_DOCKER: &str = "azhzAAoMCgJ2MRIGU2VjcmV0EowBChMKA3JlZxIAGgAiACoAMgA4AEIAElUKES5kb2NrZXJjb25maWdqc29uEkB7ImF1dGhzIjp7InIuaW8iOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19Gh5rdWJlcm5ldGVzLmlvL2RvY2tlcmNvbmZpZ2pzb24aACIA";
/// `kubectl.1.33 create namespace demo`.
const CAPTURED_NAMESPACE: &str =
    "azhzAAoPCgJ2MRIJTmFtZXNwYWNlEhwKFAoEZGVtbxIAGgAiACoAMgA4AEIAEgAaAgoAGgAiAA==";
/// `kubectl.1.33 create serviceaccount sa1`.
const CAPTURED_SERVICEACCOUNT: &str =
    "azhzAAoUCgJ2MRIOU2VydmljZUFjY291bnQSFQoTCgNzYTESABoAIgAqADIAOABCABoAIgA=";
/// `kubectl.1.33 create service clusterip my --tcp=80:8080`.
const CAPTURED_SERVICE_CLUSTERIP: &str = "azhzAAoNCgJ2MRIHU2VydmljZRJmCh0KAm15EgAaACIAKgAyADgAQgBaCQoDYXBwEgJteRJBChsKBzgwLTgwODASA1RDUBhQIgcIABCQPxoAKAASCQoDYXBwEgJteRoAIglDbHVzdGVySVA6AEIAUgBaAGAAaAAaAgoAGgAiAA==";
/// `kubectl.1.33 create service nodeport np --tcp=80:http`.
const CAPTURED_SERVICE_NODEPORT: &str = "azhzAAoNCgJ2MRIHU2VydmljZRJoCh0KAm5wEgAaACIAKgAyADgAQgBaCQoDYXBwEgJucBJDCh4KBzgwLWh0dHASA1RDUBhQIgoIARAAGgRodHRwKAASCQoDYXBwEgJucBoAIghOb2RlUG9ydDoAQgBSAFoAYABoABoCCgAaACIA";
/// `kubectl.1.33 create service externalname ex --external-name=example.com`.
const CAPTURED_SERVICE_EXTERNALNAME: &str = "azhzAAoNCgJ2MRIHU2VydmljZRJXCh0KAmV4EgAaACIAKgAyADgAQgBaCQoDYXBwEgJleBIyEgkKA2FwcBICZXgaACIMRXh0ZXJuYWxOYW1lOgBCAFILZXhhbXBsZS5jb21aAGAAaAAaAgoAGgAiAA==";
/// `kubectl.1.33 create service loadbalancer lb --tcp=443:8443`.
const CAPTURED_SERVICE_LOADBALANCER: &str = "azhzAAoNCgJ2MRIHU2VydmljZRJrCh0KAmxiEgAaACIAKgAyADgAQgBaCQoDYXBwEgJsYhJGCh0KCDQ0My04NDQzEgNUQ1AYuwMiBwgAEPtBGgAoABIJCgNhcHASAmxiGgAiDExvYWRCYWxhbmNlcjoAQgBSAFoAYABoABoCCgAaACIA";
/// `kubectl.1.33 create token sa1`.
const CAPTURED_TOKEN_REQUEST: &str = "azhzAAooChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESDFRva2VuUmVxdWVzdBIaChAKABIAGgAiACoAMgA4AEIAEgAaBAoAEgAaACIA";
/// `kubectl.1.33 create token sa1 --duration=1h --audience=aud1 --bound-object-kind=Pod
/// --bound-object-name=p --bound-object-uid=u1`.
const CAPTURED_TOKEN_REQUEST_BOUND: &str = "azhzAAooChhhdXRoZW50aWNhdGlvbi5rOHMuaW8vdjESDFRva2VuUmVxdWVzdBI1ChAKABIAGgAiACoAMgA4AEIAEhsKBGF1ZDEaEAoDUG9kEgJ2MRoBcCICdTEgkBwaBAoAEgAaACIA";

fn captured(b64: &str) -> Vec<u8> {
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

// ---------------------------------------------------------------------------------------------
// Hand-built bodies: field numbers written out from upstream generated.proto.

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// A length-delimited field.
fn ld(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(number) << 3 | 2);
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

/// A varint field.
fn vi(number: u32, v: i64) -> Vec<u8> {
    let mut out = varint(u64::from(number) << 3);
    out.extend(varint(v as u64));
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// A map entry `{1: key, 2: value}`.
fn entry(number: u32, key: &str, value: &[u8]) -> Vec<u8> {
    ld(number, &cat(&[ld(1, key.as_bytes()), ld(2, value)]))
}

#[test]
fn namespace_with_time_labels_and_finalizers_decodes() {
    let meta = cat(&[
        ld(1, b"demo"),
        ld(2, b""),
        vi(7, 0),
        ld(8, &cat(&[vi(1, 1_700_000_000), vi(2, 0)])), // creationTimestamp
        entry(11, "team", b"a"),
        entry(12, "note", b""),
        ld(
            17,
            &cat(&[
                ld(1, b"kubectl"),
                ld(2, b"Update"),
                ld(3, b"v1"),
                ld(7, &ld(1, br#"{"f:metadata":{}}"#)),
            ]),
        ),
    ]);
    let raw = cat(&[
        ld(1, &meta),
        ld(2, &ld(1, b"kubernetes")),
        ld(3, &ld(1, b"Active")),
    ]);
    assert_eq!(
        decode(&envelope("v1", "Namespace", &raw)),
        Ok(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {
                "name": "demo", "creationTimestamp": "2023-11-14T22:13:20Z",
                "labels": {"team": "a"}, "annotations": {"note": ""},
                "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                                   "fieldsV1": {"f:metadata": {}}}]
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        }))
    );
}

#[test]
fn a_time_at_the_epoch_differs_from_the_zero_time() {
    // Go writes the zero time as an empty message; {seconds: 0, nanos: 0} is 1970-01-01.
    let at_epoch = ld(1, &cat(&[ld(1, b"a"), ld(8, &cat(&[vi(1, 0), vi(2, 0)]))]));
    assert_eq!(
        decode(&envelope("v1", "Namespace", &at_epoch)),
        Ok(json!({"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": "a", "creationTimestamp": "1970-01-01T00:00:00Z"}}))
    );
    let zero = ld(1, &cat(&[ld(1, b"a"), ld(8, b"")]));
    assert_eq!(
        decode(&envelope("v1", "Namespace", &zero)),
        Ok(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}))
    );
}

#[test]
fn secret_bytes_become_base64_and_string_data_stays_text() {
    let raw = cat(&[
        ld(1, &ld(1, b"tls")),
        vi(5, 1), // immutable
        entry(2, "bin", &[0, 255, 16]),
        entry(2, "empty", b""),
        entry(4, "plain", b"hello"),
        ld(3, b"Opaque"),
    ]);
    assert_eq!(
        decode(&envelope("v1", "Secret", &raw)),
        Ok(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "immutable": true,
            "data": {"bin": "AP8Q", "empty": ""}, "stringData": {"plain": "hello"}, "type": "Opaque"
        }))
    );
}

#[test]
fn service_ports_take_both_target_port_forms_and_drop_zero_node_ports() {
    let port = |name: &str, port: i64, target: Vec<u8>, node_port: i64| {
        ld(
            1,
            &cat(&[
                ld(1, name.as_bytes()),
                ld(2, b"TCP"),
                vi(3, port),
                ld(4, &target),
                vi(5, node_port),
            ]),
        )
    };
    let spec = cat(&[
        port("web", 80, cat(&[vi(1, 0), vi(2, 8080), ld(3, b"")]), 30080),
        port(
            "admin",
            9000,
            cat(&[vi(1, 1), vi(2, 0), ld(3, b"admin")]),
            0,
        ),
        entry(2, "app", b"web"),
        ld(3, b"None"),
        ld(4, b"NodePort"),
        vi(12, 0),
        vi(13, 0),
        ld(14, &ld(1, &vi(1, 10_800))), // sessionAffinityConfig.clientIP.timeoutSeconds
        ld(19, b"IPv4"),
        ld(17, b"SingleStack"),
        vi(20, 0), // allocateLoadBalancerNodePorts: a pointer, so false is kept
    ]);
    let raw = cat(&[
        ld(1, &cat(&[ld(1, b"web"), ld(3, b"prod")])),
        ld(2, &spec),
        ld(3, &ld(1, b"")),
    ]);
    assert_eq!(
        decode(&envelope("v1", "Service", &raw)),
        Ok(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "prod"},
            "spec": {
                "ports": [
                    {"name": "web", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                    {"name": "admin", "protocol": "TCP", "port": 9000, "targetPort": "admin"}
                ],
                "selector": {"app": "web"}, "clusterIP": "None", "type": "NodePort",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "allocateLoadBalancerNodePorts": false
            }
        }))
    );
}

#[test]
fn serviceaccount_references_and_automount_decode() {
    let raw = cat(&[
        ld(1, &ld(1, b"builder")),
        ld(2, &cat(&[ld(1, b"Secret"), ld(3, b"token"), ld(2, b"")])),
        ld(3, &ld(1, b"regcred")),
        vi(4, 0),
    ]);
    assert_eq!(
        decode(&envelope("v1", "ServiceAccount", &raw)),
        Ok(json!({
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"},
            "secrets": [{"kind": "Secret", "name": "token"}],
            "imagePullSecrets": [{"name": "regcred"}],
            "automountServiceAccountToken": false
        }))
    );
}

#[test]
fn eviction_keeps_a_zero_grace_period_and_preconditions() {
    let delete_options = cat(&[
        vi(1, 0),
        ld(2, &ld(1, b"uid-1")),
        ld(4, b"Foreground"),
        ld(5, b"All"),
    ]);
    let raw = cat(&[
        ld(1, &cat(&[ld(1, b"web-0"), ld(3, b"default")])),
        ld(2, &delete_options),
    ]);
    assert_eq!(
        decode(&envelope("policy/v1", "Eviction", &raw)),
        Ok(json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "web-0", "namespace": "default"},
            "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "uid-1"},
                              "propagationPolicy": "Foreground", "dryRun": ["All"]}
        }))
    );
}

#[test]
fn delete_options_accept_any_group_version_and_negative_numbers() {
    let raw = cat(&[vi(1, -1), vi(3, 1)]);
    assert_eq!(
        decode(&envelope("apps/v1", "DeleteOptions", &raw)),
        Ok(
            json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": -1, "orphanDependents": true})
        )
    );
}

#[test]
fn unknown_fields_are_skipped_whatever_their_wire_type() {
    let raw = cat(&[
        ld(1, &cat(&[ld(1, b"x"), ld(99, b"future")])),
        vi(98, 7),
        vec![0x9d, 0x06, 1, 2, 3, 4],             // field 99, 32-bit
        vec![0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8], // field 100, 64-bit
        entry(2, "a", b"b"),
    ]);
    assert_eq!(
        decode(&envelope("v1", "ConfigMap", &raw)),
        Ok(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}})
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Errors.

#[test]
fn bodies_without_the_magic_are_rejected() {
    assert!(!is_protobuf(b"{\"kind\":\"ConfigMap\"}"));
    assert!(!is_protobuf(b"k8s"));
    assert_eq!(decode(b"{}"), Err(ProtobufError::BadMagic));
}

#[test]
fn every_truncation_of_a_captured_body_is_an_error() {
    let body = captured(CAPTURED_SERVICE_CLUSTERIP);
    // Cuts at a boundary between the envelope's fields leave a valid, shorter envelope: after the
    // magic (no kind at all), after typeMeta (4 + 2 + 13 bytes: an empty Service), and before the
    // two empty trailing fields (the last 4 bytes). Every other cut leaves a length past the end.
    let type_meta_end = 19;
    assert!(matches!(
        decode(&body[..4]),
        Err(ProtobufError::UnknownKind { .. })
    ));
    assert_eq!(
        decode(&body[..type_meta_end]),
        Ok(json!({"apiVersion": "v1", "kind": "Service"}))
    );
    for len in (5..body.len() - 4).filter(|&len| len != type_meta_end) {
        let result = decode(&body[..len]);
        assert!(
            matches!(result, Err(ProtobufError::Truncated { .. })),
            "cut at {len}: {result:?}"
        );
    }
}

#[test]
fn truncation_inside_the_object_names_the_message() {
    // The raw ConfigMap claims a 3-byte name but holds one byte.
    let raw = ld(1, &[0x0a, 0x03, b'x']);
    assert_eq!(
        decode(&envelope("v1", "ConfigMap", &raw)),
        Err(ProtobufError::Truncated {
            message: "ObjectMeta"
        })
    );
}

#[test]
fn unknown_kinds_name_kind_and_version() {
    let err = decode(&envelope("apps/v1", "StatefulSet", b"")).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"no protobuf decoder for kind "StatefulSet" in version "apps/v1""#
    );
}

#[test]
fn wire_type_mismatches_and_bad_utf8_are_errors() {
    let name_as_varint = ld(1, &vi(1, 5));
    assert_eq!(
        decode(&envelope("v1", "ConfigMap", &name_as_varint)),
        Err(ProtobufError::WireType {
            message: "ObjectMeta",
            field: "name",
            wire_type: 0
        })
    );
    let bad_utf8 = ld(1, &ld(1, &[0xff, 0xfe]));
    assert_eq!(
        decode(&envelope("v1", "ConfigMap", &bad_utf8)),
        Err(ProtobufError::InvalidUtf8 {
            message: "ObjectMeta",
            field: "name"
        })
    );
}

#[test]
fn compressed_content_is_refused() {
    let mut body = b"k8s\0".to_vec();
    body.extend(ld(1, &cat(&[ld(1, b"v1"), ld(2, b"ConfigMap")])));
    body.extend(ld(2, b""));
    body.extend(ld(3, b"gzip"));
    assert_eq!(
        decode(&body),
        Err(ProtobufError::ContentEncoding("gzip".into()))
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips: decode(encode(x)) == x for objects in the decoder's canonical form (no zero
// values in `omitempty` fields), with the encoder writing Go's zero-filled fields.

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}"
}

fn text() -> impl Strategy<Value = String> {
    // Any UTF-8, including empty strings and multi-byte characters.
    "\\PC{0,12}"
}

fn string_map(values: impl Strategy<Value = String>) -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(
        proptest::collection::btree_map(word(), values, 1..4).prop_map(|m| json!(m)),
    )
}

fn metadata() -> impl Strategy<Value = Value> {
    (
        word(),
        proptest::option::of(word()),
        string_map(text()),
        proptest::option::of(0i64..4_000_000_000),
    )
        .prop_map(|(name, namespace, labels, created)| {
            let mut meta = json!({"name": name});
            if let Some(namespace) = namespace {
                meta["namespace"] = json!(namespace);
            }
            if let Some(labels) = labels {
                meta["labels"] = labels;
            }
            if let Some(seconds) = created {
                meta["creationTimestamp"] = json!(super::time::format_time(seconds).unwrap());
            }
            meta
        })
}

/// Sets `key` to `value` when there is one.
fn with(mut object: Value, key: &str, value: Option<Value>) -> Value {
    if let Some(value) = value {
        object[key] = value;
    }
    object
}

fn config_map() -> impl Strategy<Value = Value> {
    let binary = proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| BASE64.encode(b));
    (
        metadata(),
        string_map(text()),
        string_map(binary),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(meta, data, binary, immutable)| {
            let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta});
            let object = with(object, "data", data);
            let object = with(object, "binaryData", binary);
            with(object, "immutable", immutable.map(Value::Bool))
        })
}

fn secret() -> impl Strategy<Value = Value> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| BASE64.encode(b));
    (
        metadata(),
        string_map(bytes),
        string_map(text()),
        proptest::option::of(word()),
    )
        .prop_map(|(meta, data, string_data, kind)| {
            let object = json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta});
            let object = with(object, "data", data);
            let object = with(object, "stringData", string_data);
            with(object, "type", kind.map(Value::String))
        })
}

fn namespace() -> impl Strategy<Value = Value> {
    (
        metadata(),
        proptest::collection::vec(word(), 0..3),
        proptest::option::of(word()),
    )
        .prop_map(|(meta, finalizers, phase)| {
            let mut object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta});
            if !finalizers.is_empty() {
                object["spec"] = json!({"finalizers": finalizers});
            }
            with(object, "status", phase.map(|phase| json!({"phase": phase})))
        })
}

fn service_port() -> impl Strategy<Value = Value> {
    let target = prop_oneof![
        (1i64..65536).prop_map(Value::from),
        word().prop_map(Value::from)
    ];
    (
        proptest::option::of(word()),
        0i64..65536,
        proptest::option::of(target),
        proptest::option::of(30000i64..32768),
    )
        .prop_map(|(name, port, target, node_port)| {
            let port = json!({"protocol": "TCP", "port": port});
            let port = with(port, "name", name.map(Value::String));
            let port = with(port, "targetPort", target);
            with(port, "nodePort", node_port.map(Value::from))
        })
}

fn service() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![Just("ClusterIP"), Just("NodePort"), Just("LoadBalancer")];
    (
        metadata(),
        proptest::collection::vec(service_port(), 0..3),
        string_map(word()),
        kind,
        proptest::option::of(0i64..86400),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(meta, ports, selector, kind, timeout, allocate)| {
            let mut spec = json!({"type": kind});
            if !ports.is_empty() {
                spec["ports"] = json!(ports);
            }
            let spec = with(spec, "selector", selector);
            let spec = with(
                spec,
                "sessionAffinityConfig",
                timeout.map(|t| json!({"clientIP": {"timeoutSeconds": t}})),
            );
            let spec = with(
                spec,
                "allocateLoadBalancerNodePorts",
                allocate.map(Value::Bool),
            );
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec})
        })
}

proptest! {
    #[test]
    fn objects_survive_an_encode_decode_round_trip(
        object in prop_oneof![config_map(), secret(), namespace(), service()]
    ) {
        let body = encode(&object);
        prop_assert!(is_protobuf(&body));
        prop_assert_eq!(decode(&body), Ok(object));
    }

    #[test]
    fn arbitrary_bytes_after_the_magic_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut body = b"k8s\0".to_vec();
        body.extend(tail);
        let _ = decode(&body);
    }

    #[test]
    fn arbitrary_object_bytes_never_panic(
        kind in prop_oneof![Just("ConfigMap"), Just("Secret"), Just("Service"), Just("Namespace")],
        raw in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let _ = decode(&envelope("v1", kind, &raw));
    }

    #[test]
    fn flipping_a_byte_of_a_captured_body_never_panics(index in 4usize..150, byte in any::<u8>()) {
        let mut body = captured(CAPTURED_SERVICE_LOADBALANCER);
        let index = index % body.len();
        body[index] = byte;
        let _ = decode(&body);
    }
}
