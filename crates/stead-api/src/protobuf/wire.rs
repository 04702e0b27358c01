//! The protobuf wire format, read side: a cursor over one message's bytes that yields
//! `(field number, value)` pairs.
//!
//! Only the four wire types proto2 messages use are accepted (varint, 64-bit, length-delimited,
//! 32-bit); the deprecated group types 3 and 4 are rejected as malformed. Every read is bounds
//! checked and reports [`ProtobufError::Truncated`] naming the message being read.

use super::ProtobufError;

/// A value as it sits on the wire, before a descriptor gives it meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WireValue<'a> {
    /// Wire type 0: an unsigned varint (ints, bools and enums are all carried this way).
    Varint(u64),
    /// Wire type 1: eight little-endian bytes (`double`, `fixed64`).
    Fixed64(u64),
    /// Wire type 2: a length-prefixed byte run (strings, bytes, messages, packed repeats).
    Bytes(&'a [u8]),
    /// Wire type 5: four little-endian bytes (`float`, `fixed32`).
    Fixed32(u32),
}

impl WireValue<'_> {
    /// The wire type number, for error messages.
    pub(crate) fn wire_type(&self) -> u8 {
        match self {
            WireValue::Varint(_) => 0,
            WireValue::Fixed64(_) => 1,
            WireValue::Bytes(_) => 2,
            WireValue::Fixed32(_) => 5,
        }
    }
}

/// A cursor over the bytes of one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The message being read, named in errors.
    context: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], context: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            context,
        }
    }

    fn truncated(&self) -> ProtobufError {
        ProtobufError::Truncated {
            message: self.context,
        }
    }

    /// Reads a base-128 varint of at most ten bytes.
    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or_else(|| self.truncated())?;
            self.pos += 1;
            // The tenth byte may only carry the single top bit of a 64-bit value.
            if i == 9 && byte > 1 {
                return Err(ProtobufError::Malformed(format!(
                    "varint overflows 64 bits in {}",
                    self.context
                )));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed(format!(
            "varint longer than ten bytes in {}",
            self.context
        )))
    }

    /// Whether every byte has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads eight little-endian bytes (an element of a packed `double` list).
    pub(crate) fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| self.truncated())?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| self.truncated())?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// Reads the next field, or `None` at the end of the message.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, ProtobufError> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| {
                ProtobufError::Malformed(format!(
                    "invalid field number {} in {}",
                    key >> 3,
                    self.context
                ))
            })?;
        let value = match key & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(self.fixed64()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| self.truncated())?;
                WireValue::Bytes(self.take(len)?)
            }
            5 => {
                let bytes: [u8; 4] = self.take(4)?.try_into().map_err(|_| self.truncated())?;
                WireValue::Fixed32(u32::from_le_bytes(bytes))
            }
            other => {
                return Err(ProtobufError::Malformed(format!(
                    "unsupported wire type {other} for field {number} in {}",
                    self.context
                )));
            }
        };
        Ok(Some((number, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(bytes: &[u8]) -> Result<Vec<(u32, WireValue<'_>)>, ProtobufError> {
        let mut reader = Reader::new(bytes, "Test");
        let mut out = Vec::new();
        while let Some(field) = reader.next_field()? {
            out.push(field);
        }
        Ok(out)
    }

    #[test]
    fn varints_span_several_bytes_least_significant_group_first() {
        // 300 = 0b1_0010_1100 → 0xac 0x02 (the protobuf documentation's example).
        assert_eq!(
            fields(&[0x08, 0xac, 0x02]),
            Ok(vec![(1, WireValue::Varint(300))])
        );
    }

    #[test]
    fn negative_int64_is_a_ten_byte_varint() {
        let mut bytes = vec![0x08];
        bytes.extend([0xff; 9]);
        bytes.push(0x01);
        assert_eq!(fields(&bytes), Ok(vec![(1, WireValue::Varint(u64::MAX))]));
    }

    #[test]
    fn varint_past_sixty_four_bits_is_malformed() {
        let mut bytes = vec![0x08];
        bytes.extend([0xff; 9]);
        bytes.push(0x02);
        assert!(matches!(fields(&bytes), Err(ProtobufError::Malformed(_))));
    }

    #[test]
    fn all_four_wire_types_are_read() {
        let bytes = [
            0x08, 0x05, // 1: varint 5
            0x11, 1, 0, 0, 0, 0, 0, 0, 0, // 2: fixed64 1
            0x1a, 0x02, b'h', b'i', // 3: bytes "hi"
            0x25, 2, 0, 0, 0, // 4: fixed32 2
        ];
        assert_eq!(
            fields(&bytes),
            Ok(vec![
                (1, WireValue::Varint(5)),
                (2, WireValue::Fixed64(1)),
                (3, WireValue::Bytes(b"hi")),
                (4, WireValue::Fixed32(2)),
            ])
        );
    }

    #[test]
    fn length_past_the_end_is_truncated() {
        assert_eq!(
            fields(&[0x0a, 0x05, b'a']),
            Err(ProtobufError::Truncated { message: "Test" })
        );
    }

    #[test]
    fn varint_cut_short_is_truncated() {
        assert_eq!(
            fields(&[0x08, 0x80]),
            Err(ProtobufError::Truncated { message: "Test" })
        );
    }

    #[test]
    fn group_wire_types_and_field_zero_are_malformed() {
        assert!(matches!(fields(&[0x0b]), Err(ProtobufError::Malformed(_))));
        assert!(matches!(
            fields(&[0x00, 0x01]),
            Err(ProtobufError::Malformed(_))
        ));
    }
}
