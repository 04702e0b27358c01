//! Tests of [`decode`](super::decode) on real kubectl bodies ([`captured`]), hand-built envelopes
//! ([`hand_built`]), broken input ([`errors`]), and round trips through the test encoder
//! ([`round_trip`]).
//!
//! Hand-built bodies spell field numbers out literally (from upstream `generated.proto`) with the
//! helpers below, so they check the descriptor table instead of reusing it.

mod captured;
mod errors;
mod hand_built;
mod round_trip;

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
pub(super) fn ld(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(number) << 3 | 2);
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

/// A varint field.
pub(super) fn vi(number: u32, v: i64) -> Vec<u8> {
    let mut out = varint(u64::from(number) << 3);
    out.extend(varint(v as u64));
    out
}

pub(super) fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// A map entry `{1: key, 2: value}`.
pub(super) fn entry(number: u32, key: &str, value: &[u8]) -> Vec<u8> {
    ld(number, &cat(&[ld(1, key.as_bytes()), ld(2, value)]))
}
