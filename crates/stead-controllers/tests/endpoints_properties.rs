//! Randomized worlds for the endpoints planners (STYLE §6): pods come, go, turn ready or not,
//! terminate, serve the named port or not; the service changes ports and
//! `publishNotReadyAddresses`. After every step the slice plan is applied and checked against
//! invariants computed independently of the planner, and planning again must change nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use proptest::prelude::*;
use stead_controllers::endpoints::SlicePlan;
use stead_controllers::endpoints::slices::{MAX_ENDPOINTS_PER_SLICE, plan_slices};
use stead_controllers::endpoints::subsets::{canonical, desired_subsets};
use stead_controllers::endpoints::view::{
    ContainerPortView, Family, PodView, ServicePortView, ServiceView, TargetPort,
};

#[derive(Debug, Clone)]
enum Step {
    /// Adds pods `first..first+count` (ready, serving the named port).
    Add {
        first: u16,
        count: u16,
        ready: bool,
        named: bool,
    },
    Remove(u16),
    ToggleReady(u16),
    Terminate(u16),
    TogglePublish,
    ChangePort(i32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..300u16, 1..120u16, any::<bool>(), any::<bool>()).prop_map(
            |(first, count, ready, named)| Step::Add {
                first,
                count,
                ready,
                named
            }
        ),
        (0..300u16).prop_map(Step::Remove),
        (0..300u16).prop_map(Step::ToggleReady),
        (0..300u16).prop_map(Step::Terminate),
        Just(Step::TogglePublish),
        (1..4i32).prop_map(|p| Step::ChangePort(8000 + p)),
    ]
}

fn service(port: i32, publish: bool) -> ServiceView {
    ServiceView {
        namespace: "ns".into(),
        name: "db".into(),
        uid: "db-uid".into(),
        labels: BTreeMap::new(),
        selector: Some(BTreeMap::from([("app".into(), "db".into())])),
        external_name: false,
        cluster_ip: "None".into(),
        ip_families: vec![Family::IPv4],
        ports: vec![
            ServicePortView {
                name: "web".into(),
                port: 80,
                protocol: "TCP".into(),
                target: TargetPort::Number(port),
                app_protocol: None,
            },
            ServicePortView {
                name: "named".into(),
                port: 81,
                protocol: "TCP".into(),
                target: TargetPort::Name("metrics".into()),
                app_protocol: None,
            },
        ],
        publish_not_ready: publish,
        created: None,
    }
}

fn pod(i: u16, ready: bool, named: bool) -> PodView {
    PodView {
        namespace: "ns".into(),
        name: format!("db-{i}"),
        uid: format!("uid-{i}"),
        labels: BTreeMap::from([("app".into(), "db".into())]),
        ips: vec![format!("10.42.{}.{}", i / 200, i % 200)],
        ready,
        ready_changed: None,
        terminating: false,
        terminal: false,
        hostname: format!("db-{i}"),
        subdomain: "db".into(),
        node_name: "n".into(),
        ports: if named {
            vec![ContainerPortView {
                name: "metrics".into(),
                port: 9000,
                protocol: "TCP".into(),
            }]
        } else {
            Vec::new()
        },
        zone: None,
    }
}

fn apply(existing: &mut Vec<EndpointSlice>, plan: SlicePlan, next: &mut u64) {
    for name in &plan.delete {
        let before = existing.len();
        existing.retain(|s| s.metadata.name.as_ref() != Some(name));
        assert_eq!(existing.len(), before - 1, "deletes an existing slice");
    }
    for s in plan.update {
        let slot = existing
            .iter_mut()
            .find(|e| e.metadata.name == s.metadata.name)
            .expect("updates an existing slice");
        *slot = s;
    }
    for mut s in plan.create {
        assert!(s.metadata.name.is_none());
        *next += 1;
        s.metadata.name = Some(format!("db-slice-{next}"));
        existing.push(s);
    }
}

