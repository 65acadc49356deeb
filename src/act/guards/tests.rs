//! Unit tests of `guards`.

//! Every guard with exact times: tokio's clock is paused and moved by hand, and the
//! backoff jitter comes from a seeded generator the test replays.

use super::*;
use crate::config::{self, Sources};
use crate::figures::decision::PeerFacts;

const JITTER_SEED: u64 = 7;
/// Every member observed: the figures' majority rule decides, nothing to confirm.
const FULL_MESH: Membership = Membership {
    generation: 0,
    others: 2,
    sampled: false,
    budget: 0,
};
const MS: Duration = Duration::from_millis(1);

fn config() -> ReconcileConfig {
    let mut config = config::load(&Sources::flags(&[("node", "http://127.0.0.1:1")]))
        .unwrap()
        .reconcile; // base 30s, factor 2, cap 30m, cooldown 5m, 6 per hour
    config.mode = Mode::On;
    config.threshold = 1;
    config
}

fn guards() -> Guards {
    Guards::new(
        fastrand::Rng::with_seed(1),
        fastrand::Rng::with_seed(JITTER_SEED),
    )
}

/// The local node on `local`, two peers on `peers_root` (diverging for 5 cycles).
fn facts(local: &str, peers_root: &str) -> Facts {
    let peer = |i: usize| PeerFacts {
        peer: format!("p{i}"),
        url: format!("http://10.0.0.{i}:8100"),
        node_id: format!("nova-{i}"),
        root: peers_root.to_owned(),
        height: Some(7),
        streak: 5,
        quality: 0.9,
    };
    Facts {
        local_root: Some(local.to_owned()),
        live_peers: 2,
        peers: vec![peer(1), peer(2)],
        ..Facts::default()
    }
}

fn suppressed(guards: &Guards, reason: Suppression) -> u64 {
    guards.suppressed_total[reason.index()]
}

fn failed() -> Answer {
    Answer::Failed(RequestFailure::HttpStatus, "answered 503".into())
}

#[tokio::test(start_paused = true)]
async fn one_request_at_a_time_until_the_node_answers() {
    let (config, mut guards) = (config(), guards());
    let first = guards.evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now());
    assert!(first.is_some());
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    assert_eq!(suppressed(&guards, Suppression::InFlight), 1);
    assert!(guards.view(&config, Instant::now()).in_progress);
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_by_the_factor_up_to_the_cap_with_the_replayed_jitter() {
    let mut config = config();
    config.max_per_hour = 100;
    let mut guards = guards();
    let mut replay = fastrand::Rng::with_seed(JITTER_SEED);
    let mut ids = Vec::new();
    for failures in 1..=8u32 {
        let outgoing = guards
            .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
            .unwrap_or_else(|| panic!("attempt {failures} was not sent"));
        ids.push(outgoing.request_id.clone());
        guards.record(&config, &outgoing, failed(), Anchor::now());
        let full = (30.0 * 2f64.powi(failures as i32 - 1)).min(1800.0);
        let expected = Duration::from_secs_f64(full * (0.5 + 0.5 * replay.f64()));
        let remaining = guards
            .view(&config, Instant::now())
            .backoff_remaining_seconds;
        assert_eq!(
            remaining,
            expected.as_secs_f64(),
            "after {failures} failures"
        );
        tokio::time::advance(expected - MS).await;
        assert!(
            guards
                .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
                .is_none(),
            "retried before the backoff of {expected:?} ended"
        );
        tokio::time::advance(MS).await;
    }
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one id per episode: {ids:?}"
    );
    assert_eq!(guards.failures_total[RequestFailure::HttpStatus.index()], 8);
    assert_eq!(suppressed(&guards, Suppression::Backoff), 8);
}

