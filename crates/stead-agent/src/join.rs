//! Joining a server from another process or machine (`stead agent`): from the server's URL and
//! a join token ([`stead_api::join::JoinToken`]) to a [`kube::Client`] that trusts exactly
//! that server and authenticates as a node.
//!
//! 1. Fetch `/cacerts` over TLS *without* verifying the server (nothing is trusted yet, and
//!    nothing secret is sent: no credentials on this request).
//! 2. Accept the document only if its SHA-256 is the hash the token carries; otherwise stop.
//! 3. Every later connection verifies the server's certificate against that CA (and the
//!    server's address against the certificate's names), bearing the token's secret.
//! 4. One authenticated request proves the secret is accepted before anything starts.

use std::time::Duration;

use http::header::{AUTHORIZATION, HeaderValue};
use kube::Client;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use stead_api::join::JoinToken;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why joining failed. Each renders as one line for the CLI, without the secret.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("--server {0:?}: want https://HOST:PORT")]
    Url(String),
    #[error("fetch the server's CA from {url}: {source}")]
    FetchCa {
        url: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the CA served by {0} does not match the join token's hash (wrong token or not the server it was made for)"
    )]
    CaMismatch(String),
    #[error("the CA served by {url} is not a certificate: {reason}")]
    BadCa { url: String, reason: String },
    #[error("the server at {0} rejected the join token")]
    Rejected(String),
    #[error("reach the server at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: kube::Error,
    },
}

/// A client of the server at `server` (`https://HOST:PORT`) that trusts only the CA named by
/// `token` and authenticates with its secret. Fails (without retrying) when the server cannot
/// be reached, serves another CA, or refuses the secret.
pub async fn connect(server: &str, token: &JoinToken) -> Result<Client, JoinError> {
    let url: http::Uri = server
        .parse()
        .map_err(|_| JoinError::Url(server.to_string()))?;
    if url.scheme_str() != Some("https") || url.host().is_none() || url.port().is_none() {
        return Err(JoinError::Url(server.to_string()));
    }
    let ca_pem = fetch_ca(&url).await?;
    if !token.matches_ca(&ca_pem) {
        return Err(JoinError::CaMismatch(server.to_string()));
    }
    let bad_ca = |reason: String| JoinError::BadCa {
        url: server.to_string(),
        reason,
    };
    let roots: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&ca_pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| bad_ca(e.to_string()))?;
    if roots.is_empty() {
        return Err(bad_ca("no certificate in it".into()));
    }
    let mut config = kube::Config::new(url.clone());
    config.root_cert = Some(roots);
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.secret))
        .map_err(|_| JoinError::Rejected(server.to_string()))?;
    bearer.set_sensitive(true);
    config.headers.push((AUTHORIZATION, bearer));
    let client = Client::try_from(config).map_err(|source| JoinError::Unreachable {
        url: server.to_string(),
        source,
    })?;
    // `/api` needs authentication: a refused secret shows here, not later in a retry loop.
    match client.list_core_api_versions().await {
        Ok(_) => Ok(client),
        Err(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
            Err(JoinError::Rejected(server.to_string()))
        }
        Err(source) => Err(JoinError::Unreachable {
            url: server.to_string(),
            source,
        }),
    }
}

/// `GET /cacerts` without verifying the server's certificate and without credentials.
async fn fetch_ca(url: &http::Uri) -> Result<Vec<u8>, JoinError> {
    let fetch_error = |source| JoinError::FetchCa {
        url: url.to_string(),
        source,
    };
    let mut config = kube::Config::new(url.clone());
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(CONNECT_TIMEOUT);
    let client = Client::try_from(config).map_err(fetch_error)?;
    let request = http::Request::get("/cacerts")
        .body(Vec::new())
        .expect("a static request is valid");
    let text = client.request_text(request).await.map_err(fetch_error)?;
    Ok(text.into_bytes())
}
