//! The API calls the StatefulSet controller makes, behind one narrow trait:
//! [`StatefulSetEffects`], with [`KubeEffects`] as the real implementation over `kube::Client`
//! (typed `Api`s, events through `kube::runtime::events::Recorder`) and
//! [`super::fake::FakeEffects`] as the stateful fake the tests drive.
//!
//! Every method is one request (the status write retries conflicts, like upstream) and none
//! decides anything: the [`super::plan`] decided, [`super::execute`] carries the decision out and
//! interprets [`EffectError`] (AlreadyExists on create and NotFound on delete mean "already done").

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use futures::StreamExt;
use tokio::sync::mpsc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use serde_json::json;

use super::identity::controller_ref;
use super::spec;

/// The event source upstream uses (`statefulset-controller`).
pub const CONTROLLER_NAME: &str = "statefulset-controller";

/// Why a call failed, in the classes the executor distinguishes. The string is the server's
/// message (what upstream puts after `failed error:` in its events).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    /// The object to create exists (a stale cache, or a name clash).
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is gone.
    #[error("{0}")]
    NotFound(String),
    /// A precondition or resourceVersion did not hold.
    #[error("{0}")]
    Conflict(String),
    /// Anything else (invalid, forbidden, transport); retried with backoff.
    #[error("{0}")]
    Other(String),
}

impl EffectError {
    /// Maps a client error onto the classes above.
    pub fn from_kube(e: kube::Error) -> EffectError {
        match &e {
            kube::Error::Api(s) if s.is_not_found() => EffectError::NotFound(s.message.clone()),
            kube::Error::Api(s) if s.is_already_exists() => {
                EffectError::AlreadyExists(s.message.clone())
            }
            kube::Error::Api(s) if s.code == 409 => EffectError::Conflict(s.message.clone()),
            kube::Error::Api(s) => EffectError::Other(s.message.clone()),
            _ => EffectError::Other(e.to_string()),
        }
    }
}

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// One event about a set: `reason` and `note` in upstream's words, `action` the verb that
/// produced it (events.k8s.io/v1 requires one), `related` the pod or claim it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEvent {
    pub severity: Severity,
    pub reason: String,
    pub action: &'static str,
    pub note: String,
    pub related: Option<Related>,
}

/// The object an event is about besides the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Related {
    Pod(String),
    Claim(String),
}

