//! The reconciler's guards as a state machine over time: what it remembers (episode and
//! request id, cooldown, backoff, 409 wait, hourly count, rejected roots, history) and the
//! two transitions — [`Guards::evaluate`] after every cycle and `Guards::record` when
//! the node answers. Pure: no I/O, no clock reads (`now` comes in as an [`Anchor`]), and
//! randomness (request ids, backoff jitter) comes from generators the caller hands in, so
//! every delay is tested exactly under tokio's paused clock.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::config::{Mode, Policy, ReconcileConfig};
use crate::figures::confirmation::{Membership, SequentialTest};
use crate::figures::decision::{self, Decision, Facts, Suppression};
use crate::outside::text::printable;
use crate::timeline::{from_unix, later, unix_seconds, Anchor};

use super::confirmation::{ConfirmationView, Confirmer, Draws, Sample};
use super::request::request_body;
use crate::figures::confirmation::Verdict;

/// Why a request failed (`reconcile_failures_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestFailure {
    Timeout,
    Connect,
    /// 5xx, or another answer that is neither success, 409 nor 4xx.
    HttpStatus,
    /// 4xx other than 409: no retry towards the same root.
    Rejected,
    /// The node accepted, but the divergence was still there after the cooldown.
    NoEffect,
    /// The token file could not be read; nothing was sent.
    TokenFile,
}

impl RequestFailure {
    pub(crate) const ALL: [RequestFailure; 6] = [
        RequestFailure::Timeout,
        RequestFailure::Connect,
        RequestFailure::HttpStatus,
        RequestFailure::Rejected,
        RequestFailure::NoEffect,
        RequestFailure::TokenFile,
    ];

    /// Position in `RequestFailure::ALL`, used to index per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestFailure::Timeout => "timeout",
            RequestFailure::Connect => "connect",
            RequestFailure::HttpStatus => "http_status",
            RequestFailure::Rejected => "rejected",
            RequestFailure::NoEffect => "no_effect",
            RequestFailure::TokenFile => "token_file",
        }
    }
}

/// The node's answer to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Accepted(u16),
    /// 409: a reconciliation is already running.
    AlreadyRunning,
    Failed(RequestFailure, String),
}

/// One line of the reconciliation history shown in `/status`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub(crate) at: f64,
    pub(crate) request_id: String,
    pub(crate) target_root: String,
    /// `success`, `in_progress`, `rejected`, `failed`, `no_effect` or `dry_run`.
    pub(crate) outcome: String,
    pub(crate) detail: String,
}

/// The current decision, as `/status` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DecisionSummary {
    /// `idle`, `request` or `suppressed`.
    pub(crate) kind: &'static str,
    pub(crate) reason: Option<&'static str>,
    pub(crate) target_root: Option<String>,
}

/// A snapshot of the reconciler, for `/metrics` and `/status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReconcileView {
    pub(crate) mode: Mode,
    pub(crate) policy: Policy,
    pub(crate) threshold: u64,
    pub(crate) decision: DecisionSummary,
    pub(crate) in_progress: bool,
    pub(crate) request_id: Option<String>,
    pub(crate) target_root: Option<String>,
    pub(crate) cooldown_remaining_seconds: f64,
    pub(crate) backoff_remaining_seconds: f64,
    pub(crate) consecutive_failures: u32,
    pub(crate) requests_last_hour: usize,
    pub(crate) rejected_roots: Vec<String>,
    pub(crate) last_success_timestamp_seconds: Option<f64>,
    pub(crate) requests_total: u64,
    #[serde(skip)]
    pub(crate) failures_total: [u64; RequestFailure::ALL.len()],
    #[serde(skip)]
    pub(crate) suppressed_total: [u64; Suppression::ALL.len()],
    /// The body a dry run would have sent.
    pub(crate) dry_run_request: Option<serde_json::Value>,
    pub(crate) history: Vec<HistoryEntry>,
    /// The confirmation on random members (sampled observation) and its evidence.
    pub confirmation: ConfirmationView,
}

