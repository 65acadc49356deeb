//! Quality, freshness, p95, novelty, divergence and identity with exact numbers, computed
//! by the store from outcomes recorded at chosen moments of a paused tokio clock.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use peerscope::config::{self, Config, Sources};
use peerscope::figures::divergence::Relation;
use peerscope::pull::contract::decode_summary;
use peerscope::pull::failure::{FailureReason, PullError};
use peerscope::pull::outcome::{PullOutcome, TargetId};
use peerscope::store::Store;
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_secs(10);

fn config(peers: &[&str]) -> Config {
    let peer_urls: Vec<String> = peers.iter().map(|p| format!("http://{p}")).collect();
    let mut flags = vec![
        ("node", "http://127.0.0.1:8000"),
        ("interval", "10s"),
        ("timeout", "2s"),
        ("window", "100s"),
        ("live_max_age", "30s"),
    ];
    flags.extend(peer_urls.iter().map(|url| ("peers", url.as_str())));
    config::load(&Sources::flags(&flags)).unwrap()
}

fn summary(node_id: &str, root: &str, g_star: f64) -> String {
    format!(
        r#"{{"node_id":"{node_id}","timestamp":1000,"state_root":"{root}","metrics":{{"g_star":{g_star}}}}}"#
    )
}

fn ok(started: Instant, millis: u64, body: &str) -> PullOutcome {
    PullOutcome {
        started,
        duration: Duration::from_millis(millis),
        received_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1003),
        result: Ok(decode_summary(body.as_bytes()).unwrap()),
    }
}

fn failed(started: Instant, millis: u64) -> PullOutcome {
    PullOutcome {
        started,
        duration: Duration::from_millis(millis),
        received_at: SystemTime::UNIX_EPOCH,
        result: Err(PullError::new(FailureReason::Timeout, "test")),
    }
}

/// The local node's outcome, keyed by its id in the store's current plan.
fn local(store: &Store, outcome: PullOutcome) -> Option<(TargetId, PullOutcome)> {
    Some((store.pull_plan().node.id, outcome))
}

/// Peers' outcomes by label, keyed by their ids in the store's current plan.
fn outcomes(store: &Store, pairs: Vec<(&str, PullOutcome)>) -> HashMap<TargetId, PullOutcome> {
    let plan = store.pull_plan();
    pairs
        .into_iter()
        .map(|(label, o)| {
            let target = plan
                .peers
                .iter()
                .find(|t| t.label == label)
                .expect("a configured peer");
            (target.id, o)
        })
        .collect()
}

fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

#[tokio::test(start_paused = true)]
async fn quality_and_its_parts_are_exact() {
    let store = Store::new(&config(&["p:1"]));
    let start = Instant::now();
    let node = summary("local", "r", 0.5);
    let peer = summary("peer", "r", 0.5);
    // Cycle k at start + k·10s: peer latencies 100..=400 ms and one timeout in cycle 2.
    let latencies = [100, 400, 0, 200, 300];
    for (k, millis) in latencies.iter().enumerate() {
        let at = start + INTERVAL * k as u32;
        tokio::time::advance(at - Instant::now()).await;
        let peer_outcome = if *millis == 0 {
            failed(at, 2000)
        } else {
            ok(at, *millis, &peer)
        };
        let now = Instant::now() + Duration::from_millis(500);
        store.record_cycle(
            local(&store, ok(at, 5, &node)),
            outcomes(&store, vec![("p:1", peer_outcome)]),
            now,
        );
    }
    // Scrape 25 s after the last cycle started (the last success was received at +300 ms).
    let now = start + INTERVAL * 4 + Duration::from_secs(25);
    let view = store.view(now);
    let q = view.peers[0].quality.unwrap();
    close(q.parts.success_ratio, 4.0 / 5.0);
    // Nearest rank of the 4 successes [0.1, 0.2, 0.3, 0.4]: ⌈0.95·4⌉ = 4 → 0.4 s.
    assert_eq!(q.latency_p95_seconds, Some(0.4));
    close(q.parts.latency_score, 1.0 - 0.4 / 2.0);
    let age = 25.0 - 0.3;
    close(q.parts.freshness, (-age / 30.0f64).exp());
    close(
        q.quality,
        0.5 * 0.8 + 0.3 * 0.8 + 0.2 * (-age / 30.0f64).exp(),
    );
    assert_eq!(view.peers[0].target.clock_skew_seconds, Some(-3.0));

    // 100 s later every sample has left the window: no quality series, and not live.
    let view = store.view(now + Duration::from_secs(100));
    assert!(view.peers[0].quality.is_none());
    assert!(!view.peers[0].target.live);
    assert_eq!(view.federation.peers_live, 0);
}

