use std::os::unix::fs::PermissionsExt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret};
use serde_json::json;

use super::*;

fn pod(volumes: serde_json::Value, mounts: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web-0", "namespace": "ns", "uid": "u1", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "volumeMounts": mounts}], "volumes": volumes},
    }))
    .unwrap()
}

fn refs() -> Refs {
    let mut r = Refs::default();
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "cfg"}, "data": {"a.conf": "A", "b.conf": "B"}}),
    )
    .unwrap();
    r.config_maps.insert("cfg".into(), cm);
    let s = Secret {
        data: Some([("token".to_string(), ByteString(b"t0k".to_vec()))].into()),
        ..Secret::default()
    };
    r.secrets.insert("creds".into(), s);
    let claim: PersistentVolumeClaim = serde_json::from_value(
        json!({"metadata": {"name": "data-web-0"}, "spec": {"volumeName": "pv-1"}}),
    )
    .unwrap();
    r.claims.insert("data-web-0".into(), claim);
    let pending: PersistentVolumeClaim =
        serde_json::from_value(json!({"metadata": {"name": "pending"}, "spec": {}})).unwrap();
    r.claims.insert("pending".into(), pending);
    let pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "pv-1"},
        "spec": {"hostPath": {"path": "/data/volumes/pv-1"}}}))
    .unwrap();
    r.volumes.insert("pv-1".into(), pv);
    r
}

fn facts() -> PodFacts {
    PodFacts {
        pod_ip: Some("10.42.0.3".into()),
        host_ip: "127.0.0.1".into(),
        node_name: "n1".into(),
    }
}

fn files(s: &Source) -> Vec<(String, String, u32)> {
    match s {
        Source::Files { files, .. } => files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    String::from_utf8_lossy(&f.data).into_owned(),
                    f.mode,
                )
            })
            .collect(),
        other => panic!("not files: {other:?}"),
    }
}

#[test]
fn config_maps_render_every_key_or_the_chosen_items() {
    let p = pod(
        json!([
            {"name": "all", "configMap": {"name": "cfg"}},
            {"name": "some", "configMap": {"name": "cfg", "defaultMode": 0o600,
                "items": [{"key": "b.conf", "path": "conf/b", "mode": 0o400}, {"key": "a.conf", "path": "a"}]}},
        ]),
        json!([]),
    );
    let v = plan(&p, &refs(), &facts(), Path::new("/pods/u1")).unwrap();
    assert_eq!(
        files(&v["all"]),
        [
            ("a.conf".into(), "A".into(), 0o644),
            ("b.conf".into(), "B".into(), 0o644)
        ]
    );
    assert_eq!(
        files(&v["some"]),
        [
            ("conf/b".into(), "B".into(), 0o400),
            ("a".into(), "A".into(), 0o600)
        ]
    );
    assert_eq!(
        v["all"].host_path(),
        Path::new("/pods/u1/volumes/configmap/all")
    );
}

#[test]
fn missing_sources_fail_unless_optional() {
    let p = pod(
        json!([{"name": "x", "configMap": {"name": "nope"}}]),
        json!([]),
    );
    assert_eq!(
        plan(&p, &refs(), &facts(), Path::new("/p"))
            .unwrap_err()
            .to_string(),
        "configmap \"nope\" not found"
    );
    let p = pod(
        json!([{"name": "x", "secret": {"secretName": "creds", "items": [{"key": "k", "path": "k"}]}}]),
        json!([]),
    );
    assert!(
        matches!(plan(&p, &refs(), &facts(), Path::new("/p")), Err(VolumeError::SecretKey(k)) if k == "k")
    );
    let p = pod(
        json!([{"name": "x", "secret": {"secretName": "gone", "optional": true}}]),
        json!([]),
    );
    assert_eq!(
        files(&plan(&p, &refs(), &facts(), Path::new("/p")).unwrap()["x"]),
        []
    );
}

