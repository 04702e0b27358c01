//! Round trips: decode(encode(x)) == x for objects in the decoder's canonical form (no zero
//! values in `omitempty` fields), with the encoder writing Go's zero-filled fields; and fuzzing
//! that decoding never panics.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::captured::{CAPTURED_SERVICE_LOADBALANCER, captured};
use crate::protobuf::encode::{encode, envelope};
use crate::protobuf::{decode, is_protobuf};

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
                meta["creationTimestamp"] =
                    json!(crate::protobuf::time::format_time(seconds).unwrap());
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
        prop_oneof![Just(0i64), 1i64..65536],
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
        proptest::option::of(prop_oneof![Just(0i64), 1i64..86400]),
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

fn service_account() -> impl Strategy<Value = Value> {
    (
        metadata(),
        proptest::collection::vec(word(), 0..3),
        proptest::collection::vec(word(), 0..3),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(meta, secrets, pull_secrets, automount)| {
            let mut object =
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta});
            if !secrets.is_empty() {
                let refs: Vec<Value> = secrets
                    .iter()
                    .map(|n| json!({"kind": "Secret", "name": n}))
                    .collect();
                object["secrets"] = json!(refs);
            }
            if !pull_secrets.is_empty() {
                let refs: Vec<Value> = pull_secrets.iter().map(|n| json!({"name": n})).collect();
                object["imagePullSecrets"] = json!(refs);
            }
            with(
                object,
                "automountServiceAccountToken",
                automount.map(Value::Bool),
            )
        })
}

fn eviction() -> impl Strategy<Value = Value> {
    let grace = proptest::option::of(prop_oneof![Just(0i64), Just(-1i64), 1i64..3600]);
    let policy = proptest::option::of(prop_oneof![
        Just("Orphan"),
        Just("Background"),
        Just("Foreground")
    ]);
    (
        metadata(),
        proptest::option::of((grace, policy, proptest::option::of(word()))),
    )
        .prop_map(|(meta, options)| {
            let object = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": meta});
            let options = options.map(|(grace, policy, uid)| {
                let options = with(json!({}), "gracePeriodSeconds", grace.map(Value::from));
                let options = with(options, "propagationPolicy", policy.map(Value::from));
                with(options, "preconditions", uid.map(|uid| json!({"uid": uid})))
            });
            with(object, "deleteOptions", options)
        })
}

/// Selector attributes of an access review: a raw selector, or requirements.
fn selector_attributes(
    requirement: impl Strategy<Value = Value>,
) -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        word().prop_map(|raw| json!({"rawSelector": raw})),
        proptest::collection::vec(requirement, 1..3).prop_map(|r| json!({"requirements": r})),
    ])
}

fn requirement(operators: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        word(),
        proptest::sample::select(operators),
        proptest::collection::vec(word(), 0..3),
    )
        .prop_map(|(key, operator, values)| {
            with(
                json!({"key": key, "operator": operator}),
                "values",
                (!values.is_empty()).then(|| json!(values)),
            )
        })
}

fn access_review() -> impl Strategy<Value = Value> {
    let resource = (
        proptest::collection::btree_map(
            proptest::sample::select(
                &[
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ][..],
            ),
            word(),
            0..7,
        ),
        selector_attributes(requirement(&["In", "NotIn", "Exists", "DoesNotExist"])),
        selector_attributes(requirement(&["In", "NotIn", "Exists", "DoesNotExist"])),
    )
        .prop_map(|(fields, field_selector, label_selector)| {
            let attributes = with(json!(fields), "fieldSelector", field_selector);
            with(attributes, "labelSelector", label_selector)
        });
    let non_resource =
        (word(), word()).prop_map(|(path, verb)| json!({"path": format!("/{path}"), "verb": verb}));
    let kind = prop_oneof![
        Just("SelfSubjectAccessReview"),
        Just("SubjectAccessReview"),
        Just("LocalSubjectAccessReview"),
    ];
    (
        kind,
        proptest::option::of(resource),
        proptest::option::of(non_resource),
        proptest::option::of(word()),
        any::<bool>(),
    )
        .prop_map(|(kind, resource, non_resource, user, allowed)| {
            let spec = with(json!({}), "resourceAttributes", resource);
            let mut spec = with(spec, "nonResourceAttributes", non_resource);
            if kind != "SelfSubjectAccessReview" {
                spec = with(spec, "user", user.map(Value::from));
            }
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec,
                   "status": {"allowed": allowed}})
        })
}

fn rules_review() -> impl Strategy<Value = Value> {
    let rule = || proptest::collection::vec(word(), 1..3);
    (
        proptest::option::of(word()),
        proptest::option::of((rule(), rule())),
        any::<bool>(),
    )
        .prop_map(|(namespace, rules, incomplete)| {
            let spec = with(json!({}), "namespace", namespace.map(Value::from));
            let status = json!({"incomplete": incomplete});
            let status = match rules {
                Some((verbs, urls)) => with(
                    with(
                        status,
                        "resourceRules",
                        Some(json!([{"verbs": verbs, "apiGroups": ["*"], "resources": ["*"]}])),
                    ),
                    "nonResourceRules",
                    Some(json!([{"verbs": verbs, "nonResourceURLs": urls}])),
                ),
                None => status,
            };
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                   "spec": spec, "status": status})
        })
}

fn self_subject_review() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(word()),
        proptest::collection::vec(word(), 0..3),
    )
        .prop_map(|(username, groups)| {
            let user = with(json!({}), "username", username.map(Value::from));
            let user = with(user, "groups", (!groups.is_empty()).then(|| json!(groups)));
            let object =
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
            let is_empty = user.as_object().is_some_and(|u| u.is_empty());
            with(
                object,
                "status",
                (!is_empty).then(|| json!({"userInfo": user})),
            )
        })
}

proptest! {
    #[test]
    fn objects_survive_an_encode_decode_round_trip(
        object in prop_oneof![
            config_map(), secret(), namespace(), service(), service_account(), eviction()
        ]
    ) {
        let body = encode(&object);
        prop_assert!(is_protobuf(&body));
        prop_assert_eq!(decode(&body), Ok(object));
    }

    #[test]
    fn reviews_survive_an_encode_decode_round_trip(
        object in prop_oneof![access_review(), rules_review(), self_subject_review()]
    ) {
        let body = encode(&object);
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