/// What the reconciler keeps across a restart (times as Unix seconds), so that a restart
/// neither fires a second request for one episode nor forgets a cooldown or a backoff.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileCheckpoint {
    /// (request id, target root) of the current episode.
    pub(crate) episode: Option<(String, String)>,
    pub(crate) cooldown_until: Option<f64>,
    pub(crate) backoff_until: Option<f64>,
    pub(crate) busy_until: Option<f64>,
    pub(crate) consecutive_failures: u32,
    pub(crate) awaiting_effect: Option<String>,
    pub(crate) rejected_roots: Vec<String>,
    /// When the requests of the last hour were sent.
    pub(crate) sent: Vec<f64>,
    pub(crate) last_success: Option<f64>,
    pub(crate) history: Vec<HistoryEntry>,
}

/// A request ready to go.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub(crate) request_id: String,
    pub(crate) target_root: String,
    pub(crate) body: serde_json::Value,
}

const HISTORY_LENGTH: usize = 20;
const HOUR: Duration = Duration::from_secs(3600);

/// The reconciler's memory, and the guards of SPEC §6 over it.
pub struct Guards {
    /// The current divergence episode: one request id per target root until a success.
    episode: Option<(String, String)>,
    in_flight: bool,
    busy_until: Option<Instant>,
    cooldown_until: Option<Instant>,
    backoff_until: Option<Instant>,
    consecutive_failures: u32,
    /// The root of the last accepted request, until the local node is seen holding it.
    awaiting_effect: Option<String>,
    rejected_roots: BTreeSet<String>,
    sent: VecDeque<Instant>,
    last_success: Option<SystemTime>,
    requests_total: u64,
    failures_total: [u64; RequestFailure::ALL.len()],
    suppressed_total: [u64; Suppression::ALL.len()],
    decision: Option<DecisionSummary>,
    dry_run_request: Option<serde_json::Value>,
    history: VecDeque<HistoryEntry>,
    /// Request ids.
    ids: fastrand::Rng,
    /// Backoff jitter, separate from `ids` so tests can predict it.
    jitter: fastrand::Rng,
    /// Confirmation before acting, under sampled observation.
    confirmer: Confirmer,
}

impl Guards {
    /// Fresh guards; `ids` makes request ids (and seeds the confirmation's draws) and
    /// `jitter` spreads backoff delays.
    pub fn new(mut ids: fastrand::Rng, jitter: fastrand::Rng) -> Self {
        let draws = fastrand::Rng::with_seed(ids.u64(..));
        Guards {
            confirmer: Confirmer::new(SequentialTest::DEFAULT, draws),
            episode: None,
            in_flight: false,
            busy_until: None,
            cooldown_until: None,
            backoff_until: None,
            consecutive_failures: 0,
            awaiting_effect: None,
            rejected_roots: BTreeSet::new(),
            sent: VecDeque::new(),
            last_success: None,
            requests_total: 0,
            failures_total: [0; RequestFailure::ALL.len()],
            suppressed_total: [0; Suppression::ALL.len()],
            decision: None,
            dry_run_request: None,
            history: VecDeque::new(),
            ids,
            jitter,
        }
    }

