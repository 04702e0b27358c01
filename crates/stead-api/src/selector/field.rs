//! Field selectors: `k=v`, `k==v`, `k!=v` terms joined by `,` (AND), with upstream
//! `fields.ParseSelector` escaping (`\,` `\=` `\\`) and error texts.

use std::fmt;

use serde_json::Value;

use super::field_attrs;
use crate::resource::ResourceType;

/// One term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    /// `true` for `!=`.
    pub negated: bool,
    /// The unescaped value; may be empty (`involvedObject.namespace=`).
    pub value: String,
}

/// A parsed field selector: the AND of its terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Upstream `fields.ParseSelector`: terms are split on unescaped commas and sorted as raw
    /// strings; empty terms are skipped.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts.iter().filter(|p| !p.is_empty()) {
            let Some((field, op, rhs)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            terms.push(FieldTerm {
                field: field.to_string(),
                negated: op == "!=",
                value: unescape_value(rhs)?,
            });
        }
        Ok(FieldSelector { terms })
    }

    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Check that every field can be selected on this resource; the error text is upstream's
    /// field-label conversion message (answer it as 400 BadRequest).
    pub fn validate_for(&self, rt: &ResourceType) -> Result<(), String> {
        for term in &self.terms {
            field_attrs::check_supported(rt, &term.field)?;
        }
        Ok(())
    }

    /// Whether `obj` (a full JSON object of type `rt`) satisfies every term. A field the object
    /// does not carry reads as the empty string, like upstream `fields.Set.Get`.
    pub fn matches(&self, rt: &ResourceType, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let actual = field_attrs::field_value(rt, obj, &t.field);
            (actual == t.value) != t.negated
        })
    }

    /// `Some(value)` when the selector pins `field` to one value with `=` (e.g. the
    /// `metadata.name=web` that `kubectl get sts web -w` sends).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// Upstream `Selector.String()`: `field=value` / `field!=value`, values escaped, joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.negated { "!=" } else { "=" };
            write!(f, "{}{op}{}", t.field, escape_value(&t.value))?;
        }
        Ok(())
    }
}

/// Upstream `fields.EscapeValue`.
pub fn escape_value(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace(',', r"\,")
        .replace('=', r"\=")
}

/// Upstream `fields.UnescapeValue`.
pub fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Upstream formats the rune with %v, which prints its code point.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// Split on commas not preceded by a backslash; escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Split a term at the first `!=`, `==` or `=` (checked in that order at each position).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], op, rhs));
            }
        }
    }
    None
}
