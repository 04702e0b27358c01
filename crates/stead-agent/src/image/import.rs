//! `stead image import`: OCI image-layout archives and docker-save tarballs into the store.
//!
//! The archive is read in two passes over the file: the first records where each member lies
//! (and follows the symlinks docker-save uses for repeated layers), the second reads the
//! members it needs at their offsets, so blobs are never copied out of the archive first. A
//! gzip-compressed archive is decompressed to a scratch file first. Every blob is checked
//! against its digest (and every layer against its diffID) before anything is published.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::digest::sha256;
use super::oci::{self, ConfigFile, Descriptor, ManifestDoc};
use super::reference::Reference;
use super::store::{NameEntry, Scratch, Store, check_digest};
use super::{Error, ImportedImage};

/// Imports every named image of the archive at `file` into the store under `data_dir`. Error
/// messages about the archive as a whole do not repeat its path (callers say which file).
pub fn import(data_dir: &Path, file: &Path) -> Result<Vec<ImportedImage>, Error> {
    let store = Store::open(data_dir)?;
    import_into(&store, file)
}

pub(crate) fn import_into(store: &Store, file: &Path) -> Result<Vec<ImportedImage>, Error> {
    let unreadable = |e: io::Error| Error::Invalid(format!("cannot read: {e}"));
    let mut f = File::open(file).map_err(unreadable)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(unreadable)?;
    let _scratch: Option<Scratch>;
    let path = if n == 2 && magic == [0x1f, 0x8b] {
        let scratch = store.scratch();
        let mut out = File::create(&scratch.path).map_err(|e| Error::io(&scratch.path, e))?;
        let src = File::open(file).map_err(unreadable)?;
        io::copy(
            &mut flate2::read::MultiGzDecoder::new(BufReader::new(src)),
            &mut out,
        )
        .map_err(|e| Error::Invalid(format!("gzip: {e}")))?;
        let p = scratch.path.clone();
        _scratch = Some(scratch);
        p
    } else {
        _scratch = None;
        file.to_path_buf()
    };
    let archive = Archive::scan(&path)?;
    let mut imported = if archive.has("oci-layout") && archive.has("index.json") {
        import_oci(store, &archive)?
    } else if archive.has("manifest.json") {
        import_docker(store, &archive)?
    } else {
        return Err(Error::Invalid(
            "neither an OCI image layout (oci-layout, index.json) nor a docker-save tarball (manifest.json)".into(),
        ));
    };
    if imported.is_empty() {
        return Err(Error::Invalid(
            "no named image in the archive (an image needs RepoTags, or a full reference in io.containerd.image.name or org.opencontainers.image.ref.name)".into(),
        ));
    }
    imported.dedup();
    Ok(imported)
}

/// Where the members of a tar archive lie.
struct Archive {
    path: PathBuf,
    /// Member path (cleaned, relative) -> (offset of its data, size).
    files: HashMap<String, (u64, u64)>,
}