    /// Decides for this cycle, records the decision, and returns the request to send now
    /// if there is one (which marks it in flight until `Guards::record`).
    pub fn evaluate(
        &mut self,
        config: &ReconcileConfig,
        facts: &Facts,
        membership: &Membership,
        now: Anchor,
    ) -> Option<Outgoing> {
        let at = now.instant;
        let with_probe;
        let facts = match self.confirmer.probe_facts() {
            Some(probe) if facts.sampled => {
                with_probe = Facts {
                    probe: Some(probe.clone()),
                    ..facts.clone()
                };
                &with_probe
            }
            _ => facts,
        };
        while self
            .sent
            .front()
            .is_some_and(|sent| at.saturating_duration_since(*sent) >= HOUR)
        {
            self.sent.pop_front();
        }
        if self.awaiting_effect.is_some() && facts.local_root == self.awaiting_effect {
            self.awaiting_effect = None;
        }
        let held: BTreeSet<String> = self.confirmer.held_roots(at).map(str::to_owned).collect();
        let confirming = self
            .confirmer
            .active_root(membership.generation, at, config.cooldown)
            .map(str::to_owned);
        let state = decision::GuardState {
            held_roots: Some(&held),
            confirming_root: confirming.as_deref(),
            in_flight: self.in_flight,
            busy_until: self.busy_until,
            cooldown_until: self.cooldown_until,
            backoff_until: self.backoff_until,
            requests_last_hour: self.sent.len(),
            max_per_hour: config.max_per_hour,
            rejected_roots: Some(&self.rejected_roots),
        };
        let local_root = facts.local_root.as_deref().unwrap_or_default();
        let confirmer = &mut self.confirmer;
        let mut decision = decision::decide(
            config.mode,
            config.policy,
            config.threshold,
            facts,
            &state,
            at,
            |target| confirmer.standing(&target.root, local_root, membership, at, config.cooldown),
        );
        // Accepted before, cooled down, and still diverging towards the same root: it had
        // no effect. Count it, start a new episode, and retry only after a backoff.
        if let Decision::Request(target) = &decision {
            if self.awaiting_effect.as_deref() == Some(target.root.as_str()) {
                self.awaiting_effect = None;
                self.episode = None;
                self.failures_total[RequestFailure::NoEffect.index()] += 1;
                self.consecutive_failures += 1;
                let delay = self.backoff_delay(config);
                self.backoff_until = Some(later(at, delay));
                tracing::warn!(target_root = %printable(&target.root), "reconciliation had no effect; retrying after a backoff");
                let detail = "divergence persisted after the cooldown".to_owned();
                self.push_history(now, "-", &target.root, "no_effect", detail);
                decision = Decision::Suppressed(Suppression::Backoff, Some(target.clone()));
            }
        }

        let summary = summarise(&decision);
        if self.decision.as_ref() != Some(&summary) {
            tracing::info!(
                decision = summary.kind,
                reason = summary.reason,
                target_root = summary.target_root.as_deref(),
                "reconciliation decision changed"
            );
            self.decision = Some(summary);
        }
        match decision {
            Decision::Idle => None,
            Decision::Suppressed(reason, target) => {
                self.suppressed_total[reason.index()] += 1;
                if let (Suppression::DryRun, Some(target)) = (reason, target) {
                    let (request_id, new_episode) = self.episode_towards(&target.root);
                    let body = request_body(&self.confirmer, &request_id, facts, &target, true, at);
                    if new_episode {
                        tracing::info!(%request_id, target_root = %printable(&target.root), "dry run: would request reconciliation");
                        let detail = "not sent (mode dry-run)".to_owned();
                        self.push_history(now, &request_id, &target.root, "dry_run", detail);
                    }
                    self.dry_run_request = Some(body);
                }
                None
            }
            Decision::Request(target) => {
                let (request_id, _) = self.episode_towards(&target.root);
                self.in_flight = true;
                self.sent.push_back(at);
                self.requests_total += 1;
                let body = request_body(&self.confirmer, &request_id, facts, &target, false, at);
                tracing::info!(%request_id, target_root = %printable(&target.root), sources = target.sources.len(), "requesting reconciliation");
                Some(Outgoing {
                    request_id,
                    target_root: target.root,
                    body,
                })
            }
        }
    }

