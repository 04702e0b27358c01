//! Generating the component schemas from the k8s-openapi types.
//!
//! Start at [`generate`]: it asks schemars for the schema of every served kind (plus the meta
//! types the paths mention), synthesizes the `<Kind>List` schemas (k8s-openapi has no list types
//! with schemas), and then makes the result read like upstream's documents: GVK extensions on
//! top-level kinds, `metadata` not required where upstream's Go tag says `omitempty`, and the
//! patch/list extensions of [`super::extensions`].

use k8s_openapi::Resource;
use k8s_openapi::api::{
    apps, authentication, authorization, autoscaling, coordination, core, discovery, events,
    policy, storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::extensions;
use crate::resource::RESOURCES;

/// Where component schemas live; every `$ref` starts with this.
pub(super) const REF_PREFIX: &str = "#/components/schemas/";

/// A top-level kind and the definition that describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KindDef {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: String,
    pub name: String,
}

/// The generated definitions and the kinds they describe.
pub(super) struct Generated {
    pub definitions: Map<String, Value>,
    pub kinds: Vec<KindDef>,
}

/// Build every definition stead publishes.
pub(super) fn generate() -> Generated {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let mut kinds = Vec::new();
    // The served kinds and the bodies of their subresources.
    add_kind::<core::v1::ConfigMap>(&mut generator, &mut kinds);
    add_kind::<core::v1::Endpoints>(&mut generator, &mut kinds);
    add_kind::<core::v1::Event>(&mut generator, &mut kinds);
    add_kind::<core::v1::Namespace>(&mut generator, &mut kinds);
    add_kind::<core::v1::Node>(&mut generator, &mut kinds);
    add_kind::<core::v1::PersistentVolumeClaim>(&mut generator, &mut kinds);
    add_kind::<core::v1::PersistentVolume>(&mut generator, &mut kinds);
    add_kind::<core::v1::Pod>(&mut generator, &mut kinds);
    add_kind::<core::v1::Secret>(&mut generator, &mut kinds);
    add_kind::<core::v1::ServiceAccount>(&mut generator, &mut kinds);
    add_kind::<core::v1::Service>(&mut generator, &mut kinds);
    add_kind::<core::v1::Binding>(&mut generator, &mut kinds);
    add_kind::<policy::v1::Eviction>(&mut generator, &mut kinds);
    add_kind::<apps::v1::ControllerRevision>(&mut generator, &mut kinds);
    add_kind::<apps::v1::StatefulSet>(&mut generator, &mut kinds);
    add_kind::<autoscaling::v1::Scale>(&mut generator, &mut kinds);
    add_kind::<events::v1::Event>(&mut generator, &mut kinds);
    add_kind::<authentication::v1::SelfSubjectReview>(&mut generator, &mut kinds);
    add_kind::<authentication::v1::TokenReview>(&mut generator, &mut kinds);
    add_kind::<authorization::v1::LocalSubjectAccessReview>(&mut generator, &mut kinds);
    add_kind::<authorization::v1::SelfSubjectAccessReview>(&mut generator, &mut kinds);
    add_kind::<authorization::v1::SelfSubjectRulesReview>(&mut generator, &mut kinds);
    add_kind::<authorization::v1::SubjectAccessReview>(&mut generator, &mut kinds);
    add_kind::<storage::v1::StorageClass>(&mut generator, &mut kinds);
    add_kind::<coordination::v1::Lease>(&mut generator, &mut kinds);
    add_kind::<discovery::v1::EndpointSlice>(&mut generator, &mut kinds);
    add_kind::<meta::Status>(&mut generator, &mut kinds);
    // Meta types the paths reference.
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::APIResourceList>();
    generator.subschema_for::<meta::WatchEvent<()>>();
    generator.subschema_for::<meta::ListMeta>();

    let mut definitions = generator.take_definitions(true);
    add_lists(&mut definitions, &mut kinds);
    for kind in &kinds {
        if let Some(def) = definitions
            .get_mut(&kind.name)
            .and_then(Value::as_object_mut)
        {
            def.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": kind.group, "kind": kind.kind, "version": kind.version}]),
            );
        }
    }
    add_shared_gvks(&mut definitions);
    fix_required(&mut definitions, &kinds);
    spell_scalars_as_upstream(&mut definitions);
    extensions::apply(&mut definitions);
    Generated { definitions, kinds }
}

