//! Writing a response: objects as JSON or YAML, Tables, `metav1.Status` errors and `Warning`
//! headers.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use stead_api::table::{self, IncludeObject};
use stead_api::{ApiError, ResourceType};

use crate::request::Output;

/// An [`ApiError`] on its way out as a `Status` body.
#[derive(Debug)]
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.0.to_status())
    }
}

pub fn json_response(code: StatusCode, body: &Value) -> Response {
    raw_json_response(
        code,
        serde_json::to_vec(body).expect("a Value always serializes"),
    )
}

/// A response from JSON bytes already encoded.
pub fn raw_json_response(code: StatusCode, bytes: Vec<u8>) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .expect("static headers are valid")
}

fn yaml_response(code: StatusCode, body: &Value) -> Response {
    match serde_saphyr::to_string(body) {
        Ok(text) => Response::builder()
            .status(code)
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(text))
            .expect("static headers are valid"),
        Err(e) => Failure(ApiError::internal(format!("encode yaml: {e}"))).into_response(),
    }
}

/// Adds `Warning: 299 - "<text>"` headers.
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// The Table form of `objects` for `rt`, with list metadata.
pub fn to_table(
    rt: &ResourceType,
    objects: &[&Value],
    include: IncludeObject,
    beta: bool,
    list_meta: Value,
) -> Value {
    let mut t = table::table(rt, objects, include, jiff::Timestamp::now());
    t["metadata"] = list_meta;
    if beta {
        t["apiVersion"] = Value::String("meta.k8s.io/v1beta1".into());
    }
    t
}

/// Encodes one object (or list) for the negotiated output. Tables are built from `objects`.
pub fn encode(
    code: StatusCode,
    output: Output,
    rt: &ResourceType,
    body: &Value,
    include: IncludeObject,
) -> Response {
    match output {
        Output::Json => json_response(code, body),
        Output::Yaml => yaml_response(code, body),
        Output::Table { beta } => {
            let (objects, list_meta): (Vec<&Value>, Value) =
                match body.get("items").and_then(Value::as_array) {
                    Some(items)
                        if body
                            .get("kind")
                            .and_then(Value::as_str)
                            .is_some_and(|k| k.ends_with("List")) =>
                    {
                        (
                            items.iter().collect(),
                            body.get("metadata")
                                .cloned()
                                .unwrap_or_else(|| serde_json::json!({})),
                        )
                    }
                    _ => {
                        let rv = body
                            .pointer("/metadata/resourceVersion")
                            .cloned()
                            .unwrap_or(Value::Null);
                        (vec![body], serde_json::json!({"resourceVersion": rv}))
                    }
                };
            json_response(code, &to_table(rt, &objects, include, beta, list_meta))
        }
    }
}
