//! Pod validation: the essentials a user meets (upstream `ValidatePodCreate` / `ValidatePodSpec`,
//! `ValidatePodUpdate`), with upstream messages. Not everything upstream checks is here: resource
//! quantities, probes, security contexts, affinity and most volume-source internals are accepted.

use std::collections::HashSet;

use serde_json::Value;

use super::json::{arr_of, int_of, normalized, semantic_eq, str_of, value_of};
use super::meta::{meta_create, meta_update, required_one_of, validate_labels};
use super::names;
use crate::error::FieldError;

/// The volume source fields of `VolumeSource` (exactly one must be set), in the order upstream's
/// `validateVolumeSource` checks them (the second one found is the one reported).
pub const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flexVolume",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// The fields upstream lets a pod update change, as its message lists them.
const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A `Not found` cause. `FieldErrorType` has no `NotFound` variant yet, so this renders as
/// `Invalid value: "x": not found` until one is added (then only this helper changes).
pub fn not_found(path: impl Into<String>, value: &str) -> FieldError {
    FieldError::invalid(path, value, "not found")
}

/// Upstream `ValidatePodCreate`.
pub fn validate_create(obj: &Value) -> Vec<FieldError> {
    let mut errs = meta_create(obj, true, names::name_is_dns_subdomain);
    errs.extend(validate_pod_spec(
        obj.get("spec").unwrap_or(&Value::Null),
        "spec",
    ));
    errs
}

