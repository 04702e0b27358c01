//! Server-side apply and Update tracking, following the requests kubectl sends
//! (kubectl-protocol.md §2.6).

use serde_json::{Value, json};

use super::test_schemas::{STS, schemas};
use super::{ApplyRequest, PatchError, record_update, server_side_apply};

const T1: &str = "2026-11-22T01:02:03Z";
const T2: &str = "2026-11-22T01:05:00Z";

fn config(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
           "spec": {"replicas": replicas, "serviceName": "nginx",
                    "selector": {"matchLabels": {"app": "nginx"}},
                    "template": {"metadata": {"labels": {"app": "nginx"}},
                                 "spec": {"containers": [{"name": "nginx", "image": image}]}}}})
}

fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, PatchError> {
    let req = ApplyRequest {
        manager,
        force,
        api_version: "apps/v1",
        now,
    };
    server_side_apply(live, applied, &req, &schemas(), STS)
}

fn entries(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or("").to_string(),
                        e["operation"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn fields_of<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == manager))
        .map(|e| &e["fieldsV1"])
        .unwrap_or(&Value::Null)
}

/// A live object created by client-side apply: POST by kubectl-client-side-apply.
fn created_by_csa(replicas: i64) -> Value {
    let mut obj = config(replicas, "nginx:1.25");
    record_update(
        None,
        &mut obj,
        "kubectl-client-side-apply",
        "apps/v1",
        T1,
        &schemas(),
        STS,
    );
    obj
}