/// The writes of one StatefulSet sync. Namespaces are the set's. No method retries except
/// [`StatefulSetEffects::update_status`] (on conflict, against a fresh read, as upstream's
/// `RetryOnConflict`); the executor stops at the first error and the loop requeues the set.
pub trait StatefulSetEffects: Send + Sync + 'static {
    /// Creates `pod` (namespace taken from it).
    fn create_pod(&self, pod: &Pod) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Replaces `pod` at its resourceVersion (identity/storage repair): a changed pod answers
    /// `Conflict` and the next sync recomputes from the newer cache.
    fn update_pod(&self, pod: &Pod) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Deletes a pod with its default grace period and no preconditions.
    fn delete_pod(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Adds `set`'s controller reference to the orphan pod `name` with uid `uid`.
    fn adopt_pod(
        &self,
        set: &StatefulSet,
        name: &str,
        uid: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Removes `set`'s reference from the pod `name` with uid `uid` (`$patch: delete`).
    fn release_pod(
        &self,
        set: &StatefulSet,
        name: &str,
        uid: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Creates a claim (namespace taken from it).
    fn create_claim(
        &self,
        claim: &PersistentVolumeClaim,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Replaces the claim's `metadata.ownerReferences` with `refs` (empty removes them).
    fn set_claim_owner_refs(
        &self,
        namespace: &str,
        name: &str,
        refs: &[OwnerReference],
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Creates a ControllerRevision (namespace taken from it).
    fn create_revision(
        &self,
        revision: &ControllerRevision,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Adds `set`'s controller reference to the orphan revision `name`.
    fn adopt_revision(
        &self,
        set: &StatefulSet,
        name: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Sets `.revision` of the revision `name` (rollback renumbering).
    fn set_revision_number(
        &self,
        namespace: &str,
        name: &str,
        revision: i64,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Deletes the revision `name`.
    fn delete_revision(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Replaces the set's status through `/status` (the whole status: user-written conditions
    /// are wiped, as upstream). Retries conflicts against a fresh read up to 5 times.
    fn update_status(
        &self,
        set: &StatefulSet,
        status: &StatefulSetStatus,
    ) -> impl Future<Output = Result<(), EffectError>> + Send;

    /// Records an event about `set` (best effort: failures are logged, never returned).
    fn record(&self, set: &StatefulSet, event: SetEvent) -> impl Future<Output = ()> + Send;
}

/// [`StatefulSetEffects`] over the API server.
#[derive(Clone)]
pub struct KubeEffects {
    client: Client,
    recorder: Recorder,
    /// The queue of events to write, started by the first event (see [`EVENT_QUEUE`]).
    events: Arc<OnceLock<mpsc::Sender<(Event, ObjectReference, String)>>>,
    /// Per set (uid), the resourceVersion our last status write produced. A sync that starts
    /// before the watch has delivered that write would otherwise PUT with an older version and
    /// pay a conflict, a GET and a second PUT.
    written: Arc<Mutex<HashMap<String, String>>>,
}

/// Events waiting to be written, at most (upstream's broadcaster queues 1 000 and drops when
/// full; ours is larger so a 1 000-pod scale-up keeps its events).
pub const EVENT_QUEUE: usize = 10_000;
/// Events written at once. Upstream writes them one by one from a background goroutine; a few
/// at a time keep up with a burst without letting 2 000 event POSTs crowd out the pod writes
/// the next step waits for.
pub const EVENT_WRITERS: usize = 4;

/// The newer of two resourceVersions (stead's are revision numbers; anything else keeps `ours`).
fn newer_version<'a>(cached: &'a str, written: Option<&'a str>) -> &'a str {
    match written {
        Some(w) => match (cached.parse::<u64>(), w.parse::<u64>()) {
            (Ok(c), Ok(n)) if n > c => w,
            _ => cached,
        },
        None => cached,
    }
}

impl KubeEffects {
    pub fn new(client: Client) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.to_string(),
            instance: None,
        };
        let recorder = Recorder::new(client.clone(), reporter);
        KubeEffects {
            client,
            recorder,
            written: Arc::default(),
            events: Arc::default(),
        }
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn claims(&self, namespace: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn revisions(&self, namespace: &str) -> Api<ControllerRevision> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn sets(&self, namespace: &str) -> Api<StatefulSet> {
        Api::namespaced(self.client.clone(), namespace)
    }
}

fn namespace_of<K: Resource>(obj: &K) -> String {
    obj.meta().namespace.clone().unwrap_or_default()
}

fn name_of<K: Resource>(obj: &K) -> &str {
    obj.meta().name.as_deref().unwrap_or_default()
}

/// The strategic-merge patch that adds `set`'s controller reference to an object with `uid`
/// (upstream `ownerRefControllerPatch`).
fn adopt_patch(set: &StatefulSet, uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [controller_ref(set)], "uid": uid}})
}

impl StatefulSetEffects for KubeEffects {
    async fn create_pod(&self, pod: &Pod) -> Result<(), EffectError> {
        self.pods(&namespace_of(pod))
            .create(&PostParams::default(), pod)
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn update_pod(&self, pod: &Pod) -> Result<(), EffectError> {
        self.pods(&namespace_of(pod))
            .replace(name_of(pod), &PostParams::default(), pod)
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn delete_pod(&self, namespace: &str, name: &str) -> Result<(), EffectError> {
        self.pods(namespace)
            .delete(name, &DeleteParams::default())
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn adopt_pod(&self, set: &StatefulSet, name: &str, uid: &str) -> Result<(), EffectError> {
        self.pods(spec::namespace(set))
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Strategic(adopt_patch(set, uid)),
            )
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn release_pod(
        &self,
        set: &StatefulSet,
        name: &str,
        uid: &str,
    ) -> Result<(), EffectError> {
        let body = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": spec::uid(set)}],
            "uid": uid,
        }});
        self.pods(spec::namespace(set))
            .patch(name, &PatchParams::default(), &Patch::Strategic(body))
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn create_claim(&self, claim: &PersistentVolumeClaim) -> Result<(), EffectError> {
        self.claims(&namespace_of(claim))
            .create(&PostParams::default(), claim)
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn set_claim_owner_refs(
        &self,
        namespace: &str,
        name: &str,
        refs: &[OwnerReference],
    ) -> Result<(), EffectError> {
        // A JSON merge patch replaces the list as a whole; null removes it.
        let value = if refs.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(refs).map_err(|e| EffectError::Other(e.to_string()))?
        };
        let body = json!({"metadata": {"ownerReferences": value}});
        self.claims(namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(body))
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn create_revision(&self, revision: &ControllerRevision) -> Result<(), EffectError> {
        self.revisions(&namespace_of(revision))
            .create(&PostParams::default(), revision)
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn adopt_revision(&self, set: &StatefulSet, name: &str) -> Result<(), EffectError> {
        let api = self.revisions(spec::namespace(set));
        let current = api.get(name).await.map_err(EffectError::from_kube)?;
        let uid = current.metadata.uid.unwrap_or_default();
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Strategic(adopt_patch(set, &uid)),
        )
        .await
        .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn set_revision_number(
        &self,
        namespace: &str,
        name: &str,
        revision: i64,
    ) -> Result<(), EffectError> {
        self.revisions(namespace)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"revision": revision})),
            )
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn delete_revision(&self, namespace: &str, name: &str) -> Result<(), EffectError> {
        self.revisions(namespace)
            .delete(name, &DeleteParams::default())
            .await
            .map_err(EffectError::from_kube)?;
        Ok(())
    }

    async fn update_status(
        &self,
        set: &StatefulSet,
        status: &StatefulSetStatus,
    ) -> Result<(), EffectError> {
        let api = self.sets(spec::namespace(set));
        let name = spec::name(set);
        let uid = spec::uid(set).to_string();
        let mut current = set.clone();
        {
            let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            let cached = set.metadata.resource_version.as_deref().unwrap_or("");
            let rv = newer_version(cached, written.get(&uid).map(String::as_str));
            current.metadata.resource_version = Some(rv.to_string());
        }
        let mut last = EffectError::Other("status not written".into());
        for _ in 0..5 {
            current.status = Some(status.clone());
            match api
                .replace_status(name, &PostParams::default(), &current)
                .await
            {
                Ok(updated) => {
                    if let Some(rv) = updated.metadata.resource_version {
                        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
                        // Bounded: entries of deleted sets are only dropped wholesale.
                        if written.len() >= 10_000 {
                            written.clear();
                        }
                        written.insert(uid, rv);
                    }
                    return Ok(());
                }
                Err(e) => match EffectError::from_kube(e) {
                    EffectError::Conflict(m) => {
                        last = EffectError::Conflict(m);
                        current = api.get(name).await.map_err(EffectError::from_kube)?;
                        if current.metadata.uid != set.metadata.uid {
                            return Err(EffectError::NotFound(format!(
                                "statefulset {}/{name} was replaced",
                                spec::namespace(set)
                            )));
                        }
                    }
                    other => return Err(other),
                },
            }
        }
        Err(last)
    }

    async fn record(&self, set: &StatefulSet, event: SetEvent) {
        let namespace = spec::namespace(set).to_string();
        // The related object separates the recorder's aggregation keys: without it, every
        // `SuccessfulCreate` of a set would become one series with the first pod's note.
        let secondary = event.related.as_ref().map(|r| match r {
            Related::Pod(name) => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectReference::default()
            },
            Related::Claim(name) => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectReference::default()
            },
        });
        let ev = Event {
            type_: match event.severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: event.reason.clone(),
            note: Some(event.note.clone()),
            action: event.action.to_string(),
            secondary,
        };
        // `object_ref` carries the set's uid, which `kubectl describe` selects events by.
        let regarding = set.object_ref(&());
        // Off the sync path, as upstream's event broadcaster is: the next pod does not wait for
        // the event about the last one to be written, and events never take more than
        // EVENT_WRITERS requests from the writes that make progress.
        let set_key = format!("{namespace}/{}", spec::name(set));
        let queue = self
            .events
            .get_or_init(|| start_event_writers(self.recorder.clone()));
        if queue.try_send((ev, regarding, set_key.clone())).is_err() {
            tracing::warn!(
                statefulset = %set_key,
                reason = %event.reason,
                "statefulset controller: event queue full, event dropped"
            );
        }
    }
}

/// Starts the task that writes queued events, [`EVENT_WRITERS`] at a time; it ends when every
/// [`KubeEffects`] clone is gone.
fn start_event_writers(recorder: Recorder) -> mpsc::Sender<(Event, ObjectReference, String)> {
    let (tx, rx) = mpsc::channel::<(Event, ObjectReference, String)>(EVENT_QUEUE);
    let events = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    tokio::spawn(
        events.for_each_concurrent(EVENT_WRITERS, move |(ev, regarding, set_key)| {
            let recorder = recorder.clone();
            async move {
                if let Err(e) = recorder.publish(&ev, &regarding).await {
                    tracing::warn!(
                        statefulset = %set_key,
                        reason = %ev.reason,
                        error = %e,
                        "statefulset controller: recording an event failed"
                    );
                }
            }
        }),
    );
    tx
}

#[cfg(test)]
mod tests {
    use super::newer_version;

    #[test]
    fn a_status_write_uses_the_newer_of_the_cached_and_the_last_written_version() {
        assert_eq!(newer_version("10", Some("12")), "12");
        assert_eq!(newer_version("15", Some("12")), "15", "someone wrote since");
        assert_eq!(newer_version("10", None), "10");
        assert_eq!(newer_version("opaque", Some("12")), "opaque");
    }
}
