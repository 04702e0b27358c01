//! The `endpoints.kubernetes.io/last-change-trigger-time` value (upstream `TriggerTimeTracker`):
//! when the change that a write publishes happened, so that consumers can measure
//! change-to-programmed latency. A pod's trigger time is its `Ready` condition's
//! `lastTransitionTime`, a service's its creation; a sync reports the earliest trigger time that
//! moved since the previous sync of the same service (the service's creation on its first sync),
//! or none.

use std::collections::HashMap;

use jiff::Timestamp;

use super::view::{PodView, ServiceView};

#[derive(Debug, Default)]
struct State {
    pods: HashMap<String, Timestamp>,
    service: Option<Timestamp>,
}

/// Per-service memory of the trigger times seen at the previous sync.
#[derive(Debug, Default)]
pub struct TriggerTimes {
    states: HashMap<(String, String), State>,
}

impl TriggerTimes {
    /// The trigger time of a sync of `svc` over `pods`, remembering what it saw.
    pub fn observe<'a>(
        &mut self,
        svc: &ServiceView,
        pods: impl IntoIterator<Item = &'a PodView>,
    ) -> Option<Timestamp> {
        let known = self.states.contains_key(&svc.key());
        let state = self.states.entry(svc.key()).or_default();
        let mut earliest: Option<Timestamp> = None;
        let mut seen = HashMap::new();
        for pod in pods {
            let Some(t) = pod.ready_changed else {
                continue;
            };
            if state.pods.get(&pod.name).is_none_or(|old| t > *old) {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
            seen.insert(pod.name.clone(), t);
        }
        if let Some(t) = svc.created
            && state.service.is_none_or(|old| t > old)
        {
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        }
        state.pods = seen;
        state.service = svc.created;
        if known { earliest } else { svc.created }
    }

    /// Forgets a deleted service.
    pub fn forget(&mut self, namespace: &str, name: &str) {
        self.states
            .remove(&(namespace.to_string(), name.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn svc(created: Timestamp) -> ServiceView {
        ServiceView {
            namespace: "ns".into(),
            name: "s".into(),
            uid: "u".into(),
            labels: BTreeMap::new(),
            selector: Some(BTreeMap::new()),
            external_name: false,
            cluster_ip: "None".into(),
            ip_families: Vec::new(),
            ports: Vec::new(),
            publish_not_ready: false,
            created: Some(created),
        }
    }

    fn pod(name: &str, ready_changed: Timestamp) -> PodView {
        PodView {
            namespace: "ns".into(),
            name: name.into(),
            uid: format!("{name}-uid"),
            labels: BTreeMap::new(),
            ips: vec!["10.0.0.1".into()],
            ready: true,
            ready_changed: Some(ready_changed),
            terminating: false,
            terminal: false,
            hostname: String::new(),
            subdomain: String::new(),
            node_name: String::new(),
            ports: Vec::new(),
            zone: None,
        }
    }

    #[test]
    fn first_sync_reports_creation_then_only_the_earliest_moved_pod() {
        let t = |s: i64| Timestamp::from_second(1_700_000_000 + s).unwrap();
        let mut tt = TriggerTimes::default();
        let s = svc(t(0));
        assert_eq!(tt.observe(&s, &[pod("a", t(5))]), Some(t(0)));
        assert_eq!(tt.observe(&s, &[pod("a", t(5))]), None, "nothing moved");
        assert_eq!(
            tt.observe(&s, &[pod("a", t(9)), pod("b", t(7))]),
            Some(t(7))
        );
        tt.forget("ns", "s");
        assert_eq!(tt.observe(&s, &[pod("a", t(9))]), Some(t(0)));
    }
}
