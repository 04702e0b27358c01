//! Router tests without sockets: every verb, the error shapes kubectl prints, and the content
//! types clients send, driven through `router.oneshot` over an in-memory store.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use stead_apiserver::app::{App, router};
use stead_apiserver::registry::Registry;
use stead_storage::embedded::EmbeddedStore;
use tower::ServiceExt;

struct Harness {
    router: axum::Router,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
    raw: Vec<u8>,
}

impl Harness {
    async fn new() -> Self {
        let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
        let registry = Registry::new(store, Default::default());
        stead_apiserver::bootstrap::ensure_defaults(&registry)
            .await
            .unwrap();
        let mut app = App::new(registry);
        app.require_auth = false;
        Self {
            router: router(Arc::new(app)),
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    async fn json(&self, method: Method, uri: &str, body: Value) -> Reply {
        self.call(
            method,
            uri,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, &[], Body::empty()).await
    }
}

fn web_sts() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "serviceName": "nginx",
            "replicas": 3,
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "registry.k8s.io/nginx-slim:0.24",
                    "ports": [{"containerPort": 80, "name": "web"}]}]}
            }
        }
    })
}

const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets";

#[tokio::test]
async fn create_then_get_returns_the_object_with_server_metadata() {
    let h = Harness::new().await;
    let r = h.json(Method::POST, STS, web_sts()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let m = &r.body["metadata"];
    assert_eq!(m["namespace"], "default");
    assert_eq!(m["generation"], 1);
    assert!(m["uid"].as_str().unwrap().len() >= 32);
    assert!(m["creationTimestamp"].is_string());
    let rv = m["resourceVersion"].as_str().unwrap().to_string();
    let g = h.get(&format!("{STS}/web")).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body["metadata"]["resourceVersion"], rv);
    assert_eq!(g.body["spec"]["replicas"], 3);
}

#[tokio::test]
async fn get_of_a_missing_object_is_the_upstream_not_found_status() {
    let h = Harness::new().await;
    let r = h.get(&format!("{STS}/nope")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        r.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "statefulsets.apps \"nope\" not found", "reason": "NotFound",
               "details": {"name": "nope", "group": "apps", "kind": "statefulsets"}, "code": 404})
    );
}

