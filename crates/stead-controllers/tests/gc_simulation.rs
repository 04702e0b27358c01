//! The collector driven against a stateful fake API server: the fake keeps objects, applies the
//! server's delete semantics (finalizers, propagation, preconditions), emits watch events, counts
//! calls and fails on demand. Every scenario must converge in a bounded number of steps.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use stead_controllers::gc::{
    Collector, EffectError, FOREGROUND, GcEffects, GraphEvent, Node, ORPHAN, ObjectKey, Outcome,
    Propagation, Seen, Target,
};
use stead_controllers::queue::Backoff;
use tokio::time::Instant;

#[derive(Default)]
struct World {
    objects: BTreeMap<String, Node>,
    revision: u64,
    /// Watch events not yet delivered to the collector.
    events: Vec<GraphEvent>,
    /// Uids in the order they left the store.
    removed: Vec<String>,
    calls: Vec<String>,
    /// Writes that succeed before injected failures start.
    fail_after: Option<usize>,
    /// How many writes fail once failures start.
    failures_left: usize,
    failed: usize,
    writes: usize,
}

#[derive(Default)]
struct FakeServer(Mutex<World>);

impl World {
    fn bump(&mut self) -> String {
        self.revision += 1;
        self.revision.to_string()
    }

    fn store(&mut self, mut n: Node) {
        n.resource_version = self.bump();
        self.events.push(GraphEvent::Upsert(n.clone()));
        self.objects.insert(n.uid.clone(), n);
    }

    fn drop_object(&mut self, uid: &str) {
        if self.objects.remove(uid).is_some() {
            self.events.push(GraphEvent::Remove(uid.to_string()));
            self.removed.push(uid.to_string());
        }
    }

    /// The server's delete: `Background` removes at once unless finalizers hold the object;
    /// `Foreground`/`Orphan` add their finalizer and mark it deleting.
    fn delete(&mut self, uid: &str, propagation: Propagation) {
        let Some(mut n) = self.objects.get(uid).cloned() else {
            return;
        };
        let finalizer = match propagation {
            Propagation::Background => None,
            Propagation::Foreground => Some(FOREGROUND),
            Propagation::Orphan => Some(ORPHAN),
        };
        if let Some(f) = finalizer
            && !n.deleting
            && !n.has_finalizer(f)
        {
            n.finalizers.push(f.into());
        }
        if n.finalizers.is_empty() {
            self.drop_object(uid);
        } else if !n.deleting || self.objects.get(uid) != Some(&n) {
            n.deleting = true;
            self.store(n);
        }
    }

    fn write_allowed(&mut self) -> Result<(), EffectError> {
        self.writes += 1;
        if let Some(after) = self.fail_after
            && self.writes > after
            && self.failures_left > 0
        {
            self.failures_left -= 1;
            self.failed += 1;
            return Err(EffectError::Other("injected failure".into()));
        }
        Ok(())
    }

    fn check(&self, t: &Target) -> Result<Node, EffectError> {
        let n = self.objects.get(&t.uid).ok_or(EffectError::NotFound)?;
        if n.resource_version != t.resource_version {
            return Err(EffectError::Conflict("the object has been modified".into()));
        }
        Ok(n.clone())
    }
}

impl FakeServer {
    fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.0.lock().expect("fake lock"))
    }
}

impl GcEffects for FakeServer {
    async fn get(&self, key: &ObjectKey) -> Result<Option<Seen>, EffectError> {
        self.with(|w| {
            w.calls.push(format!("get {}", key.name));
            Ok(w.objects.values().find(|n| &n.key == key).map(|n| Seen {
                uid: n.uid.clone(),
                deleting: n.deleting,
                finalizers: n.finalizers.clone(),
            }))
        })
    }

    async fn delete(&self, target: &Target, propagation: Propagation) -> Result<(), EffectError> {
        self.with(|w| {
            w.calls.push(format!(
                "delete {} {}",
                target.key.name,
                propagation.as_str()
            ));
            w.write_allowed()?;
            w.check(target)?;
            w.delete(&target.uid, propagation);
            Ok(())
        })
    }

    async fn set_owner_refs(
        &self,
        target: &Target,
        refs: &[OwnerReference],
    ) -> Result<String, EffectError> {
        self.with(|w| {
            w.calls
                .push(format!("owners {} {}", target.key.name, refs.len()));
            w.write_allowed()?;
            let mut n = w.check(target)?;
            n.owners = refs.to_vec();
            w.store(n.clone());
            Ok(w.objects[&n.uid].resource_version.clone())
        })
    }