#[tokio::test(start_paused = true)]
async fn a_peer_without_attempts_has_no_quality_and_is_not_live() {
    let store = Store::new(&config(&["p:1"]));
    let view = store.view(Instant::now());
    assert!(view.peers[0].quality.is_none());
    assert_eq!(view.federation.peers_live, 0);
    assert_eq!(view.federation.peers_configured, 1);
}

#[tokio::test(start_paused = true)]
async fn novelty_is_the_spread_of_live_peers_g_star_only() {
    let store = Store::new(&config(&["a:1", "b:1", "c:1", "d:1"]));
    let t0 = Instant::now();
    store.record_cycle(
        local(&store, ok(t0, 1, &summary("local", "r", 0.9))),
        outcomes(
            &store,
            vec![
                ("a:1", ok(t0, 1, &summary("a", "r", 0.2))),
                ("b:1", ok(t0, 1, &summary("b", "r", 0.4))),
                ("c:1", ok(t0, 1, &summary("c", "r", 0.6))),
                ("d:1", failed(t0, 1)),
            ],
        ),
        t0,
    );
    let view = store.view(t0 + Duration::from_secs(1));
    let sigma = (0.08f64 / 3.0).sqrt();
    close(view.federation.novelty.g_star_stddev, sigma);
    close(view.federation.novelty.novelty, sigma / 0.5);
    assert_eq!(view.federation.peers_live, 3);

    // 40 s later only `a` answers again: the others are no longer live, so N = 0.
    let t1 = t0 + Duration::from_secs(40);
    tokio::time::advance(Duration::from_secs(40)).await;
    store.record_cycle(
        local(&store, ok(t1, 1, &summary("local", "r", 0.9))),
        outcomes(
            &store,
            vec![
                ("a:1", ok(t1, 1, &summary("a", "r", 0.2))),
                ("b:1", failed(t1, 1)),
                ("c:1", failed(t1, 1)),
                ("d:1", failed(t1, 1)),
            ],
        ),
        t1,
    );
    let view = store.view(t1);
    assert_eq!(view.federation.peers_live, 1);
    assert_eq!(view.federation.novelty.novelty, 0.0);

    // The page's history holds each cycle's headline figures, the same as the view's.
    let history = store.history(&peerscope::timeline::Anchor::now());
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].peers_live, 3);
    close(history[0].novelty, sigma / 0.5);
    assert_eq!((history[1].peers_live, history[1].novelty), (1, 0.0));
    close(history[1].at - history[0].at, 40.0);
    // 100 s window: after 60 s more, only the second point is within it.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(store.history(&peerscope::timeline::Anchor::now()).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn divergence_streaks_grow_hold_on_unknown_and_reset_on_agreement() {
    let store = Store::new(&config(&["a:1", "b:1"]));
    let cycle = |a: Option<&str>, b_root: &str| {
        let at = Instant::now();
        let a_outcome = match a {
            Some(root) => ok(at, 1, &summary("a", root, 0.5)),
            None => failed(at, 1),
        };
        store.record_cycle(
            local(&store, ok(at, 1, &summary("local", "r1", 0.5))),
            outcomes(
                &store,
                vec![
                    ("a:1", a_outcome),
                    ("b:1", ok(at, 1, &summary("b", b_root, 0.5))),
                ],
            ),
            at,
        );
        store.view(at)
    };
    cycle(Some("r2"), "r1");
    let view = cycle(Some("r2"), "r1");
    assert_eq!(view.peers[0].streak, 2);
    assert_eq!(view.peers[0].relation, Relation::Diverge);
    assert_eq!(view.peers[1].relation, Relation::Agree);
    assert_eq!(view.federation.divergence_ratio, 0.5);
    // A failed pull is not agreement: once `a`'s root is stale (older than live_max_age),
    // its relation is unknown and the streak holds.
    tokio::time::advance(Duration::from_secs(31)).await;
    let view = cycle(None, "r1");
    assert_eq!(view.peers[0].relation, Relation::Unknown);
    assert_eq!(view.peers[0].streak, 2);
    assert_eq!(view.federation.divergence_ratio, 0.0);
    assert_eq!(view.federation.peers_unknown, 1);
    let view = cycle(Some("r1"), "r1");
    assert_eq!(view.peers[0].streak, 0);
    assert_eq!(view.peers[0].relation, Relation::Agree);
}

