//! Store-level tests: archive import (OCI layout, docker-save), digest checks, concurrent
//! writers and readers, and pulls from a real `docker-registry` process.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::testing::{self, TestImage, TestRegistry, docker_save, is_root, oci_archive};
use super::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// The merged view of `image`'s layers as overlayfs would show it, checked path by path.
fn check_sample_layers(image: &Image) {
    assert_eq!(image.layers.len(), 2);
    let (base, top) = (&image.layers[0], &image.layers[1]);
    assert_eq!(
        fs::read(base.join("bin/hello")).unwrap(),
        b"#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        fs::read_link(base.join("bin/hi")).unwrap(),
        Path::new("hello")
    );
    assert_eq!(
        fs::metadata(base.join("bin/hello2")).unwrap().ino(),
        fs::metadata(base.join("bin/hello")).unwrap().ino()
    );
    assert_eq!(fs::read(top.join("etc/new")).unwrap(), b"new");
    assert_eq!(
        fs::metadata(top.join("etc/new")).unwrap().mode() & 0o777,
        0o600
    );
    if is_root() {
        assert!(
            fs::symlink_metadata(top.join("etc/old"))
                .unwrap()
                .file_type()
                .is_char_device()
        );
        let mut buf = [0u8; 2];
        let n = rustix::fs::lgetxattr(top.join("var"), "trusted.overlay.opaque", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"y");
        assert_eq!(fs::read(top.join("var/fresh")).unwrap(), b"f");
    }
    assert_eq!(image.config.cmd, ["/bin/hello"]);
    assert_eq!(image.config.working_dir.as_deref(), Some("/data"));
    assert_eq!(image.config.user.as_deref(), Some("1000:1000"));
}

#[tokio::test]
async fn oci_layout_archive_imports_named_images() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::sample(true);
    let archive = write(
        dir.path(),
        "img.tar",
        &oci_archive(&[("redis:5-alpine", &img)]),
    );
    let data = dir.path().join("data");
    let imported = import(&data, &archive).unwrap();
    assert_eq!(
        imported,
        [ImportedImage {
            name: "docker.io/library/redis:5-alpine".into(),
            id: img.config_digest(),
        }]
    );
    let store = ImageStore::open(&data).unwrap();
    let image = store
        .ensure("redis:5-alpine", PullPolicy::Never, &[])
        .await
        .unwrap();
    assert_eq!(image.id, img.config_digest());
    assert_eq!(
        image.repo_digest,
        Some(format!("docker.io/library/redis@{}", img.manifest_digest()))
    );
    check_sample_layers(&image);
    let ls = list(&data).unwrap();
    assert_eq!(ls.len(), 1);
    assert_eq!(ls[0].repository, "docker.io/library/redis");
    assert_eq!(ls[0].tag.as_deref(), Some("5-alpine"));
    // Importing again changes nothing and reuses the layers.
    assert_eq!(import(&data, &archive).unwrap(), imported);
    assert_eq!(list(&data).unwrap(), ls);
    // Removing forgets the name only.
    assert!(remove(&data, "redis:5-alpine").unwrap());
    assert!(!remove(&data, "redis:5-alpine").unwrap());
    assert!(list(&data).unwrap().is_empty());
    assert!(image.layers.iter().all(|l| l.is_dir()));
}

#[test]
fn an_oci_layout_naming_images_by_bare_tag_only_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::sample(false);
    let archive = write(dir.path(), "tag.tar", &oci_archive(&[("latest", &img)]));
    let err = import(&dir.path().join("data"), &archive)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no named image"), "{err}");
}

