//! Confirmation before acting (SPEC §6): before a request towards root R is sent, R must
//! be shown to hold a strict majority of the whole membership on members drawn uniformly
//! at random without replacement from the full member list — not the rendezvous sample
//! this sidecar observes. This is the state machine around the test of
//! [`crate::figures::confirmation`]: one episode per (target root, local root, member
//! list), its draws spread over intervals under a budget of 2·K per interval, and a hold
//! after a refuted or undecided episode so that a node of the majority does not pull
//! without end.
//!
//! It also keeps the roaming probe: one random member pulled each interval beside the
//! observed ones. At K = 8 a sidecar may observe only one or two peers; if they all share
//! its root it would never see that it is in the minority. The probe stays on a member
//! while that member diverges (its streak grows like an observed peer's) and moves on
//! when it agrees or fails.
//!
//! Pure: the actor pulls; `now` and the random generator come in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::figures::confirmation::{Membership, SequentialTest, Tally, Verdict};
use crate::figures::decision::{PeerFacts, Standing};
use crate::timeline::later;

mod claims;
mod draw;
use claims::Claim;
pub use draw::pick;

/// One member pulled for the confirmation or the probe.
#[derive(Clone, Debug)]
pub struct Sample {
    pub peer: String,
    pub url: String,
    /// `None` when the pull failed.
    pub node_id: Option<String>,
    /// `None` when the pull failed or the summary carried no state root.
    pub root: Option<String>,
}

/// What the actor pulls this interval beside the cycle: positions in the member list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draws {
    pub(crate) generation: u64,
    pub probe: Option<usize>,
    pub confirmation: Vec<usize>,
}

impl Draws {
    pub(crate) fn is_empty(&self) -> bool {
        self.probe.is_none() && self.confirmation.is_empty()
    }
}

/// Outcomes of finished episodes, in the order of `reconcile_confirmations_total{outcome}`.
pub(crate) const OUTCOMES: [&str; 3] = ["confirmed", "refuted", "undecided"];

/// Sampled holders of the target kept as sources of the request.
const SOURCES_KEPT: usize = 16;
/// Distinct roots counted one by one in `/status`; the rest are added up as "other".
const ROOTS_SHOWN: usize = 8;
/// Roots held back after a refuted or undecided episode.
const HOLDS_KEPT: usize = 16;
/// The shortest a confirmation stays valid, and a hold lasts, whatever the cooldown (a
/// cooldown of 0 would otherwise make a confirmation stale before it is used, and let a
/// majority node start episodes back to back).
pub(crate) const MIN_VALIDITY: Duration = Duration::from_secs(30);
/// The probe moves on from a member whose pulls failed this many times in a row.
const PROBE_FAILURES: u32 = 3;

/// The evidence of the current (or last) episode, for `/status`, `/metrics` and the
/// request body.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ConfirmationView {
    /// `idle`, `confirming`, `confirmed`, `refuted` or `undecided`.
    pub(crate) state: &'static str,
    pub(crate) target_root: Option<String>,
    pub(crate) local_root: Option<String>,
    /// Voters: the local node and every distinct member (duplicates found are taken out).
    pub(crate) voters: usize,
    /// Distinct members drawn and pulled so far.
    pub(crate) sampled: usize,
    pub(crate) for_target: usize,
    /// Drawn members whose pull failed (counted against the target).
    pub(crate) failed: usize,
    /// Drawn members that turned out to be the local node or a node already counted.
    pub(crate) discarded: usize,
    /// Votes per root among the sampled members (at most 8 roots; the rest as `other`).
    pub(crate) votes: BTreeMap<String, usize>,
    /// The test statistic: votes for the target minus the rest.
    pub(crate) statistic: i64,
    pub(crate) confirm_at: i64,
    pub(crate) refute_at: i64,
    pub(crate) max_draws: usize,
    /// Proven bound on confirming a root that holds at most 40 %.
    pub(crate) wrong_confirmation_bound: f64,
    /// Intervals in which this episode drew members.
    pub(crate) intervals: u32,
    pub(crate) detail: Option<String>,
    /// Seconds until a refuted or undecided target may be confirmed again.
    pub(crate) hold_remaining_seconds: f64,
    pub(crate) probe: Option<PeerFacts>,
    #[serde(skip)]
    pub outcomes_total: [u64; OUTCOMES.len()],
    #[serde(skip)]
    pub pulls_total: u64,
    #[serde(skip)]
    pub probe_pulls_total: u64,
}