impl Archive {
    fn scan(path: &Path) -> Result<Archive, Error> {
        let bad = |e: io::Error| Error::Invalid(format!("not a tar archive: {e}"));
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut tar = tar::Archive::new(f);
        let mut files = HashMap::new();
        let mut links = Vec::new();
        for entry in tar.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let Some(name) = clean(&entry.path().map_err(bad)?) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    files.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Symlink => {
                    if let Some(to) = entry.link_name().map_err(bad)? {
                        let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                        links.push((name.clone(), clean(&base.join(to))));
                    }
                }
                tar::EntryType::Link => {
                    if let Some(to) = entry.link_name().map_err(bad)? {
                        links.push((name.clone(), clean(&to)));
                    }
                }
                _ => {}
            }
        }
        if files.is_empty() {
            return Err(Error::Invalid("empty or not a tar archive".into()));
        }
        for (name, to) in links {
            if let Some(at) = to.and_then(|t| files.get(&t).copied()) {
                files.insert(name, at);
            }
        }
        Ok(Archive {
            path: path.to_path_buf(),
            files,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    fn open(&self, name: &str) -> Result<(io::Take<File>, u64), Error> {
        let &(offset, size) = self
            .files
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("archive has no {name}")))?;
        let mut f = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(&self.path, e))?;
        Ok((f.take(size), size))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, Error> {
        let (mut r, size) = self.open(name)?;
        if size > 64 << 20 {
            return Err(Error::Invalid(format!("{name}: {size} bytes is too big")));
        }
        let mut buf = Vec::with_capacity(size as usize);
        r.read_to_end(&mut buf)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(buf)
    }

    fn blob_name(digest: &str) -> Result<String, Error> {
        let hex = super::digest::sha256_hex(digest)
            .ok_or_else(|| Error::Invalid(format!("unsupported digest {digest:?}")))?;
        Ok(format!("blobs/sha256/{hex}"))
    }

    /// A blob of an OCI layout, checked against its digest.
    fn read_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let bytes = self.read(&Self::blob_name(digest)?)?;
        check_digest(digest, &bytes, digest)?;
        Ok(bytes)
    }
}

/// The relative member path: `./` and leading `/` dropped; `None` for the root or `..`.
fn clean(p: &Path) -> Option<String> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Prefix(_) => return None,
        }
    }
    let s = out.to_str()?.to_string();
    (!s.is_empty()).then_some(s)
}

