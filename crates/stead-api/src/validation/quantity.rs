//! Just enough of `resource.Quantity` to compare sizes (`1Gi` vs `500Mi`) and test positivity:
//! parsing to an `f64`, which is exact for every size a user writes.

/// The numeric value of a quantity string (`"1Gi"` → 1073741824, `"100m"` → 0.1), or `None`
/// when it is not a quantity.
pub fn parse(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let base: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(base * mult)
}

/// The value of a JSON quantity (string or bare number).
pub fn of_value(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::String(s) => parse(s),
        serde_json::Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes_scale_the_number() {
        assert_eq!(parse("1Gi"), Some(1073741824.0));
        assert_eq!(parse("500M"), Some(5e8));
        assert_eq!(parse("100m"), Some(0.1));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("1Gb"), None);
        assert!(parse("1Gi") > parse("1000Mi"));
    }
}
