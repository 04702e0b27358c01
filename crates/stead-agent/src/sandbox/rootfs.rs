//! The container process's own setup, in the child the shim forks (already in its PID
//! namespace, its own or the pod's shared one): join the pod's net/UTS/IPC namespaces and the container cgroup, build the root
//! filesystem in a new mount namespace (overlay of the image layers, `/proc`, minimal `/dev`,
//! read-only `/sys`, the pod's files and the volume mounts), `pivot_root`, user, working dir,
//! exec.

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};

use super::container_user::resolve_user;
use super::helper::{ctx, exec_in_root, with_defaults};
use super::state::Launch;

/// The container's init path, in the forked child: namespaces, cgroup, root filesystem, user,
/// then exec. Returns only on failure, with the message for the exit record.
pub(super) fn start_container(
    launch: &Launch,
    other_ns: &[(File, CloneFlags)],
    console: Option<&std::os::fd::OwnedFd>,
) -> Result<std::convert::Infallible, String> {
    for (ns, kind) in other_ns {
        setns(ns.as_fd(), *kind).map_err(ctx("setns"))?;
    }
    for procs in &launch.cgroup_procs {
        fs::write(procs, "0").map_err(ctx(&format!("join cgroup {}", procs.display())))?;
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(ctx("unshare mount"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(ctx("make / private"))?;
    umask(Mode::empty());
    build_rootfs(launch)?;
    pivot_into(&launch.rootfs)?;
    let (uid, gid, groups, home) = resolve_user(launch.user.as_deref(), Path::new("/"))?;
    if let Some(console) = console {
        super::shim::take_console(console, uid, gid)?;
    }
    umask(Mode::from_bits_truncate(0o022));

    let env = with_defaults(&launch.env);
    let mut env = env;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    let cwd = if launch.working_dir.is_empty() {
        "/"
    } else {
        launch.working_dir.as_str()
    };
    let _ = fs::create_dir_all(cwd);
    let mut all_groups = vec![Gid::from_raw(gid)];
    all_groups.extend(groups.into_iter().map(Gid::from_raw));
    setgroups(&all_groups).map_err(ctx("setgroups"))?;
    setgid(Gid::from_raw(gid)).map_err(ctx("setgid"))?;
    setuid(Uid::from_raw(uid)).map_err(ctx("setuid"))?;
    std::env::set_current_dir(cwd)
        .map_err(ctx(&format!("chdir to cwd (\"{cwd}\") set in config.json")))?;
    exec_in_root(&launch.command, &env)
}

/// `path` inside `root` (no symlink resolution: container paths are taken literally).
/// `path` inside `root`, following the image's symlinks as the container would see them
/// (absolute links and `..` stay inside `root`), so that a mount point never lands on the
/// host: with `/var/run -> /run` in the image, `/var/run/secrets` is `<root>/run/secrets`.
pub(super) fn in_root(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => {}
            ".." => {
                resolved.pop();
            }
            _ => {
                let candidate = resolved.join(&part);
                match fs::read_link(root.join(&candidate)) {
                    Ok(target) if hops < 40 => {
                        hops += 1;
                        let target = target.to_string_lossy().into_owned();
                        if target.starts_with('/') {
                            resolved = PathBuf::new();
                        }
                        let mut more = components(&target);
                        more.reverse();
                        pending.extend(more);
                    }
                    _ => resolved = candidate,
                }
            }
        }
    }
    root.join(resolved)
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

fn mnt(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        format!(
            "mount {} on {}: {e}",
            fstype.or(src).unwrap_or("?"),
            target.display()
        )
    })
}

fn build_rootfs(launch: &Launch) -> Result<(), String> {
    let root = &launch.rootfs;
    let lower: Vec<String> = launch
        .layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        launch.upper.display(),
        launch.work.display()
    );
    mnt(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(&options),
    )?;

    let proc_dir = in_root(root, "/proc");
    fs::create_dir_all(&proc_dir).map_err(ctx("mkdir /proc"))?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mnt(Some("proc"), &proc_dir, Some("proc"), nosuid, None)?;

    let sys = in_root(root, "/sys");
    fs::create_dir_all(&sys).map_err(ctx("mkdir /sys"))?;
    mnt(
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        nosuid | MsFlags::MS_RDONLY,
        None,
    )?;

    build_dev(&in_root(root, "/dev"))?;

    for (source, target, read_only) in &launch.mounts {
        bind(source, &in_root(root, target), *read_only)?;
    }
    Ok(())
}

fn build_dev(dev: &Path) -> Result<(), String> {
    fs::create_dir_all(dev).map_err(ctx("mkdir /dev"))?;
    mnt(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        mknod(
            &dev.join(name),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(ctx(&format!("mknod /dev/{name}")))?;
    }
    let pts = dev.join("pts");
    fs::create_dir_all(&pts).map_err(ctx("mkdir /dev/pts"))?;
    mnt(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    let shm = dev.join("shm");
    fs::create_dir_all(&shm).map_err(ctx("mkdir /dev/shm"))?;
    mnt(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(link)).map_err(ctx(&format!("symlink /dev/{link}")))?;
    }
    Ok(())
}

/// Bind-mounts `source` on `target`, creating the mount point (a directory or an empty file,
/// like the source).
fn bind(source: &Path, target: &Path, read_only: bool) -> Result<(), String> {
    let is_dir = fs::metadata(source)
        .map_err(ctx(&format!("mount source {}", source.display())))?
        .is_dir();
    if is_dir {
        fs::create_dir_all(target).map_err(ctx(&format!("mkdir {}", target.display())))?;
    } else if !target.exists() {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(ctx(&format!("mkdir {}", parent.display())))?;
        }
        File::create(target).map_err(ctx(&format!("create {}", target.display())))?;
    }
    let src = source.to_str().ok_or("non-UTF-8 mount source")?;
    mnt(
        Some(src),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if read_only {
        mnt(
            None,
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

fn pivot_into(root: &Path) -> Result<(), String> {
    std::env::set_current_dir(root).map_err(ctx("chdir rootfs"))?;
    nix::unistd::pivot_root(".", ".").map_err(ctx("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(ctx("detach old root"))?;
    std::env::set_current_dir("/").map_err(ctx("chdir /"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_follow_image_symlinks_without_leaving_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("run")).unwrap();
        fs::create_dir_all(r.join("var")).unwrap();
        symlink("/run", r.join("var/run")).unwrap();
        symlink("../../../../etc", r.join("run/up")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            in_root(r, "/var/run/secrets/token"),
            r.join("run/secrets/token")
        );
        assert_eq!(in_root(r, "/run/up/passwd"), r.join("etc/passwd"));
        assert_eq!(in_root(r, "/../../x"), r.join("x"));
        assert_eq!(in_root(r, "/data/./a/"), r.join("data/a"));
        assert_eq!(in_root(r, "/loop/x"), r.join("loop/x"));
    }
}
