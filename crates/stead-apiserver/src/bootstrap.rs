//! Objects every cluster starts with: the `default`, `kube-system`, `kube-public` and
//! `kube-node-lease` namespaces. Created once; existing ones are left alone.

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
    Ok(())
}
