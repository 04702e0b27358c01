//! From the pod spec to the image store's terms, pure: `imagePullPolicy` → [`PullPolicy`] and
//! `imagePullSecrets` (`kubernetes.io/dockerconfigjson`, also the older `dockercfg`) →
//! [`RegistryAuth`], and the image-store errors → container waiting reasons.

use base64::Engine;
use k8s_openapi::api::core::v1::{Container, Secret};
use serde_json::Value;

use crate::runtime::{ImageError, PullPolicy, RegistryAuth};

/// `imagePullPolicy`, defaulted as the API server does (`Always` for `:latest` or no tag).
pub fn pull_policy(c: &Container) -> PullPolicy {
    match c.image_pull_policy.as_deref() {
        Some("Always") => PullPolicy::Always,
        Some("Never") => PullPolicy::Never,
        Some("IfNotPresent") => PullPolicy::IfNotPresent,
        _ => {
            let image = c.image.as_deref().unwrap_or("");
            let name = image.rsplit('/').next().unwrap_or(image);
            let tag = name
                .split('@')
                .next()
                .unwrap_or(name)
                .split_once(':')
                .map(|(_, t)| t);
            if image.contains('@') || tag.is_some_and(|t| t != "latest") {
                PullPolicy::IfNotPresent
            } else {
                PullPolicy::Always
            }
        }
    }
}

/// The credentials in pull secrets; secrets of other types or malformed ones give none.
pub fn registry_auths(secrets: &[Secret]) -> Vec<RegistryAuth> {
    let mut out = vec![];
    for s in secrets {
        let data = s.data.clone().unwrap_or_default();
        let config: Option<Value> = match s.type_.as_deref() {
            Some("kubernetes.io/dockerconfigjson") => data
                .get(".dockerconfigjson")
                .and_then(|b| serde_json::from_slice::<Value>(&b.0).ok())
                .and_then(|v| v.get("auths").cloned()),
            Some("kubernetes.io/dockercfg") => data
                .get(".dockercfg")
                .and_then(|b| serde_json::from_slice(&b.0).ok()),
            _ => None,
        };
        let Some(Value::Object(auths)) = config else {
            continue;
        };
        for (registry, entry) in auths {
            let mut username = entry["username"].as_str().unwrap_or("").to_string();
            let mut password = entry["password"].as_str().unwrap_or("").to_string();
            if let Some(auth) = entry["auth"].as_str()
                && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(auth)
                && let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':')
            {
                username = u.to_string();
                password = p.to_string();
            }
            out.push(RegistryAuth {
                registry,
                username,
                password,
            });
        }
    }
    out
}

/// The waiting reason for a failed `ensure`.
pub fn failure_reason(e: &ImageError) -> &'static str {
    match e {
        ImageError::InvalidName(_) => "InvalidImageName",
        ImageError::NeverPull(_) => "ErrImageNeverPull",
        ImageError::Pull(_) => "ErrImagePull",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_string),
            ..Container::default()
        }
    }

    #[test]
    fn pull_policy_follows_the_spec_or_the_tag() {
        assert_eq!(
            pull_policy(&container("redis:7", Some("Never"))),
            PullPolicy::Never
        );
        assert_eq!(
            pull_policy(&container("redis:7", None)),
            PullPolicy::IfNotPresent
        );
        assert_eq!(pull_policy(&container("redis", None)), PullPolicy::Always);
        assert_eq!(
            pull_policy(&container("redis:latest", None)),
            PullPolicy::Always
        );
        assert_eq!(
            pull_policy(&container("localhost:5000/redis", None)),
            PullPolicy::Always
        );
    }

    #[test]
    fn docker_config_json_secrets_give_registry_credentials() {
        let cfg = json!({"auths": {
            "localhost:5000": {"auth": base64::engine::general_purpose::STANDARD.encode("bob:s3cret")},
            "other": {"username": "u", "password": "p"},
        }});
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "pull"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(cfg.to_string())},
        }))
        .unwrap();
        let opaque: Secret =
            serde_json::from_value(json!({"metadata": {"name": "x"}, "type": "Opaque"})).unwrap();
        assert_eq!(
            registry_auths(&[secret, opaque]),
            vec![
                RegistryAuth {
                    registry: "localhost:5000".into(),
                    username: "bob".into(),
                    password: "s3cret".into()
                },
                RegistryAuth {
                    registry: "other".into(),
                    username: "u".into(),
                    password: "p".into()
                },
            ]
        );
    }
}
