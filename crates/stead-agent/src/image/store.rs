//! The on-disk image store under `<data-dir>/images/`:
//!
//! ```text
//! images/
//!   blobs/sha256/<hex>      verified manifests, indexes and configs, by digest
//!   layers/sha256/<hex>/    one unpacked layer per diffID: an overlay lower dir
//!   names.json              the name index: reference -> manifest, config, layers, size
//!   names.lock              flock'd around every names.json update
//!   tmp/<pid>-<n>           scratch files and half-unpacked layers of live processes
//! ```
//!
//! Several processes share one store (the agent pulling inside `stead server`, `stead image
//! import` beside it), so nothing holds an exclusive lock for long: blobs and `names.json` are
//! written to a temp file, fsynced and renamed into place; a layer directory appears by renaming
//! a fully unpacked temp directory (after a `syncfs`); `names.json` updates are read-modify-write
//! under `names.lock`. Readers take no lock: every file they can see is complete. Content is
//! immutable once published, so two writers racing to publish the same digest both succeed.
//! Compressed layer blobs are not kept once unpacked: a layer is identified by its diffID.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::Error;
use super::digest::{self, HashingReader};
use super::unpack;

/// One named image in `names.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameEntry {
    /// What the name points at: the index or manifest digest it was pulled or imported by
    /// (the repo digest); none for docker-save imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The platform manifest's digest, when there is a manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// The config digest: the image id.
    pub config: String,
    /// Layer diffIDs, lowest first.
    pub layers: Vec<String>,
    /// Config plus layer sizes as stored in the registry or archive (what `crictl images` shows).
    pub size: u64,
}

/// The whole name index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub images: BTreeMap<String, NameEntry>,
}

/// A store rooted at `<data-dir>/images`.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    is_root: bool,
}

