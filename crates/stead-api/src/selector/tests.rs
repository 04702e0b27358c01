//! Selector behaviour tests, hand-checked against upstream `labels` / `fields` rules.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as ApiSel, LabelSelectorRequirement,
};
use serde_json::{Map, Value, json};

use super::*;
use crate::resource::find;

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn sel(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn equality_operators_match_exact_values() {
    let l = labels(json!({"app": "web", "tier": "db"}));
    assert!(sel("app=web").matches(&l));
    assert!(sel("app==web").matches(&l));
    assert!(!sel("app=api").matches(&l));
    assert!(sel("app!=api").matches(&l));
    assert!(!sel("app!=web").matches(&l));
    // != matches objects without the key.
    assert!(sel("missing!=x").matches(&l));
}

#[test]
fn set_operators_and_existence() {
    let l = labels(json!({"app": "web", "env": "prod"}));
    assert!(sel("app in (api,web)").matches(&l));
    assert!(!sel("app in (api)").matches(&l));
    assert!(sel("app notin (api)").matches(&l));
    assert!(!sel("app notin (web, api)").matches(&l));
    assert!(sel("nope notin (x)").matches(&l));
    assert!(sel("env").matches(&l));
    assert!(!sel("nope").matches(&l));
    assert!(sel("!nope").matches(&l));
    assert!(!sel("!env").matches(&l));
}

#[test]
fn greater_and_less_than_compare_integers() {
    let l = labels(json!({"rank": "5", "name": "x"}));
    assert!(sel("rank>4").matches(&l));
    assert!(!sel("rank>5").matches(&l));
    assert!(sel("rank<6").matches(&l));
    assert!(!sel("name>1").matches(&l));
    assert!(!sel("missing<9").matches(&l));
}

#[test]
fn comma_means_and_and_whitespace_is_tolerated() {
    let l = labels(json!({"app": "web", "tier": "db"}));
    assert!(sel("  app = web ,  tier in ( db , cache ) ").matches(&l));
    assert!(!sel("app=web,tier=cache").matches(&l));
}

#[test]
fn empty_selector_matches_everything_and_empty_value_matches_empty_label() {
    assert!(sel("").is_empty());
    assert!(sel("").matches(&Map::new()));
    assert!(sel("a=").matches(&labels(json!({"a": ""}))));
    assert!(!sel("a=").matches(&Map::new()));
    assert!(sel("a in ()").matches(&labels(json!({"a": ""}))));
}

#[test]
fn display_is_sorted_by_key_with_sorted_set_values() {
    // Ref: labels.Selector.String()
    assert_eq!(sel("tier,app in (b,a)").to_string(), "app in (a,b),tier");
    assert_eq!(
        sel("b!=2, a==1, !c, d notin (z), e>3, f<4").to_string(),
        "a==1,b!=2,!c,d notin (z),e>3,f<4"
    );
    assert_eq!(sel("app=web").to_string(), "app=web");
}

#[test]
fn parse_errors_use_upstream_texts() {
    // Ref: labels.Parse error strings
    let err = |s: &str| LabelSelector::parse(s).unwrap_err();
    assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
    assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
    assert_eq!(
        err(",a"),
        "found ',', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        err("a in b"),
        "unable to parse requirement: found 'b' expected: '('"
    );
    assert_eq!(
        err("a in (b"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        err("a b"),
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        err("a=("),
        "unable to parse requirement: found '(', expected: identifier"
    );
    assert_eq!(
        err("!=a"),
        "found '!=', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        err("a>x"),
        "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert!(err("-a=b").starts_with(
        "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of"
    ));
    assert!(err("a=b$").starts_with(
        "unable to parse requirement: values[0][a]: Invalid value: \"b$\": a valid label must be"
    ));
}

#[test]
fn from_label_selector_converts_match_labels_and_expressions() {
    let api = ApiSel {
        match_labels: Some([("app".to_string(), "web".to_string())].into()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["b".into(), "a".into()]),
            },
            LabelSelectorRequirement {
                key: "canary".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    let s = LabelSelector::from_label_selector(&api).unwrap();
    assert_eq!(s.to_string(), "app=web,!canary,tier in (a,b)");
    assert!(s.matches(&labels(json!({"app": "web", "tier": "a"}))));
    assert!(!s.matches(&labels(json!({"app": "web", "tier": "a", "canary": "1"}))));
    assert!(
        LabelSelector::from_label_selector(&ApiSel::default())
            .unwrap()
            .is_empty()
    );
    assert!(!LabelSelector::nothing().matches(&Map::new()));
}

#[test]
fn from_label_selector_rejects_bad_operators_and_values() {
    // Ref: metav1.LabelSelectorAsSelector
    let bad_op = ApiSel {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "a".into(),
            operator: "Gt".into(),
            values: None,
        }]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_label_selector(&bad_op).unwrap_err(),
        "\"Gt\" is not a valid label selector operator"
    );
    let empty_in = ApiSel {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "a".into(),
            operator: "In".into(),
            values: Some(vec![]),
        }]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_label_selector(&empty_in).unwrap_err(),
        "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
    );
    let exists_with_values = ApiSel {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "a b".into(),
            operator: "Exists".into(),
            values: Some(vec!["x".into()]),
        }]),
        ..Default::default()
    };
    let e = LabelSelector::from_label_selector(&exists_with_values).unwrap_err();
    assert!(
        e.starts_with("[key: Invalid value: \"a b\": name part must consist"),
        "{e}"
    );
    assert!(e.ends_with(", values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist]"), "{e}");
}

