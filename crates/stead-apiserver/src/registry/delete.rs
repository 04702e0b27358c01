//! DELETE: preconditions, garbage-collection finalizers from the propagation policy, graceful
//! deletion of bound pods, and finalizer-held objects that stay with `deletionTimestamp` set.

use serde_json::{Value, json};
use stead_api::{ApiError, FieldError, ResourceType, meta};
use stead_storage::StorageError;

use super::{MAX_RETRIES, Registry, codec, node_port, service_ip, storage_error, strategy};

/// Options of a delete (`DeleteOptions` body merged with query parameters).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub dry_run: bool,
}

/// What a delete did: the object is gone, or it still exists with `deletionTimestamp` set
/// (graceful deletion or finalizers pending).
#[derive(Debug, Clone)]
pub enum Deleted {
    Gone(Value),
    Pending(Value),
}

impl Registry {
    /// Frees what a removed object held (a Service's cluster IP and node ports).
    pub(super) async fn released(&self, rt: &ResourceType, obj: &Value) {
        if (rt.group, rt.kind) != ("", "Service") {
            return;
        }
        if let Some(ip) = obj.pointer("/spec/clusterIP").and_then(Value::as_str) {
            service_ip::release(self.store.as_ref(), ip).await;
        }
        node_port::release(self.store.as_ref(), node_port::in_use(obj)).await;
    }

    /// Delete with finalizers, propagation policy and graceful deletion.
    pub async fn delete(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        for _ in 0..MAX_RETRIES {
            let current = self.get(rt, ns, name).await?;
            if let Some(uid) = &opts.precondition_uid
                && uid != meta::uid(&current)
            {
                return Err(ApiError::conflict(
                    rt.group,
                    rt.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta::uid(&current)
                    ),
                ));
            }
            if let Some(rv) = &opts.precondition_resource_version
                && rv != meta::resource_version(&current)
            {
                return Err(ApiError::conflict(
                    rt.group,
                    rt.plural,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta::resource_version(&current)
                    ),
                ));
            }
            let policy = match (opts.propagation_policy.as_deref(), opts.orphan_dependents) {
                (Some(p), _) => p.to_string(),
                (None, Some(true)) => "Orphan".to_string(),
                _ => "Background".to_string(),
            };
            let mut finalizers = meta::finalizers(&current);
            let gc_finalizer = match policy.as_str() {
                "Foreground" => Some("foregroundDeletion"),
                "Orphan" => Some("orphan"),
                "Background" => None,
                other => {
                    return Err(ApiError::invalid(
                        rt.group,
                        rt.kind,
                        name,
                        &[FieldError::not_supported(
                            "propagationPolicy",
                            other,
                            &["Foreground", "Background", "Orphan"],
                        )],
                    ));
                }
            };
            // An explicit policy replaces whichever garbage-collection finalizer the object
            // carries (upstream `deletionFinalizersForGarbageCollection`); without one the
            // object's own finalizers stand.
            let explicit = opts.propagation_policy.is_some() || opts.orphan_dependents.is_some();
            if explicit {
                finalizers.retain(|f| f != "orphan" && f != "foregroundDeletion");
                if let Some(f) = gc_finalizer {
                    finalizers.push(f.to_string());
                }
            }
            let grace = strategy::grace_period(rt, &current, opts.grace_period_seconds);
            let expected: u64 = meta::resource_version(&current).parse().unwrap_or(0);
            let key = rt.key(ns, name);

            if finalizers.is_empty() && grace.is_none() && !strategy::holds_on_delete(rt, &current)
            {
                if opts.dry_run {
                    return Ok(Deleted::Gone(current));
                }
                match self.store.delete(&key, Some(expected)).await {
                    Ok(_) => {
                        self.released(rt, &current).await;
                        return Ok(Deleted::Gone(current));
                    }
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(e) => return Err(storage_error(rt, name, e)),
                }
            }

            let mut next = current.clone();
            meta::set_finalizers(&mut next, &finalizers);
            strategy::mark_deleting(rt, &mut next);
            {
                let m = meta::metadata_mut(&mut next);
                let seconds = grace.unwrap_or(0);
                if !m.contains_key("deletionTimestamp") {
                    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
                    m.insert(
                        "deletionTimestamp".into(),
                        json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                    );
                    m.insert("deletionGracePeriodSeconds".into(), json!(seconds));
                    if strategy::tracks_generation(rt) {
                        let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
                        m.insert("generation".into(), json!(g + 1));
                    }
                } else if let Some(s) = grace {
                    // A shorter grace period may be requested for an object already terminating.
                    let old = m
                        .get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MAX);
                    if s < old {
                        m.insert("deletionGracePeriodSeconds".into(), json!(s));
                    }
                }
            }
            if next == current {
                return Ok(Deleted::Pending(current));
            }
            if opts.dry_run {
                return Ok(Deleted::Pending(next));
            }
            match self
                .store
                .update(&key, codec::encode_stored(rt, &next), expected)
                .await
            {
                Ok(rev) => {
                    meta::set_str(&mut next, "resourceVersion", &rev.to_string());
                    return Ok(Deleted::Pending(next));
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(storage_error(rt, name, e)),
            }
        }
        Err(ApiError::stale(rt.group, rt.plural, name))
    }
}
