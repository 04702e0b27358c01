//! The one error type of the crate.

use std::path::PathBuf;

/// Why an image could not be planned or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file an image is built from is not on this machine: the named Debian package provides it.
    #[error(
        "{path} is missing: install the Debian package `{package}` (apt-get install -y {package})"
    )]
    MissingPackage {
        package: &'static str,
        path: PathBuf,
    },

    /// A host file exists but could not be read.
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Writing the image (or the build cache) failed.
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `ldd` could not be run or did not resolve a library of a binary.
    #[error("shared libraries of {binary}: {detail}")]
    Libraries { binary: PathBuf, detail: String },

    /// A host command the builder relies on failed.
    #[error("run {command}: {detail}")]
    Command { command: String, detail: String },

    /// Two files of an image would occupy one path in conflicting ways (a builder bug).
    #[error("image layout: {0}")]
    Layout(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Read {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write {
            path: path.into(),
            source,
        }
    }
}
