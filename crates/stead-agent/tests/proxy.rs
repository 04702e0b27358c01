//! The service proxy against the real kernel: nftables rules in a node network namespace that
//! this test's runtime creates, busybox `httpd` pods behind a ClusterIP, a busybox client pod.
//! Needs root (CI runs as root), `busybox-static` and `nftables`. The rules are built from
//! hand-made Service and EndpointSlice objects: no API server.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use stead_agent::proxy::{self, Proxy};
use stead_agent::runtime::{ContainerId, Runtime, SandboxSpec};
use stead_agent::sandbox::{SandboxConfig, SandboxRuntime};

mod common;

const HELPER: &str = env!("CARGO_BIN_EXE_stead-sandbox-helper");

struct Node {
    rt: Arc<SandboxRuntime>,
    dir: tempfile::TempDir,
    layer: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        common::reset((*self.rt).clone());
    }
}

/// A node with the proxy's namespace prepared, or `None` (reason printed) when that cannot be.
fn node() -> Option<Node> {
    if !common::can_run_sandboxes() {
        return None;
    }
    let has_nft = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_nft {
        eprintln!("skipping: nft is missing (apt-get install nftables)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer");
    common::busybox_layer(&layer);
    let mut config = SandboxConfig::new(dir.path().join("state"), HELPER);
    config.cgroup_parent = format!("stead-proxy-test-{}", std::process::id());
    let rt = SandboxRuntime::new(config).expect("runtime");
    proxy::prepare_node(&rt).expect("prepare the node namespace");
    Some(Node {
        rt: Arc::new(rt),
        dir,
        layer,
    })
}

/// A pod named `name` running `script`: its container id and address.
async fn pod(node: &Node, name: &str, script: &str) -> (ContainerId, IpAddr) {
    let sandbox = node
        .rt
        .create_sandbox(&SandboxSpec {
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            name: name.into(),
            hostname: name.into(),
            hosts_file: "127.0.0.1\tlocalhost\n".into(),
            resolv_conf: "nameserver 10.43.0.10\n".into(),
            host_network: false,
            share_process_namespace: false,
            labels: BTreeMap::new(),
        })
        .await
        .unwrap();
    let log_path = node.dir.path().join("logs").join(format!("{name}.log"));
    let spec = common::busybox_container(&node.layer, "main", script, log_path);
    let id = node.rt.start_container(&sandbox.id, &spec).await.unwrap();
    (id, sandbox.ip.expect("pod ip"))
}

/// A busybox httpd on port 8080 answering its pod's hostname.
async fn server(node: &Node, name: &str) -> IpAddr {
    let (_, ip) = pod(
        node,
        name,
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
    )
    .await;
    ip
}

fn service(name: &str, ip: &str, affinity: bool) -> Service {
    let mut spec =
        json!({"clusterIP": ip, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]});
    if affinity {
        spec["sessionAffinity"] = json!("ClientIP");
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
    )
    .unwrap()
}

/// The slice of Service `name`: the named port `http` → 8080 on `ips`.
fn slice(name: &str, ips: &[IpAddr]) -> EndpointSlice {
    let endpoints: Vec<_> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true}}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-x"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .unwrap()
}