    /// Records the node's answer to `outgoing`; returns whether it was accepted (the
    /// caller then resets the divergence streaks).
    pub(crate) fn record(
        &mut self,
        config: &ReconcileConfig,
        outgoing: &Outgoing,
        answer: Answer,
        now: Anchor,
    ) -> bool {
        self.in_flight = false;
        let (request_id, root) = (&outgoing.request_id, &outgoing.target_root);
        match answer {
            Answer::Accepted(status) => {
                tracing::info!(%request_id, target_root = %printable(root), status, "reconciliation accepted");
                self.last_success = Some(now.wall);
                self.cooldown_until = Some(later(now.instant, config.cooldown));
                self.consecutive_failures = 0;
                self.backoff_until = None;
                self.awaiting_effect = Some(root.clone());
                self.episode = None;
                self.confirmer.reset_probe_streak();
                let detail = format!("answered {status}");
                self.push_history(now, request_id, root, "success", detail);
                true
            }
            Answer::AlreadyRunning => {
                tracing::info!(%request_id, target_root = %printable(root), "node is already reconciling (409); waiting");
                self.busy_until = Some(later(now.instant, config.backoff_base));
                let detail = "answered 409".to_owned();
                self.push_history(now, request_id, root, "in_progress", detail);
                false
            }
            Answer::Failed(RequestFailure::Rejected, detail) => {
                tracing::warn!(%request_id, target_root = %printable(root), %detail, "reconciliation rejected; no retry towards this root");
                self.failures_total[RequestFailure::Rejected.index()] += 1;
                self.rejected_roots.insert(root.clone());
                self.episode = None;
                self.push_history(now, request_id, root, "rejected", detail);
                false
            }
            Answer::Failed(failure, detail) => {
                self.failures_total[failure.index()] += 1;
                self.consecutive_failures += 1;
                let delay = self.backoff_delay(config);
                self.backoff_until = Some(later(now.instant, delay));
                tracing::warn!(%request_id, target_root = %printable(root), reason = failure.as_str(), %detail, backoff = ?delay, "reconciliation failed");
                let detail = format!("{}: {detail}", failure.as_str());
                self.push_history(now, request_id, root, "failed", detail);
                false
            }
        }
    }

    /// A snapshot for `/metrics` and `/status`.
    pub fn view(&self, config: &ReconcileConfig, now: Instant) -> ReconcileView {
        let remaining = |until: Option<Instant>| {
            until.map_or(0.0, |u| u.saturating_duration_since(now).as_secs_f64())
        };
        ReconcileView {
            mode: config.mode,
            policy: config.policy,
            threshold: config.threshold,
            decision: self.decision.clone().unwrap_or(DecisionSummary {
                kind: "idle",
                reason: None,
                target_root: None,
            }),
            in_progress: self.in_flight,
            request_id: self.episode.as_ref().map(|(id, _)| id.clone()),
            target_root: self.episode.as_ref().map(|(_, root)| root.clone()),
            cooldown_remaining_seconds: remaining(self.cooldown_until),
            backoff_remaining_seconds: remaining(self.backoff_until),
            consecutive_failures: self.consecutive_failures,
            requests_last_hour: self
                .sent
                .iter()
                .filter(|at| now.saturating_duration_since(**at) < HOUR)
                .count(),
            rejected_roots: self.rejected_roots.iter().cloned().collect(),
            last_success_timestamp_seconds: self.last_success.map(unix_seconds),
            requests_total: self.requests_total,
            failures_total: self.failures_total,
            suppressed_total: self.suppressed_total,
            dry_run_request: self.dry_run_request.clone(),
            history: self.history.iter().cloned().collect(),
            confirmation: self.confirmer.view(now),
        }
    }

    /// What to pull beside this interval's cycle: the probe, when a sampled sidecar may
    /// act (`majority` policy, mode not `off`), and the running confirmation's draws.
    pub fn draws(&mut self, config: &ReconcileConfig, membership: &Membership) -> Draws {
        let probing = config.mode != Mode::Off && config.policy == Policy::Majority;
        self.confirmer.draws(membership, probing)
    }

    /// See `Confirmer::record_draws`.
    pub fn record_draws(
        &mut self,
        config: &ReconcileConfig,
        generation: u64,
        samples: Vec<Sample>,
        local_node_id: Option<&str>,
        now: Instant,
    ) -> Verdict {
        self.confirmer
            .record_draws(generation, samples, local_node_id, now, config.cooldown)
    }

    /// See `Confirmer::record_probe`.
    pub fn record_probe(&mut self, generation: u64, sample: Sample, local_root: Option<&str>) {
        self.confirmer.record_probe(generation, sample, local_root);
    }