    async fn set_finalizers(
        &self,
        target: &Target,
        finalizers: &[String],
    ) -> Result<String, EffectError> {
        self.with(|w| {
            w.calls.push(format!(
                "finalizers {} {}",
                target.key.name,
                finalizers.len()
            ));
            w.write_allowed()?;
            let mut n = w.check(target)?;
            n.finalizers = finalizers.to_vec();
            if n.deleting && n.finalizers.is_empty() {
                w.drop_object(&n.uid);
                return Ok(String::new());
            }
            w.store(n.clone());
            Ok(w.objects[&n.uid].resource_version.clone())
        })
    }
}

fn node(plural: &str, name: &str, uid: &str) -> Node {
    Node {
        key: ObjectKey {
            resource: stead_api::resource::RESOURCES
                .iter()
                .find(|r| r.plural == plural)
                .expect("served"),
            namespace: "default".into(),
            name: name.into(),
        },
        uid: uid.into(),
        resource_version: String::new(),
        owners: vec![],
        deleting: false,
        finalizers: vec![],
    }
}

fn owned(mut n: Node, owner: &Node, block: bool) -> Node {
    n.owners.push(OwnerReference {
        api_version: owner.key.resource.api_version(),
        kind: owner.key.resource.kind.into(),
        name: owner.key.name.clone(),
        uid: owner.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    });
    n
}

/// Delivers events and processes the queue until nothing is left, jumping the clock to the next
/// backoff deadline when only delayed work remains. Panics past `max_steps`.
async fn settle(c: &mut Collector, server: &FakeServer, max_steps: usize) -> usize {
    let mut now = Instant::now();
    for step in 0..max_steps {
        for e in server.with(|w| std::mem::take(&mut w.events)) {
            c.observe(e);
        }
        match c.next(now) {
            Some(uid) => {
                c.process(&uid, server, now).await;
            }
            None => match c.queue.next_due() {
                Some(at) => now = now.max(at),
                None => return step,
            },
        }
    }
    panic!("did not settle in {max_steps} steps");
}

fn setup(objects: Vec<Node>) -> (Collector, FakeServer) {
    let server = FakeServer::default();
    server.with(|w| {
        for n in objects {
            w.store(n);
        }
    });
    let mut c = Collector::new(Backoff::default());
    for e in server.with(|w| std::mem::take(&mut w.events)) {
        c.observe(e);
    }
    (c, server)
}

fn remaining(server: &FakeServer) -> Vec<String> {
    server.with(|w| w.objects.keys().cloned().collect())
}

#[tokio::test]
async fn background_delete_of_a_statefulset_collects_its_pods_and_claims_stay() {
    let set = node("statefulsets", "web", "s");
    let pods = [
        owned(node("pods", "web-0", "p0"), &set, true),
        owned(node("pods", "web-1", "p1"), &set, true),
    ];
    // Claims from volumeClaimTemplates are not owned by the set (retention policy Retain).
    let claim = node("persistentvolumeclaims", "data-web-0", "c0");
    let (mut c, server) = setup(vec![set, pods[0].clone(), pods[1].clone(), claim]);
    settle(&mut c, &server, 100).await;
    assert_eq!(
        remaining(&server).len(),
        4,
        "nothing to collect before the delete"
    );

    server.with(|w| w.delete("s", Propagation::Background));
    settle(&mut c, &server, 100).await;
    assert_eq!(remaining(&server), vec!["c0".to_string()]);
    let calls = server.with(|w| w.calls.clone());
    assert_eq!(
        calls,
        vec!["delete web-0 Background", "delete web-1 Background"]
    );
}

#[tokio::test]
async fn foreground_delete_removes_a_chain_bottom_up() {
    let set = node("statefulsets", "web", "s");
    let pod = owned(node("pods", "web-0", "p"), &set, true);
    let cm = owned(node("configmaps", "web-0-conf", "c"), &pod, true);
    let (mut c, server) = setup(vec![set, pod, cm]);
    server.with(|w| w.delete("s", Propagation::Foreground));
    settle(&mut c, &server, 200).await;
    assert!(remaining(&server).is_empty());
    let order = server.with(|w| w.removed.clone());
    assert_eq!(
        order,
        vec!["c", "p", "s"],
        "owners go after their dependents"
    );
    let calls = server.with(|w| w.calls.clone());
    assert!(calls.contains(&"delete web-0 Foreground".to_string()));
}

