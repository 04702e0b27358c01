//! Pure Kubernetes API machinery: everything the API server decides without doing IO.
//!
//! # Layout
//! - [`resource`]: the table of served resources (group, version, kind, plural, short names, scope,
//!   subresources) — start here; every other module is keyed by it.
//! - [`error`]: `ApiError` (a `metav1.Status` in waiting) and `FieldError` (one validation cause).
//! - [`convert`]: API versions that share one stored form (the two Event APIs).
//! - [`meta`]: reading and writing `metadata` fields of an object held as JSON.
//! - [`selector`]: label and field selectors (parse, match).
//! - [`patch`]: JSON patch, JSON merge patch, strategic merge patch.
//! - [`schema`]: the OpenAPI v3 documents generated from the k8s-openapi types, and schema walks
//!   (unknown-field detection for `fieldValidation`, patch strategies for strategic merge).
//! - [`table`]: `meta.k8s.io/v1` Table conversion with the upstream columns.
//! - [`defaults`] and [`validation`]: per-kind defaulting and validation.
//! - [`protobuf`]: decoding the protobuf request bodies kubectl 1.32+ sends.
//! - [`review`]: the answers of the create-only review resources (access, rules, identity and
//!   token reviews) under stead's allow-everything authorization.
//! - [`join`]: the join token node agents join a server with (format, CA hash).

pub mod convert;
pub mod defaults;
pub mod error;
pub mod join;
pub mod meta;
pub mod patch;
pub mod protobuf;
pub mod resource;
pub mod review;
pub mod schema;
pub mod selector;
pub mod table;
pub mod validation;

pub use error::{ApiError, FieldError};
pub use resource::ResourceType;
