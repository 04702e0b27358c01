//! The OCI image-spec documents stead reads (and their Docker v2 schema2 twins): indexes
//! (manifest lists), manifests, descriptors and image configs. Only the fields stead uses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::runtime::ImageConfig;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The annotation naming an image in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the full image name (`ctr export`, `nerdctl save`).
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Everything the manifest endpoint may answer, in the order stead prefers them.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image index or manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// An image manifest (OCI or Docker v2 schema2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest-endpoint document: which of the two it is, by media type or by shape.
pub enum ManifestDoc {
    Index(Index),
    Manifest(Manifest),
}

impl ManifestDoc {
    /// Parses `body`; `content_type` (the HTTP header, if any) decides when the body does not
    /// carry a `mediaType`.
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<ManifestDoc, String> {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
        let media_type = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .or(content_type)
            .unwrap_or("");
        if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
            return Err("docker schema 1 manifests are not supported".into());
        }
        let is_index = match media_type.split(';').next().unwrap_or("").trim() {
            OCI_INDEX | DOCKER_LIST => true,
            OCI_MANIFEST | DOCKER_MANIFEST => false,
            _ => v.get("manifests").is_some(),
        };
        if is_index {
            serde_json::from_value(v)
                .map(ManifestDoc::Index)
                .map_err(|e| format!("invalid image index: {e}"))
        } else {
            serde_json::from_value(v)
                .map(ManifestDoc::Manifest)
                .map_err(|e| format!("invalid image manifest: {e}"))
        }
    }
}

/// The image config blob.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ConfigFile {
    pub fn parse(body: &[u8]) -> Result<ConfigFile, String> {
        serde_json::from_slice(body).map_err(|e| format!("invalid image config: {e}"))
    }

    /// The parts a container uses.
    pub fn image_config(&self) -> ImageConfig {
        let c = self.config.clone().unwrap_or_default();
        ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.filter(|w| !w.is_empty()),
            user: c.user.filter(|u| !u.is_empty()),
        }
    }
}

/// The architecture this node runs, in OCI terms.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The manifest of an index to run on this node: linux on the host's architecture.
pub fn pick_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    let arch = host_architecture();
    manifests.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(os: &str, arch: &str, digest: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: os.into(),
                variant: None,
            }),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn index_picks_the_linux_manifest_of_the_host_architecture() {
        let list = [
            desc("unknown", "unknown", "a"),
            desc("linux", "s390x-not-host", "b"),
            desc("windows", host_architecture(), "c"),
            desc("linux", host_architecture(), "d"),
        ];
        assert_eq!(pick_platform(&list).unwrap().digest, "d");
        assert!(pick_platform(&list[..3]).is_none());
    }

    #[test]
    fn manifest_kind_comes_from_media_type_or_shape() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            ManifestDoc::parse(idx, None),
            Ok(ManifestDoc::Index(_))
        ));
        let m = br#"{"schemaVersion":2,"config":{"digest":"sha256:x","size":1},"layers":[]}"#;
        assert!(matches!(
            ManifestDoc::parse(m, Some(DOCKER_MANIFEST)),
            Ok(ManifestDoc::Manifest(_))
        ));
        assert!(ManifestDoc::parse(br#"{"schemaVersion":1}"#, None).is_err());
    }

    #[test]
    fn config_maps_to_image_config() {
        let c = ConfigFile::parse(
            br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/e"],"Cmd":["c"],"Env":["A=1"],"WorkingDir":"","User":"1000"},"rootfs":{"type":"layers","diff_ids":["sha256:a"]}}"#,
        )
        .unwrap();
        let ic = c.image_config();
        assert_eq!(ic.entrypoint, ["/e"]);
        assert_eq!(ic.cmd, ["c"]);
        assert_eq!(ic.env, ["A=1"]);
        assert_eq!(ic.working_dir, None);
        assert_eq!(ic.user.as_deref(), Some("1000"));
        assert_eq!(c.rootfs.diff_ids, ["sha256:a"]);
    }
}
