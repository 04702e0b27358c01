//! The shape of the descriptor table: which protobuf field number of which message becomes which
//! JSON key, with which type, and whether a zero value is dropped.
//!
//! The tables themselves live in [`super::meta_messages`], [`super::core_messages`] and
//! [`super::review_messages`];
//! [`message`] looks a message up by name and [`root_message`] maps an
//! envelope's apiVersion/kind to the message of its top-level object.
//!
//! # The zero-value rule
//! Go's protobuf encoder (gogo, proto2) writes every non-pointer field, even when it holds the
//! zero value: `kubectl create configmap x` sends `generateName: ""`, `generation: 0` and an empty
//! `creationTimestamp`. Go's JSON encoder drops those because their JSON tags say `omitempty`.
//! So each field carries a [`Presence`]:
//! - [`Presence::Omit`] (a non-pointer Go field tagged `omitempty`): a zero value (`""`, `0`,
//!   `false`, empty bytes, a message that decoded to `{}`, an `IntOrString` of `0` or `""`) is
//!   left out of the JSON.
//! - [`Presence::Keep`] (a pointer field, which is on the wire only when set, or a field without
//!   `omitempty`): whatever the wire holds is written, zero included — `gracePeriodSeconds: 0`
//!   means "delete now", `port: 0` is what Go's JSON would say.
//!
//! Independent of presence: empty repeated fields and maps cannot be told apart from absent ones
//! on the wire and are never written; map values are always kept (a ConfigMap key may map to
//! `""`); a zero `Time` is never written (Go's JSON writes `null` for it, which means the same).

/// How a field's value is represented on the wire and in JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ty {
    /// `string` → JSON string (must be UTF-8).
    String,
    /// `bytes` → base64 JSON string, as Go's JSON encoding of `[]byte`.
    Bytes,
    /// `int32` (varint, sign-extended to 64 bits when negative) → JSON number.
    Int32,
    /// `int64` (varint) → JSON number.
    Int64,
    /// `bool` (varint) → JSON bool.
    Bool,
    /// `double` (64-bit) → JSON number.
    Double,
    /// A nested message from the table → JSON object.
    Msg(&'static str),
    /// `meta.v1.Time {1: seconds, 2: nanos}` → RFC 3339 string with whole seconds, UTC.
    Time,
    /// `intstr.IntOrString {1: type, 2: intVal, 3: strVal}` → number (type 0) or string (type 1).
    IntOrString,
    /// `meta.v1.FieldsV1 {1: Raw}` → the JSON document held in `Raw`.
    FieldsV1,
}

/// Whether a field holds one value, a list, or a `map<string, _>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Card {
    Single,
    Repeated,
    /// `map<string, Ty>`: on the wire, repeated entry messages `{1: key, 2: value}`.
    Map,
}

/// Whether a zero value is dropped from the JSON (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Presence {
    Omit,
    Keep,
}

/// One field of a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Field {
    pub number: u32,
    pub json: &'static str,
    pub ty: Ty,
    pub card: Card,
    pub presence: Presence,
}

/// One message: its name (unqualified, unique across the table) and its fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Message {
    pub(crate) fn field(&self, number: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.number == number)
    }
}

/// A single field whose zero value is dropped (Go: non-pointer, `omitempty`).
pub(crate) const fn opt(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        card: Card::Single,
        presence: Presence::Omit,
    }
}

/// A single field written whenever it is on the wire (Go: pointer, or no `omitempty`).
pub(crate) const fn keep(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        card: Card::Single,
        presence: Presence::Keep,
    }
}

/// A repeated field.
pub(crate) const fn rep(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        card: Card::Repeated,
        presence: Presence::Omit,
    }
}

/// A `map<string, ty>` field.
pub(crate) const fn map(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        ty,
        card: Card::Map,
        presence: Presence::Omit,
    }
}

/// Every table, searched in order by [`message`].
const TABLES: &[&[Message]] = &[
    super::meta_messages::MESSAGES,
    super::core_messages::MESSAGES,
    super::review_messages::MESSAGES,
];

/// Looks a message up by its unqualified name.
pub(crate) fn message(name: &str) -> Option<&'static Message> {
    TABLES
        .iter()
        .flat_map(|table| table.iter())
        .find(|m| m.name == name)
}

/// The message of a top-level object sent with this apiVersion and kind, if it has a decoder.
///
/// `DeleteOptions` is registered in every group version upstream (and in `meta.k8s.io/v1`), so it
/// is accepted with any apiVersion; `Eviction` is the same message in `policy/v1` and
/// `policy/v1beta1`.
pub(crate) fn root_message(api_version: &str, kind: &str) -> Option<&'static Message> {
    let name = match (api_version, kind) {
        ("v1", "Namespace" | "ConfigMap" | "Secret" | "ServiceAccount" | "Service") => kind,
        ("authentication.k8s.io/v1", "TokenRequest" | "SelfSubjectReview" | "TokenReview") => kind,
        (
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview"
            | "SelfSubjectRulesReview"
            | "SubjectAccessReview"
            | "LocalSubjectAccessReview",
        ) => kind,
        ("policy/v1" | "policy/v1beta1", "Eviction") => kind,
        (_, "DeleteOptions") => kind,
        _ => return None,
    };
    message(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_messages() -> impl Iterator<Item = &'static Message> {
        TABLES.iter().flat_map(|table| table.iter())
    }

    #[test]
    fn every_referenced_message_is_in_the_table() {
        for m in all_messages() {
            for f in m.fields {
                if let Ty::Msg(name) = f.ty {
                    assert!(
                        message(name).is_some(),
                        "{}.{} refers to missing message {name}",
                        m.name,
                        f.json
                    );
                }
            }
        }
    }

    #[test]
    fn message_names_field_numbers_and_json_names_are_unique() {
        let mut names = HashSet::new();
        for m in all_messages() {
            assert!(names.insert(m.name), "message {} listed twice", m.name);
            let mut numbers = HashSet::new();
            let mut jsons = HashSet::new();
            for f in m.fields {
                assert!(
                    numbers.insert(f.number),
                    "{} field number {} listed twice",
                    m.name,
                    f.number
                );
                assert!(
                    jsons.insert(f.json),
                    "{} field {} listed twice",
                    m.name,
                    f.json
                );
            }
        }
    }

    #[test]
    fn served_kinds_have_root_messages_and_others_do_not() {
        assert_eq!(
            root_message("v1", "ConfigMap").map(|m| m.name),
            Some("ConfigMap")
        );
        assert_eq!(
            root_message("policy/v1", "Eviction").map(|m| m.name),
            Some("Eviction")
        );
        assert_eq!(
            root_message("apps/v1", "DeleteOptions").map(|m| m.name),
            Some("DeleteOptions")
        );
        assert_eq!(root_message("apps/v1", "StatefulSet"), None);
        assert_eq!(root_message("v2", "ConfigMap"), None);
    }
}
