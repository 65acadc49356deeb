//! Unit tests of `decision`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;

fn peer(name: &str, root: &str, streak: u64, quality: f64) -> PeerFacts {
    PeerFacts {
        peer: name.into(),
        url: format!("http://{name}"),
        node_id: name.into(),
        root: root.into(),
        height: Some(streak * 10),
        streak,
        quality,
    }
}

fn facts(local: Option<&str>, peers: Vec<PeerFacts>) -> Facts {
    Facts {
        local_root: local.map(str::to_owned),
        live_peers: peers.len(),
        peers,
        ..Facts::default()
    }
}

fn on(facts: &Facts, policy: Policy) -> Decision {
    decide(
        Mode::On,
        policy,
        3,
        facts,
        &GuardState {
            max_per_hour: 6,
            ..GuardState::default()
        },
        Instant::now(),
        |_| Standing::Confirmed,
    )
}

fn request_root(decision: &Decision) -> Option<&str> {
    match decision {
        Decision::Request(target) => Some(&target.root),
        _ => None,
    }
}

#[test]
fn two_nodes_never_reconcile_under_majority() {
    let f = facts(Some("a"), vec![peer("b", "x", 10, 1.0)]);
    assert_eq!(
        on(&f, Policy::Majority),
        Decision::Suppressed(Suppression::NoQuorum, None)
    );
    // The seed's rule acts on a single peer.
    assert_eq!(request_root(&on(&f, Policy::Any)), Some("x"));
}

#[test]
fn three_nodes_local_in_the_minority_reconciles_towards_the_majority() {
    let f = facts(
        Some("a"),
        vec![peer("b", "x", 3, 0.8), peer("c", "x", 4, 0.9)],
    );
    let Decision::Request(target) = on(&f, Policy::Majority) else {
        panic!()
    };
    assert_eq!(target.root, "x");
    assert_eq!(target.voters, 3);
    let order: Vec<_> = target.sources.iter().map(|s| s.peer.as_str()).collect();
    assert_eq!(order, ["c", "b"], "best quality first");
    assert_eq!(target.height, Some(40));
}

#[test]
fn waits_until_every_peer_of_the_group_reached_the_threshold() {
    let f = facts(
        Some("a"),
        vec![peer("b", "x", 3, 0.8), peer("c", "x", 2, 0.9)],
    );
    assert_eq!(on(&f, Policy::Majority), Decision::Idle);
}

#[test]
fn local_in_the_majority_never_reconciles() {
    let f = facts(
        Some("a"),
        vec![peer("b", "a", 0, 1.0), peer("c", "x", 9, 1.0)],
    );
    assert_eq!(
        on(&f, Policy::Majority),
        Decision::Suppressed(Suppression::NoQuorum, None)
    );
}

#[test]
fn five_nodes_split_two_two_has_no_quorum() {
    let f = facts(
        Some("a"),
        vec![
            peer("b", "a", 0, 1.0),
            peer("c", "x", 5, 1.0),
            peer("d", "x", 5, 1.0),
            peer("e", "y", 5, 1.0),
        ],
    );
    assert_eq!(
        on(&f, Policy::Majority),
        Decision::Suppressed(Suppression::NoQuorum, None)
    );
    // Five nodes, three elsewhere on one root: a majority of 5.
    let f = facts(
        Some("a"),
        vec![
            peer("b", "x", 5, 1.0),
            peer("c", "x", 5, 1.0),
            peer("d", "x", 5, 1.0),
            peer("e", "a", 0, 1.0),
        ],
    );
    assert_eq!(request_root(&on(&f, Policy::Majority)), Some("x"));
}

#[test]
fn stale_or_unknown_roots_do_not_vote() {
    // Only peers with a fresh, known root are in `peers`; the others only count as live.
    let mut f = facts(
        Some("a"),
        vec![peer("b", "x", 5, 1.0), peer("c", "x", 5, 1.0)],
    );
    f.live_peers = 5;
    let Decision::Request(target) = on(&f, Policy::Majority) else {
        panic!()
    };
    assert_eq!(target.voters, 3);
}

#[test]
fn local_node_down_suppresses_only_when_there_is_evidence() {
    let f = facts(None, vec![peer("b", "x", 5, 1.0), peer("c", "x", 5, 1.0)]);
    assert_eq!(
        on(&f, Policy::Majority),
        Decision::Suppressed(Suppression::NodeDown, None)
    );
    let f = facts(None, vec![peer("b", "x", 1, 1.0)]);
    assert_eq!(on(&f, Policy::Majority), Decision::Idle);
}

