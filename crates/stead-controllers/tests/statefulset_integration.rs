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
    let first = eventually("ss-0 failed", || async {
        let pod = env.pods().get_opt("ss-0").await?;
        let failed =
            pod.filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"));
        Ok(failed.and_then(|p| p.metadata.uid))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_replaces_pods_only_when_they_are_deleted() -> Result<()> {
    // Ref: e2e "should implement legacy replacement when the update strategy is OnDelete"
    let env = start().await?;
    let mut set = new_set("ss2", 3);
    set["spec"]["updateStrategy"] = serde_json::json!({"type": "OnDelete"});
    env.create_set(set).await?;
    let pods = env.wait_ready("ss2", 3).await?;
    let (current, _) = env.revisions_of("ss2").await?;
    drop(pods);
    let uids = |pods: &[k8s_openapi::api::core::v1::Pod]| -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.uid.clone().unwrap_or_default())
            .collect()
    };
    let before = uids(&env.live_pods().await?);
    for i in 0..3 {
        env.delete_pod(&format!("ss2-{i}")).await?;
    }
    let pods = eventually("pods recreated", || async {
        let pods = env.live_pods().await?;
        let now = uids(&pods);
        let ok =
            pods.len() == 3 && pods.iter().all(is_ready) && now.iter().all(|u| !before.contains(u));
        Ok(ok.then_some(pods))
    })
    .await?;
    for pod in &pods {
        assert_eq!(revision(pod), current);
    }

    env.set_image("ss2", NEW_IMAGE).await?;
    env.wait_observed("ss2").await?;
    let (_, update) = env.revisions_of("ss2").await?;
    assert_ne!(update, current);
    env.settle("ss2", 3).await?;
    let before = uids(&env.live_pods().await?);
    for pod in env.live_pods().await? {
        assert_eq!(image(&pod), OLD_IMAGE, "OnDelete leaves running pods alone");
    }
    for i in 0..3 {
        env.delete_pod(&format!("ss2-{i}")).await?;
    }
    let pods = eventually("pods recreated at the update revision", || async {
        let pods = env.live_pods().await?;
        let now = uids(&pods);
        let ok =
            pods.len() == 3 && pods.iter().all(is_ready) && now.iter().all(|u| !before.contains(u));
        Ok(ok.then_some(pods))
    })
    .await?;
    for pod in &pods {
        assert_eq!(
            (image(pod), revision(pod)),
            (NEW_IMAGE.into(), update.clone())
        );
    }
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_predecessor_is_recreated_while_a_later_pod_is_unready() -> Result<()> {
    // Ref: e2e "should not deadlock when a pod's predecessor fails"
    let env = start().await?;
    env.set_default_mode(Mode::Unready);
    env.create_set(with_claims(new_set("ss", 2))).await?;
    env.wait_pods(&["ss-0"], &[]).await?;
    env.set_mode("ss-0", Mode::Ready);
    let pods = env.wait_pods(&["ss-0", "ss-1"], &["ss-0"]).await?;
    let old = pods[0].metadata.uid.clone();
    env.delete_pod("ss-0").await?;
    eventually("ss-0 recreated and ready while ss-1 is not", || async {
        let pods = env.live_pods().await?;
        let ok = pods.len() == 2
            && pods[0].metadata.uid != old
            && is_ready(&pods[0])
            && !is_ready(&pods[1]);
        Ok(ok.then_some(()))
    })
    .await?;
    env.set_mode("ss-1", Mode::Ready);
    env.wait_ready("ss", 2).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_pod_below_the_partition_comes_back_at_the_old_revision() -> Result<()> {
    // Ref: e2e "should perform canary updates and phased rolling updates of template
    // modifications for partiton1 and delete pod-0 without failing container"
    let env = start().await?;
    let mut set = new_set("ss", 3);
    set["spec"]["updateStrategy"] =
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
    env.create_set(set).await?;
    env.wait_ready("ss", 3).await?;
    let (old_rev, _) = env.revisions_of("ss").await?;
    env.pods()
        .patch(
            "ss-0",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                serde_json::json!({"metadata": {"finalizers": ["example.com/test-finalizer"]}}),
            ),
        )
        .await?;
    env.set_image("ss", NEW_IMAGE).await?;
    env.wait_status("ss", "updated 2, replicas 3, ready 3", |s| {
        let st = status_of(s);
        st.updated_replicas == Some(2) && st.replicas == 3 && st.ready_replicas == Some(3)
    })
    .await?;
    let (_, new_rev) = env.revisions_of("ss").await?;
    let pods = env.live_pods().await?;
    assert_eq!(revision(&pods[0]), old_rev);
    assert_eq!(revision(&pods[1]), new_rev);
    assert_eq!(revision(&pods[2]), new_rev);

    // Pod 0 stays terminating behind its finalizer: the controller waits.
    env.pods()
        .delete("ss-0", &kube::api::DeleteParams::default())
        .await?;
    env.wait_status("ss", "readyReplicas 2", |s| {
        status_of(s).ready_replicas == Some(2)
    })
    .await?;
    env.settle("ss", 2).await?;
    env.pods()
        .patch(
            "ss-0",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    env.wait_ready("ss", 3).await?;
    let pods = env.live_pods().await?;
    assert_eq!(
        revision(&pods[0]),
        old_rev,
        "ordinal 0 is below the partition"
    );
    assert_eq!(image(&pods[0]), OLD_IMAGE);
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_pod_that_fails_below_the_partition_is_not_deleted_again() -> Result<()> {
    // Ref: e2e "should perform canary updates and phased rolling updates of template
    // modifications for partiton1 and delete pod-0 with failing container"
    let env = start().await?;
    let mut set = new_set("ss", 3);
    set["spec"]["updateStrategy"] =
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
    env.create_set(set).await?;
    env.wait_ready("ss", 3).await?;
    let (old_rev, _) = env.revisions_of("ss").await?;
    let pp = kube::api::PatchParams::default();
    env.pods()
        .patch(
            "ss-0",
            &pp,
            &kube::api::Patch::Merge(
                serde_json::json!({"metadata": {"finalizers": ["example.com/test-finalizer"]}}),
            ),
        )
        .await?;
    env.set_image("ss", NEW_IMAGE).await?;
    env.wait_status("ss", "updated 2, replicas 3, ready 3", |s| {
        let st = status_of(s);
        st.updated_replicas == Some(2) && st.replicas == 3 && st.ready_replicas == Some(3)
    })
    .await?;
    let (_, new_rev) = env.revisions_of("ss").await?;
    let old_uid = env.pods().get("ss-0").await?.metadata.uid;

    // Pod 0 is deleted; its sidecar exits 1 on SIGTERM, so it ends Failed while the finalizer
    // holds it (the test plays that kubelet, after the harness's kubelet marked it unready).
    env.pods()
        .delete("ss-0", &kube::api::DeleteParams::default())
        .await?;
    env.wait_status("ss", "readyReplicas 2", |s| {
        status_of(s).ready_replicas == Some(2)
    })
    .await?;
    env.pods()
        .patch_status(
            "ss-0",
            &pp,
            &kube::api::Patch::Merge(serde_json::json!({"status": {
                "phase": "Failed",
                "conditions": [{"type": "Ready", "status": "False",
                                "lastTransitionTime": jiff::Timestamp::now().to_string()}],
            }})),
        )
        .await?;
    env.settle("ss", 3).await?;
    let held = env.pods().get("ss-0").await?;
    assert_eq!(held.metadata.uid, old_uid, "still the terminating pod");
    assert_eq!(held.status.and_then(|s| s.phase).as_deref(), Some("Failed"));
    let events: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(env.client.clone(), NS);
    let deletes_of_0: Vec<_> = events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("SuccessfulDelete")
                && e.message.as_deref() == Some("delete Pod ss-0 in StatefulSet ss successful")
        })
        .collect();
    assert!(
        deletes_of_0.is_empty(),
        "the controller must not delete a terminating failed pod: {deletes_of_0:?}"
    );

    env.pods()
        .patch(
            "ss-0",
            &pp,
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    env.wait_ready("ss", 3).await?;
    let pods = env.live_pods().await?;
    assert_ne!(pods[0].metadata.uid, old_uid, "ss-0 was recreated");
    assert_eq!(
        revision(&pods[0]),
        old_rev,
        "ordinal 0 is below the partition"
    );
    assert_eq!(image(&pods[0]), OLD_IMAGE);
    assert_eq!(revision(&pods[1]), new_rev);
    assert_eq!(revision(&pods[2]), new_rev);
    let st = status_of(&env.sets().get("ss").await?);
    assert_eq!(
        (st.current_replicas, st.updated_replicas),
        (Some(1), Some(2))
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_orphans_are_adopted_and_non_matching_pods_released() -> Result<()> {
    // Ref: e2e "should adopt matching orphans and release non-matching pods"
    let env = start().await?;
    let set = env.create_set(new_set("ss", 1)).await?;
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    env.wait_ready("ss", 1).await?;
    let controller = |p: &k8s_openapi::api::core::v1::Pod| {
        p.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            .map(|r| r.uid.clone())
    };
    let merge = |v: serde_json::Value| kube::api::Patch::Merge(v);
    let pp = kube::api::PatchParams::default();

    env.pods()
        .patch(
            "ss-0",
            &pp,
            &merge(serde_json::json!({"metadata": {"ownerReferences": null}})),
        )
        .await?;
    eventually("ss-0 re-adopted", || async {
        let p = env.pods().get("ss-0").await?;
        Ok((controller(&p).as_deref() == Some(set_uid.as_str())).then_some(()))
    })
    .await?;

    env.pods()
        .patch(
            "ss-0",
            &pp,
            &merge(serde_json::json!({"metadata": {"labels": null}})),
        )
        .await?;
    eventually("ss-0 released", || async {
        let p = env.pods().get("ss-0").await?;
        Ok(controller(&p).is_none().then_some(()))
    })
    .await?;

    env.pods()
        .patch(
            "ss-0",
            &pp,
            &merge(serde_json::json!({"metadata": {"labels": {"foo": "bar", "baz": "blah"}}})),
        )
        .await?;
    eventually("ss-0 adopted again", || async {
        let p = env.pods().get("ss-0").await?;
        Ok((controller(&p).as_deref() == Some(set_uid.as_str())).then_some(()))
    })
    .await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn available_replicas_follow_min_ready_seconds() -> Result<()> {
    // Ref: e2e "AvailableReplicas should get updated accordingly when MinReadySeconds is enabled"
    // and "MinReadySeconds should be honored when enabled"
    let env = start().await?;
    let mut set = new_set("ss", 2);
    set["spec"]["minReadySeconds"] = 1.into();
    env.create_set(set).await?;
    // The controller requeues itself after minReadySeconds: no event makes pods available.
    env.wait_status("ss", "availableReplicas 2", |s| {
        status_of(s).available_replicas == Some(2)
    })
    .await?;

    env.patch_set("ss", serde_json::json!({"spec": {"minReadySeconds": 3600}}))
        .await?;
    env.wait_status("ss", "availableReplicas 0", |s| {
        status_of(s).available_replicas == Some(0)
    })
    .await?;
    env.settle("ss", 2).await?;
    assert_eq!(
        status_of(&env.sets().get("ss").await?).available_replicas,
        Some(0)
    );

    env.patch_set("ss", serde_json::json!({"spec": {"minReadySeconds": 0}}))
        .await?;
    env.wait_status("ss", "availableReplicas 2", |s| {
        status_of(s).available_replicas == Some(2)
    })
    .await?;
    let (ok, out, err) = env.kubectl(&["get", "sts", "ss", "-o", "yaml"])?;
    assert!(ok, "{err}");
    assert!(out.contains("availableReplicas: 2"), "{out}");
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_ordinal_changes_move_the_pods() -> Result<()> {
    // Ref: e2e "Scaling StatefulSetStartOrdinal"
    let env = start().await?;
    env.create_set(new_set("ss", 2)).await?;
    env.wait_pods(&["ss-0", "ss-1"], &["ss-0", "ss-1"]).await?;

    env.patch_set(
        "ss",
        serde_json::json!({"spec": {"replicas": 3, "ordinals": {"start": 2}}}),
    )
    .await?;
    env.wait_pods(&["ss-2", "ss-3", "ss-4"], &["ss-2", "ss-3", "ss-4"])
        .await?;
    env.wait_ready("ss", 3).await?;

    env.patch_set(
        "ss",
        serde_json::json!({"spec": {"replicas": 2, "ordinals": {"start": 4}}}),
    )
    .await?;
    env.wait_pods(&["ss-4", "ss-5"], &["ss-4", "ss-5"]).await?;

    env.patch_set(
        "ss",
        serde_json::json!({"spec": {"ordinals": {"start": 3}}}),
    )
    .await?;
    env.wait_pods(&["ss-3", "ss-4"], &["ss-3", "ss-4"]).await?;

    env.patch_set("ss", serde_json::json!({"spec": {"ordinals": null}}))
        .await?;
    env.wait_pods(&["ss-0", "ss-1"], &["ss-0", "ss-1"]).await?;
    env.wait_ready("ss", 2).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_subresource_drives_the_pod_count() -> Result<()> {
    // Ref: e2e "should have a working scale subresource"
    let env = start().await?;
    env.create_set(new_set("ss", 1)).await?;
    env.wait_ready("ss", 1).await?;
    let scale = env.sets().get_scale("ss").await?;
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(1));
    assert_eq!(scale.status.as_ref().map(|s| s.replicas), Some(1));

    let mut scale = scale;
    scale.metadata.resource_version = None;
    scale.spec.get_or_insert_default().replicas = Some(2);
    let updated = env
        .sets()
        .replace_scale("ss", &kube::api::PostParams::default(), &scale)
        .await?;
    assert_eq!(updated.spec.and_then(|s| s.replicas), Some(2));
    env.wait_ready("ss", 2).await?;

    env.sets()
        .patch_scale(
            "ss",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(serde_json::json!({"spec": {"replicas": 4}})),
        )
        .await?;
    env.wait_ready("ss", 4).await?;
    let scale = env.sets().get_scale("ss").await?;
    assert_eq!(scale.status.map(|s| s.replicas), Some(4));
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patched_set_runs_its_pods_and_a_collection_delete_removes_it() -> Result<()> {
    // Ref: e2e "should list, patch and delete a collection of StatefulSets"
    let env = start().await?;
    let mut set = new_set("test-ss", 1);
    set["spec"]["selector"] =
        serde_json::json!({"matchLabels": {"name": "sample-pod", "pod": "httpd"}});
    set["spec"]["template"]["metadata"]["labels"] =
        serde_json::json!({"name": "sample-pod", "pod": "httpd"});
    env.create_set(set).await?;
    env.wait_ready("test-ss", 1).await?;
    let patch = serde_json::json!({
        "metadata": {"labels": {"test-ss": "patched"}},
        "spec": {"replicas": 2, "template": {"spec": {
            "TerminationGracePeriodSeconds": 1,
            "containers": [{"name": "test-ss", "image": "registry.k8s.io/pause:3.10"}]
        }}}
    });
    let patched = env
        .sets()
        .patch(
            "test-ss",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(patch),
        )
        .await?;
    let spec = patched.spec.clone().unwrap_or_default();
    assert_eq!(spec.replicas, Some(2));
    let containers = spec.template.spec.unwrap_or_default().containers;
    assert_eq!(
        containers[0].image.as_deref(),
        Some("registry.k8s.io/pause:3.10")
    );
    env.wait_ready("test-ss", 2).await?;

    let lp = kube::api::ListParams::default().labels("test-ss=patched");
    let all: kube::Api<k8s_openapi::api::apps::v1::StatefulSet> =
        kube::Api::all(env.client.clone());
    assert_eq!(all.list(&lp).await?.items.len(), 1);
    env.sets()
        .delete_collection(&kube::api::DeleteParams::default().grace_period(1), &lp)
        .await?;
    eventually("set gone", || async {
        Ok(all.list(&lp).await?.items.is_empty().then_some(()))
    })
    .await?;
    // The garbage collector removes the pods of the deleted set.
    env.wait_pods(&[], &[]).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_conditions_written_by_users_survive_a_stable_set() -> Result<()> {
    // Ref: e2e "should validate Statefulset Status endpoints"
    let env = start().await?;
    env.create_set(new_set("ss", 1)).await?;
    env.wait_ready("ss", 1).await?;
    let mut set = env.sets().get_status("ss").await?;
    set.status
        .get_or_insert_default()
        .conditions
        .get_or_insert_default()
        .push(k8s_openapi::api::apps::v1::StatefulSetCondition {
            type_: "StatusUpdate".into(),
            status: "True".into(),
            reason: Some("E2E".into()),
            message: Some("Set from e2e test".into()),
            ..Default::default()
        });
    env.sets()
        .replace_status("ss", &kube::api::PostParams::default(), &set)
        .await?;
    env.sets()
        .patch_status(
            "ss",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"status": {"conditions": [
                {"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from e2e test"},
                {"type": "StatusPatched", "status": "True"}
            ]}})),
        )
        .await?;
    env.settle("ss", 3).await?;
    let set = env.sets().get("ss").await?;
    let types: Vec<String> = status_of(&set)
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, ["StatusUpdate", "StatusPatched"]);
    env.shutdown().await;
    Ok(())
}

async fn claim_names(env: &Env) -> Result<Vec<String>> {
    let mut names: Vec<String> = env
        .claims()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

async fn wait_claims(env: &Env, want: &[&str]) -> Result<()> {
    eventually(&format!("claims {want:?}"), || async {
        Ok((claim_names(env).await? == want).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_deleted_delete_claims_go_with_the_set() -> Result<()> {
    // Ref: e2e "Non-retain StatefulSetPersistentVolumeClaimPolicy should delete PVCs with a
    // WhenDeleted policy"
    let env = start().await?;
    let mut set = with_claims(new_set("ss", 3));
    set["spec"]["persistentVolumeClaimRetentionPolicy"] =
        serde_json::json!({"whenDeleted": "Delete", "whenScaled": "Retain"});
    let set = env.create_set(set).await?;
    let uid = set.metadata.uid.clone().unwrap_or_default();
    env.wait_ready("ss", 3).await?;
    let claims = ["datadir-ss-0", "datadir-ss-1", "datadir-ss-2"];
    for c in claims {
        let refs = eventually("a set ref", || async {
            let claim = env.claims().get(c).await?;
            let refs = claim.metadata.owner_references.unwrap_or_default();
            Ok((!refs.is_empty()).then_some(refs))
        })
        .await?;
        assert_eq!(refs.len(), 1, "{c}: exactly the set ref, no pod ref");
        assert_eq!(
            (refs[0].kind.as_str(), refs[0].uid.as_str()),
            ("StatefulSet", uid.as_str())
        );
        assert_eq!(refs[0].controller, Some(true));
    }
    env.sets().delete("ss", &Default::default()).await?;
    wait_claims(&env, &[]).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_scaled_delete_claims_go_with_condemned_pods() -> Result<()> {
    // Ref: e2e "Non-retain StatefulSetPersistentVolumeClaimPolicy should delete PVCs with a
    // OnScaledown policy"
    let env = start().await?;
    let mut set = with_claims(new_set("ss", 3));
    set["spec"]["persistentVolumeClaimRetentionPolicy"] =
        serde_json::json!({"whenDeleted": "Retain", "whenScaled": "Delete"});
    env.create_set(set).await?;
    env.wait_ready("ss", 3).await?;
    wait_claims(&env, &["datadir-ss-0", "datadir-ss-1", "datadir-ss-2"]).await?;
    env.scale("ss", 1).await?;
    env.wait_ready("ss", 1).await?;
    wait_claims(&env, &["datadir-ss-0"]).await?;

    // Scaling up again creates fresh claims for the new pods.
    env.scale("ss", 2).await?;
    env.wait_ready("ss", 2).await?;
    wait_claims(&env, &["datadir-ss-0", "datadir-ss-1"]).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_keeps_claims_and_a_foreign_controller_is_respected() -> Result<()> {
    // Ref: e2e "Non-retain StatefulSetPersistentVolumeClaimPolicy should not delete PVC with
    // OnScaledown policy if another controller owns the PVC"
    let env = start().await?;
    env.create_set(with_claims(new_set("ss", 3))).await?;
    env.wait_ready("ss", 3).await?;
    let cm = env.client.clone();
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(cm, NS);
    let owner = cms
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "owner"}}))?,
        )
        .await?;
    env.claims()
        .patch(
            "datadir-ss-1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": owner.metadata.uid, "controller": true
            }]}})),
        )
        .await?;
    env.patch_set(
        "ss",
        serde_json::json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"}}}),
    )
    .await?;
    // The retention routine warns about the claim it must leave alone (§4.9 rule 2).
    let warning = eventually("a ConflictingController warning", || async {
        let events: kube::Api<k8s_openapi::api::core::v1::Event> =
            kube::Api::namespaced(env.client.clone(), NS);
        let found = events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ConflictingController"));
        Ok(found)
    })
    .await?;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(
        (
            warning.involved_object.kind.as_deref(),
            warning.involved_object.name.as_deref()
        ),
        (Some("StatefulSet"), Some("ss"))
    );
    assert_eq!(
        warning.message.as_deref(),
        Some(
            "PersistentVolumeClaim datadir-ss-1 has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"
        )
    );
    env.scale("ss", 0).await?;
    env.wait_pods(&[], &[]).await?;
    wait_claims(&env, &["datadir-ss-1"]).await?;
    env.settle("ss", 2).await?;
    assert_eq!(claim_names(&env).await?, ["datadir-ss-1"]);

    // Without the foreign controller the claim follows the policy again.
    env.claims()
        .patch(
            "datadir-ss-1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"ownerReferences": null}})),
        )
        .await?;
    env.scale("ss", 2).await?;
    env.wait_ready("ss", 2).await?;
    wait_claims(&env, &["datadir-ss-0", "datadir-ss-1"]).await?;
    env.scale("ss", 1).await?;
    env.wait_ready("ss", 1).await?;
    wait_claims(&env, &["datadir-ss-0"]).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_set_gets_its_claims_back() -> Result<()> {
    // Ref: e2e "should provide basic identity" (Restart: scale to 0, wait status.replicas 0,
    // scale back; data persists because the claims do)
    let env = start().await?;
    env.create_set(with_claims(new_set("ss", 3))).await?;
    env.wait_ready("ss", 3).await?;
    let uids = |claims: Vec<k8s_openapi::api::core::v1::PersistentVolumeClaim>| {
        let mut v: Vec<(String, String)> = claims
            .into_iter()
            .map(|c| {
                (
                    c.metadata.name.unwrap_or_default(),
                    c.metadata.uid.unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = uids(env.claims().list(&Default::default()).await?.items);
    assert_eq!(before.len(), 3);
    env.scale("ss", 0).await?;
    env.wait_status("ss", "status.replicas 0", |s| status_of(s).replicas == 0)
        .await?;
    env.scale("ss", 3).await?;
    let pods = env.wait_ready("ss", 3).await?;
    drop(pods);
    for pod in env.live_pods().await? {
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.hostname.clone()),
            Some(name(&pod))
        );
    }
    assert_eq!(
        uids(env.claims().list(&Default::default()).await?.items),
        before
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_claim_of_a_pending_pod_is_recreated() -> Result<()> {
    // Ref: e2e "PVC should be recreated when pod is pending due to missing PVC"
    let env = start().await?;
    env.create_set(with_claims(new_set("ss", 1))).await?;
    env.wait_ready("ss", 1).await?;
    env.set_mode("ss-0", Mode::Pending);
    env.delete_pod("ss-0").await?;
    eventually("ss-0 recreated and pending", || async {
        let pods = env.live_pods().await?;
        let pending = pods.len() == 1
            && pods[0].status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
        Ok(pending.then_some(()))
    })
    .await?;
    let old = env.claims().get("datadir-ss-0").await?.metadata.uid;
    env.claims()
        .delete("datadir-ss-0", &Default::default())
        .await?;
    eventually("datadir-ss-0 recreated", || async {
        let claim = env.claims().get_opt("datadir-ss-0").await?;
        Ok(claim.filter(|c| c.metadata.uid != old).map(|_| ()))
    })
    .await?;
    env.set_mode("ss-0", Mode::Ready);
    env.wait_ready("ss", 1).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_refs_follow_the_policy_around_foreign_and_stale_owners() -> Result<()> {
    // Ref: e2e "Non-retain StatefulSetPersistentVolumeClaimPolicy should not delete PVCs when
    // there is another controller"
    let env = start().await?;
    let set = env.create_set(with_claims(new_set("ss", 4))).await?;
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    env.wait_ready("ss", 4).await?;
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(env.client.clone(), NS);
    let owner = cms
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "external"}}))?,
        )
        .await?;
    let external = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "external",
        "uid": owner.metadata.uid});
    let stale = serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "name": "unknown", "uid": "9d86d6ae-4e06-4ff1-bc55-f77f52e272e9", "controller": true});
    let pp = kube::api::PatchParams::default();
    env.claims()
        .patch(
            "datadir-ss-1",
            &pp,
            &kube::api::Patch::Merge(
                serde_json::json!({"metadata": {"ownerReferences": [external]}}),
            ),
        )
        .await?;
    env.claims()
        .patch(
            "datadir-ss-3",
            &pp,
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {
                "ownerReferences": [stale], "finalizers": ["example.com/held"]}})),
        )
        .await?;
    let refs_of = |c: k8s_openapi::api::core::v1::PersistentVolumeClaim| {
        c.metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.kind, r.name, r.controller))
            .collect::<Vec<_>>()
    };
    env.settle("ss", 2).await?;
    assert_eq!(
        refs_of(env.claims().get("datadir-ss-1").await?),
        [("ConfigMap".to_string(), "external".to_string(), None)],
        "Retain leaves refs alone"
    );

    env.patch_set(
        "ss",
        serde_json::json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}}),
    )
    .await?;
    let set_ref = ("StatefulSet".to_string(), "ss".to_string(), Some(true));
    for c in ["datadir-ss-0", "datadir-ss-2"] {
        eventually(&format!("{c}: exactly the set ref"), || async {
            Ok((refs_of(env.claims().get(c).await?) == [set_ref.clone()]).then_some(()))
        })
        .await?;
    }
    eventually("datadir-ss-1: external then set ref", || async {
        let refs = refs_of(env.claims().get("datadir-ss-1").await?);
        let want = [
            ("ConfigMap".to_string(), "external".to_string(), None),
            set_ref.clone(),
        ];
        Ok((refs == want).then_some(()))
    })
    .await?;
    let claim3 = env.claims().get("datadir-ss-3").await?;
    let refs3 = claim3.metadata.owner_references.unwrap_or_default();
    assert_eq!(refs3.len(), 1, "a stale set ref is never touched");
    assert_eq!(refs3[0].name, "unknown");
    assert!(refs3.iter().all(|r| r.uid != set_uid));

    env.sets().delete("ss", &Default::default()).await?;
    wait_claims(&env, &["datadir-ss-1", "datadir-ss-3"]).await?;
    env.shutdown().await;
    Ok(())
}