#[tokio::test(start_paused = true)]
async fn identity_rules_exclude_self_and_duplicates_and_restart_changed_peers() {
    let store = Store::new(&config(&["a:1", "b:1", "c:1"]));
    let at = Instant::now();
    store.record_cycle(
        local(&store, ok(at, 1, &summary("local", "r", 0.5))),
        outcomes(
            &store,
            vec![
                ("a:1", ok(at, 1, &summary("twin", "r", 0.5))),
                ("b:1", ok(at, 1, &summary("twin", "r", 0.5))),
                ("c:1", ok(at, 1, &summary("local", "r", 0.5))),
            ],
        ),
        at,
    );
    let view = store.view(at);
    // Two members reporting one node_id: both up, both contested (issue 19), neither
    // refused; the one reporting the local node's node_id is refused.
    for (index, other) in [(0, "b:1"), (1, "a:1")] {
        assert!(view.peers[index].target.up);
        assert!(view.peers[index].identity_contested);
        assert!(view.peers[index]
            .identity_problem
            .as_deref()
            .unwrap()
            .contains(other));
        assert_eq!(
            view.peers[index].target.failures_total[FailureReason::Identity.index()],
            0
        );
    }
    assert_eq!(
        view.peers[2].target.failures_total[FailureReason::Identity.index()],
        1
    );
    assert_eq!(view.federation.peers_live, 2);

    // A failed pull of `a`, then `a` reports another node_id: it is a new peer, so its
    // window restarts (without the restart its success ratio would be 2/3); "twin" is no
    // longer contested once `a` no longer reports it.
    tokio::time::advance(Duration::from_secs(10)).await;
    let at = Instant::now();
    store.record_cycle(
        local(&store, ok(at, 1, &summary("local", "r", 0.5))),
        outcomes(
            &store,
            vec![
                ("a:1", failed(at, 1)),
                ("b:1", failed(at, 1)),
                ("c:1", failed(at, 1)),
            ],
        ),
        at,
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    let at = Instant::now();
    store.record_cycle(
        local(&store, ok(at, 1, &summary("local", "r", 0.5))),
        outcomes(
            &store,
            vec![
                ("a:1", ok(at, 1, &summary("other", "r", 0.5))),
                ("b:1", ok(at, 1, &summary("twin", "r", 0.5))),
                ("c:1", failed(at, 1)),
            ],
        ),
        at,
    );
    let view = store.view(at);
    assert_eq!(view.peers[0].target.node_id.as_deref(), Some("other"));
    let a_quality = view.peers[0].quality.unwrap();
    assert_eq!(a_quality.parts.success_ratio, 1.0);
    assert_eq!(
        view.peers[0].target.polls_total, 3,
        "counters are cumulative across the restart"
    );
    assert!(view.peers[1].target.up);
    assert!(
        !view.peers[1].identity_contested,
        "b alone reports twin now"
    );
    assert!(view.peers[1].identity_problem.is_none());
}

/// Regression (issue 8): outcomes were keyed by the peer's label, so a reload that renamed
/// a peer while a cycle was running dropped that peer's pull for the cycle.
#[tokio::test(start_paused = true)]
async fn a_peer_renamed_by_reload_mid_cycle_keeps_its_outcome() {
    let store = Store::new(&config(&["a:1", "b:1"]));
    let plan = store.pull_plan(); // the cycle starts with the old names
    let mut renamed = config(&["a:1", "b:1"]);
    let mut peers = renamed.peers.to_vec();
    peers[0].label = "nova-a".to_owned();
    renamed.peers = peers.into();
    store.reconfigure(&renamed); // the reload lands while the pulls are in flight
    let at = Instant::now();
    let peers = plan
        .peers
        .iter()
        .map(|t| {
            (
                t.id,
                ok(at, 1, &summary(&t.label.replace(":1", ""), "r", 0.5)),
            )
        })
        .collect();
    store.record_cycle(
        Some((plan.node.id, ok(at, 1, &summary("local", "r", 0.5)))),
        peers,
        at,
    );
    let view = store.view(at);
    let labels: Vec<(&str, u64)> = view
        .peers
        .iter()
        .map(|p| (p.target.label.as_str(), p.target.polls_total))
        .collect();
    assert_eq!(labels, [("nova-a", 1), ("b:1", 1)]);
    assert!(view.peers[0].target.up);
}

/// A peer whose URL changed mid-cycle is a new target: the old URL's answer is not its own.
#[tokio::test(start_paused = true)]
async fn a_peer_replaced_mid_cycle_gets_no_outcome_from_its_predecessor() {
    let store = Store::new(&config(&["a:1"]));
    let plan = store.pull_plan();
    store.reconfigure(&config(&["c:1"]));
    let at = Instant::now();
    let peers = plan
        .peers
        .iter()
        .map(|t| (t.id, ok(at, 1, &summary("a", "r", 0.5))))
        .collect();
    store.record_cycle(
        Some((plan.node.id, ok(at, 1, &summary("local", "r", 0.5)))),
        peers,
        at,
    );
    let view = store.view(at);
    assert_eq!(view.peers[0].target.label, "c:1");
    assert_eq!(view.peers[0].target.polls_total, 0);
}
