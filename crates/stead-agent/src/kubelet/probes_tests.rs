use serde_json::json;

use super::*;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn container(probes: serde_json::Value) -> Container {
    let mut c =
        json!({"name": "app", "image": "img", "ports": [{"name": "http", "containerPort": 8080}]});
    c.as_object_mut()
        .unwrap()
        .extend(probes.as_object().unwrap().clone());
    serde_json::from_value(c).unwrap()
}

#[test]
fn probes_wait_the_initial_delay_then_run_every_period() {
    let c = container(
        json!({"readinessProbe": {"exec": {"command": ["x"]}, "initialDelaySeconds": 5, "periodSeconds": 3}}),
    );
    let mut p = ContainerProber::new(&c);
    assert!(p.due(&c, t(0), t(4)).is_empty());
    assert_eq!(p.due(&c, t(0), t(5)), [ProbeKind::Readiness]);
    p.record(&c, ProbeKind::Readiness, true, t(5));
    assert!(p.due(&c, t(0), t(7)).is_empty());
    assert_eq!(p.due(&c, t(0), t(8)), [ProbeKind::Readiness]);
}

// Ref: prober/worker_test.go TestSuccessThreshold / TestFailureThreshold
#[test]
fn readiness_flips_after_the_thresholds() {
    let c = container(
        json!({"readinessProbe": {"exec": {"command": ["x"]}, "successThreshold": 2, "failureThreshold": 2}}),
    );
    let mut p = ContainerProber::new(&c);
    assert!(!p.results().ready, "a readiness probe starts unready");
    p.record(&c, ProbeKind::Readiness, true, t(1));
    assert!(!p.results().ready);
    assert!(p.record(&c, ProbeKind::Readiness, true, t(2)));
    assert!(p.results().ready);
    p.record(&c, ProbeKind::Readiness, false, t(3));
    assert!(p.results().ready, "one failure is below the threshold");
    p.record(&c, ProbeKind::Readiness, false, t(4));
    assert!(!p.results().ready);
}

#[test]
fn liveness_fails_after_failure_threshold_in_a_row() {
    let c =
        container(json!({"livenessProbe": {"tcpSocket": {"port": "http"}, "failureThreshold": 3}}));
    let mut p = ContainerProber::new(&c);
    assert!(!p.results().liveness_failed, "alive until proven otherwise");
    p.record(&c, ProbeKind::Liveness, false, t(1));
    p.record(&c, ProbeKind::Liveness, false, t(2));
    p.record(&c, ProbeKind::Liveness, true, t(3));
    p.record(&c, ProbeKind::Liveness, false, t(4));
    p.record(&c, ProbeKind::Liveness, false, t(5));
    assert!(!p.results().liveness_failed, "a success resets the count");
    p.record(&c, ProbeKind::Liveness, false, t(6));
    assert!(p.results().liveness_failed);
}

// Ref: upstream e2e "should not run liveness/readiness before the startup probe succeeded"
#[test]
fn the_startup_probe_gates_liveness_and_readiness() {
    let c = container(json!({
        "startupProbe": {"exec": {"command": ["s"]}, "periodSeconds": 1},
        "livenessProbe": {"exec": {"command": ["l"]}, "failureThreshold": 1},
        "readinessProbe": {"exec": {"command": ["r"]}},
    }));
    let mut p = ContainerProber::new(&c);
    assert_eq!(p.due(&c, t(0), t(0)), [ProbeKind::Startup]);
    assert!(!p.results().started);
    p.record(&c, ProbeKind::Startup, false, t(0));
    assert_eq!(p.due(&c, t(0), t(1)), [ProbeKind::Startup]);
    p.record(&c, ProbeKind::Startup, true, t(1));
    assert!(p.results().started);
    assert_eq!(
        p.due(&c, t(0), t(2)),
        [ProbeKind::Readiness, ProbeKind::Liveness]
    );
}

#[test]
fn named_ports_resolve_through_the_container_ports() {
    let c = container(json!({}));
    assert_eq!(
        resolve_port(&c, &IntOrString::String("http".into())),
        Some(8080)
    );
    assert_eq!(resolve_port(&c, &IntOrString::Int(81)), Some(81));
    assert_eq!(resolve_port(&c, &IntOrString::String("nope".into())), None);
}

#[test]
fn http_probes_send_a_get_with_headers_and_accept_200_to_399() {
    let req = http_request(
        "10.42.0.2",
        8080,
        "/healthz",
        &[("X-Probe".into(), "1".into())],
    );
    assert!(req.starts_with(
        "GET /healthz HTTP/1.1\r\nHost: 10.42.0.2:8080\r\nUser-Agent: kube-probe/1.33\r\n"
    ));
    assert!(req.contains("X-Probe: 1\r\n") && req.ends_with("\r\n\r\n"));
    assert_eq!(http_success("HTTP/1.1 200 OK\r\n"), Ok(true));
    assert_eq!(http_success("HTTP/1.1 302 Found\r\n"), Ok(true));
    assert_eq!(http_success("HTTP/1.1 404 Not Found\r\n"), Ok(false));
    assert!(http_success("garbage").is_err());
}

#[tokio::test]
async fn an_http_probe_reaches_the_pod_through_the_runtime() {
    use crate::kubelet::testing::FakeRuntime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        for status in ["200 OK", "500 Internal Server Error"] {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).await.unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /ok HTTP/1.1"));
            s.write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes())
                .await
                .unwrap();
        }
    });
    let rt = FakeRuntime::new();
    rt.route_port(8080, addr);
    let c = container(json!({}));
    let probe: Probe =
        serde_json::from_value(json!({"httpGet": {"path": "/ok", "port": "http"}})).unwrap();
    assert_eq!(
        run_probe(&rt, "u1", "c1", Some("10.42.0.2"), &c, &probe).await,
        Ok(())
    );
    let err = run_probe(&rt, "u1", "c1", Some("10.42.0.2"), &c, &probe)
        .await
        .unwrap_err();
    assert_eq!(err, "HTTP probe failed with statuscode: 500");
    server.await.unwrap();
    let tcp: Probe = serde_json::from_value(json!({"tcpSocket": {"port": 9999}})).unwrap();
    assert!(
        run_probe(&rt, "u1", "c1", Some("10.42.0.2"), &c, &tcp)
            .await
            .is_err()
    );
}