/// The invariants, computed from the pods directly.
fn check(svc: &ServiceView, pods: &BTreeMap<u16, PodView>, slices: &[EndpointSlice]) {
    let published: Vec<&PodView> = pods.values().filter(|p| !p.ips.is_empty()).collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for s in slices {
        assert!(s.endpoints.len() <= MAX_ENDPOINTS_PER_SLICE);
        assert_eq!(s.address_type, "IPv4");
        let ports: Vec<(String, i32)> = s
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.port.unwrap_or(0)))
            .collect();
        for e in &s.endpoints {
            let name = e.target_ref.as_ref().and_then(|t| t.name.clone()).unwrap();
            *seen.entry(name.clone()).or_default() += 1;
            let p = published
                .iter()
                .find(|p| p.name == name)
                .expect("a live pod");
            let mut want = vec![(
                "web".to_string(),
                match &svc.ports[0].target {
                    TargetPort::Number(n) => *n,
                    TargetPort::Name(_) => unreachable!(),
                },
            )];
            if !p.ports.is_empty() {
                want.push(("named".into(), 9000));
            }
            assert_eq!(ports, want, "{name} sits in a slice of its own port set");
            let c = e.conditions.clone().unwrap();
            assert_eq!(c.serving, Some(p.ready));
            assert_eq!(c.terminating, Some(p.terminating));
            assert_eq!(
                c.ready,
                Some(svc.publish_not_ready || (p.ready && !p.terminating))
            );
            assert_eq!(e.hostname.as_deref(), Some(p.hostname.as_str()));
        }
    }
    assert_eq!(
        seen.len(),
        published.len(),
        "every pod with an IP is published"
    );
    assert!(seen.values().all(|n| *n == 1), "exactly once: {seen:?}");
    let empty = slices.iter().filter(|s| s.endpoints.is_empty()).count();
    if published.is_empty() {
        assert_eq!((slices.len(), empty), (1, 1), "one placeholder");
    } else {
        assert_eq!(empty, 0, "no empty slice beside endpoints");
    }

    let refs: Vec<&PodView> = pods.values().collect();
    let subsets = desired_subsets(svc, refs.iter().copied());
    assert_eq!(canonical(&subsets), subsets, "subsets are canonical");
    let listed: usize = subsets
        .iter()
        .filter(|s| {
            s.ports
                .iter()
                .flatten()
                .any(|p| p.name.as_deref() == Some("web"))
        })
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    let expected = published
        .iter()
        .filter(|p| svc.publish_not_ready || !p.terminating)
        .count();
    assert_eq!(
        listed, expected,
        "the numbered port lists every eligible pod"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn slices_stay_complete_bounded_and_settled(steps in proptest::collection::vec(step(), 1..30)) {
        let mut port = 8000;
        let mut publish = false;
        let mut pods: BTreeMap<u16, PodView> = BTreeMap::new();
        let mut slices: Vec<EndpointSlice> = Vec::new();
        let mut next = 0u64;
        for step in steps {
            match step {
                Step::Add { first, count, ready, named } => {
                    for i in first..first.saturating_add(count).min(400) {
                        pods.entry(i).or_insert_with(|| pod(i, ready, named));
                    }
                }
                Step::Remove(i) => {
                    pods.remove(&i);
                }
                Step::ToggleReady(i) => {
                    if let Some(p) = pods.get_mut(&i) {
                        p.ready = !p.ready;
                    }
                }
                Step::Terminate(i) => {
                    if let Some(p) = pods.get_mut(&i) {
                        p.terminating = true;
                    }
                }
                Step::TogglePublish => publish = !publish,
                Step::ChangePort(p) => port = p,
            }
            let svc = service(port, publish);
            let refs: Vec<&PodView> = pods.values().collect();
            let existing: Vec<EndpointSlice> = slices.clone();
            let existing_refs: Vec<&EndpointSlice> = existing.iter().collect();
            let plan = plan_slices(&svc, &refs, &existing_refs, None);
            apply(&mut slices, plan, &mut next);
            check(&svc, &pods, &slices);
            let again: Vec<&EndpointSlice> = slices.iter().collect();
            let replan = plan_slices(&svc, &refs, &again, None);
            prop_assert!(replan.is_empty(), "settled after one plan: {:?}", replan);
        }
    }
}