fn add_kind<T: JsonSchema + Resource>(generator: &mut SchemaGenerator, kinds: &mut Vec<KindDef>) {
    generator.subschema_for::<T>();
    kinds.push(KindDef {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND.to_string(),
        name: T::schema_name().into_owned(),
    });
}

/// Upstream's descriptions of the list kinds: (kind, list, items, metadata).
const LIST_DOCS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "",
        "ConfigMap",
        "ConfigMapList is a resource containing a list of ConfigMap objects.",
        "Items is the list of ConfigMaps.",
        META_MORE_INFO,
    ),
    (
        "",
        "Endpoints",
        "EndpointsList is a list of endpoints.",
        "List of endpoints.",
        STD_LIST,
    ),
    (
        "",
        "Event",
        "EventList is a list of events.",
        "List of events",
        STD_LIST,
    ),
    (
        "",
        "Namespace",
        "NamespaceList is a list of Namespaces.",
        "Items is the list of Namespace objects in the list. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/",
        STD_LIST,
    ),
    (
        "",
        "Node",
        "NodeList is the whole list of all Nodes which have been registered with master.",
        "List of nodes",
        STD_LIST,
    ),
    (
        "",
        "PersistentVolumeClaim",
        "PersistentVolumeClaimList is a list of PersistentVolumeClaim items.",
        "items is a list of persistent volume claims. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#persistentvolumeclaims",
        STD_LIST,
    ),
    (
        "",
        "PersistentVolume",
        "PersistentVolumeList is a list of PersistentVolume items.",
        "items is a list of persistent volumes. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes",
        STD_LIST,
    ),
    (
        "",
        "Pod",
        "PodList is a list of Pods.",
        "List of pods. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
        STD_LIST,
    ),
    (
        "",
        "Secret",
        "SecretList is a list of Secret.",
        "Items is a list of secret objects. More info: https://kubernetes.io/docs/concepts/configuration/secret",
        STD_LIST,
    ),
    (
        "",
        "ServiceAccount",
        "ServiceAccountList is a list of ServiceAccount objects",
        "List of ServiceAccounts. More info: https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/",
        STD_LIST,
    ),
    (
        "",
        "Service",
        "ServiceList holds a list of services.",
        "List of services",
        STD_LIST,
    ),
    (
        "apps",
        "ControllerRevision",
        "ControllerRevisionList is a resource containing a list of ControllerRevision objects.",
        "Items is the list of ControllerRevisions",
        META_MORE_INFO,
    ),
    (
        "apps",
        "StatefulSet",
        "StatefulSetList is a collection of StatefulSets.",
        "Items is the list of stateful sets.",
        "Standard list's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    ),
    (
        "events.k8s.io",
        "Event",
        "EventList is a list of Event objects.",
        "items is a list of schema objects.",
        STD_LIST_META,
    ),
    (
        "storage.k8s.io",
        "StorageClass",
        "StorageClassList is a collection of storage classes.",
        "items is the list of StorageClasses",
        STD_LIST_META,
    ),
    (
        "coordination.k8s.io",
        "Lease",
        "LeaseList is a list of Lease objects.",
        "items is a list of schema objects.",
        STD_LIST_META,
    ),
    (
        "discovery.k8s.io",
        "EndpointSlice",
        "EndpointSliceList represents a list of endpoint slices",
        "items is the list of endpoint slices",
        "Standard list metadata.",
    ),
];
const STD_LIST: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const STD_LIST_META: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const META_MORE_INFO: &str = "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// Add `<Kind>List` for every served resource but the create-only reviews, shaped like
/// upstream's list schemas.
fn add_lists(definitions: &mut Map<String, Value>, kinds: &mut Vec<KindDef>) {
    for r in RESOURCES.iter().filter(|r| !r.is_create_only()) {
        let Some(item) = kinds
            .iter()
            .find(|k| k.group == r.group && k.version == r.version && k.kind == r.kind)
            .map(|k| k.name.clone())
        else {
            continue;
        };
        let (list_doc, items_doc, meta_doc) = LIST_DOCS
            .iter()
            .find(|(g, k, ..)| *g == r.group && *k == r.kind)
            .map(|(_, _, l, i, m)| (l.to_string(), i.to_string(), *m))
            .unwrap_or_else(|| {
                (
                    format!("{} is a list of {} objects.", r.list_kind, r.kind),
                    String::new(),
                    STD_LIST,
                )
            });
        let name = format!("{item}List");
        let schema = json!({
            "description": list_doc,
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
                "items": {
                    "description": items_doc,
                    "type": "array",
                    "items": {"default": {}, "allOf": [{"$ref": format!("{REF_PREFIX}{item}")}]},
                },
                "kind": {"description": KIND_DOC, "type": "string"},
                "metadata": {
                    "description": meta_doc,
                    "default": {},
                    "allOf": [{"$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")}],
                },
            },
        });
        definitions.insert(name.clone(), schema);
        kinds.push(KindDef {
            group: r.group,
            version: r.version,
            kind: r.list_kind.to_string(),
            name,
        });
    }
}

