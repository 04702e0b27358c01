//! Container config resolution, pure (upstream `kubecontainer.MakeEnvironmentVariables`,
//! `ExpandContainerCommandAndArgs`): the environment from `envFrom`, `env` (`value` with
//! `$(VAR)` expansion, `valueFrom` config maps, secrets, pod fields, resources), the final argv
//! from the image's entrypoint/cmd and the container's command/args, the user, and the cgroup
//! [`Limits`] from `resources`.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
};

use crate::runtime::{ImageConfig, Limits};

/// The API objects a pod refers to, fetched before its containers start. Missing means not
/// found.
#[derive(Debug, Clone, Default)]
pub struct Refs {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
    pub volumes: BTreeMap<String, PersistentVolume>,
}

impl Refs {
    /// The value of `key` in config map `name`: `Ok(None)` if the map or key is missing.
    pub fn config_map_key(&self, name: &str, key: &str) -> Option<Option<String>> {
        let cm = self.config_maps.get(name)?;
        Some(
            cm.data
                .as_ref()
                .and_then(|d| d.get(key).cloned())
                .or_else(|| {
                    cm.binary_data
                        .as_ref()
                        .and_then(|d| d.get(key))
                        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                }),
        )
    }

    pub fn secret_key(&self, name: &str, key: &str) -> Option<Option<String>> {
        let s = self.secrets.get(name)?;
        Some(
            s.data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .or_else(|| s.string_data.as_ref().and_then(|d| d.get(key).cloned())),
        )
    }
}

/// Why a container's config cannot be made (`CreateContainerConfigError`); messages as upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("unsupported resource: {0}")]
    Resource(String),
}

/// What pod fields (`fieldRef`) resolve to that the pod object may not hold yet.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub node_name: String,
}