/// Orphans `pod` the way the e2e test does (strategic merge patch of `ownerReferences: []`) and
/// waits until the controller has adopted it back.
async fn orphan_and_wait_for_adoption(env: &Env, pod: &str, set_uid: &str) -> Result<()> {
    let orphaned = env
        .pods()
        .patch(
            pod,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(serde_json::json!({"metadata": {"ownerReferences": []}})),
        )
        .await?;
    let uid = orphaned.metadata.uid.clone();
    eventually(&format!("{pod} adopted again"), || async {
        let p = env.pods().get(pod).await?;
        let adopted =
            p.metadata.uid == uid
                && p.metadata.owner_references.iter().flatten().any(|r| {
                    r.uid == set_uid && r.controller == Some(true) && r.kind == "StatefulSet"
                });
        Ok(adopted.then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_deleted_delete_claims_go_with_the_set_after_adopting_a_pod() -> Result<()> {
    // Ref: e2e "Non-retain StatefulSetPersistentVolumeClaimPolicy should delete PVCs after
    // adopting pod (WhenDeleted)"
    let env = start().await?;
    let mut set = with_claims(new_set("ss", 3));
    set["spec"]["persistentVolumeClaimRetentionPolicy"] =
        serde_json::json!({"whenDeleted": "Delete", "whenScaled": "Retain"});
    let set = env.create_set(set).await?;
    let uid = set.metadata.uid.clone().unwrap_or_default();
    env.wait_ready("ss", 3).await?;
    wait_claims(&env, &["datadir-ss-0", "datadir-ss-1", "datadir-ss-2"]).await?;
    orphan_and_wait_for_adoption(&env, "ss-2", &uid).await?;
    env.sets().delete("ss", &Default::default()).await?;
    wait_claims(&env, &[]).await?;
    env.wait_pods(&[], &[]).await?;
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_scaled_delete_claims_go_with_condemned_pods_after_adopting_a_pod() -> Result<()> {
    // Ref: e2e "Non-retain StatefulSetPersistentVolumeClaimPolicy should delete PVCs after
    // adopting pod (WhenScaled)"
    let env = start().await?;
    let mut set = with_claims(new_set("ss", 3));
    set["spec"]["persistentVolumeClaimRetentionPolicy"] =
        serde_json::json!({"whenScaled": "Delete"});
    let set = env.create_set(set).await?;
    let uid = set.metadata.uid.clone().unwrap_or_default();
    env.wait_ready("ss", 3).await?;
    wait_claims(&env, &["datadir-ss-0", "datadir-ss-1", "datadir-ss-2"]).await?;
    orphan_and_wait_for_adoption(&env, "ss-2", &uid).await?;
    env.scale("ss", 1).await?;
    env.wait_ready("ss", 1).await?;
    wait_claims(&env, &["datadir-ss-0"]).await?;
    env.shutdown().await;
    Ok(())
}

// A controller that starts over existing sets (as after a server restart) reads their revisions
// from its first list and finds each set's template among them: no new revision, no collision,
// no pod replaced. (A list once spliced the resource version into the revision's template, so
// every restart rolled every set.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_started_over_a_running_set_keeps_its_revision_and_pods() -> Result<()> {
    use k8s_openapi::api::apps::v1::ControllerRevision;
    use kube::api::{Api, ListParams};
    use stead_controllers::statefulset::{self, SyncLog};

    let env = start().await?;
    env.create_set(new_set("keep", 2)).await?;
    env.wait_ready("keep", 2).await?;
    let revisions: Api<ControllerRevision> = Api::namespaced(env.client.clone(), NS);
    let names = |list: kube::core::ObjectList<ControllerRevision>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|r| r.metadata.name)
            .collect()
    };
    let revisions_before = names(revisions.list(&ListParams::default()).await?);
    let uids = |pods: Vec<k8s_openapi::api::core::v1::Pod>| -> Vec<String> {
        pods.into_iter().filter_map(|p| p.metadata.uid).collect()
    };
    let pods_before = uids(env.live_pods().await?);
    let status_before = env.revisions_of("keep").await?;

    let syncs = std::sync::Arc::new(SyncLog::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let second = tokio::spawn(statefulset::run_with(
        env.client.clone(),
        statefulset::KubeEffects::new(env.client.clone()),
        statefulset::Config {
            syncs: Some(syncs.clone()),
            ..statefulset::Config::default()
        },
        stead_testkit::stopped(rx),
    ));
    tokio::time::timeout(stead_testkit::PATIENCE, syncs.wait_for("default/keep", 1))
        .await
        .map_err(|_| anyhow::anyhow!("the second controller never synced the set"))?;
    // A few more rounds for both controllers.
    env.settle("keep", 2).await?;
    let _ = stop.send(true);
    let _ = second.await;

    assert_eq!(
        names(revisions.list(&ListParams::default()).await?),
        revisions_before
    );
    assert_eq!(env.revisions_of("keep").await?, status_before);
    let set = env.sets().get("keep").await?;
    assert_eq!(status_of(&set).collision_count.unwrap_or(0), 0);
    assert_eq!(uids(env.live_pods().await?), pods_before);
    env.shutdown().await;
    Ok(())
}
