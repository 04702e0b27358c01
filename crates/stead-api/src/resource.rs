//! The served resources: one static row per resource type, as discovery publishes it.
//!
//! Everything keyed by resource (storage keys, discovery, OpenAPI paths, tables, strategies) reads
//! this table, so adding a resource starts here.

/// Verbs of a normal resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of a review resource (`selfsubjectaccessreviews`, `tokenreviews`, …): a POST that is
/// answered at once and never stored, so there is nothing to get, list or watch.
pub const CREATE_ONLY: &[&str] = &["create"];
/// Verbs of `status` / `scale` style subresources.
pub const SUB_VERBS: &[&str] = &["get", "patch", "update"];

/// A subresource such as `statefulsets/scale` or `pods/log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// Group/version/kind of the body the subresource speaks (the parent's unless overridden).
    pub group: Option<&'static str>,
    pub version: Option<&'static str>,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// `<Kind>List`; empty for create-only reviews, which have no list.
    pub list_kind: &'static str,
    /// Plural resource name used in URLs (`statefulsets`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub verbs: &'static [&'static str],
    /// Storage key prefix when this type shares its objects with another one (events.k8s.io
    /// Events live with core Events); `None` = its own `/<group>/<plural>/`.
    pub storage_prefix: Option<&'static str>,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `statefulsets.apps`, or `pods` for the core group: how upstream names the resource in messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `StatefulSet.apps`, or `Pod`: how upstream names the kind in `Invalid` messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The storage key prefix shared by every object of this type: `/<group>/<plural>/`
    /// (the core group is spelled `core`).
    pub fn key_prefix(&self) -> String {
        if let Some(p) = self.storage_prefix {
            return p.to_string();
        }
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/{group}/{}/", self.plural)
    }

    /// Storage key of one object: `/<group>/<plural>/<namespace>/<name>` (namespace empty for
    /// cluster-scoped types).
    pub fn key(&self, namespace: &str, name: &str) -> String {
        format!("{}{namespace}/{name}", self.key_prefix())
    }

    /// Storage key prefix of every object of this type in one namespace.
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        format!("{}{namespace}/", self.key_prefix())
    }

    /// A review: POST answers with the request and its computed `status`; nothing is stored
    /// (upstream's `rest.Creater`-only storages), so no list kind, items, GET or watch.
    pub fn is_create_only(&self) -> bool {
        self.verbs == CREATE_ONLY
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

const fn status(kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group: None,
        version: None,
        kind,
        verbs: SUB_VERBS,
    }
}

const fn connect(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group: None,
        version: None,
        kind,
        verbs,
    }
}

macro_rules! rt {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $namespaced:expr,
     short: [$($short:expr),*], cat: [$($cat:expr),*], sub: [$($sub:expr),*]) => {
        ResourceType {
            group: $group,
            version: $version,
            kind: $kind,
            list_kind: concat!($kind, "List"),
            plural: $plural,
            singular: $singular,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$($sub),*],
            verbs: ALL_VERBS,
            storage_prefix: None,
        }
    };
}

/// A create-only v1 review resource (no list kind, short names or subresources).
const fn review(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        kind,
        list_kind: "",
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        verbs: CREATE_ONLY,
        storage_prefix: None,
    }
}