#[test]
fn secrets_downward_api_and_projected_volumes_render_files() {
    let p = pod(
        json!([
            {"name": "s", "secret": {"secretName": "creds"}},
            {"name": "d", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"name": "p", "projected": {"sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "a.conf"}]}},
                {"secret": {"name": "creds"}},
                {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
        ]),
        json!([]),
    );
    let v = plan(&p, &refs(), &facts(), Path::new("/p")).unwrap();
    assert_eq!(files(&v["s"]), [("token".into(), "t0k".into(), 0o644)]);
    assert_eq!(
        files(&v["d"]),
        [
            ("labels".into(), "app=\"web\"".into(), 0o644),
            ("name".into(), "web-0".into(), 0o644)
        ]
    );
    assert_eq!(
        files(&v["p"]),
        [
            ("a.conf".into(), "A".into(), 0o644),
            ("token".into(), "t0k".into(), 0o644),
            ("ns".into(), "ns".into(), 0o644)
        ]
    );
}

#[test]
fn claims_resolve_to_the_bound_volume_path() {
    let p = pod(
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
               {"name": "scratch", "emptyDir": {"medium": "Memory"}},
               {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}}]),
        json!([]),
    );
    let v = plan(&p, &refs(), &facts(), Path::new("/p")).unwrap();
    assert_eq!(
        v["data"],
        Source::Persistent {
            path: "/data/volumes/pv-1".into(),
            read_only: false
        }
    );
    assert_eq!(
        v["scratch"],
        Source::EmptyDir {
            path: "/p/volumes/empty-dir/scratch".into(),
            memory: true
        }
    );
    assert_eq!(
        v["host"],
        Source::HostPath {
            path: "/var/log".into(),
            kind: "Directory".into()
        }
    );
    let unbound = pod(
        json!([{"name": "d", "persistentVolumeClaim": {"claimName": "pending"}}]),
        json!([]),
    );
    assert_eq!(
        plan(&unbound, &refs(), &facts(), Path::new("/p")).unwrap_err(),
        VolumeError::ClaimNotBound("pending".into())
    );
}

#[test]
fn mounts_honour_sub_path_and_read_only() {
    let p = pod(
        json!([{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}]),
        json!([
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "data", "mountPath": "/var/lib/db", "subPath": "db"},
            {"name": "data", "mountPath": "/backup", "readOnly": true},
        ]),
    );
    let v = plan(&p, &refs(), &facts(), Path::new("/p")).unwrap();
    let c = &p.spec.as_ref().unwrap().containers[0];
    let m = mounts(c, &v);
    assert_eq!(
        m,
        [
            Mount {
                host_path: "/p/volumes/configmap/cfg".into(),
                container_path: "/etc/app".into(),
                read_only: true
            },
            Mount {
                host_path: "/data/volumes/pv-1/db".into(),
                container_path: "/var/lib/db".into(),
                read_only: false
            },
            Mount {
                host_path: "/data/volumes/pv-1".into(),
                container_path: "/backup".into(),
                read_only: true
            },
        ]
    );
}

#[test]
fn rendered_files_are_swapped_atomically_through_data() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("cfg");
    let f = |path: &str, data: &str| File {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        mode: 0o640,
    };
    write_atomically(&vol, &[f("a", "1"), f("sub/b", "2")]).unwrap();
    assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "1");
    assert_eq!(std::fs::read_to_string(vol.join("sub/b")).unwrap(), "2");
    assert_eq!(
        std::fs::read_link(vol.join("a")).unwrap(),
        Path::new("..data/a")
    );
    let mode = std::fs::metadata(vol.join("a"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    let first = std::fs::read_link(vol.join("..data")).unwrap();
    write_atomically(&vol, &[f("a", "1"), f("sub/b", "2")]).unwrap();
    assert_eq!(
        std::fs::read_link(vol.join("..data")).unwrap(),
        first,
        "unchanged content is not rewritten"
    );
    write_atomically(&vol, &[f("a", "changed")]).unwrap();
    assert_eq!(std::fs::read_to_string(vol.join("a")).unwrap(), "changed");
    assert!(!vol.join("sub").exists(), "a dropped key disappears");
    assert!(!vol.join(&first).exists(), "the old generation is removed");
}

#[test]
fn host_path_types_are_checked_or_created() {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("made/deep");
    let file = dir.path().join("f/file");
    let v = BTreeMap::from([
        (
            "a".to_string(),
            Source::HostPath {
                path: made.clone(),
                kind: "DirectoryOrCreate".into(),
            },
        ),
        (
            "b".to_string(),
            Source::HostPath {
                path: file.clone(),
                kind: "FileOrCreate".into(),
            },
        ),
        (
            "c".to_string(),
            Source::Persistent {
                path: dir.path().join("pv"),
                read_only: false,
            },
        ),
    ]);
    apply(&v).unwrap();
    assert!(made.is_dir() && file.is_file() && dir.path().join("pv").is_dir());
    let wrong = BTreeMap::from([(
        "x".to_string(),
        Source::HostPath {
            path: file,
            kind: "Directory".into(),
        },
    )]);
    assert!(matches!(
        apply(&wrong),
        Err(VolumeError::HostPathType { .. })
    ));
}
