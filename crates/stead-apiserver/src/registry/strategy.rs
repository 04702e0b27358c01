//! Per-resource hooks of the generic registry (upstream's `RESTCreateStrategy` /
//! `RESTUpdateStrategy` / status strategies): what the server resets on create, what a main-resource
//! write may not touch, what a status write may touch, and which kinds count generations.

use serde_json::{Value, json};
use stead_api::ResourceType;

/// True for kinds whose `metadata.generation` tracks spec changes.
pub fn tracks_generation(rt: &ResourceType) -> bool {
    matches!((rt.group, rt.kind), ("apps", "StatefulSet"))
}

fn has_status_subresource(rt: &ResourceType) -> bool {
    rt.subresource("status").is_some()
}

/// Resets what a client may not set on create (upstream `PrepareForCreate`): the status of kinds
/// with a status subresource starts from the kind's initial status. Pod and Namespace specifics
/// live in `stead_api::defaults::prepare_for_create`.
pub fn prepare_create(rt: &ResourceType, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    match (rt.group, rt.kind) {
        // A node agent registers its node with its status.
        ("", "Node") => {}
        ("", "PersistentVolumeClaim" | "PersistentVolume") => {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "Service") => {
            map.insert("status".into(), json!({"loadBalancer": {}}));
        }
        _ if has_status_subresource(rt) => {
            map.remove("status");
        }
        _ => {}
    }
    if tracks_generation(rt)
        && let Some(m) = map.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.insert("generation".into(), json!(1));
    }
    stead_api::defaults::prepare_for_create(rt.group, rt.kind, obj);
}

