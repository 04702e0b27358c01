//! A stateful fake of [`StatefulSetEffects`] for tests (upstream `fakeObjectManager`): it keeps
//! the objects in memory like an API server would (uids, resourceVersions, pods born `Pending`),
//! logs every call, records events, and fails a chosen call "after N" successes
//! ([`FakeEffects::fail`], like upstream `SetCreateStatefulPodError(err, after)`).
//!
//! Tests read the world back with [`FakeEffects::world`] to build the next snapshot, and play the
//! kubelet with [`FakeEffects::set_pod_state`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

use super::effects::{EffectError, SetEvent, StatefulSetEffects};
use super::identity::controller_ref;
use super::spec;

/// The operations the fake counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    CreatePod,
    UpdatePod,
    DeletePod,
    AdoptPod,
    ReleasePod,
    CreateClaim,
    SetClaimOwnerRefs,
    CreateRevision,
    AdoptRevision,
    SetRevisionNumber,
    DeleteRevision,
    UpdateStatus,
}

/// One call as the fake saw it: the operation, the object's name, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub name: String,
    pub ok: bool,
    /// For `CreatePod`: how many creates were in flight when this one started.
    pub in_flight: usize,
}

/// The objects of one namespace, keyed by name.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub sets: BTreeMap<String, StatefulSet>,
    pub pods: BTreeMap<String, Pod>,
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
    pub revisions: BTreeMap<String, ControllerRevision>,
    pub calls: Vec<Call>,
    pub events: Vec<SetEvent>,
    /// Deleted pods stay terminating (with a deletionTimestamp) until [`FakeEffects::finish_termination`].
    pub slow_termination: bool,
    /// Logical clock for timestamps, seconds since the epoch.
    pub now: i64,
    serial: u64,
    in_flight: usize,
    failures: Vec<Failure>,
}

#[derive(Debug, Clone)]
struct Failure {
    op: Op,
    after: usize,
    times: usize,
    error: EffectError,
}

/// The fake. Cheap to clone (shared state).
#[derive(Debug, Clone, Default)]
pub struct FakeEffects {
    world: Arc<Mutex<World>>,
}

impl FakeEffects {
    pub fn new(world: World) -> Self {
        FakeEffects {
            world: Arc::new(Mutex::new(world)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A test that panicked while holding the lock has failed already.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current world.
    pub fn world(&self) -> World {
        self.lock().clone()
    }

    /// Edits the world (the test acting as a user, kubelet or garbage collector).
    pub fn edit<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.lock())
    }

    /// Fails the next `times` calls of `op` once `after` more calls of it have succeeded.
    pub fn fail(&self, op: Op, after: usize, times: usize, error: EffectError) {
        self.lock().failures.push(Failure {
            op,
            after,
            times,
            error,
        });
    }

    /// Calls of `op` so far (successful or not), in order.
    pub fn calls_of(&self, op: Op) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .cloned()
            .collect()
    }

    /// Plays the kubelet: sets a pod's phase and Ready condition (transition time = world clock).
    pub fn set_pod_state(&self, name: &str, phase: &str, ready: bool) {
        let mut w = self.lock();
        let now = w.now;
        if let Some(pod) = w.pods.get_mut(name) {
            set_state(pod, phase, ready, now);
        }
    }

    /// Removes pods that are terminating (the kubelet finished).
    pub fn finish_termination(&self) {
        self.lock()
            .pods
            .retain(|_, p| p.metadata.deletion_timestamp.is_none());
    }
}

/// Sets phase and Ready (keeping the transition time when readiness does not change).
pub fn set_state(pod: &mut Pod, phase: &str, ready: bool, now: i64) {
    let status = pod.status.get_or_insert_with(PodStatus::default);
    status.phase = Some(phase.to_string());
    let want = if ready { "True" } else { "False" };
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match conditions.iter_mut().find(|c| c.type_ == "Ready") {
        Some(c) if c.status == want => {}
        Some(c) => {
            c.status = want.to_string();
            c.last_transition_time = Some(time(now));
        }
        None => conditions.push(PodCondition {
            type_: "Ready".into(),
            status: want.into(),
            last_transition_time: Some(time(now)),
            ..PodCondition::default()
        }),
    }
}

