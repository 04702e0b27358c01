//! JSON rendered exactly like Go's `encoding/json` renders a `map[string]interface{}` (spec §5.1):
//! compact, object keys sorted by byte order at every level, numbers as float64 (`30`, `1e+21`,
//! `1e-7`), and HTML-safe string escaping (`<` → `\u003c`, …). Revision hashes are computed over
//! these bytes, so any drift here would change every revision name.

use std::fmt::Write;

use serde_json::Value;

/// Encodes `value` the way Go's `json.Marshal` encodes the same value decoded into `interface{}`.
pub fn encode(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, &map[key]);
            }
            out.push('}');
        }
    }
}

/// Go's `floatEncoder` for float64: `'f'` format for `1e-6 <= |f| < 1e21` (and 0), otherwise
/// `'e'` with at least two exponent digits, then `e-0N` shortened to `e-N`.
fn write_number(out: &mut String, f: f64) {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // Rust's Display is the shortest round-trip representation without an exponent.
        let _ = write!(out, "{f}");
        return;
    }
    let formatted = format!("{f:e}"); // e.g. "1.5e-7", "1e21"
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    out.push_str(mantissa);
    out.push('e');
    out.push(sign);
    // Go pads to two digits; the cleanup then removes the padding for negative exponents only.
    if digits.len() < 2 && sign == '+' {
        out.push('0');
    }
    out.push_str(digits);
}

fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_keys_are_sorted_at_every_level() {
        let v =
            json!({"b": {"z": 1, "a": 2}, "$patch": "replace", "a": [ {"y": true, "x": null} ]});
        assert_eq!(
            encode(&v),
            r#"{"$patch":"replace","a":[{"x":null,"y":true}],"b":{"a":2,"z":1}}"#
        );
    }

    #[test]
    fn numbers_render_like_go_float64() {
        // Ref: Go encoding/json floatEncoder ('f' in [1e-6, 1e21), 'e' outside, e-07 → e-7)
        let cases = [
            (json!(30), "30"),
            (json!(-2), "-2"),
            (json!(0.5), "0.5"),
            (json!(1e21), "1e+21"),
            (json!(1.5e-7), "1.5e-7"),
            (json!(123456789012345678u64), "123456789012345680"),
            (json!(0), "0"),
        ];
        for (v, want) in cases {
            assert_eq!(encode(&v), want, "{v}");
        }
    }

    #[test]
    fn strings_are_html_escaped_like_go() {
        let v = json!("a<b>&c\"d\\e\nf\u{1}\u{2028}\u{8}");
        assert_eq!(
            encode(&v),
            r#""a\u003cb\u003e\u0026c\"d\\e\nf\u0001\u2028\b""#
        );
    }
}
