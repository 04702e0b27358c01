//! Hand-checked strategic merge patch cases, one per merge key and directive, on a realistic
//! StatefulSet; then property tests.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::test_schemas::{STS, schemas, web};
use super::{PatchError, json_merge_patch, strategic_merge_patch};

fn smp(original: &Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge_patch(original, &patch, &schemas(), STS)
}

fn pod_spec(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]
}

fn nginx(v: &Value) -> &Value {
    &pod_spec(v)["containers"][0]
}

#[test]
fn containers_merge_by_name_and_an_image_update_keeps_everything_else() {
    let out = smp(&web(), json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}})).unwrap();
    let mut want = web();
    want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    assert_eq!(out, want);
}

#[test]
fn a_new_container_without_set_element_order_goes_first() {
    // Ref: upstream mergeSortedSlice — an item unknown to the live list wins every comparison, so
    // without `$setElementOrder` new items land before server-only ones (kubectl always sends the
    // directive, see set_element_order_* tests).
    let out = smp(&web(), json!({"spec": {"template": {"spec": {"containers": [{"name": "log", "image": "fluent"}]}}}})).unwrap();
    let names: Vec<&str> = pod_spec(&out)["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["log", "nginx", "sidecar"]);
    assert_eq!(
        pod_spec(&out)["containers"][0],
        json!({"name": "log", "image": "fluent"})
    );
}

#[test]
fn patch_delete_as_a_list_element_removes_the_container_with_that_key() {
    let out = smp(&web(), json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}})).unwrap();
    assert_eq!(pod_spec(&out)["containers"].as_array().unwrap().len(), 1);
    assert_eq!(nginx(&out)["name"], "nginx");
}

#[test]
fn ports_merge_by_container_port() {
    let out = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "ports": [
            {"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}]}]}}}}),
    )
    .unwrap();
    assert_eq!(
        nginx(&out)["ports"],
        json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443, "name": "https"}])
    );
}

#[test]
fn env_merges_by_name() {
    let out = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}}}}),
    )
    .unwrap();
    assert_eq!(
        nginx(&out)["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
    );
}

#[test]
fn volume_mounts_merge_by_mount_path() {
    let out = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "volumeMounts": [
            {"mountPath": "/usr/share/nginx/html", "readOnly": true}, {"name": "cache", "mountPath": "/cache"}]}]}}}}),
    )
    .unwrap();
    assert_eq!(
        nginx(&out)["volumeMounts"],
        json!([{"name": "www", "mountPath": "/usr/share/nginx/html", "readOnly": true}, {"name": "cache", "mountPath": "/cache"}])
    );
}

#[test]
fn retain_keys_on_a_volume_drops_the_old_source_when_switching_to_host_path() {
    // Ref: upstream strategicpatch TestStrategicMergePatch retainKeys cases
    let out = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "cache", "hostPath": {"path": "/var/cache"}, "$retainKeys": ["hostPath", "name"]}]}}}}),
    )
    .unwrap();
    assert_eq!(
        pod_spec(&out)["volumes"],
        json!([{"name": "cache", "hostPath": {"path": "/var/cache"}}])
    );
}

#[test]
fn a_patched_key_missing_from_retain_keys_is_a_bad_request() {
    let err = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "cache", "hostPath": {"path": "/x"}, "$retainKeys": ["name"]}]}}}}),
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BadPatchFormatForRetainKeys);
    assert_eq!(
        err.to_api_error("apps", "statefulsets", "StatefulSet", "web")
            .code,
        400
    );
}

#[test]
fn owner_references_merge_by_uid() {
    let out = smp(
        &web(),
        json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "o-1", "controller": true},
            {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "o-2"}]}}),
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "o-1", "controller": true},
               {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "o-2"}])
    );
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list_removes() {
    let out = smp(
        &web(),
        json!({"metadata": {"finalizers": ["b.example/two", "c.example/three"]}}),
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["a.example/one", "b.example/two", "c.example/three"])
    );

    let out = smp(
        &web(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/one"]}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b.example/two"]));
}

#[test]
fn set_element_order_reorders_containers_as_kubectl_apply_sends_it() {
    // The body kubectl apply/edit sends (capture apply2): image change plus the full order.
    let out = smp(
        &web(),
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
            "containers": [{"image": "nginx:1.26", "name": "nginx"}]}}}}),
    )
    .unwrap();
    let containers = pod_spec(&out)["containers"].as_array().unwrap();
    assert_eq!(
        containers[0],
        json!({"name": "sidecar", "image": "busybox:1.36"})
    );
    assert_eq!(containers[1]["image"], "nginx:1.26");
    assert_eq!(containers[1]["ports"], nginx(&web())["ports"]);
}

