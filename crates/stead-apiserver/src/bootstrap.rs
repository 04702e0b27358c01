//! Objects every cluster starts with: the `default`, `kube-system`, `kube-public` and
//! `kube-node-lease` namespaces, the `kubernetes` Service (the first address of the service
//! range) and the default StorageClass `local-path` (provisioner [`LOCAL_PATH_PROVISIONER`],
//! reclaim `Delete`, `WaitForFirstConsumer`). Created once; existing ones are left alone, so an
//! administrator's edits (or deletion of the default annotation) survive restarts.

use serde_json::json;
use stead_api::ApiError;
use stead_api::resource::find;

use crate::registry::{Registry, WriteOptions};

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The provisioner name of stead's local-path provisioner (the PV controller provisions claims of
/// classes naming it; the node agent deletes their directories).
pub const LOCAL_PATH_PROVISIONER: &str = "stead.io/local-path";
/// The StorageClass every cluster starts with, marked default.
pub const LOCAL_PATH_CLASS: &str = "local-path";

pub async fn ensure_defaults(registry: &Registry) -> Result<(), ApiError> {
    let ns = find("", "v1", "namespaces").expect("namespaces are served");
    let opts = WriteOptions {
        field_manager: "stead-bootstrap".into(),
        skip_managed_fields: true,
        ..Default::default()
    };
    for name in SYSTEM_NAMESPACES {
        if registry
            .store()
            .get(&ns.key("", name))
            .await
            .map_err(ApiError::internal)?
            .is_some()
        {
            continue;
        }
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let (obj, _) = registry.admit("", "v1", "Namespace", body, Default::default())?;
        match registry.create(ns, "", obj, &opts).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let svc = find("", "v1", "services").expect("services are served");
    if registry
        .store()
        .get(&svc.key("default", "kubernetes"))
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        let body = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.43.0.1", "type": "ClusterIP", "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        });
        let (obj, _) = registry.admit("", "v1", "Service", body, Default::default())?;
        match registry.create(svc, "default", obj, &opts).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    ensure_local_path_class(registry, &opts).await
}

async fn ensure_local_path_class(registry: &Registry, opts: &WriteOptions) -> Result<(), ApiError> {
    let classes =
        find("storage.k8s.io", "v1", "storageclasses").expect("storageclasses are served");
    if registry
        .store()
        .get(&classes.key("", LOCAL_PATH_CLASS))
        .await
        .map_err(ApiError::internal)?
        .is_some()
    {
        return Ok(());
    }
    let body = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    let (obj, _) = registry.admit(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        body,
        Default::default(),
    )?;
    match registry.create(classes, "", obj, opts).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