#[tokio::test]
async fn foreground_delete_of_an_ownership_cycle_terminates() {
    // Ref: upstream attemptToDeleteItem cycle detection
    let a0 = node("configmaps", "a", "a");
    let b0 = node("configmaps", "b", "b");
    let a = owned(a0.clone(), &b0, true);
    let b = owned(b0, &a0, true);
    let (mut c, server) = setup(vec![a, b]);
    settle(&mut c, &server, 100).await;
    assert_eq!(remaining(&server).len(), 2, "a live cycle is left alone");
    server.with(|w| w.delete("a", Propagation::Foreground));
    settle(&mut c, &server, 200).await;
    assert!(remaining(&server).is_empty());
}

#[tokio::test]
async fn orphan_delete_leaves_dependents_without_the_reference() {
    let owner = node("configmaps", "owner", "o");
    let other = node("configmaps", "other", "x");
    let a = owned(
        owned(node("configmaps", "a", "a"), &owner, true),
        &other,
        false,
    );
    let b = owned(node("configmaps", "b", "b"), &owner, false);
    let (mut c, server) = setup(vec![owner, other, a, b]);
    server.with(|w| w.delete("o", Propagation::Orphan));
    settle(&mut c, &server, 100).await;
    assert_eq!(remaining(&server), vec!["a", "b", "x"]);
    server.with(|w| {
        assert_eq!(w.objects["a"].owners.len(), 1);
        assert_eq!(w.objects["a"].owners[0].uid, "x");
        assert!(w.objects["b"].owners.is_empty());
    });
}

#[tokio::test]
async fn injected_failures_are_retried_until_the_world_converges() {
    let owner = node("configmaps", "owner", "o");
    let deps: Vec<Node> = (0..5)
        .map(|i| {
            owned(
                node("configmaps", &format!("d{i}"), &format!("d{i}")),
                &owner,
                true,
            )
        })
        .collect();
    let mut objects = vec![owner];
    objects.extend(deps);
    let (mut c, server) = setup(objects);
    // The second write onwards fails, four times in all.
    server.with(|w| {
        w.fail_after = Some(1);
        w.failures_left = 4;
    });
    server.with(|w| w.delete("o", Propagation::Foreground));
    settle(&mut c, &server, 500).await;
    assert!(remaining(&server).is_empty());
    server.with(|w| {
        assert_eq!(w.failed, 4);
        // 5 dependent deletes + 1 finalizer removal succeed; the failed attempts come on top.
        assert_eq!(w.writes, 6 + 4);
    });
}

#[tokio::test]
async fn a_stale_cache_conflicts_and_the_newer_version_is_used_after_its_event() {
    let owner = node("configmaps", "owner", "o");
    let dep = owned(node("configmaps", "dep", "d"), &owner, false);
    let (mut c, server) = setup(vec![owner, dep]);
    // Someone updates the dependent and the owner goes; the collector sees the owner's removal
    // before the dependent's update.
    server.with(|w| {
        let mut d = w.objects["d"].clone();
        d.finalizers = vec![];
        w.store(d);
        let update = w.events.pop().expect("update event");
        w.delete("o", Propagation::Background);
        w.events.push(update);
    });
    let removal = server.with(|w| w.events.remove(0));
    c.observe(removal);
    let now = Instant::now();
    let uid = c.next(now).expect("dependent queued");
    assert!(matches!(
        c.process(&uid, &server, now).await,
        Outcome::Retry {
            error: EffectError::Conflict(_)
        }
    ));
    settle(&mut c, &server, 100).await;
    assert!(remaining(&server).is_empty());
}

#[tokio::test]
async fn a_dependent_seen_before_its_owner_is_not_collected() {
    // The owner is created after the dependent names it, and its event is late: the collector
    // reads it live instead of trusting the graph.
    let owner = node("statefulsets", "web", "s");
    let pod = owned(node("pods", "web-0", "p"), &owner, true);
    let server = FakeServer::default();
    server.with(|w| {
        w.store(owner);
        w.store(pod);
    });
    let mut c = Collector::new(Backoff::default());
    let events = server.with(|w| std::mem::take(&mut w.events));
    c.observe(events[1].clone());
    let now = Instant::now();
    let uid = c.next(now).expect("pod queued");
    assert!(
        matches!(c.process(&uid, &server, now).await, Outcome::Done(p) if p.actions.is_empty())
    );
    let calls = server.with(|w| w.calls.clone());
    assert_eq!(calls, vec!["get web"]);
    assert_eq!(remaining(&server).len(), 2);
}