fn time(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(secs).unwrap_or_default())
}

impl World {
    /// Counts the call and answers whether an injected failure fires for it.
    fn begin(&mut self, op: Op, name: &str) -> Result<(), EffectError> {
        let failed = self.failures.iter_mut().find(|f| f.op == op).and_then(|f| {
            if f.after > 0 {
                f.after -= 1;
                None
            } else if f.times > 0 {
                f.times -= 1;
                Some(f.error.clone())
            } else {
                None
            }
        });
        self.failures.retain(|f| f.times > 0);
        let in_flight = if op == Op::CreatePod {
            self.in_flight + 1
        } else {
            0
        };
        self.calls.push(Call {
            op,
            name: name.to_string(),
            ok: failed.is_none(),
            in_flight,
        });
        failed.map_or(Ok(()), Err)
    }

    fn stamp<K: kube::Resource>(&mut self, obj: &mut K) {
        self.serial += 1;
        let meta = obj.meta_mut();
        meta.uid = Some(format!("uid-{}", self.serial));
        meta.resource_version = Some(self.serial.to_string());
        meta.creation_timestamp = Some(time(self.now));
    }

    fn bump<K: kube::Resource>(&mut self, obj: &mut K) {
        self.serial += 1;
        obj.meta_mut().resource_version = Some(self.serial.to_string());
    }
}

fn name<K: kube::Resource>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

fn exists(kind: &str, name: &str) -> EffectError {
    EffectError::AlreadyExists(format!("{kind} \"{name}\" already exists"))
}

fn missing(kind: &str, name: &str) -> EffectError {
    EffectError::NotFound(format!("{kind} \"{name}\" not found"))
}

impl StatefulSetEffects for FakeEffects {
    async fn create_pod(&self, pod: &Pod) -> Result<(), EffectError> {
        let n = name(pod);
        {
            let mut w = self.lock();
            w.begin(Op::CreatePod, &n)?;
            w.in_flight += 1;
        }
        // Let the other creates of a batch start, so `in_flight` shows the batch size.
        tokio::task::yield_now().await;
        let mut w = self.lock();
        w.in_flight -= 1;
        if w.pods.contains_key(&n) {
            return Err(exists("pods", &n));
        }
        let mut pod = pod.clone();
        w.stamp(&mut pod);
        pod.status = Some(PodStatus {
            phase: Some("Pending".into()),
            ..PodStatus::default()
        });
        w.pods.insert(n, pod);
        Ok(())
    }

    async fn update_pod(&self, pod: &Pod) -> Result<(), EffectError> {
        let mut w = self.lock();
        let n = name(pod);
        w.begin(Op::UpdatePod, &n)?;
        let Some(current) = w.pods.get(&n) else {
            return Err(missing("pods", &n));
        };
        if current.metadata.resource_version != pod.metadata.resource_version {
            return Err(EffectError::Conflict(format!("pod {n} changed")));
        }
        let mut pod = pod.clone();
        w.bump(&mut pod);
        w.pods.insert(n, pod);
        Ok(())
    }

    async fn delete_pod(&self, _namespace: &str, name: &str) -> Result<(), EffectError> {
        let mut w = self.lock();
        w.begin(Op::DeletePod, name)?;
        let now = w.now;
        let slow = w.slow_termination;
        match w.pods.get_mut(name) {
            None => Err(missing("pods", name)),
            Some(pod) if slow => {
                pod.metadata.deletion_timestamp.get_or_insert(time(now));
                Ok(())
            }
            Some(_) => {
                w.pods.remove(name);
                Ok(())
            }
        }
    }

    async fn adopt_pod(&self, set: &StatefulSet, name: &str, uid: &str) -> Result<(), EffectError> {
        let mut w = self.lock();
        w.begin(Op::AdoptPod, name)?;
        let pod = w
            .pods
            .get_mut(name)
            .filter(|p| p.metadata.uid.as_deref() == Some(uid));
        let Some(pod) = pod else {
            return Err(missing("pods", name));
        };
        pod.metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(controller_ref(set));
        Ok(())
    }