#[test]
fn any_policy_picks_the_best_quality_peer_root() {
    let f = facts(
        Some("a"),
        vec![
            peer("b", "x", 3, 0.5),
            peer("c", "y", 3, 0.9),
            peer("d", "y", 1, 1.0),
        ],
    );
    let Decision::Request(target) = on(&f, Policy::Any) else {
        panic!()
    };
    assert_eq!(target.root, "y");
    assert_eq!(target.sources.len(), 1, "d has not reached the threshold");
}

#[test]
fn guards_apply_in_order() {
    let f = facts(
        Some("a"),
        vec![peer("b", "x", 3, 0.8), peer("c", "x", 3, 0.9)],
    );
    let now = Instant::now();
    let later = Some(now + Duration::from_secs(1));
    let rejected: BTreeSet<String> = ["x".to_owned()].into();
    let base = GuardState {
        max_per_hour: 6,
        ..GuardState::default()
    };
    let cases = [
        (Mode::Off, base, Suppression::Disabled),
        (
            Mode::On,
            GuardState {
                rejected_roots: Some(&rejected),
                ..base
            },
            Suppression::RejectedTarget,
        ),
        (
            Mode::On,
            GuardState {
                in_flight: true,
                cooldown_until: later,
                ..base
            },
            Suppression::InFlight,
        ),
        (
            Mode::On,
            GuardState {
                busy_until: later,
                ..base
            },
            Suppression::InFlight,
        ),
        (
            Mode::On,
            GuardState {
                cooldown_until: later,
                backoff_until: later,
                ..base
            },
            Suppression::Cooldown,
        ),
        (
            Mode::On,
            GuardState {
                backoff_until: later,
                ..base
            },
            Suppression::Backoff,
        ),
        (
            Mode::On,
            GuardState {
                requests_last_hour: 6,
                ..base
            },
            Suppression::RateLimit,
        ),
        (Mode::DryRun, base, Suppression::DryRun),
    ];
    for (mode, guards, expected) in cases {
        match decide(mode, Policy::Majority, 3, &f, &guards, now, |_| {
            Standing::Confirmed
        }) {
            Decision::Suppressed(reason, Some(target)) => {
                assert_eq!(reason, expected);
                assert_eq!(target.root, "x");
            }
            other => panic!("{mode:?}: {other:?}"),
        }
    }
    let past = Some(now - Duration::from_millis(1));
    let expired = GuardState {
        cooldown_until: past,
        backoff_until: past,
        busy_until: past,
        ..base
    };
    assert!(matches!(
        decide(
            Mode::On,
            Policy::Majority,
            3,
            &f,
            &expired,
            now,
            |_| unreachable!()
        ),
        Decision::Request(_)
    ));
}

fn sampled(local: &str, peers: Vec<PeerFacts>, probe: Option<PeerFacts>) -> Facts {
    Facts {
        sampled: true,
        probe,
        ..facts(Some(local), peers)
    }
}

#[test]
fn a_sampled_sidecar_confirms_any_lasting_divergence_before_acting() {
    // One of three observed peers diverges: no majority of the sample, yet a candidate.
    let f = sampled(
        "a",
        vec![
            peer("b", "a", 0, 1.0),
            peer("c", "a", 0, 1.0),
            peer("d", "x", 3, 0.7),
        ],
        None,
    );
    let mut asked = Vec::new();
    let mut decide_with = |standing: Standing| {
        decide(
            Mode::On,
            Policy::Majority,
            3,
            &f,
            &GuardState {
                max_per_hour: 6,
                ..GuardState::default()
            },
            Instant::now(),
            |target: &Target| {
                asked.push(target.root.clone());
                standing
            },
        )
    };
    assert!(matches!(
        decide_with(Standing::Confirming),
        Decision::Suppressed(Suppression::Confirming, Some(_))
    ));
    assert!(matches!(
        decide_with(Standing::Unconfirmed),
        Decision::Suppressed(Suppression::Unconfirmed, Some(_))
    ));
    assert_eq!(request_root(&decide_with(Standing::Confirmed)), Some("x"));
    assert_eq!(asked, ["x", "x", "x"]);
    // Not yet `threshold` cycles: nothing to confirm.
    let young = sampled("a", vec![peer("d", "x", 2, 0.7)], None);
    assert_eq!(on(&young, Policy::Majority), Decision::Idle);
}