#[tokio::test]
async fn docker_save_tarball_imports_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::sample(false);
    let other = TestImage::new(
        vec![testing::LayerBuilder::new().file("x", b"x", 0o644).build()],
        false,
        &["/x"],
    );
    let archive = write(
        dir.path(),
        "save.tar",
        &docker_save(&[
            (&["busybox:1.36", "localhost:5000/tools/bb:v1"], &img),
            (&["registry.k8s.io/pause:3.9"], &other),
        ]),
    );
    let data = dir.path().join("data");
    let names: Vec<String> = import(&data, &archive)
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:1.36",
            "localhost:5000/tools/bb:v1",
            "registry.k8s.io/pause:3.9"
        ]
    );
    let store = ImageStore::open(&data).unwrap();
    let image = store
        .ensure("localhost:5000/tools/bb:v1", PullPolicy::IfNotPresent, &[])
        .await
        .unwrap();
    assert_eq!(image.repo_digest, None);
    check_sample_layers(&image);
    let pause = store.get("registry.k8s.io/pause:3.9").unwrap().unwrap();
    assert_eq!(fs::read(pause.layers[0].join("x")).unwrap(), b"x");
}

#[test]
fn gzip_compressed_archives_import() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::sample(false);
    let archive = write(
        dir.path(),
        "save.tar.gz",
        &testing::gzip(&docker_save(&[(&["a:1"], &img)])),
    );
    let imported = import(&dir.path().join("data"), &archive).unwrap();
    assert_eq!(imported[0].name, "docker.io/library/a:1");
}

#[test]
fn multi_platform_index_imports_the_host_platform() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::sample(true);
    let mut foreign = testing::descriptor(oci::OCI_MANIFEST, b"not in the archive");
    foreign.platform = Some(oci::Platform {
        architecture: "no-such-arch".into(),
        os: "linux".into(),
        variant: None,
    });
    let index = testing::index_of(vec![foreign, img.manifest_descriptor()]);
    let mut b = tar::Builder::new(Vec::new());
    testing::add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in img.blobs.iter().chain([&img.config, &img.manifest, &index]) {
        testing::add(
            &mut b,
            &format!("blobs/sha256/{}", &digest::sha256(blob)[7..]),
            blob,
        );
    }
    let mut top = testing::descriptor(oci::OCI_INDEX, &index);
    top.annotations.insert(
        oci::ANNOTATION_CONTAINERD_NAME.into(),
        "docker.io/library/multi:1".into(),
    );
    top.annotations
        .insert(oci::ANNOTATION_REF_NAME.into(), "1".into());
    testing::add(&mut b, "index.json", &testing::index_of(vec![top]));
    let archive = write(dir.path(), "multi.tar", &b.into_inner().unwrap());
    let data = dir.path().join("data");
    let imported = import(&data, &archive).unwrap();
    assert_eq!(imported[0].name, "docker.io/library/multi:1");
    assert_eq!(imported[0].id, img.config_digest());
    let names = Store::open(&data).unwrap().names().unwrap();
    let entry = &names.images["docker.io/library/multi:1"];
    assert_eq!(
        entry.target.as_deref(),
        Some(digest::sha256(&index).as_str())
    );
    assert_eq!(entry.manifest, Some(img.manifest_digest()));
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::sample(true);
    // Swap one layer's bytes for another's under the same name.
    let mut tampered = TestImage::sample(true);
    tampered.blobs[1] = testing::gzip(
        &testing::LayerBuilder::new()
            .file("evil", b"e", 0o644)
            .build(),
    );
    let good_name = digest::sha256(&img.blobs[1]);
    let mut b = tar::Builder::new(Vec::new());
    testing::add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    testing::add(
        &mut b,
        &format!("blobs/sha256/{}", &good_name[7..]),
        &tampered.blobs[1],
    );
    for blob in [&img.blobs[0], &img.config, &img.manifest] {
        testing::add(
            &mut b,
            &format!("blobs/sha256/{}", &digest::sha256(blob)[7..]),
            blob,
        );
    }
    let mut d = testing::descriptor(oci::OCI_MANIFEST, &img.manifest);
    d.annotations.insert(
        oci::ANNOTATION_REF_NAME.into(),
        "docker.io/library/t:1".into(),
    );
    testing::add(&mut b, "index.json", &testing::index_of(vec![d]));
    let archive = write(dir.path(), "bad.tar", &b.into_inner().unwrap());
    let data = dir.path().join("data");
    let err = import(&data, &archive).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let store = Store::open(&data).unwrap();
    assert!(store.names().unwrap().images.is_empty());
    assert!(!store.has_layer(&digest::sha256(&img.layers[1])));
    // The good lower layer may stay (it is content-addressed); no scratch is left.
    assert_eq!(fs::read_dir(data.join("images/tmp")).unwrap().count(), 0);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let img = TestImage::sample(false);
    let mut b = tar::Builder::new(Vec::new());
    testing::add(
        &mut b,
        &format!("{}.json", &img.config_digest()[7..]),
        &img.config,
    );
    testing::add(&mut b, "l0/layer.tar", &img.layers[0]);
    testing::add(&mut b, "l1/layer.tar", &img.layers[0]); // the wrong layer
    testing::add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&serde_json::json!([{
            "Config": format!("{}.json", &img.config_digest()[7..]),
            "RepoTags": ["wrong:1"],
            "Layers": ["l0/layer.tar", "l1/layer.tar"],
        }]))
        .unwrap(),
    );
    let archive = write(dir.path(), "bad.tar", &b.into_inner().unwrap());
    let data = dir.path().join("data");
    let err = import(&data, &archive).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(list(&data).unwrap().is_empty());
}