/// Confirmation episodes, their holds and the probe.
pub(crate) struct Confirmer {
    test: SequentialTest,
    episode: Option<Episode>,
    /// Targets that were refuted or undecided, and until when they are held back.
    holds: BTreeMap<String, Instant>,
    probe: Option<Probe>,
    outcomes_total: [u64; OUTCOMES.len()],
    pulls_total: u64,
    probe_pulls_total: u64,
    rng: fastrand::Rng,
}

struct Episode {
    target_root: String,
    local_root: String,
    generation: u64,
    /// Members other than this node when the episode began.
    others: usize,
    drawn: HashSet<usize>,
    tally: Tally,
    failed: usize,
    discarded: usize,
    /// What each node_id drawn so far did: voted (with the root it answered), or was
    /// reported with two different roots (contested: nobody votes with it).
    claims: HashMap<String, Claim>,
    votes: BTreeMap<String, usize>,
    sources: Vec<PeerFacts>,
    intervals: u32,
    verdict: Verdict,
    concluded: Option<Instant>,
    detail: Option<String>,
    /// The decision asked for this episode since the last draws: draw this interval.
    wanted: bool,
    /// When the decision last asked for it; a pending episode left alone longer than its
    /// validity starts over (its evidence would be old).
    asked: Instant,
}

struct Probe {
    generation: u64,
    member: usize,
    facts: Option<PeerFacts>,
    /// Pulls of this member that failed in a row (its streak holds meanwhile).
    failures: u32,
}

impl Confirmer {
    pub(crate) fn new(test: SequentialTest, rng: fastrand::Rng) -> Self {
        Confirmer {
            test,
            episode: None,
            holds: BTreeMap::new(),
            probe: None,
            outcomes_total: [0; OUTCOMES.len()],
            pulls_total: 0,
            probe_pulls_total: 0,
            rng,
        }
    }

    /// Where the confirmation of `target_root` stands, starting an episode when none runs
    /// for it. A confirmation, and a hold after a refutation, last `valid_for`.
    pub(crate) fn standing(
        &mut self,
        target_root: &str,
        local_root: &str,
        membership: &Membership,
        now: Instant,
        valid_for: Duration,
    ) -> Standing {
        let valid_for = valid_for.max(MIN_VALIDITY);
        self.holds.retain(|_, until| now < *until);
        if let Some(episode) = &mut self.episode {
            let same = episode.target_root == target_root
                && episode.local_root == local_root
                && episode.generation == membership.generation;
            let since = episode.concluded.unwrap_or(episode.asked);
            let fresh = now.saturating_duration_since(since) < valid_for;
            match episode.verdict {
                Verdict::Pending if same && fresh => {
                    episode.wanted = true;
                    episode.asked = now;
                    return Standing::Confirming;
                }
                Verdict::Confirmed if same && fresh => return Standing::Confirmed,
                _ => {}
            }
        }
        if self.holds.contains_key(target_root) {
            return Standing::Unconfirmed;
        }
        self.episode = Some(Episode {
            target_root: target_root.to_owned(),
            local_root: local_root.to_owned(),
            generation: membership.generation,
            others: membership.others,
            drawn: HashSet::new(),
            tally: Tally {
                voters: membership.others + 1,
                drawn: 0,
                for_target: 0,
            },
            failed: 0,
            discarded: 0,
            claims: HashMap::new(),
            votes: BTreeMap::new(),
            sources: Vec::new(),
            intervals: 0,
            verdict: Verdict::Pending,
            concluded: None,
            detail: None,
            wanted: true,
            asked: now,
        });
        tracing::info!(target_root = %target_root, members = membership.others, "confirming on random members before reconciling");
        // No other member at all: the verdict is already known (a lone node never acts).
        self.conclude_if_known(now, valid_for);
        match self.episode.as_ref().map(|e| e.verdict) {
            Some(Verdict::Confirmed) => Standing::Confirmed,
            Some(Verdict::Pending) => Standing::Confirming,
            _ => Standing::Unconfirmed,
        }
    }

