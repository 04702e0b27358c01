//! Broken bodies: bad magic, truncation, wire-type mismatches, unknown kinds, encodings.

use serde_json::json;

use super::captured::{CAPTURED_SERVICE_CLUSTERIP, captured};
use super::{cat, ld, vi};
use crate::protobuf::encode::envelope;
use crate::protobuf::{ProtobufError, decode, is_protobuf};

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
