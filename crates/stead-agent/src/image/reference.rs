//! Image references, normalised the way docker and containerd do it: `redis:5-alpine` is
//! `docker.io/library/redis:5-alpine`, `busybox` is `docker.io/library/busybox:latest`,
//! `localhost:5000/x:y` keeps its registry, `name@sha256:<hex>` pins a manifest.
//!
//! The grammar is the distribution reference grammar: a name of lower-case path components
//! (separated by `.`, `_`, `__` or runs of `-`) with an optional registry host in front (a first
//! component with a `.` or a `:`, or `localhost`), an optional `:tag` and an optional
//! `@algorithm:hex` digest.

use std::fmt;

/// The registry that names without a host belong to.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `registry.k8s.io`, `localhost:5000`, `[::1]:5000`.
    pub domain: String,
    /// The repository path on the registry: `library/redis`, `nginx-slim`.
    pub path: String,
    /// The tag; `latest` when the reference had neither tag nor digest.
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference pinned a manifest.
    pub digest: Option<String>,
}

/// Why a reference does not parse (the kubelet's `InvalidImageName`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {reference:?}: {reason}")]
pub struct ParseError {
    pub reference: String,
    pub reason: &'static str,
}

impl Reference {
    /// Parses and normalises `s`.
    pub fn parse(s: &str) -> Result<Reference, ParseError> {
        let err = |reason| ParseError {
            reference: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(err("empty reference"));
        }
        if is_hex64(s) {
            return Err(err("cannot specify 64-byte hexadecimal strings"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(err)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag follows the last `:` that comes after the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                let tag = &rest[i + 1..];
                if !valid_tag(tag) {
                    return Err(err("invalid tag"));
                }
                (&rest[..i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(err("empty name"));
        }
        if name.len() > 255 {
            return Err(err("repository name must not be more than 255 characters"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if !valid_domain(&domain) {
            return Err(err("invalid registry host"));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase"));
        }
        if !path.split('/').all(valid_component) {
            return Err(err("invalid repository name"));
        }
        let domain = if domain == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            domain
        };
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `docker.io/library/redis`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn object(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `algorithm:encoded`; sha256 and sha512 must have the right length of lower-case hex.
pub(crate) fn validate_digest(d: &str) -> Result<(), &'static str> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err("invalid digest");
    };
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("invalid digest");
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or one or more `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|s| s == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A host name (labels of letters, digits and `-`), an IPv4 address or a bracketed IPv6
/// address, with an optional `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(p) => ("", Some(p)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if d.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// The host a registry answers on, for loopback checks: `localhost`, `127.0.0.1`, `::1`.
pub(crate) fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    domain.split(':').next().unwrap_or(domain)
}

/// True for registries on this machine's loopback (`localhost`, `127.0.0.0/8`, `::1`).
pub(crate) fn is_loopback(domain: &str) -> bool {
    let host = host_of(domain);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn short_names_belong_to_docker_hub_library() {
        assert_eq!(norm("redis:5-alpine"), "docker.io/library/redis:5-alpine");
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(norm("docker.io/redis"), "docker.io/library/redis:latest");
        assert_eq!(norm("index.docker.io/redis:7"), "docker.io/library/redis:7");
    }

    #[test]
    fn registry_hosts_are_kept() {
        assert_eq!(
            norm("registry.k8s.io/nginx-slim:0.24"),
            "registry.k8s.io/nginx-slim:0.24"
        );
        assert_eq!(norm("localhost:5000/x:y"), "localhost:5000/x:y");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("[::1]:5000/a/b:c"), "[::1]:5000/a/b:c");
        assert_eq!(norm("127.0.0.1:5000/a"), "127.0.0.1:5000/a:latest");
        let r = Reference::parse("registry.k8s.io/e2e-test-images/agnhost:2.39").unwrap();
        assert_eq!(r.domain, "registry.k8s.io");
        assert_eq!(r.path, "e2e-test-images/agnhost");
        assert_eq!(r.tag.as_deref(), Some("2.39"));
    }

    #[test]
    fn digests_pin_without_adding_latest() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.object(), D);
        let r = Reference::parse(&format!("busybox:1.36@{D}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1.36@{D}"));
        assert_eq!(r.object(), D);
    }

    #[test]
    fn invalid_names_are_rejected() {
        for bad in [
            "",
            "Redis",
            "redis:",
            "redis:-x",
            ":tag",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "redis@sha256:abc",
            "redis@md5:0123",
            "exa mple",
            "localhost:port/x",
            "host_name.com/x",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should not parse");
        }
        // Separators that are allowed.
        for good in ["a__b", "a---b", "a.b", "a_b/c-d.e"] {
            assert!(Reference::parse(good).is_ok(), "{good:?} should parse");
        }
    }

    #[test]
    fn loopback_registries_are_recognised() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.k8s.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