/// A main-resource update keeps the stored status and bumps the generation on spec changes
/// (upstream `PrepareForUpdate`).
pub fn prepare_update(rt: &ResourceType, new: &mut Value, old: &Value) {
    if has_status_subresource(rt)
        && let Some(map) = new.as_object_mut()
    {
        match old.get("status") {
            Some(s) => {
                map.insert("status".into(), s.clone());
            }
            None => {
                map.remove("status");
            }
        }
    }
    if (rt.group, rt.kind) == ("", "Namespace") {
        // Only the finalize subresource changes a namespace's finalizers.
        match (
            old.pointer("/spec/finalizers"),
            new.get_mut("spec").and_then(Value::as_object_mut),
        ) {
            (Some(f), Some(spec)) => {
                spec.insert("finalizers".into(), f.clone());
            }
            (Some(f), None) => {
                if let Some(map) = new.as_object_mut() {
                    map.insert("spec".into(), json!({"finalizers": f}));
                }
            }
            (None, Some(spec)) => {
                spec.remove("finalizers");
            }
            (None, None) => {}
        }
    }
    if (rt.group, rt.kind) == ("", "Service") {
        keep_node_ports(new, old);
        // Allocated addresses stay unless the client names them.
        for key in ["clusterIP", "clusterIPs"] {
            let missing = new
                .pointer(&format!("/spec/{key}"))
                .is_none_or(|v| v.is_null() || v == "" || v == &json!([]));
            if let (true, Some(old_v), Some(spec)) = (
                missing,
                old.pointer(&format!("/spec/{key}")),
                new.get_mut("spec").and_then(Value::as_object_mut),
            ) {
                spec.insert(key.into(), old_v.clone());
            }
        }
    }
    if tracks_generation(rt) {
        let old_gen = stead_api::meta::generation(old);
        let bump = new.get("spec") != old.get("spec");
        let m = stead_api::meta::metadata_mut(new);
        m.insert(
            "generation".into(),
            json!(if bump { old_gen + 1 } else { old_gen }),
        );
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

/// True for objects a delete must keep until something finalizes them besides
/// `metadata.finalizers`: namespaces wait for their `spec.finalizers` (the namespace controller
/// empties the namespace, then clears them through `namespaces/<name>/finalize`).
pub fn holds_on_delete(rt: &ResourceType, obj: &Value) -> bool {
    (rt.group, rt.kind) == ("", "Namespace")
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

/// Marks an object whose deletion is pending (a namespace turns `Terminating`).
pub fn mark_deleting(rt: &ResourceType, obj: &mut Value) {
    if (rt.group, rt.kind) == ("", "Namespace")
        && let Some(map) = obj.as_object_mut()
    {
        let status = map.entry("status").or_insert_with(|| json!({}));
        status["phase"] = json!("Terminating");
    }
}

/// An object being deleted whose last finalizer is gone is removed from the store.
pub fn ready_to_remove(rt: &ResourceType, obj: &Value) -> bool {
    stead_api::meta::is_deleting(obj)
        && stead_api::meta::finalizers(obj).is_empty()
        && !holds_on_delete(rt, obj)
}

/// `namespaces/<name>/finalize` may change only `spec.finalizers`.
pub fn prepare_finalize(new: &mut Value, old: &Value) {
    let finalizers = new
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let rv = stead_api::meta::resource_version(new).to_string();
    let mut out = old.clone();
    if let Some(map) = out.as_object_mut() {
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        spec["finalizers"] = finalizers;
    }
    stead_api::meta::set_str(&mut out, "resourceVersion", &rv);
    *new = out;
}

/// How long a delete of `obj` is graceful: pods bound to a node wait for their agent to confirm;
/// everything else is removed at once (`None`).
pub fn grace_period(rt: &ResourceType, obj: &Value, requested: Option<i64>) -> Option<i64> {
    if (rt.group, rt.kind) != ("", "Pod") {
        return None;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !bound || finished {
        return None;
    }
    let default = obj
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    match requested.unwrap_or(default) {
        0 => None,
        n => Some(n.max(1)),
    }
}

/// Node ports on a Service update, as upstream: a port that lost its `nodePort` gets back the
/// one the old port of the same name had (unless another port now uses it), while the type
/// still wants node ports; a type change away from them (to ClusterIP) drops the node ports
/// the client left as they were.
fn keep_node_ports(new: &mut Value, old: &Value) {
    use super::node_port::{in_use, wanted};
    let (old_wants, new_wants) = (wanted(old), wanted(new));
    let old_ports: Vec<Value> = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let node_port = |p: &Value| p.get("nodePort").and_then(Value::as_u64).unwrap_or(0);
    if old_wants && new_wants {
        let used: Vec<u16> = in_use(old).intersection(&in_use(new)).copied().collect();
        let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
            return;
        };
        for port in ports.iter_mut().filter(|p| node_port(p) == 0) {
            let name = port.get("name").cloned().unwrap_or(json!(""));
            let before = old_ports
                .iter()
                .find(|p| p.get("name").cloned().unwrap_or(json!("")) == name)
                .map(node_port)
                .filter(|n| *n != 0 && !used.iter().any(|u| u64::from(*u) == *n));
            if let (Some(n), Some(map)) = (before, port.as_object_mut()) {
                map.insert("nodePort".into(), json!(n));
            }
        }
    } else if old_wants && !new_wants {
        let new_ports: Vec<u64> = new
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().map(node_port).collect())
            .unwrap_or_default();
        let old_node_ports: Vec<u64> = old_ports.iter().map(node_port).collect();
        if new_ports == old_node_ports
            && let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
        {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("nodePort");
            }
        }
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
        let mut labelled =
            json!({"metadata": {"generation": 4, "labels": {"a": "b"}}, "spec": {"replicas": 1}});
        prepare_update(rt, &mut labelled, &old);
        assert_eq!(labelled["metadata"]["generation"], 4);
        assert_eq!(labelled["status"], json!({"replicas": 1}));
        let mut scaled = json!({"metadata": {"generation": 4}, "spec": {"replicas": 5}, "status": {"replicas": 9}});
        prepare_update(rt, &mut scaled, &old);
        assert_eq!(scaled["metadata"]["generation"], 5);
        assert_eq!(
            scaled["status"],
            json!({"replicas": 1}),
            "status sent to the main resource is ignored"
        );
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
}
