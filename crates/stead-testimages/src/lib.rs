//! Small container images built from this machine's own Debian packages, so the walkthrough
//! manifests (`busybox:1.28`, `registry.k8s.io/nginx-slim:0.24`, `redis:5-alpine`, ...) run with
//! no registry in reach.
//!
//! Each image is one docker-save tarball (`stead image import FILE` reads it) with one
//! uncompressed layer and every name the walkthroughs pull it by; the bytes depend only on the
//! host files they are made of (sorted entries, root-owned, fixed mtimes). See
//! `docs/TEST-IMAGES.md` for what each image contains.
//!
//! # Layout
//! - [`images`]: [`TestImage`] (names, [`TestImage::plan`], [`TestImage::build`]); one module per
//!   image (`busybox`, `nginx`, `redis`) over `base` (root layout, users, busybox applets).
//! - [`host`]: reading the host: [`host::mirror`] copies a path with every symlink on the way,
//!   [`host::shared_libraries`] asks `ldd`, [`host::require`] names the missing package.
//! - [`tree`]: the in-memory filesystem and its deterministic tar.
//! - [`docker_save`]: the tarball (`manifest.json`, config, `<digest>/layer.tar`).
//! - [`cache`]: [`ensure_built`], one build per input content, for tests.
//!
//! Start with [`build_all`] (what the binary runs) or [`ensure_built`] (what tests call).

pub mod cache;
pub mod docker_save;
pub mod error;
pub mod host;
pub mod images;
pub mod tree;

use std::path::Path;

pub use cache::{default_cache_dir, ensure_built};
pub use error::{Error, Result};
pub use images::{BuiltImage, Plan, TestImage};

/// Builds every image into `out_dir` (created if missing) as `busybox.tar`, `nginx.tar` and
/// `redis.tar`.
pub fn build_all(out_dir: &Path) -> Result<Vec<BuiltImage>> {
    TestImage::ALL
        .into_iter()
        .map(|image| image.build(out_dir))
        .collect()
}

/// Builds `busybox.tar` into `out_dir`.
pub fn build_busybox(out_dir: &Path) -> Result<BuiltImage> {
    TestImage::Busybox.build(out_dir)
}

/// Builds `nginx.tar` into `out_dir`.
pub fn build_nginx(out_dir: &Path) -> Result<BuiltImage> {
    TestImage::Nginx.build(out_dir)
}

/// Builds `redis.tar` into `out_dir`.
pub fn build_redis(out_dir: &Path) -> Result<BuiltImage> {
    TestImage::Redis.build(out_dir)
}
