//! Node-side reclaim of local-path volumes: the deleting half of stead's local-path provisioner
//! (the PV controller in `stead_controllers::volume` provisions and binds; this deletes).
//!
//! [`run_reclaimer`] watches PersistentVolumes. A volume provisioned by [`LOCAL_PATH_PROVISIONER`],
//! pinned to this node by its node affinity, `Released` (its claim is gone) and with reclaim
//! policy `Delete` gets its directory removed and then its object deleted. The directory is
//! removed only when it lies strictly inside the node's volumes dir (the Node annotation
//! [`VOLUMES_DIR_ANNOTATION`], default [`DEFAULT_VOLUMES_DIR`]) without passing through a
//! symlink; anything else is refused and the volume marked `Failed`, so nothing outside the
//! volumes dir is ever deleted. `Retain` volumes and their directories are kept.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

/// The provisioner name of stead's local-path provisioner (the same string as
/// `stead_controllers::volume::LOCAL_PATH_PROVISIONER`).
pub const LOCAL_PATH_PROVISIONER: &str = "stead.io/local-path";
/// Node annotation naming the directory local-path volumes of the node live under.
pub const VOLUMES_DIR_ANNOTATION: &str = "stead.io/volumes-dir";
/// The volumes dir of a node without the annotation.
pub const DEFAULT_VOLUMES_DIR: &str = "/var/lib/stead/volumes";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";

/// A volume this node must reclaim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaim {
    pub name: String,
    pub uid: String,
    pub path: String,
}

/// True when `pv` is a local-path volume pinned to `node` (its required node affinity says
/// `kubernetes.io/hostname In [node]`).
pub fn on_node(pv: &PersistentVolume, node: &str) -> bool {
    let provisioned = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY))
        .is_some_and(|p| p == LOCAL_PATH_PROVISIONER);
    let pinned = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .is_some_and(|r| {
            r.node_selector_terms.iter().any(|t| {
                t.match_expressions.iter().flatten().any(|e| {
                    e.key == "kubernetes.io/hostname"
                        && e.operator == "In"
                        && e.values.iter().flatten().any(|v| v == node)
                })
            })
        });
    provisioned && pinned
}

/// What to reclaim for `pv` on `node`, if anything.
pub fn decide(pv: &PersistentVolume, node: &str) -> Option<Reclaim> {
    let spec = pv.spec.as_ref()?;
    let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    let delete = spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete");
    if !(released && delete && on_node(pv, node)) {
        return None;
    }
    Some(Reclaim {
        name: pv.metadata.name.clone()?,
        uid: pv.metadata.uid.clone().unwrap_or_default(),
        path: spec
            .host_path
            .as_ref()
            .map(|h| h.path.clone())
            .unwrap_or_default(),
    })
}

/// `path` as a directory that may be removed: absolute, without `.`/`..`, strictly inside
/// `volumes_dir`. Pure; [`remove_volume_dir`] also checks the filesystem.
pub fn checked_path(path: &str, volumes_dir: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    let dir = Path::new(volumes_dir);
    let plain = |p: &Path| {
        p.is_absolute()
            && p.components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    if !plain(p) || !plain(dir) {
        return Err(format!(
            "path {path:?} or volumes dir {volumes_dir:?} is not a plain absolute path"
        ));
    }
    match p.strip_prefix(dir) {
        Ok(rest) if rest.components().next().is_some() => Ok(p.to_path_buf()),
        _ => Err(format!(
            "path {path:?} is not inside the volumes dir {volumes_dir:?}"
        )),
    }
}

/// Removes a volume's directory after [`checked_path`] and a check that no component between
/// the volumes dir and it is a symlink (a symlink at `path` itself is removed, not followed).
/// A missing directory is fine.
pub fn remove_volume_dir(path: &str, volumes_dir: &str) -> Result<(), RemoveError> {
    let p = checked_path(path, volumes_dir).map_err(RemoveError::Refused)?;
    let dir = Path::new(volumes_dir);
    let rest = p
        .strip_prefix(dir)
        .map_err(|e| RemoveError::Refused(e.to_string()))?;
    let io = |what: &Path, e: std::io::Error| RemoveError::Io(format!("{}: {e}", what.display()));
    let mut at = dir.to_path_buf();
    let count = rest.components().count();
    for (i, c) in rest.components().enumerate() {
        at.push(c);
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&at, e)),
        };
        let last = i + 1 == count;
        if meta.file_type().is_symlink() || (last && !meta.is_dir()) {
            if !last {
                return Err(RemoveError::Refused(format!(
                    "{} is a symlink",
                    at.display()
                )));
            }
            return std::fs::remove_file(&at).map_err(|e| io(&at, e));
        }
    }
    match std::fs::remove_dir_all(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&p, e)),
    }
}

/// Why a directory was not removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoveError {
    /// The path is not one this node may delete; never retried.
    #[error("refused: {0}")]
    Refused(String),
    /// The filesystem failed; retried.
    #[error("{0}")]
    Io(String),
}

async fn volumes_dir(client: &Client, node: &str) -> String {
    match Api::<Node>::all(client.clone()).get_opt(node).await {
        Ok(Some(n)) => n
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(VOLUMES_DIR_ANNOTATION))
            .filter(|d| !d.is_empty())
            .map(|d| d.trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_VOLUMES_DIR.to_string()),
        _ => DEFAULT_VOLUMES_DIR.to_string(),
    }
}

/// How one reclaim ended.
enum Outcome {
    Done,
    Refused(String),
    Retry(String),
}

