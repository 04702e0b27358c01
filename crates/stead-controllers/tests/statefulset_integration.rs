//! The StatefulSet controller against a real API server in-process (over HTTPS with a kube
//! client, as `stead server` runs it). The test plays the kubelet (pod phase and Ready) and ports
//! upstream's e2e scenarios (`test/e2e/apps/statefulset.go`, spec §8), asserting what they assert.
//! "Stays at N" checks observe the controller syncing the set several times without acting —
//! never a wall-clock sleep.

#[path = "statefulset_support/mod.rs"]
mod support;

use anyhow::Result;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_happens_in_order_and_halts_on_an_unhealthy_pod() -> Result<()> {
    // Ref: e2e "Scaling should happen in predictable order and halt if any stateful pod is unhealthy"
    let env = start().await?;
    env.create_set(new_set("ss", 1)).await?;
    env.wait_ready("ss", 1).await?;

    // Break pod 0's readiness; scaling to 3 must not create pod 1.
    env.set_mode("ss-0", Mode::Unready);
    env.wait_status("ss", "readyReplicas 0", |s| {
        status_of(s).ready_replicas.unwrap_or(0) == 0
    })
    .await?;
    env.scale("ss", 3).await?;
    env.wait_observed("ss").await?;
    env.settle("ss", 3).await?;
    assert_eq!(env.pod_names().await?, ["ss-0"], "scale-up halted at the unready pod");

    env.clear_modes();
    env.wait_ready("ss", 3).await?;
    let added: Vec<PodEvent> = env
        .take_pod_events()
        .into_iter()
        .filter(|e| matches!(e, PodEvent::Added(_)))
        .collect();
    assert_eq!(
        added,
        [
            PodEvent::Added("ss-0".into()),
            PodEvent::Added("ss-1".into()),
            PodEvent::Added("ss-2".into())
        ]
    );

    // Scale down: with every pod unready nothing is deleted.
    for p in ["ss-0", "ss-1", "ss-2"] {
        env.set_mode(p, Mode::Unready);
    }
    env.wait_status("ss", "readyReplicas 0", |s| {
        status_of(s).ready_replicas.unwrap_or(0) == 0
    })
    .await?;
    env.scale("ss", 0).await?;
    env.wait_observed("ss").await?;
    env.settle("ss", 3).await?;
    assert_eq!(env.pod_names().await?, ["ss-0", "ss-1", "ss-2"]);

    env.clear_modes();
    env.wait_pods(&[], &[]).await?;
    let deleted: Vec<PodEvent> = env
        .take_pod_events()
        .into_iter()
        .filter(|e| matches!(e, PodEvent::Deleted(_)))
        .collect();
    assert_eq!(
        deleted,
        [
            PodEvent::Deleted("ss-2".into()),
            PodEvent::Deleted("ss-1".into()),
            PodEvent::Deleted("ss-0".into())
        ]
    );
    env.wait_status("ss", "status.replicas 0", |s| status_of(s).replicas == 0)
        .await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_scaling_runs_to_completion_with_unhealthy_pods() -> Result<()> {
    // Ref: e2e "Burst scaling should run to completion even with unhealthy pods"
    let env = start().await?;
    let mut set = new_set("ss", 1);
    set["spec"]["podManagementPolicy"] = "Parallel".into();
    env.create_set(set).await?;
    env.wait_ready("ss", 1).await?;

    env.set_mode("ss-0", Mode::Unready);
    env.wait_status("ss", "readyReplicas 0", |s| {
        status_of(s).ready_replicas.unwrap_or(0) == 0
    })
    .await?;
    env.scale("ss", 3).await?;
    env.wait_pods(&["ss-0", "ss-1", "ss-2"], &["ss-1", "ss-2"])
        .await?;
    env.clear_modes();
    env.wait_ready("ss", 3).await?;

    env.set_default_mode(Mode::Unready);
    env.wait_status("ss", "readyReplicas 0", |s| {
        status_of(s).ready_replicas.unwrap_or(0) == 0
    })
    .await?;
    env.scale("ss", 0).await?;
    env.wait_pods(&[], &[]).await?;
    env.set_default_mode(Mode::Ready);
    env.wait_status("ss", "status.replicas 0", |s| status_of(s).replicas == 0)
        .await?;
    env.shutdown().await;
    Ok(())
}
