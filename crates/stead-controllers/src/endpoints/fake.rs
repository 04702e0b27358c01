//! A stateful fake of [`EndpointsEffects`]: objects in memory with resourceVersions, conflicts
//! like the API server's, generated names, call counts, and failures injected by count.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::effects::{EffectError, EndpointsEffects};

type Key = (String, String);

#[derive(Debug, Default)]
struct State {
    endpoints: BTreeMap<Key, Endpoints>,
    slices: BTreeMap<Key, EndpointSlice>,
    revision: u64,
    calls: BTreeMap<&'static str, usize>,
    /// method → (calls to let through first, error to answer after).
    failures: BTreeMap<&'static str, (usize, EffectError)>,
}

#[derive(Debug, Default)]
pub struct FakeEndpoints {
    state: Mutex<State>,
}

fn key(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl State {
    /// Counts a call of `method` and answers the injected failure when due.
    fn call(&mut self, method: &'static str) -> Result<(), EffectError> {
        *self.calls.entry(method).or_default() += 1;
        if let Some((after, e)) = self.failures.get_mut(method) {
            if *after == 0 {
                return Err(e.clone());
            }
            *after -= 1;
        }
        Ok(())
    }

    fn stamp(&mut self, meta: &mut ObjectMeta) {
        self.revision += 1;
        meta.resource_version = Some(self.revision.to_string());
        if meta.uid.is_none() {
            meta.uid = Some(format!("uid-{}", self.revision));
        }
    }
}

fn check_version(current: &ObjectMeta, new: &ObjectMeta) -> Result<(), EffectError> {
    if new.resource_version.is_some() && new.resource_version != current.resource_version {
        return Err(EffectError::Conflict("the object has been modified".into()));
    }
    Ok(())
}

impl FakeEndpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `method` fail with `error` after `after` more successful calls.
    pub fn fail(&self, method: &'static str, after: usize, error: EffectError) {
        self.lock().failures.insert(method, (after, error));
    }

    /// Stops injecting failures.
    pub fn heal(&self) {
        self.lock().failures.clear();
    }

    /// Calls of `method` so far (failed ones included).
    pub fn calls(&self, method: &str) -> usize {
        self.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// Calls of every write method so far.
    pub fn writes(&self) -> usize {
        self.lock().calls.values().sum()
    }

    pub fn endpoints(&self, namespace: &str, name: &str) -> Option<Endpoints> {
        self.lock()
            .endpoints
            .get(&(namespace.into(), name.into()))
            .cloned()
    }

    /// Slices of `namespace`, by name.
    pub fn slices(&self, namespace: &str) -> Vec<EndpointSlice> {
        self.lock()
            .slices
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Puts an object in place as if someone else had written it.
    pub fn insert_slice(&self, mut slice: EndpointSlice) -> EndpointSlice {
        let mut st = self.lock();
        st.stamp(&mut slice.metadata);
        st.slices.insert(key(&slice.metadata), slice.clone());
        slice
    }
}

impl EndpointsEffects for FakeEndpoints {
    async fn create_endpoints(&self, ep: &Endpoints) -> Result<Endpoints, EffectError> {
        let mut st = self.lock();
        st.call("create_endpoints")?;
        let k = key(&ep.metadata);
        if st.endpoints.contains_key(&k) {
            return Err(EffectError::Conflict("already exists".into()));
        }
        let mut ep = ep.clone();
        st.stamp(&mut ep.metadata);
        st.endpoints.insert(k, ep.clone());
        Ok(ep)
    }

    async fn update_endpoints(&self, ep: &Endpoints) -> Result<Endpoints, EffectError> {
        let mut st = self.lock();
        st.call("update_endpoints")?;
        let k = key(&ep.metadata);
        let current = st.endpoints.get(&k).ok_or(EffectError::NotFound)?;
        check_version(&current.metadata, &ep.metadata)?;
        let mut ep = ep.clone();
        st.stamp(&mut ep.metadata);
        st.endpoints.insert(k, ep.clone());
        Ok(ep)
    }

    async fn delete_endpoints(&self, namespace: &str, name: &str) -> Result<(), EffectError> {
        let mut st = self.lock();
        st.call("delete_endpoints")?;
        st.endpoints.remove(&(namespace.into(), name.into()));
        Ok(())
    }

    async fn create_slice(&self, slice: &EndpointSlice) -> Result<EndpointSlice, EffectError> {
        let mut st = self.lock();
        st.call("create_slice")?;
        let mut slice = slice.clone();
        if slice.metadata.name.is_none() {
            let prefix = slice.metadata.generate_name.clone().unwrap_or_default();
            slice.metadata.name = Some(format!("{prefix}{:05}", st.revision + 1));
        }
        let k = key(&slice.metadata);
        if st.slices.contains_key(&k) {
            return Err(EffectError::Conflict("already exists".into()));
        }
        st.stamp(&mut slice.metadata);
        st.slices.insert(k, slice.clone());
        Ok(slice)
    }

    async fn update_slice(&self, slice: &EndpointSlice) -> Result<EndpointSlice, EffectError> {
        let mut st = self.lock();
        st.call("update_slice")?;
        let k = key(&slice.metadata);
        let current = st.slices.get(&k).ok_or(EffectError::NotFound)?;
        check_version(&current.metadata, &slice.metadata)?;
        let mut slice = slice.clone();
        st.stamp(&mut slice.metadata);
        st.slices.insert(k, slice.clone());
        Ok(slice)
    }

    async fn delete_slice(&self, namespace: &str, name: &str) -> Result<(), EffectError> {
        let mut st = self.lock();
        st.call("delete_slice")?;
        st.slices.remove(&(namespace.into(), name.into()));
        Ok(())
    }
}
