use k8s_openapi::ByteString;
use serde_json::json;

use super::*;

fn pod(containers: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web-0", "namespace": "ns", "uid": "u1",
                     "labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "b"}},
        "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": containers},
    }))
    .unwrap()
}

fn refs() -> Refs {
    let mut r = Refs::default();
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "cfg"}, "data": {"mode": "fast", "level": "3"}}),
    )
    .unwrap();
    r.config_maps.insert("cfg".into(), cm);
    let s = Secret {
        data: Some([("password".to_string(), ByteString(b"s3cret".to_vec()))].into()),
        ..Secret::default()
    };
    r.secrets.insert("creds".into(), s);
    r
}

fn facts() -> PodFacts {
    PodFacts {
        pod_ip: Some("10.42.0.3".into()),
        host_ip: "127.0.0.1".into(),
        node_name: "n1".into(),
    }
}

fn env_of(c: serde_json::Value) -> Result<Vec<(String, String)>, ConfigError> {
    let p = pod(json!([c]));
    let c = p.spec.as_ref().unwrap().containers[0].clone();
    resolve_env(&p, &c, &refs(), &facts())
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// Ref: third_party/forked/golang/expansion/expand_test.go
#[test]
fn expansion_follows_the_upstream_rules() {
    let v = vars(&[("A", "x"), ("EMPTY", "")]);
    assert_eq!(expand("$(A)-$(A)", &v), "x-x");
    assert_eq!(expand("$(UNKNOWN)", &v), "$(UNKNOWN)");
    assert_eq!(expand("$$(A)", &v), "$(A)");
    assert_eq!(expand("$$$(A)", &v), "$x");
    assert_eq!(expand("a$b", &v), "a$b");
    assert_eq!(expand("$(A", &v), "$(A");
    assert_eq!(expand("[$(EMPTY)]", &v), "[]");
    assert_eq!(expand("é$(A)é", &v), "éxé");
}

#[test]
fn env_values_expand_earlier_variables_only() {
    let e = env_of(json!({"name": "c", "env": [
        {"name": "B", "value": "$(A)"},
        {"name": "A", "value": "one"},
        {"name": "C", "value": "$(A)-two"},
    ]}))
    .unwrap();
    assert_eq!(
        e,
        [
            ("B".into(), "$(A)".into()),
            ("A".into(), "one".into()),
            ("C".into(), "one-two".into())
        ]
    );
}

#[test]
fn value_from_config_maps_secrets_and_fields() {
    let e = env_of(json!({"name": "c", "env": [
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
    ]}))
    .unwrap();
    let m: HashMap<String, String> = e.into_iter().collect();
    assert_eq!(m["MODE"], "fast");
    assert_eq!(m["PW"], "s3cret");
    assert_eq!(
        (m["NAME"].as_str(), m["NS"].as_str(), m["UID"].as_str()),
        ("web-0", "ns", "u1")
    );
    assert_eq!(m["APP"], "web");
    assert_eq!(m["LABELS"], "app=\"web\"\ntier=\"fe\"");
    assert_eq!((m["NODE"].as_str(), m["SA"].as_str()), ("n1", "sa"));
    assert_eq!(
        (m["IP"].as_str(), m["HOST"].as_str()),
        ("10.42.0.3", "127.0.0.1")
    );
}

#[test]
fn a_missing_key_is_a_config_error_unless_optional() {
    let err = env_of(json!({"name": "c", "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}]}))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "couldn't find key nope in ConfigMap ns/cfg"
    );
    let err = env_of(json!({"name": "c", "env": [
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}}]}))
    .unwrap_err();
    assert_eq!(err.to_string(), "secret \"missing\" not found");
    let ok = env_of(json!({"name": "c", "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": true}}},
        {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k", "optional": true}}}]}))
    .unwrap();
    assert!(ok.is_empty());
}

#[test]
fn env_from_adds_prefixed_keys_and_env_overrides_them() {
    let e = env_of(json!({"name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}}],
        "env": [{"name": "CFG_mode", "value": "slow"}]}))
    .unwrap();
    let m: HashMap<String, String> = e.into_iter().collect();
    assert_eq!(m["CFG_mode"], "slow");
    assert_eq!(m["CFG_level"], "3");
    assert_eq!(m["password"], "s3cret");
    let err =
        env_of(json!({"name": "c", "envFrom": [{"configMapRef": {"name": "nope"}}]})).unwrap_err();
    assert_eq!(err.to_string(), "configmap \"nope\" not found");
}

#[test]
fn resource_field_refs_divide_and_round_up() {
    let e = env_of(json!({"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}, "env": [
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
    ]}))
    .unwrap();
    let m: HashMap<String, String> = e.into_iter().collect();
    assert_eq!(
        (m["CPU"].as_str(), m["CPU_M"].as_str(), m["MEM"].as_str()),
        ("1", "500", "128")
    );
}

// Ref: kubecontainer.ExpandContainerCommandAndArgs + the documented command/args table
#[test]
fn command_and_args_combine_with_the_image_as_upstream() {
    let image = ImageConfig {
        entrypoint: vec!["/ep".into()],
        cmd: vec!["--cmd".into()],
        ..ImageConfig::default()
    };
    let env = vec![("X".to_string(), "1".to_string())];
    let c = |v: serde_json::Value| -> Container { serde_json::from_value(v).unwrap() };
    assert_eq!(
        command(&c(json!({"name": "c"})), &image, &env),
        ["/ep", "--cmd"]
    );
    assert_eq!(
        command(
            &c(json!({"name": "c", "command": ["/bin/x"]})),
            &image,
            &env
        ),
        ["/bin/x"]
    );
    assert_eq!(
        command(
            &c(json!({"name": "c", "args": ["-v", "$(X)"]})),
            &image,
            &env
        ),
        ["/ep", "-v", "1"]
    );
    assert_eq!(
        command(
            &c(json!({"name": "c", "command": ["/bin/x", "$(X)"], "args": ["$$(X)"]})),
            &image,
            &env
        ),
        ["/bin/x", "1", "$(X)"]
    );
}

#[test]
fn environment_user_and_working_dir_fall_back_to_the_image() {
    let image = ImageConfig {
        env: vec!["PATH=/bin".into(), "X=image".into()],
        working_dir: Some("/srv".into()),
        user: Some("1000:1000".into()),
        ..ImageConfig::default()
    };
    let env = vec![
        ("X".to_string(), "pod".to_string()),
        ("Y".to_string(), "2".to_string()),
    ];
    assert_eq!(environment(&image, &env), ["PATH=/bin", "X=pod", "Y=2"]);
    let p = pod(json!([{"name": "c"}]));
    let c: Container = serde_json::from_value(
        json!({"name": "c", "securityContext": {"runAsUser": 7, "runAsGroup": 8}}),
    )
    .unwrap();
    assert_eq!(user(&p, &c, &image).as_deref(), Some("7:8"));
    let plain: Container = serde_json::from_value(json!({"name": "c"})).unwrap();
    assert_eq!(user(&p, &plain, &image).as_deref(), Some("1000:1000"));
    assert_eq!(working_dir(&plain, &image), "/srv");
    assert_eq!(working_dir(&plain, &ImageConfig::default()), "/");
}

#[test]
fn quantities_parse_to_millis_and_bytes() {
    assert_eq!(parse_millis("500m"), Some(500));
    assert_eq!(parse_millis("1"), Some(1000));
    assert_eq!(parse_millis("1.5"), Some(1500));
    assert_eq!(parse_millis("0.1"), Some(100));
    assert_eq!(parse_millis("250000u"), Some(250));
    assert_eq!(
        parse_millis("1n"),
        Some(1),
        "a fraction of a milli rounds up"
    );
    assert_eq!(parse_millis("-1"), None);
    assert_eq!(parse_bytes("128Mi"), Some(134_217_728));
    assert_eq!(parse_bytes("1G"), Some(1_000_000_000));
    assert_eq!(parse_bytes("1e3"), Some(1000));
    assert_eq!(parse_bytes("12Q"), None);
    let c: Container = serde_json::from_value(json!({"name": "c", "resources": {
        "limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "250m"}}}))
    .unwrap();
    assert_eq!(
        limits(&c),
        Limits {
            cpu_millis: Some(2000),
            cpu_request_millis: Some(250),
            memory_bytes: Some(1 << 30)
        }
    );
}
