//! Per-resource hooks of the generic registry (upstream's `RESTCreateStrategy` /
//! `RESTUpdateStrategy` / status strategies): what the server resets on create, what a main-resource
//! write may not touch, what a status write may touch, and which kinds count generations.

use serde_json::{Map, Value, json};
use stead_api::ResourceType;

/// True for kinds whose `metadata.generation` tracks spec changes.
pub fn tracks_generation(rt: &ResourceType) -> bool {
    matches!((rt.group, rt.kind), ("apps", "StatefulSet"))
}

fn has_status_subresource(rt: &ResourceType) -> bool {
    rt.subresource("status").is_some()
}

/// Resets what a client may not set on create (upstream `PrepareForCreate`).
pub fn prepare_create(rt: &ResourceType, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else { return };
    match (rt.group, rt.kind) {
        ("", "Pod") => {
            let qos = qos_class(map.get("spec"));
            map.insert("status".into(), json!({"phase": "Pending", "qosClass": qos}));
        }
        ("", "PersistentVolumeClaim") => {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "PersistentVolume") => {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "Namespace") => {
            map.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "Service") => {
            map.insert("status".into(), json!({"loadBalancer": {}}));
        }
        ("", "Node") => {}
        _ if has_status_subresource(rt) => {
            map.remove("status");
        }
        _ => {}
    }
    if tracks_generation(rt) {
        if let Some(m) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("generation".into(), json!(1));
        }
    }
}

/// A main-resource update keeps the stored status and bumps the generation on spec changes
/// (upstream `PrepareForUpdate`).
pub fn prepare_update(rt: &ResourceType, new: &mut Value, old: &Value) {
    if has_status_subresource(rt) {
        if let Some(map) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => {
                    map.insert("status".into(), s.clone());
                }
                None => {
                    map.remove("status");
                }
            }
        }
    }
    if tracks_generation(rt) {
        let old_gen = stead_api::meta::generation(old);
        let bump = new.get("spec") != old.get("spec");
        let m = stead_api::meta::metadata_mut(new);
        m.insert("generation".into(), json!(if bump { old_gen + 1 } else { old_gen }));
    }
}

/// A status write may change only `status` (upstream status strategies copy the old spec and
/// metadata over the new object).
pub fn prepare_status_update(new: &mut Value, old: &Value) {
    let status = new.get("status").cloned();
    let mut out = old.clone();
    if let Some(map) = out.as_object_mut() {
        match status {
            Some(s) => {
                map.insert("status".into(), s);
            }
            None => {
                map.remove("status");
            }
        }
    }
    // The caller's resourceVersion is the precondition; keep it for the CAS check.
    let rv = stead_api::meta::resource_version(new).to_string();
    stead_api::meta::set_str(&mut out, "resourceVersion", &rv);
    *new = out;
}

/// How long a delete of `obj` is graceful: pods bound to a node wait for their agent to confirm;
/// everything else is removed at once (`None`).
pub fn grace_period(rt: &ResourceType, obj: &Value, requested: Option<i64>) -> Option<i64> {
    if (rt.group, rt.kind) != ("", "Pod") {
        return None;
    }
    let bound = obj.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let finished = matches!(obj.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"));
    if !bound || finished {
        return None;
    }
    let default = obj.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30);
    match requested.unwrap_or(default) {
        0 => None,
        n => Some(n.max(1)),
    }
}

/// The pod QoS class from its containers' requests and limits (upstream `GetPodQOS`, simplified to
/// cpu and memory).
fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec.and_then(|s| s.get(*k)).and_then(Value::as_array))
        .flatten()
        .collect();
    let empty = Map::new();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object).unwrap_or(&empty);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object).unwrap_or(&empty);
        for r in ["cpu", "memory"] {
            let (req, lim) = (requests.get(r), limits.get(r));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(q), Some(l)) if q != l => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stead_api::resource::find;

    #[test]
    fn statefulset_create_sets_generation_one_and_wipes_status() {
        let rt = find("apps", "v1", "statefulsets").unwrap();
        let mut o = json!({"metadata": {"name": "web"}, "spec": {}, "status": {"replicas": 3}});
        prepare_create(rt, &mut o);
        assert_eq!(o["metadata"]["generation"], 1);
        assert!(o.get("status").is_none());
    }

    #[test]
    fn spec_change_bumps_generation_and_label_change_does_not() {
        let rt = find("apps", "v1", "statefulsets").unwrap();
        let old = json!({"metadata": {"generation": 4}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let mut labelled = json!({"metadata": {"generation": 4, "labels": {"a": "b"}}, "spec": {"replicas": 1}});
        prepare_update(rt, &mut labelled, &old);
        assert_eq!(labelled["metadata"]["generation"], 4);
        assert_eq!(labelled["status"], json!({"replicas": 1}));
        let mut scaled = json!({"metadata": {"generation": 4}, "spec": {"replicas": 5}, "status": {"replicas": 9}});
        prepare_update(rt, &mut scaled, &old);
        assert_eq!(scaled["metadata"]["generation"], 5);
        assert_eq!(scaled["status"], json!({"replicas": 1}), "status sent to the main resource is ignored");
    }

    #[test]
    fn status_update_keeps_spec_and_metadata() {
        let old = json!({"metadata": {"name": "a", "labels": {"x": "1"}, "resourceVersion": "3"}, "spec": {"replicas": 1}});
        let mut new = json!({"metadata": {"name": "a", "labels": {"x": "2"}, "resourceVersion": "3"}, "spec": {"replicas": 7}, "status": {"replicas": 1}});
        prepare_status_update(&mut new, &old);
        assert_eq!(new["spec"]["replicas"], 1);
        assert_eq!(new["metadata"]["labels"]["x"], "1");
        assert_eq!(new["status"]["replicas"], 1);
    }

    #[test]
    fn only_bound_running_pods_delete_gracefully() {
        let pods = find("", "v1", "pods").unwrap();
        let unbound = json!({"spec": {}});
        assert_eq!(grace_period(pods, &unbound, None), None);
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}, "status": {"phase": "Running"}});
        assert_eq!(grace_period(pods, &bound, None), Some(10));
        assert_eq!(grace_period(pods, &bound, Some(0)), None);
        let cms = find("", "v1", "configmaps").unwrap();
        assert_eq!(grace_period(cms, &bound, None), None);
    }

    #[test]
    fn pod_qos_follows_requests_and_limits() {
        assert_eq!(qos_class(Some(&json!({"containers": [{"name": "a"}]}))), "BestEffort");
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(Some(&g)), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(Some(&b)), "Burstable");
    }
}
