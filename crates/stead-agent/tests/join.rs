//! Joining a real API server on loopback with its join token: the token's CA hash pins the
//! server, its secret authenticates as a node, and each way of getting it wrong fails with its
//! own error before anything else happens.

use anyhow::Result;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use stead_agent::join::{JoinError, connect};
use stead_api::join::JoinToken;

struct Env {
    url: String,
    token: JoinToken,
    _server: stead_apiserver::RunningServer,
    _dir: tempfile::TempDir,
}

async fn start() -> Result<Env> {
    let dir = tempfile::tempdir()?;
    let (server, _) = stead_testkit::server(dir.path()).await?;
    let text = std::fs::read_to_string(dir.path().join(stead_apiserver::join::TOKEN_FILE))?;
    Ok(Env {
        url: format!("https://127.0.0.1:{}", server.addr.port()),
        token: text.parse()?,
        _server: server,
        _dir: dir,
    })
}

/// The error of a join that must fail.
async fn refused(url: &str, token: &JoinToken) -> JoinError {
    match connect(url, token).await {
        Ok(_) => panic!("joined {url} with a token that must not join"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn the_server_token_joins_and_the_client_can_use_the_api() -> Result<()> {
    let env = start().await?;
    let client = connect(&env.url, &env.token).await?;
    let nodes: Api<Node> = Api::all(client);
    nodes.list(&ListParams::default()).await?;
    Ok(())
}

#[tokio::test]
async fn a_token_for_another_ca_is_refused_before_the_secret_is_sent() -> Result<()> {
    let env = start().await?;
    let mut token = env.token.clone();
    token.ca_hash = stead_api::join::ca_hash(b"another CA");
    let err = refused(&env.url, &token).await;
    assert!(matches!(err, JoinError::CaMismatch(_)), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_by_the_server() -> Result<()> {
    let env = start().await?;
    let mut token = env.token.clone();
    token.secret = "0".repeat(64);
    let err = refused(&env.url, &token).await;
    assert!(matches!(err, JoinError::Rejected(_)), "{err}");
    assert!(!err.to_string().contains(&token.secret));
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_fails_at_once() -> Result<()> {
    let env = start().await?;
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let err = refused(&format!("https://127.0.0.1:{port}"), &env.token).await;
    assert!(matches!(err, JoinError::FetchCa { .. }), "{err}");
    for bad in ["http://127.0.0.1:1", "https://127.0.0.1", "not a url"] {
        let err = refused(bad, &env.token).await;
        assert!(matches!(err, JoinError::Url(_)), "{bad}: {err}");
    }
    Ok(())
}
