//! The node's OCI image store: [`ImageStore`] implements [`Images`] for the kubelet, and
//! [`import`] / [`list`] serve `stead image import` / `stead image ls`.
//!
//! # Layout
//!
//! - [`reference`]: image names normalised as docker/containerd do (`redis` is
//!   `docker.io/library/redis:latest`).
//! - `store`: the content-addressed directory `<data-dir>/images/` (blobs by digest, one
//!   unpacked directory per layer diffID, the `names.json` index), safe to share between the
//!   server's agent and `stead image` commands running beside it.
//! - `unpack`: one layer tar into an overlayfs lower dir (whiteouts converted, escapes refused).
//! - `import`: OCI image-layout archives and docker-save tarballs.
//! - `registry`: pulling over the distribution v2 API (token and Basic auth).
//! - `oci`, `digest`: the JSON documents and sha256 helpers.
//!
//! Start at [`ImageStore::ensure`](Images::ensure): it checks the name index, pulls when the
//! policy says so (one pull per reference at a time, shared by concurrent callers), and hands
//! back an [`Image`] whose `layers` are ready to be overlay lower dirs.

pub mod digest;
mod import;
pub mod oci;
pub mod reference;
mod registry;
mod store;
mod unpack;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

pub use import::import;
pub use reference::Reference;
pub use registry::{RegistryOptions, credentials_for};

use crate::runtime::{Image, ImageError, Images, PullPolicy, RegistryAuth};
use oci::ConfigFile;
use registry::Registry;
use store::Store;

/// What went wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("layer path {0} escapes the layer")]
    PathEscape(String),
    #[error(transparent)]
    InvalidName(#[from] reference::ParseError),
    /// Bad archive or registry content.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The registry could not be reached or answered something unexpected.
    #[error("{0}")]
    Registry(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Prefixes the message, keeping the kind.
    fn wrap(context: String, e: Error) -> Error {
        match e {
            Error::NotFound(m) => Error::NotFound(format!("{context}: {m}")),
            Error::Unauthorized(m) => Error::Unauthorized(format!("{context}: {m}")),
            Error::Registry(m) => Error::Registry(format!("{context}: {m}")),
            e => Error::Registry(format!("{context}: {e}")),
        }
    }
}

/// One image an import named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The normalised reference: `docker.io/library/redis:5-alpine`.
    pub name: String,
    /// The config digest, `sha256:<hex>`.
    pub id: String,
}

/// One named image, as `stead image ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The normalised reference.
    pub name: String,
    /// `docker.io/library/redis`.
    pub repository: String,
    /// The tag, if the name has one.
    pub tag: Option<String>,
    /// The config digest.
    pub id: String,
    /// Compressed size (config plus layers) as pulled or imported.
    pub size: u64,
}

/// Forgets the name `reference` (normalised first); true if it was there. Blobs and layer
/// directories stay: other names or running containers may use them (no garbage collection
/// yet).
pub fn remove(data_dir: &Path, reference: &str) -> Result<bool, Error> {
    let name = Reference::parse(reference)?.to_string();
    let mut removed = false;
    Store::open(data_dir)?.update_names(|n| removed = n.images.remove(&name).is_some())?;
    Ok(removed)
}

/// Every named image in the store under `data_dir`, sorted by name.
pub fn list(data_dir: &Path) -> Result<Vec<ImageSummary>, Error> {
    list_store(&Store::open(data_dir)?)
}

fn list_store(store: &Store) -> Result<Vec<ImageSummary>, Error> {
    Ok(store
        .names()?
        .images
        .into_iter()
        .map(|(name, e)| {
            let r = Reference::parse(&name).ok();
            ImageSummary {
                repository: r
                    .as_ref()
                    .map_or_else(|| name.clone(), Reference::repository),
                tag: r.and_then(|r| r.tag),
                name,
                id: e.config,
                size: e.size,
            }
        })
        .collect())
}

type PullFuture = Shared<BoxFuture<'static, Result<Image, ImageError>>>;

/// The node's image store: [`Images`] for the kubelet.
#[derive(Clone)]
pub struct ImageStore {
    store: Arc<Store>,
    registry: Arc<Registry>,
    /// Pulls under way, by normalised reference: later callers wait for the same pull.
    pulls: Arc<Mutex<HashMap<String, PullFuture>>>,
}

impl ImageStore {
    /// Opens the store under `<data_dir>/images`, reaching registries with the system's CAs.
    pub fn open(data_dir: &Path) -> Result<ImageStore, Error> {
        ImageStore::open_with(data_dir, &RegistryOptions::default())
    }

    pub fn open_with(data_dir: &Path, options: &RegistryOptions) -> Result<ImageStore, Error> {
        Ok(ImageStore {
            store: Arc::new(Store::open(data_dir)?),
            registry: Arc::new(Registry::new(options)?),
            pulls: Arc::default(),
        })
    }

