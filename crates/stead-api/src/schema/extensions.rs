//! The patch and list extensions upstream's OpenAPI carries and the k8s-openapi schemas lack.
//!
//! Upstream's `openapi-gen` turns Go struct tags (`patchStrategy:"merge" patchMergeKey:"name"`) and
//! markers (`+listType=map`, `+listMapKey=name`, `+mapType=atomic`, `+structType=atomic`) into
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys` and `x-kubernetes-map-type`. kubectl builds strategic merge patches
//! from them and stead's own strategic merge patch navigates them, so they must be exact.
//!
//! [`FIELDS`] holds one row per annotated field of every type reachable from a served kind,
//! transcribed from the `k8s.io/api` and `k8s.io/apimachinery` v0.33.0 type definitions.
//! [`TYPES`] holds the type-level `+structType` markers. [`apply`] writes both into the generated
//! definitions.

use serde_json::{Map, Value, json};

/// The extensions of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ext {
    pub patch_strategy: Option<&'static str>,
    pub merge_key: Option<&'static str>,
    pub list_type: Option<&'static str>,
    pub map_keys: &'static [&'static str],
    pub map_type: Option<&'static str>,
}

const NONE: Ext = Ext {
    patch_strategy: None,
    merge_key: None,
    list_type: None,
    map_keys: &[],
    map_type: None,
};

/// `+listType=atomic`: the list is replaced as a whole.
const fn atomic() -> Ext {
    Ext {
        list_type: Some("atomic"),
        ..NONE
    }
}

/// `+listType=set`: a list of unique scalars.
const fn set() -> Ext {
    Ext {
        list_type: Some("set"),
        ..NONE
    }
}

/// `+listType=map` with its `+listMapKey`s.
const fn map(keys: &'static [&'static str]) -> Ext {
    Ext {
        list_type: Some("map"),
        map_keys: keys,
        ..NONE
    }
}

/// `+mapType=...` on a map field, or `+structType=...` on a struct field.
const fn map_type(kind: &'static str) -> Ext {
    Ext {
        map_type: Some(kind),
        ..NONE
    }
}

impl Ext {
    /// `patchStrategy:"merge" patchMergeKey:"<key>"`.
    const fn merge(self, key: &'static str) -> Ext {
        Ext {
            patch_strategy: Some("merge"),
            merge_key: Some(key),
            ..self
        }
    }

    /// `patchStrategy:"merge,retainKeys" patchMergeKey:"<key>"`.
    const fn merge_retain(self, key: &'static str) -> Ext {
        Ext {
            patch_strategy: Some("merge,retainKeys"),
            merge_key: Some(key),
            ..self
        }
    }

    /// `patchStrategy:"merge"` on a list of scalars (no merge key).
    const fn merge_scalars(self) -> Ext {
        Ext {
            patch_strategy: Some("merge"),
            ..self
        }
    }

    /// The extensions as JSON object entries, in upstream's names.
    pub(super) fn entries(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if !self.map_keys.is_empty() {
            out.push(("x-kubernetes-list-map-keys", json!(self.map_keys)));
        }
        if let Some(t) = self.list_type {
            out.push(("x-kubernetes-list-type", json!(t)));
        }
        if let Some(t) = self.map_type {
            out.push(("x-kubernetes-map-type", json!(t)));
        }
        if let Some(k) = self.merge_key {
            out.push(("x-kubernetes-patch-merge-key", json!(k)));
        }
        if let Some(s) = self.patch_strategy {
            out.push(("x-kubernetes-patch-strategy", json!(s)));
        }
        out
    }
}

const CORE: &str = "io.k8s.api.core.v1.";
const APPS: &str = "io.k8s.api.apps.v1.";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const STORAGE: &str = "io.k8s.api.storage.v1.";
const DISCOVERY: &str = "io.k8s.api.discovery.v1.";

/// (package prefix, type, field, extensions).
pub(super) static FIELDS: &[(&str, &str, &str, Ext)] = &[
    // meta/v1
    (
        META,
        "ObjectMeta",
        "ownerReferences",
        map(&["uid"]).merge("uid"),
    ),
    (META, "ObjectMeta", "finalizers", set().merge_scalars()),
    (META, "ObjectMeta", "managedFields", atomic()),
    (META, "DeleteOptions", "dryRun", atomic()),
    (META, "StatusDetails", "causes", atomic()),
    (META, "APIResource", "shortNames", atomic()),
    (META, "APIResource", "categories", atomic()),
    (META, "APIResourceList", "resources", atomic()),
    (META, "LabelSelector", "matchExpressions", atomic()),
    (META, "LabelSelectorRequirement", "values", atomic()),
    // core/v1: pods
    (
        CORE,
        "PodSpec",
        "volumes",
        map(&["name"]).merge_retain("name"),
    ),
    (
        CORE,
        "PodSpec",
        "initContainers",
        map(&["name"]).merge("name"),
    ),
    (CORE, "PodSpec", "containers", map(&["name"]).merge("name")),
    (
        CORE,
        "PodSpec",
        "ephemeralContainers",
        map(&["name"]).merge("name"),
    ),
    (CORE, "PodSpec", "nodeSelector", map_type("atomic")),
    (
        CORE,
        "PodSpec",
        "imagePullSecrets",
        map(&["name"]).merge("name"),
    ),
    (CORE, "PodSpec", "tolerations", atomic()),
    (CORE, "PodSpec", "hostAliases", map(&["ip"]).merge("ip")),
    (CORE, "PodSpec", "readinessGates", atomic()),
    (
        CORE,
        "PodSpec",
        "topologySpreadConstraints",
        map(&["topologyKey", "whenUnsatisfiable"]).merge("topologyKey"),
    ),
    (
        CORE,
        "PodSpec",
        "schedulingGates",
        map(&["name"]).merge("name"),
    ),
    (
        CORE,
        "PodSpec",
        "resourceClaims",
        map(&["name"]).merge_retain("name"),
    ),
    (
        CORE,
        "PodStatus",
        "conditions",
        map(&["type"]).merge("type"),
    ),
    (CORE, "PodStatus", "hostIPs", atomic().merge("ip")),
    (CORE, "PodStatus", "podIPs", map(&["ip"]).merge("ip")),
    (CORE, "PodStatus", "initContainerStatuses", atomic()),
    (CORE, "PodStatus", "containerStatuses", atomic()),
    (CORE, "PodStatus", "ephemeralContainerStatuses", atomic()),
    (
        CORE,
        "PodStatus",
        "resourceClaimStatuses",
        map(&["name"]).merge_retain("name"),
    ),
    (
        CORE,
        "ContainerStatus",
        "volumeMounts",
        map(&["mountPath"]).merge("mountPath"),
    ),
    (
        CORE,
        "ContainerStatus",
        "allocatedResourcesStatus",
        map(&["name"]).merge("name"),
    ),
    (CORE, "ResourceStatus", "resources", map(&["resourceID"])),
    (CORE, "LinuxContainerUser", "supplementalGroups", atomic()),
    (CORE, "TopologySpreadConstraint", "matchLabelKeys", atomic()),
    (CORE, "HostAlias", "hostnames", atomic()),
    (CORE, "PodSecurityContext", "supplementalGroups", atomic()),
    (CORE, "PodSecurityContext", "sysctls", atomic()),
    (CORE, "PodDNSConfig", "nameservers", atomic()),
    (CORE, "PodDNSConfig", "searches", atomic()),
    (CORE, "PodDNSConfig", "options", atomic()),
    // core/v1: containers (EphemeralContainer inlines the same common fields)
    (CORE, "Container", "command", atomic()),
    (CORE, "Container", "args", atomic()),
    (
        CORE,
        "Container",
        "ports",
        map(&["containerPort", "protocol"]).merge("containerPort"),
    ),
    (CORE, "Container", "envFrom", atomic()),
    (CORE, "Container", "env", map(&["name"]).merge("name")),
    (CORE, "Container", "resizePolicy", atomic()),
    (
        CORE,
        "Container",
        "volumeMounts",
        map(&["mountPath"]).merge("mountPath"),
    ),
    (
        CORE,
        "Container",
        "volumeDevices",
        map(&["devicePath"]).merge("devicePath"),
    ),
    (CORE, "EphemeralContainer", "command", atomic()),
    (CORE, "EphemeralContainer", "args", atomic()),
    (
        CORE,
        "EphemeralContainer",
        "ports",
        map(&["containerPort", "protocol"]).merge("containerPort"),
    ),
    (CORE, "EphemeralContainer", "envFrom", atomic()),
    (
        CORE,
        "EphemeralContainer",
        "env",
        map(&["name"]).merge("name"),
    ),
    (CORE, "EphemeralContainer", "resizePolicy", atomic()),
    (
        CORE,
        "EphemeralContainer",
        "volumeMounts",
        map(&["mountPath"]).merge("mountPath"),
    ),
    (
        CORE,
        "EphemeralContainer",
        "volumeDevices",
        map(&["devicePath"]).merge("devicePath"),
    ),
    (CORE, "ResourceRequirements", "claims", map(&["name"])),
    (CORE, "HTTPGetAction", "httpHeaders", atomic()),
    (CORE, "ExecAction", "command", atomic()),
    (CORE, "Capabilities", "add", atomic()),
    (CORE, "Capabilities", "drop", atomic()),
    // core/v1: scheduling
    (CORE, "NodeSelector", "nodeSelectorTerms", atomic()),
    (CORE, "NodeSelectorTerm", "matchExpressions", atomic()),
    (CORE, "NodeSelectorTerm", "matchFields", atomic()),
    (CORE, "NodeSelectorRequirement", "values", atomic()),
    (
        CORE,
        "TopologySelectorTerm",
        "matchLabelExpressions",
        atomic(),
    ),
    (CORE, "TopologySelectorLabelRequirement", "values", atomic()),
    (
        CORE,
        "PodAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
        atomic(),
    ),
    (
        CORE,
        "PodAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
        atomic(),
    ),
    (
        CORE,
        "PodAntiAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
        atomic(),
    ),
    (
        CORE,
        "PodAntiAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
        atomic(),
    ),
    (CORE, "PodAffinityTerm", "namespaces", atomic()),
    (CORE, "PodAffinityTerm", "matchLabelKeys", atomic()),
    (CORE, "PodAffinityTerm", "mismatchLabelKeys", atomic()),
    (
        CORE,
        "NodeAffinity",
        "preferredDuringSchedulingIgnoredDuringExecution",
        atomic(),
    ),
    // core/v1: volumes
    (CORE, "RBDVolumeSource", "monitors", atomic()),
    (CORE, "RBDPersistentVolumeSource", "monitors", atomic()),
    (CORE, "CephFSVolumeSource", "monitors", atomic()),
    (CORE, "CephFSPersistentVolumeSource", "monitors", atomic()),
    (CORE, "SecretVolumeSource", "items", atomic()),
    (CORE, "SecretProjection", "items", atomic()),
    (CORE, "ISCSIVolumeSource", "portals", atomic()),
    (CORE, "ISCSIPersistentVolumeSource", "portals", atomic()),
    (CORE, "FCVolumeSource", "targetWWNs", atomic()),
    (CORE, "FCVolumeSource", "wwids", atomic()),
    (CORE, "ConfigMapVolumeSource", "items", atomic()),
    (CORE, "ConfigMapProjection", "items", atomic()),
    (CORE, "ProjectedVolumeSource", "sources", atomic()),
    (CORE, "DownwardAPIVolumeSource", "items", atomic()),
    (CORE, "DownwardAPIProjection", "items", atomic()),
    // core/v1: persistent volumes and claims
    (CORE, "PersistentVolumeSpec", "accessModes", atomic()),
    (
        CORE,
        "PersistentVolumeSpec",
        "claimRef",
        map_type("granular"),
    ),
    (CORE, "PersistentVolumeSpec", "mountOptions", atomic()),
    (CORE, "PersistentVolumeClaimSpec", "accessModes", atomic()),
    (CORE, "PersistentVolumeClaimStatus", "accessModes", atomic()),
    (
        CORE,
        "PersistentVolumeClaimStatus",
        "conditions",
        map(&["type"]).merge("type"),
    ),
    (
        CORE,
        "PersistentVolumeClaimStatus",
        "allocatedResourceStatuses",
        map_type("granular"),
    ),
    // core/v1: services, endpoints, accounts, nodes, namespaces
    (
        CORE,
        "ServiceSpec",
        "ports",
        map(&["port", "protocol"]).merge("port"),
    ),
    (CORE, "ServiceSpec", "selector", map_type("atomic")),
    (CORE, "ServiceSpec", "clusterIPs", atomic()),
    (CORE, "ServiceSpec", "externalIPs", atomic()),
    (CORE, "ServiceSpec", "loadBalancerSourceRanges", atomic()),
    (CORE, "ServiceSpec", "ipFamilies", atomic()),
    (
        CORE,
        "ServiceStatus",
        "conditions",
        map(&["type"]).merge("type"),
    ),
    (CORE, "LoadBalancerStatus", "ingress", atomic()),
    (CORE, "LoadBalancerIngress", "ports", atomic()),
    (
        CORE,
        "ServiceAccount",
        "secrets",
        map(&["name"]).merge("name"),
    ),
    (CORE, "ServiceAccount", "imagePullSecrets", atomic()),
    (CORE, "Endpoints", "subsets", atomic()),
    (CORE, "EndpointSubset", "addresses", atomic()),
    (CORE, "EndpointSubset", "notReadyAddresses", atomic()),
    (CORE, "EndpointSubset", "ports", atomic()),
    (CORE, "NodeSpec", "podCIDRs", set().merge_scalars()),
    (CORE, "NodeSpec", "taints", atomic()),
    (
        CORE,
        "NodeStatus",
        "conditions",
        map(&["type"]).merge("type"),
    ),
    (
        CORE,
        "NodeStatus",
        "addresses",
        map(&["type"]).merge("type"),
    ),
    (CORE, "NodeStatus", "images", atomic()),
    (CORE, "NodeStatus", "volumesInUse", atomic()),
    (CORE, "NodeStatus", "volumesAttached", atomic()),
    (CORE, "NodeStatus", "runtimeHandlers", atomic()),
    (CORE, "ContainerImage", "names", atomic()),
    (CORE, "NamespaceSpec", "finalizers", atomic()),
    (
        CORE,
        "NamespaceStatus",
        "conditions",
        map(&["type"]).merge("type"),
    ),
    // apps/v1
    (APPS, "StatefulSetSpec", "volumeClaimTemplates", atomic()),
    (
        APPS,
        "StatefulSetStatus",
        "conditions",
        map(&["type"]).merge("type"),
    ),
    // storage/v1
    (STORAGE, "StorageClass", "mountOptions", atomic()),
    (STORAGE, "StorageClass", "allowedTopologies", atomic()),
    // discovery/v1
    (DISCOVERY, "EndpointSlice", "endpoints", atomic()),
    (DISCOVERY, "EndpointSlice", "ports", atomic()),
    (DISCOVERY, "Endpoint", "addresses", set()),
    (DISCOVERY, "EndpointHints", "forZones", atomic()),
    (DISCOVERY, "EndpointHints", "forNodes", atomic()),
];

/// Type-level `+structType=atomic` markers: (package prefix, type).
pub(super) static ATOMIC_TYPES: &[(&str, &str)] = &[
    (META, "OwnerReference"),
    (META, "LabelSelector"),
    (CORE, "SecretReference"),
    (CORE, "ObjectFieldSelector"),
    (CORE, "ResourceFieldSelector"),
    (CORE, "ConfigMapKeySelector"),
    (CORE, "SecretKeySelector"),
    (CORE, "NodeSelector"),
    (CORE, "NodeSelectorTerm"),
    (CORE, "TopologySelectorTerm"),
    (CORE, "EndpointAddress"),
    (CORE, "EndpointPort"),
    (CORE, "ObjectReference"),
    (CORE, "LocalObjectReference"),
    (CORE, "TypedLocalObjectReference"),
    (DISCOVERY, "EndpointPort"),
];

/// Scalar defaults upstream's OpenAPI declares on list-map key fields: server-side apply
/// completes an applied item's keys with them, so a port applied without `protocol` matches the
/// stored `TCP` port instead of becoming a second entry.
const KEY_DEFAULTS: &[(&str, &str, &str, &str)] = &[
    (CORE, "ContainerPort", "protocol", "TCP"),
    (CORE, "ServicePort", "protocol", "TCP"),
    (CORE, "EndpointPort", "protocol", "TCP"),
    (DISCOVERY, "EndpointPort", "protocol", "TCP"),
];

/// Write the table's extensions into `definitions`. Rows naming a definition or property that
/// does not exist are skipped (a test checks that none do).
pub(super) fn apply(definitions: &mut Map<String, Value>) {
    for (package, ty, field, ext) in FIELDS {
        let name = format!("{package}{ty}");
        let Some(prop) = definitions
            .get_mut(&name)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (key, value) in ext.entries() {
            prop.insert(key.to_string(), value);
        }
    }
    for (package, ty, field, default) in KEY_DEFAULTS {
        if let Some(prop) = definitions
            .get_mut(&format!("{package}{ty}"))
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        {
            prop.insert("default".to_string(), json!(default));
        }
    }
    for (package, ty) in ATOMIC_TYPES {
        if let Some(def) = definitions
            .get_mut(&format!("{package}{ty}"))
            .and_then(Value::as_object_mut)
        {
            def.insert("x-kubernetes-map-type".to_string(), json!("atomic"));
        }
    }
}