/// Every served resource, in discovery order (groups in preference order, the core group first).
pub static RESOURCES: &[ResourceType] = &[
    rt!("", "v1", "ConfigMap", "configmaps", "configmap", true, short: ["cm"], cat: [], sub: []),
    rt!("", "v1", "Endpoints", "endpoints", "endpoints", true, short: ["ep"], cat: [], sub: []),
    rt!("", "v1", "Event", "events", "event", true, short: ["ev"], cat: [], sub: []),
    rt!("", "v1", "Namespace", "namespaces", "namespace", false, short: ["ns"], cat: [],
        sub: [status("Namespace"), connect("finalize", "Namespace", &["update"])]),
    rt!("", "v1", "Node", "nodes", "node", false, short: ["no"], cat: [], sub: [status("Node")]),
    rt!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true,
        short: ["pvc"], cat: [], sub: [status("PersistentVolumeClaim")]),
    rt!("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false,
        short: ["pv"], cat: [], sub: [status("PersistentVolume")]),
    rt!("", "v1", "Pod", "pods", "pod", true, short: ["po"], cat: ["all"],
    sub: [
        connect("attach", "PodAttachOptions", &["create", "get"]),
        connect("binding", "Binding", &["create"]),
        Subresource { name: "eviction", group: Some("policy"), version: Some("v1"), kind: "Eviction", verbs: &["create"] },
        connect("exec", "PodExecOptions", &["create", "get"]),
        connect("log", "Pod", &["get"]),
        connect("portforward", "PodPortForwardOptions", &["create", "get"]),
        status("Pod")
    ]),
    rt!("", "v1", "Secret", "secrets", "secret", true, short: [], cat: [], sub: []),
    rt!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, short: ["sa"], cat: [], sub: []),
    rt!("", "v1", "Service", "services", "service", true, short: ["svc"], cat: ["all"], sub: [status("Service")]),
    rt!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true,
        short: [], cat: [], sub: []),
    rt!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, short: ["sts"], cat: ["all"],
    sub: [
        Subresource { name: "scale", group: Some("autoscaling"), version: Some("v1"), kind: "Scale", verbs: SUB_VERBS },
        status("StatefulSet")
    ]),
    ResourceType {
        storage_prefix: Some("/core/events/"),
        ..rt!("events.k8s.io", "v1", "Event", "events", "event", true, short: ["ev"], cat: [], sub: [])
    },
    review(
        "authentication.k8s.io",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        false,
    ),
    review(
        "authentication.k8s.io",
        "TokenReview",
        "tokenreviews",
        "tokenreview",
        false,
    ),
    review(
        "authorization.k8s.io",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        true,
    ),
    review(
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        false,
    ),
    review(
        "authorization.k8s.io",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        false,
    ),
    review(
        "authorization.k8s.io",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        false,
    ),
    rt!("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", false,
        short: ["sc"], cat: [], sub: []),
    rt!("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, short: [], cat: [], sub: []),
    rt!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true,
        short: [], cat: [], sub: []),
];

/// The API groups in preference order, the core group (`""`) first.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

/// The resources of one group/version, in discovery order.
pub fn resources_of(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceType> {
    let group = group.to_string();
    let version = version.to_string();
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Look a resource up by its URL coordinates.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Look a resource up by `apiVersion` and `kind` as they appear in an object.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (`""`, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statefulsets_have_scale_as_autoscaling_v1() {
        let sts = find("apps", "v1", "statefulsets").unwrap();
        let scale = sts.subresource("scale").unwrap();
        assert_eq!(
            (scale.group, scale.version, scale.kind),
            (Some("autoscaling"), Some("v1"), "Scale")
        );
        assert_eq!(sts.short_names, &["sts"]);
        assert_eq!(sts.key("default", "web"), "/apps/statefulsets/default/web");
    }

    #[test]
    fn core_group_comes_first_and_keys_say_core() {
        assert_eq!(groups()[0], "");
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.key_prefix(), "/core/pods/");
        assert_eq!(pods.qualified_plural(), "pods");
        assert_eq!(
            find_kind("apps/v1", "StatefulSet")
                .unwrap()
                .qualified_kind(),
            "StatefulSet.apps"
        );
    }

    #[test]
    fn events_k8s_io_events_share_the_core_event_keys() {
        let core = find("", "v1", "events").unwrap();
        let v1 = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.key("default", "e"), v1.key("default", "e"));
    }

    #[test]
    fn reviews_are_create_only_and_only_the_local_one_is_namespaced() {
        let reviews: Vec<(&str, bool)> = RESOURCES
            .iter()
            .filter(|r| r.is_create_only())
            .map(|r| (r.plural, r.namespaced))
            .collect();
        assert_eq!(
            reviews,
            [
                ("selfsubjectreviews", false),
                ("tokenreviews", false),
                ("localsubjectaccessreviews", true),
                ("selfsubjectaccessreviews", false),
                ("selfsubjectrulesreviews", false),
                ("subjectaccessreviews", false),
            ]
        );
        assert!(!find("", "v1", "pods").unwrap().is_create_only());
        let ssar = find("authorization.k8s.io", "v1", "selfsubjectaccessreviews").unwrap();
        assert_eq!(ssar.singular, "selfsubjectaccessreview");
        assert_eq!(ssar.verbs, ["create"]);
    }

    #[test]
    fn every_plural_is_unique_within_its_group() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(!(a.group == b.group && a.version == b.version && a.plural == b.plural));
            }
        }
    }
}
