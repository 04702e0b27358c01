//! Reading a request: the resource path, query parameters, the `Accept` header and the body.

use std::collections::HashMap;

use axum::http::HeaderMap;
use serde_json::Value;
use stead_api::{ApiError, ResourceType, resource};

/// Where a resource request points.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: &'static ResourceType,
    /// Namespace from the path; empty for cluster-scoped types and all-namespace lists.
    pub namespace: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` resource paths. `Ok(None)` means the
/// path is not a resource path (discovery and friends handle it).
pub fn parse_target(path: &str) -> Result<Option<Target>, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Ok(None),
    };
    let find = |plural: &str| resource::find(group, version, plural).ok_or_else(ApiError::no_route);
    let (rt, namespace, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if find(plural).is_ok_and(|r| r.namespaced) => {
            (find(plural)?, ns.to_string(), tail)
        }
        // A namespaced kind across all namespaces: its list and watch only.
        [plural] => (find(plural)?, String::new(), &[][..]),
        [plural, tail @ ..] => {
            let rt = find(plural)?;
            if rt.namespaced {
                return Err(ApiError::no_route());
            }
            (rt, String::new(), tail)
        }
        _ => return Err(ApiError::no_route()),
    };
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] => (Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(ApiError::no_route()),
    };
    let target = Target {
        rt,
        namespace,
        name,
        subresource,
    };
    if let Some(sub) = &target.subresource
        && target.rt.subresource(sub).is_none()
    {
        return Err(ApiError::no_route());
    }
    Ok(Some(target))
}

/// Query parameters: the last value wins for scalars, `all` keeps repeats (`dryRun`, `command`).
#[derive(Debug, Clone, Default)]
pub struct Query {
    map: HashMap<String, String>,
    all: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string, tolerating empty segments (kube-rs sends `?&watch=true`).
    pub fn parse(raw: Option<&str>) -> Self {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if k.is_empty() {
                continue;
            }
            q.map.insert(k.to_string(), v.to_string());
            q.all.push((k.to_string(), v.to_string()));
        }
        q
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.all
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid boolean value for {key}: {other:?}"
            ))),
        }
    }

    /// `dryRun=All` (the only accepted value, as upstream).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        let mut dry = false;
        for v in self.all("dryRun") {
            match v {
                "All" => dry = true,
                "" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                    )));
                }
            }
        }
        Ok(dry)
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    }
}

/// One media range of an `Accept` header with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub fn parse_media_types(header: &str) -> Vec<MediaType> {
    header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let essence = pieces.next()?.to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let params = pieces
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect();
            Some(MediaType { essence, params })
        })
        .collect()
}

/// How the response should be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `meta.k8s.io` Table, in `v1` or `v1beta1`.
    Table {
        beta: bool,
    },
}

/// Picks the response encoding from `Accept`. Protobuf is never produced (clients that ask for it
/// list JSON as well); an `Accept` with nothing stead can produce is a 406.
pub fn negotiate(headers: &HeaderMap) -> Result<Output, ApiError> {
    let Some(accept) = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(Output::Json);
    };
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for mt in parse_media_types(accept) {
        match mt.essence.as_str() {
            "application/json" => match mt.param("as") {
                Some("Table") if mt.param("g") == Some("meta.k8s.io") => match mt.param("v") {
                    Some("v1") => return Ok(Output::Table { beta: false }),
                    Some("v1beta1") => return Ok(Output::Table { beta: true }),
                    _ => continue,
                },
                Some(_) => continue,
                None => return Ok(Output::Json),
            },
            "application/yaml" => return Ok(Output::Yaml),
            "*/*" | "application/*" => return Ok(Output::Json),
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(
        "application/json, application/yaml",
    ))
}

/// The request body's media type, `application/json` when absent (the Python client sends
/// bodies without one).
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/json".to_string())
}

/// Decodes an object body by its content type: JSON, YAML or Kubernetes protobuf.
pub fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    match content_type {
        "application/json" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        "application/yaml" | "application/apply-patch+yaml" => decode_yaml(body),
        "application/vnd.kubernetes.protobuf" => {
            stead_api::protobuf::decode(body).map_err(|e| match e {
                stead_api::protobuf::ProtobufError::UnknownKind { .. }
                | stead_api::protobuf::ProtobufError::ContentEncoding(_) => {
                    ApiError::new(415, "UnsupportedMediaType", e.to_string())
                }
                other => ApiError::bad_request(format!(
                    "the body of the request could not be decoded: {other}"
                )),
            })
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// YAML bodies (JSON is valid YAML, which is what kubectl sends as apply patches).
pub fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_item_and_subresource_paths_parse() {
        let t = parse_target("/apis/apps/v1/namespaces/default/statefulsets/web/scale")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.rt.plural, t.namespace.as_str()),
            ("statefulsets", "default")
        );
        assert_eq!(
            (t.name.as_deref(), t.subresource.as_deref()),
            (Some("web"), Some("scale"))
        );
        let t = parse_target("/api/v1/pods").unwrap().unwrap();
        assert_eq!(
            (t.rt.plural, t.namespace.as_str(), t.name),
            ("pods", "", None)
        );
    }

    #[test]
    fn namespaces_themselves_are_cluster_scoped_items() {
        let t = parse_target("/api/v1/namespaces/demo").unwrap().unwrap();
        assert_eq!(
            (t.rt.plural, t.name.as_deref()),
            ("namespaces", Some("demo"))
        );
        let t = parse_target("/api/v1/namespaces/demo/status")
            .unwrap()
            .unwrap();
        assert_eq!(t.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn namespaced_kinds_outside_a_namespace_are_lists_only() {
        let t = parse_target("/api/v1/pods").unwrap().unwrap();
        assert_eq!((t.namespace.as_str(), t.name.as_deref()), ("", None));
        for path in [
            "/api/v1/pods/web-0",
            "/api/v1/pods/web-0/status",
            "/api/v1/nodes/n1/status/extra",
            "/api/v1/namespaces/d/pods/web-0/status/extra",
        ] {
            assert_eq!(parse_target(path).unwrap_err().code, 404, "{path}");
        }
        let t = parse_target("/api/v1/nodes/n1/status").unwrap().unwrap();
        assert_eq!(
            (t.rt.plural, t.name.as_deref(), t.subresource.as_deref()),
            ("nodes", Some("n1"), Some("status"))
        );
    }

    #[test]
    fn unknown_resources_and_subresources_are_not_found() {
        assert_eq!(
            parse_target("/api/v1/namespaces/d/widgets")
                .unwrap_err()
                .code,
            404
        );
        assert_eq!(
            parse_target("/apis/apps/v1/namespaces/d/statefulsets/web/log")
                .unwrap_err()
                .code,
            404
        );
        assert!(parse_target("/api/v1").unwrap().is_none());
    }

    #[test]
    fn kubectl_table_accept_header_selects_a_v1_table() {
        let mut h = HeaderMap::new();
        h.insert(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(negotiate(&h).unwrap(), Output::Table { beta: false });
        h.insert(
            "accept",
            "application/vnd.kubernetes.protobuf,application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(negotiate(&h).unwrap(), Output::Json);
        h.insert(
            "accept",
            "application/vnd.kubernetes.protobuf".parse().unwrap(),
        );
        assert_eq!(negotiate(&h).unwrap_err().code, 406);
    }

    #[test]
    fn query_tolerates_empty_segments_and_keeps_repeats() {
        let q = Query::parse(Some("&watch=true&&command=ls&command=%2F"));
        assert!(q.flag("watch").unwrap());
        assert_eq!(q.all("command").collect::<Vec<_>>(), vec!["ls", "/"]);
    }

    #[test]
    fn missing_content_type_means_json() {
        assert_eq!(content_type(&HeaderMap::new()), "application/json");
        assert_eq!(
            decode_body("application/json", b"{\"a\":1}").unwrap()["a"],
            1
        );
        assert_eq!(decode_body("application/json", b"{").unwrap_err().code, 400);
        assert_eq!(decode_body("text/plain", b"x").unwrap_err().code, 415);
    }

    #[test]
    fn yaml_bodies_decode() {
        let v = decode_body("application/yaml", b"kind: ConfigMap\ndata:\n  a: b\n").unwrap();
        assert_eq!(v["data"]["a"], "b");
    }
}
