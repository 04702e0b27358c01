//! The docker-save tarball: one image, one layer, any number of names.
//!
//! Layout (what `docker save` writes and `docker load` reads):
//!
//! ```text
//! manifest.json            [{"Config": "<cfg>.json", "RepoTags": [...], "Layers": ["<l>/layer.tar"]}]
//! <cfg>.json               the image config; <cfg> is the hex sha256 of these bytes
//! <l>/layer.tar            the uncompressed layer; <l> is its hex sha256 (= its diff_id)
//! ```
//!
//! Entries are sorted, owned by root and stamped with [`MTIME`], so equal input gives equal bytes.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::tree::{CREATED, MTIME, sha256_digest};

/// The runtime defaults an image carries (the `config` object of the image config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// Like `80/tcp`.
    pub exposed_ports: Vec<String>,
    pub user: String,
    pub stop_signal: Option<String>,
}

impl RunConfig {
    fn to_json(&self) -> Value {
        let mut config = Map::new();
        config.insert("User".into(), json!(self.user));
        config.insert("Env".into(), json!(self.env));
        config.insert("Cmd".into(), json!(self.cmd));
        config.insert(
            "Entrypoint".into(),
            if self.entrypoint.is_empty() {
                Value::Null
            } else {
                json!(self.entrypoint)
            },
        );
        config.insert("WorkingDir".into(), json!(self.working_dir));
        if !self.exposed_ports.is_empty() {
            let ports: Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            config.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if let Some(signal) = &self.stop_signal {
            config.insert("StopSignal".into(), json!(signal));
        }
        Value::Object(config)
    }
}

/// The image config JSON for one layer with digest `diff_id`.
pub fn image_config(run: &RunConfig, diff_id: &str, created_by: &str) -> Vec<u8> {
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": run.to_json(),
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": CREATED, "created_by": created_by }],
    });
    serde_json::to_vec(&config).expect("json of strings")
}

/// Writes the tarball to `path` (through a temporary file beside it, renamed into place) and
/// returns the config digest (`sha256:...`), the image ID.
pub fn write(
    path: &Path,
    names: &[&str],
    run: &RunConfig,
    layer: &[u8],
    created_by: &str,
) -> Result<String> {
    let diff_id = sha256_digest(layer);
    let layer_hex = &diff_id["sha256:".len()..];
    let config = image_config(run, &diff_id, created_by);
    let config_id = sha256_digest(&config);
    let config_name = format!("{}.json", &config_id["sha256:".len()..]);
    let layer_name = format!("{layer_hex}/layer.tar");
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": names,
        "Layers": [layer_name],
    }]))
    .expect("json of strings");

    // `None` is the layer's directory; sorting puts it before its layer.tar.
    let mut entries: Vec<(String, Option<&[u8]>)> = vec![
        (format!("{layer_hex}/"), None),
        (config_name, Some(&config)),
        (layer_name, Some(layer)),
        ("manifest.json".to_owned(), Some(&manifest)),
    ];
    entries.sort();
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = match data {
            None => header(tar::EntryType::Directory, 0o755, 0),
            Some(data) => header(tar::EntryType::Regular, 0o644, data.len() as u64),
        };
        builder
            .append_data(&mut header, name, data.unwrap_or_default())
            .expect("tar into memory");
    }
    let bytes = builder.into_inner().expect("tar into memory");

    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| Error::write(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::write(path, e))?;
    Ok(config_id)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header
}