    /// The roots held back after a refuted or undecided episode.
    pub(crate) fn held_roots(&self, now: Instant) -> impl Iterator<Item = &str> {
        self.holds
            .iter()
            .filter(move |(_, until)| now < **until)
            .map(|(root, _)| root.as_str())
    }

    /// The root whose confirmation is under way, or confirmed and still valid, in member
    /// list `generation`: the decision keeps it as its candidate.
    pub(crate) fn active_root(
        &self,
        generation: u64,
        now: Instant,
        valid_for: Duration,
    ) -> Option<&str> {
        let valid_for = valid_for.max(MIN_VALIDITY);
        self.episode
            .as_ref()
            .filter(|e| e.generation == generation)
            .filter(|e| match e.verdict {
                Verdict::Pending => true,
                Verdict::Confirmed => e
                    .concluded
                    .is_some_and(|at| now.saturating_duration_since(at) < valid_for),
                _ => false,
            })
            .map(|e| e.target_root.as_str())
    }

    /// After an accepted request every streak starts over, the probe's too.
    pub(crate) fn reset_probe_streak(&mut self) {
        if let Some(facts) = self.probe.as_mut().and_then(|p| p.facts.as_mut()) {
            facts.streak = 0;
        }
    }

    /// What to pull this interval: the probe (when `probing`) and up to `budget` members
    /// not drawn before in the running episode.
    pub(crate) fn draws(&mut self, membership: &Membership, probing: bool) -> Draws {
        let mut draws = Draws {
            generation: membership.generation,
            ..Draws::default()
        };
        if probing && membership.sampled && membership.others > 0 {
            // A member diverging for good (a node stuck on an old root) must not keep the
            // probe: once its root is held back, the probe moves on.
            let holds = &self.holds;
            let keep = self.probe.as_ref().filter(|p| {
                p.generation == membership.generation
                    && p.member < membership.others
                    && !p
                        .facts
                        .as_ref()
                        .is_some_and(|f| holds.contains_key(&f.root))
            });
            let member = match keep {
                Some(probe) => probe.member,
                None => {
                    let member = self.rng.usize(..membership.others);
                    self.probe = Some(Probe {
                        generation: membership.generation,
                        member,
                        facts: None,
                        failures: 0,
                    });
                    member
                }
            };
            draws.probe = Some(member);
        } else {
            self.probe = None;
        }
        // Only in an interval whose decision asked for the confirmation: a guard that holds
        // the request back, or a divergence that went away, stops the draws (the episode
        // stays, and goes on when asked again).
        if let Some(episode) = self.episode.as_mut().filter(|e| {
            e.wanted && e.verdict == Verdict::Pending && e.generation == membership.generation
        }) {
            episode.wanted = false;
            let room = self.test.max_draws.saturating_sub(episode.drawn.len());
            let count = membership.budget.min(room);
            draws.confirmation = pick(&mut self.rng, &episode.drawn, episode.others, count);
            episode.drawn.extend(draws.confirmation.iter().copied());
            if !draws.confirmation.is_empty() {
                episode.intervals += 1;
            }
        }
        draws
    }