    /// What survives a restart, with times as Unix seconds.
    pub(crate) fn checkpoint(&self, anchor: &Anchor) -> ReconcileCheckpoint {
        let unix = |at: Option<Instant>| at.map(|i| anchor.to_unix(i));
        ReconcileCheckpoint {
            episode: self.episode.clone(),
            cooldown_until: unix(self.cooldown_until),
            backoff_until: unix(self.backoff_until),
            busy_until: unix(self.busy_until),
            consecutive_failures: self.consecutive_failures,
            awaiting_effect: self.awaiting_effect.clone(),
            rejected_roots: self.rejected_roots.iter().cloned().collect(),
            sent: self.sent.iter().map(|at| anchor.to_unix(*at)).collect(),
            last_success: self.last_success.map(unix_seconds),
            history: self.history.iter().cloned().collect(),
        }
    }

    /// Takes back what a checkpoint kept.
    pub(crate) fn restore(&mut self, saved: &ReconcileCheckpoint, anchor: &Anchor) {
        let instant = |unix: Option<f64>| unix.map(|u| anchor.to_instant(u));
        self.episode = saved.episode.clone();
        self.cooldown_until = instant(saved.cooldown_until);
        self.backoff_until = instant(saved.backoff_until);
        self.busy_until = instant(saved.busy_until);
        self.consecutive_failures = saved.consecutive_failures;
        self.awaiting_effect = saved.awaiting_effect.clone();
        self.rejected_roots = saved.rejected_roots.iter().cloned().collect();
        self.sent = saved.sent.iter().map(|u| anchor.to_instant(*u)).collect();
        self.last_success = saved.last_success.map(from_unix);
        let skip = saved.history.len().saturating_sub(HISTORY_LENGTH);
        self.history = saved.history.iter().skip(skip).cloned().collect();
    }

    /// The request id of the episode towards `root`, and whether the episode is new.
    fn episode_towards(&mut self, root: &str) -> (String, bool) {
        match &self.episode {
            Some((id, current)) if current == root => (id.clone(), false),
            _ => {
                let id = format!("{:016x}{:016x}", self.ids.u64(..), self.ids.u64(..));
                self.episode = Some((id.clone(), root.to_owned()));
                (id, true)
            }
        }
    }

    /// The delay after the current run of consecutive failures: see [`backoff_delay`].
    fn backoff_delay(&mut self, config: &ReconcileConfig) -> Duration {
        backoff_delay(config, self.consecutive_failures, self.jitter.f64())
    }

    fn push_history(
        &mut self,
        now: Anchor,
        request_id: &str,
        target_root: &str,
        outcome: &'static str,
        detail: String,
    ) {
        if self.history.len() == HISTORY_LENGTH {
            self.history.pop_front();
        }
        self.history.push_back(HistoryEntry {
            at: unix_seconds(now.wall),
            request_id: request_id.to_owned(),
            target_root: target_root.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        });
    }
}

/// min(cap, base × factor^(n−1)) × (0.5 + 0.5 × `jitter`), `jitter` in [0, 1): growing,
/// capped, and spread so that sidecars failing together do not retry together.
pub(crate) fn backoff_delay(
    config: &ReconcileConfig,
    consecutive_failures: u32,
    jitter: f64,
) -> Duration {
    let exponent = consecutive_failures.saturating_sub(1).min(64) as i32;
    let full = (config.backoff_base.as_secs_f64() * config.backoff_factor.powi(exponent))
        .min(config.backoff_cap.as_secs_f64());
    Duration::try_from_secs_f64(full * (0.5 + 0.5 * jitter)).unwrap_or(config.backoff_cap)
}

fn summarise(decision: &Decision) -> DecisionSummary {
    match decision {
        Decision::Idle => DecisionSummary {
            kind: "idle",
            reason: None,
            target_root: None,
        },
        Decision::Suppressed(reason, target) => DecisionSummary {
            kind: "suppressed",
            reason: Some(reason.as_str()),
            target_root: target.as_ref().map(|t| t.root.clone()),
        },
        Decision::Request(target) => DecisionSummary {
            kind: "request",
            reason: None,
            target_root: Some(target.root.clone()),
        },
    }
}

#[cfg(test)]
mod tests;
