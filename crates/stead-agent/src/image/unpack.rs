//! Unpacking one layer tar into its own directory, in the form overlayfs reads as a lower dir.
//!
//! Regular files, directories, symlinks, hardlinks (to files of the same layer) and, as root,
//! character/block devices and fifos are created with their mode, owner, mtime and xattrs. OCI
//! whiteouts become overlayfs ones: `.wh.<name>` is a 0/0 character device `<name>`, and
//! `.wh..wh..opq` marks its directory with the xattr `trusted.overlay.opaque=y`.
//!
//! Nothing outside the layer directory is ever touched: paths with `..` are refused, no path is
//! created through a symlink (a parent that is a symlink is refused, files are created with
//! `O_EXCL`, owners and times are set without following links), and hardlinks must point at
//! a non-symlink path inside the layer.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use tar::EntryType;

use super::Error;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Unpacks the tar stream `reader` into the existing, empty directory `dest`; returns the
/// reader positioned after the end-of-archive marker. `is_root` says whether owners can be set
/// and device nodes created.
pub fn unpack<R: Read>(reader: R, dest: &Path, is_root: bool) -> Result<R, Error> {
    let mut archive = tar::Archive::new(reader);
    let mut dirs = Vec::new();
    let bad = |e: io::Error| Error::Invalid(format!("reading layer tar: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = clean(&raw)? else {
            continue; // the layer root itself
        };
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let parent = rel.parent().unwrap_or(Path::new(""));
        if name == OPAQUE {
            let dir = make_parents(dest, &rel)?;
            rustix::fs::lsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(|e| Error::io(&dir, e.into()))?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.starts_with(WHITEOUT_PREFIX) || hidden.is_empty() {
                continue; // aufs metadata (`.wh..wh.plnk` and the like): nothing to hide
            }
            make_parents(dest, &rel)?;
            let target = dest.join(parent).join(hidden);
            remove_existing(&target, false)?;
            rustix::fs::mknodat(CWD, &target, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(|e| Error::io(&target, e.into()))?;
            let h = entry.header();
            set_owner(&target, h.uid().unwrap_or(0), h.gid().unwrap_or(0), is_root)?;
            continue;
        }

        make_parents(dest, &rel)?;
        let target = dest.join(&rel);
        let header = entry.header().clone();
        let mode = header.mode().map_err(bad)? & 0o7777;
        let is_dir = kind == EntryType::Directory;
        remove_existing(&target, is_dir)?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&target)
                    .map_err(|e| Error::io(&target, e))?;
                io::copy(&mut entry, &mut f).map_err(|e| Error::io(&target, e))?;
            }
            EntryType::Directory => {
                if !target.is_dir() {
                    fs::create_dir(&target).map_err(|e| Error::io(&target, e))?;
                }
            }
            EntryType::Symlink => {
                let to = link_name(&entry)?;
                std::os::unix::fs::symlink(&to, &target).map_err(|e| Error::io(&target, e))?;
            }
            EntryType::Link => {
                let to = link_name(&entry)?;
                let Some(to) = clean(&to)? else {
                    return Err(Error::PathEscape(format!(
                        "{}: hardlink to the layer root",
                        raw.display()
                    )));
                };
                let source = existing_inside(dest, &to)?;
                fs::hard_link(&source, &target).map_err(|e| Error::io(&target, e))?;
                continue; // the inode already has its metadata
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if !is_root && kind != EntryType::Fifo {
                    tracing::debug!(path = %rel.display(), "skipping device node: not root");
                    continue;
                }
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rustix::fs::makedev(
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                rustix::fs::mknodat(CWD, &target, file_type, Mode::from_bits_truncate(mode), dev)
                    .map_err(|e| Error::io(&target, e.into()))?;
            }
            other => {
                tracing::debug!(path = %rel.display(), kind = ?other, "skipping tar entry");
                continue;
            }
        }

        set_owner(
            &target,
            header.uid().unwrap_or(0),
            header.gid().unwrap_or(0),
            is_root,
        )?;
        if kind != EntryType::Symlink {
            // After chown, which clears setuid/setgid.
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&target, e))?;
        }
        if let Some(exts) = entry.pax_extensions().map_err(bad)? {
            for ext in exts.flatten() {
                let (Ok(key), value) = (ext.key(), ext.value_bytes()) else {
                    continue;
                };
                if let Some(xattr) = key.strip_prefix("SCHILY.xattr.")
                    && !xattr.starts_with("trusted.overlay.")
                    && let Err(e) =
                        rustix::fs::lsetxattr(&target, xattr, value, XattrFlags::empty())
                {
                    tracing::debug!(path = %rel.display(), xattr, error = %e, "xattr not set");
                }
            }
        }
        let mtime = header.mtime().unwrap_or(0);
        if is_dir {
            dirs.push((target, mtime));
        } else {
            set_mtime(&target, mtime)?;
        }
    }
    // Directory times last: creating their entries changed them.
    for (dir, mtime) in dirs.iter().rev() {
        set_mtime(dir, *mtime)?;
    }
    Ok(archive.into_inner())
}

