//! Randomized worlds (STYLE §6): proptest drives pods, scaling, template and partition changes
//! over the policy matrix and checks the spec §9 invariants after every sync, then requires
//! convergence once the world is calm.

use proptest::prelude::*;

use super::fixtures::*;
use super::sim::{World, check_converged};
use crate::statefulset::Features;

#[derive(Clone, Debug)]
enum Update {
    RollingUpdate {
        partition: i32,
        max_unavailable: Option<i32>,
    },
    OnDelete,
}

#[derive(Clone, Debug)]
struct Config {
    parallel: bool,
    strategy: Update,
    max_unavailable_feature: bool,
    when_deleted: &'static str,
    when_scaled: &'static str,
    replicas: i32,
    start: i32,
    min_ready: i32,
    claims: bool,
    slow_termination: bool,
}

#[derive(Clone, Debug)]
enum Event {
    /// Kubelet moves pod `i` one step (Pending → Running → Ready).
    Advance(i32),
    /// Pod `i` loses readiness.
    Unready(i32),
    /// Pod `i` fails (or, with the flag, ends Succeeded).
    Fail(i32, bool),
    /// Someone deletes pod `i`.
    Delete(i32),
    /// Terminating pod `i` finishes.
    Vanish(i32),
    Scale(i32),
    Image(u8),
    Partition(i32),
    Start(i32),
    Tick,
    Sync,
}

fn config() -> impl proptest::strategy::Strategy<Value = Config> {
    let strategy = prop_oneof![
        (0..4i32, proptest::option::of(1..4i32)).prop_map(|(partition, max_unavailable)| {
            Update::RollingUpdate {
                partition,
                max_unavailable,
            }
        }),
        Just(Update::OnDelete),
    ];
    let policy = prop_oneof![Just("Retain"), Just("Delete")];
    (
        any::<bool>(),
        strategy,
        any::<bool>(),
        policy.clone(),
        policy,
        0..5i32,
        0..3i32,
        prop_oneof![Just(0), Just(10)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                parallel,
                strategy,
                max_unavailable_feature,
                when_deleted,
                when_scaled,
                replicas,
                start,
                min_ready,
                claims,
                slow_termination,
            )| Config {
                parallel,
                strategy,
                max_unavailable_feature,
                when_deleted,
                when_scaled,
                replicas,
                start,
                min_ready,
                claims,
                slow_termination,
            },
        )
}

fn event() -> impl proptest::strategy::Strategy<Value = Event> {
    prop_oneof![
        6 => (0..8i32).prop_map(Event::Advance),
        1 => (0..8i32).prop_map(Event::Unready),
        1 => (0..8i32, any::<bool>()).prop_map(|(i, s)| Event::Fail(i, s)),
        1 => (0..8i32).prop_map(Event::Delete),
        2 => (0..8i32).prop_map(Event::Vanish),
        1 => (0..6i32).prop_map(Event::Scale),
        1 => (1..4u8).prop_map(Event::Image),
        1 => (0..5i32).prop_map(Event::Partition),
        1 => (0..3i32).prop_map(Event::Start),
        2 => Just(Event::Tick),
        8 => Just(Event::Sync),
    ]
}

fn build(c: &Config) -> World {
    let mut s = with_policy(set("web", c.replicas), c.when_deleted, c.when_scaled);
    if c.parallel {
        s = parallel(s);
    }
    s = match c.strategy {
        Update::RollingUpdate {
            partition,
            max_unavailable,
        } => with_partition(s, partition, max_unavailable),
        Update::OnDelete => on_delete(s),
    };
    if c.start > 0 {
        s = with_start(s, c.start);
    }
    if c.claims {
        s = with_claim_template(s, "data");
    }
    spec_mut(&mut s).min_ready_seconds = Some(c.min_ready);
    spec_mut(&mut s).revision_history_limit = Some(2);
    World::new(
        s,
        Features {
            max_unavailable_statefulset: c.max_unavailable_feature,
        },
        c.slow_termination,
    )
}

