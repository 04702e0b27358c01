//! A fake node in a process of its own, against the server named by `$KUBECONFIG`:
//! `cargo run --example fake_node -p stead-agent -- NODE_NAME`. Used to measure the node's cost
//! apart from the server's (`stead server --disable-agent` + this).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(stead_agent::default_node_name);
    let client = kube::Client::try_default().await?;
    stead_agent::run_fake_node(client, name, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