#[tokio::test]
async fn creating_twice_is_already_exists() {
    let h = Harness::new().await;
    let body = json!({"metadata": {"name": "c"}, "data": {"a": "b"}});
    assert_eq!(
        h.json(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            body.clone()
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let r = h
        .json(Method::POST, "/api/v1/namespaces/default/configmaps", body)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["reason"], "AlreadyExists");
    assert_eq!(r.body["message"], "configmaps \"c\" already exists");
}

#[tokio::test]
async fn stale_update_is_a_conflict_with_the_optimistic_lock_message() {
    let h = Harness::new().await;
    let created = h.json(Method::POST, STS, web_sts()).await.body;
    let mut first = created.clone();
    first["spec"]["replicas"] = json!(4);
    assert_eq!(
        h.json(Method::PUT, &format!("{STS}/web"), first)
            .await
            .status,
        StatusCode::OK
    );
    let mut stale = created;
    stale["spec"]["replicas"] = json!(5);
    let r = h.json(Method::PUT, &format!("{STS}/web"), stale).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["reason"], "Conflict");
    assert_eq!(
        r.body["message"],
        "Operation cannot be fulfilled on statefulsets.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn spec_changes_bump_generation_and_label_changes_do_not() {
    let h = Harness::new().await;
    h.json(Method::POST, STS, web_sts()).await;
    let patch = |ct: &'static str, body: &'static str| {
        let h = &h;
        async move {
            h.call(
                Method::PATCH,
                &format!("{STS}/web"),
                &[("content-type", ct)],
                body,
            )
            .await
        }
    };
    let r = patch(
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"tier":"db"}}}"#,
    )
    .await;
    assert_eq!(r.body["metadata"]["generation"], 1);
    let r = patch("application/merge-patch+json", r#"{"spec":{"replicas":5}}"#).await;
    assert_eq!(r.body["metadata"]["generation"], 2);
    let r = patch(
        "application/json-patch+json",
        r#"[{"op":"replace","path":"/spec/replicas","value":6}]"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["spec"]["replicas"], 6);
}

#[tokio::test]
async fn status_writes_ignore_spec_and_main_writes_ignore_status() {
    let h = Harness::new().await;
    h.json(Method::POST, STS, web_sts()).await;
    let r = h
        .call(
            Method::PATCH,
            &format!("{STS}/web/status"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"spec":{"replicas":9},"status":{"replicas":2,"observedGeneration":1}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["spec"]["replicas"], 3);
    assert_eq!(r.body["status"]["replicas"], 2);
    let r = h
        .call(
            Method::PATCH,
            &format!("{STS}/web"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"status":{"replicas":7}}"#,
        )
        .await;
    assert_eq!(r.body["status"]["replicas"], 2);
}

#[tokio::test]
async fn scale_subresource_speaks_autoscaling_v1_and_writes_replicas() {
    let h = Harness::new().await;
    h.json(Method::POST, STS, web_sts()).await;
    let r = h.get(&format!("{STS}/web/scale")).await;
    assert_eq!(r.body["apiVersion"], "autoscaling/v1");
    assert_eq!(r.body["kind"], "Scale");
    assert_eq!(r.body["spec"]["replicas"], 3);
    assert_eq!(r.body["status"]["selector"], "app=nginx");
    let r = h
        .call(
            Method::PATCH,
            &format!("{STS}/web/scale"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"spec":{"replicas":5}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["spec"]["replicas"], 5);
    let set = h.get(&format!("{STS}/web")).await.body;
    assert_eq!(set["spec"]["replicas"], 5);
    assert_eq!(set["metadata"]["generation"], 2);
    // PUT without a Content-Type, as kubectl scale --current-replicas sends it.
    let mut scale = h.get(&format!("{STS}/web/scale")).await.body;
    scale["spec"]["replicas"] = json!(1);
    let r = h
        .call(
            Method::PUT,
            &format!("{STS}/web/scale"),
            &[],
            scale.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        h.get(&format!("{STS}/web")).await.body["spec"]["replicas"],
        1
    );
}

#[tokio::test]
async fn list_filters_by_label_and_field_and_paginates() {
    let h = Harness::new().await;
    for (name, app) in [("a", "x"), ("b", "y"), ("c", "x"), ("d", "x")] {
        let body = json!({"metadata": {"name": name, "labels": {"app": app}}});
        h.json(Method::POST, "/api/v1/namespaces/default/configmaps", body)
            .await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = h
        .get("/api/v1/namespaces/default/configmaps?labelSelector=app%3Dx")
        .await;
    assert_eq!(names(&r.body), ["a", "c", "d"]);
    assert_eq!(r.body["kind"], "ConfigMapList");
    let r = h
        .get("/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Db")
        .await;
    assert_eq!(names(&r.body), ["b"]);
    let first = h.get("/api/v1/namespaces/default/configmaps?limit=2").await;
    assert_eq!(names(&first.body), ["a", "b"]);
    let token = first.body["metadata"]["continue"].as_str().unwrap();
    let second = h
        .get(&format!(
            "/api/v1/namespaces/default/configmaps?limit=2&continue={token}"
        ))
        .await;
    assert_eq!(names(&second.body), ["c", "d"]);
    assert!(second.body["metadata"].get("continue").is_none());
    let bad = h
        .get("/api/v1/namespaces/default/configmaps?fieldSelector=spec.foo%3Db")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tables_are_served_when_kubectl_asks() {
    let h = Harness::new().await;
    h.json(Method::POST, STS, web_sts()).await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let r = h
        .call(Method::GET, STS, &[("accept", accept)], Body::empty())
        .await;
    assert_eq!(r.body["kind"], "Table");
    let cols: Vec<&str> = r.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Ready", "Age", "Containers", "Images"]);
    assert_eq!(r.body["rows"][0]["cells"][0], "web");
    assert_eq!(r.body["rows"][0]["cells"][1], "0/3");
    assert_eq!(r.body["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn delete_returns_a_success_status_and_the_object_is_gone() {
    let h = Harness::new().await;
    h.json(
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "c"}}),
    )
    .await;
    let r = h
        .json(
            Method::DELETE,
            "/api/v1/namespaces/default/configmaps/c",
            json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "Success");
    assert_eq!(r.body["details"]["name"], "c");
    assert_eq!(
        h.get("/api/v1/namespaces/default/configmaps/c")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn finalizers_hold_an_object_until_they_are_removed() {
    let h = Harness::new().await;
    let body = json!({"metadata": {"name": "c", "finalizers": ["example.com/hold"]}});
    h.json(Method::POST, "/api/v1/namespaces/default/configmaps", body)
        .await;
    let r = h
        .call(
            Method::DELETE,
            "/api/v1/namespaces/default/configmaps/c",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        h.get("/api/v1/namespaces/default/configmaps/c")
            .await
            .status,
        StatusCode::OK
    );
    let r = h
        .call(
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/c",
            &[("content-type", "application/merge-patch+json")],
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        h.get("/api/v1/namespaces/default/configmaps/c")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let h = Harness::new().await;
    let r = h
        .json(Method::POST, &format!("{STS}?dryRun=All"), web_sts())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        h.get(&format!("{STS}/web")).await.status,
        StatusCode::NOT_FOUND
    );
    h.json(Method::POST, STS, web_sts()).await;
    let r = h
        .json(
            Method::DELETE,
            &format!("{STS}/web"),
            json!({"dryRun": ["All"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(h.get(&format!("{STS}/web")).await.status, StatusCode::OK);
}

// Ref: dry-run allocation in pkg/registry/core/service/storage (upstream answers with the
// address and ports a real create would get, and keeps none of them).
#[tokio::test]
async fn a_dry_run_service_create_shows_its_allocations_and_keeps_none() {
    let h = Harness::new().await;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}
    });
    let r = h
        .json(Method::POST, &format!("{svcs}?dryRun=All"), svc.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ip = r.body["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.43."), "{ip}");
    assert_eq!(r.body["spec"]["clusterIPs"], json!([ip]));
    let port = r.body["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    assert_eq!(
        h.get(&format!("{svcs}/np")).await.status,
        StatusCode::NOT_FOUND
    );

    // Nothing was kept: a real create may ask for exactly what the dry run showed.
    let mut real = svc.clone();
    real["spec"]["clusterIP"] = json!(ip);
    real["spec"]["ports"][0]["nodePort"] = json!(port);
    let r = h.json(Method::POST, svcs, real).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // And a dry run that asks for a taken address is refused as a real create would be.
    let mut other = svc;
    other["metadata"]["name"] = json!("other");
    other["spec"]["clusterIP"] = json!(ip);
    let r = h
        .json(Method::POST, &format!("{svcs}?dryRun=All"), other)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("already allocated"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn bodies_in_yaml_and_without_content_type_are_accepted() {
    let h = Harness::new().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yml\ndata:\n  k: v\n";
    let r = h
        .call(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            &[("content-type", "application/yaml")],
            yaml,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h
        .call(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            &[],
            r#"{"metadata":{"name":"n"}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_and_change_nothing() {
    let h = Harness::new().await;
    let r = h
        .json_raw("/api/v1/namespaces/default/configmaps", "{not json")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["reason"], "BadRequest");
    let big = format!(
        r#"{{"metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let r = h
        .json_raw("/api/v1/namespaces/default/configmaps", &big)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = h
        .call(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            &[("content-type", "text/plain")],
            "x",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let list = h.get("/api/v1/namespaces/default/configmaps").await;
    assert_eq!(list.body["items"], json!([]));
}

#[tokio::test]
async fn objects_in_missing_namespaces_are_not_found() {
    let h = Harness::new().await;
    let r = h
        .json(
            Method::POST,
            "/api/v1/namespaces/ghost/configmaps",
            json!({"metadata": {"name": "c"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["message"], "namespaces \"ghost\" not found");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_status_errors() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/namespaces/default/widgets").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["message"],
        "the server could not find the requested resource"
    );
    let r = h
        .call(Method::POST, &format!("{STS}/web/status"), &[], "{}")
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn strict_field_validation_rejects_unknown_fields_and_warn_reports_them() {
    let h = Harness::new().await;
    let body = json!({"metadata": {"name": "c"}, "bogusField": 1});
    let r = h
        .json(
            Method::POST,
            "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogusField\""
    );
    let r = h
        .json(
            Method::POST,
            "/api/v1/namespaces/default/configmaps?fieldValidation=Warn",
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.headers[header::WARNING],
        "299 - \"unknown field \\\"bogusField\\\"\""
    );
    assert!(r.body.get("bogusField").is_none());
}

#[tokio::test]
async fn discovery_and_version_describe_the_served_api() {
    let h = Harness::new().await;
    let v = h.get("/version").await;
    assert_eq!(
        (v.body["major"].as_str(), v.body["minor"].as_str()),
        (Some("1"), Some("33"))
    );
    let apis = h.get("/apis").await;
    let names: Vec<&str> = apis.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"apps") && names.contains(&"storage.k8s.io"));
    let core = h.get("/api/v1").await;
    assert!(
        core.body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "pods/status")
    );
    let index = h.get("/openapi/v3").await;
    let url = index.body["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = h.get(&url).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(!doc.raw.is_empty());
}

#[tokio::test]
async fn a_deleted_namespace_terminates_until_finalized() {
    let h = Harness::new().await;
    h.json(
        Method::POST,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "demo"}}),
    )
    .await;
    let r = h
        .call(
            Method::DELETE,
            "/api/v1/namespaces/demo",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"]["phase"], "Terminating");
    let ns = h.get("/api/v1/namespaces/demo").await.body;
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    let r = h
        .json(
            Method::POST,
            "/api/v1/namespaces/demo/configmaps",
            json!({"metadata": {"name": "c"}}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "no new content in a terminating namespace"
    );
    let mut finalize = ns.clone();
    finalize["spec"]["finalizers"] = json!([]);
    let r = h
        .json(Method::PUT, "/api/v1/namespaces/demo/finalize", finalize)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        h.get("/api/v1/namespaces/demo").await.status,
        StatusCode::NOT_FOUND
    );
}

impl Harness {
    async fn json_raw(&self, uri: &str, body: &str) -> Reply {
        self.call(
            Method::POST,
            uri,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }
}

#[tokio::test]
async fn events_written_through_events_k8s_io_are_core_events_too() {
    let h = Harness::new().await;
    let e = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.1"},
        "regarding": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "namespace": "default", "uid": "u1"},
        "note": "create Pod web-0 in StatefulSet web successful",
        "reason": "SuccessfulCreate", "type": "Normal", "action": "Create",
        "reportingController": "statefulset-controller", "reportingInstance": "stead",
        "eventTime": "2026-01-01T00:00:00.000000Z",
    });
    let r = h
        .json(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/default/events",
            e,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["regarding"]["name"], "web");
    let core = h
        .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.uid%3Du1")
        .await;
    let items = core.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", core.body);
    assert_eq!(items[0]["apiVersion"], "v1");
    assert_eq!(items[0]["involvedObject"]["name"], "web");
    assert_eq!(
        items[0]["message"],
        "create Pod web-0 in StatefulSet web successful"
    );
    let v1 = h
        .get("/apis/events.k8s.io/v1/namespaces/default/events/web.1")
        .await;
    assert_eq!(
        v1.body["note"],
        "create Pod web-0 in StatefulSet web successful"
    );
    assert_eq!(v1.body["apiVersion"], "events.k8s.io/v1");
}

#[tokio::test]
async fn an_explicit_policy_replaces_the_garbage_collection_finalizer() {
    // Ref: upstream store deletionFinalizersForGarbageCollection
    let h = Harness::new().await;
    h.json(
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "c", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    let uri = "/api/v1/namespaces/default/configmaps/c";
    let r = h
        .json(Method::DELETE, uri, json!({"propagationPolicy": "Orphan"}))
        .await;
    assert_eq!(
        r.body["metadata"]["finalizers"],
        json!(["example.com/hold", "orphan"])
    );
    let r = h
        .json(
            Method::DELETE,
            uri,
            json!({"propagationPolicy": "Foreground"}),
        )
        .await;
    assert_eq!(
        r.body["metadata"]["finalizers"],
        json!(["example.com/hold", "foregroundDeletion"])
    );
    let r = h.call(Method::DELETE, uri, &[], Body::empty()).await;
    assert_eq!(
        r.body["metadata"]["finalizers"],
        json!(["example.com/hold", "foregroundDeletion"]),
        "no policy keeps them"
    );
    let r = h
        .json(
            Method::DELETE,
            uri,
            json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(
        r.body["metadata"]["finalizers"],
        json!(["example.com/hold"])
    );
}

/// Reads newline-delimited watch events from a streaming body.
struct EventReader {
    body: Body,
    buf: Vec<u8>,
}

impl EventReader {
    async fn open(h: &Harness, uri: &str) -> Self {
        let req = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let resp = h.router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        Self {
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }

    async fn next(&mut self) -> Value {
        use http_body_util::BodyExt;
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return serde_json::from_slice(&line).unwrap();
            }
            let frame = tokio::time::timeout(std::time::Duration::from_secs(20), self.body.frame())
                .await
                .expect("an event within 20 s")
                .expect("stream open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn every_watcher_sees_each_change_once_in_order() {
    let h = Harness::new().await;
    let rv = h.get(CMS).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut a = EventReader::open(&h, &format!("{CMS}?watch=true&resourceVersion={rv}")).await;
    let mut b = EventReader::open(&h, &format!("{CMS}?watch=true&resourceVersion={rv}")).await;
    h.json(Method::POST, CMS, json!({"metadata": {"name": "one"}}))
        .await;
    h.call(
        Method::PATCH,
        &format!("{CMS}/one"),
        &[("content-type", "application/merge-patch+json")],
        r#"{"data":{"k":"v"}}"#,
    )
    .await;
    h.call(Method::DELETE, &format!("{CMS}/one"), &[], Body::empty())
        .await;
    for w in [&mut a, &mut b] {
        let kinds = [w.next().await, w.next().await, w.next().await];
        let types: Vec<&str> = kinds.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
        assert_eq!(kinds[1]["object"]["data"]["k"], "v");
        let revs: Vec<u64> = kinds
            .iter()
            .map(|e| {
                e["object"]["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(revs.windows(2).all(|p| p[0] < p[1]), "{revs:?}");
    }
}

#[tokio::test]
async fn a_watch_without_resource_version_starts_with_the_current_objects() {
    let h = Harness::new().await;
    h.json(Method::POST, CMS, json!({"metadata": {"name": "a"}}))
        .await;
    let mut w = EventReader::open(&h, &format!("{CMS}?watch=true")).await;
    let first = w.next().await;
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );
    let mut s = EventReader::open(
        &h,
        &format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"),
    )
    .await;
    assert_eq!(s.next().await["type"], "ADDED");
    let end = s.next().await;
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(end["object"]["kind"], "ConfigMap");
}

#[tokio::test]
async fn leaving_a_label_selector_reads_as_deleted() {
    let h = Harness::new().await;
    h.json(
        Method::POST,
        CMS,
        json!({"metadata": {"name": "a", "labels": {"app": "x"}}}),
    )
    .await;
    let rv = h.get(CMS).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut w = EventReader::open(
        &h,
        &format!("{CMS}?watch=true&labelSelector=app%3Dx&resourceVersion={rv}"),
    )
    .await;
    h.call(
        Method::PATCH,
        &format!("{CMS}/a"),
        &[("content-type", "application/merge-patch+json")],
        r#"{"metadata":{"labels":{"app":"y"}}}"#,
    )
    .await;
    h.call(
        Method::PATCH,
        &format!("{CMS}/a"),
        &[("content-type", "application/merge-patch+json")],
        r#"{"metadata":{"labels":{"app":"x"}}}"#,
    )
    .await;
    assert_eq!(w.next().await["type"], "DELETED");
    assert_eq!(w.next().await["type"], "ADDED");
}

#[tokio::test]
async fn concurrent_patches_without_a_resource_version_all_apply() {
    let h = Harness::new().await;
    h.json(Method::POST, CMS, json!({"metadata": {"name": "busy"}}))
        .await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let router = h.router.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"metadata":{{"labels":{{"l{i}":"v"}}}}}}"#);
            let req = Request::builder()
                .method(Method::PATCH)
                .uri(format!("{CMS}/busy"))
                .header("content-type", "application/merge-patch+json")
                .body(Body::from(body))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let labels = h.get(&format!("{CMS}/busy")).await.body["metadata"]["labels"]
        .as_object()
        .unwrap()
        .len();
    assert_eq!(labels, 16, "no patch was lost");
    // A patch that names a stale resourceVersion is a precondition and fails.
    let r = h
        .call(
            Method::PATCH,
            &format!("{CMS}/busy"),
            &[("content-type", "application/merge-patch+json")],
            r#"{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn metrics_count_requests_by_method() {
    let h = Harness::new().await;
    h.get("/api/v1/namespaces").await;
    h.json(Method::POST, CMS, json!({"metadata": {"name": "m"}}))
        .await;
    let text = String::from_utf8(h.get("/metrics").await.raw).unwrap();
    assert!(
        text.contains("apiserver_request_total{verb=\"POST\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("apiserver_request_total{verb=\"GET\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn readyz_waits_for_the_server_to_be_marked_ready() {
    let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
    let app = Arc::new(App::new(Registry::new(store, Default::default())));
    app.ready.store(false, std::sync::atomic::Ordering::Release);
    let r = router(app.clone());
    let get = |r: axum::Router| async move {
        r.oneshot(
            Request::builder()
                .uri("/readyz")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .status()
    };
    assert_eq!(get(r.clone()).await, StatusCode::SERVICE_UNAVAILABLE);
    app.ready.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(get(r).await, StatusCode::OK);
}

// Ref: kube-apiserver's healthz handlers (`?verbose` lists each check).
#[tokio::test]
async fn health_endpoints_answer_ok_or_list_their_checks() {
    let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
    let app = Arc::new(App::new(Registry::new(store, Default::default())));
    let r = router(app.clone());
    let get = |uri: &'static str| {
        let r = r.clone();
        async move {
            let resp = r
                .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    app.ready.store(false, std::sync::atomic::Ordering::Release);
    assert_eq!(
        get("/readyz").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "[+]ping ok\n[-]stead-components failed: reason withheld\nreadyz check failed\n".into()
        )
    );
    app.ready.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(get("/readyz").await, (StatusCode::OK, "ok".into()));
    assert_eq!(
        get("/readyz?verbose").await,
        (
            StatusCode::OK,
            "[+]ping ok\n[+]stead-components ok\nreadyz check passed\n".into()
        )
    );
    assert_eq!(
        get("/livez?verbose=1").await,
        (StatusCode::OK, "[+]ping ok\nlivez check passed\n".into())
    );
    assert_eq!(get("/healthz").await, (StatusCode::OK, "ok".into()));
}
