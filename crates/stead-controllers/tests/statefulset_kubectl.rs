//! `kubectl rollout status|history|undo|restart sts/web` (kubectl 1.33) against the API server
//! with the StatefulSet controller running; the test plays the kubelet.

#[path = "statefulset_support/mod.rs"]
mod support;

use anyhow::Result;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_history_undo_and_restart() -> Result<()> {
    // Ref: spec §5.7 (kubectl rollout undo / history over ControllerRevisions)
    let env = start().await?;
    env.create_set(new_set("web", 3)).await?;
    let (ok, out, err) = env.kubectl(&["rollout", "status", "sts/web", "--timeout=30s"])?;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("statefulset rolling update complete 3 pods at revision web-"),
        "{out}"
    );
    let (first, _) = env.revisions_of("web").await?;

    env.set_image("web", NEW_IMAGE).await?;
    let (ok, out, err) = env.kubectl(&["rollout", "status", "sts/web", "--timeout=30s"])?;
    assert!(ok, "{out}{err}");
    let set = env.wait_rolling_update("web").await?;
    let second = status_of(&set).update_revision.unwrap_or_default();
    assert_ne!(first, second);
    for pod in env.live_pods().await? {
        assert_eq!(image(&pod), NEW_IMAGE);
    }

    let (ok, out, err) = env.kubectl(&["rollout", "history", "sts/web"])?;
    assert!(ok, "{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with(char::is_numeric))
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(rows, ["1", "2"], "{out}");

    // Undo goes back to revision 1's template; the controller reuses that revision (renumbered).
    let (ok, out, err) = env.kubectl(&["rollout", "undo", "sts/web"])?;
    assert!(ok, "{err}");
    assert!(out.contains("statefulset.apps/web rolled back"), "{out}");
    let set = eventually("rolled back to the first revision", || async {
        let s = env.wait_rolling_update("web").await?;
        Ok((status_of(&s).update_revision.as_deref() == Some(first.as_str())).then_some(s))
    })
    .await?;
    assert_eq!(
        status_of(&set).current_revision.as_deref(),
        Some(first.as_str())
    );
    for pod in env.live_pods().await? {
        assert_eq!(
            (image(&pod), revision(&pod)),
            (OLD_IMAGE.into(), first.clone())
        );
    }
    let (ok, out, err) = env.kubectl(&["rollout", "history", "sts/web"])?;
    assert!(ok, "{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with(char::is_numeric))
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        rows,
        ["2", "3"],
        "rollbacks renumber the reused revision: {out}"
    );

    // Restart: a new revision (restartedAt annotation), every pod replaced.
    let before: Vec<String> = env
        .live_pods()
        .await?
        .iter()
        .map(|p| p.metadata.uid.clone().unwrap_or_default())
        .collect();
    let (ok, out, err) = env.kubectl(&["rollout", "restart", "sts/web"])?;
    assert!(ok, "{err}");
    assert!(out.contains("statefulset.apps/web restarted"), "{out}");
    let (ok, out, err) = env.kubectl(&["rollout", "status", "sts/web", "--timeout=30s"])?;
    assert!(ok, "{out}{err}");
    let set = env.wait_rolling_update("web").await?;
    let third = status_of(&set).update_revision.unwrap_or_default();
    assert!(![first.as_str(), second.as_str()].contains(&third.as_str()));
    for pod in env.live_pods().await? {
        assert!(!before.contains(&pod.metadata.uid.clone().unwrap_or_default()));
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        assert!(annotations.contains_key("kubectl.kubernetes.io/restartedAt"));
    }
    env.shutdown().await;
    Ok(())
}
