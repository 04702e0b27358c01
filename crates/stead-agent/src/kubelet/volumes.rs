//! Pod volumes on the node: [`plan`] decides, purely, what each volume is on disk (an emptyDir
//! directory, rendered configMap/secret/downwardAPI/projected files, a hostPath, a PV's
//! directory); [`apply`] makes it so; [`mounts`] turns a container's `volumeMounts` into bind
//! mounts. Rendered files are swapped atomically as upstream's atomic writer does: the files live
//! in a timestamped directory, `..data` is a symlink to it, and each top-level name a symlink
//! through `..data`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod};

use super::env::{PodFacts, Refs, field_value, resource_value};
use crate::runtime::Mount;

/// One file of a rendered volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative path inside the volume.
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// What a volume is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory the kubelet creates (emptyDir; `memory` for `medium: Memory`).
    EmptyDir { path: PathBuf, memory: bool },
    /// Files rendered by the kubelet.
    Files { path: PathBuf, files: Vec<File> },
    /// A path on the host, checked (or created) by `type`.
    HostPath { path: PathBuf, kind: String },
    /// A persistent volume's directory (created if missing).
    Persistent { path: PathBuf, read_only: bool },
}

impl Source {
    pub fn host_path(&self) -> &Path {
        match self {
            Source::EmptyDir { path, .. }
            | Source::Files { path, .. }
            | Source::HostPath { path, .. }
            | Source::Persistent { path, .. } => path,
        }
    }

    /// Rendered volumes are always mounted read-only (upstream since 1.9.4).
    fn read_only(&self) -> bool {
        matches!(self, Source::Files { .. })
            || matches!(
                self,
                Source::Persistent {
                    read_only: true,
                    ..
                }
            )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("secret references non-existent secret key: {0}")]
    SecretKey(String),
    #[error("persistentvolumeclaim \"{0}\" not found")]
    ClaimNotFound(String),
    #[error("persistentvolumeclaim \"{0}\" is not bound")]
    ClaimNotBound(String),
    #[error("persistentvolume \"{0}\" has no hostPath or local path")]
    NoLocalPath(String),
    #[error("volume {0}: {1}")]
    Field(String, String),
    #[error("volume {0}: unsupported volume type")]
    Unsupported(String),
    #[error("hostPath type check failed: {path} is not a {kind}")]
    HostPathType { path: String, kind: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// `<pod_dir>/volumes/<plugin>/<name>`.
fn volume_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir.join("volumes").join(plugin).join(name)
}

/// Keys of a map rendered as files: all keys, or `items`.
fn select(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    optional: bool,
    missing: impl Fn(String) -> VolumeError,
) -> Result<Vec<File>, VolumeError> {
    match items {
        None => Ok(data
            .iter()
            .map(|(k, v)| File {
                path: k.clone(),
                data: v.clone(),
                mode: default_mode,
            })
            .collect()),
        Some(items) => {
            let mut out = vec![];
            for i in items {
                match data.get(&i.key) {
                    Some(v) => out.push(File {
                        path: i.path.clone(),
                        data: v.clone(),
                        mode: i.mode.map_or(default_mode, |m| m as u32),
                    }),
                    None if optional => {}
                    None => return Err(missing(i.key.clone())),
                }
            }
            Ok(out)
        }
    }
}

/// The two kinds of object whose keys become files.
#[derive(Clone, Copy)]
enum Keyed {
    ConfigMap,
    Secret,
}

impl Keyed {
    /// The object's keys and values (`binaryData` too for a config map); `None` when absent.
    fn data(self, refs: &Refs, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        match self {
            Keyed::ConfigMap => {
                let cm = refs.config_maps.get(name)?;
                let text = cm.data.iter().flatten();
                let binary = cm.binary_data.iter().flatten();
                Some(
                    text.map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                        .chain(binary.map(|(k, v)| (k.clone(), v.0.clone())))
                        .collect(),
                )
            }
            Keyed::Secret => {
                let s = refs.secrets.get(name)?;
                Some(
                    s.data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.0.clone()))
                        .collect(),
                )
            }
        }
    }

    /// The object's files (`None` items = every key); `Ok(vec![])` for a missing optional one.
    fn files(
        self,
        refs: &Refs,
        name: &str,
        items: Option<&Vec<KeyToPath>>,
        mode: u32,
        optional: bool,
    ) -> Result<Vec<File>, VolumeError> {
        let missing_key = match self {
            Keyed::ConfigMap => VolumeError::ConfigMapKey,
            Keyed::Secret => VolumeError::SecretKey,
        };
        match self.data(refs, name) {
            Some(d) => select(&d, items, mode, optional, missing_key),
            None if optional => Ok(vec![]),
            None => Err(match self {
                Keyed::ConfigMap => VolumeError::ConfigMapNotFound(name.to_string()),
                Keyed::Secret => VolumeError::SecretNotFound(name.to_string()),
            }),
        }
    }
}

