//! Test-only encoder: JSON → protobuf through the same descriptor table, writing what Go's
//! encoder would (every non-pointer `omitempty` field, zero or not), so that round trips exercise
//! the decoder's zero-value rule. Panics on JSON that does not fit the table: it is only fed
//! objects the tests build.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::descriptor::{Card, Field, Message, Presence, Ty, message, root_message};
use super::time;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_int(out: &mut Vec<u8>, number: u32, v: i64) {
    put_key(out, number, 0);
    put_varint(out, v as u64);
}

/// Wraps an object's bytes in the `k8s\0` + `runtime.Unknown` envelope, as client-go does.
pub(crate) fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = b"k8s\0".to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    out
}

/// Encodes a whole object (with `apiVersion` and `kind`) into an enveloped body.
pub(crate) fn encode(object: &Value) -> Vec<u8> {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let msg = root_message(api_version, kind).expect("kind with a descriptor");
    let fields = object.as_object().expect("object");
    envelope(api_version, kind, &encode_message(fields, msg))
}

/// Encodes one message from its JSON object.
pub(crate) fn encode_message(object: &Map<String, Value>, msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fields: Vec<&Field> = msg.fields.iter().collect();
    fields.sort_by_key(|f| f.number);
    for field in fields {
        let value = object.get(field.json).filter(|v| !v.is_null());
        match (field.card, value) {
            (Card::Single, Some(value)) => put_value(&mut out, field.number, field.ty, value),
            (Card::Single, None) if field.presence == Presence::Omit => {
                put_zero(&mut out, field.number, field.ty)
            }
            (Card::Single, None) => {}
            (Card::Repeated, Some(Value::Array(items))) => {
                for item in items {
                    put_value(&mut out, field.number, field.ty, item);
                }
            }
            (Card::Map, Some(Value::Object(entries))) => {
                for (key, value) in entries {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, key.as_bytes());
                    put_value(&mut entry, 2, field.ty, value);
                    put_bytes(&mut out, field.number, &entry);
                }
            }
            (_, None) => {}
            (_, Some(other)) => panic!("{}.{}: unexpected JSON {other}", msg.name, field.json),
        }
    }
    out
}

/// What Go writes for a non-pointer field holding its zero value.
fn put_zero(out: &mut Vec<u8>, number: u32, ty: Ty) {
    match ty {
        Ty::String | Ty::Bytes | Ty::Time | Ty::FieldsV1 => put_bytes(out, number, b""),
        Ty::Int32 | Ty::Int64 | Ty::Bool => put_int(out, number, 0),
        Ty::Double => {
            put_key(out, number, 1);
            out.extend_from_slice(&0f64.to_le_bytes());
        }
        Ty::Msg(name) => put_bytes(
            out,
            number,
            &encode_message(&Map::new(), message(name).expect("message")),
        ),
        Ty::IntOrString => put_value(out, number, ty, &Value::from(0)),
    }
}

fn put_value(out: &mut Vec<u8>, number: u32, ty: Ty, value: &Value) {
    match ty {
        Ty::String => put_bytes(out, number, value.as_str().expect("string").as_bytes()),
        Ty::Bytes => put_bytes(
            out,
            number,
            &BASE64
                .decode(value.as_str().expect("base64"))
                .expect("base64"),
        ),
        Ty::Int32 | Ty::Int64 => put_int(out, number, value.as_i64().expect("integer")),
        Ty::Bool => put_int(out, number, i64::from(value.as_bool().expect("bool"))),
        Ty::Double => {
            put_key(out, number, 1);
            out.extend_from_slice(&value.as_f64().expect("number").to_le_bytes());
        }
        Ty::Msg(name) => {
            let nested = encode_message(
                value.as_object().expect("object"),
                message(name).expect("message"),
            );
            put_bytes(out, number, &nested);
        }
        Ty::Time => {
            let seconds = time::parse(value.as_str().expect("time")).expect("RFC 3339");
            let mut inner = Vec::new();
            put_int(&mut inner, 1, seconds);
            put_int(&mut inner, 2, 0);
            put_bytes(out, number, &inner);
        }
        Ty::IntOrString => {
            let mut inner = Vec::new();
            match value {
                Value::String(s) => {
                    put_int(&mut inner, 1, 1);
                    put_int(&mut inner, 2, 0);
                    put_bytes(&mut inner, 3, s.as_bytes());
                }
                other => {
                    put_int(&mut inner, 1, 0);
                    put_int(&mut inner, 2, other.as_i64().expect("integer"));
                    put_bytes(&mut inner, 3, b"");
                }
            }
            put_bytes(out, number, &inner);
        }
        Ty::FieldsV1 => {
            let mut inner = Vec::new();
            put_bytes(&mut inner, 1, &serde_json::to_vec(value).expect("json"));
            put_bytes(out, number, &inner);
        }
    }
}