#[test]
fn files_that_are_not_image_archives_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let junk = write(dir.path(), "junk", b"hello, not a tar at all");
    assert!(import(&data, &junk).is_err());
    let mut b = tar::Builder::new(Vec::new());
    testing::add(&mut b, "README", b"hi");
    let other = write(dir.path(), "other.tar", &b.into_inner().unwrap());
    let err = import(&data, &other).unwrap_err().to_string();
    assert!(err.contains("neither an OCI image layout"), "{err}");
    assert!(import(&data, &dir.path().join("missing")).is_err());
}

#[test]
fn imports_and_reads_run_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let archives: Vec<PathBuf> = (0..6)
        .map(|i| {
            let img = TestImage::new(
                vec![
                    testing::LayerBuilder::new()
                        .file(&format!("f{i}"), format!("{i}").as_bytes(), 0o644)
                        .build(),
                ],
                i % 2 == 0,
                &["/f"],
            );
            let name = format!("img{i}:v1");
            write(
                dir.path(),
                &format!("{i}.tar"),
                &oci_archive(&[(name.as_str(), &img)]),
            )
        })
        .collect();
    std::thread::scope(|s| {
        // Two importers (like two `stead image import`s) and a reader (like `stead image ls`
        // or the agent) on one store.
        let (a, b) = archives.split_at(3);
        for part in [a, b] {
            let data = &data;
            s.spawn(move || {
                for archive in part {
                    import(data, archive).unwrap();
                }
            });
        }
        let data = &data;
        s.spawn(move || {
            for _ in 0..200 {
                let seen = list(data).unwrap();
                let store = Store::open(data).unwrap();
                for img in &seen {
                    let r = Reference::parse(&img.name).unwrap();
                    let image = lookup(&store, &r)
                        .unwrap()
                        .expect("listed images are complete");
                    assert!(image.layers.iter().all(|l| l.is_dir()));
                }
            }
        });
    });
    assert_eq!(list(&data).unwrap().len(), 6);
}

#[tokio::test]
async fn never_policy_and_bad_names_do_not_pull() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    assert_eq!(
        store.ensure("busybox", PullPolicy::Never, &[]).await,
        Err(ImageError::NeverPull("busybox".into()))
    );
    assert_eq!(
        store.ensure("Busy:Box", PullPolicy::Always, &[]).await,
        Err(ImageError::InvalidName("Busy:Box".into()))
    );
}

#[test]
fn sizes_read_like_crictl() {
    assert_eq!(human_size(0), "0B");
    assert_eq!(human_size(999), "999B");
    assert_eq!(human_size(1500), "1.5kB");
    assert_eq!(human_size(7_150_000), "7.15MB");
    assert_eq!(human_size(116_400_000), "116MB");
    assert_eq!(human_size(2_000_000_000), "2GB");
}

// Pulls from a real registry process.

async fn pull_store(reg: &TestRegistry, data: &Path) -> ImageStore {
    let options = RegistryOptions {
        extra_roots: reg.ca.iter().cloned().collect(),
        insecure: vec![],
    };
    ImageStore::open_with(data, &options).unwrap()
}

