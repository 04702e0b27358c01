//! Build once per input, for tests: [`ensure_built`].
//!
//! The cache key is a sha256 over everything the tarballs are made of: every planned file's path,
//! mode and contents (so a package upgrade on the host gives a new key), the names and run
//! configs, and [`FORMAT`]. Images live in `<cache_dir>/<key>/{busybox,nginx,redis}.tar` with an
//! `ids` file listing each tarball's image ID. Concurrent callers (nextest runs every test in its
//! own process) serialise on `<cache_dir>/.lock`; the directory appears by rename only when
//! complete, so a reader never sees a half-written image.

use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::images::{BuiltImage, Plan, TestImage};
use crate::tree::hex;

/// Bump when the tarball format changes without any input changing.
pub const FORMAT: &str = "stead-testimages/1";

/// The cache directory tests share unless told otherwise: `$STEAD_TESTIMAGES_CACHE`, else
/// `<system temp dir>/stead-testimages`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("STEAD_TESTIMAGES_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("stead-testimages"))
}

/// Every test image, built under `cache_dir` unless an identical build is already there. Costs
/// reading the input files (tens of MB) and hashing them when the cache is warm.
pub fn ensure_built(cache_dir: &Path) -> Result<Vec<BuiltImage>> {
    let plans = TestImage::ALL
        .into_iter()
        .map(TestImage::plan)
        .collect::<Result<Vec<Plan>>>()?;
    let mut hasher = Sha256::new();
    hasher.update(FORMAT);
    for plan in &plans {
        plan.fingerprint(&mut hasher);
    }
    let key = hex(&hasher.finalize()[..16]);
    let dir = cache_dir.join(&key);
    if let Some(images) = read_cached(&dir)? {
        return Ok(images);
    }

    std::fs::create_dir_all(cache_dir).map_err(|e| Error::write(cache_dir, e))?;
    let lock_path = cache_dir.join(".lock");
    let lock = File::create(&lock_path).map_err(|e| Error::write(&lock_path, e))?;
    lock.lock().map_err(|e| Error::write(&lock_path, e))?;
    // Someone else may have built it while we waited.
    if let Some(images) = read_cached(&dir)? {
        return Ok(images);
    }
    let partial = cache_dir.join(format!("{key}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| Error::write(&partial, e))?;
    }
    let mut ids = String::new();
    for plan in &plans {
        let built = plan.write(&partial)?;
        ids.push_str(&format!("{} {}\n", plan.image.file_name(), built.id));
    }
    let ids_path = partial.join("ids");
    std::fs::write(&ids_path, ids).map_err(|e| Error::write(&ids_path, e))?;
    if dir.exists() {
        // A directory without `ids` is the leftover of an interrupted cleanup.
        std::fs::remove_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    }
    std::fs::rename(&partial, &dir).map_err(|e| Error::write(&dir, e))?;
    drop(lock);
    read_cached(&dir)?.ok_or_else(|| {
        Error::write(
            &dir,
            std::io::Error::other("the cache directory vanished after being built"),
        )
    })
}

/// The images of a complete cache directory, `None` if it is not there.
fn read_cached(dir: &Path) -> Result<Option<Vec<BuiltImage>>> {
    let ids_path = dir.join("ids");
    let ids = match std::fs::read_to_string(&ids_path) {
        Ok(ids) => ids,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::read(&ids_path, e)),
    };
    let mut images = Vec::new();
    for image in TestImage::ALL {
        let id = ids
            .lines()
            .find_map(|l| l.strip_prefix(image.file_name())?.strip_prefix(' '))
            .ok_or_else(|| {
                Error::read(
                    &ids_path,
                    std::io::Error::other(format!("no id for {}", image.file_name())),
                )
            })?;
        images.push(BuiltImage {
            image,
            names: image.names().iter().map(|n| n.to_string()).collect(),
            path: dir.join(image.file_name()),
            id: id.to_owned(),
        });
    }
    Ok(Some(images))
}