#[test]
fn the_probe_names_a_candidate_the_observed_sample_missed() {
    let f = sampled(
        "a",
        vec![peer("b", "a", 0, 1.0)],
        Some(peer("z", "x", 3, 0.0)),
    );
    let Decision::Request(target) = on(&f, Policy::Majority) else {
        panic!("{:?}", on(&f, Policy::Majority))
    };
    assert_eq!(target.root, "x");
    assert_eq!(target.sources[0].peer, "z");
}

#[test]
fn guards_hold_a_request_back_before_any_member_is_pulled_to_confirm_it() {
    let f = sampled("a", vec![peer("d", "x", 5, 0.7)], None);
    let now = Instant::now();
    let guards = GuardState {
        max_per_hour: 6,
        cooldown_until: Some(now + Duration::from_secs(1)),
        ..GuardState::default()
    };
    let decision = decide(Mode::On, Policy::Majority, 3, &f, &guards, now, |_| {
        panic!("confirmation asked while cooling down")
    });
    assert!(matches!(
        decision,
        Decision::Suppressed(Suppression::Cooldown, _)
    ));
    let decision = decide(Mode::Off, Policy::Majority, 3, &f, &guards, now, |_| {
        panic!("confirmation asked while disabled")
    });
    assert!(matches!(
        decision,
        Decision::Suppressed(Suppression::Disabled, _)
    ));
}

#[test]
fn dry_run_confirms_exactly_as_on() {
    let f = sampled("a", vec![peer("d", "x", 5, 0.7)], None);
    let run = |mode, standing| {
        let guards = GuardState {
            max_per_hour: 6,
            ..GuardState::default()
        };
        decide(
            mode,
            Policy::Majority,
            3,
            &f,
            &guards,
            Instant::now(),
            |_| standing,
        )
    };
    assert!(matches!(
        run(Mode::DryRun, Standing::Confirming),
        Decision::Suppressed(Suppression::Confirming, _)
    ));
    assert!(matches!(
        run(Mode::DryRun, Standing::Confirmed),
        Decision::Suppressed(Suppression::DryRun, _)
    ));
}

#[test]
fn a_held_root_is_tried_after_the_other_diverging_roots() {
    // The sample shows "y" most, but "y" was refuted: "x" is confirmed next.
    let f = sampled(
        "a",
        vec![
            peer("b", "y", 5, 1.0),
            peer("c", "y", 5, 1.0),
            peer("d", "x", 5, 1.0),
        ],
        None,
    );
    let held: BTreeSet<String> = ["y".to_owned()].into();
    let guards = GuardState {
        max_per_hour: 6,
        held_roots: Some(&held),
        ..GuardState::default()
    };
    let mut asked = None;
    decide(
        Mode::On,
        Policy::Majority,
        3,
        &f,
        &guards,
        Instant::now(),
        |t| {
            asked = Some(t.root.clone());
            Standing::Confirming
        },
    );
    assert_eq!(asked.as_deref(), Some("x"));
    // Every diverging root held: the largest is named (and stays unconfirmed).
    let held: BTreeSet<String> = ["x".to_owned(), "y".to_owned()].into();
    let guards = GuardState {
        held_roots: Some(&held),
        ..guards
    };
    let mut asked = None;
    decide(
        Mode::On,
        Policy::Majority,
        3,
        &f,
        &guards,
        Instant::now(),
        |t| {
            asked = Some(t.root.clone());
            Standing::Unconfirmed
        },
    );
    assert_eq!(asked.as_deref(), Some("y"));
}

#[test]
fn the_root_being_confirmed_stays_the_candidate() {
    let f = sampled(
        "a",
        vec![
            peer("b", "y", 5, 1.0),
            peer("c", "y", 5, 1.0),
            peer("d", "x", 5, 1.0),
        ],
        None,
    );
    let guards = GuardState {
        max_per_hour: 6,
        confirming_root: Some("x"),
        ..GuardState::default()
    };
    let mut asked = None;
    decide(
        Mode::On,
        Policy::Majority,
        3,
        &f,
        &guards,
        Instant::now(),
        |t| {
            asked = Some(t.root.clone());
            Standing::Confirming
        },
    );
    assert_eq!(asked.as_deref(), Some("x"), "not the larger y");
}
