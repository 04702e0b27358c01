//! Discovery: `/version`, legacy `/api` `/apis` `/api/v1` `/apis/<g>[/<v>]`, and aggregated
//! discovery (`apidiscovery.k8s.io` v2 and v2beta1) when the client asks for it.
//!
//! Everything is derived from [`stead_api::resource::RESOURCES`].

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stead_api::resource::{self, RESOURCES, ResourceType};

use crate::request::parse_media_types;
use crate::response::json_response;

/// The Kubernetes version stead reports; kubectl's dispatcher picks its binary by the minor.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const KUBE_GIT_VERSION: &str = "v1.33.0";

pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": concat!("stead-", env!("CARGO_PKG_VERSION")),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// Which aggregated discovery version the client asked for, if any.
fn aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for mt in parse_media_types(accept) {
        if mt.essence == "application/json"
            && mt.param("g") == Some("apidiscovery.k8s.io")
            && mt.param("as") == Some("APIGroupDiscoveryList")
        {
            match mt.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        }
        if mt.essence == "application/json" && mt.param("as").is_none() {
            return None;
        }
    }
    None
}

fn group_versions(group: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        if !out.contains(&r.version) {
            out.push(r.version);
        }
    }
    out
}

fn api_resource(r: &ResourceType) -> Value {
    let mut v = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    v
}

/// `APIResourceList` for one group-version.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let rts: Vec<&ResourceType> = resource::resources_of(group, version).collect();
    if rts.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in rts {
        resources.push(api_resource(r));
        for s in r.subresources {
            let mut sv = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if let (Some(g), Some(v)) = (s.group, s.version) {
                sv["group"] = json!(g);
                sv["version"] = json!(v);
            }
            resources.push(sv);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = group_versions(group)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
}

fn discovery_group(group: &str, legacy_name: bool) -> Value {
    let versions: Vec<Value> = group_versions(group)
        .iter()
        .map(|v| {
            let resources: Vec<Value> = resource::resources_of(group, v)
                .map(|r| {
                    let mut e = json!({
                        "resource": r.plural,
                        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.singular,
                        "verbs": r.verbs,
                    });
                    if !r.short_names.is_empty() {
                        e["shortNames"] = json!(r.short_names);
                    }
                    if !r.categories.is_empty() {
                        e["categories"] = json!(r.categories);
                    }
                    let subs: Vec<Value> = r
                        .subresources
                        .iter()
                        .map(|s| {
                            json!({
                                "subresource": s.name,
                                "responseKind": {
                                    "group": s.group.unwrap_or(r.group),
                                    "version": s.version.unwrap_or(r.version),
                                    "kind": s.kind,
                                },
                                "verbs": s.verbs,
                            })
                        })
                        .collect();
                    if !subs.is_empty() {
                        e["subresources"] = json!(subs);
                    }
                    e
                })
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if legacy_name {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({"metadata": metadata, "versions": versions})
}

fn aggregated_response(v: &str, items: Vec<Value>) -> Response {
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{v}"),
        "metadata": {},
        "items": items,
    });
    let mut resp = json_response(StatusCode::OK, &body);
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList");
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, ct.parse().expect("valid header"));
    resp
}

/// `/api`
pub fn core(headers: &HeaderMap) -> Response {
    if let Some(v) = aggregated(headers) {
        return aggregated_response(v, vec![discovery_group("", true)]);
    }
    json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        }),
    )
}

/// `/apis`
pub fn groups(headers: &HeaderMap) -> Response {
    let named: Vec<&str> = resource::groups()
        .into_iter()
        .filter(|g| !g.is_empty())
        .collect();
    if let Some(v) = aggregated(headers) {
        return aggregated_response(v, named.iter().map(|g| discovery_group(g, false)).collect());
    }
    let groups: Vec<Value> = named.iter().map(|g| api_group(g)).collect();
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

/// `/apis/<group>`
pub fn group(group: &str) -> Response {
    if group.is_empty() || group_versions(group).is_empty() {
        return crate::response::Failure(stead_api::ApiError::no_route()).into_response();
    }
    let mut g = api_group(group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    json_response(StatusCode::OK, &g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_statefulsets_with_scale_as_autoscaling() {
        let list = resource_list("apps", "v1").unwrap();
        let res = list["resources"].as_array().unwrap();
        let sts = res.iter().find(|r| r["name"] == "statefulsets").unwrap();
        assert_eq!(sts["shortNames"], json!(["sts"]));
        assert_eq!(sts["categories"], json!(["all"]));
        let scale = res
            .iter()
            .find(|r| r["name"] == "statefulsets/scale")
            .unwrap();
        assert_eq!(
            (
                scale["group"].as_str(),
                scale["version"].as_str(),
                scale["kind"].as_str()
            ),
            (Some("autoscaling"), Some("v1"), Some("Scale"))
        );
    }

    #[test]
    fn aggregated_discovery_is_served_only_when_asked_and_says_so_in_content_type() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
                .parse()
                .unwrap(),
        );
        let r = groups(&h);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        let r = groups(&HeaderMap::new());
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn every_aggregated_resource_has_a_response_kind() {
        for g in resource::groups() {
            let d = discovery_group(g, g.is_empty());
            for v in d["versions"].as_array().unwrap() {
                for r in v["resources"].as_array().unwrap() {
                    assert!(r["responseKind"]["kind"].is_string());
                }
            }
        }
    }
}
