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
async fn a_peer_reporting_the_local_node_id_is_refused() {
    let store = Store::new(&config(&["c=http://127.0.0.1:4"], &[]));
    let now = Instant::now();
    cycle(&store, "r", &[("c", "local", "r")], now);
    let mirror = store.view(now);
    let mirror = peer(&mirror, "c").unwrap();
    assert!(mirror
        .identity_problem
        .as_deref()
        .unwrap()
        .contains("self-peering"));
    assert!(!mirror.target.up);
}

/// Regression (issue 19, item 4): whoever reported a node_id first owned it, so impostors
/// listed before the honest peer took its identity, got it marked down, and voted in its
/// place. Now a node_id two live members report is contested: both stay up, both are
/// flagged, neither votes — whatever the order of the list.
#[tokio::test(start_paused = true)]
async fn a_node_id_reported_by_two_members_is_contested_and_neither_votes() {
    let store = Store::new(&config(
        &[
            "impostor=http://127.0.0.1:2",
            "honest=http://127.0.0.1:3",
            "other=http://127.0.0.1:4",
        ],
        &[],
    ));
    let start = Instant::now();
    let answers = [
        ("impostor", "id-h", "forged"),
        ("honest", "id-h", "r"),
        ("other", "id-o", "r"),
    ];
    cycle(&store, "r", &answers, start);
    let view = store.view(start);
    for label in ["impostor", "honest"] {
        let claimant = peer(&view, label).unwrap();
        assert!(claimant.target.up, "{label} is not marked down for it");
        assert!(claimant.identity_contested, "{label}");
        assert!(
            claimant
                .identity_problem
                .as_deref()
                .unwrap()
                .contains("\"id-h\" is contested"),
            "{label}: {:?}",
            claimant.identity_problem
        );
    }
    assert!(!peer(&view, "other").unwrap().identity_contested);
    let facts = store.reconcile_facts(start);
    let voters: Vec<&str> = facts.peers.iter().map(|p| p.peer.as_str()).collect();
    assert_eq!(voters, ["other"], "the claimants have no vote");
    assert_eq!(facts.live_peers, 1);

    // The impostor stops answering: once its claim is no longer live, the honest peer
    // votes again.
    let later = start + Duration::from_secs(120);
    cycle(
        &store,
        "r",
        &[("honest", "id-h", "r"), ("other", "id-o", "r")],
        later,
    );
    let view = store.view(later);
    let honest = peer(&view, "honest").unwrap();
    assert!(!honest.identity_contested && honest.identity_problem.is_none());
    let facts = store.reconcile_facts(later);
    let mut voters: Vec<&str> = facts.peers.iter().map(|p| p.peer.as_str()).collect();
    voters.sort();
    assert_eq!(voters, ["honest", "other"]);
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

/// Review finding (issue 20's store change): a pull that ends after its peer stopped being
/// observed (here: it became this node, by a reload that named it) made pull state again
/// for a member shown nowhere.
#[tokio::test(start_paused = true)]
async fn a_pull_that_ends_after_its_peer_left_the_sample_is_dropped() {
    let store = Store::new(&config(
        &["a=http://127.0.0.1:2", "b=http://127.0.0.1:3"],
        &[],
    ));
    let plan = store.pull_plan();
    store.reconfigure(&config(
        &["a=http://127.0.0.1:2", "b=http://127.0.0.1:3"],
        &[("name", "b")],
    ));
    let now = Instant::now();
    let peers = plan
        .peers
        .iter()
        .map(|t| (t.id, answered(&format!("id-{}", t.label), "r", now)))
        .collect();
    store.record_cycle(
        Some((plan.node.id, answered("local", "r", now))),
        peers,
        now,
    );
    let state = store.lock();
    let b = state.peers.iter().find(|p| p.target.label == "b").unwrap();
    assert_eq!(b.role, Role::Myself);
    assert!(b.target.pulls().is_none());
    let a = state.peers.iter().find(|p| p.target.label == "a").unwrap();
    assert_eq!(a.target.pulls().unwrap().polls_total, 1);
}