#[tokio::test]
async fn pull_from_a_registry_over_http_unpacks_the_image() {
    let Some(reg) = TestRegistry::start(false, None).await else {
        return;
    };
    let img = TestImage::sample(true);
    reg.push("team/app", "v1", &img).await;
    let dir = tempfile::tempdir().unwrap();
    let store = pull_store(&reg, dir.path()).await;
    let reference = format!("{}/team/app:v1", reg.host);
    let image = store
        .ensure(&reference, PullPolicy::IfNotPresent, &[])
        .await
        .unwrap();
    assert_eq!(image.id, img.config_digest());
    assert_eq!(
        image.repo_digest,
        Some(format!("{}/team/app@{}", reg.host, img.manifest_digest()))
    );
    check_sample_layers(&image);
    // Present now: IfNotPresent does not ask the registry again, Always does.
    store
        .ensure(&reference, PullPolicy::IfNotPresent, &[])
        .await
        .unwrap();
    assert_eq!(reg.manifest_gets("team/app", "v1"), 1);
    store
        .ensure(&reference, PullPolicy::Always, &[])
        .await
        .unwrap();
    assert_eq!(reg.manifest_gets("team/app", "v1"), 2);
    // By digest: already present from the pull by tag, and pullable.
    let pinned = format!("{}/team/app@{}", reg.host, img.manifest_digest());
    let present = store.ensure(&pinned, PullPolicy::Never, &[]).await.unwrap();
    assert_eq!(present.id, image.id);
    assert_eq!(present.repo_digest, image.repo_digest);
    let other_repo = format!("{}/other/app@{}", reg.host, img.manifest_digest());
    assert!(store.get(&other_repo).unwrap().is_none());
    let by_digest = store
        .ensure(&pinned, PullPolicy::Always, &[])
        .await
        .unwrap();
    assert_eq!(by_digest.layers, image.layers);
}

#[tokio::test]
async fn pull_picks_the_host_platform_from_a_manifest_list() {
    let Some(reg) = TestRegistry::start(false, None).await else {
        return;
    };
    let img = TestImage::sample(false);
    let other = TestImage::new(
        vec![
            testing::LayerBuilder::new()
                .file("other", b"o", 0o644)
                .build(),
        ],
        false,
        &["/other"],
    );
    reg.push("multi", &img.manifest_digest(), &img).await;
    reg.push("multi", &other.manifest_digest(), &other).await;
    let mut foreign = other.manifest_descriptor();
    foreign.platform.as_mut().unwrap().architecture = "no-such-arch".into();
    let index = testing::index_of(vec![foreign, img.manifest_descriptor()]);
    reg.push_manifest("multi", "2", oci::OCI_INDEX, &index)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = pull_store(&reg, dir.path()).await;
    let image = store
        .ensure(&format!("{}/multi:2", reg.host), PullPolicy::Always, &[])
        .await
        .unwrap();
    assert_eq!(image.id, img.config_digest());
    assert_eq!(
        image.repo_digest,
        Some(format!("{}/multi@{}", reg.host, digest::sha256(&index)))
    );
}

