//! Copying files of this machine into a [`Tree`], exactly where the host has them.
//!
//! [`mirror`] walks a host path component by component the way the kernel resolves it: every
//! symlink met on the way (`/lib64 -> usr/lib64`, `libpcre2-8.so.0 -> libpcre2-8.so.0.11.2`) is
//! recorded in the image as a relative link and followed, so the image resolves the path the way
//! the host does, and no file is ever placed below a link. [`shared_libraries`] asks `ldd` which
//! libraries (and which dynamic loader) a binary needs.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::tree::Tree;

/// Fails with [`Error::MissingPackage`] naming `package` when `path` does not exist.
pub fn require(path: &Path, package: &'static str) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) if path.exists() => Ok(()),
        Ok(_) => Err(Error::MissingPackage {
            package,
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::MissingPackage {
            package,
            path: path.to_owned(),
        }),
        Err(e) => Err(Error::read(path, e)),
    }
}

/// Copies the host file (or directory, empty) at the absolute `path` into `tree` at the same
/// path, with every symlink on the way. Returns the image path of the final regular file or
/// directory.
pub fn mirror(tree: &mut Tree, path: &Path) -> Result<String> {
    mirror_at_depth(tree, path, 0)
}

fn mirror_at_depth(tree: &mut Tree, path: &Path, depth: u32) -> Result<String> {
    if depth > 40 {
        return Err(Error::Layout(format!(
            "too many symlinks resolving {}",
            path.display()
        )));
    }
    let path = normalize(path)
        .ok_or_else(|| Error::Layout(format!("{} is not an absolute path", path.display())))?;
    let parts: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let mut current = PathBuf::from("/");
    for (i, name) in parts.iter().enumerate() {
        let next = current.join(name);
        let meta = std::fs::symlink_metadata(&next).map_err(|e| Error::read(&next, e))?;
        let image_path = relative(&next);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&next).map_err(|e| Error::read(&next, e))?;
            let resolved = normalize(&current.join(&target)).ok_or_else(|| {
                Error::Layout(format!("{} points outside the root", next.display()))
            })?;
            tree.symlink(&image_path, &relative_link(&current, &resolved))?;
            let mut rest = resolved;
            rest.extend(&parts[i + 1..]);
            return mirror_at_depth(tree, &rest, depth + 1);
        }
        let last = i + 1 == parts.len();
        if meta.is_dir() {
            if last {
                tree.dir(&image_path, meta.permissions().mode() & 0o7777)?;
            }
        } else if last && meta.is_file() {
            let data = std::fs::read(&next).map_err(|e| Error::read(&next, e))?;
            tree.file(&image_path, meta.permissions().mode() & 0o7777, data)?;
        } else {
            return Err(Error::Layout(format!(
                "{} is neither a directory, a regular file nor a symlink",
                next.display()
            )));
        }
        current = next;
    }
    Ok(relative(&current))
}

/// Mirrors `binary` and every library `ldd` lists for it, the dynamic loader included.
pub fn mirror_with_libraries(tree: &mut Tree, binary: &Path) -> Result<()> {
    mirror(tree, binary)?;
    for library in shared_libraries(binary)? {
        mirror(tree, &library)?;
    }
    Ok(())
}

/// The absolute paths `ldd` resolves for a binary's shared libraries, the dynamic loader
/// included, in `ldd`'s order. A static binary has none.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let failed = |detail: String| Error::Libraries {
        binary: binary.to_owned(),
        detail,
    };
    let output = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| failed(format!("run ldd (Debian package libc-bin): {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stdout.contains("not a dynamic executable") || stderr.contains("not a dynamic executable") {
        return Ok(Vec::new());
    }
    if !output.status.success() {
        return Err(failed(format!(
            "ldd exited with {}: {stderr}",
            output.status
        )));
    }
    parse_ldd(&stdout).map_err(failed)
}

/// Parses `ldd` output: `name => /path (0x..)`, `/path/ld.so (0x..)`, and `linux-vdso.so.1 (0x..)`
/// (the kernel's, skipped).
fn parse_ldd(stdout: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let mut libraries = Vec::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let resolved = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!("library {} not found", name.trim()));
                }
                rest
            }
            None => line,
        };
        let path = resolved.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// Lexically resolves `.` and `..` in an absolute path; `None` if it is relative or climbs
/// above the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return None;
    }
    for component in components {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The image path (no leading slash) of an absolute host path.
fn relative(path: &Path) -> String {
    path.strip_prefix("/")
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The relative link target that leads from directory `from` to `to` (both absolute, clean).
fn relative_link(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut link = PathBuf::new();
    for _ in common..from.len() {
        link.push("..");
    }
    link.extend(&to[common..]);
    if link.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        link.to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed_with_the_loader_and_without_the_vdso() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f24)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f24)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.contains("libfoo.so.1"), "{err}");
    }

    #[test]
    fn link_targets_are_relative_to_the_link_directory() {
        assert_eq!(
            relative_link(Path::new("/"), Path::new("/usr/lib64")),
            "usr/lib64"
        );
        assert_eq!(
            relative_link(
                Path::new("/usr/lib64"),
                Path::new("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
            ),
            "../../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        );
        assert_eq!(
            relative_link(Path::new("/usr/bin"), Path::new("/usr/bin/redis")),
            "redis"
        );
        assert_eq!(
            normalize(Path::new("/usr/lib/../bin/./x")),
            Some(PathBuf::from("/usr/bin/x"))
        );
        assert_eq!(normalize(Path::new("/..")), None);
    }

    #[test]
    fn a_missing_file_names_its_package() {
        let err =
            require(Path::new("/nonexistent/stead-testimages/x"), "some-package").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("some-package"), "{message}");
        assert!(
            message.contains("/nonexistent/stead-testimages/x"),
            "{message}"
        );
    }

    #[test]
    fn mirroring_records_every_symlink_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/libx.so.1.2"), b"elf").unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("libx.so.1.2", root.join("usr/lib/libx.so.1")).unwrap();
        let mut tree = Tree::default();
        let last = mirror(&mut tree, &root.join("lib/libx.so.1")).unwrap();
        let base = relative(root);
        assert_eq!(last, format!("{base}/usr/lib/libx.so.1.2"));
        assert!(matches!(
            tree.get(&format!("{base}/lib")),
            Some(crate::tree::Node::Symlink { target }) if target == "usr/lib"
        ));
        assert!(matches!(
            tree.get(&format!("{base}/usr/lib/libx.so.1")),
            Some(crate::tree::Node::Symlink { target }) if target == "libx.so.1.2"
        ));
        assert!(matches!(
            tree.get(&format!("{base}/usr/lib/libx.so.1.2")),
            Some(crate::tree::Node::File { data, .. }) if data == b"elf"
        ));
    }
}
