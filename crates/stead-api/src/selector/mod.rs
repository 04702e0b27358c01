//! Label and field selectors: parse the `labelSelector` / `fieldSelector` query parameters,
//! convert `metav1.LabelSelector`, and match objects held as JSON.
//!
//! Start with [`LabelSelector::parse`] and [`FieldSelector::parse`]; both keep upstream's
//! error texts so they can be answered verbatim as 400 BadRequest messages.
//!
//! # Layout
//! - [`label`]: requirements, matching, canonical string, `metav1.LabelSelector` conversion.
//! - `label_parse`: the label selector lexer and parser.
//! - `validate`: label key / value syntax with upstream messages.
//! - [`field`]: field selector parsing, escaping and matching.
//! - `field_attrs`: the selectable fields of each served kind and their values.

pub mod field;
mod field_attrs;
pub mod label;
mod label_parse;
mod validate;

#[cfg(test)]
mod tests;

pub use field::{FieldSelector, FieldTerm};
pub use label::{LabelSelector, Operator, Requirement};