fn import_oci(store: &Store, archive: &Archive) -> Result<Vec<ImportedImage>, Error> {
    let index: oci::Index = serde_json::from_slice(&archive.read("index.json")?)
        .map_err(|e| Error::Invalid(format!("index.json: {e}")))?;
    let mut imported = Vec::new();
    for top in &index.manifests {
        let Some(name) = image_name(top) else {
            tracing::debug!(digest = %top.digest, "skipping unnamed image in index.json");
            continue;
        };
        let reference = Reference::parse(&name).map_err(Error::InvalidName)?;
        let top_bytes = archive.read_blob(&top.digest)?;
        let (manifest_desc, manifest_bytes) =
            match ManifestDoc::parse(&top_bytes, Some(&top.media_type)).map_err(Error::Invalid)? {
                ManifestDoc::Manifest(_) => (top.clone(), top_bytes.clone()),
                ManifestDoc::Index(list) => {
                    let d = oci::pick_platform(&list.manifests).ok_or_else(|| {
                        Error::Invalid(format!(
                            "{name}: no linux/{} image in the index",
                            oci::host_architecture()
                        ))
                    })?;
                    store.write_blob(&top.digest, &top_bytes)?;
                    (d.clone(), archive.read_blob(&d.digest)?)
                }
            };
        let ManifestDoc::Manifest(manifest) =
            ManifestDoc::parse(&manifest_bytes, Some(&manifest_desc.media_type))
                .map_err(Error::Invalid)?
        else {
            return Err(Error::Invalid(format!("{name}: nested image index")));
        };
        let config_bytes = archive.read_blob(&manifest.config.digest)?;
        let config = ConfigFile::parse(&config_bytes).map_err(Error::Invalid)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Invalid(format!(
                "{name}: {} layers but {} diffIDs in the config",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            if !store.has_layer(diff_id) {
                let (blob, _) = archive.open(&Archive::blob_name(&layer.digest)?)?;
                store.unpack_layer(BufReader::new(blob), Some(&layer.digest), diff_id)?;
            }
        }
        store.write_blob(&manifest.config.digest, &config_bytes)?;
        store.write_blob(&manifest_desc.digest, &manifest_bytes)?;
        let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
        let entry = NameEntry {
            target: Some(top.digest.clone()),
            manifest: Some(manifest_desc.digest.clone()),
            config: manifest.config.digest.clone(),
            layers: config.rootfs.diff_ids.clone(),
            size,
        };
        let full = reference.to_string();
        store.update_names(|n| {
            n.images.insert(full.clone(), entry);
        })?;
        imported.push(ImportedImage {
            name: full,
            id: manifest.config.digest.clone(),
        });
    }
    Ok(imported)
}

/// The image name an OCI layout gives a manifest: containerd's full-name annotation, else
/// `org.opencontainers.image.ref.name` when it is a whole reference (not a bare tag).
fn image_name(d: &Descriptor) -> Option<String> {
    if let Some(n) = d.annotations.get(oci::ANNOTATION_CONTAINERD_NAME) {
        return Some(n.clone());
    }
    let n = d.annotations.get(oci::ANNOTATION_REF_NAME)?;
    let bare_tag = !n.contains('/') && !n.contains(':') && !n.contains('@');
    (!bare_tag).then(|| n.clone())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker(store: &Store, archive: &Archive) -> Result<Vec<ImportedImage>, Error> {
    let manifests: Vec<DockerManifest> = serde_json::from_slice(&archive.read("manifest.json")?)
        .map_err(|e| Error::Invalid(format!("manifest.json: {e}")))?;
    let mut imported = Vec::new();
    for m in &manifests {
        let tags = m.repo_tags.clone().unwrap_or_default();
        if tags.is_empty() {
            tracing::debug!(config = %m.config, "skipping untagged image in manifest.json");
            continue;
        }
        let references = tags
            .iter()
            .map(|t| Reference::parse(t).map_err(Error::InvalidName))
            .collect::<Result<Vec<_>, _>>()?;
        let config_name = clean(Path::new(&m.config))
            .ok_or_else(|| Error::Invalid(format!("bad config path {:?}", m.config)))?;
        let config_bytes = archive.read(&config_name)?;
        let config_digest = sha256(&config_bytes);
        // `<hex>.json` (docker < 25) and `blobs/sha256/<hex>` (docker >= 25) name their digest.
        if let Some(named) = hex_in_name(&config_name) {
            check_digest(&config_name, &config_bytes, &format!("sha256:{named}"))?;
        }
        let config = ConfigFile::parse(&config_bytes).map_err(Error::Invalid)?;
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(Error::Invalid(format!(
                "{}: {} layers but {} diffIDs in the config",
                tags[0],
                m.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let mut size = config_bytes.len() as u64;
        for (layer, diff_id) in m.layers.iter().zip(&config.rootfs.diff_ids) {
            let layer = clean(Path::new(layer))
                .ok_or_else(|| Error::Invalid(format!("bad layer path {layer:?}")))?;
            let (blob, len) = archive.open(&layer)?;
            size += len;
            if !store.has_layer(diff_id) {
                let blob_digest = layer
                    .strip_prefix("blobs/sha256/")
                    .and_then(|_| hex_in_name(&layer))
                    .map(|h| format!("sha256:{h}"));
                store.unpack_layer(BufReader::new(blob), blob_digest.as_deref(), diff_id)?;
            }
        }
        store.write_blob(&config_digest, &config_bytes)?;
        let entry = NameEntry {
            target: None,
            manifest: None,
            config: config_digest.clone(),
            layers: config.rootfs.diff_ids.clone(),
            size,
        };
        let names: Vec<String> = references.iter().map(|r| r.to_string()).collect();
        store.update_names(|n| {
            for name in &names {
                n.images.insert(name.clone(), entry.clone());
            }
        })?;
        imported.extend(names.into_iter().map(|name| ImportedImage {
            name,
            id: config_digest.clone(),
        }));
    }
    Ok(imported)
}

/// The 64-hex digest a member's file name carries (`<hex>.json`, `blobs/sha256/<hex>`).
fn hex_in_name(name: &str) -> Option<&str> {
    let file = name.rsplit('/').next()?;
    let stem = file.strip_suffix(".json").unwrap_or(file);
    (stem.len() == 64 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(stem)
}
