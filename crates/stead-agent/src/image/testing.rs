//! Test support: layer tars and whole images built in memory, written as OCI-layout archives
//! or docker-save tarballs, and pushed to a real registry (see `registry_harness`).

use std::io::Write;

use tar::{EntryType, Header};

use super::digest::sha256;
use super::oci::{self, Descriptor, Index, Manifest, Platform};

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

const MTIME: u64 = 1_700_000_000;

/// Builds a layer tar entry by entry. Names are written into the header as given (so tests can
/// write the `..` that the tar crate's own setters refuse).
pub struct LayerBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(path: &str, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        let name = &mut h.as_old_mut().name;
        assert!(path.len() < name.len(), "test paths are short");
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn append(mut self, mut h: Header, data: &[u8]) -> Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(self, path: &str, mode: u32) -> Self {
        let h = Self::header(path, EntryType::Directory, mode, 0);
        self.append(h, &[])
    }

    pub fn file(self, path: &str, data: &[u8], mode: u32) -> Self {
        self.file_owned(path, data, mode, 0, 0)
    }

    pub fn file_owned(self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        let mut h = Self::header(path, EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.append(h, data)
    }

    /// A regular file whose name may contain `..`.
    pub fn raw_file(self, path: &str, data: &[u8]) -> Self {
        self.file(path, data, 0o644)
    }

    pub fn symlink(self, path: &str, to: &str) -> Self {
        let mut h = Self::header(path, EntryType::Symlink, 0o777, 0);
        h.set_link_name_literal(to).unwrap();
        self.append(h, &[])
    }

    pub fn hardlink(self, path: &str, to: &str) -> Self {
        let mut h = Self::header(path, EntryType::Link, 0o644, 0);
        h.set_link_name_literal(to).unwrap();
        self.append(h, &[])
    }

    pub fn device(self, path: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        let mut h = Self::header(path, kind, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.append(h, &[])
    }

    pub fn build(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An image built in memory: its layer blobs (as stored in a registry or archive), config and
/// manifest, with their digests.
pub struct TestImage {
    /// Uncompressed layer tars, lowest first.
    pub layers: Vec<Vec<u8>>,
    /// The layer blobs: gzip when built with `gzip`, else the tars themselves.
    pub blobs: Vec<Vec<u8>>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    pub fn new(layers: Vec<Vec<u8>>, gzip_layers: bool, cmd: &[&str]) -> TestImage {
        let blobs: Vec<Vec<u8>> = layers
            .iter()
            .map(|l| if gzip_layers { gzip(l) } else { l.clone() })
            .collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": oci::host_architecture(),
            "os": "linux",
            "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/data", "User": "1000:1000"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let manifest = Manifest {
            schema_version: 2,
            media_type: oci::OCI_MANIFEST.into(),
            config: descriptor(oci::OCI_CONFIG, &config),
            layers: blobs
                .iter()
                .map(|b| {
                    descriptor(
                        if gzip_layers {
                            oci::OCI_LAYER_GZIP
                        } else {
                            "application/vnd.oci.image.layer.v1.tar"
                        },
                        b,
                    )
                })
                .collect(),
        };
        TestImage {
            layers,
            blobs,
            config,
            manifest: serde_json::to_vec(&manifest).unwrap(),
        }
    }

    /// A small two-layer image: files, a symlink, a hardlink, then a whiteout and an opaque
    /// directory in the second layer (whiteouts only as root, where they can be unpacked).
    pub fn sample(gzip_layers: bool) -> TestImage {
        let base = LayerBuilder::new()
            .dir("bin", 0o755)
            .file("bin/hello", b"#!/bin/sh\necho hello\n", 0o755)
            .symlink("bin/hi", "hello")
            .hardlink("bin/hello2", "bin/hello")
            .dir("etc", 0o755)
            .file("etc/old", b"old", 0o644)
            .file("etc/keep", b"keep", 0o644)
            .dir("var", 0o755)
            .file("var/cached", b"c", 0o644)
            .build();
        let mut top = LayerBuilder::new().file("etc/new", b"new", 0o600);
        if is_root() {
            top = top
                .file("etc/.wh.old", b"", 0o644)
                .dir("var", 0o755)
                .file("var/.wh..wh..opq", b"", 0o644)
                .file("var/fresh", b"f", 0o644);
        }
        TestImage::new(vec![base, top.build()], gzip_layers, &["/bin/hello"])
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config)
    }

    pub fn manifest_digest(&self) -> String {
        sha256(&self.manifest)
    }

    pub fn manifest_descriptor(&self) -> Descriptor {
        let mut d = descriptor(oci::OCI_MANIFEST, &self.manifest);
        d.platform = Some(Platform {
            architecture: oci::host_architecture().into(),
            os: "linux".into(),
            variant: None,
        });
        d
    }
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: sha256(bytes),
        size: bytes.len() as u64,
        platform: None,
        annotations: Default::default(),
    }
}

/// An index holding `manifests` (a multi-platform list).
pub fn index_of(manifests: Vec<Descriptor>) -> Vec<u8> {
    serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: oci::OCI_INDEX.into(),
        manifests,
    })
    .unwrap()
}

/// Appends a file to an outer archive.
pub fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn add_blob(b: &mut tar::Builder<Vec<u8>>, data: &[u8]) {
    add(b, &format!("blobs/sha256/{}", &sha256(data)[7..]), data);
}

/// An OCI image-layout archive with each image under its name (`ref.name` annotation with the
/// full reference, as `ctr export` writes it).
pub fn oci_archive(images: &[(&str, &TestImage)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut manifests = Vec::new();
    for (name, img) in images {
        for blob in &img.blobs {
            add_blob(&mut b, blob);
        }
        add_blob(&mut b, &img.config);
        add_blob(&mut b, &img.manifest);
        let mut d = descriptor(oci::OCI_MANIFEST, &img.manifest);
        d.annotations
            .insert(oci::ANNOTATION_REF_NAME.into(), name.to_string());
        manifests.push(d);
    }
    add(&mut b, "index.json", &index_of(manifests));
    b.into_inner().unwrap()
}

/// A legacy `docker save` tarball: `manifest.json`, `<id>.json` configs, `<n>/layer.tar`.
pub fn docker_save(images: &[(&[&str], &TestImage)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    for (i, (tags, img)) in images.iter().enumerate() {
        let config_name = format!("{}.json", &img.config_digest()[7..]);
        add(&mut b, &config_name, &img.config);
        let mut layers = Vec::new();
        for (j, l) in img.layers.iter().enumerate() {
            let p = format!("layer{i}{j}/layer.tar");
            add(&mut b, &p, l);
            layers.push(p);
        }
        manifest.push(serde_json::json!({
            "Config": config_name, "RepoTags": tags, "Layers": layers,
        }));
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}