#[test]
fn set_element_order_places_a_new_container_where_kubectl_lists_it() {
    let out = smp(
        &web(),
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}, {"name": "log"}],
            "containers": [{"image": "fluent", "name": "log"}]}}}}),
    )
    .unwrap();
    let names: Vec<&str> = pod_spec(&out)["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["nginx", "sidecar", "log"]);
}

#[test]
fn set_element_order_with_the_current_order_is_a_plain_merge() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
        "containers": [{"image": "nginx:1.26", "name": "nginx"}]}}}});
    let out = smp(&web(), patch).unwrap();
    let mut want = web();
    want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    assert_eq!(out, want);
}

#[test]
fn set_element_order_for_an_undeclared_field_names_the_struct() {
    // Ref: forked encoding/json LookupPatchMetadataForStruct error
    let err = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"$setElementOrder/sidecars": [{"name": "x"}]}}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::Strategic(
            "unable to find api field in struct PodSpec for the json field \"sidecars\"".into()
        )
    );
}

#[test]
fn patch_replace_on_the_pod_template_is_what_rollout_undo_sends() {
    // kubectl rollout undo PATCHes ControllerRevision.data verbatim (kubectl-protocol.md surprise 13).
    let old_template = json!({
        "metadata": {"labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.24", "ports": [{"containerPort": 80, "name": "web"}]}],
                 "terminationGracePeriodSeconds": 10}
    });
    let mut patch_template = old_template.clone();
    patch_template["$patch"] = json!("replace");
    let out = smp(&web(), json!({"spec": {"template": patch_template}})).unwrap();
    assert_eq!(out["spec"]["template"], old_template);
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(
        out["spec"]["volumeClaimTemplates"],
        web()["spec"]["volumeClaimTemplates"]
    );
}

#[test]
fn patch_replace_as_a_list_element_replaces_the_list() {
    let out = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}),
    )
    .unwrap();
    assert_eq!(
        pod_spec(&out)["containers"],
        json!([{"name": "only", "image": "x"}])
    );
}

