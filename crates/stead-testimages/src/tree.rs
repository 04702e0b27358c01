//! An image's filesystem held in memory, and its deterministic tar serialisation.
//!
//! Paths are relative to the image root (`usr/bin/busybox`, no leading slash). Entries live in a
//! `BTreeMap`, so the tar lists them sorted (a parent always before its children); every entry is
//! owned by uid/gid 0 with empty user/group names and the fixed [`MTIME`]. The same tree therefore
//! always serialises to the same bytes.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The modification time of every entry (2024-01-01T00:00:00Z), also the config's `created`.
pub const MTIME: u64 = 1_704_067_200;

/// [`MTIME`] as RFC 3339, for the image config.
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
}

/// An image root filesystem under construction.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    entries: BTreeMap<String, Node>,
}

impl Tree {
    /// Adds (or re-modes) a directory and its missing parents.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        self.parents(path)?;
        match self.entries.get(path) {
            None | Some(Node::Dir { .. }) => {
                self.entries.insert(path.to_owned(), Node::Dir { mode });
                Ok(())
            }
            Some(other) => Err(Error::Layout(format!("{path} is already {other:?}"))),
        }
    }

    /// Adds a regular file (replacing an earlier file or symlink at that path).
    pub fn file(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) -> Result<()> {
        self.leaf(
            path,
            Node::File {
                mode,
                data: data.into(),
            },
        )
    }

    /// Adds a symbolic link (replacing an earlier file or symlink at that path).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.leaf(
            path,
            Node::Symlink {
                target: target.to_owned(),
            },
        )
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.entries.get(path)
    }

    /// All entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().map(|(p, n)| (p.as_str(), n))
    }

    fn leaf(&mut self, path: &str, node: Node) -> Result<()> {
        self.parents(path)?;
        if let Some(Node::Dir { .. }) = self.entries.get(path) {
            return Err(Error::Layout(format!("{path} is already a directory")));
        }
        self.entries.insert(path.to_owned(), node);
        Ok(())
    }

    /// Creates the missing parent directories of `path`, refusing to place anything below a
    /// symlink or a file (the tar must never be written through a link).
    fn parents(&mut self, path: &str) -> Result<()> {
        if path.is_empty()
            || path.starts_with('/')
            || path.split('/').any(|c| c == ".." || c == ".")
        {
            return Err(Error::Layout(format!(
                "{path:?} is not a clean relative path"
            )));
        }
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            match self.entries.get(parent) {
                None => {
                    self.entries
                        .insert(parent.to_owned(), Node::Dir { mode: 0o755 });
                }
                Some(Node::Dir { .. }) => {}
                Some(other) => {
                    return Err(Error::Layout(format!(
                        "{path} would be placed below {parent}, which is {other:?}"
                    )));
                }
            }
            end += i + 1;
        }
        Ok(())
    }

    /// The uncompressed tar of the tree.
    pub fn to_tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, node) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(MTIME);
            // Writing into a Vec cannot fail; a failure here would be a tar crate bug.
            let written = match node {
                Node::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), std::io::empty())
                }
                Node::File { mode, data } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, data.as_slice())
                }
                Node::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)
                }
            };
            written.expect("tar into memory");
        }
        builder.into_inner().expect("tar into memory")
    }
}

/// `sha256:<hex>` of some bytes, the digest form of image configs and layers.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_created_and_links_are_never_traversed() {
        let mut tree = Tree::default();
        tree.symlink("bin", "usr/bin").unwrap();
        tree.file("usr/bin/busybox", 0o755, b"x".to_vec()).unwrap();
        assert_eq!(tree.get("usr"), Some(&Node::Dir { mode: 0o755 }));
        assert!(tree.file("bin/sh", 0o755, b"x".to_vec()).is_err());
        assert!(tree.dir("usr/bin/busybox", 0o755).is_err());
        assert!(tree.file("../etc", 0o644, Vec::new()).is_err());
    }

    #[test]
    fn tar_is_sorted_owned_by_root_and_stable() {
        let mut tree = Tree::default();
        tree.file("etc/passwd", 0o644, b"root".to_vec()).unwrap();
        tree.dir("tmp", 0o1777).unwrap();
        tree.symlink("bin", "usr/bin").unwrap();
        let bytes = tree.to_tar();
        assert_eq!(bytes, tree.clone().to_tar());
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.mtime().unwrap(), MTIME);
            seen.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(seen, ["bin", "etc/", "etc/passwd", "tmp/"]);
    }
}
