//! The images, their names, and turning a plan into a tarball.

pub mod base;
mod busybox;
mod nginx;
mod redis;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::docker_save::{self, RunConfig};
use crate::error::{Error, Result};
use crate::tree::{Node, Tree};

pub use nginx::NGINX;
pub use redis::{REDIS_CLI, REDIS_SERVER};

/// One of the test images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestImage {
    Busybox,
    Nginx,
    Redis,
}

/// A written image tarball and the names (RepoTags) it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub image: TestImage,
    /// Every name the tarball carries, like `busybox:1.28`.
    pub names: Vec<String>,
    /// The docker-save tarball.
    pub path: PathBuf,
    /// The config digest (`sha256:...`), the image ID `docker load` would report.
    pub id: String,
}

/// An image's filesystem and run defaults, read from the host but not yet written.
#[derive(Debug, Clone)]
pub struct Plan {
    pub image: TestImage,
    pub tree: Tree,
    pub run: RunConfig,
}

impl TestImage {
    /// Every image, in build order.
    pub const ALL: [TestImage; 3] = [TestImage::Busybox, TestImage::Nginx, TestImage::Redis];

    /// The names the image's tarball carries: every name the walkthroughs pull it by.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            TestImage::Busybox => &["busybox:1.28", "busybox:latest", "busybox:1.36"],
            TestImage::Nginx => &[
                "registry.k8s.io/nginx-slim:0.24",
                "registry.k8s.io/nginx-slim:0.8",
                "nginx:latest",
                "nginx:1.25",
                "registry.cn-hangzhou.aliyuncs.com/larswang/nginx:1.0",
            ],
            TestImage::Redis => &["redis:5-alpine", "redis:latest", "redis:7"],
        }
    }

    /// The tarball's file name in an output directory, like `busybox.tar`.
    pub fn file_name(self) -> &'static str {
        match self {
            TestImage::Busybox => "busybox.tar",
            TestImage::Nginx => "nginx.tar",
            TestImage::Redis => "redis.tar",
        }
    }

    /// Reads everything the image needs from the host; fails naming the Debian package to
    /// install when a file is missing.
    pub fn plan(self) -> Result<Plan> {
        let (tree, run) = match self {
            TestImage::Busybox => busybox::plan()?,
            TestImage::Nginx => nginx::plan()?,
            TestImage::Redis => redis::plan()?,
        };
        Ok(Plan {
            image: self,
            tree,
            run,
        })
    }

    /// Plans and writes the image to `out_dir/<file_name>` (creating `out_dir`).
    pub fn build(self, out_dir: &Path) -> Result<BuiltImage> {
        self.plan()?.write(out_dir)
    }
}

impl Plan {
    /// Writes the docker-save tarball to `out_dir/<file_name>` (creating `out_dir`).
    pub fn write(&self, out_dir: &Path) -> Result<BuiltImage> {
        std::fs::create_dir_all(out_dir).map_err(|e| Error::write(out_dir, e))?;
        let path = out_dir.join(self.image.file_name());
        let layer = self.tree.to_tar();
        let created_by = format!(
            "stead-testimages {}: {:?} from this machine's Debian packages",
            env!("CARGO_PKG_VERSION"),
            self.image
        );
        let id = docker_save::write(&path, self.image.names(), &self.run, &layer, &created_by)?;
        Ok(BuiltImage {
            image: self.image,
            names: self.image.names().iter().map(|n| n.to_string()).collect(),
            path,
            id,
        })
    }

    /// Feeds everything the tarball is made of into `hasher`: equal fingerprints, equal bytes.
    pub fn fingerprint(&self, hasher: &mut Sha256) {
        hasher.update(format!("{:?}\0{:?}\0", self.image.names(), self.run));
        for (path, node) in self.tree.entries() {
            hasher.update(path);
            match node {
                Node::Dir { mode } => hasher.update(format!("\0d{mode}\0")),
                Node::Symlink { target } => hasher.update(format!("\0l{target}\0")),
                Node::File { mode, data } => {
                    hasher.update(format!("\0f{mode} {}\0", data.len()));
                    hasher.update(data);
                }
            }
        }
    }
}
