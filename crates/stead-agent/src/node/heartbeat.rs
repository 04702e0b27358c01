//! A node's presence in the API: it registers its Node ([`register`]), then renews the
//! node's Lease every 10 s and re-posts the node status every 5 minutes ([`keep_alive`]), as a
//! kubelet does (`nodeLeaseDurationSeconds` 40, renewal at a quarter of it,
//! `nodeStatusReportFrequency` 5 min).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Error};
use serde_json::json;

use super::host::HostFacts;
use super::object::{
    LEASE_NAMESPACE, NodeProfile, lease_object, lease_spec, node_annotations, node_labels,
    node_object, node_status,
};

/// Lease renewal interval.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// Node status re-posted every this many renewals (5 minutes).
const STATUS_EVERY_RENEWALS: u32 = 30;
/// Wait after a failed renewal.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The registered node.
#[derive(Debug, Clone)]
pub struct Registered {
    pub uid: String,
    /// When the node registered: the conditions' transition time.
    pub since: Timestamp,
}

/// Creates the Node `name` (or, if it exists from an earlier run, re-asserts its labels) and
/// writes its status.
pub async fn register(
    client: &Client,
    name: &str,
    host: &HostFacts,
    profile: &NodeProfile,
) -> Result<Registered, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = Timestamp::now();
    let node: Node =
        serde_json::from_value(node_object(name, host, profile, now)).map_err(Error::SerdeError)?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(Error::Api(s)) if s.is_already_exists() => {
            let labels = json!({"metadata": {
                "labels": node_labels(name, host),
                "annotations": node_annotations(profile),
            }});
            nodes
                .patch(name, &PatchParams::default(), &Patch::Merge(&labels))
                .await?;
        }
        Err(e) => return Err(e),
    }
    // Create may drop the status (it is a subresource), so it is always written here.
    let status = json!({"status": node_status(name, host, profile, now, now)});
    let node = nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(Registered {
        uid: node.metadata.uid.unwrap_or_default(),
        since: now,
    })
}

/// Renews the Lease and re-posts the node status forever (the caller stops it by dropping it).
/// Failures are logged and retried after a second.
pub async fn keep_alive(
    client: Client,
    name: String,
    host: HostFacts,
    profile: NodeProfile,
    node: Registered,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let nodes: Api<Node> = Api::all(client);
    let mut renewals: u32 = 0;
    loop {
        let wait = match renew(&leases, &name, &node.uid).await {
            Ok(()) => {
                renewals = renewals.wrapping_add(1);
                if renewals.is_multiple_of(STATUS_EVERY_RENEWALS) {
                    let status = json!({"status": node_status(&name, &host, &profile, node.since, Timestamp::now())});
                    if let Err(e) = nodes
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                    {
                        tracing::warn!(node = %name, error = %e, "node: status heartbeat failed");
                    }
                }
                RENEW_EVERY
            }
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "node: lease renewal failed");
                RETRY_AFTER
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// One renewal: a merge patch of the spec, or the Lease's creation if it does not exist.
async fn renew(leases: &Api<Lease>, name: &str, node_uid: &str) -> Result<(), Error> {
    let now = Timestamp::now();
    let patch = json!({"spec": lease_spec(name, now)});
    match leases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(Error::Api(s)) if s.is_not_found() => {
            let lease: Lease = serde_json::from_value(lease_object(name, node_uid, now))
                .map_err(Error::SerdeError)?;
            leases.create(&PostParams::default(), &lease).await?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Registers the node, retrying with a doubling delay (at most 5 s) until it succeeds.
pub async fn register_until_done(
    client: &Client,
    name: &str,
    host: &HostFacts,
    profile: &NodeProfile,
) -> Registered {
    let mut delay = Duration::from_millis(100);
    loop {
        match register(client, name, host, profile).await {
            Ok(r) => return r,
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "node: registration failed, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
