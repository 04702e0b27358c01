//! What every test image starts from: the root layout, users, and busybox with its applets.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};
use crate::host::{mirror, mirror_with_libraries, require};
use crate::tree::Tree;

/// `PATH` of every image (upstream images use the same).
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The host busybox every image carries, and the package that provides it.
pub const BUSYBOX: &str = "/bin/busybox";
pub const BUSYBOX_PACKAGE: &str = "busybox-static";

/// A login entry: name, uid (= gid), home.
pub struct User {
    pub name: &'static str,
    pub id: u32,
    pub home: &'static str,
}

const ROOT: User = User {
    name: "root",
    id: 0,
    home: "/root",
};
const NOBODY: User = User {
    name: "nobody",
    id: 65534,
    home: "/nonexistent",
};

/// The root layout: the host's top-level links (`bin -> usr/bin` on a merged-/usr Debian),
/// `/etc` with passwd/group for root, nobody and `users`, mount points the runtime fills
/// (`/dev`, `/proc`, `/sys`, `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`), `/tmp` (1777)
/// and `/root`.
pub fn root_layout(users: &[User]) -> Result<Tree> {
    let mut tree = Tree::default();
    for top in ["/bin", "/sbin", "/lib", "/lib64"] {
        if Path::new(top).exists() {
            mirror(&mut tree, Path::new(top))?;
        }
    }
    for dir in ["dev", "proc", "sys", "run", "etc", "var", "usr/local/bin"] {
        tree.dir(dir, 0o755)?;
    }
    tree.dir("tmp", 0o1777)?;
    tree.dir("var/tmp", 0o1777)?;
    tree.dir("root", 0o700)?;

    let all: Vec<&User> = [&ROOT].into_iter().chain(users).chain([&NOBODY]).collect();
    let mut passwd = String::new();
    let mut group = String::new();
    for user in &all {
        let shell = if user.id == 0 {
            "/bin/sh"
        } else {
            "/bin/false"
        };
        let (name, id, home) = (user.name, user.id, user.home);
        passwd.push_str(&format!("{name}:x:{id}:{id}:{name}:{home}:{shell}\n"));
        group.push_str(&format!("{name}:x:{id}:\n"));
    }
    tree.file("etc/passwd", 0o644, passwd)?;
    tree.file("etc/group", 0o644, group)?;
    tree.file(
        "etc/nsswitch.conf",
        0o644,
        "passwd: files\ngroup: files\nhosts: files dns\n",
    )?;
    for empty in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
        tree.file(empty, 0o644, Vec::new())?;
    }
    Ok(tree)
}

/// Adds the static busybox at its host path and one link per applet beside it (`sh`, `wget`,
/// `nslookup`, ...), leaving alone paths the image already has.
pub fn add_busybox(tree: &mut Tree) -> Result<()> {
    require(Path::new(BUSYBOX), BUSYBOX_PACKAGE)?;
    // Static from busybox-static; a dynamic busybox brings its libraries along.
    mirror_with_libraries(tree, Path::new(BUSYBOX))?;
    let binary = mirror(tree, Path::new(BUSYBOX))?;
    let (dir, name) = binary
        .rsplit_once('/')
        .ok_or_else(|| Error::Layout(format!("busybox at the image root: {binary}")))?;
    for applet in applets()? {
        let path = format!("{dir}/{applet}");
        if applet != name && tree.get(&path).is_none() {
            tree.symlink(&path, name)?;
        }
    }
    Ok(())
}

/// `busybox --list`: the applets the host busybox was built with.
pub fn applets() -> Result<Vec<String>> {
    let command = format!("{BUSYBOX} --list");
    let output = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(Error::Command {
            command,
            detail: format!("exited with {}", output.status),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .map(str::to_owned)
        .collect())
}
