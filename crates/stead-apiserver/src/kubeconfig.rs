//! The admin kubeconfig `stead server` writes for kubectl and client libraries.

use base64::Engine;

/// A kubeconfig for `server_url` with the CA and the admin client certificate inlined.
pub fn admin_kubeconfig(server_url: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: stead
  cluster:
    server: {server_url}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: stead
  context:
    cluster: stead
    user: admin
    namespace: default
current-context: stead
preferences: {{}}
",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_the_server_and_inlines_credentials() {
        let k = admin_kubeconfig("https://127.0.0.1:6443", "CA", "CERT", "KEY");
        assert!(k.contains("server: https://127.0.0.1:6443"));
        assert!(k.contains("certificate-authority-data: Q0E="));
        assert!(k.contains("current-context: stead"));
    }
}
