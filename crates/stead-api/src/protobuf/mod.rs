//! Decoding the protobuf request bodies kubectl 1.32+ sends (`Content-Type:
//! application/vnd.kubernetes.protobuf`) into the JSON the same request would have carried.
//!
//! Start at [`decode`]. A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown`
//! envelope `{1: typeMeta {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}`;
//! `raw` is the object encoded per upstream `k8s.io/api` `generated.proto`.
//!
//! # Layout
//! - [`wire`]: the wire-format reader (varint, 64-bit, length-delimited, 32-bit).
//! - [`descriptor`]: the shape of the descriptor table and the zero-value rule (which empty
//!   values are dropped to match Go's `omitempty` JSON) — read its docs.
//! - [`meta_messages`], [`core_messages`], [`review_messages`]: the table itself, transcribed from
//!   upstream `generated.proto` files: field number → JSON name and type, per message.
//! - [`decode`](mod@decode): one message's bytes → a JSON object, driven by the table.
//! - [`time`](mod@time): `Time` → RFC 3339.
//!
//! Kinds with a decoder: v1 `Namespace`, `ConfigMap`, `Secret`, `ServiceAccount`, `Service`;
//! policy/v1 `Eviction`; authentication.k8s.io/v1 `TokenRequest` (`kubectl create token`),
//! `SelfSubjectReview` (`kubectl auth whoami`) and `TokenReview`; authorization.k8s.io/v1
//! `SelfSubjectAccessReview` and `SelfSubjectRulesReview` (`kubectl auth can-i [--list]`),
//! `SubjectAccessReview` and `LocalSubjectAccessReview`;
//! `DeleteOptions` in any version. Others get [`ProtobufError::UnknownKind`], which the API server
//! answers with 415. (`kubectl run` and `kubectl drain`'s eviction send JSON, so `Pod` has no
//! table.)

mod core_messages;
mod decode;
mod descriptor;
#[cfg(test)]
mod encode;
mod meta_messages;
mod review_messages;
#[cfg(test)]
mod tests;
mod time;
mod wire;

use serde_json::{Map, Value};

use wire::{Reader, WireValue};

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the k8s\\x00 magic")]
    BadMagic,
    /// A length or varint runs past the end of the data.
    #[error("protobuf data truncated while reading {message}")]
    Truncated { message: &'static str },
    /// A known field arrived with a wire type its declared type cannot have.
    #[error("field {field} of {message} has unexpected protobuf wire type {wire_type}")]
    WireType {
        message: &'static str,
        field: &'static str,
        wire_type: u8,
    },
    /// A string field holds bytes that are not UTF-8.
    #[error("field {field} of {message} is not valid UTF-8")]
    InvalidUtf8 {
        message: &'static str,
        field: &'static str,
    },
    /// Bytes that are not protobuf, or values JSON cannot hold.
    #[error("malformed protobuf data: {0}")]
    Malformed(String),
    /// The envelope names a kind this module has no descriptor for.
    #[error("no protobuf decoder for kind {kind:?} in version {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    /// The envelope says the object bytes are compressed or otherwise encoded.
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    /// The table refers to a message it does not define (a bug in the table).
    #[error("protobuf descriptor table has no message {0}")]
    MissingDescriptor(&'static str),
}

/// True if the body starts with the `k8s\0` magic.
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Decode an envelope into a JSON object with apiVersion and kind set.
///
/// The result is what the JSON body of the same request would have been, minus fields Go's JSON
/// encoder writes as `null` or leaves out (see [`descriptor`] for the zero-value rule):
/// `kubectl create configmap x --from-literal=a=b` gives
/// `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"b"}}`.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::BadMagic)?;
    let unknown = read_unknown(envelope)?;
    if !unknown.content_encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(unknown.content_encoding));
    }
    let msg = descriptor::root_message(&unknown.api_version, &unknown.kind).ok_or_else(|| {
        ProtobufError::UnknownKind {
            api_version: unknown.api_version.clone(),
            kind: unknown.kind.clone(),
        }
    })?;
    let fields = decode::decode_message(unknown.raw, msg, 0)?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(unknown.api_version));
    object.insert("kind".into(), Value::String(unknown.kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

/// The parts of a `runtime.Unknown` envelope this module uses.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

fn read_unknown(bytes: &[u8]) -> Result<Unknown<'_>, ProtobufError> {
    let mut unknown = Unknown {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
    };
    let mut reader = Reader::new(bytes, "Unknown");
    while let Some((number, wire)) = reader.next_field()? {
        match (number, wire) {
            (1, WireValue::Bytes(type_meta)) => {
                let mut reader = Reader::new(type_meta, "TypeMeta");
                while let Some((number, wire)) = reader.next_field()? {
                    match number {
                        1 => unknown.api_version = envelope_string(wire, "TypeMeta", "apiVersion")?,
                        2 => unknown.kind = envelope_string(wire, "TypeMeta", "kind")?,
                        _ => {}
                    }
                }
            }
            (2, WireValue::Bytes(raw)) => unknown.raw = raw,
            (3, _) => {
                unknown.content_encoding = envelope_string(wire, "Unknown", "contentEncoding")?
            }
            (1 | 2, _) => {
                let field = if number == 1 { "typeMeta" } else { "raw" };
                return Err(ProtobufError::WireType {
                    message: "Unknown",
                    field,
                    wire_type: wire.wire_type(),
                });
            }
            _ => {}
        }
    }
    Ok(unknown)
}

fn envelope_string(
    wire: WireValue<'_>,
    message: &'static str,
    field: &'static str,
) -> Result<String, ProtobufError> {
    let WireValue::Bytes(bytes) = wire else {
        return Err(ProtobufError::WireType {
            message,
            field,
            wire_type: wire.wire_type(),
        });
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 { message, field })
}