#[test]
fn apply_creates_the_object_and_records_the_appliers_fields() {
    let out = apply(None, &config(2, "nginx:1.25"), "kubectl", false, T1).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    let mf = &out["metadata"]["managedFields"];
    assert_eq!(mf.as_array().map(Vec::len), Some(1));
    assert_eq!(mf[0]["manager"], "kubectl");
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(mf[0]["apiVersion"], "apps/v1");
    assert_eq!(mf[0]["time"], T1);
    assert_eq!(mf[0]["fieldsType"], "FieldsV1");
    assert_eq!(
        mf[0]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app": {}}},
               "f:spec": {"f:replicas": {}, "f:selector": {}, "f:serviceName": {},
                          "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                                         "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
}

#[test]
fn re_applying_an_unchanged_config_is_a_no_op() {
    let first = apply(None, &config(2, "nginx:1.25"), "kubectl", false, T1).unwrap();
    let second = apply(Some(&first), &config(2, "nginx:1.25"), "kubectl", false, T2).unwrap();
    assert_eq!(second, first);
}

#[test]
fn a_different_value_on_a_field_another_manager_owns_conflicts() {
    // Ref: managedfields/internal/conflict.go getConflictMessage + printManager
    let live = created_by_csa(3);
    let err = apply(Some(&live), &config(5, "nginx:1.25"), "kubectl", false, T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    let api = err.to_api_error("apps", "statefulsets", "StatefulSet", "web");
    assert_eq!(api.code, 409);
    assert_eq!(
        api.details.unwrap()["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using apps/v1",
                "field": ".spec.replicas"}])
    );
}

#[test]
fn the_same_value_on_a_field_another_manager_owns_is_shared() {
    let live = created_by_csa(3);
    let out = apply(Some(&live), &config(3, "nginx:1.25"), "kubectl", false, T2).unwrap();
    assert_eq!(
        fields_of(&out, "kubectl")["f:spec"]["f:replicas"],
        json!({})
    );
    assert_eq!(
        fields_of(&out, "kubectl-client-side-apply")["f:spec"]["f:replicas"],
        json!({})
    );
}

#[test]
fn force_takes_ownership_of_conflicting_fields() {
    // kubectl apply --server-side --force-conflicts after a client-side apply.
    let live = created_by_csa(3);
    let out = apply(Some(&live), &config(5, "nginx:1.26"), "kubectl", true, T2).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(
        fields_of(&out, "kubectl")["f:spec"]["f:replicas"],
        json!({})
    );
    let csa = fields_of(&out, "kubectl-client-side-apply");
    assert!(csa["f:spec"].get("f:replicas").is_none());
    assert!(
        csa["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]
            .get("f:image")
            .is_none()
    );
    assert!(csa["f:spec"].get("f:serviceName").is_some());
    assert_eq!(
        entries(&out),
        [
            ("kubectl".to_string(), "Apply".to_string()),
            (
                "kubectl-client-side-apply".to_string(),
                "Update".to_string()
            )
        ]
    );
}

#[test]
fn a_field_dropped_from_the_applied_config_is_removed() {
    let mut with_env = config(2, "nginx:1.25");
    with_env["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}]);
    with_env["metadata"]["labels"]["tier"] = json!("db");
    let first = apply(None, &with_env, "kubectl", false, T1).unwrap();
    let second = apply(Some(&first), &config(2, "nginx:1.25"), "kubectl", false, T2).unwrap();
    assert!(
        second["spec"]["template"]["spec"]["containers"][0]
            .get("env")
            .is_none()
    );
    assert_eq!(second["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(second["metadata"]["managedFields"][0]["time"], T2);
}

#[test]
fn a_dropped_field_another_manager_also_owns_stays() {
    let mut with_label = config(2, "nginx:1.25");
    with_label["metadata"]["labels"]["tier"] = json!("db");
    let first = apply(None, &with_label, "kubectl", false, T1).unwrap();
    let shared = apply(
        Some(&first),
        &json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "labels": {"tier": "db"}}}),
        "other",
        false,
        T1,
    )
    .unwrap();
    let out = apply(
        Some(&shared),
        &config(2, "nginx:1.25"),
        "kubectl",
        false,
        T2,
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"]["tier"], "db");
}

#[test]
fn the_kubectl_last_applied_second_apply_keeps_the_spec() {
    let live = apply(None, &config(2, "nginx:1.25"), "kubectl", false, T1).unwrap();
    let annotation = "{\"apiVersion\":\"apps/v1\"}\n";
    let second = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": annotation},
                     "name": "web", "namespace": "default"}});
    let out = apply(Some(&live), &second, "kubectl-last-applied", false, T2).unwrap();
    assert_eq!(out["spec"], live["spec"]);
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        annotation
    );
    assert_eq!(
        fields_of(&out, "kubectl-last-applied"),
        &json!({"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}})
    );
    assert_eq!(fields_of(&out, "kubectl"), fields_of(&live, "kubectl"));
}

#[test]
fn an_applied_config_with_managed_fields_is_refused() {
    let mut c = config(1, "x");
    c["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &c, "kubectl", false, T1).unwrap_err();
    assert_eq!(
        err.to_api_error("apps", "statefulsets", "StatefulSet", "web")
            .code,
        400
    );
}

#[test]
fn an_update_gives_the_writer_the_fields_it_changed() {
    let live = apply(None, &config(2, "nginx:1.25"), "kubectl", false, T1).unwrap();
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    record_update(
        Some(&live),
        &mut edited,
        "kubectl-edit",
        "apps/v1",
        T2,
        &schemas(),
        STS,
    );
    assert_eq!(
        fields_of(&edited, "kubectl-edit"),
        &json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {"f:image": {}}}}}}})
    );
    let kubectl = fields_of(&edited, "kubectl");
    assert!(
        kubectl["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]
            .get("f:image")
            .is_none()
    );
    // Now the applier conflicts with the editor on the image.
    let err = apply(
        Some(&edited),
        &config(2, "nginx:1.25"),
        "kubectl",
        false,
        T2,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn a_create_by_update_records_maps_and_list_items_as_members() {
    let obj = created_by_csa(3);
    let mf = &obj["metadata"]["managedFields"][0];
    assert_eq!(
        (&mf["manager"], &mf["operation"], &mf["time"]),
        (
            &json!("kubectl-client-side-apply"),
            &json!("Update"),
            &json!(T1)
        )
    );
    assert_eq!(
        mf["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
               "f:spec": {"f:replicas": {}, "f:selector": {}, "f:serviceName": {},
                          "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                                         "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
}

#[test]
fn an_update_that_changes_nothing_leaves_managed_fields_alone() {
    let live = created_by_csa(3);
    let mut same = live.clone();
    record_update(
        Some(&live),
        &mut same,
        "kubectl-edit",
        "apps/v1",
        T2,
        &schemas(),
        STS,
    );
    assert_eq!(same, live);
}

#[test]
fn managed_fields_written_explicitly_by_an_update_are_kept() {
    // kubectl's client-side-apply migration JSON-patches metadata.managedFields directly.
    let live = created_by_csa(3);
    let mut migrated = live.clone();
    migrated["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
    migrated["metadata"]["managedFields"][0]["operation"] = json!("Apply");
    record_update(
        Some(&live),
        &mut migrated,
        "kubectl",
        "apps/v1",
        T2,
        &schemas(),
        STS,
    );
    assert_eq!(
        entries(&migrated),
        [("kubectl".to_string(), "Apply".to_string())]
    );
}

#[test]
fn deleting_a_field_in_an_update_takes_it_from_its_owner() {
    let live = created_by_csa(3);
    let mut edited = live.clone();
    if let Some(spec) = edited["spec"].as_object_mut() {
        spec.remove("serviceName");
    }
    record_update(
        Some(&live),
        &mut edited,
        "kubectl-edit",
        "apps/v1",
        T2,
        &schemas(),
        STS,
    );
    assert!(
        fields_of(&edited, "kubectl-client-side-apply")["f:spec"]
            .get("f:serviceName")
            .is_none()
    );
    assert_eq!(entries(&edited).len(), 1);
}

#[test]
fn a_port_without_protocol_matches_the_defaulted_live_port() {
    // The live object is defaulted (protocol: TCP); the applied config omits it. The schema
    // default completes the list-map key, so the port is updated, not duplicated.
    let mut live = config(1, "nginx");
    live["spec"]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 80, "protocol": "TCP"}]);
    record_update(
        None,
        &mut live,
        "kubectl-create",
        "apps/v1",
        T1,
        &schemas(),
        STS,
    );
    let mut applied = config(1, "nginx");
    applied["spec"]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 80, "name": "web"}]);
    let out = apply(Some(&live), &applied, "kubectl", false, T2).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "name": "web", "protocol": "TCP"}])
    );
    let port = &fields_of(&out, "kubectl")["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]
        ["f:ports"];
    assert_eq!(
        port,
        &json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}}})
    );
}