/// `DeleteOptions` and `WatchEvent` are registered in every group upstream; list the served ones.
fn add_shared_gvks(definitions: &mut Map<String, Value>) {
    let mut gvs: Vec<(&str, &str)> = vec![("", "v1")];
    for r in RESOURCES {
        if !gvs.contains(&(r.group, r.version)) {
            gvs.push((r.group, r.version));
        }
    }
    gvs.extend([("autoscaling", "v1"), ("policy", "v1")]);
    gvs.sort();
    for kind in ["DeleteOptions", "WatchEvent"] {
        let gvks: Vec<Value> = gvs
            .iter()
            .map(|(g, v)| json!({"group": g, "kind": kind, "version": v}))
            .collect();
        if let Some(def) = definitions
            .get_mut(&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}"))
            .and_then(Value::as_object_mut)
        {
            def.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
        }
    }
}

/// Kinds whose Go `ObjectMeta` field lacks `omitempty`, so upstream lists `metadata` as required.
const METADATA_REQUIRED: &[&str] = &["io.k8s.api.core.v1.Event", "io.k8s.api.events.v1.Event"];

/// Fields k8s-openapi lists as required that upstream v1.33 marks `+optional` (the `name` of the
/// local-reference family defaults to `""`).
const NOT_REQUIRED: &[(&str, &str)] = &[
    ("io.k8s.api.core.v1.LocalObjectReference", "name"),
    ("io.k8s.api.core.v1.ConfigMapKeySelector", "name"),
    ("io.k8s.api.core.v1.SecretKeySelector", "name"),
    ("io.k8s.api.core.v1.ConfigMapEnvSource", "name"),
    ("io.k8s.api.core.v1.SecretEnvSource", "name"),
    ("io.k8s.api.core.v1.ConfigMapProjection", "name"),
    ("io.k8s.api.core.v1.SecretProjection", "name"),
    ("io.k8s.api.core.v1.ConfigMapVolumeSource", "name"),
];

/// Fields upstream requires that k8s-openapi models as optional.
const EXTRA_REQUIRED: &[(&str, &str)] = &[("io.k8s.api.events.v1.Event", "eventTime")];

/// Make `required` lists read as upstream's: k8s-openapi marks `metadata` required on every kind
/// and differs on a few fields.
fn fix_required(definitions: &mut Map<String, Value>, kinds: &[KindDef]) {
    let mut drop: Vec<(&str, &str)> = NOT_REQUIRED.to_vec();
    for kind in kinds {
        if !METADATA_REQUIRED.contains(&kind.name.as_str()) {
            drop.push((kind.name.as_str(), "metadata"));
        }
    }
    for (name, field) in drop {
        let Some(def) = definitions.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        let now_empty = match def.get_mut("required").and_then(Value::as_array_mut) {
            Some(required) => {
                required.retain(|f| f != field);
                required.is_empty()
            }
            None => false,
        };
        if now_empty {
            def.remove("required");
        }
    }
    for (name, field) in EXTRA_REQUIRED {
        if let Some(def) = definitions.get_mut(*name).and_then(Value::as_object_mut) {
            let required = def.entry("required").or_insert_with(|| json!([]));
            if let Some(list) = required.as_array_mut()
                && !list.iter().any(|f| f == field)
            {
                list.push(json!(field));
            }
        }
    }
}

/// Upstream's v3 documents spell IntOrString and Quantity as `oneOf` alternatives (kubectl explain
/// and client generators read these); k8s-openapi only says `x-kubernetes-int-or-string`.
fn spell_scalars_as_upstream(definitions: &mut Map<String, Value>) {
    let shapes = [
        (
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
            json!({"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}),
        ),
        (
            "io.k8s.apimachinery.pkg.api.resource.Quantity",
            json!({"oneOf": [{"type": "string"}, {"type": "number"}]}),
        ),
    ];
    for (name, shape) in shapes {
        let (Some(def), Value::Object(shape)) = (
            definitions.get_mut(name).and_then(Value::as_object_mut),
            shape,
        ) else {
            continue;
        };
        def.extend(shape);
    }
}
