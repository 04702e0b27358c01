//! The `scale` subresource: an `autoscaling/v1 Scale` view of a StatefulSet's replicas.
//!
//! GET builds the Scale from the set; PUT and PATCH compute the new Scale and write its
//! `spec.replicas` back through the normal update path (so generation bumps and validation run).

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use stead_api::selector::LabelSelector;
use stead_api::{ApiError, FieldError, meta, schema};

use crate::app::App;
use crate::request::{Query, Target, content_type, decode_body};
use crate::response::json_response;

/// The Scale of a StatefulSet (upstream `scaleFromStatefulSet`).
pub fn scale_of(set: &Value) -> Value {
    let selector = set
        .pointer("/spec/selector")
        .and_then(|s| {
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(
                s.clone(),
            )
            .ok()
        })
        .and_then(|s| LabelSelector::from_label_selector(&s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let m = set.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": pick("name"),
            "namespace": pick("namespace"),
            "uid": pick("uid"),
            "resourceVersion": pick("resourceVersion"),
            "creationTimestamp": pick("creationTimestamp"),
        },
        "spec": {"replicas": set.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": set.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

pub async fn serve(
    app: &App,
    target: &Target,
    method: &Method,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let rt = target.rt;
    let ns = &target.namespace;
    let name = target.name.clone().unwrap_or_default();
    match *method {
        Method::GET => {
            let set = app.registry.get(rt, ns, &name).await?;
            Ok(json_response(StatusCode::OK, &scale_of(&set)))
        }
        Method::PUT | Method::PATCH => {
            let opts = crate::handlers::write_options(query, headers)?;
            let ct = content_type(headers);
            let put_body = if *method == Method::PUT {
                Some(decode_body(&ct, body)?)
            } else {
                None
            };
            let root = schema::definition_name("autoscaling", "v1", "Scale").unwrap_or("");
            let written = app
                .registry
                .update_with(rt, ns, &name, None, &opts, |current| {
                    let set =
                        current.ok_or_else(|| ApiError::not_found(rt.group, rt.plural, &name))?;
                    let old_scale = scale_of(set);
                    let new_scale = match &put_body {
                        Some(b) => b.clone(),
                        None => crate::handlers::apply_patch(
                            rt,
                            root,
                            &ct,
                            body,
                            Some(&old_scale),
                            query,
                        )?,
                    };
                    let (new_scale, _) = app.registry.admit(
                        "autoscaling",
                        "v1",
                        "Scale",
                        new_scale,
                        opts.validation,
                    )?;
                    let replicas = new_scale
                        .pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if replicas < 0 {
                        return Err(ApiError::invalid(
                            "autoscaling",
                            "Scale",
                            &name,
                            &[FieldError::invalid(
                                "spec.replicas",
                                replicas,
                                "must be greater than or equal to 0",
                            )],
                        ));
                    }
                    let mut next = set.clone();
                    next["spec"]["replicas"] = json!(replicas);
                    // The Scale's resourceVersion (if any) is the precondition on the set.
                    let rv = meta::resource_version(&new_scale).to_string();
                    meta::set_str(&mut next, "resourceVersion", &rv);
                    Ok(next)
                })
                .await?;
            Ok(json_response(StatusCode::OK, &scale_of(&written.object)))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_mirrors_the_set() {
        let set = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "12", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "nginx"}}},
            "status": {"replicas": 3}
        });
        let s = scale_of(&set);
        assert_eq!(s["spec"]["replicas"], 5);
        assert_eq!(s["status"], json!({"replicas": 3, "selector": "app=nginx"}));
        assert_eq!(s["metadata"]["resourceVersion"], "12");
    }
}