    async fn release_pod(
        &self,
        set: &StatefulSet,
        name: &str,
        uid: &str,
    ) -> Result<(), EffectError> {
        let mut w = self.lock();
        w.begin(Op::ReleasePod, name)?;
        let pod = w
            .pods
            .get_mut(name)
            .filter(|p| p.metadata.uid.as_deref() == Some(uid));
        let Some(pod) = pod else {
            return Err(missing("pods", name));
        };
        if let Some(refs) = pod.metadata.owner_references.as_mut() {
            refs.retain(|r| r.uid != spec::uid(set));
        }
        Ok(())
    }

    async fn create_claim(&self, claim: &PersistentVolumeClaim) -> Result<(), EffectError> {
        let mut w = self.lock();
        let n = name(claim);
        w.begin(Op::CreateClaim, &n)?;
        if w.claims.contains_key(&n) {
            return Err(exists("persistentvolumeclaims", &n));
        }
        let mut claim = claim.clone();
        w.stamp(&mut claim);
        w.claims.insert(n, claim);
        Ok(())
    }

    async fn set_claim_owner_refs(
        &self,
        _namespace: &str,
        name: &str,
        refs: &[OwnerReference],
    ) -> Result<(), EffectError> {
        let mut w = self.lock();
        w.begin(Op::SetClaimOwnerRefs, name)?;
        let Some(mut claim) = w.claims.get(name).cloned() else {
            return Err(missing("persistentvolumeclaims", name));
        };
        claim.metadata.owner_references = (!refs.is_empty()).then(|| refs.to_vec());
        w.bump(&mut claim);
        w.claims.insert(name.to_string(), claim);
        Ok(())
    }

    async fn create_revision(&self, revision: &ControllerRevision) -> Result<(), EffectError> {
        let mut w = self.lock();
        let n = name(revision);
        w.begin(Op::CreateRevision, &n)?;
        if w.revisions.contains_key(&n) {
            return Err(exists("controllerrevisions.apps", &n));
        }
        let mut revision = revision.clone();
        w.stamp(&mut revision);
        w.revisions.insert(n, revision);
        Ok(())
    }

    async fn adopt_revision(&self, set: &StatefulSet, name: &str) -> Result<(), EffectError> {
        let mut w = self.lock();
        w.begin(Op::AdoptRevision, name)?;
        let Some(revision) = w.revisions.get_mut(name) else {
            return Err(missing("controllerrevisions.apps", name));
        };
        revision
            .metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(controller_ref(set));
        Ok(())
    }

    async fn set_revision_number(
        &self,
        _namespace: &str,
        name: &str,
        number: i64,
    ) -> Result<(), EffectError> {
        let mut w = self.lock();
        w.begin(Op::SetRevisionNumber, name)?;
        let Some(mut revision) = w.revisions.get(name).cloned() else {
            return Err(missing("controllerrevisions.apps", name));
        };
        revision.revision = number;
        w.bump(&mut revision);
        w.revisions.insert(name.to_string(), revision);
        Ok(())
    }

    async fn delete_revision(&self, _namespace: &str, name: &str) -> Result<(), EffectError> {
        let mut w = self.lock();
        w.begin(Op::DeleteRevision, name)?;
        w.revisions
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| missing("controllerrevisions.apps", name))
    }

    async fn update_status(
        &self,
        set: &StatefulSet,
        status: &StatefulSetStatus,
    ) -> Result<(), EffectError> {
        let mut w = self.lock();
        let n = spec::name(set).to_string();
        w.begin(Op::UpdateStatus, &n)?;
        let Some(mut stored) = w.sets.get(&n).cloned() else {
            return Err(missing("statefulsets.apps", &n));
        };
        stored.status = Some(status.clone());
        w.bump(&mut stored);
        w.sets.insert(n, stored);
        Ok(())
    }

    async fn record(&self, _set: &StatefulSet, event: SetEvent) {
        self.lock().events.push(event);
    }
}
