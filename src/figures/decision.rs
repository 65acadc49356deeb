//! Whether to ask the local node to reconcile (SPEC §6), as pure functions of a snapshot:
//! no I/O, no clock — `now` comes in. Returns a request (target root and sources) or the
//! one reason it is suppressed.
//!
//! The decision in order: the policy picks a target from what this sidecar observes
//! ([`choose_target`]); the guards may hold it back; then, under the `majority` policy
//! with sampled observation, the target must be confirmed on random members of the whole
//! membership ([`Standing`], `act::confirmation`) before a request is sent.

use std::collections::BTreeMap;

use tokio::time::Instant;

use crate::config::{Mode, Policy};

/// Why a warranted request was not sent (`reconcile_suppressed_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    Cooldown,
    Backoff,
    InFlight,
    NoQuorum,
    RateLimit,
    NodeDown,
    DryRun,
    Disabled,
    /// The node rejected (4xx) a request towards this target root before.
    RejectedTarget,
    /// The target is being confirmed on random members of the whole membership.
    Confirming,
    /// The confirmation refuted the target or could not decide; held back for a while.
    Unconfirmed,
}

impl Suppression {
    pub const ALL: [Suppression; 11] = [
        Suppression::Cooldown,
        Suppression::Backoff,
        Suppression::InFlight,
        Suppression::NoQuorum,
        Suppression::RateLimit,
        Suppression::NodeDown,
        Suppression::DryRun,
        Suppression::Disabled,
        Suppression::RejectedTarget,
        Suppression::Confirming,
        Suppression::Unconfirmed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::Cooldown => "cooldown",
            Suppression::Backoff => "backoff",
            Suppression::InFlight => "in_flight",
            Suppression::NoQuorum => "no_quorum",
            Suppression::RateLimit => "rate_limit",
            Suppression::NodeDown => "node_down",
            Suppression::DryRun => "dry_run",
            Suppression::Disabled => "disabled",
            Suppression::RejectedTarget => "rejected_target",
            Suppression::Confirming => "confirming",
            Suppression::Unconfirmed => "unconfirmed",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A live peer whose state root is known and fresh.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PeerFacts {
    pub peer: String,
    pub url: String,
    pub node_id: String,
    #[serde(skip)]
    pub root: String,
    #[serde(skip)]
    pub height: Option<u64>,
    pub streak: u64,
    pub quality: f64,
}

/// What the decision looks at.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The local node's root, when the node is up and its root known and fresh.
    pub local_root: Option<String>,
    /// Live peers (with or without a known root).
    pub live_peers: usize,
    /// Live peers with a known, fresh root.
    pub peers: Vec<PeerFacts>,
    /// The local node's node_id, when known: a member reporting it is the local node.
    pub local_node_id: Option<String>,
    /// Whether `peers` is a sample of the membership (sampled observation, SPEC §9): then
    /// their majority proves nothing, and a target must be confirmed before acting.
    pub sampled: bool,
    /// The roaming probe's member, when it diverges from the local node (sampled only).
    pub probe: Option<PeerFacts>,
}

/// Where the confirmation of a target stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Confirmed to hold a strict majority of the whole membership: act.
    Confirmed,
    /// Random members are being pulled.
    Confirming,
    /// Refuted, or undecided: not now.
    Unconfirmed,
}

/// The root to reconcile towards, and who holds it (best quality first).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub root: String,
    pub height: Option<u64>,
    pub sources: Vec<PeerFacts>,
    /// |V|: the local node plus the live peers with a known root.
    pub voters: usize,
}

/// The reconciler's own state, as far as the guards need it.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuardState<'a> {
    pub in_flight: bool,
    /// Until when the node said a reconciliation is already running (409).
    pub busy_until: Option<Instant>,
    pub cooldown_until: Option<Instant>,
    pub backoff_until: Option<Instant>,
    pub requests_last_hour: usize,
    pub max_per_hour: usize,
    pub rejected_roots: Option<&'a std::collections::BTreeSet<String>>,
    /// Roots whose confirmation was refuted or undecided, held back for a while: under
    /// sampled observation another diverging root is tried first.
    pub held_roots: Option<&'a std::collections::BTreeSet<String>>,
    /// The root whose confirmation is under way (or confirmed and still valid): kept as
    /// the candidate while it is seen, so that another root coming free does not throw its
    /// draws, or its verdict, away.
    pub confirming_root: Option<&'a str>,
}

/// The outcome of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Nothing to reconcile (no divergence, or not for `threshold` cycles yet).
    Idle,
    /// A request is warranted but must not be sent now.
    Suppressed(Suppression, Option<Target>),
    /// Send a request towards this target.
    Request(Target),
}