/// The path relative to the layer root: leading `/` and `.` dropped, `..` refused. `None` is
/// the root itself.
fn clean(path: &Path) -> Result<Option<PathBuf>, Error> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::PathEscape(path.display().to_string()));
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<PathBuf, Error> {
    entry
        .link_name()
        .map_err(|e| Error::Invalid(format!("reading layer tar: {e}")))?
        .map(|l| l.into_owned())
        .ok_or_else(|| Error::Invalid("link entry without a target".into()))
}

/// Creates the directories above `rel` inside `dest` (mode 0755) and returns the parent
/// directory's path; refuses to go through anything that is not a real directory.
fn make_parents(dest: &Path, rel: &Path) -> Result<PathBuf, Error> {
    let mut dir = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(dir);
    };
    for c in parent.components() {
        dir.push(c);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::PathEscape(format!(
                    "{}: a parent is not a directory",
                    rel.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    Ok(dir)
}

/// `rel` inside `dest`, which must exist and be reached through real directories only.
fn existing_inside(dest: &Path, rel: &Path) -> Result<PathBuf, Error> {
    let mut p = dest.to_path_buf();
    let n = rel.components().count();
    for (i, c) in rel.components().enumerate() {
        p.push(c);
        let m = fs::symlink_metadata(&p).map_err(|_| {
            Error::Invalid(format!(
                "hardlink to {}, which is not in the layer",
                rel.display()
            ))
        })?;
        if i + 1 < n && !m.is_dir() {
            return Err(Error::PathEscape(format!(
                "hardlink to {} through a non-directory",
                rel.display()
            )));
        }
        if i + 1 == n && m.is_dir() {
            return Err(Error::Invalid(format!(
                "hardlink to directory {}",
                rel.display()
            )));
        }
    }
    Ok(p)
}

/// Makes room for a new entry: whatever is at `path` goes, except a directory that a directory
/// entry is about to describe again.
fn remove_existing(path: &Path, keep_dir: bool) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if !keep_dir {
                fs::remove_dir_all(path).map_err(|e| Error::io(path, e))?;
            }
        }
        Ok(_) => fs::remove_file(path).map_err(|e| Error::io(path, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    Ok(())
}

fn set_owner(path: &Path, uid: u64, gid: u64, is_root: bool) -> Result<(), Error> {
    if !is_root {
        return Ok(());
    }
    let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
        return Err(Error::Invalid(format!(
            "{}: owner {uid}:{gid} out of range",
            path.display()
        )));
    };
    rustix::fs::chownat(
        CWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io(path, e.into()))
}

fn set_mtime(path: &Path, mtime: u64) -> Result<(), Error> {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::io(path, e.into()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;
    use crate::image::testing::{LayerBuilder, is_root};

    fn unpack_into(tar: Vec<u8>) -> (tempfile::TempDir, Result<(), Error>) {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack(&tar[..], dir.path(), is_root()).map(|_| ());
        (dir, r)
    }

    #[test]
    fn files_dirs_links_and_metadata_are_unpacked() {
        let tar = LayerBuilder::new()
            .dir("etc", 0o755)
            .file_owned("etc/conf", b"x=1\n", 0o4750, 1000, 1001)
            .symlink("etc/link", "/etc/conf")
            .hardlink("etc/hard", "etc/conf")
            .file("deep/er/file", b"auto parents", 0o644)
            .build();
        let (dir, r) = unpack_into(tar);
        r.unwrap();
        let d = dir.path();
        assert_eq!(fs::read(d.join("etc/conf")).unwrap(), b"x=1\n");
        let m = fs::metadata(d.join("etc/conf")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4750);
        assert_eq!(m.mtime(), 1_700_000_000);
        if is_root() {
            assert_eq!((m.uid(), m.gid()), (1000, 1001));
        }
        assert_eq!(
            fs::read_link(d.join("etc/link")).unwrap(),
            Path::new("/etc/conf")
        );
        assert_eq!(fs::metadata(d.join("etc/hard")).unwrap().ino(), m.ino());
        assert_eq!(fs::read(d.join("deep/er/file")).unwrap(), b"auto parents");
        assert_eq!(fs::metadata(d.join("etc")).unwrap().mtime(), 1_700_000_000);
    }

    #[test]
    fn whiteouts_become_overlayfs_whiteouts() {
        if !is_root() {
            eprintln!("skipping: whiteouts are character devices, which need root");
            return;
        }
        let tar = LayerBuilder::new()
            .file("a/.wh.gone", b"", 0o644)
            .dir("opaque", 0o755)
            .file("opaque/.wh..wh..opq", b"", 0o644)
            .file("opaque/kept", b"k", 0o644)
            .file(".wh..wh.plnk", b"", 0o644)
            .build();
        let (dir, r) = unpack_into(tar);
        r.unwrap();
        let d = dir.path();
        let wh = fs::symlink_metadata(d.join("a/gone")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!d.join("a/.wh.gone").exists());
        let mut buf = [0u8; 4];
        let n = rustix::fs::lgetxattr(d.join("opaque"), OPAQUE_XATTR, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"y");
        assert!(!d.join("opaque/.wh..wh..opq").exists());
        assert_eq!(fs::read(d.join("opaque/kept")).unwrap(), b"k");
        assert!(!d.join(".wh..wh.plnk").exists());
    }

    #[test]
    fn device_nodes_and_fifos_are_created_as_root() {
        if !is_root() {
            eprintln!("skipping: device nodes need root");
            return;
        }
        let tar = LayerBuilder::new()
            .device("dev/null", EntryType::Char, 1, 3)
            .device("dev/fifo", EntryType::Fifo, 0, 0)
            .build();
        let (dir, r) = unpack_into(tar);
        r.unwrap();
        let m = fs::symlink_metadata(dir.path().join("dev/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
        assert!(
            fs::symlink_metadata(dir.path().join("dev/fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }

    #[test]
    fn parent_dir_components_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let tar = LayerBuilder::new().raw_file("../escaped", b"no").build();
        let (dir, r) = unpack_into(tar);
        assert!(matches!(r, Err(Error::PathEscape(_))), "{r:?}");
        assert!(!dir.path().parent().unwrap().join("escaped").exists());
        drop(outside);
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().to_str().unwrap().to_string();
        let tar = LayerBuilder::new()
            .symlink("evil", &target)
            .file("evil/planted", b"no", 0o644)
            .build();
        let (_dir, r) = unpack_into(tar);
        assert!(matches!(r, Err(Error::PathEscape(_))), "{r:?}");
        assert!(!outside.path().join("planted").exists());
    }

    #[test]
    fn a_file_entry_replaces_a_symlink_instead_of_following_it() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"original").unwrap();
        let tar = LayerBuilder::new()
            .symlink("f", victim.to_str().unwrap())
            .file("f", b"replaced", 0o644)
            .build();
        let (dir, r) = unpack_into(tar);
        r.unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"original");
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"replaced");
    }

    #[test]
    fn hardlinks_must_stay_inside_the_layer() {
        let tar = LayerBuilder::new()
            .hardlink("h", "../../etc/passwd")
            .build();
        let (_dir, r) = unpack_into(tar);
        assert!(matches!(r, Err(Error::PathEscape(_))), "{r:?}");
        let outside = tempfile::tempdir().unwrap();
        let tar = LayerBuilder::new()
            .symlink("s", outside.path().to_str().unwrap())
            .hardlink("h", "s/secret")
            .build();
        fs::write(outside.path().join("secret"), b"s").unwrap();
        let (_dir, r) = unpack_into(tar);
        assert!(matches!(r, Err(Error::PathEscape(_))), "{r:?}");
    }
}
