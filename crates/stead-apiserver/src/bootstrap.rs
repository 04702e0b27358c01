//! Objects every cluster starts with: the `default`, `kube-system`, `kube-public` and
//! `kube-node-lease` namespaces and the `kubernetes` Service (the first address of the service
//! range). Created once; existing ones are left alone.

use serde_json::json;
use stead_api::ApiError;
use stead_api::resource::find;

use crate::registry::{Registry, WriteOptions};

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

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
    Ok(())
}
