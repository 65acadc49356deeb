//! Unit tests of `store`.

use super::testing::{answered, config, failed};
use super::*;

/// One cycle in which the node answers with `node_root` and each peer of the plan
/// answers `(node_id, root)` by its label.
fn cycle(store: &Store, node_root: &str, answers: &[(&str, &str, &str)], now: Instant) {
    let plan = store.pull_plan();
    let peers = plan
        .peers
        .iter()
        .filter_map(|target| {
            let (_, node_id, root) = answers.iter().find(|a| a.0 == target.label)?;
            Some((target.id, answered(node_id, root, now)))
        })
        .collect();
    store.record_cycle(
        Some((plan.node.id, answered("local", node_root, now))),
        peers,
        now,
    );
}

fn peer<'v>(view: &'v View, label: &str) -> Option<&'v PeerView> {
    view.peers.iter().find(|p| p.target.label == label)
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_the_windows_of_peers_that_stay_and_forgets_removed_ones() {
    let store = Store::new(&config(
        &["a=http://127.0.0.1:2", "b=http://127.0.0.1:3"],
        &[],
    ));
    let now = Instant::now();
    cycle(&store, "r", &[("a", "id-a", "r"), ("b", "id-b", "r")], now);
    // b is renamed to bee (same URL: the same peer), a is removed, c is added.
    store.reconfigure(&config(
        &["bee=http://127.0.0.1:3", "c=http://127.0.0.1:4"],
        &[],
    ));
    let view = store.view(now);
    assert!(peer(&view, "a").is_none());
    let kept = peer(&view, "bee").unwrap();
    assert_eq!(kept.target.polls_total, 1);
    assert_eq!(kept.target.node_id.as_deref(), Some("id-b"));
    assert_eq!(peer(&view, "c").unwrap().target.polls_total, 0);
    assert_eq!(view.federation.peers_configured, 2);
}

#[tokio::test(start_paused = true)]
async fn a_peer_reporting_the_local_node_id_or_a_live_peers_is_refused() {
    let store = Store::new(&config(
        &[
            "a=http://127.0.0.1:2",
            "b=http://127.0.0.1:3",
            "c=http://127.0.0.1:4",
        ],
        &[],
    ));
    let now = Instant::now();
    // b claims a's identity, c the local node's.
    cycle(
        &store,
        "r",
        &[("a", "id-a", "r"), ("b", "id-a", "r"), ("c", "local", "r")],
        now,
    );
    let view = store.view(now);
    assert!(peer(&view, "a").unwrap().identity_problem.is_none());
    let impostor = peer(&view, "b").unwrap();
    assert!(impostor
        .identity_problem
        .as_deref()
        .unwrap()
        .contains("already reported by peer \"a\""));
    assert!(!impostor.target.up);
    let mirror = peer(&view, "c").unwrap();
    assert!(mirror
        .identity_problem
        .as_deref()
        .unwrap()
        .contains("self-peering"));
}

#[tokio::test(start_paused = true)]
async fn divergence_streaks_count_cycles_and_start_over_when_reset() {
    let store = Store::new(&config(&["a=http://127.0.0.1:2"], &[]));
    let start = Instant::now();
    for cycle_index in 0..3u32 {
        let now = start + Duration::from_secs(cycle_index.into());
        cycle(&store, "mine", &[("a", "id-a", "theirs")], now);
    }
    let now = start + Duration::from_secs(2);
    let facts = store.reconcile_facts(now);
    assert_eq!(facts.local_root.as_deref(), Some("mine"));
    assert_eq!(facts.peers[0].streak, 3);
    assert_eq!(store.view(now).federation.peers_diverge, 1);
    store.reset_streaks();
    assert_eq!(store.reconcile_facts(now).peers[0].streak, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_node_is_never_a_reconciliation_candidate() {
    let store = Store::new(&config(&["a=http://127.0.0.1:2"], &[]));
    let now = Instant::now();
    cycle(&store, "mine", &[("a", "id-a", "theirs")], now);
    let plan = store.pull_plan();
    store.record_cycle(
        Some((plan.node.id, failed(FailureReason::Connect, now))),
        HashMap::new(),
        now,
    );
    assert_eq!(store.reconcile_facts(now).local_root, None);
}
