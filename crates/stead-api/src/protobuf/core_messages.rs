//! Descriptor table for the objects kubectl's typed clients create from flags: core/v1
//! `Namespace`, `ConfigMap`, `Secret`, `ServiceAccount`, `Service` (with everything they hold),
//! policy/v1 `Eviction` (the body of `pods/eviction`) and authentication.k8s.io/v1 `TokenRequest`
//! (`kubectl create token`, the body of `serviceaccounts/token`).
//!
//! Field numbers and JSON names are transcribed from upstream `core/v1/generated.proto`,
//! `policy/v1/generated.proto` and `authentication/v1/generated.proto`; the [`Presence`](super::descriptor::Presence) of each field follows
//! the Go type in `types.go` (`opt` = non-pointer with `omitempty`, `keep` = pointer or no
//! `omitempty`).

use super::descriptor::{Message, Ty, keep, map, opt, rep};

const OBJECT_META: Ty = Ty::Msg("ObjectMeta");

pub(crate) const MESSAGES: &[Message] = &[
    // Namespace
    Message {
        name: "Namespace",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            opt(2, "spec", Ty::Msg("NamespaceSpec")),
            opt(3, "status", Ty::Msg("NamespaceStatus")),
        ],
    },
    Message {
        name: "NamespaceSpec",
        fields: &[rep(1, "finalizers", Ty::String)],
    },
    Message {
        name: "NamespaceStatus",
        fields: &[
            opt(1, "phase", Ty::String),
            rep(2, "conditions", Ty::Msg("NamespaceCondition")),
        ],
    },
    Message {
        name: "NamespaceCondition",
        fields: &[
            keep(1, "type", Ty::String),
            keep(2, "status", Ty::String),
            opt(4, "lastTransitionTime", Ty::Time),
            opt(5, "reason", Ty::String),
            opt(6, "message", Ty::String),
        ],
    },
    // ConfigMap, Secret
    Message {
        name: "ConfigMap",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(4, "immutable", Ty::Bool),
            map(2, "data", Ty::String),
            map(3, "binaryData", Ty::Bytes),
        ],
    },
    Message {
        name: "Secret",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(5, "immutable", Ty::Bool),
            map(2, "data", Ty::Bytes),
            map(4, "stringData", Ty::String),
            opt(3, "type", Ty::String),
        ],
    },
    // ServiceAccount
    Message {
        name: "ServiceAccount",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            rep(2, "secrets", Ty::Msg("ObjectReference")),
            rep(3, "imagePullSecrets", Ty::Msg("LocalObjectReference")),
            keep(4, "automountServiceAccountToken", Ty::Bool),
        ],
    },
    Message {
        name: "ObjectReference",
        fields: &[
            opt(1, "kind", Ty::String),
            opt(2, "namespace", Ty::String),
            opt(3, "name", Ty::String),
            opt(4, "uid", Ty::String),
            opt(5, "apiVersion", Ty::String),
            opt(6, "resourceVersion", Ty::String),
            opt(7, "fieldPath", Ty::String),
        ],
    },
    Message {
        name: "LocalObjectReference",
        fields: &[opt(1, "name", Ty::String)],
    },
    // Service
    Message {
        name: "Service",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            opt(2, "spec", Ty::Msg("ServiceSpec")),
            opt(3, "status", Ty::Msg("ServiceStatus")),
        ],
    },
    Message {
        name: "ServiceSpec",
        fields: &[
            rep(1, "ports", Ty::Msg("ServicePort")),
            map(2, "selector", Ty::String),
            opt(3, "clusterIP", Ty::String),
            rep(18, "clusterIPs", Ty::String),
            opt(4, "type", Ty::String),
            rep(5, "externalIPs", Ty::String),
            opt(7, "sessionAffinity", Ty::String),
            opt(8, "loadBalancerIP", Ty::String),
            rep(9, "loadBalancerSourceRanges", Ty::String),
            opt(10, "externalName", Ty::String),
            opt(11, "externalTrafficPolicy", Ty::String),
            opt(12, "healthCheckNodePort", Ty::Int32),
            opt(13, "publishNotReadyAddresses", Ty::Bool),
            keep(
                14,
                "sessionAffinityConfig",
                Ty::Msg("SessionAffinityConfig"),
            ),
            rep(19, "ipFamilies", Ty::String),
            keep(17, "ipFamilyPolicy", Ty::String),
            keep(20, "allocateLoadBalancerNodePorts", Ty::Bool),
            keep(21, "loadBalancerClass", Ty::String),
            keep(22, "internalTrafficPolicy", Ty::String),
            keep(23, "trafficDistribution", Ty::String),
        ],
    },
    Message {
        name: "ServicePort",
        fields: &[
            opt(1, "name", Ty::String),
            opt(2, "protocol", Ty::String),
            keep(6, "appProtocol", Ty::String),
            keep(3, "port", Ty::Int32),
            opt(4, "targetPort", Ty::IntOrString),
            opt(5, "nodePort", Ty::Int32),
        ],
    },
    Message {
        name: "SessionAffinityConfig",
        fields: &[keep(1, "clientIP", Ty::Msg("ClientIPConfig"))],
    },
    Message {
        name: "ClientIPConfig",
        fields: &[keep(1, "timeoutSeconds", Ty::Int32)],
    },
    Message {
        name: "ServiceStatus",
        fields: &[
            opt(1, "loadBalancer", Ty::Msg("LoadBalancerStatus")),
            rep(2, "conditions", Ty::Msg("Condition")),
        ],
    },
    Message {
        name: "LoadBalancerStatus",
        fields: &[rep(1, "ingress", Ty::Msg("LoadBalancerIngress"))],
    },
    Message {
        name: "LoadBalancerIngress",
        fields: &[
            opt(1, "ip", Ty::String),
            opt(2, "hostname", Ty::String),
            keep(3, "ipMode", Ty::String),
            rep(4, "ports", Ty::Msg("PortStatus")),
        ],
    },
    Message {
        name: "PortStatus",
        fields: &[
            keep(1, "port", Ty::Int32),
            keep(2, "protocol", Ty::String),
            keep(3, "error", Ty::String),
        ],
    },
    // policy/v1
    Message {
        name: "Eviction",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(2, "deleteOptions", Ty::Msg("DeleteOptions")),
        ],
    },
    // authentication.k8s.io/v1
    Message {
        name: "TokenRequest",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(2, "spec", Ty::Msg("TokenRequestSpec")),
            opt(3, "status", Ty::Msg("TokenRequestStatus")),
        ],
    },
    Message {
        name: "TokenRequestSpec",
        fields: &[
            rep(1, "audiences", Ty::String),
            keep(4, "expirationSeconds", Ty::Int64),
            keep(3, "boundObjectRef", Ty::Msg("BoundObjectReference")),
        ],
    },
    Message {
        name: "TokenRequestStatus",
        fields: &[
            keep(1, "token", Ty::String),
            keep(2, "expirationTimestamp", Ty::Time),
        ],
    },
    Message {
        name: "BoundObjectReference",
        fields: &[
            opt(1, "kind", Ty::String),
            opt(2, "apiVersion", Ty::String),
            opt(3, "name", Ty::String),
            // The proto field is named `uID`; the JSON key is `uid`.
            opt(4, "uid", Ty::String),
        ],
    },
];