    /// Counts what the confirmation draws answered, in draw order, until a verdict; returns
    /// the verdict of the episode afterwards.
    pub(crate) fn record_draws(
        &mut self,
        generation: u64,
        samples: Vec<Sample>,
        local_node_id: Option<&str>,
        now: Instant,
        valid_for: Duration,
    ) -> Verdict {
        let valid_for = valid_for.max(MIN_VALIDITY);
        self.pulls_total += samples.len() as u64;
        let Some(episode) = self
            .episode
            .as_mut()
            .filter(|e| e.verdict == Verdict::Pending && e.generation == generation)
        else {
            return Verdict::Pending;
        };
        for sample in samples {
            if let Some(node_id) = &sample.node_id {
                // One node, one vote: the local node never votes; a node_id drawn again
                // with the same root (one node under two URLs) is not counted again; one
                // drawn with another root is contested — an impostor or a node that
                // cannot be told apart — and its first vote is taken back, so whoever
                // answers first cannot vote in the place of the other (issue 19).
                let repeated = episode.claims.get(node_id);
                if Some(node_id.as_str()) == local_node_id || repeated.is_some() {
                    let mut taken_back = false;
                    if let Some(Claim::Voted { root, counted_as }) = repeated {
                        if *root != sample.root {
                            let (root, counted_as) = (root.clone(), counted_as.clone());
                            episode.take_back(node_id, root, counted_as);
                            episode.claims.insert(node_id.clone(), Claim::Contested);
                            taken_back = true;
                        }
                    }
                    episode.discarded += 1;
                    episode.tally.voters = (episode.others + 1).saturating_sub(episode.discarded);
                    // A vote taken back can decide the test (refuted) as a vote can.
                    if taken_back && self.test.verdict(&episode.tally) != Verdict::Pending {
                        break;
                    }
                    continue;
                }
            }
            episode.tally.drawn += 1;
            let counted_as = match sample.root.clone() {
                Some(root) if root == episode.target_root => {
                    episode.tally.for_target += 1;
                    let key = count_vote(&mut episode.votes, root);
                    if episode.sources.len() < SOURCES_KEPT {
                        episode.sources.push(PeerFacts {
                            peer: sample.peer,
                            url: sample.url,
                            node_id: sample.node_id.clone().unwrap_or_default(),
                            root: episode.target_root.clone(),
                            height: None,
                            streak: 0,
                            quality: 0.0,
                        });
                    }
                    Some(key)
                }
                Some(root) => Some(count_vote(&mut episode.votes, root)),
                None => {
                    episode.failed += 1;
                    None
                }
            };
            if let Some(node_id) = &sample.node_id {
                let root = sample.root;
                episode
                    .claims
                    .insert(node_id.clone(), Claim::Voted { root, counted_as });
            }
            if self.test.verdict(&episode.tally) != Verdict::Pending {
                break;
            }
        }
        self.conclude_if_known(now, valid_for);
        self.episode
            .as_ref()
            .map_or(Verdict::Pending, |e| e.verdict)
    }

    /// Takes the probe's answer: it stays on a member that diverges from `local_root`, and
    /// moves on from one that agrees or fails.
    pub(crate) fn record_probe(
        &mut self,
        generation: u64,
        sample: Sample,
        local_root: Option<&str>,
    ) {
        self.probe_pulls_total += 1;
        let Some(probe) = self.probe.as_mut().filter(|p| p.generation == generation) else {
            return;
        };
        match (sample.root, local_root) {
            (Some(root), Some(local)) if root != local => {
                let streak = probe
                    .facts
                    .as_ref()
                    .filter(|f| f.root == root)
                    .map_or(0, |f| f.streak);
                probe.facts = Some(PeerFacts {
                    peer: sample.peer,
                    url: sample.url,
                    node_id: sample.node_id.unwrap_or_default(),
                    root,
                    height: None,
                    streak: streak + 1,
                    quality: 0.0,
                });
            }
            // The local root unknown: nothing to compare, the streak holds.
            (Some(_), None) => {}
            // A failed pull (or no root) is not agreement: the streak holds, as an observed
            // peer's does, until the member has failed a few times in a row.
            (None, _) => {
                probe.failures += 1;
                if probe.failures >= PROBE_FAILURES {
                    self.probe = None;
                }
                return;
            }
            _ => self.probe = None,
        }
        if let Some(probe) = self.probe.as_mut() {
            probe.failures = 0;
        }
    }

    /// The probe's member, when it diverges from the local node.
    pub(crate) fn probe_facts(&self) -> Option<&PeerFacts> {
        self.probe.as_ref()?.facts.as_ref()
    }