fn downward_files(
    pod: &Pod,
    facts: &PodFacts,
    volume: &str,
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
    mode: u32,
) -> Result<Vec<File>, VolumeError> {
    let mut out = vec![];
    for i in items {
        let value = if let Some(f) = &i.field_ref {
            field_value(pod, facts, &f.field_path)
        } else if let Some(r) = &i.resource_field_ref {
            let c = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .find(|c| Some(c.name.as_str()) == r.container_name.as_deref());
            match c {
                Some(c) => resource_value(
                    c,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    0,
                    0,
                ),
                None => Ok(String::new()),
            }
        } else {
            Ok(String::new())
        };
        let value = value.map_err(|e| VolumeError::Field(volume.to_string(), e.to_string()))?;
        out.push(File {
            path: i.path.clone(),
            data: value.into_bytes(),
            mode: i.mode.map_or(mode, |m| m as u32),
        });
    }
    Ok(out)
}

/// What every volume of `pod` is, by volume name.
pub fn plan(
    pod: &Pod,
    refs: &Refs,
    facts: &PodFacts,
    pod_dir: &Path,
) -> Result<BTreeMap<String, Source>, VolumeError> {
    let mut out = BTreeMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let name = v.name.clone();
        let source = if let Some(e) = &v.empty_dir {
            Source::EmptyDir {
                path: volume_dir(pod_dir, "empty-dir", &name),
                memory: e.medium.as_deref() == Some("Memory"),
            }
        } else if let Some(cm) = &v.config_map {
            let mode = cm.default_mode.map_or(0o644, |m| m as u32);
            let files = Keyed::ConfigMap.files(
                refs,
                &cm.name,
                cm.items.as_ref(),
                mode,
                cm.optional == Some(true),
            )?;
            Source::Files {
                path: volume_dir(pod_dir, "configmap", &name),
                files,
            }
        } else if let Some(s) = &v.secret {
            let mode = s.default_mode.map_or(0o644, |m| m as u32);
            let secret = s.secret_name.clone().unwrap_or_default();
            let files = Keyed::Secret.files(
                refs,
                &secret,
                s.items.as_ref(),
                mode,
                s.optional == Some(true),
            )?;
            Source::Files {
                path: volume_dir(pod_dir, "secret", &name),
                files,
            }
        } else if let Some(d) = &v.downward_api {
            let mode = d.default_mode.map_or(0o644, |m| m as u32);
            let files = downward_files(
                pod,
                facts,
                &name,
                d.items.as_deref().unwrap_or_default(),
                mode,
            )?;
            Source::Files {
                path: volume_dir(pod_dir, "downward-api", &name),
                files,
            }
        } else if let Some(p) = &v.projected {
            let mode = p.default_mode.map_or(0o644, |m| m as u32);
            let mut files = vec![];
            for s in p.sources.iter().flatten() {
                if let Some(cm) = &s.config_map {
                    files.extend(Keyed::ConfigMap.files(
                        refs,
                        &cm.name,
                        cm.items.as_ref(),
                        mode,
                        cm.optional == Some(true),
                    )?);
                }
                if let Some(sec) = &s.secret {
                    files.extend(Keyed::Secret.files(
                        refs,
                        &sec.name,
                        sec.items.as_ref(),
                        mode,
                        sec.optional == Some(true),
                    )?);
                }
                if let Some(d) = &s.downward_api {
                    files.extend(downward_files(
                        pod,
                        facts,
                        &name,
                        d.items.as_deref().unwrap_or_default(),
                        mode,
                    )?);
                }
            }
            Source::Files {
                path: volume_dir(pod_dir, "projected", &name),
                files,
            }
        } else if let Some(h) = &v.host_path {
            Source::HostPath {
                path: PathBuf::from(&h.path),
                kind: h.type_.clone().unwrap_or_default(),
            }
        } else if let Some(c) = &v.persistent_volume_claim {
            let claim = refs
                .claims
                .get(&c.claim_name)
                .ok_or_else(|| VolumeError::ClaimNotFound(c.claim_name.clone()))?;
            let pv_name = claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| VolumeError::ClaimNotBound(c.claim_name.clone()))?;
            let pv = refs
                .volumes
                .get(&pv_name)
                .ok_or_else(|| VolumeError::ClaimNotBound(c.claim_name.clone()))?;
            let spec = pv.spec.clone().unwrap_or_default();
            let path = spec
                .host_path
                .map(|h| h.path)
                .or(spec.local.map(|l| l.path))
                .ok_or_else(|| VolumeError::NoLocalPath(pv_name.clone()))?;
            Source::Persistent {
                path: PathBuf::from(path),
                read_only: c.read_only == Some(true),
            }
        } else {
            return Err(VolumeError::Unsupported(name));
        };
        out.insert(name, source);
    }
    Ok(out)
}