#[test]
fn the_jitter_keeps_each_delay_in_half_to_all_of_the_full_delay() {
    let config = config();
    for (failures, full) in [
        (1, 30.0),
        (2, 60.0),
        (3, 120.0),
        (6, 960.0),
        (7, 1800.0),
        (40, 1800.0),
    ] {
        for jitter in [0.0, 0.25, 0.999_999] {
            let delay = backoff_delay(&config, failures, jitter).as_secs_f64();
            assert!(
                delay >= full * 0.5 && delay < full,
                "{failures} failures, jitter {jitter}: {delay}s outside [{}, {full})",
                full * 0.5
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn success_cools_down_and_a_persisting_divergence_counts_as_no_effect() {
    let (config, mut guards) = (config(), guards());
    let outgoing = guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .unwrap();
    assert!(guards.record(&config, &outgoing, Answer::Accepted(200), Anchor::now()));
    tokio::time::advance(config.cooldown - MS).await;
    assert!(guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    assert_eq!(suppressed(&guards, Suppression::Cooldown), 1);

    tokio::time::advance(MS).await; // the cooldown is over; the node still holds "old"
    assert!(guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    assert_eq!(guards.failures_total[RequestFailure::NoEffect.index()], 1);
    let mut replay = fastrand::Rng::with_seed(JITTER_SEED);
    let backoff = Duration::from_secs_f64(30.0 * (0.5 + 0.5 * replay.f64()));
    let view = guards.view(&config, Instant::now());
    assert_eq!(view.backoff_remaining_seconds, backoff.as_secs_f64());
    assert_eq!(view.request_id, None, "no effect ends the episode");

    tokio::time::advance(backoff).await;
    let retry = guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .unwrap();
    assert_ne!(
        retry.request_id, outgoing.request_id,
        "a new episode, a new id"
    );
}

#[tokio::test(start_paused = true)]
async fn a_healed_node_ends_the_wait_for_an_effect() {
    let (config, mut guards) = (config(), guards());
    let outgoing = guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .unwrap();
    guards.record(&config, &outgoing, Answer::Accepted(202), Anchor::now());
    tokio::time::advance(config.cooldown).await;
    assert!(guards
        .evaluate(&config, &facts("new", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    assert_eq!(guards.failures_total, [0; RequestFailure::ALL.len()]);
    assert_eq!(guards.view(&config, Instant::now()).decision.kind, "idle");
}

#[tokio::test(start_paused = true)]
async fn the_hourly_cap_counts_requests_in_any_hour() {
    let mut config = config();
    config.max_per_hour = 2;
    config.backoff_base = Duration::from_secs(1);
    config.backoff_cap = Duration::from_secs(1);
    let mut guards = guards();
    for _ in 0..2 {
        let outgoing = guards
            .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
            .unwrap();
        guards.record(&config, &outgoing, failed(), Anchor::now());
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    // Two sent at 0 s and 1 s: the third waits until the first is an hour old.
    assert!(guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    assert_eq!(suppressed(&guards, Suppression::RateLimit), 1);
    tokio::time::advance(Duration::from_secs(3600 - 2) - MS).await;
    assert!(guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    assert_eq!(suppressed(&guards, Suppression::RateLimit), 2);
    tokio::time::advance(MS).await;
    assert!(guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_some());
}

#[tokio::test(start_paused = true)]
async fn already_running_waits_one_backoff_base_without_a_failure() {
    let (config, mut guards) = (config(), guards());
    let outgoing = guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .unwrap();
    assert!(!guards.record(&config, &outgoing, Answer::AlreadyRunning, Anchor::now()));
    tokio::time::advance(config.backoff_base - MS).await;
    assert!(guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    assert_eq!(suppressed(&guards, Suppression::InFlight), 1);
    tokio::time::advance(MS).await;
    let again = guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .unwrap();
    assert_eq!(again.request_id, outgoing.request_id);
    assert_eq!(guards.failures_total, [0; RequestFailure::ALL.len()]);
    assert_eq!(guards.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_root_is_never_retried_and_a_new_root_is_a_new_episode() {
    let (config, mut guards) = (config(), guards());
    let outgoing = guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .unwrap();
    let rejected = Answer::Failed(RequestFailure::Rejected, "answered 422".into());
    guards.record(&config, &outgoing, rejected, Anchor::now());
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    assert!(guards
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    assert_eq!(suppressed(&guards, Suppression::RejectedTarget), 1);
    assert_eq!(guards.consecutive_failures, 0, "a rejection is no backoff");
    let other = guards
        .evaluate(&config, &facts("old", "newer"), &FULL_MESH, Anchor::now())
        .unwrap();
    assert_eq!(other.target_root, "newer");
    assert_ne!(other.request_id, outgoing.request_id);
}

#[tokio::test(start_paused = true)]
async fn dry_run_records_each_episode_once_and_sends_nothing() {
    let mut config = config();
    config.mode = Mode::DryRun;
    let mut guards = guards();
    for _ in 0..3 {
        assert!(guards
            .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
            .is_none());
    }
    let view = guards.view(&config, Instant::now());
    assert_eq!(view.requests_total, 0);
    assert_eq!(suppressed(&guards, Suppression::DryRun), 3);
    assert_eq!(view.history.len(), 1);
    assert_eq!(view.history[0].outcome, "dry_run");
    let body = view.dry_run_request.unwrap();
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["request_id"].as_str(), view.request_id.as_deref());
}

#[tokio::test(start_paused = true)]
async fn a_restart_from_a_checkpoint_keeps_the_backoff_and_the_episode() {
    let (config, mut before) = (config(), guards());
    let outgoing = before
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .unwrap();
    before.record(&config, &outgoing, failed(), Anchor::now());
    let backoff = before
        .view(&config, Instant::now())
        .backoff_remaining_seconds;
    let written = Anchor::now();
    let saved = before.checkpoint(&written);

    // The restart takes 5 s, on both clocks (the paused one is moved by hand).
    tokio::time::advance(Duration::from_secs(5)).await;
    let restarted = Anchor {
        instant: Instant::now(),
        wall: written.wall + Duration::from_secs(5),
    };
    let mut after = Guards::new(fastrand::Rng::with_seed(2), fastrand::Rng::with_seed(3));
    after.restore(&saved, &restarted);
    let remaining = after
        .view(&config, Instant::now())
        .backoff_remaining_seconds;
    assert!(
        (remaining - (backoff - 5.0)).abs() < 1e-5,
        "{remaining} s left, expected {} s",
        backoff - 5.0
    );
    assert!(after
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .is_none());
    tokio::time::advance(Duration::from_secs_f64(remaining) + MS).await;
    let retry = after
        .evaluate(&config, &facts("old", "new"), &FULL_MESH, Anchor::now())
        .unwrap();
    assert_eq!(
        retry.request_id, outgoing.request_id,
        "the episode survived"
    );
    assert_eq!(after.view(&config, Instant::now()).consecutive_failures, 1);
}
