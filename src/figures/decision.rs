//! Whether to ask the local node to reconcile (SPEC §6), as pure functions of a snapshot:
//! no I/O, no clock — `now` comes in. Returns a request (target root and sources) or the
//! one reason it is suppressed.
//!
//! The decision in order: the policy picks a target from what this sidecar observes
//! (`choose_target`); the guards may hold it back; then, under the `majority` policy
//! with sampled observation, the target must be confirmed on random members of the whole
//! membership (`Standing`, `act::confirmation`) before a request is sent.

use std::collections::BTreeMap;

use tokio::time::Instant;

use crate::config::{Mode, Policy};

/// Why a warranted request was not sent (`reconcile_suppressed_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Suppression {
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
    pub(crate) const ALL: [Suppression; 11] = [
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
pub(crate) enum Standing {
    /// Confirmed to hold a strict majority of the whole membership: act.
    Confirmed,
    /// Random members are being pulled.
    Confirming,
    /// Refuted, or undecided: not now.
    Unconfirmed,
}

/// The root to reconcile towards, and who holds it (best quality first).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Target {
    pub(crate) root: String,
    pub(crate) height: Option<u64>,
    pub(crate) sources: Vec<PeerFacts>,
    /// |V|: the local node plus the live peers with a known root.
    pub(crate) voters: usize,
}

/// The reconciler's own state, as far as the guards need it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GuardState<'a> {
    pub(crate) in_flight: bool,
    /// Until when the node said a reconciliation is already running (409).
    pub(crate) busy_until: Option<Instant>,
    pub(crate) cooldown_until: Option<Instant>,
    pub(crate) backoff_until: Option<Instant>,
    pub(crate) requests_last_hour: usize,
    pub(crate) max_per_hour: usize,
    pub(crate) rejected_roots: Option<&'a std::collections::BTreeSet<String>>,
    /// Roots whose confirmation was refuted or undecided, held back for a while: under
    /// sampled observation another diverging root is tried first.
    pub(crate) held_roots: Option<&'a std::collections::BTreeSet<String>>,
    /// The root whose confirmation is under way (or confirmed and still valid): kept as
    /// the candidate while it is seen, so that another root coming free does not throw its
    /// draws, or its verdict, away.
    pub(crate) confirming_root: Option<&'a str>,
}

/// The outcome of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Nothing to reconcile (no divergence, or not for `threshold` cycles yet).
    Idle,
    /// A request is warranted but must not be sent now.
    Suppressed(Suppression, Option<Target>),
    /// Send a request towards this target.
    Request(Target),
}

/// The policy's answer, before any guard: `Ok(None)` when there is nothing to do.
pub(crate) fn choose_target(
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
pub(crate) fn decide(
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
mod tests;
