//! The patch machinery of the API server: JSON patch, JSON merge patch, strategic merge patch and
//! server-side apply with `metadata.managedFields`.
//!
//! # Where to start
//! - [`json_patch`] / [`json_merge_patch`] (`json.rs`): RFC 6902 / RFC 7386.
//! - [`strategic_merge_patch`] (`strategic.rs`): Kubernetes strategic merge patch, driven by the
//!   OpenAPI v3 definitions walked in `schema_walk.rs`; list ordering lives in `order.rs`.
//! - [`server_side_apply`] and [`record_update`] (`apply.rs`): `application/apply-patch+yaml` and
//!   ownership tracking for ordinary writes; field sets (`fieldsV1`) live in `managed_fields.rs`.
//! - [`PatchError`] (`error.rs`): every failure, with [`PatchError::to_api_error`] giving the
//!   status upstream answers.

mod apply;
mod error;
mod json;
mod managed_fields;
mod order;
mod schema_walk;
mod strategic;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod strategic_tests;
#[cfg(test)]
mod test_schemas;

pub use apply::{ApplyRequest, record_update, server_side_apply};
pub use error::{Conflict, PatchError};
pub use json::{MAX_JSON_PATCH_OPERATIONS, json_merge_patch, json_patch};
pub use schema_walk::Schema;
pub use strategic::strategic_merge_patch;
