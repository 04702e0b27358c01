//! STUB (replaced by the protobuf branch).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProtobufError(String);
pub fn is_protobuf(body: &[u8]) -> bool { body.starts_with(b"k8s\0") }
pub fn decode(_body: &[u8]) -> Result<serde_json::Value, ProtobufError> { Err(ProtobufError("protobuf not supported yet".into())) }