#[tokio::test]
async fn pull_of_a_missing_image_says_not_found() {
    let Some(reg) = TestRegistry::start(false, None).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = pull_store(&reg, dir.path()).await;
    let reference = format!("{}/nothing/here:1", reg.host);
    let Err(ImageError::Pull(msg)) = store
        .ensure(&reference, PullPolicy::IfNotPresent, &[])
        .await
    else {
        panic!("expected a pull error");
    };
    assert!(
        msg.starts_with(&format!(
            "failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found"
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn always_fails_when_the_registry_is_gone_even_if_present() {
    let Some(reg) = TestRegistry::start(false, None).await else {
        return;
    };
    let img = TestImage::sample(false);
    reg.push("app", "1", &img).await;
    let dir = tempfile::tempdir().unwrap();
    let store = pull_store(&reg, dir.path()).await;
    let reference = format!("{}/app:1", reg.host);
    store
        .ensure(&reference, PullPolicy::Always, &[])
        .await
        .unwrap();
    drop(reg);
    assert!(matches!(
        store.ensure(&reference, PullPolicy::Always, &[]).await,
        Err(ImageError::Pull(_))
    ));
    assert!(
        store
            .ensure(&reference, PullPolicy::IfNotPresent, &[])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn pull_with_basic_auth_uses_the_pull_secret() {
    let Some(reg) = TestRegistry::start(false, Some(("puller", "s3cret"))).await else {
        return;
    };
    let img = TestImage::sample(true);
    reg.push("private/app", "1", &img).await;
    let dir = tempfile::tempdir().unwrap();
    let store = pull_store(&reg, dir.path()).await;
    let reference = format!("{}/private/app:1", reg.host);
    let Err(ImageError::Pull(msg)) = store.ensure(&reference, PullPolicy::Always, &[]).await else {
        panic!("anonymous pull should fail");
    };
    assert!(msg.contains("authorization"), "{msg}");
    let wrong = RegistryAuth {
        registry: reg.host.clone(),
        username: "puller".into(),
        password: "wrong".into(),
    };
    assert!(matches!(
        store
            .ensure(&reference, PullPolicy::Always, std::slice::from_ref(&wrong))
            .await,
        Err(ImageError::Pull(_))
    ));
    let right = RegistryAuth {
        password: "s3cret".into(),
        registry: format!("http://{}/", reg.host),
        ..wrong.clone()
    };
    let image = store
        .ensure(&reference, PullPolicy::Always, &[wrong, right])
        .await
        .unwrap();
    check_sample_layers(&image);
}

#[tokio::test]
async fn pull_over_https_with_a_private_ca() {
    let Some(reg) = TestRegistry::start(true, None).await else {
        return;
    };
    let img = TestImage::sample(true);
    reg.push("secure", "1", &img).await;
    let dir = tempfile::tempdir().unwrap();
    let store = pull_store(&reg, dir.path()).await;
    let image = store
        .ensure(&format!("{}/secure:1", reg.host), PullPolicy::Always, &[])
        .await
        .unwrap();
    check_sample_layers(&image);
    // Without the CA the TLS handshake fails, and a TLS registry is not retried as plain HTTP
    // successfully either.
    let dir2 = tempfile::tempdir().unwrap();
    let plain = ImageStore::open(dir2.path()).unwrap();
    assert!(matches!(
        plain
            .ensure(&format!("{}/secure:1", reg.host), PullPolicy::Always, &[])
            .await,
        Err(ImageError::Pull(_))
    ));
}

#[tokio::test]
async fn concurrent_ensures_of_one_reference_pull_once() {
    let Some(reg) = TestRegistry::start(false, None).await else {
        return;
    };
    let img = TestImage::sample(true);
    reg.push("shared", "1", &img).await;
    let dir = tempfile::tempdir().unwrap();
    let store = pull_store(&reg, dir.path()).await;
    let reference = format!("{}/shared:1", reg.host);
    // Polled together: the first starts the pull, the others join it before it can finish.
    let pulls = (0..4).map(|_| store.ensure(&reference, PullPolicy::Always, &[]));
    for r in futures::future::join_all(pulls).await {
        assert_eq!(r.unwrap().id, img.config_digest());
    }
    assert_eq!(reg.manifest_gets("shared", "1"), 1);
}

#[tokio::test]
async fn pull_answers_a_bearer_challenge_with_an_anonymous_token() {
    let Some(reg) = TestRegistry::start(false, None).await else {
        return;
    };
    let img = TestImage::sample(true);
    reg.push("library/app", "1", &img).await;
    let front = testing::TokenFront::start(&reg.host).await;
    let dir = tempfile::tempdir().unwrap();
    let store = pull_store(&reg, dir.path()).await;
    let image = store
        .ensure(
            &format!("{}/library/app:1", front.host),
            PullPolicy::Always,
            &[],
        )
        .await
        .unwrap();
    check_sample_layers(&image);
    let requests = front.token_requests.lock().unwrap().clone();
    assert_eq!(
        requests[0],
        "scope=repository%3Alibrary%2Fapp%3Apull&service=stead-test"
    );
    // One token serves the whole pull (manifest, config, layers).
    assert_eq!(requests.len(), 1, "{requests:?}");
}
