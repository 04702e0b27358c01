//! The namespace controller's decisions and its deletion round against a stateful fake.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use stead_api::ResourceType;
use stead_controllers::gc::EffectError;
use stead_controllers::namespace::plan::{conditions, decide, needs_cleanup};
use stead_controllers::namespace::{
    ContentReport, NamespaceController, NamespaceEffects, NamespaceOutcome, NamespaceView,
    Remaining,
};
use tokio::time::Instant;

fn rt(plural: &str, group: &str) -> &'static ResourceType {
    stead_api::resource::RESOURCES
        .iter()
        .find(|r| r.plural == plural && r.group == group)
        .expect("served")
}

fn terminating(name: &str) -> NamespaceView {
    NamespaceView {
        name: name.into(),
        uid: "u".into(),
        resource_version: "7".into(),
        deleting: true,
        spec_finalizers: vec!["kubernetes".into()],
        conditions: vec![],
    }
}

fn at(s: &str) -> Time {
    Time(s.parse().expect("timestamp"))
}

fn find<'a>(cs: &'a [NamespaceCondition], t: &str) -> &'a NamespaceCondition {
    cs.iter().find(|c| c.type_ == t).expect("condition present")
}

#[test]
fn only_terminating_namespaces_holding_our_finalizer_need_cleanup() {
    let mut ns = terminating("a");
    assert!(needs_cleanup(&ns));
    ns.spec_finalizers = vec!["example.com/other".into()];
    assert!(!needs_cleanup(&ns));
    let mut live = terminating("b");
    live.deleting = false;
    assert!(!needs_cleanup(&live));
}

#[test]
fn remaining_content_and_finalizers_read_like_upstream() {
    // Ref: upstream namespaced_resources_deleter.go estimateGracefulTermination / conditions
    let report = ContentReport {
        remaining: vec![
            Remaining {
                resource: rt("pods", ""),
                count: 2,
                finalizers: BTreeMap::new(),
            },
            Remaining {
                resource: rt("statefulsets", "apps"),
                count: 1,
                finalizers: BTreeMap::from([("foregroundDeletion".to_string(), 1)]),
            },
            Remaining {
                resource: rt("configmaps", ""),
                count: 3,
                finalizers: BTreeMap::from([("example.com/hold".to_string(), 3)]),
            },
        ],
        failures: vec![],
    };
    let cs = conditions(&report);
    assert_eq!(
        cs.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
        vec![
            "NamespaceDeletionDiscoveryFailure",
            "NamespaceDeletionGroupVersionParsingFailure",
            "NamespaceDeletionContentFailure",
            "NamespaceContentRemaining",
            "NamespaceFinalizersRemaining",
        ]
    );
    let content = find(&cs, "NamespaceContentRemaining");
    assert_eq!(content.status, "True");
    assert_eq!(content.reason.as_deref(), Some("SomeResourcesRemain"));
    assert_eq!(
        content.message.as_deref(),
        Some(
            "Some resources are remaining: configmaps has 3 resource instances, pods has 2 resource instances, statefulsets.apps has 1 resource instances"
        )
    );
    let fin = find(&cs, "NamespaceFinalizersRemaining");
    assert_eq!(fin.reason.as_deref(), Some("SomeFinalizersRemain"));
    assert_eq!(
        fin.message.as_deref(),
        Some(
            "Some content in the namespace has finalizers remaining: example.com/hold in 3 resource instances, foregroundDeletion in 1 resource instances"
        )
    );
    assert_eq!(
        find(&cs, "NamespaceDeletionContentFailure")
            .reason
            .as_deref(),
        Some("ContentDeleted")
    );
}

#[test]
fn an_empty_namespace_is_finalized_keeping_foreign_finalizers() {
    let mut ns = terminating("a");
    ns.spec_finalizers = vec!["example.com/x".into(), "kubernetes".into()];
    let p = decide(&ns, &ContentReport::default(), &at("2025-01-01T00:00:00Z"));
    assert_eq!(p.finalize, Some(vec!["example.com/x".to_string()]));
    let content = find(&p.conditions, "NamespaceContentRemaining");
    assert_eq!(content.status, "False");
    assert_eq!(content.reason.as_deref(), Some("ContentRemoved"));
}

#[test]
fn failures_block_finalizing_and_unchanged_conditions_keep_their_transition_time() {
    let report = ContentReport {
        remaining: vec![],
        failures: vec!["pods: boom".into()],
    };
    let ns = terminating("a");
    let first = decide(&ns, &report, &at("2025-01-01T00:00:00Z"));
    assert_eq!(first.finalize, None);
    assert!(first.update_status);
    let failure = find(&first.conditions, "NamespaceDeletionContentFailure");
    assert_eq!(failure.status, "True");
    assert_eq!(
        failure.message.as_deref(),
        Some("Failed to delete all resource types, 1 remaining: pods: boom")
    );

    let mut later = ns.clone();
    later.conditions = first.conditions.clone();
    let second = decide(&later, &report, &at("2025-01-01T00:05:00Z"));
    assert!(!second.update_status, "nothing changed, nothing to write");
    assert_eq!(
        find(&second.conditions, "NamespaceDeletionContentFailure").last_transition_time,
        Some(at("2025-01-01T00:00:00Z"))
    );
}