async fn reclaim(client: &Client, node: &str, r: &Reclaim) -> Outcome {
    let dir = volumes_dir(client, node).await;
    let (path, d) = (r.path.clone(), dir.clone());
    match tokio::task::spawn_blocking(move || remove_volume_dir(&path, &d)).await {
        Ok(Ok(())) => {}
        Ok(Err(RemoveError::Refused(e))) => return Outcome::Refused(e),
        Ok(Err(e)) => return Outcome::Retry(e.to_string()),
        Err(e) => return Outcome::Retry(e.to_string()),
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(r.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match Api::<PersistentVolume>::all(client.clone())
        .delete(&r.name, &dp)
        .await
    {
        Ok(_) => Outcome::Done,
        Err(kube::Error::Api(s)) if s.is_not_found() => Outcome::Done,
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

/// Watches PersistentVolumes and reclaims the local-path volumes of node `node_name` (see the
/// module docs) until `shutdown`. Failed removals are retried every few seconds.
pub async fn run_reclaimer(
    client: Client,
    node_name: String,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut events = watcher::watcher(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    // Volumes waiting to be reclaimed (or retried), by name.
    let mut pending: BTreeMap<String, Reclaim> = BTreeMap::new();
    let mut retry = tokio::time::interval(Duration::from_secs(2));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            item = events.next() => match item {
                Some(Ok(Event::Apply(pv) | Event::InitApply(pv))) => {
                    let name = pv.metadata.name.clone().unwrap_or_default();
                    match decide(&pv, &node_name) {
                        Some(r) => { pending.insert(name, r); }
                        None => { pending.remove(&name); }
                    }
                }
                Some(Ok(Event::Delete(pv))) => {
                    pending.remove(pv.metadata.name.as_deref().unwrap_or_default());
                }
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "reclaimer: watch failed"),
                None => return,
            },
            _ = retry.tick() => {}
        }
        let work: Vec<Reclaim> = pending.values().cloned().collect();
        for r in work {
            match reclaim(&client, &node_name, &r).await {
                Outcome::Done => {
                    tracing::info!(pv = %r.name, path = %r.path, "reclaimer: deleted volume");
                    pending.remove(&r.name);
                }
                Outcome::Refused(why) => {
                    tracing::warn!(pv = %r.name, error = %why, "reclaimer: refusing to delete");
                    let body = json!({"status": {"phase": "Failed", "message": why}});
                    let _ = Api::<PersistentVolume>::all(client.clone())
                        .patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&body))
                        .await;
                    pending.remove(&r.name);
                }
                Outcome::Retry(why) => {
                    tracing::warn!(pv = %r.name, error = %why, "reclaimer: will retry");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(phase: &str, policy: &str, node: &str) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": "pvc-1", "uid": "u1",
                         "annotations": {PROVISIONED_BY: LOCAL_PATH_PROVISIONER}},
            "spec": {"persistentVolumeReclaimPolicy": policy,
                     "hostPath": {"path": "/v/pvc-1_default_www"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn only_released_delete_volumes_of_this_node_are_reclaimed() {
        assert_eq!(
            decide(&pv("Released", "Delete", "n1"), "n1"),
            Some(Reclaim {
                name: "pvc-1".into(),
                uid: "u1".into(),
                path: "/v/pvc-1_default_www".into()
            })
        );
        assert_eq!(decide(&pv("Bound", "Delete", "n1"), "n1"), None);
        assert_eq!(decide(&pv("Released", "Retain", "n1"), "n1"), None);
        assert_eq!(decide(&pv("Released", "Delete", "n2"), "n1"), None);
        let mut other = pv("Released", "Delete", "n1");
        other.metadata.annotations = None;
        assert_eq!(decide(&other, "n1"), None, "not provisioned by stead");
    }

    #[test]
    fn paths_outside_the_volumes_dir_are_refused() {
        assert!(checked_path("/v/pvc-1_default_www", "/v").is_ok());
        assert!(checked_path("/v", "/v").is_err(), "the dir itself");
        assert!(checked_path("/v/../etc", "/v").is_err());
        assert!(checked_path("/var/lib/other", "/v").is_err());
        assert!(checked_path("/vv/x", "/v").is_err());
        assert!(checked_path("relative/x", "/v").is_err());
    }

    #[test]
    fn a_symlink_inside_the_volumes_dir_is_removed_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let volumes = root.path().join("volumes");
        let outside = root.path().join("precious");
        std::fs::create_dir_all(&volumes).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("data"), "keep").unwrap();
        let link = volumes.join("pvc-2_default_x");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let dir = volumes.to_str().unwrap();
        remove_volume_dir(link.to_str().unwrap(), dir).unwrap();
        assert!(!link.exists());
        assert_eq!(
            std::fs::read_to_string(outside.join("data")).unwrap(),
            "keep"
        );
        // Through a symlinked parent: refused.
        std::os::unix::fs::symlink(&outside, volumes.join("sub")).unwrap();
        let through = volumes.join("sub/data");
        assert!(remove_volume_dir(through.to_str().unwrap(), dir).is_err());
        assert!(outside.join("data").exists());
        // A real directory with content goes; a missing one is fine.
        let real = volumes.join("pvc-3_default_y");
        std::fs::create_dir_all(real.join("deep")).unwrap();
        std::fs::write(real.join("deep/f"), "x").unwrap();
        remove_volume_dir(real.to_str().unwrap(), dir).unwrap();
        assert!(!real.exists());
        remove_volume_dir(real.to_str().unwrap(), dir).unwrap();
    }
}
