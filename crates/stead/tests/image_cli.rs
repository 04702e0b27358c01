//! `stead image import` and `stead image ls` against a data dir, run as the real binary: a
//! docker-save tarball built here is imported, listed, imported again while another import
//! runs, and a file that is no image archive fails with one line and exit code 2.

use std::path::Path;
use std::process::{Command, Output};

use stead_agent::image::digest::sha256;

fn stead(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stead"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run stead")
}

fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// A docker-save tarball of a one-layer image holding `file` under `tags`.
fn docker_save(tags: &[&str], file: &str) -> (Vec<u8>, String) {
    let mut layer = tar::Builder::new(Vec::new());
    add(&mut layer, file, b"content\n");
    let layer = layer.into_inner().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .unwrap();
    let id = sha256(&config);
    let config_name = format!("{}.json", &id[7..]);
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, &config_name, &config);
    add(&mut b, "l/layer.tar", &layer);
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": tags, "Layers": ["l/layer.tar"]}]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    (b.into_inner().unwrap(), id)
}

#[test]
fn image_import_then_ls_shows_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (archive, id) = docker_save(&["redis:5-alpine", "localhost:5000/x:y"], "etc/redis.conf");
    let file = dir.path().join("redis.tar");
    std::fs::write(&file, archive).unwrap();

    let out = stead(&["image", "import", file.to_str().unwrap()], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "imported docker.io/library/redis:5-alpine {id}\nimported localhost:5000/x:y {id}\n"
        )
    );

    let out = stead(&["image", "ls"], &data);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["REPOSITORY", "TAG", "IMAGE", "ID", "SIZE"]);
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[1][..3],
        ["docker.io/library/redis", "5-alpine", &id[7..20]]
    );
    assert_eq!(lines[2][..3], ["localhost:5000/x", "y", &id[7..20]]);
    assert!(
        lines[1][3].ends_with("kB") || lines[1][3].ends_with('B'),
        "{stdout}"
    );
}

#[test]
fn concurrent_imports_into_one_data_dir_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let files: Vec<_> = (0..4)
        .map(|i| {
            let (archive, _) = docker_save(&[&format!("app{i}:1")], &format!("f{i}"));
            let f = dir.path().join(format!("{i}.tar"));
            std::fs::write(&f, archive).unwrap();
            f
        })
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(env!("CARGO_BIN_EXE_stead"))
                .args(["image", "import", "--data-dir"])
                .arg(&data)
                .arg(f)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn stead image import")
        })
        .collect();
    // `ls` while the imports run: it sees some complete set of images, never an error.
    let during = stead(&["image", "ls"], &data);
    assert!(
        during.status.success(),
        "{}",
        String::from_utf8_lossy(&during.stderr)
    );
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let out = stead(&["image", "ls"], &data);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 5);
}

#[test]
fn importing_a_file_that_is_no_image_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "not an image").unwrap();
    let out = stead(
        &["image", "import", junk.to_str().unwrap()],
        &dir.path().join("data"),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("stead: image import"), "{stderr}");
    assert!(out.stdout.is_empty());
}