/// `wget` of `url` from inside the client pod: Ok(body) or Err(stderr).
async fn fetch(node: &Node, client: &ContainerId, url: &str) -> Result<String, String> {
    // busybox wget's own `-T` crashes the static build; `timeout` bounds it instead.
    let cmd: Vec<String> = ["timeout", "5", "wget", "-qO-", url]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = node
        .rt
        .exec_sync(client, &cmd, Duration::from_secs(10))
        .await
        .unwrap();
    if out.exit_code == 0 {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "exit {}: {}{}",
            out.exit_code,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Waits (bounded) until `url` answers from the client pod: the servers are starting.
async fn wait_ready(node: &Node, client: &ContainerId, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match fetch(node, client, url).await {
            Ok(_) => return,
            Err(e) => assert!(Instant::now() < deadline, "{url} never answered: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The hostnames `n` requests to `url` from the client pod reached.
async fn hostnames(node: &Node, client: &ContainerId, url: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(
            fetch(node, client, url)
                .await
                .expect("request through the ClusterIP"),
        );
    }
    seen
}

fn apply(proxy: &mut Proxy, services: &[Service], slices: &[EndpointSlice]) {
    let plan = proxy::plan(services, slices);
    proxy.apply(&plan).expect("apply rules");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_ip_reaches_every_ready_backend_from_pods_and_from_the_node() {
    let Some(node) = node() else { return };
    let a = server(&node, "web-a").await;
    let b = server(&node, "web-b").await;
    let (client, _) = pod(&node, "client", "exec sleep 3600").await;
    let mut proxy = Proxy::new(node.rt.clone());
    let web = service("web", "10.43.0.50", false);
    apply(
        &mut proxy,
        std::slice::from_ref(&web),
        &[slice("web", &[a, b])],
    );
    let url = "http://10.43.0.50:80/";
    wait_ready(&node, &client, &format!("http://{a}:8080/")).await;
    wait_ready(&node, &client, &format!("http://{b}:8080/")).await;

    // Random balancing: both backends answer within a bounded number of requests (the chance
    // that 40 fair coin flips all land on one side is 2^-39).
    let seen: BTreeSet<String> = hostnames(&node, &client, url, 40)
        .await
        .into_iter()
        .collect();
    assert_eq!(
        seen,
        BTreeSet::from(["web-a".to_string(), "web-b".to_string()])
    );

    // From the node namespace itself.
    let out = node
        .rt
        .node_netns_command(&[
            "/bin/busybox",
            "timeout",
            "5",
            "/bin/busybox",
            "wget",
            "-qO-",
            url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "from the node namespace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(body == "web-a" || body == "web-b", "{body:?}");

    // Removing an endpoint stops traffic to it.
    apply(
        &mut proxy,
        std::slice::from_ref(&web),
        &[slice("web", &[a])],
    );
    let seen = hostnames(&node, &client, url, 15).await;
    assert!(seen.iter().all(|h| h == "web-a"), "{seen:?}");

    // No endpoints: rejected at once (connection refused), not black-holed.
    apply(&mut proxy, std::slice::from_ref(&web), &[slice("web", &[])]);
    let err = fetch(&node, &client, url).await.expect_err("no endpoints");
    assert!(err.contains("refused"), "{err}");
    // A port the Service does not have is refused too.
    let err = fetch(&node, &client, "http://10.43.0.50:81/")
        .await
        .expect_err("no such port");
    assert!(err.contains("refused"), "{err}");

    // And back.
    apply(&mut proxy, &[web], &[slice("web", &[b])]);
    assert_eq!(fetch(&node, &client, url).await.unwrap(), "web-b");

    // Tearing the node down removes the table first.
    proxy::remove_rules(&node.rt).unwrap();
    let out = node
        .rt
        .node_netns_command(&["nft", "list", "table", "ip", "stead"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the table is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_port_reaches_the_backends_on_the_nodes_own_address() {
    let Some(node) = node() else { return };
    let a = server(&node, "web-a").await;
    let (client, _) = pod(&node, "client", "exec sleep 3600").await;
    let mut proxy = Proxy::new(node.rt.clone());
    let mut web = service("web", "10.43.0.53", false);
    let spec = web.spec.as_mut().unwrap();
    spec.type_ = Some("NodePort".into());
    spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
    apply(
        &mut proxy,
        std::slice::from_ref(&web),
        &[slice("web", &[a])],
    );
    wait_ready(&node, &client, &format!("http://{a}:8080/")).await;
    // The bridge address is the node's address as pods see it.
    let url = "http://10.42.0.1:30080/";
    assert_eq!(fetch(&node, &client, url).await.unwrap(), "web-a");
    let out = node
        .rt
        .node_netns_command(&["/bin/busybox", "wget", "-qO-", url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "web-a");

    // Without endpoints nothing listens there: refused.
    apply(&mut proxy, &[web], &[slice("web", &[])]);
    let err = fetch(&node, &client, url).await.expect_err("no endpoints");
    assert!(err.contains("refused"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_reaches_itself_through_its_own_service() {
    let Some(node) = node() else { return };
    let a = server(&node, "web-a").await;
    let mut proxy = Proxy::new(node.rt.clone());
    apply(
        &mut proxy,
        &[service("web", "10.43.0.52", false)],
        &[slice("web", &[a])],
    );
    // The server pod is its own client: exec wget in it.
    let (sandboxes, containers) = node.rt.list().await.unwrap();
    let web_a = sandboxes.iter().find(|s| s.name == "web-a").unwrap();
    let id = containers
        .iter()
        .find(|c| c.sandbox == web_a.id)
        .unwrap()
        .id
        .clone();
    wait_ready(&node, &id, &format!("http://{a}:8080/")).await;
    assert_eq!(
        fetch(&node, &id, "http://10.43.0.52/").await.unwrap(),
        "web-a"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_ip_affinity_pins_a_client_to_one_backend_across_rule_updates() {
    let Some(node) = node() else { return };
    let a = server(&node, "web-a").await;
    let b = server(&node, "web-b").await;
    let (client, _) = pod(&node, "client", "exec sleep 3600").await;
    wait_ready(&node, &client, &format!("http://{a}:8080/")).await;
    wait_ready(&node, &client, &format!("http://{b}:8080/")).await;
    let mut proxy = Proxy::new(node.rt.clone());
    let sticky = service("sticky", "10.43.0.51", true);
    let other = service("other", "10.43.0.53", false);
    apply(
        &mut proxy,
        std::slice::from_ref(&sticky),
        &[slice("sticky", &[a, b])],
    );
    let url = "http://10.43.0.51/";
    let seen = hostnames(&node, &client, url, 20).await;
    assert!(seen.iter().all(|h| *h == seen[0]), "{seen:?}");

    // An unrelated change re-applies the rules; the client stays where it was.
    apply(
        &mut proxy,
        &[sticky, other],
        &[slice("sticky", &[a, b]), slice("other", &[a])],
    );
    let again = hostnames(&node, &client, url, 10).await;
    assert!(
        again.iter().all(|h| *h == seen[0]),
        "{seen:?} then {again:?}"
    );
    assert_eq!(
        fetch(&node, &client, "http://10.43.0.53/").await.unwrap(),
        "web-a"
    );
}

/// Prints how long applying rules takes for 100 and 1000 Services (two endpoints each, every
/// other one with ClientIP affinity): the first script (table recreated), an update that moves
/// one endpoint, and an unchanged re-apply (what an agent restart or a retry costs).
#[tokio::test(flavor = "multi_thread")]
async fn measure_rule_apply_time_for_100_and_1000_services() {
    let Some(node) = node() else { return };
    for count in [100u16, 1000] {
        let mut proxy = Proxy::new(node.rt.clone());
        let build = |moved: u16| {
            let mut services = Vec::new();
            let mut slices = Vec::new();
            for i in 0..count {
                let name = format!("svc-{i}");
                let (hi, lo) = (1 + i / 250, i % 250);
                services.push(service(&name, &format!("10.43.{hi}.{lo}"), i % 2 == 0));
                let second = if i == 0 { moved } else { lo };
                let eps: Vec<IpAddr> = vec![
                    format!("10.42.{hi}.{lo}").parse().unwrap(),
                    format!("10.42.{}.{second}", hi + 100).parse().unwrap(),
                ];
                slices.push(slice(&name, &eps));
            }
            (services, slices)
        };
        let (services, slices) = build(0);
        let started = Instant::now();
        let plan = proxy::plan(&services, &slices);
        let planned = started.elapsed();
        proxy.apply(&plan).unwrap();
        let first = started.elapsed();
        let (services2, slices2) = build(249);
        let started = Instant::now();
        proxy.apply(&proxy::plan(&services2, &slices2)).unwrap();
        let update = started.elapsed();
        let started = Instant::now();
        proxy.apply(&proxy::plan(&services2, &slices2)).unwrap();
        let again = started.elapsed();
        let elements = nft_list(&node, &["map", "ip", "stead", "services"])
            .matches("goto svc_")
            .count();
        assert_eq!(elements, usize::from(count));
        eprintln!(
            "{count} services x 2 endpoints: plan {planned:?}, first apply {first:?}, update {update:?}, re-apply {again:?}"
        );
    }
}

/// `nft list <what...>` in the node namespace, as text ("" when it fails).
fn nft_list(node: &Node, what: &[&str]) -> String {
    let mut argv = vec!["nft", "list"];
    argv.extend_from_slice(what);
    let out = node.rt.node_netns_command(&argv).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Polls `check` every 100 ms until it holds, for at most [`stead_testkit::PATIENCE`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + stead_testkit::PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_proxy_follows_services_and_endpoint_slices_from_the_api_server() {
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

    let Some(node) = node() else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (server, client) = stead_testkit::server(&node.dir.path().join("server"))
        .await
        .unwrap();
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(proxy::run_proxy(
        client.clone(),
        node.rt.clone(),
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client, "default");
    services
        .create(&PostParams::default(), &service("web", "10.43.0.60", false))
        .await
        .unwrap();
    let ready: IpAddr = "10.42.0.9".parse().unwrap();
    slices
        .create(&PostParams::default(), &slice("web", &[ready]))
        .await
        .unwrap();
    eventually("the service's rules", || {
        nft_list(&node, &["map", "ip", "stead", "services"]).contains("10.43.0.60 . tcp . 80")
            && nft_list(&node, &["table", "ip", "stead"]).contains("dnat to 10.42.0.9:8080")
    })
    .await;

    // The endpoint turns unready: the Service is rejected instead.
    let patch =
        json!({"endpoints": [{"addresses": ["10.42.0.9"], "conditions": {"ready": false}}]});
    slices
        .patch("web-x", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("the service to be rejected", || {
        let table = nft_list(&node, &["table", "ip", "stead"]);
        !table.contains("dnat to 10.42.0.9:8080")
            && nft_list(&node, &["set", "ip", "stead", "no_endpoints"])
                .contains("10.43.0.60 . tcp . 80")
    })
    .await;

    // The Service goes away: so do its rules.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the rules to go", || {
        let table = nft_list(&node, &["table", "ip", "stead"]);
        !table.is_empty() && !table.contains("10.43.0.60")
    })
    .await;

    let _ = stop.send(true);
    task.await.unwrap();
    server.stop().await;
}

/// Answers every connection with `pong ` and the first bytes it read, then closes.
async fn pong_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let _ = conn.write_all(b"pong ").await;
                let _ = conn.write_all(&buf[..n]).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubernetes_service_reaches_an_api_server_on_the_hosts_loopback() {
    use std::io::{Read, Write};

    let Some(node) = node() else { return };
    let upstream = pong_server().await;
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(proxy::run_relay(
        node.rt.clone(),
        proxy::KUBERNETES_SERVICE,
        upstream,
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));
    // The Service as the endpoints controller publishes it: the API server's loopback address.
    let kubernetes: Service = serde_json::from_value(json!({
        "metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "targetPort": upstream.port()}]},
    }))
    .unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "ports": [{"name": "https", "port": upstream.port(), "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
    }))
    .unwrap();
    let mut p = Proxy::new(node.rt.clone());
    apply(&mut p, &[kubernetes], &[slice]);

    // From the node namespace (once the relay listens).
    let mut answer = String::new();
    for _ in 0..100 {
        let got = node.rt.in_node_netns(|| {
            let mut s = std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::V4(proxy::KUBERNETES_SERVICE),
                Duration::from_secs(2),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"node")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        });
        if let Ok(got) = got {
            answer = got;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer, "pong node");

    // From a pod.
    let (client, _) = pod(&node, "client", "exec sleep 3600").await;
    let cmd: Vec<String> = ["sh", "-c", "echo pod | timeout 5 nc 10.43.0.1 443"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = node
        .rt
        .exec_sync(&client, &cmd, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pong pod",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let _ = stop.send(true);
    relay.await.unwrap().unwrap();
}
