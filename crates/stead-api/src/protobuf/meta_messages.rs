//! Descriptor table for `k8s.io/apimachinery/pkg/apis/meta/v1`: the messages every object embeds
//! (`ObjectMeta` and what it holds), label selectors, field selector requirements, conditions, and `DeleteOptions`.
//!
//! Field numbers and JSON names are transcribed from upstream `meta/v1/generated.proto`; the
//! [`Presence`](super::descriptor::Presence) of each field follows the Go type in `types.go`
//! (`opt` = non-pointer with `omitempty`, `keep` = pointer or no `omitempty`).

use super::descriptor::{Message, Ty, keep, map, opt, rep};

pub(crate) const MESSAGES: &[Message] = &[
    Message {
        name: "ObjectMeta",
        fields: &[
            opt(1, "name", Ty::String),
            opt(2, "generateName", Ty::String),
            opt(3, "namespace", Ty::String),
            opt(4, "selfLink", Ty::String),
            opt(5, "uid", Ty::String),
            opt(6, "resourceVersion", Ty::String),
            opt(7, "generation", Ty::Int64),
            opt(8, "creationTimestamp", Ty::Time),
            keep(9, "deletionTimestamp", Ty::Time),
            keep(10, "deletionGracePeriodSeconds", Ty::Int64),
            map(11, "labels", Ty::String),
            map(12, "annotations", Ty::String),
            rep(13, "ownerReferences", Ty::Msg("OwnerReference")),
            rep(14, "finalizers", Ty::String),
            rep(17, "managedFields", Ty::Msg("ManagedFieldsEntry")),
        ],
    },
    Message {
        name: "OwnerReference",
        fields: &[
            keep(5, "apiVersion", Ty::String),
            keep(1, "kind", Ty::String),
            keep(3, "name", Ty::String),
            keep(4, "uid", Ty::String),
            keep(6, "controller", Ty::Bool),
            keep(7, "blockOwnerDeletion", Ty::Bool),
        ],
    },
    Message {
        name: "ManagedFieldsEntry",
        fields: &[
            opt(1, "manager", Ty::String),
            opt(2, "operation", Ty::String),
            opt(3, "apiVersion", Ty::String),
            keep(4, "time", Ty::Time),
            opt(6, "fieldsType", Ty::String),
            keep(7, "fieldsV1", Ty::FieldsV1),
            opt(8, "subresource", Ty::String),
        ],
    },
    Message {
        name: "LabelSelector",
        fields: &[
            map(1, "matchLabels", Ty::String),
            rep(2, "matchExpressions", Ty::Msg("LabelSelectorRequirement")),
        ],
    },
    Message {
        name: "LabelSelectorRequirement",
        fields: &[
            keep(1, "key", Ty::String),
            keep(2, "operator", Ty::String),
            rep(3, "values", Ty::String),
        ],
    },
    Message {
        name: "FieldSelectorRequirement",
        fields: &[
            keep(1, "key", Ty::String),
            keep(2, "operator", Ty::String),
            rep(3, "values", Ty::String),
        ],
    },
    Message {
        name: "Condition",
        fields: &[
            keep(1, "type", Ty::String),
            keep(2, "status", Ty::String),
            opt(3, "observedGeneration", Ty::Int64),
            keep(4, "lastTransitionTime", Ty::Time),
            keep(5, "reason", Ty::String),
            keep(6, "message", Ty::String),
        ],
    },
    Message {
        name: "DeleteOptions",
        fields: &[
            keep(1, "gracePeriodSeconds", Ty::Int64),
            keep(2, "preconditions", Ty::Msg("Preconditions")),
            keep(3, "orphanDependents", Ty::Bool),
            keep(4, "propagationPolicy", Ty::String),
            rep(5, "dryRun", Ty::String),
            keep(
                6,
                "ignoreStoreReadErrorWithClusterBreakingPotential",
                Ty::Bool,
            ),
        ],
    },
    Message {
        name: "Preconditions",
        fields: &[
            keep(1, "uid", Ty::String),
            keep(2, "resourceVersion", Ty::String),
        ],
    },
];
