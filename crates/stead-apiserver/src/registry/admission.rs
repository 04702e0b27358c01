//! Mutating admission the server applies on create, after defaulting and before validation
//! (upstream admission plugins that stead always runs):
//!
//! - `DefaultStorageClass` (`plugin/pkg/admission/storage/storageclass/setdefault`): a
//!   PersistentVolumeClaim created without `spec.storageClassName` (absent — `""` asks for no class)
//!   gets the name of the default StorageClass, the newest one when several are marked default.
//! - `StorageObjectInUseProtection` (`plugin/pkg/admission/storage/storageobjectinuseprotection`):
//!   new claims get the `kubernetes.io/pvc-protection` finalizer and new volumes
//!   `kubernetes.io/pv-protection`, so neither disappears while in use (the PV controller removes
//!   them once unused).
//!
//! The decisions are pure ([`default_class`], [`set_default_class`], [`add_protection`]);
//! [`Registry::admit_create`](super::Registry) reads the classes from the store.

use serde_json::{Value, json};
use stead_api::{ApiError, ResourceType, meta};

/// Marks a StorageClass as the cluster default.
pub const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// The beta spelling upstream still honours.
pub const IS_DEFAULT_CLASS_BETA: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// The beta annotation that named a claim's class before `spec.storageClassName` existed.
pub const BETA_CLAIM_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// True when `class` carries one of the default-class annotations set to `"true"`.
pub fn is_default_class(class: &Value) -> bool {
    [IS_DEFAULT_CLASS, IS_DEFAULT_CLASS_BETA].iter().any(|a| {
        class
            .pointer(&format!("/metadata/annotations/{}", a.replace('/', "~1")))
            .and_then(Value::as_str)
            == Some("true")
    })
}

/// The default class among `classes` (upstream `GetDefaultClass`): of those marked default, the
/// newest by `creationTimestamp`, ties broken by name; `None` when none is marked.
pub fn default_class(classes: &[Value]) -> Option<String> {
    classes
        .iter()
        .filter(|c| is_default_class(c))
        .map(|c| {
            let created = meta::str_field(c, "creationTimestamp")
                .parse::<jiff::Timestamp>()
                .ok();
            (created, meta::name(c).to_string())
        })
        // Newest first; among equal timestamps the smallest name.
        .max_by(|(ta, na), (tb, nb)| ta.cmp(tb).then_with(|| nb.cmp(na)))
        .map(|(_, name)| name)
}

/// Sets `spec.storageClassName` of a claim that has neither it nor the beta annotation.
pub fn set_default_class(claim: &mut Value, default: Option<&str>) {
    let Some(default) = default else {
        return;
    };
    if claim
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null())
    {
        return;
    }
    let beta = format!(
        "/metadata/annotations/{}",
        BETA_CLAIM_CLASS.replace('/', "~1")
    );
    if claim.pointer(&beta).is_some() {
        return;
    }
    if let Some(map) = claim.as_object_mut() {
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if let Some(spec) = spec.as_object_mut() {
            spec.insert("storageClassName".into(), json!(default));
        }
    }
}

/// Adds the in-use protection finalizer of claims and volumes.
pub fn add_protection(rt: &ResourceType, obj: &mut Value) {
    let finalizer = match (rt.group, rt.kind) {
        ("", "PersistentVolumeClaim") => PVC_PROTECTION,
        ("", "PersistentVolume") => PV_PROTECTION,
        _ => return,
    };
    let m = meta::metadata_mut(obj);
    let list = m.entry("finalizers").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(list) = list.as_array_mut()
        && !list.iter().any(|f| f == finalizer)
    {
        list.push(json!(finalizer));
    }
}