/// A fake API server holding `(resource plural, namespace) → objects as lists of finalizers`.
#[derive(Default)]
struct FakeNamespaces {
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    objects: BTreeMap<(String, String), Vec<Vec<String>>>,
    finalized: Vec<(String, Vec<String>)>,
    conditions_written: usize,
    fail_deletes: usize,
}

impl NamespaceEffects for FakeNamespaces {
    async fn delete_collection(
        &self,
        rt: &'static ResourceType,
        ns: &str,
    ) -> Result<(), EffectError> {
        let mut s = self.state.lock().expect("lock");
        if s.fail_deletes > 0 && rt.plural == "pods" {
            s.fail_deletes -= 1;
            return Err(EffectError::Other("injected".into()));
        }
        // Objects without finalizers go; the others stay (being deleted).
        if let Some(list) = s.objects.get_mut(&(rt.plural.to_string(), ns.to_string())) {
            list.retain(|f| !f.is_empty());
        }
        Ok(())
    }

    async fn remaining(
        &self,
        rt: &'static ResourceType,
        ns: &str,
    ) -> Result<Remaining, EffectError> {
        let s = self.state.lock().expect("lock");
        let list = s
            .objects
            .get(&(rt.plural.to_string(), ns.to_string()))
            .cloned()
            .unwrap_or_default();
        let mut finalizers = BTreeMap::new();
        for f in list.iter().flatten() {
            *finalizers.entry(f.clone()).or_default() += 1;
        }
        Ok(Remaining {
            resource: rt,
            count: list.len(),
            finalizers,
        })
    }

    async fn set_conditions(
        &self,
        _ns: &NamespaceView,
        _conditions: &[NamespaceCondition],
    ) -> Result<(), EffectError> {
        self.state.lock().expect("lock").conditions_written += 1;
        Ok(())
    }

    async fn finalize(&self, ns: &NamespaceView, finalizers: &[String]) -> Result<(), EffectError> {
        self.state
            .lock()
            .expect("lock")
            .finalized
            .push((ns.name.clone(), finalizers.to_vec()));
        Ok(())
    }
}

#[tokio::test]
async fn a_namespace_is_finalized_once_held_content_goes_and_failures_are_retried() {
    let fake = FakeNamespaces::default();
    {
        let mut s = fake.state.lock().expect("lock");
        s.objects.insert(
            ("configmaps".into(), "doomed".into()),
            vec![vec![], vec!["example.com/hold".into()]],
        );
        s.objects
            .insert(("secrets".into(), "doomed".into()), vec![vec![]]);
        s.objects
            .insert(("configmaps".into(), "other".into()), vec![vec![]]);
        s.fail_deletes = 1;
    }
    let mut c = NamespaceController::default();
    let mut live = terminating("other");
    live.deleting = false;
    c.observe(live);
    c.observe(terminating("doomed"));
    let now = Instant::now();
    assert_eq!(
        c.queue.pop(now).as_deref(),
        Some("doomed"),
        "only the terminating one is queued"
    );
    assert_eq!(c.queue.pop(now), None);

    // Round 1: the pod deletion fails; the status says so; no finalize.
    match c.process("doomed", &fake, now).await {
        NamespaceOutcome::Waiting(p) => {
            assert_eq!(p.finalize, None);
            assert_eq!(
                find(&p.conditions, "NamespaceDeletionContentFailure").status,
                "True"
            );
        }
        other => panic!("{other:?}"),
    }
    // Round 2: the held config map keeps it waiting.
    let later = now + std::time::Duration::from_secs(60);
    assert_eq!(c.queue.pop(later).as_deref(), Some("doomed"));
    assert!(matches!(
        c.process("doomed", &fake, later).await,
        NamespaceOutcome::Waiting(_)
    ));
    {
        let s = fake.state.lock().expect("lock");
        assert_eq!(s.objects[&("secrets".into(), "doomed".into())].len(), 0);
        assert_eq!(s.objects[&("configmaps".into(), "other".into())].len(), 1);
        assert_eq!(s.conditions_written, 2);
        assert!(s.finalized.is_empty());
    }
    // The finalizer is released; round 3 finalizes.
    fake.state
        .lock()
        .expect("lock")
        .objects
        .get_mut(&("configmaps".into(), "doomed".into()))
        .expect("present")
        .clear();
    let later = later + std::time::Duration::from_secs(60);
    assert_eq!(c.queue.pop(later).as_deref(), Some("doomed"));
    assert_eq!(
        c.process("doomed", &fake, later).await,
        NamespaceOutcome::Finalized
    );
    let s = fake.state.lock().expect("lock");
    assert_eq!(s.finalized, vec![("doomed".to_string(), vec![])]);
}