/// The bind mounts of `c`'s `volumeMounts` (`subPath` under the volume; read-only if the mount,
/// or the volume kind, says so).
pub fn mounts(c: &Container, volumes: &BTreeMap<String, Source>) -> Vec<Mount> {
    c.volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let v = volumes.get(&m.name)?;
            let mut host_path = v.host_path().to_path_buf();
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                host_path = host_path.join(sub);
            }
            Some(Mount {
                host_path,
                container_path: m.mount_path.clone(),
                read_only: m.read_only == Some(true) || v.read_only(),
            })
        })
        .collect()
}

fn io(path: &Path, e: std::io::Error) -> VolumeError {
    VolumeError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Makes every volume exist on disk: creates directories, renders files (only when they
/// changed), checks hostPath types, creates PV directories.
pub fn apply(volumes: &BTreeMap<String, Source>) -> Result<(), VolumeError> {
    use std::fs;
    use std::os::unix::fs::FileTypeExt;
    for v in volumes.values() {
        match v {
            Source::EmptyDir { path, .. } | Source::Persistent { path, .. } => {
                fs::create_dir_all(path).map_err(|e| io(path, e))?;
            }
            Source::Files { path, files } => write_atomically(path, files)?,
            Source::HostPath { path, kind } => {
                let meta = fs::metadata(path);
                let fail = || VolumeError::HostPathType {
                    path: path.display().to_string(),
                    kind: kind.clone(),
                };
                match kind.as_str() {
                    "DirectoryOrCreate" => fs::create_dir_all(path).map_err(|e| io(path, e))?,
                    "FileOrCreate" if meta.is_err() => {
                        if let Some(parent) = path.parent() {
                            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                        }
                        fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)
                            .map_err(|e| io(path, e))?;
                    }
                    "Directory" if !meta.as_ref().is_ok_and(|m| m.is_dir()) => return Err(fail()),
                    "File" if !meta.as_ref().is_ok_and(|m| m.is_file()) => return Err(fail()),
                    "Socket" if !meta.as_ref().is_ok_and(|m| m.file_type().is_socket()) => {
                        return Err(fail());
                    }
                    "CharDevice"
                        if !meta.as_ref().is_ok_and(|m| m.file_type().is_char_device()) =>
                    {
                        return Err(fail());
                    }
                    "BlockDevice"
                        if !meta.as_ref().is_ok_and(|m| m.file_type().is_block_device()) =>
                    {
                        return Err(fail());
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Reads back the files currently published under `dir` (through `..data`).
fn current_files(dir: &Path) -> Option<Vec<File>> {
    use std::os::unix::fs::PermissionsExt;
    let data = dir.join("..data");
    let target = std::fs::canonicalize(&data).ok()?;
    let mut out = vec![];
    let mut stack = vec![target.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            let meta = e.metadata().ok()?;
            if meta.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&target).ok()?.to_string_lossy().into_owned();
                out.push(File {
                    path: rel,
                    data: std::fs::read(&p).ok()?,
                    mode: meta.permissions().mode() & 0o7777,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Some(out)
}

/// Publishes `files` under `dir` atomically: a new timestamped directory, then `..data` swapped
/// to it by rename, then top-level symlinks; the old directory and stale links go.
pub fn write_atomically(dir: &Path, files: &[File]) -> Result<(), VolumeError> {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    let mut wanted = files.to_vec();
    wanted.sort_by(|a, b| a.path.cmp(&b.path));
    if current_files(dir).as_ref() == Some(&wanted) {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let stamp = format!(
        "..{}",
        jiff::Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S.%f")
    );
    let fresh = dir.join(&stamp);
    for f in &wanted {
        let p = fresh.join(&f.path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        fs::write(&p, &f.data).map_err(|e| io(&p, e))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode)).map_err(|e| io(&p, e))?;
    }
    let old = fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).map_err(|e| io(&tmp, e))?;
    fs::rename(&tmp, dir.join("..data")).map_err(|e| io(dir, e))?;
    let tops: std::collections::BTreeSet<String> = wanted
        .iter()
        .filter_map(|f| f.path.split('/').next().map(str::to_string))
        .collect();
    for top in &tops {
        let link = dir.join(top);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(top), &link)
                .map_err(|e| io(&link, e))?;
        }
    }
    for e in fs::read_dir(dir).map_err(|e| io(dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !tops.contains(&name) {
            let _ = fs::remove_file(e.path());
        }
    }
    if let Some(old) = old
        && old != Path::new(&stamp)
    {
        let _ = fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

#[cfg(test)]
#[path = "volumes_tests.rs"]
mod tests;