/// Expands `$(VAR)` in `s` from `vars` as upstream: `$$` is a literal `$`, an unknown or
/// unclosed reference stays as written.
pub fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            match b[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = s[i + 2..].find(')') {
                        let name = &s[i + 2..i + 2 + end];
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&s[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = s[i..].chars().next().expect("char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A pod field for `fieldRef` (and downwardAPI files).
pub fn field_value(pod: &Pod, facts: &PodFacts, path: &str) -> Result<String, ConfigError> {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let map = |m: &Option<BTreeMap<String, String>>| {
        m.iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if let Some(key) = path
        .strip_prefix("metadata.labels['")
        .and_then(|r| r.strip_suffix("']"))
    {
        return Ok(m
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(key) = path
        .strip_prefix("metadata.annotations['")
        .and_then(|r| r.strip_suffix("']"))
    {
        return Ok(m
            .annotations
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => map(&m.labels),
        "metadata.annotations" => map(&m.annotations),
        "spec.nodeName" => spec
            .node_name
            .clone()
            .unwrap_or_else(|| facts.node_name.clone()),
        "spec.serviceAccountName" => spec.service_account_name.clone().unwrap_or_default(),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone().unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        other => return Err(ConfigError::FieldPath(other.to_string())),
    })
}

/// A `resourceFieldRef` value: the container's limit/request divided by `divisor` (rounded up),
/// a missing limit falling back to `node` (the node's allocatable CPU millicores / memory bytes).
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    node_cpu_millis: u64,
    node_memory: u64,
) -> Result<String, ConfigError> {
    let r = c.resources.clone().unwrap_or_default();
    let get =
        |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone());
    let (value_millis, default_divisor) = match resource {
        "limits.cpu" | "requests.cpu" => {
            let q = if resource == "limits.cpu" {
                get(&r.limits, "cpu")
            } else {
                get(&r.requests, "cpu")
            };
            (
                q.and_then(|q| parse_millis(&q))
                    .unwrap_or(if resource == "limits.cpu" {
                        node_cpu_millis
                    } else {
                        0
                    }) as u128,
                "1",
            )
        }
        "limits.memory"
        | "requests.memory"
        | "limits.ephemeral-storage"
        | "requests.ephemeral-storage" => {
            let (m, k) = resource.split_once('.').unwrap_or_default();
            let q = if m == "limits" {
                get(&r.limits, k)
            } else {
                get(&r.requests, k)
            };
            let fallback = if resource == "limits.memory" {
                node_memory
            } else {
                0
            };
            (
                q.and_then(|q| parse_bytes(&q)).unwrap_or(fallback) as u128 * 1000,
                "1",
            )
        }
        other => return Err(ConfigError::Resource(other.to_string())),
    };
    let divisor = divisor.unwrap_or(default_divisor);
    let d = parse_millis(divisor).filter(|d| *d > 0).unwrap_or(1000) as u128;
    Ok(value_millis.div_ceil(d).to_string())
}

/// The container's environment, in order: `envFrom`, then `env` (later names win; `value`s
/// expanded with the variables defined before them). Image env is not included.
pub fn resolve_env(
    pod: &Pod,
    c: &Container,
    refs: &Refs,
    facts: &PodFacts,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out: Vec<(String, String)> = vec![];
    let mut vars: HashMap<String, String> = HashMap::new();
    let set = |out: &mut Vec<(String, String)>,
               vars: &mut HashMap<String, String>,
               k: String,
               v: String| {
        if let Some(slot) = out.iter_mut().find(|(n, _)| *n == k) {
            slot.1 = v.clone();
        } else {
            out.push((k.clone(), v.clone()));
        }
        vars.insert(k, v);
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match refs.config_maps.get(&r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut out, &mut vars, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(ConfigError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &from.secret_ref {
            match refs.secrets.get(&r.name) {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        set(
                            &mut out,
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(ConfigError::SecretNotFound(r.name.clone())),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(from) = &e.value_from {
            if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match refs.config_map_key(&r.name, &r.key) {
                    Some(Some(v)) => v,
                    _ if optional => continue,
                    None => return Err(ConfigError::ConfigMapNotFound(r.name.clone())),
                    Some(None) => {
                        return Err(ConfigError::ConfigMapKey {
                            namespace: ns,
                            name: r.name.clone(),
                            key: r.key.clone(),
                        });
                    }
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match refs.secret_key(&r.name, &r.key) {
                    Some(Some(v)) => v,
                    _ if optional => continue,
                    None => return Err(ConfigError::SecretNotFound(r.name.clone())),
                    Some(None) => {
                        return Err(ConfigError::SecretKey {
                            namespace: ns,
                            name: r.name.clone(),
                            key: r.key.clone(),
                        });
                    }
                }
            } else if let Some(f) = &from.field_ref {
                field_value(pod, facts, &f.field_path)?
            } else if let Some(r) = &from.resource_field_ref {
                let target = match r.container_name.as_deref() {
                    Some(name) if !name.is_empty() => pod
                        .spec
                        .iter()
                        .flat_map(|s| s.containers.iter())
                        .find(|x| x.name == name)
                        .unwrap_or(c),
                    _ => c,
                };
                resource_value(
                    target,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    0,
                    0,
                )?
            } else {
                String::new()
            }
        } else {
            expand(e.value.as_deref().unwrap_or(""), &vars)
        };
        set(&mut out, &mut vars, e.name.clone(), value);
    }
    Ok(out)
}

/// The final argv: the container's command (else the image entrypoint) followed by its args
/// (else, only when it set no command, the image cmd), `$(VAR)` expanded from `env`.
pub fn command(c: &Container, image: &ImageConfig, env: &[(String, String)]) -> Vec<String> {
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let exp = |v: &Vec<String>| v.iter().map(|s| expand(s, &vars)).collect::<Vec<_>>();
    let command = c.command.clone().filter(|c| !c.is_empty());
    let args = c.args.clone().filter(|a| !a.is_empty());
    match (command, args) {
        (Some(cmd), Some(args)) => [exp(&cmd), exp(&args)].concat(),
        (Some(cmd), None) => exp(&cmd),
        (None, Some(args)) => [image.entrypoint.clone(), exp(&args)].concat(),
        (None, None) => [image.entrypoint.clone(), image.cmd.clone()].concat(),
    }
}

/// The final environment as `NAME=value`: the image's, overridden by the container's.
pub fn environment(image: &ImageConfig, env: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<(String, String)> = image
        .env
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    for (k, v) in env {
        match out.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `uid[:gid]` from the container's (else the pod's) securityContext, else the image's user.
pub fn user(pod: &Pod, c: &Container, image: &ImageConfig) -> Option<String> {
    let psc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let csc = c.security_context.clone().unwrap_or_default();
    let uid = csc.run_as_user.or(psc.run_as_user);
    let gid = csc.run_as_group.or(psc.run_as_group);
    match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => {
            let base = image.user.clone().unwrap_or_else(|| "0".into());
            let u = base.split(':').next().unwrap_or("0").to_string();
            Some(format!("{u}:{g}"))
        }
        (None, None) => image.user.clone().filter(|u| !u.is_empty()),
    }
}

/// `workingDir`, else the image's, else `/`.
pub fn working_dir(c: &Container, image: &ImageConfig) -> String {
    c.working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string())
}

/// The cgroup limits from `resources`.
pub fn limits(c: &Container) -> Limits {
    let r = c.resources.clone().unwrap_or_default();
    let get =
        |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone());
    Limits {
        cpu_millis: get(&r.limits, "cpu").and_then(|q| parse_millis(&q)),
        cpu_request_millis: get(&r.requests, "cpu").and_then(|q| parse_millis(&q)),
        memory_bytes: get(&r.limits, "memory").and_then(|q| parse_bytes(&q)),
    }
}

/// A quantity in thousandths, rounded up as upstream's `MilliValue` (`"500m"` → 500, `"1"` →
/// 1000, `"250000u"` → 250, `"1n"` → 1, `"1Gi"` → 1073741824000); `None` when it is not a
/// quantity or negative.
pub fn parse_millis(q: &str) -> Option<u64> {
    let value = stead_api::validation::quantity::parse(q)?;
    if value < 0.0 {
        return None;
    }
    let millis = value * 1000.0;
    // Decimal suffixes leave float noise (`0.1 * 1000` is not exactly 100): only a real
    // fraction rounds up.
    let nearest = millis.round();
    let millis = if (millis - nearest).abs() < 1e-6 {
        nearest
    } else {
        millis.ceil()
    };
    Some(millis as u64)
}

/// A quantity in whole units, rounded up (`"128Mi"` → 134217728, `"1G"` → 1000000000).
pub fn parse_bytes(q: &str) -> Option<u64> {
    parse_millis(q).map(|m| m.div_ceil(1000))
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
