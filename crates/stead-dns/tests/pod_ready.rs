//! The goal end to end in one process: a StatefulSet-style pod turns Ready, the real
//! EndpointSlice controller publishes it, and its stable name resolves through the cluster DNS
//! (and stops resolving when the pod is no longer Ready). The test plays the kubelet by patching
//! pod status, as the controllers' own integration tests do.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use stead_dns::DnsConfig;
use stead_dns::probe::{Transport, query};
use tokio::sync::watch;

use stead_testkit::stopped;

async fn ask(dns: std::net::SocketAddr, name: &str) -> Result<Message> {
    Ok(query(
        dns,
        name,
        RecordType::A,
        Transport::Udp,
        Duration::from_secs(5),
    )
    .await?)
}

/// Polls every 5 ms (at most 20 s) until `name` answers `code` with `want` addresses.
async fn wait_for(
    dns: std::net::SocketAddr,
    name: &str,
    code: ResponseCode,
    want: &[&str],
) -> Result<Duration> {
    let started = Instant::now();
    for _ in 0..4000 {
        let msg = ask(dns, name).await?;
        let got: Vec<String> = msg
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect();
        if msg.metadata.response_code == code && got == want {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("{name} never answered {code} {want:?}")
}

async fn set_ready(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) -> Result<()> {
    let status = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_pod_turning_ready_gets_its_stable_name() -> Result<()> {
    // Ref: upstream e2e "DNS should provide DNS for pods for Subdomain"
    let dir = tempfile::tempdir()?;
    let (server, client) = stead_testkit::server(dir.path()).await?;
    let (stop, rx) = watch::channel(false);
    let controller = tokio::spawn(stead_controllers::endpoints::run(
        client.clone(),
        stopped(rx.clone()),
    ));
    let (udp, tcp) = stead_dns::bind("127.0.0.1:0".parse()?)?;
    let dns = udp.local_addr()?;
    let dns_task = tokio::spawn(stead_dns::serve(
        client.clone(),
        DnsConfig::default(),
        udp,
        tcp,
        stopped(rx),
    ));

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "nginx"},
        "spec": {"clusterIP": "None", "selector": {"app": "nginx"},
                 "ports": [{"name": "web", "port": 80}]},
    }))?;
    services.create(&PostParams::default(), &svc).await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web-0", "labels": {"app": "nginx"}},
        "spec": {"hostname": "web-0", "subdomain": "nginx", "nodeName": "node-1",
                 "containers": [{"name": "nginx", "image": "nginx",
                                 "ports": [{"name": "web", "containerPort": 80}]}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let name = "web-0.nginx.default.svc.cluster.local.";

    // Running but not Ready: no name yet.
    set_ready(&pods, "web-0", "10.42.0.5", false).await?;
    wait_for(dns, name, ResponseCode::NXDomain, &[]).await?;

    set_ready(&pods, "web-0", "10.42.0.5", true).await?;
    let took = wait_for(dns, name, ResponseCode::NoError, &["10.42.0.5"]).await?;
    println!("web-0 resolvable {took:?} after its Ready status was acknowledged");
    wait_for(
        dns,
        "nginx.default.svc.cluster.local.",
        ResponseCode::NoError,
        &["10.42.0.5"],
    )
    .await?;

    set_ready(&pods, "web-0", "10.42.0.5", false).await?;
    let took = wait_for(dns, name, ResponseCode::NXDomain, &[]).await?;
    println!("web-0 gone {took:?} after it turned not Ready");

    let _ = stop.send(true);
    controller.await?;
    dns_task.await??;
    server.stop().await;
    Ok(())
}
