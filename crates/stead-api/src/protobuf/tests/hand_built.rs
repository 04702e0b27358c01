//! Hand-built envelopes for each kind, checking field numbers, types and the zero-value rule.

use serde_json::json;

use super::{cat, entry, ld, vi};
use crate::protobuf::decode;
use crate::protobuf::encode::envelope;

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