#[test]
fn field_selector_parses_describe_queries_and_empty_values() {
    let events = find("", "v1", "events").unwrap();
    let fs = FieldSelector::parse(
        "involvedObject.uid=u1,involvedObject.name=web,involvedObject.namespace=,involvedObject.kind=PersistentVolume",
    )
    .unwrap();
    fs.validate_for(events).unwrap();
    let ev = json!({"metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "PersistentVolume", "name": "web", "uid": "u1"}});
    assert!(fs.matches(events, &ev));
    let other = json!({"involvedObject": {"kind": "PersistentVolume", "name": "web", "uid": "u2"}});
    assert!(!fs.matches(events, &other));
}

#[test]
fn field_selector_negation_and_node_describe_query() {
    let pods = find("", "v1", "pods").unwrap();
    let fs =
        FieldSelector::parse("spec.nodeName=node1,status.phase!=Succeeded,status.phase!=Failed")
            .unwrap();
    fs.validate_for(pods).unwrap();
    let running = json!({"spec": {"nodeName": "node1"}, "status": {"phase": "Running"}});
    let done = json!({"spec": {"nodeName": "node1"}, "status": {"phase": "Succeeded"}});
    let elsewhere = json!({"spec": {"nodeName": "node2"}, "status": {"phase": "Running"}});
    assert!(fs.matches(pods, &running));
    assert!(!fs.matches(pods, &done));
    assert!(!fs.matches(pods, &elsewhere));
    assert!(
        FieldSelector::parse("spec.hostNetwork=false")
            .unwrap()
            .matches(pods, &running)
    );
    assert!(
        FieldSelector::parse("spec.host==node1")
            .unwrap()
            .matches(pods, &running)
    );
}

#[test]
fn field_selector_escapes_round_trip() {
    // Ref: fields.UnescapeValue / EscapeValue
    let fs = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").unwrap();
    assert_eq!(fs.terms()[0].value, r"a,b=c\d");
    assert_eq!(fs.to_string(), r"metadata.name=a\,b\=c\\d");
    assert_eq!(
        FieldSelector::parse(r"a=b\x").unwrap_err(),
        r"invalid field selector: invalid escape sequence: \x"
    );
    assert_eq!(
        FieldSelector::parse(r"a=b\").unwrap_err(),
        r"invalid field selector: invalid escape sequence: \"
    );
    assert_eq!(
        FieldSelector::parse("a=b=c").unwrap_err(),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        FieldSelector::parse("abc").unwrap_err(),
        "invalid selector: 'abc'; can't understand 'abc'"
    );
    assert!(FieldSelector::parse("").unwrap().is_empty());
    assert!(FieldSelector::parse(",").unwrap().is_empty());
}

#[test]
fn unsupported_fields_are_rejected_per_kind() {
    // Ref: pkg/apis/core/v1/conversion.go and runtime.DefaultMetaV1FieldSelectorConversion
    let check = |plural: &str, group: &str, field: &str| {
        let rt = find(group, "v1", plural).unwrap();
        FieldSelector::parse(&format!("{field}=x"))
            .unwrap()
            .validate_for(rt)
    };
    assert_eq!(
        check("pods", "", "spec.foo").unwrap_err(),
        "field label not supported: spec.foo"
    );
    assert!(check("pods", "", "status.podIPs").is_ok());
    assert!(check("nodes", "", "spec.unschedulable").is_ok());
    assert_eq!(
        check("nodes", "", "metadata.namespace").unwrap_err(),
        "field label not supported: metadata.namespace"
    );
    assert!(check("secrets", "", "type").is_ok());
    assert!(check("namespaces", "", "status.phase").is_ok());
    assert!(check("services", "", "spec.clusterIP").is_ok());
    assert!(check("events", "events.k8s.io", "regarding.name").is_ok());
    assert_eq!(
        check("events", "events.k8s.io", "involvedObject.name").unwrap_err(),
        "field label not supported: involvedObject.name"
    );
    assert!(check("statefulsets", "apps", "metadata.name").is_ok());
    assert_eq!(
        check("statefulsets", "apps", "status.replicas").unwrap_err(),
        "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert!(check("persistentvolumes", "", "metadata.namespace").is_ok());
}

#[test]
fn event_source_falls_back_to_the_reporting_component() {
    let core = find("", "v1", "events").unwrap();
    let ev = json!({"source": {}, "reportingComponent": "kubelet"});
    assert!(
        FieldSelector::parse("source=kubelet")
            .unwrap()
            .matches(core, &ev)
    );
    let v1 = find("events.k8s.io", "v1", "events").unwrap();
    let ev = json!({"regarding": {"name": "web"}, "reportingController": "stead"});
    assert!(
        FieldSelector::parse("regarding.name=web,reportingController=stead,source=stead")
            .unwrap()
            .matches(v1, &ev)
    );
}

#[test]
fn cluster_scoped_objects_match_an_empty_namespace() {
    let pvs = find("", "v1", "persistentvolumes").unwrap();
    let pv = json!({"metadata": {"name": "pv1"}});
    assert!(
        FieldSelector::parse("metadata.name=pv1,metadata.namespace=")
            .unwrap()
            .matches(pvs, &pv)
    );
}