    /// The sampled holders of a confirmed target (sources of the request).
    pub(crate) fn sampled_sources(&self, target_root: &str) -> &[PeerFacts] {
        match &self.episode {
            Some(e) if e.target_root == target_root => &e.sources,
            _ => &[],
        }
    }

    pub(crate) fn view(&self, now: Instant) -> ConfirmationView {
        let mut view = ConfirmationView {
            state: "idle",
            confirm_at: self.test.confirm_lead as i64,
            refute_at: -(self.test.refute_lead as i64),
            max_draws: self.test.max_draws,
            wrong_confirmation_bound: self.test.wrong_confirmation_bound(),
            probe: self.probe_facts().cloned(),
            outcomes_total: self.outcomes_total,
            pulls_total: self.pulls_total,
            probe_pulls_total: self.probe_pulls_total,
            ..ConfirmationView::default()
        };
        if let Some(e) = &self.episode {
            view.state = match e.verdict {
                Verdict::Pending => "confirming",
                Verdict::Confirmed => "confirmed",
                Verdict::Refuted => "refuted",
                Verdict::Undecided => "undecided",
            };
            view.target_root = Some(e.target_root.clone());
            view.local_root = Some(e.local_root.clone());
            view.voters = e.tally.voters;
            view.sampled = e.tally.drawn;
            view.for_target = e.tally.for_target;
            view.failed = e.failed;
            view.discarded = e.discarded;
            view.votes = e.votes.clone();
            view.statistic = e.tally.lead();
            view.intervals = e.intervals;
            view.detail = e.detail.clone();
            view.hold_remaining_seconds = self.holds.get(&e.target_root).map_or(0.0, |until| {
                until.saturating_duration_since(now).as_secs_f64()
            });
        }
        view
    }

    /// Moves a running episode to its verdict, if the tally has one, and counts it.
    fn conclude_if_known(&mut self, now: Instant, valid_for: Duration) {
        let Some(episode) = self
            .episode
            .as_mut()
            .filter(|e| e.verdict == Verdict::Pending)
        else {
            return;
        };
        let mut verdict = self.test.verdict(&episode.tally);
        // Draws that were discarded count towards the budget too: an episode ends after
        // `max_draws` members pulled, whatever they were.
        if verdict == Verdict::Pending && episode.drawn.len() >= self.test.max_draws {
            verdict = Verdict::Undecided;
        }
        // Duplicates make their node likelier to be drawn early; past a few, the draws are
        // no longer uniform over nodes and the bound does not hold.
        if verdict != Verdict::Refuted && episode.discarded > 2 + episode.tally.drawn / 10 {
            verdict = Verdict::Undecided;
            episode.detail = Some(format!(
                "{} of the drawn members were the local node or a node already counted: the member list is not one entry per node",
                episode.discarded
            ));
        }
        if verdict == Verdict::Pending {
            return;
        }
        episode.verdict = verdict;
        episode.concluded = Some(now);
        let (index, held) = match verdict {
            Verdict::Confirmed => (0, false),
            Verdict::Refuted => (1, true),
            _ => (2, true),
        };
        self.outcomes_total[index] += 1;
        if held {
            if self.holds.len() >= HOLDS_KEPT {
                let soonest = self
                    .holds
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(root, _)| root.clone());
                if let Some(root) = soonest {
                    self.holds.remove(&root);
                }
            }
            self.holds
                .insert(episode.target_root.clone(), later(now, valid_for));
        }
        tracing::info!(
            target_root = %episode.target_root,
            outcome = OUTCOMES[index],
            sampled = episode.tally.drawn,
            for_target = episode.tally.for_target,
            voters = episode.tally.voters,
            "confirmation finished"
        );
    }
}

/// Counts a vote for `root` (into `other` once [`ROOTS_SHOWN`] roots are shown); returns
/// the key it was counted under.
fn count_vote(votes: &mut BTreeMap<String, usize>, root: String) -> String {
    let key = if votes.len() < ROOTS_SHOWN || votes.contains_key(&root) {
        root
    } else {
        "other".to_owned()
    };
    *votes.entry(key.clone()).or_default() += 1;
    key
}

#[cfg(test)]
mod tests;