static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating if needed) the store under `data_dir`, removing scratch left by
    /// processes that are gone.
    pub fn open(data_dir: &Path) -> Result<Store, Error> {
        let root = data_dir.join("images");
        for d in ["blobs/sha256", "layers/sha256", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        let store = Store {
            root,
            is_root: rustix::process::geteuid().is_root(),
        };
        store.remove_dead_scratch();
        Ok(store)
    }

    fn remove_dead_scratch(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let pid = name.to_str().and_then(|n| n.split('-').next());
            let alive = pid.is_some_and(|p| Path::new("/proc").join(p).exists());
            if !alive {
                let p = e.path();
                let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
            }
        }
    }

    /// A fresh scratch path (not created) under `tmp/`, removed when the guard drops.
    pub fn scratch(&self) -> Scratch {
        let n = SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Scratch {
            path: self
                .root
                .join("tmp")
                .join(format!("{}-{n}-{nanos}", std::process::id())),
        }
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, Error> {
        let hex = digest::sha256_hex(digest)
            .ok_or_else(|| Error::Invalid(format!("unsupported digest {digest:?}")))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.exists())
    }

    /// Reads a blob, checking it still matches its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest)?;
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        check_digest(digest, &bytes, digest)?;
        Ok(bytes)
    }

    /// Stores `bytes` as the blob `digest`, refusing content that does not match it.
    pub fn write_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        check_digest(digest, bytes, digest)?;
        let path = self.blob_path(digest)?;
        if path.exists() {
            return Ok(());
        }
        self.write_atomic(&path, bytes)
    }

    /// Writes `path` as a whole: temp file, fsync, rename, fsync of the directory.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let scratch = self.scratch();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&scratch.path)
            .map_err(|e| Error::io(&scratch.path, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&scratch.path, e))?;
        fs::rename(&scratch.path, path).map_err(|e| Error::io(path, e))?;
        sync_dir(path.parent().unwrap_or(&self.root))
    }

    /// The directory a layer is (or would be) unpacked into.
    pub fn layer_path(&self, diff_id: &str) -> Result<PathBuf, Error> {
        let hex = digest::sha256_hex(diff_id)
            .ok_or_else(|| Error::Invalid(format!("unsupported diffID {diff_id:?}")))?;
        Ok(self.root.join("layers/sha256").join(hex))
    }

    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_path(diff_id).is_ok_and(|p| p.is_dir())
    }

    /// Unpacks one layer from its blob (an uncompressed or gzip tar, told apart by the magic
    /// bytes) into `layers/sha256/<diffID>`. The blob must hash to `blob_digest` when given and
    /// its uncompressed tar to `diff_id`; on any mismatch nothing is published.
    pub fn unpack_layer(
        &self,
        blob: impl Read,
        blob_digest: Option<&str>,
        diff_id: &str,
    ) -> Result<PathBuf, Error> {
        let dest = self.layer_path(diff_id)?;
        if dest.is_dir() {
            return Ok(dest);
        }
        let scratch = self.scratch();
        fs::create_dir(&scratch.path).map_err(|e| Error::io(&scratch.path, e))?;
        let mut outer = BufReader::with_capacity(256 * 1024, HashingReader::new(blob));
        let magic = outer
            .fill_buf()
            .map_err(|e| Error::io(&scratch.path, e))?
            .get(..4)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let what = blob_digest.unwrap_or(diff_id);
        let (actual_diff, outer) = if magic.starts_with(&[0x1f, 0x8b]) {
            let tar = HashingReader::new(flate2::bufread::MultiGzDecoder::new(outer));
            let tar = unpack::unpack(tar, &scratch.path, self.is_root)?;
            let (d, _, gz) = tar
                .finish()
                .map_err(|e| Error::Invalid(format!("layer {what}: {e}")))?;
            (d, gz.into_inner())
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(Error::Invalid(format!(
                "layer {what}: zstd-compressed layers are not supported"
            )));
        } else {
            let tar = unpack::unpack(HashingReader::new(outer), &scratch.path, self.is_root)?;
            let (d, _, plain) = tar
                .finish()
                .map_err(|e| Error::Invalid(format!("layer {what}: {e}")))?;
            (d, plain)
        };
        let (actual_blob, _, _) = outer
            .into_inner()
            .finish()
            .map_err(|e| Error::Invalid(format!("layer {what}: {e}")))?;
        if let Some(expected) = blob_digest
            && expected != actual_blob
        {
            return Err(Error::DigestMismatch {
                what: format!("layer blob {expected}"),
                expected: expected.to_string(),
                actual: actual_blob,
            });
        }
        if actual_diff != diff_id {
            return Err(Error::DigestMismatch {
                what: format!("layer {what} (uncompressed)"),
                expected: diff_id.to_string(),
                actual: actual_diff,
            });
        }
        // Everything written must be on disk before the name makes it visible.
        let dir = File::open(&scratch.path).map_err(|e| Error::io(&scratch.path, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io(&scratch.path, e.into()))?;
        match fs::rename(&scratch.path, &dest) {
            Ok(()) => {}
            // Another process published the same layer first: the same content.
            Err(_) if dest.is_dir() => return Ok(dest),
            Err(e) => return Err(Error::io(&dest, e)),
        }
        sync_dir(dest.parent().unwrap_or(&self.root))?;
        Ok(dest)
    }

    /// The name index as it is now (no lock: `names.json` is only ever replaced whole).
    pub fn names(&self) -> Result<Names, Error> {
        let path = self.root.join("names.json");
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Names::default()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Read-modify-write of the name index under `names.lock`.
    pub fn update_names(&self, change: impl FnOnce(&mut Names)) -> Result<(), Error> {
        let lock_path = self.root.join("names.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&lock_path, e.into()))?;
        let mut names = self.names()?;
        change(&mut names);
        let bytes = serde_json::to_vec_pretty(&names).expect("names serialise");
        let r = self.write_atomic(&self.root.join("names.json"), &bytes);
        drop(lock); // closing the file releases the flock
        r
    }
}

/// Fails unless `bytes` hash to `expected`.
pub fn check_digest(what: &str, bytes: &[u8], expected: &str) -> Result<(), Error> {
    let actual = digest::sha256(bytes);
    if actual != expected {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// A scratch path under `tmp/`, removed (file or directory) when dropped.
pub struct Scratch {
    pub path: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if fs::remove_file(&self.path).is_err() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_refused_unless_they_match_their_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let good = digest::sha256(b"{}");
        store.write_blob(&good, b"{}").unwrap();
        assert_eq!(store.read_blob(&good).unwrap(), b"{}");
        let err = store.write_blob(&good, b"{ }").unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        // Corruption on disk is caught on read.
        fs::write(store.blob_path(&good).unwrap(), b"[]").unwrap();
        assert!(matches!(
            store.read_blob(&good),
            Err(Error::DigestMismatch { .. })
        ));
    }

    #[test]
    fn name_updates_replace_the_index_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.names().unwrap().images.is_empty());
        let entry = NameEntry {
            target: None,
            manifest: None,
            config: digest::sha256(b"c"),
            layers: vec![],
            size: 1,
        };
        store
            .update_names(|n| {
                n.images
                    .insert("docker.io/library/a:1".into(), entry.clone());
            })
            .unwrap();
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(
            again.names().unwrap().images["docker.io/library/a:1"],
            entry
        );
        // No scratch is left behind.
        assert_eq!(
            fs::read_dir(dir.path().join("images/tmp")).unwrap().count(),
            0
        );
    }
}
