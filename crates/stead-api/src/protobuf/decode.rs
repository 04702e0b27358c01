//! Turning one message's bytes into a JSON object, driven by the descriptor table.
//!
//! Start at [`decode_message`]. Fields the table does not list are skipped (an older or newer
//! client may send fields this table lacks). Repeated scalar fields are accepted both unpacked
//! (what Go sends) and packed. For a singular field seen twice, the last value wins. The
//! zero-value rule is documented in [`super::descriptor`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::ProtobufError;
use super::descriptor::{Card, Field, Message, Presence, Ty, message};
use super::time::format_time;
use super::wire::{Reader, WireValue};

/// Nesting limit; the deepest real object (a Pod) nests far less.
const MAX_DEPTH: usize = 64;

/// Decodes the bytes of `msg` into a JSON object.
pub(crate) fn decode_message(
    bytes: &[u8],
    msg: &Message,
    depth: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::Malformed(format!(
            "messages nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let mut out = Map::new();
    let mut reader = Reader::new(bytes, msg.name);
    while let Some((number, wire)) = reader.next_field()? {
        let Some(field) = msg.field(number) else {
            continue;
        };
        match field.card {
            Card::Single => match decode_value(wire, field, msg, depth)? {
                Some(value) if !(field.presence == Presence::Omit && is_zero(&value)) => {
                    out.insert(field.json.to_owned(), value);
                }
                // A later zero value still overrides an earlier one, as in Go.
                _ => {
                    out.remove(field.json);
                }
            },
            Card::Repeated => {
                let values = repeated_values(wire, field, msg, depth)?;
                let list = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    list.extend(values);
                }
            }
            Card::Map => {
                let (key, value) = decode_map_entry(wire, field, msg, depth)?;
                let entries = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(entries) = entries {
                    entries.insert(key, value);
                }
            }
        }
    }
    Ok(out)
}

fn wire_type_error(field: &Field, msg: &Message, wire: WireValue<'_>) -> ProtobufError {
    ProtobufError::WireType {
        message: msg.name,
        field: field.json,
        wire_type: wire.wire_type(),
    }
}

/// The elements of one occurrence of a repeated field: one value, or several when packed.
fn repeated_values(
    wire: WireValue<'_>,
    field: &Field,
    msg: &Message,
    depth: usize,
) -> Result<Vec<Value>, ProtobufError> {
    let packable = matches!(field.ty, Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Double);
    match wire {
        WireValue::Bytes(bytes) if packable => {
            let mut reader = Reader::new(bytes, msg.name);
            let mut values = Vec::new();
            while !reader.at_end() {
                let element = if field.ty == Ty::Double {
                    reader.fixed64()?
                } else {
                    reader.varint()?
                };
                let wire = if field.ty == Ty::Double {
                    WireValue::Fixed64(element)
                } else {
                    WireValue::Varint(element)
                };
                values.extend(decode_value(wire, field, msg, depth)?);
            }
            Ok(values)
        }
        // Elements are kept even when zero: `[""]` and `[0]` are meaningful lists.
        _ => Ok(decode_value(wire, field, msg, depth)?.into_iter().collect()),
    }
}

/// One `{1: key, 2: value}` entry of a `map<string, _>` field. Missing parts are the zero value.
fn decode_map_entry(
    wire: WireValue<'_>,
    field: &Field,
    msg: &Message,
    depth: usize,
) -> Result<(String, Value), ProtobufError> {
    let WireValue::Bytes(bytes) = wire else {
        return Err(wire_type_error(field, msg, wire));
    };
    let mut reader = Reader::new(bytes, msg.name);
    let mut key = String::new();
    let mut value = None;
    while let Some((number, wire)) = reader.next_field()? {
        match number {
            1 => key = utf8(wire, field, msg)?,
            2 => value = decode_value(wire, field, msg, depth)?,
            _ => {}
        }
    }
    let value = match value {
        Some(value) => value,
        None => zero_value(field.ty, depth)?,
    };
    Ok((key, value))
}

/// The JSON a map value takes when the entry omits it.
fn zero_value(ty: Ty, depth: usize) -> Result<Value, ProtobufError> {
    Ok(match ty {
        Ty::String | Ty::Bytes => Value::String(String::new()),
        Ty::Int32 | Ty::Int64 | Ty::IntOrString => Value::from(0),
        Ty::Double => Value::from(0.0),
        Ty::Bool => Value::Bool(false),
        Ty::Msg(name) => {
            let msg = message(name).ok_or(ProtobufError::MissingDescriptor(name))?;
            Value::Object(decode_message(&[], msg, depth + 1)?)
        }
        Ty::Time | Ty::FieldsV1 => Value::Null,
    })
}

fn utf8(wire: WireValue<'_>, field: &Field, msg: &Message) -> Result<String, ProtobufError> {
    let WireValue::Bytes(bytes) = wire else {
        return Err(wire_type_error(field, msg, wire));
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 {
        message: msg.name,
        field: field.json,
    })
}

/// Decodes one value of `field`. `None` means "write nothing" (a zero `Time`).
fn decode_value(
    wire: WireValue<'_>,
    field: &Field,
    msg: &Message,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let mismatch = || wire_type_error(field, msg, wire);
    let value = match (field.ty, wire) {
        (Ty::String, _) => Value::String(utf8(wire, field, msg)?),
        (Ty::Bytes, WireValue::Bytes(bytes)) => Value::String(BASE64.encode(bytes)),
        // int32 travels as a sign-extended 64-bit varint; Go truncates to the low 32 bits.
        (Ty::Int32, WireValue::Varint(v)) => Value::from(v as u32 as i32),
        (Ty::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Ty::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        (Ty::Double, WireValue::Fixed64(bits)) => {
            serde_json::Number::from_f64(f64::from_bits(bits))
                .map(Value::Number)
                .ok_or_else(|| {
                    ProtobufError::Malformed(format!(
                        "{}.{} is not a finite number",
                        msg.name, field.json
                    ))
                })?
        }
        (Ty::Msg(name), WireValue::Bytes(bytes)) => {
            let nested = message(name).ok_or(ProtobufError::MissingDescriptor(name))?;
            Value::Object(decode_message(bytes, nested, depth + 1)?)
        }
        // Go writes the zero time as an empty message, and JSON `null` for it.
        (Ty::Time, WireValue::Bytes([])) => return Ok(None),
        (Ty::Time, WireValue::Bytes(bytes)) => Value::String(format_time(seconds(bytes)?)?),
        (Ty::IntOrString, WireValue::Bytes(bytes)) => int_or_string(bytes, field, msg)?,
        (Ty::FieldsV1, WireValue::Bytes(bytes)) => {
            let mut raw: &[u8] = &[];
            let mut reader = Reader::new(bytes, "FieldsV1");
            while let Some((number, wire)) = reader.next_field()? {
                if let (1, WireValue::Bytes(bytes)) = (number, wire) {
                    raw = bytes;
                }
            }
            if raw.is_empty() {
                return Ok(None);
            }
            serde_json::from_slice(raw).map_err(|e| {
                ProtobufError::Malformed(format!("{}.{} is not JSON: {e}", msg.name, field.json))
            })?
        }
        _ => return Err(mismatch()),
    };
    Ok(Some(value))
}

/// The seconds of a `Time {1: seconds, 2: nanos}`; the nanos are dropped, as Go's RFC 3339
/// JSON form does.
fn seconds(bytes: &[u8]) -> Result<i64, ProtobufError> {
    let mut reader = Reader::new(bytes, "Time");
    let mut seconds = 0;
    while let Some((number, wire)) = reader.next_field()? {
        if let (1, WireValue::Varint(v)) = (number, wire) {
            seconds = v as i64;
        }
    }
    Ok(seconds)
}

/// `IntOrString {1: type, 2: intVal, 3: strVal}`: type 0 is a number, type 1 a string.
fn int_or_string(bytes: &[u8], field: &Field, msg: &Message) -> Result<Value, ProtobufError> {
    let mut reader = Reader::new(bytes, "IntOrString");
    let (mut kind, mut int_val, mut str_val) = (0u64, 0i32, String::new());
    while let Some((number, wire)) = reader.next_field()? {
        match (number, wire) {
            (1, WireValue::Varint(v)) => kind = v,
            (2, WireValue::Varint(v)) => int_val = v as u32 as i32,
            (3, _) => str_val = utf8(wire, field, msg)?,
            _ => {}
        }
    }
    match kind {
        0 => Ok(Value::from(int_val)),
        1 => Ok(Value::String(str_val)),
        other => Err(ProtobufError::Malformed(format!(
            "{}.{}: IntOrString type {other} is neither 0 nor 1",
            msg.name, field.json
        ))),
    }
}

/// Whether an `omitempty` field's value is Go's zero value for it.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
    }
}
