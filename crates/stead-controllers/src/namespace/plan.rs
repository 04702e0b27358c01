//! What the namespace controller decides, purely (upstream
//! `pkg/controller/namespace/deletion/namespaced_resources_deleter.go`): whether a namespace needs
//! emptying ([`needs_cleanup`]), and, from a report of what is left in it, the status conditions to
//! show and whether to finalize ([`decide`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use stead_api::ResourceType;

/// The `spec.finalizers` token this controller owns.
pub const KUBERNETES: &str = "kubernetes";

/// The part of a namespace the controller reads.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceView {
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub deleting: bool,
    pub spec_finalizers: Vec<String>,
    pub conditions: Vec<NamespaceCondition>,
}

impl NamespaceView {
    pub fn from_namespace(ns: &Namespace) -> NamespaceView {
        NamespaceView {
            name: ns.metadata.name.clone().unwrap_or_default(),
            uid: ns.metadata.uid.clone().unwrap_or_default(),
            resource_version: ns.metadata.resource_version.clone().unwrap_or_default(),
            deleting: ns.metadata.deletion_timestamp.is_some(),
            spec_finalizers: ns
                .spec
                .as_ref()
                .and_then(|s| s.finalizers.clone())
                .unwrap_or_default(),
            conditions: ns
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default(),
        }
    }
}

/// True while the namespace is being deleted and still carries our finalizer.
pub fn needs_cleanup(ns: &NamespaceView) -> bool {
    ns.deleting && ns.spec_finalizers.iter().any(|f| f == KUBERNETES)
}

/// What is left of one resource type in the namespace after a deletion round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remaining {
    pub resource: &'static ResourceType,
    pub count: usize,
    /// finalizer → how many of the remaining objects carry it.
    pub finalizers: BTreeMap<String, usize>,
}

/// The outcome of one deletion round over every namespaced resource type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentReport {
    /// Types with objects left (types with none need not appear).
    pub remaining: Vec<Remaining>,
    /// Failed deletions or lists, one message each.
    pub failures: Vec<String>,
}

/// The decision after a round.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespacePlan {
    /// The deletion conditions the status should show (upstream's five).
    pub conditions: Vec<NamespaceCondition>,
    /// True when the status conditions differ from what the namespace shows.
    pub update_status: bool,
    /// `Some(spec.finalizers without "kubernetes")` when the namespace is empty: finalize it.
    pub finalize: Option<Vec<String>>,
}

fn condition(type_: &str, on: bool, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.to_string(),
        status: if on { "True" } else { "False" }.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: None,
    }
}

/// The conditions upstream reports while a namespace terminates, in upstream's order.
pub fn conditions(report: &ContentReport) -> Vec<NamespaceCondition> {
    let mut out = vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
    ];
    out.push(if report.failures.is_empty() {
        condition(
            "NamespaceDeletionContentFailure",
            false,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        )
    } else {
        condition(
            "NamespaceDeletionContentFailure",
            true,
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                report.failures.len(),
                report.failures.join(", ")
            ),
        )
    });
    let mut resources: Vec<String> = report
        .remaining
        .iter()
        .filter(|r| r.count > 0)
        .map(|r| {
            format!(
                "{} has {} resource instances",
                r.resource.qualified_plural(),
                r.count
            )
        })
        .collect();
    resources.sort();
    out.push(if resources.is_empty() {
        condition(
            "NamespaceContentRemaining",
            false,
            "ContentRemoved",
            "All content successfully removed".into(),
        )
    } else {
        condition(
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", resources.join(", ")),
        )
    });
    let mut finalizers: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &report.remaining {
        for (f, n) in &r.finalizers {
            *finalizers.entry(f.as_str()).or_default() += n;
        }
    }
    out.push(if finalizers.is_empty() {
        condition(
            "NamespaceFinalizersRemaining",
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        )
    } else {
        let list: Vec<String> = finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        condition(
            "NamespaceFinalizersRemaining",
            true,
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                list.join(", ")
            ),
        )
    });
    out
}

/// Carries `lastTransitionTime` over from the current conditions when a condition's status did
/// not change, and stamps `now` otherwise.
fn stamp(
    current: &[NamespaceCondition],
    mut wanted: Vec<NamespaceCondition>,
    now: &Time,
) -> Vec<NamespaceCondition> {
    for c in &mut wanted {
        let old = current.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match old {
            Some(o) if o.status == c.status && o.last_transition_time.is_some() => {
                o.last_transition_time.clone()
            }
            _ => Some(now.clone()),
        };
    }
    wanted
}

fn same_conditions(a: &[NamespaceCondition], b: &[NamespaceCondition]) -> bool {
    let key = |c: &NamespaceCondition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
        )
    };
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

/// Decides after a deletion round: report conditions; finalize once nothing is left and nothing
/// failed.
pub fn decide(ns: &NamespaceView, report: &ContentReport, now: &Time) -> NamespacePlan {
    let wanted = conditions(report);
    let update_status = !same_conditions(&ns.conditions, &wanted);
    let empty = report.failures.is_empty() && report.remaining.iter().all(|r| r.count == 0);
    NamespacePlan {
        conditions: stamp(&ns.conditions, wanted, now),
        update_status,
        finalize: empty.then(|| {
            ns.spec_finalizers
                .iter()
                .filter(|f| *f != KUBERNETES)
                .cloned()
                .collect()
        }),
    }
}