#[test]
fn patch_delete_on_a_map_empties_it() {
    // Ref: upstream handleDirectiveInMergeMap returns an empty map for "$patch: delete"
    let out = smp(
        &web(),
        json!({"spec": {"updateStrategy": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["updateStrategy"], json!({}));
}

#[test]
fn null_deletes_a_key() {
    let out = smp(
        &web(),
        json!({"metadata": {"labels": {"app": null}}, "spec": {"serviceName": null}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({}));
    assert!(out["spec"].get("serviceName").is_none());
}

#[test]
fn lists_without_a_strategy_are_replaced() {
    let out = smp(
        &web(),
        json!({"spec": {
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
            "template": {"spec": {
                "tolerations": [{"key": "b", "operator": "Exists"}],
                "containers": [{"name": "nginx", "args": ["-v"]}]}}}}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["volumeClaimTemplates"],
        json!([{"metadata": {"name": "data"}}])
    );
    assert_eq!(
        pod_spec(&out)["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    assert_eq!(nginx(&out)["args"], json!(["-v"]));
}

#[test]
fn an_unknown_patch_directive_fails_with_upstreams_message() {
    // Ref: mergepatch.ErrBadPatchType
    let err = smp(
        &web(),
        json!({"spec": {"template": {"$patch": "frobnicate", "x": 1}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::Strategic(
            "unknown patch type: frobnicate in map: map[$patch:frobnicate x:1]".into()
        )
    );
    let err = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::Strategic("merging lists cannot yet be specified in the patch".into())
    );
}

#[test]
fn a_merge_list_element_without_its_merge_key_is_an_error() {
    let err = smp(
        &web(),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PatchError::Strategic("map: map[image:x] does not contain declared merge key: name".into())
    );
}

#[test]
fn directives_in_values_new_to_the_original_are_not_stored() {
    let mut orig = web();
    orig["spec"]["template"]["spec"]["containers"][1]["env"] = Value::Null;
    let orig = strategic_merge_patch(&orig, &json!({}), &schemas(), STS).unwrap();
    let out = smp(
        &orig,
        json!({"spec": {"template": {"spec": {"initContainers": [{"name": "init", "image": "i", "$patch": "delete"}, {"name": "i2", "image": "i"}],
            "$setElementOrder/initContainers": [{"name": "i2"}],
            "nodeSelector": {"$patch": "replace", "disk": "ssd", "zone": null}}}}}),
    )
    .unwrap();
    assert_eq!(
        pod_spec(&out)["initContainers"],
        json!([{"name": "i2", "image": "i"}])
    );
    assert_eq!(pod_spec(&out)["nodeSelector"], json!({"disk": "ssd"}));
}

#[test]
fn the_whole_object_can_be_replaced_at_the_root() {
    let out = smp(&web(), json!({"$patch": "replace", "kind": "StatefulSet"})).unwrap();
    assert_eq!(out, json!({"kind": "StatefulSet"}));
}

#[test]
fn a_patch_that_is_not_an_object_is_a_bad_request() {
    let err = smp(&web(), json!([1])).unwrap_err();
    assert!(matches!(err, PatchError::BadRequest(_)));
}

#[test]
fn without_a_schema_maps_merge_and_lists_are_replaced() {
    let orig = json!({"spec": {"a": 1, "list": [{"name": "x", "v": 1}], "m": {"k": "v"}}});
    let out = strategic_merge_patch(
        &orig,
        &json!({"spec": {"list": [{"name": "y"}], "m": {"k2": "v2"}}}),
        &Map::new(),
        "nope",
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"spec": {"a": 1, "list": [{"name": "y"}], "m": {"k": "v", "k2": "v2"}}})
    );
}

// ---- property tests ----

/// Random JSON trees without directive keys (keys from a small alphabet so merges collide).
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(|n| json!(n)),
        "[a-c]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d]", arb_json(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// Random containers lists: names from a small set so keys collide, maybe duplicated in patches.
fn arb_containers() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(("[a-e]", "[x-z]{1,2}"), 0..5).prop_map(|v| {
        v.into_iter()
            .map(|(n, i)| json!({"name": n, "image": i}))
            .collect()
    })
}

fn with_containers(containers: Vec<Value>) -> Value {
    json!({"spec": {"template": {"spec": {"containers": containers}}}})
}

fn dedup_by_name(list: Vec<Value>) -> Vec<Value> {
    let mut seen = Vec::new();
    list.into_iter()
        .filter(|c| {
            let n = c["name"].clone();
            let fresh = !seen.contains(&n);
            seen.push(n);
            fresh
        })
        .collect()
}

fn has_null_in_array_object(v: &Value, in_array: bool) -> bool {
    match v {
        Value::Array(a) => a.iter().any(|x| has_null_in_array_object(x, true)),
        Value::Object(m) => m
            .values()
            .any(|x| (in_array && x.is_null()) || has_null_in_array_object(x, in_array)),
        _ => false,
    }
}

proptest! {
    #[test]
    fn an_empty_patch_is_identity(orig in arb_object()) {
        prop_assert_eq!(strategic_merge_patch(&orig, &json!({}), &schemas(), STS).unwrap(), orig.clone());
        prop_assert_eq!(strategic_merge_patch(&orig, &json!({}), &Map::new(), "x").unwrap(), orig);
    }

    #[test]
    fn without_a_schema_smp_equals_json_merge_patch(orig in arb_object(), patch in arb_object()) {
        // RFC 7386 copies arrays verbatim; SMP also drops null map values inside them.
        prop_assume!(!has_null_in_array_object(&patch, false));
        let smp = strategic_merge_patch(&orig, &patch, &Map::new(), "x").unwrap();
        prop_assert_eq!(smp, json_merge_patch(&orig, &patch).unwrap());
    }

    #[test]
    fn merging_by_key_never_duplicates_keys(orig in arb_containers(), patch in arb_containers()) {
        let orig = with_containers(dedup_by_name(orig));
        let out = smp(&orig, with_containers(patch.clone())).unwrap();
        let names: Vec<&Value> = pod_spec(&out)["containers"].as_array().unwrap().iter().map(|c| &c["name"]).collect();
        for (i, n) in names.iter().enumerate() {
            prop_assert!(!names[i + 1..].contains(n), "duplicate {n} in {names:?}");
        }
        for p in &patch {
            prop_assert!(names.contains(&&p["name"]));
        }
    }

    #[test]
    fn patch_replace_yields_the_patch_minus_directives(orig in arb_object(), body in arb_object()) {
        let mut patch = body.clone();
        patch["$patch"] = json!("replace");
        let out = strategic_merge_patch(&json!({"spec": {"template": orig}}), &json!({"spec": {"template": patch}}), &schemas(), STS).unwrap();
        let want = super::strategic::strip_directives(&body).unwrap();
        prop_assert_eq!(&out["spec"]["template"], &want);
    }

    #[test]
    fn applying_the_same_patch_twice_is_idempotent(orig in arb_containers(), patch in arb_containers(), fin in prop::collection::vec("[a-c]", 0..3)) {
        let orig = with_containers(dedup_by_name(orig));
        let mut patch = with_containers(dedup_by_name(patch));
        let mut fin = fin;
        fin.dedup();
        fin.sort();
        fin.dedup();
        patch["metadata"] = json!({"finalizers": fin});
        let once = smp(&orig, patch.clone()).unwrap();
        let twice = smp(&once, patch).unwrap();
        prop_assert_eq!(once, twice);
    }
}