impl super::Registry {
    /// The create-time admission above, for the kinds it concerns.
    pub(super) async fn admit_create(
        &self,
        rt: &ResourceType,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if (rt.group, rt.kind) == ("", "PersistentVolumeClaim")
            && obj
                .pointer("/spec/storageClassName")
                .is_none_or(Value::is_null)
        {
            let classes = stead_api::resource::find("storage.k8s.io", "v1", "storageclasses")
                .expect("storageclasses are served");
            let list = self
                .store
                .list(&classes.key_prefix(), Default::default())
                .await
                .map_err(ApiError::internal)?;
            let classes: Vec<Value> = list
                .items
                .iter()
                .filter_map(|kv| super::codec::decode_kv(classes, kv).ok())
                .collect();
            set_default_class(obj, default_class(&classes).as_deref());
        }
        add_protection(rt, obj);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, created: &str, default: Option<&str>) -> Value {
        let mut c = json!({"metadata": {"name": name, "creationTimestamp": created}});
        if let Some(v) = default {
            c["metadata"]["annotations"] = json!({IS_DEFAULT_CLASS: v});
        }
        c
    }

    #[test]
    fn the_newest_default_class_wins_and_ties_go_to_the_smallest_name() {
        // Ref: upstream setdefault admission_test "multiple defaults: choose the newest".
        let classes = vec![
            class("old", "2024-01-01T00:00:00Z", Some("true")),
            class("new", "2024-06-01T00:00:00Z", Some("true")),
            class("newest-not-default", "2025-01-01T00:00:00Z", Some("false")),
            class("plain", "2025-01-01T00:00:00Z", None),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("new"));
        let tied = vec![
            class("b", "2024-01-01T00:00:00Z", Some("true")),
            class("a", "2024-01-01T00:00:00Z", Some("true")),
        ];
        assert_eq!(default_class(&tied).as_deref(), Some("a"));
        assert_eq!(default_class(&classes[2..]), None);
    }

    #[test]
    fn the_beta_default_annotation_counts() {
        let mut c = class("beta", "2024-01-01T00:00:00Z", None);
        c["metadata"]["annotations"] = json!({IS_DEFAULT_CLASS_BETA: "true"});
        assert_eq!(default_class(&[c]).as_deref(), Some("beta"));
    }

    #[test]
    fn only_claims_without_a_class_get_the_default() {
        let mut absent = json!({"spec": {"accessModes": ["ReadWriteOnce"]}});
        set_default_class(&mut absent, Some("local-path"));
        assert_eq!(absent["spec"]["storageClassName"], "local-path");

        let mut empty = json!({"spec": {"storageClassName": ""}});
        set_default_class(&mut empty, Some("local-path"));
        assert_eq!(empty["spec"]["storageClassName"], "", "\"\" means no class");

        let mut named = json!({"spec": {"storageClassName": "fast"}});
        set_default_class(&mut named, Some("local-path"));
        assert_eq!(named["spec"]["storageClassName"], "fast");

        let mut beta = json!({"metadata": {"annotations": {BETA_CLAIM_CLASS: "fast"}}, "spec": {}});
        set_default_class(&mut beta, Some("local-path"));
        assert!(beta["spec"].get("storageClassName").is_none());

        let mut none = json!({"spec": {}});
        set_default_class(&mut none, None);
        assert!(none["spec"].get("storageClassName").is_none());
    }

    #[test]
    fn claims_and_volumes_get_their_protection_finalizer_once() {
        let pvcs = stead_api::resource::find("", "v1", "persistentvolumeclaims").unwrap();
        let mut claim = json!({"metadata": {"finalizers": ["example.com/keep"]}});
        add_protection(pvcs, &mut claim);
        add_protection(pvcs, &mut claim);
        assert_eq!(
            claim["metadata"]["finalizers"],
            json!(["example.com/keep", PVC_PROTECTION])
        );
        let pvs = stead_api::resource::find("", "v1", "persistentvolumes").unwrap();
        let mut volume = json!({"metadata": {}});
        add_protection(pvs, &mut volume);
        assert_eq!(volume["metadata"]["finalizers"], json!([PV_PROTECTION]));
        let cms = stead_api::resource::find("", "v1", "configmaps").unwrap();
        let mut cm = json!({"metadata": {}});
        add_protection(cms, &mut cm);
        assert!(cm["metadata"].get("finalizers").is_none());
    }
}