fn pod_name(_: &World, i: i32) -> String {
    format!("web-{i}")
}

fn apply(w: &mut World, e: &Event) -> Result<(), String> {
    match e {
        Event::Advance(i) => w.advance_pod(&pod_name(w, *i)),
        Event::Unready(i) => {
            let name = pod_name(w, *i);
            if w.pods
                .get(&name)
                .is_some_and(|p| !crate::statefulset::health::is_terminating(p))
            {
                w.set_phase(&name, "Running", false);
            }
        }
        Event::Fail(i, succeeded) => w.set_phase(
            &pod_name(w, *i),
            if *succeeded { "Succeeded" } else { "Failed" },
            false,
        ),
        Event::Delete(i) => {
            let name = pod_name(w, *i);
            let now = at(w.now);
            if let Some(p) = w.pods.get_mut(&name) {
                p.metadata
                    .deletion_timestamp
                    .get_or_insert(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
            }
        }
        Event::Vanish(i) => {
            let name = pod_name(w, *i);
            if w.pods
                .get(&name)
                .is_some_and(crate::statefulset::health::is_terminating)
            {
                w.remove_pod(&name);
            }
        }
        Event::Scale(n) => w.change(|s| spec_mut(s).replicas = Some(*n)),
        Event::Image(i) => w.change(|s| spec_mut(s).template = template(&format!("img:{i}"))),
        Event::Partition(p) => w.change(|s| {
            if let Some(ru) = spec_mut(s)
                .update_strategy
                .as_mut()
                .and_then(|u| u.rolling_update.as_mut())
            {
                ru.partition = Some(*p);
            }
        }),
        Event::Start(st) => w.change(|s| {
            spec_mut(s).ordinals =
                Some(k8s_openapi::api::apps::v1::StatefulSetOrdinals { start: Some(*st) })
        }),
        Event::Tick => w.now += 7,
        Event::Sync => {
            w.sync()?;
        }
    }
    Ok(())
}

fn run(c: &Config, events: &[Event], lower_partition: bool) -> Result<(), String> {
    let mut w = build(c);
    w.sync()?;
    for (step, e) in events.iter().enumerate() {
        apply(&mut w, e).map_err(|err| format!("step {step} {e:?}: {err}"))?;
    }
    if lower_partition {
        apply(&mut w, &Event::Partition(0))?;
    }
    // Calm: every pod progresses, terminations finish, time passes. Bounded steps.
    let bound = 12 * (spec_replicas(&w) + 6);
    for _ in 0..bound {
        let p = w.sync().map_err(|err| format!("calm: {err}"))?;
        if p.actions.is_empty() && check_converged(&w).is_ok() {
            return Ok(());
        }
        w.calm_step();
    }
    check_converged(&w).map_err(|err| format!("did not converge in {bound} syncs: {err}"))
}

fn spec_replicas(w: &World) -> usize {
    usize::try_from(crate::statefulset::spec::replicas(&w.set)).unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_worlds_keep_the_invariants_and_converge_when_calm(
        c in config(),
        events in proptest::collection::vec(event(), 0..80),
    ) {
        // Ref: stateful_set_control_test.go assertMonotonicInvariants / assertBurstInvariants /
        // assertUpdateInvariants, driven like scaleUpStatefulSetControl
        if let Err(e) = run(&c, &events, false) {
            prop_assert!(false, "{e}\nconfig: {c:?}");
        }
    }

    #[test]
    fn every_pod_reaches_the_update_revision_once_the_partition_is_lowered(
        c in config().prop_filter("rolling update", |c| matches!(c.strategy, Update::RollingUpdate { .. })),
        events in proptest::collection::vec(event(), 0..40),
    ) {
        if let Err(e) = run(&c, &events, true) {
            prop_assert!(false, "{e}\nconfig: {c:?}");
        }
    }
}
