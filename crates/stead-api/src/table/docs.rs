//! Column descriptions: upstream takes most of them from the API types' Swagger docs
//! (`metav1.ObjectMeta{}.SwaggerDoc()["name"]`); the same texts ship in k8s-openapi's schemas,
//! so they are read from there.

use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;

/// The description of property `prop` of type `T`, or `""` if the schema has none.
pub(crate) fn doc<T: JsonSchema>(prop: &str) -> String {
    let mut generator = SchemaGenerator::default();
    let schema = T::json_schema(&mut generator);
    schema
        .as_value()
        .get("properties")
        .and_then(|p| p.get(prop))
        .and_then(|p| p.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