/// The policy's answer, before any guard: `Ok(None)` when there is nothing to do.
pub fn choose_target(
    policy: Policy,
    threshold: u64,
    facts: &Facts,
    guards: &GuardState<'_>,
) -> Result<Option<Target>, Suppression> {
    let Some(local_root) = facts.local_root.as_deref() else {
        // Without the local root nothing can be compared; streaks hold, so evidence that
        // already crossed the threshold is still there — but a down node is never asked.
        let evidence = facts.peers.iter().any(|p| p.streak >= threshold);
        return if evidence {
            Err(Suppression::NodeDown)
        } else {
            Ok(None)
        };
    };
    let voters = 1 + facts.peers.len();
    let mut groups: BTreeMap<&str, Vec<&PeerFacts>> = BTreeMap::new();
    for peer in facts.peers.iter().filter(|p| p.root != local_root) {
        groups.entry(&peer.root).or_default().push(peer);
    }
    let group = match policy {
        // A sample fixed by the hash: its majority means nothing. Any divergence that
        // lasted `threshold` cycles, the probe's included, names a candidate; the
        // confirmation on random members decides.
        Policy::Majority if facts.sampled => {
            for probe in facts.probe.iter().filter(|p| p.root != local_root) {
                if !facts.peers.iter().any(|p| p.url == probe.url) {
                    groups.entry(&probe.root).or_default().push(probe);
                }
            }
            for group in groups.values_mut() {
                group.retain(|p| p.streak >= threshold);
            }
            groups.retain(|_, group| !group.is_empty());
            // A root held back after its confirmation failed is tried last, so that a node
            // whose sample shows a second-largest root most is not stuck behind it.
            if let Some(group) = guards.confirming_root.and_then(|r| groups.remove(r)) {
                group
            } else {
                let held = |root: &str| guards.held_roots.is_some_and(|h| h.contains(root));
                let (held_groups, free): (BTreeMap<_, _>, BTreeMap<_, _>) =
                    groups.into_iter().partition(|(root, _)| held(root));
                let Some(group) = largest(free).or_else(|| largest(held_groups)) else {
                    return Ok(None);
                };
                group
            }
        }
        Policy::Majority => {
            let Some(group) = largest(groups) else {
                return Ok(None);
            };
            if group.iter().any(|p| p.streak < threshold) {
                return Ok(None);
            }
            if group.len() < voters / 2 + 1 {
                return Err(Suppression::NoQuorum);
            }
            group
        }
        Policy::Any => {
            let ready = |p: &&&PeerFacts| p.streak >= threshold;
            let Some(best) = groups
                .values()
                .flat_map(|g| g.iter().filter(ready))
                .max_by(|a, b| a.quality.total_cmp(&b.quality).then(b.peer.cmp(&a.peer)))
            else {
                return Ok(None);
            };
            groups[best.root.as_str()]
                .iter()
                .filter(ready)
                .copied()
                .collect()
        }
    };
    let mut sources: Vec<PeerFacts> = group.into_iter().cloned().collect();
    sources.sort_by(|a, b| b.quality.total_cmp(&a.quality).then(a.peer.cmp(&b.peer)));
    Ok(Some(Target {
        root: sources[0].root.clone(),
        height: sources.iter().filter_map(|s| s.height).max(),
        sources,
        voters,
    }))
}

/// The largest group; ties go to the higher total quality, then the smaller root.
fn largest<'a>(groups: BTreeMap<&str, Vec<&'a PeerFacts>>) -> Option<Vec<&'a PeerFacts>> {
    let (_, group) = groups.into_iter().max_by(|(ra, a), (rb, b)| {
        a.len()
            .cmp(&b.len())
            .then(total_quality(a).total_cmp(&total_quality(b)))
            .then(rb.cmp(ra))
    })?;
    Some(group)
}

fn total_quality(group: &[&PeerFacts]) -> f64 {
    group.iter().map(|p| p.quality).sum()
}

/// The whole decision: the policy, then the guards in a fixed order, then — under the
/// `majority` policy with sampled observation — the confirmation, asked of `confirm` only
/// when nothing else holds the request back (so no member is pulled in vain).
pub fn decide(
    mode: Mode,
    policy: Policy,
    threshold: u64,
    facts: &Facts,
    guards: &GuardState<'_>,
    now: Instant,
    confirm: impl FnOnce(&Target) -> Standing,
) -> Decision {
    let target = match choose_target(policy, threshold, facts, guards) {
        Ok(None) => return Decision::Idle,
        Ok(Some(target)) => target,
        Err(reason) => return Decision::Suppressed(reason, None),
    };
    let until = |deadline: Option<Instant>| deadline.is_some_and(|d| now < d);
    let reason = if mode == Mode::Off {
        Some(Suppression::Disabled)
    } else if guards
        .rejected_roots
        .is_some_and(|r| r.contains(&target.root))
    {
        Some(Suppression::RejectedTarget)
    } else if guards.in_flight || until(guards.busy_until) {
        Some(Suppression::InFlight)
    } else if until(guards.cooldown_until) {
        Some(Suppression::Cooldown)
    } else if until(guards.backoff_until) {
        Some(Suppression::Backoff)
    } else if guards.requests_last_hour >= guards.max_per_hour {
        Some(Suppression::RateLimit)
    } else if policy == Policy::Majority && facts.sampled {
        match confirm(&target) {
            Standing::Confirmed => (mode == Mode::DryRun).then_some(Suppression::DryRun),
            Standing::Confirming => Some(Suppression::Confirming),
            Standing::Unconfirmed => Some(Suppression::Unconfirmed),
        }
    } else if mode == Mode::DryRun {
        Some(Suppression::DryRun)
    } else {
        None
    };
    match reason {
        Some(reason) => Decision::Suppressed(reason, Some(target)),
        None => Decision::Request(target),
    }
}

#[cfg(test)]
mod tests {
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
}
