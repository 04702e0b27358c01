//! The server's PKI: a CA generated on first start under `<data-dir>/tls/`, a serving certificate
//! signed by it, an admin client certificate for the kubeconfig, and the rustls configuration that
//! asks clients for a certificate (optional) and verifies it against the CA.
//!
//! Files are written once and reused; the serving certificate is re-issued when the addresses it
//! must cover change.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: not a valid PEM file")]
    Pem { path: PathBuf },
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The PEM material the server and its kubeconfig need.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a file atomically (temp file + rename) with owner-only permissions for keys.
fn write(path: &Path, contents: &str, secret: bool) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn validity(params: &mut CertificateParams, years: i32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Days since the epoch → a civil year is close enough for validity bounds.
    let year = 1970 + (now / 31_556_952) as i32;
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + years, 1, 1);
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "stead-ca");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p, 10);
    p
}

fn leaf_params(cn: &str, org: Option<&str>, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    p.distinguished_name = dn;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    validity(&mut p, 5);
    p
}

/// The subject alternative names the serving certificate must carry for `listen_ip`.
fn server_sans(listen_ip: IpAddr) -> Vec<SanType> {
    let mut ips: Vec<IpAddr> = vec![
        "127.0.0.1".parse().expect("literal"),
        "::1".parse().expect("literal"),
        // The `kubernetes` Service's ClusterIP, which pods dial.
        "10.43.0.1".parse().expect("literal"),
    ];
    if !listen_ip.is_unspecified() && !ips.contains(&listen_ip) {
        ips.push(listen_ip);
    }
    let mut sans: Vec<SanType> = ips.into_iter().map(SanType::IpAddress).collect();
    for name in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ] {
        if let Ok(n) = name.to_string().try_into() {
            sans.push(SanType::DnsName(n));
        }
    }
    sans
}

/// Records which SANs a serving certificate was issued for, to know when to re-issue it.
fn sans_fingerprint(sans: &[SanType]) -> String {
    let mut parts: Vec<String> = sans.iter().map(|s| format!("{s:?}")).collect();
    parts.sort();
    parts.join(",")
}

impl Pki {
    /// Loads the PKI from `<data_dir>/tls`, creating whatever is missing.
    pub fn load_or_create(data_dir: &Path, listen_ip: IpAddr) -> Result<Self, TlsError> {
        let dir = data_dir.join("tls");
        std::fs::create_dir_all(&dir).map_err(|source| TlsError::Io {
            path: dir.clone(),
            source,
        })?;
        let p = |n: &str| dir.join(n);

        let (ca_pem, ca_key_pem) = match (read(&p("ca.crt"))?, read(&p("ca.key"))?) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params().self_signed(&key)?;
                let (c, k) = (cert.pem(), key.serialize_pem());
                write(&p("ca.key"), &k, true)?;
                write(&p("ca.crt"), &c, false)?;
                (c, k)
            }
        };
        let ca_key = KeyPair::from_pem(&ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key)?;

        let sans = server_sans(listen_ip);
        let fingerprint = sans_fingerprint(&sans);
        let (server_cert_pem, server_key_pem) = match (
            read(&p("server.crt"))?,
            read(&p("server.key"))?,
            read(&p("server.sans"))?,
        ) {
            (Some(c), Some(k), Some(f)) if f == fingerprint => (c, k),
            _ => {
                let key = KeyPair::generate()?;
                let mut params =
                    leaf_params("stead-apiserver", None, ExtendedKeyUsagePurpose::ServerAuth);
                params.subject_alt_names = sans;
                let cert = params.signed_by(&key, &issuer)?;
                let (c, k) = (cert.pem(), key.serialize_pem());
                write(&p("server.key"), &k, true)?;
                write(&p("server.crt"), &c, false)?;
                write(&p("server.sans"), &fingerprint, false)?;
                (c, k)
            }
        };

        let (admin_cert_pem, admin_key_pem) = match (read(&p("admin.crt"))?, read(&p("admin.key"))?)
        {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let key = KeyPair::generate()?;
                let params = leaf_params(
                    "admin",
                    Some("system:masters"),
                    ExtendedKeyUsagePurpose::ClientAuth,
                );
                let cert = params.signed_by(&key, &issuer)?;
                let (c, k) = (cert.pem(), key.serialize_pem());
                write(&p("admin.key"), &k, true)?;
                write(&p("admin.crt"), &c, false)?;
                (c, k)
            }
        };

        Ok(Self {
            dir,
            ca_pem,
            admin_cert_pem,
            admin_key_pem,
            server_cert_pem,
            server_key_pem,
        })
    }

    /// The rustls server configuration: our serving certificate, HTTP/1.1, and client
    /// certificates verified against the CA when offered (requests without one fall back to
    /// bearer tokens or are refused by the authenticator).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let pem_err = |name: &str| TlsError::Pem {
            path: self.dir.join(name),
        };
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|_| pem_err("ca.crt"))?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).map_err(TlsError::Config)?;
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
        let leaf = CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes())
            .map_err(|_| pem_err("server.crt"))?;
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())
            .map_err(|_| pem_err("server.key"))?;
        let mut config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![leaf, ca], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The user and groups a verified client certificate names (CN → user, O → groups).
pub fn identity_from_cert(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some((user, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = Pki::load_or_create(dir.path(), ip).unwrap();
        let second = Pki::load_or_create(dir.path(), ip).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(first.server_cert_pem, second.server_cert_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
        first.server_config().unwrap();
    }

    #[test]
    fn serving_certificate_is_reissued_for_a_new_listen_address() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pki::load_or_create(dir.path(), "127.0.0.1".parse().unwrap()).unwrap();
        let b = Pki::load_or_create(dir.path(), "127.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_ne!(a.server_cert_pem, b.server_cert_pem);
    }

    #[test]
    fn admin_certificate_names_admin_in_system_masters() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), "127.0.0.1".parse().unwrap()).unwrap();
        let der = CertificateDer::from_pem_slice(pki.admin_cert_pem.as_bytes()).unwrap();
        let (user, groups) = identity_from_cert(&der).unwrap();
        assert_eq!(user, "admin");
        assert_eq!(groups, vec!["system:masters".to_string()]);
    }
}
