//! Descriptor table for the review kinds kubectl's typed clients POST: authorization.k8s.io/v1
//! `SelfSubjectAccessReview` (`kubectl auth can-i VERB RESOURCE`), `SelfSubjectRulesReview`
//! (`kubectl auth can-i --list`), `SubjectAccessReview`, `LocalSubjectAccessReview`, and
//! authentication.k8s.io/v1 `SelfSubjectReview` (`kubectl auth whoami`) and `TokenReview`.
//!
//! Field numbers and JSON names are transcribed from upstream `authorization/v1/generated.proto`
//! and `authentication/v1/generated.proto`; the [`Presence`](super::descriptor::Presence) of each
//! field follows the Go type in `types.go` (`opt` = non-pointer with `omitempty`, `keep` = pointer
//! or no `omitempty`). The `extra` maps (`map<string, ExtraValue>`, whose JSON is a bare list of
//! strings) are not in the table, so they are skipped: stead authenticates no one with extras and
//! allows every subject anyway.

use super::descriptor::{Message, Ty, keep, opt, rep};

const OBJECT_META: Ty = Ty::Msg("ObjectMeta");

pub(crate) const MESSAGES: &[Message] = &[
    // authorization.k8s.io/v1
    Message {
        name: "SelfSubjectAccessReview",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(2, "spec", Ty::Msg("SelfSubjectAccessReviewSpec")),
            opt(3, "status", Ty::Msg("SubjectAccessReviewStatus")),
        ],
    },
    Message {
        name: "SelfSubjectAccessReviewSpec",
        fields: &[
            keep(1, "resourceAttributes", Ty::Msg("ResourceAttributes")),
            keep(2, "nonResourceAttributes", Ty::Msg("NonResourceAttributes")),
        ],
    },
    Message {
        name: "SubjectAccessReview",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(2, "spec", Ty::Msg("SubjectAccessReviewSpec")),
            opt(3, "status", Ty::Msg("SubjectAccessReviewStatus")),
        ],
    },
    Message {
        name: "LocalSubjectAccessReview",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(2, "spec", Ty::Msg("SubjectAccessReviewSpec")),
            opt(3, "status", Ty::Msg("SubjectAccessReviewStatus")),
        ],
    },
    Message {
        name: "SubjectAccessReviewSpec",
        fields: &[
            keep(1, "resourceAttributes", Ty::Msg("ResourceAttributes")),
            keep(2, "nonResourceAttributes", Ty::Msg("NonResourceAttributes")),
            opt(3, "user", Ty::String),
            rep(4, "groups", Ty::String),
            opt(6, "uid", Ty::String),
        ],
    },
    Message {
        name: "ResourceAttributes",
        fields: &[
            opt(1, "namespace", Ty::String),
            opt(2, "verb", Ty::String),
            opt(3, "group", Ty::String),
            opt(4, "version", Ty::String),
            opt(5, "resource", Ty::String),
            opt(6, "subresource", Ty::String),
            opt(7, "name", Ty::String),
            keep(8, "fieldSelector", Ty::Msg("FieldSelectorAttributes")),
            keep(9, "labelSelector", Ty::Msg("LabelSelectorAttributes")),
        ],
    },
    Message {
        name: "FieldSelectorAttributes",
        fields: &[
            opt(1, "rawSelector", Ty::String),
            rep(2, "requirements", Ty::Msg("FieldSelectorRequirement")),
        ],
    },
    Message {
        name: "LabelSelectorAttributes",
        fields: &[
            opt(1, "rawSelector", Ty::String),
            rep(2, "requirements", Ty::Msg("LabelSelectorRequirement")),
        ],
    },
    Message {
        name: "NonResourceAttributes",
        fields: &[opt(1, "path", Ty::String), opt(2, "verb", Ty::String)],
    },
    Message {
        name: "SubjectAccessReviewStatus",
        fields: &[
            keep(1, "allowed", Ty::Bool),
            opt(4, "denied", Ty::Bool),
            opt(2, "reason", Ty::String),
            opt(3, "evaluationError", Ty::String),
        ],
    },
    Message {
        name: "SelfSubjectRulesReview",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(2, "spec", Ty::Msg("SelfSubjectRulesReviewSpec")),
            opt(3, "status", Ty::Msg("SubjectRulesReviewStatus")),
        ],
    },
    Message {
        name: "SelfSubjectRulesReviewSpec",
        fields: &[opt(1, "namespace", Ty::String)],
    },
    Message {
        name: "SubjectRulesReviewStatus",
        fields: &[
            rep(1, "resourceRules", Ty::Msg("ResourceRule")),
            rep(2, "nonResourceRules", Ty::Msg("NonResourceRule")),
            keep(3, "incomplete", Ty::Bool),
            opt(4, "evaluationError", Ty::String),
        ],
    },
    Message {
        name: "ResourceRule",
        fields: &[
            rep(1, "verbs", Ty::String),
            rep(2, "apiGroups", Ty::String),
            rep(3, "resources", Ty::String),
            rep(4, "resourceNames", Ty::String),
        ],
    },
    Message {
        name: "NonResourceRule",
        fields: &[
            rep(1, "verbs", Ty::String),
            rep(2, "nonResourceURLs", Ty::String),
        ],
    },
    // authentication.k8s.io/v1
    Message {
        name: "SelfSubjectReview",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            opt(2, "status", Ty::Msg("SelfSubjectReviewStatus")),
        ],
    },
    Message {
        name: "SelfSubjectReviewStatus",
        fields: &[opt(1, "userInfo", Ty::Msg("UserInfo"))],
    },
    Message {
        name: "UserInfo",
        fields: &[
            opt(1, "username", Ty::String),
            opt(2, "uid", Ty::String),
            rep(3, "groups", Ty::String),
        ],
    },
    Message {
        name: "TokenReview",
        fields: &[
            opt(1, "metadata", OBJECT_META),
            keep(2, "spec", Ty::Msg("TokenReviewSpec")),
            opt(3, "status", Ty::Msg("TokenReviewStatus")),
        ],
    },
    Message {
        name: "TokenReviewSpec",
        fields: &[opt(1, "token", Ty::String), rep(2, "audiences", Ty::String)],
    },
    Message {
        name: "TokenReviewStatus",
        fields: &[
            opt(1, "authenticated", Ty::Bool),
            opt(2, "user", Ty::Msg("UserInfo")),
            rep(4, "audiences", Ty::String),
            opt(3, "error", Ty::String),
        ],
    },
];