    /// The image `reference` names, if it is in the store with all its layers.
    pub fn get(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let r = Reference::parse(reference)
            .map_err(|_| ImageError::InvalidName(reference.to_string()))?;
        lookup(&self.store, &r).map_err(|e| ImageError::Pull(e.to_string()))
    }

    /// Every named image, sorted by name.
    pub fn list(&self) -> Result<Vec<ImageSummary>, Error> {
        list_store(&self.store)
    }

    /// Pulls `r`, joining a pull of the same reference already under way.
    async fn pull(&self, r: Reference, auth: Vec<RegistryAuth>) -> Result<Image, ImageError> {
        let key = r.to_string();
        let fut = {
            let mut pulls = self.pulls.lock().expect("pulls lock");
            match pulls.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let (store, registry, pulls_map) = (
                        self.store.clone(),
                        self.registry.clone(),
                        self.pulls.clone(),
                    );
                    let k = key.clone();
                    let task = tokio::spawn(async move {
                        let r2 = r.clone();
                        let result = pull_and_lookup(&store, &registry, &r2, &auth).await;
                        pulls_map.lock().expect("pulls lock").remove(&k);
                        result
                    });
                    let f = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(ImageError::Pull(format!("pull task failed: {e}")))
                        })
                    }
                    .boxed()
                    .shared();
                    pulls.insert(key, f.clone());
                    f
                }
            }
        };
        fut.await
    }
}

impl Images for ImageStore {
    async fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        auth: &[RegistryAuth],
    ) -> Result<Image, ImageError> {
        let r = Reference::parse(reference)
            .map_err(|_| ImageError::InvalidName(reference.to_string()))?;
        let present = || lookup(&self.store, &r).map_err(|e| ImageError::Pull(e.to_string()));
        match policy {
            PullPolicy::Never => present()?.ok_or_else(|| ImageError::NeverPull(reference.into())),
            PullPolicy::IfNotPresent => match present()? {
                Some(image) => Ok(image),
                None => self.pull(r, auth.to_vec()).await,
            },
            PullPolicy::Always => self.pull(r, auth.to_vec()).await,
        }
    }
}

/// Pulls with each matching credential in turn (anonymously when none matches), then reads
/// the image back from the store.
async fn pull_and_lookup(
    store: &Arc<Store>,
    registry: &Registry,
    r: &Reference,
    auth: &[RegistryAuth],
) -> Result<Image, ImageError> {
    let creds = credentials_for(&r.domain, auth);
    let attempts: Vec<Option<&RegistryAuth>> = if creds.is_empty() {
        vec![None]
    } else {
        creds.into_iter().map(Some).collect()
    };
    let mut last = None;
    for cred in attempts {
        match registry.pull(store, r, cred).await {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e @ Error::Unauthorized(_)) => last = Some(e),
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    if let Some(e) = last {
        tracing::debug!(image = %r, error = %e, "pull failed");
        return Err(ImageError::Pull(format!(
            "failed to pull and unpack image {:?}: {e}",
            r.to_string()
        )));
    }
    lookup(store, r)
        .map_err(|e| ImageError::Pull(e.to_string()))?
        .ok_or_else(|| ImageError::Pull(format!("image {r} vanished after its pull")))
}

/// Reads a named image: its config from the blob store and its layer directories, which must
/// all be there.
fn lookup(store: &Store, r: &Reference) -> Result<Option<Image>, Error> {
    let names = store.names()?;
    // A digest-pinned reference also finds the image pulled by tag from the same repository.
    let by_digest = || {
        let d = r.digest.as_ref()?;
        names
            .images
            .iter()
            .find(|(name, e)| {
                (e.target.as_ref() == Some(d) || e.manifest.as_ref() == Some(d))
                    && Reference::parse(name).is_ok_and(|n| n.repository() == r.repository())
            })
            .map(|(_, e)| e)
    };
    let Some(entry) = names.images.get(&r.to_string()).or_else(by_digest) else {
        return Ok(None);
    };
    if !store.has_blob(&entry.config) {
        return Ok(None);
    }
    let config = ConfigFile::parse(&store.read_blob(&entry.config)?).map_err(Error::Invalid)?;
    let mut layers = Vec::with_capacity(entry.layers.len());
    for diff_id in &entry.layers {
        if !store.has_layer(diff_id) {
            return Ok(None);
        }
        layers.push(store.layer_path(diff_id)?);
    }
    Ok(Some(Image {
        id: entry.config.clone(),
        repo_digest: r
            .digest
            .as_ref()
            .or(entry.target.as_ref())
            .map(|t| format!("{}@{t}", r.repository())),
        layers,
        config: config.image_config(),
    }))
}

/// `crictl images`-style size: three significant digits, decimal units (`7.15MB`, `116MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let s = if v >= 100.0 || unit == 0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}
