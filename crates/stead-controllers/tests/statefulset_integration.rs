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
    assert_eq!(
        env.pod_names().await?,
        ["ss-0"],
        "scale-up halted at the unready pod"
    );

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_and_claims_carry_their_identity_and_claims_come_first() -> Result<()> {
    // Ref: spec §3.2, §3.3; e2e "should provide basic identity" (hostname, subdomain)
    let env = start().await?;
    let set = env.create_set(with_claims(new_set("web", 2))).await?;
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let pods = env
        .wait_pods(&["web-0", "web-1"], &["web-0", "web-1"])
        .await?;
    for (i, pod) in pods.iter().enumerate() {
        let pod_name = format!("web-{i}");
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some(pod_name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("test"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("foo").map(String::as_str), Some("bar"));
        assert_eq!(
            labels.get("statefulset.kubernetes.io/pod-name"),
            Some(&pod_name)
        );
        assert_eq!(
            labels.get("apps.kubernetes.io/pod-index"),
            Some(&i.to_string())
        );
        assert!(revision(pod).starts_with("web-"));
        let refs = pod.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(refs.len(), 1);
        assert_eq!(
            (
                refs[0].kind.as_str(),
                refs[0].name.as_str(),
                refs[0].uid.as_str()
            ),
            ("StatefulSet", "web", uid.as_str())
        );
        assert_eq!(refs[0].controller, Some(true));
        let claim_name = format!("datadir-web-{i}");
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "datadir")
            .and_then(|v| v.persistent_volume_claim.clone())
            .map(|c| c.claim_name);
        assert_eq!(volume.as_deref(), Some(claim_name.as_str()));
        let claim = env.claims().get(&claim_name).await?;
        let claim_labels = claim.metadata.labels.clone().unwrap_or_default();
        assert_eq!(claim_labels.get("foo").map(String::as_str), Some("bar"));
        // The claim existed before its pod.
        let claim_rv: u64 = claim
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default()
            .parse()?;
        let pod_created = pod.metadata.creation_timestamp.clone().map(|t| t.0);
        assert!(claim.metadata.creation_timestamp.map(|t| t.0) <= pod_created);
        assert!(claim_rv > 0);
    }
    // Events name each creation, as `kubectl describe sts` shows them.
    let (ok, out, err) = env.kubectl(&["describe", "sts", "web"])?;
    assert!(ok, "{err}");
    assert!(
        out.contains("create Pod web-0 in StatefulSet web successful"),
        "{out}"
    );
    assert!(
        out.contains("create Pod web-1 in StatefulSet web successful"),
        "{out}"
    );
    assert!(
        out.contains("create Claim datadir-web-0 Pod web-0 in StatefulSet web success"),
        "{out}"
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pod_is_deleted_and_recreated() -> Result<()> {
    // Ref: e2e "Should recreate evicted statefulset"
    let env = start().await?;
    env.set_mode("ss-0", Mode::Failed);
    env.create_set(new_set("ss", 1)).await?;
    let first = eventually("ss-0 exists", || async {
        Ok(env
            .pods()
            .get_opt("ss-0")
            .await?
            .and_then(|p| p.metadata.uid))
    })
    .await?;
    eventually("a delete of ss-0", || async {
        let events = env.pod_events.lock().unwrap().clone();
        Ok(events
            .contains(&PodEvent::Deleted("ss-0".into()))
            .then_some(()))
    })
    .await?;
    env.set_mode("ss-0", Mode::Ready);
    let pods = env.wait_pods(&["ss-0"], &["ss-0"]).await?;
    assert_ne!(pods[0].metadata.uid.clone().unwrap_or_default(), first);
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_and_rollback_of_template_modifications() -> Result<()> {
    // Ref: e2e "should perform rolling updates and roll backs of template modifications"
    let env = start().await?;
    env.create_set(new_set("ss2", 3)).await?;
    env.wait_ready("ss2", 3).await?;
    let (current, update) = env.revisions_of("ss2").await?;
    assert_eq!(current, update);
    let original = current;
    for pod in env.live_pods().await? {
        assert_eq!(revision(&pod), original);
    }

    env.set_mode("ss2-1", Mode::Unready);
    env.wait_status("ss2", "readyReplicas 2", |s| {
        status_of(s).ready_replicas == Some(2)
    })
    .await?;
    env.set_image("ss2", NEW_IMAGE).await?;
    env.wait_observed("ss2").await?;
    let (current, update) = env.revisions_of("ss2").await?;
    assert_ne!(current, update, "the update waits for the unready pod");
    let updated = update;

    env.clear_modes();
    let set = env.wait_rolling_update("ss2").await?;
    assert_eq!(
        status_of(&set).current_revision.as_deref(),
        Some(updated.as_str())
    );
    for pod in env.live_pods().await? {
        assert_eq!(image(&pod), NEW_IMAGE);
        assert_eq!(revision(&pod), updated);
    }

    // Roll back: the original revision is reused, not recreated under a new name.
    env.set_mode("ss2-1", Mode::Unready);
    env.wait_status("ss2", "readyReplicas 2", |s| {
        status_of(s).ready_replicas == Some(2)
    })
    .await?;
    env.set_image("ss2", OLD_IMAGE).await?;
    env.wait_observed("ss2").await?;
    let (current, update) = env.revisions_of("ss2").await?;
    assert_eq!(update, original);
    assert_ne!(current, update);
    env.clear_modes();
    let set = env.wait_rolling_update("ss2").await?;
    assert_eq!(
        status_of(&set).current_revision.as_deref(),
        Some(original.as_str())
    );
    for pod in env.live_pods().await? {
        assert_eq!(image(&pod), OLD_IMAGE);
        assert_eq!(revision(&pod), original);
    }
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_and_phased_rolling_updates() -> Result<()> {
    // Ref: e2e "should perform canary updates and phased rolling updates of template modifications"
    let env = start().await?;
    let mut set = new_set("ss2", 3);
    set["spec"]["updateStrategy"] =
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}});
    env.create_set(set).await?;
    env.wait_ready("ss2", 3).await?;
    let (old_rev, update) = env.revisions_of("ss2").await?;
    assert_eq!(old_rev, update);

    // partition >= replicas: a new revision, no pod changes.
    env.set_image("ss2", NEW_IMAGE).await?;
    env.wait_observed("ss2").await?;
    let (current, new_rev) = env.revisions_of("ss2").await?;
    assert_eq!(current, old_rev);
    assert_ne!(new_rev, old_rev);
    env.settle("ss2", 3).await?;
    for pod in env.live_pods().await? {
        assert_eq!(
            (image(&pod), revision(&pod)),
            (OLD_IMAGE.into(), old_rev.clone())
        );
    }

    // Canary: partition 2 updates pod 2 only.
    env.patch_set(
        "ss2",
        serde_json::json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}),
    )
    .await?;
    let pods = env.wait_partitioned(3, 2, &new_rev).await?;
    for pod in &pods {
        let want = if ordinal(pod) >= 2 {
            (NEW_IMAGE, &new_rev)
        } else {
            (OLD_IMAGE, &old_rev)
        };
        assert_eq!(
            (image(pod).as_str(), &revision(pod)),
            (want.0, want.1),
            "{}",
            name(pod)
        );
    }

    // Deleted pods come back at the revision their ordinal gets.
    let old_uids: Vec<String> = pods
        .iter()
        .map(|p| p.metadata.uid.clone().unwrap_or_default())
        .collect();
    env.delete_pod("ss2-0").await?;
    env.delete_pod("ss2-2").await?;
    let pods = eventually("pods 0 and 2 recreated", || async {
        let pods = env.live_pods().await?;
        let fresh =
            |i: usize| pods.get(i).and_then(|p| p.metadata.uid.clone()) != old_uids.get(i).cloned();
        let ok = pods.len() == 3 && pods.iter().all(is_ready) && fresh(0) && fresh(2);
        Ok(ok.then_some(pods))
    })
    .await?;
    assert_eq!(revision(&pods[0]), old_rev);
    assert_eq!(image(&pods[0]), OLD_IMAGE);
    assert_eq!(revision(&pods[2]), new_rev);
    assert_eq!(image(&pods[2]), NEW_IMAGE);

    // Phased: partition 1, then 0.
    for partition in [1, 0] {
        env.patch_set(
            "ss2",
            serde_json::json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": partition}}}}),
        )
        .await?;
        let pods = env.wait_partitioned(3, partition, &new_rev).await?;
        for pod in &pods {
            let want = if ordinal(pod) >= partition {
                &new_rev
            } else {
                &old_rev
            };
            assert_eq!(&revision(pod), want, "{}", name(pod));
        }
    }
    let set = env.wait_rolling_update("ss2").await?;
    assert_eq!(status_of(&set).current_revision, Some(new_rev));
    env.shutdown().await;
    Ok(())
}
