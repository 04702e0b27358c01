//! The default StorageClass every cluster starts with and the storage admission on create
//! (DefaultStorageClass, StorageObjectInUseProtection), through `router.oneshot` over an
//! in-memory store.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use stead_apiserver::app::{App, router};
use stead_apiserver::registry::Registry;
use stead_storage::embedded::EmbeddedStore;
use tower::ServiceExt;

struct Harness {
    registry: Registry,
    router: axum::Router,
}

impl Harness {
    async fn new() -> Self {
        let store = Arc::new(EmbeddedStore::open_in_memory().unwrap());
        let registry = Registry::new(store, Default::default());
        stead_apiserver::bootstrap::ensure_defaults(&registry)
            .await
            .unwrap();
        let mut app = App::new(registry.clone());
        app.require_auth = false;
        Self {
            registry,
            router: router(Arc::new(app)),
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        ctype: &str,
        body: String,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ctype)
            .body(Body::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let raw = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&raw).unwrap_or(Value::Null))
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, uri, "application/json", body.to_string())
            .await
    }

    async fn merge(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            Method::PATCH,
            uri,
            "application/merge-patch+json",
            body.to_string(),
        )
        .await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, "application/json", String::new())
            .await
    }
}

const PVCS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";
const CLASSES: &str = "/apis/storage.k8s.io/v1/storageclasses";

fn claim(name: &str, class: Option<&str>) -> Value {
    let mut c = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    });
    if let Some(class) = class {
        c["spec"]["storageClassName"] = json!(class);
    }
    c
}

#[tokio::test]
async fn every_cluster_starts_with_the_default_local_path_class() {
    let h = Harness::new().await;
    let (status, class) = h.get(&format!("{CLASSES}/local-path")).await;
    assert_eq!(status, StatusCode::OK, "{class}");
    assert_eq!(
        class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(class["provisioner"], "stead.io/local-path");
    assert_eq!(class["reclaimPolicy"], "Delete");
    assert_eq!(class["volumeBindingMode"], "WaitForFirstConsumer");
}

#[tokio::test]
async fn a_restart_keeps_an_administrators_edit_of_the_class() {
    let h = Harness::new().await;
    let (status, _) = h
        .merge(
            &format!("{CLASSES}/local-path"),
            json!({"metadata": {"annotations": {"storageclass.kubernetes.io/is-default-class": "false"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    stead_apiserver::bootstrap::ensure_defaults(&h.registry)
        .await
        .unwrap();
    let (_, class) = h.get(&format!("{CLASSES}/local-path")).await;
    assert_eq!(
        class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "false"
    );
    // With no default class left, a claim without a class keeps none.
    let (status, c) = h.post(PVCS, claim("plain", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert!(c["spec"].get("storageClassName").is_none(), "{c}");
}

#[tokio::test]
async fn a_claim_without_a_class_gets_the_default_and_an_empty_class_stays_empty() {
    // Ref: upstream DefaultStorageClass admission: nil → default, "" → unchanged.
    let h = Harness::new().await;
    let (status, c) = h.post(PVCS, claim("www-web-0", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["spec"]["storageClassName"], "local-path");
    assert_eq!(c["status"]["phase"], "Pending");
    assert_eq!(
        c["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );

    let (_, c) = h.post(PVCS, claim("none", Some(""))).await;
    assert_eq!(c["spec"]["storageClassName"], "");
    let (_, c) = h.post(PVCS, claim("named", Some("nfs-client"))).await;
    assert_eq!(c["spec"]["storageClassName"], "nfs-client");
}

#[tokio::test]
async fn the_newest_default_class_is_chosen_when_several_are_marked() {
    let h = Harness::new().await;
    // Created in the same second as `local-path` or later: newer, or tied and first by name.
    let (status, _) = h
        .post(
            CLASSES,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": "fast",
                                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                   "provisioner": "stead.io/local-path"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, c) = h.post(PVCS, claim("data", None)).await;
    assert_eq!(c["spec"]["storageClassName"], "fast");
}

#[tokio::test]
async fn volumes_get_the_pv_protection_finalizer_and_invalid_claims_are_refused() {
    let h = Harness::new().await;
    let (status, pv) = h
        .post(
            "/api/v1/persistentvolumes",
            json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"},
                   "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                            "hostPath": {"path": "/tmp/pv-1"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pv}");
    assert_eq!(
        pv["metadata"]["finalizers"],
        json!(["kubernetes.io/pv-protection"])
    );
    assert_eq!(pv["status"]["phase"], "Pending");

    let (status, err) = h
        .post(
            PVCS,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "bad"}, "spec": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err["message"],
        "PersistentVolumeClaim \"bad\" is invalid: [spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
    );

    let (_, _) = h.post(PVCS, claim("www", None)).await;
    let (status, err) = h
        .merge(
            &format!("{PVCS}/www"),
            json!({"spec": {"accessModes": ["ReadWriteMany"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("spec is immutable after creation"),
        "{err}"
    );
}