/// Upstream `ValidatePodUpdate`: only images, `activeDeadlineSeconds`, added tolerations and a
/// negative grace period set to 1 may change.
pub fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let mut errs = meta_update(new, old);
    let new_spec = new.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    errs.extend(validate_pod_spec(new_spec, "spec"));
    for list in ["containers", "initContainers"] {
        if arr_of(new_spec, list).len() != arr_of(old_spec, list).len() {
            errs.push(FieldError::forbidden(
                format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
    }
    match (
        int_of(new_spec, "activeDeadlineSeconds"),
        int_of(old_spec, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                names::inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let old_tols = arr_of(old_spec, "tolerations");
    for (i, t) in old_tols.iter().enumerate() {
        if !arr_of(new_spec, "tolerations")
            .iter()
            .any(|n| semantic_eq(n, t))
        {
            errs.push(FieldError::forbidden(
                format!("spec.tolerations[{i}]"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }
    if semantic_eq(new_spec, old_spec) {
        return errs;
    }
    let mut munged = new_spec.clone();
    for list in ["containers", "initContainers"] {
        if let Some(items) = munged.get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in items.iter_mut().enumerate() {
                if let Some(c) = c.as_object_mut() {
                    let old_image = arr_of(old_spec, list)
                        .get(i)
                        .map(|o| value_of(o, "image"))
                        .unwrap_or(Value::Null);
                    c.insert("image".into(), old_image);
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old_spec.get(key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
        let old_grace = int_of(old_spec, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && int_of(new_spec, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                value_of(old_spec, "terminationGracePeriodSeconds"),
            );
        }
    }
    if !semantic_eq(&munged, old_spec) {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {UPDATABLE}\n{}",
                spec_diff(old_spec, &munged)
            ),
        ));
    }
    errs
}

/// A short, readable diff of two specs: one `-`/`+` line pair per changed field path (upstream
/// prints a Go `cmp.Diff` here, which cannot be reproduced outside Go).
fn spec_diff(old: &Value, new: &Value) -> String {
    let mut lines = Vec::new();
    diff_into(&normalized(old), &normalized(new), "spec", &mut lines);
    lines.join("\n")
}

fn diff_into(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                if x != y {
                    diff_into(x, y, &format!("{path}.{k}"), out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    diff_into(x, y, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {
            out.push(format!("- {path}: {old}"));
            out.push(format!("+ {path}: {new}"));
        }
    }
}

/// Upstream `ValidatePodStatusUpdate` (metadata rules; status contents are the kubelet's).
pub fn validate_status_update(new: &Value, old: &Value) -> Vec<FieldError> {
    meta_update(new, old)
}

/// The essentials of upstream `ValidatePodSpec`, at `path` (`spec` or `spec.template.spec`).
pub fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let volumes = validate_volumes(spec, path, &mut errs);
    let mut names_seen: HashSet<String> = HashSet::new();
    for (i, c) in arr_of(spec, "initContainers").iter().enumerate() {
        validate_container(
            c,
            &format!("{path}.initContainers[{i}]"),
            &volumes,
            &mut names_seen,
            &mut errs,
        );
    }
    let containers = arr_of(spec, "containers");
    if containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    for (i, c) in containers.iter().enumerate() {
        validate_container(
            c,
            &format!("{path}.containers[{i}]"),
            &volumes,
            &mut names_seen,
            &mut errs,
        );
    }
    errs.extend(required_one_of(
        &format!("{path}.restartPolicy"),
        str_of(spec, "restartPolicy"),
        &["Always", "OnFailure", "Never"],
    ));
    errs.extend(required_one_of(
        &format!("{path}.dnsPolicy"),
        str_of(spec, "dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    errs.extend(validate_labels(
        spec.get("nodeSelector").unwrap_or(&Value::Null),
        &format!("{path}.nodeSelector"),
    ));
    let sa = str_of(spec, "serviceAccountName");
    if !sa.is_empty() {
        for msg in names::dns1123_subdomain(sa) {
            errs.push(FieldError::invalid(
                format!("{path}.serviceAccountName"),
                sa,
                msg,
            ));
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = str_of(spec, key);
        if !v.is_empty() {
            for msg in names::dns1123_label(v) {
                errs.push(FieldError::invalid(format!("{path}.{key}"), v, msg));
            }
        }
    }
    if let Some(ads) = int_of(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(FieldError::invalid(
            format!("{path}.activeDeadlineSeconds"),
            ads,
            names::inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    errs
}

/// Volume names (required, DNS label, unique) and exactly one source each; returns the names.
fn validate_volumes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (i, vol) in arr_of(spec, "volumes").iter().enumerate() {
        let p = format!("{path}.volumes[{i}]");
        let set: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|s| vol.get(*s).is_some_and(|v| !v.is_null()))
            .collect();
        match set.as_slice() {
            [] => errs.push(FieldError::required(
                p.clone(),
                "must specify a volume type",
            )),
            [_] => {}
            [_, rest @ ..] => {
                for s in rest {
                    errs.push(FieldError::forbidden(
                        format!("{p}.{s}"),
                        "may not specify more than 1 volume type",
                    ));
                }
            }
        }
        if let Some(pvc) = vol.get("persistentVolumeClaim").filter(|v| !v.is_null())
            && str_of(pvc, "claimName").is_empty()
        {
            errs.push(FieldError::required(
                format!("{p}.persistentVolumeClaim.claimName"),
                "",
            ));
        }
        let name = str_of(vol, "name");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{p}.name"), name, msg));
            }
        }
        if !seen.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{p}.name"), name));
        }
    }
    seen
}

fn validate_container(
    c: &Value,
    path: &str,
    volumes: &HashSet<String>,
    names_seen: &mut HashSet<String>,
    errs: &mut Vec<FieldError>,
) {
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for msg in names::dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), name, msg));
        }
    }
    if !names_seen.insert(name.to_string()) {
        errs.push(FieldError::duplicate(format!("{path}.name"), name));
    }
    let image = str_of(c, "image");
    if image.is_empty() {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            format!("{path}.image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    let mut port_names = HashSet::new();
    for (i, port) in arr_of(c, "ports").iter().enumerate() {
        let p = format!("{path}.ports[{i}]");
        let pname = str_of(port, "name");
        if !pname.is_empty() {
            let msgs = names::port_name(pname);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(format!("{p}.name"), pname, msg));
                }
            } else if !port_names.insert(pname.to_string()) {
                errs.push(FieldError::duplicate(format!("{p}.name"), pname));
            }
        }
        match int_of(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(format!("{p}.containerPort"), "")),
            n => {
                for msg in names::port_num(n) {
                    errs.push(FieldError::invalid(format!("{p}.containerPort"), n, msg));
                }
            }
        }
        if let Some(hp) = int_of(port, "hostPort").filter(|h| *h != 0) {
            for msg in names::port_num(hp) {
                errs.push(FieldError::invalid(format!("{p}.hostPort"), hp, msg));
            }
        }
        errs.extend(required_one_of(
            &format!("{p}.protocol"),
            str_of(port, "protocol"),
            &["SCTP", "TCP", "UDP"],
        ));
    }
    for (i, env) in arr_of(c, "env").iter().enumerate() {
        let p = format!("{path}.env[{i}].name");
        let ename = str_of(env, "name");
        if ename.is_empty() {
            errs.push(FieldError::required(p, ""));
        } else if ename
            .chars()
            .any(|ch| !(ch.is_ascii_graphic() || ch == ' ') || ch == '=')
        {
            errs.push(FieldError::invalid(
                p,
                ename,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
    let mut mount_paths = HashSet::new();
    for (i, m) in arr_of(c, "volumeMounts").iter().enumerate() {
        let p = format!("{path}.volumeMounts[{i}]");
        let mname = str_of(m, "name");
        if mname.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        }
        if !volumes.contains(mname) {
            errs.push(not_found(format!("{p}.name"), mname));
        }
        let mpath = str_of(m, "mountPath");
        if mpath.is_empty() {
            errs.push(FieldError::required(format!("{p}.mountPath"), ""));
        }
        if !mount_paths.insert(mpath.to_string()) {
            errs.push(FieldError::invalid(
                format!("{p}.mountPath"),
                mpath,
                "must be unique",
            ));
        }
    }
}
