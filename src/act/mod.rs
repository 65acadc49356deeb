//! The reconciler: the one place peerscope acts. After every cycle it asks the decision
//! (`decision.rs`) whether the local node should reconcile; it sends at most one request
//! at a time to the node's reconciliation API, awaits the answer, and records the outcome
//! with every guard of SPEC §6: cooldown, backoff with jitter, the hourly cap, no retry
//! towards a rejected root, a stable request id per episode, "no effect" detection.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ReconcileConfig;
use crate::config::{Mode, Policy};
use crate::figures::decision::{decide, Decision, Facts, Guards, Suppression, Target};
use crate::store::Store;
use crate::timeline::unix_seconds;
use crate::timeline::Anchor;

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
    pub const ALL: [RequestFailure; 6] = [
        RequestFailure::Timeout,
        RequestFailure::Connect,
        RequestFailure::HttpStatus,
        RequestFailure::Rejected,
        RequestFailure::NoEffect,
        RequestFailure::TokenFile,
    ];

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
    pub at: f64,
    pub request_id: String,
    pub target_root: String,
    /// `success`, `in_progress`, `rejected`, `failed`, `no_effect` or `dry_run`.
    pub outcome: String,
    pub detail: String,
}

/// The current decision, as `/status` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DecisionSummary {
    /// `idle`, `request` or `suppressed`.
    pub kind: &'static str,
    pub reason: Option<&'static str>,
    pub target_root: Option<String>,
}

/// A snapshot of the reconciler, for `/metrics` and `/status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReconcileView {
    pub mode: Mode,
    pub policy: Policy,
    pub threshold: u64,
    pub decision: DecisionSummary,
    pub in_progress: bool,
    pub request_id: Option<String>,
    pub target_root: Option<String>,
    pub cooldown_remaining_seconds: f64,
    pub backoff_remaining_seconds: f64,
    pub consecutive_failures: u32,
    pub requests_last_hour: usize,
    pub rejected_roots: Vec<String>,
    pub last_success_timestamp_seconds: Option<f64>,
    pub requests_total: u64,
    #[serde(skip)]
    pub failures_total: [u64; RequestFailure::ALL.len()],
    #[serde(skip)]
    pub suppressed_total: [u64; Suppression::ALL.len()],
    /// The body a dry run would have sent.
    pub dry_run_request: Option<serde_json::Value>,
    pub history: Vec<HistoryEntry>,
}

/// What the reconciler keeps across a restart (times as Unix seconds), so that a restart
/// neither fires a second request for one episode nor forgets a cooldown or a backoff.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileCheckpoint {
    /// (request id, target root) of the current episode.
    pub episode: Option<(String, String)>,
    pub cooldown_until: Option<f64>,
    pub backoff_until: Option<f64>,
    pub busy_until: Option<f64>,
    pub consecutive_failures: u32,
    pub awaiting_effect: Option<String>,
    pub rejected_roots: Vec<String>,
    /// When the requests of the last hour were sent.
    pub sent: Vec<f64>,
    pub last_success: Option<f64>,
    pub history: Vec<HistoryEntry>,
}

/// A request ready to go.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub request_id: String,
    pub body: serde_json::Value,
}

const HISTORY_LENGTH: usize = 20;
const HOUR: Duration = Duration::from_secs(3600);

/// Shared handle to the reconciler's state.
#[derive(Clone)]
pub struct Reconciler {
    // std Mutex: nothing is awaited while it is held.
    shared: Arc<Mutex<State>>,
    /// Swapped whole on reload; readers take a cheap `Arc` of the current one.
    config: Arc<Mutex<Arc<ReconcileConfig>>>,
}

#[derive(Default)]
struct State {
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
}

impl Reconciler {
    pub fn new(config: ReconcileConfig) -> Self {
        Reconciler {
            shared: Arc::new(Mutex::new(State::default())),
            config: Arc::new(Mutex::new(Arc::new(config))),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<ReconcileConfig> {
        Arc::clone(&self.config.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Swaps in a reloaded configuration; the state (cooldown, backoff, episode) stays.
    pub fn reconfigure(&self, config: ReconcileConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn checkpoint(&self, anchor: &Anchor) -> ReconcileCheckpoint {
        let state = self.lock();
        let unix = |at: Option<Instant>| at.map(|i| anchor.to_unix(i));
        ReconcileCheckpoint {
            episode: state.episode.clone(),
            cooldown_until: unix(state.cooldown_until),
            backoff_until: unix(state.backoff_until),
            busy_until: unix(state.busy_until),
            consecutive_failures: state.consecutive_failures,
            awaiting_effect: state.awaiting_effect.clone(),
            rejected_roots: state.rejected_roots.iter().cloned().collect(),
            sent: state.sent.iter().map(|at| anchor.to_unix(*at)).collect(),
            last_success: state.last_success.map(unix_seconds),
            history: state.history.iter().cloned().collect(),
        }
    }

    pub fn restore(&self, saved: &ReconcileCheckpoint, anchor: &Anchor) {
        let mut state = self.lock();
        let instant = |unix: Option<f64>| unix.map(|u| anchor.to_instant(u));
        state.episode = saved.episode.clone();
        state.cooldown_until = instant(saved.cooldown_until);
        state.backoff_until = instant(saved.backoff_until);
        state.busy_until = instant(saved.busy_until);
        state.consecutive_failures = saved.consecutive_failures;
        state.awaiting_effect = saved.awaiting_effect.clone();
        state.rejected_roots = saved.rejected_roots.iter().cloned().collect();
        state.sent = saved.sent.iter().map(|u| anchor.to_instant(*u)).collect();
        state.last_success = saved
            .last_success
            .map(|u| UNIX_EPOCH + Duration::try_from_secs_f64(u).unwrap_or_default());
        state.history = saved
            .history
            .iter()
            .rev()
            .take(HISTORY_LENGTH)
            .rev()
            .cloned()
            .collect();
    }

    /// Evaluates the decision for this cycle, records it, and returns the request to send
    /// if one is to be sent now (which marks it in flight).
    pub fn evaluate(&self, facts: &Facts, now: Instant) -> Option<Outgoing> {
        let config = &*self.config();
        let mut state = self.lock();
        while state
            .sent
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= HOUR)
        {
            state.sent.pop_front();
        }
        if state.awaiting_effect.is_some() && facts.local_root == state.awaiting_effect {
            state.awaiting_effect = None;
        }
        let guards = Guards {
            in_flight: state.in_flight,
            busy_until: state.busy_until,
            cooldown_until: state.cooldown_until,
            backoff_until: state.backoff_until,
            requests_last_hour: state.sent.len(),
            max_per_hour: config.max_per_hour,
            rejected_roots: Some(&state.rejected_roots),
        };
        let mut decision = decide(
            config.mode,
            config.policy,
            config.threshold,
            facts,
            &guards,
            now,
        );

        // Accepted before, cooled down, and still diverging towards the same root: it had
        // no effect. Count it, start a new episode, and retry only after a backoff.
        if let Decision::Request(target) = &decision {
            if state.awaiting_effect.as_deref() == Some(target.root.as_str()) {
                state.awaiting_effect = None;
                state.episode = None;
                state.failures_total[failure_index(RequestFailure::NoEffect)] += 1;
                state.consecutive_failures += 1;
                state.backoff_until = Some(now + backoff_delay(config, state.consecutive_failures));
                let detail = "divergence persisted after the cooldown".to_owned();
                tracing::warn!(target_root = %target.root, "reconciliation had no effect; retrying after a backoff");
                push_history(&mut state, "-", &target.root, "no_effect", detail);
                decision = Decision::Suppressed(Suppression::Backoff, Some(target.clone()));
            }
        }

        let summary = summarise(&decision);
        if state.decision.as_ref() != Some(&summary) {
            tracing::info!(
                decision = summary.kind,
                reason = summary.reason,
                target_root = summary.target_root.as_deref(),
                "reconciliation decision changed"
            );
            state.decision = Some(summary);
        }
        match decision {
            Decision::Idle => None,
            Decision::Suppressed(reason, target) => {
                state.suppressed_total[reason.index()] += 1;
                if let (Suppression::DryRun, Some(target)) = (reason, target) {
                    let new_episode =
                        !matches!(&state.episode, Some((_, root)) if *root == target.root);
                    let (request_id, _) = episode(&mut state, &target.root);
                    let body = request_body(&request_id, facts, &target, true);
                    if new_episode {
                        tracing::info!(%request_id, target_root = %target.root, "dry run: would request reconciliation");
                        push_history(
                            &mut state,
                            &request_id,
                            &target.root,
                            "dry_run",
                            "not sent (mode dry-run)".into(),
                        );
                    }
                    state.dry_run_request = Some(body);
                }
                None
            }
            Decision::Request(target) => {
                let (request_id, _) = episode(&mut state, &target.root);
                state.in_flight = true;
                state.sent.push_back(now);
                state.requests_total += 1;
                let body = request_body(&request_id, facts, &target, false);
                tracing::info!(%request_id, target_root = %target.root, sources = target.sources.len(), "requesting reconciliation");
                Some(Outgoing { request_id, body })
            }
        }
    }

    /// Records the node's answer; returns whether it was accepted (streaks then reset).
    pub fn record(&self, outgoing: &Outgoing, answer: Answer, now: Instant) -> bool {
        let config = &*self.config();
        let mut state = self.lock();
        state.in_flight = false;
        let target_root = outgoing.body["target_root"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let request_id = &outgoing.request_id;
        match answer {
            Answer::Accepted(status) => {
                tracing::info!(%request_id, %target_root, status, "reconciliation accepted");
                state.last_success = Some(SystemTime::now());
                state.cooldown_until = Some(now + config.cooldown);
                state.consecutive_failures = 0;
                state.backoff_until = None;
                state.awaiting_effect = Some(target_root.clone());
                state.episode = None;
                push_history(
                    &mut state,
                    request_id,
                    &target_root,
                    "success",
                    format!("answered {status}"),
                );
                true
            }
            Answer::AlreadyRunning => {
                tracing::info!(%request_id, %target_root, "node is already reconciling (409); waiting");
                state.busy_until = Some(now + config.backoff_base);
                push_history(
                    &mut state,
                    request_id,
                    &target_root,
                    "in_progress",
                    "answered 409".into(),
                );
                false
            }
            Answer::Failed(RequestFailure::Rejected, detail) => {
                tracing::warn!(%request_id, %target_root, %detail, "reconciliation rejected; no retry towards this root");
                state.failures_total[failure_index(RequestFailure::Rejected)] += 1;
                state.rejected_roots.insert(target_root.clone());
                state.episode = None;
                push_history(&mut state, request_id, &target_root, "rejected", detail);
                false
            }
            Answer::Failed(failure, detail) => {
                state.failures_total[failure_index(failure)] += 1;
                state.consecutive_failures += 1;
                let delay = backoff_delay(config, state.consecutive_failures);
                state.backoff_until = Some(now + delay);
                tracing::warn!(%request_id, %target_root, reason = failure.as_str(), %detail, backoff = ?delay, "reconciliation failed");
                push_history(
                    &mut state,
                    request_id,
                    &target_root,
                    "failed",
                    format!("{}: {detail}", failure.as_str()),
                );
                false
            }
        }
    }

    pub fn view(&self, now: Instant) -> ReconcileView {
        let config = self.config();
        let state = self.lock();
        let remaining = |until: Option<Instant>| {
            until.map_or(0.0, |u| u.saturating_duration_since(now).as_secs_f64())
        };
        ReconcileView {
            mode: config.mode,
            policy: config.policy,
            threshold: config.threshold,
            decision: state.decision.clone().unwrap_or(DecisionSummary {
                kind: "idle",
                reason: None,
                target_root: None,
            }),
            in_progress: state.in_flight,
            request_id: state.episode.as_ref().map(|(id, _)| id.clone()),
            target_root: state.episode.as_ref().map(|(_, root)| root.clone()),
            cooldown_remaining_seconds: remaining(state.cooldown_until),
            backoff_remaining_seconds: remaining(state.backoff_until),
            consecutive_failures: state.consecutive_failures,
            requests_last_hour: state
                .sent
                .iter()
                .filter(|at| now.saturating_duration_since(**at) < HOUR)
                .count(),
            rejected_roots: state.rejected_roots.iter().cloned().collect(),
            last_success_timestamp_seconds: state.last_success.map(unix_seconds),
            requests_total: state.requests_total,
            failures_total: state.failures_total,
            suppressed_total: state.suppressed_total,
            dry_run_request: state.dry_run_request.clone(),
            history: state.history.iter().cloned().collect(),
        }
    }
}

/// The request id of the episode towards `root`, starting a new episode if needed.
fn episode(state: &mut State, root: &str) -> (String, bool) {
    match &state.episode {
        Some((id, current)) if current == root => (id.clone(), false),
        _ => {
            let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
            state.episode = Some((id.clone(), root.to_owned()));
            (id, true)
        }
    }
}

/// min(cap, base × factor^(n−1)), scaled by a random factor in [0.5, 1): growing, capped,
/// and spread so that sidecars failing together do not retry together.
pub fn backoff_delay(config: &ReconcileConfig, consecutive_failures: u32) -> Duration {
    let exponent = consecutive_failures.saturating_sub(1).min(64) as i32;
    let full = (config.backoff_base.as_secs_f64() * config.backoff_factor.powi(exponent))
        .min(config.backoff_cap.as_secs_f64());
    Duration::from_secs_f64(full * (0.5 + 0.5 * fastrand::f64()))
}

fn failure_index(failure: RequestFailure) -> usize {
    failure as usize
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

fn push_history(
    state: &mut State,
    request_id: &str,
    target_root: &str,
    outcome: &'static str,
    detail: String,
) {
    if state.history.len() == HISTORY_LENGTH {
        state.history.pop_front();
    }
    state.history.push_back(HistoryEntry {
        at: unix_seconds(SystemTime::now()),
        request_id: request_id.to_owned(),
        target_root: target_root.to_owned(),
        outcome: outcome.to_owned(),
        detail,
    });
}

/// The body of `contracts/reconcile_request@1.yaml`.
fn request_body(
    request_id: &str,
    facts: &Facts,
    target: &Target,
    dry_run: bool,
) -> serde_json::Value {
    let mut body = json!({
        "request_id": request_id,
        "reason": "state_divergence",
        "local_root": facts.local_root,
        "target_root": target.root,
        "sources": target.sources,
        "observed": {
            "live_peers": facts.live_peers,
            "voters": target.voters,
            "agreeing_with_target": target.sources.len(),
            "min_streak": target.sources.iter().map(|s| s.streak).min().unwrap_or(0),
        },
        "dry_run": dry_run,
    });
    if let Some(height) = target.height {
        body["target_height"] = json!(height);
    }
    body
}

/// Sends one request to the node and classifies its answer.
pub async fn send(
    client: &reqwest::Client,
    url: Url,
    config: &ReconcileConfig,
    outgoing: &Outgoing,
) -> Answer {
    let mut request = client
        .post(url)
        .timeout(config.timeout)
        .header(CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", &outgoing.request_id)
        .body(outgoing.body.to_string());
    if let Some(path) = &config.token_file {
        // Re-read at every request so a rotated token is used at once. The token itself
        // is never logged: only the file's path appears in errors.
        match std::fs::read_to_string(path) {
            Ok(token) => {
                request = request.header(AUTHORIZATION, format!("Bearer {}", token.trim()))
            }
            Err(error) => {
                return Answer::Failed(
                    RequestFailure::TokenFile,
                    format!("cannot read token file {}: {error}", path.display()),
                )
            }
        }
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            match status.as_u16() {
                200..=299 => Answer::Accepted(status.as_u16()),
                409 => Answer::AlreadyRunning,
                400..=499 => Answer::Failed(RequestFailure::Rejected, format!("answered {status}")),
                _ => Answer::Failed(RequestFailure::HttpStatus, format!("answered {status}")),
            }
        }
        Err(error) if error.is_timeout() => Answer::Failed(
            RequestFailure::Timeout,
            format!("no answer within {:?}", config.timeout),
        ),
        Err(error) => {
            let mut cause: &dyn std::error::Error = &error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            Answer::Failed(RequestFailure::Connect, cause.to_string())
        }
    }
}

/// `{node}{path}`, keeping the node's own path prefix.
fn api_url(node: &Url, path: &str) -> Url {
    let mut url = node.clone();
    url.set_path(&format!("{}{path}", node.path().trim_end_matches('/')));
    url
}

/// Runs after every completed cycle until `shutdown`; a request in flight at shutdown is
/// still awaited (bounded by its timeout) so its outcome is recorded.
pub async fn run(
    reconciler: Reconciler,
    store: Store,
    mut cycles: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the reconciliation client; reconciliation is off");
            return;
        }
    };
    type InFlight = Pin<Box<dyn Future<Output = (Outgoing, Answer)> + Send>>;
    let mut in_flight: Option<InFlight> = None;
    let mut cycles_open = true;
    loop {
        if !cycles_open && in_flight.is_none() {
            break;
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled(), if in_flight.is_none() => break,
            answer = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                in_flight = None;
                let (outgoing, answer) = answer;
                if reconciler.record(&outgoing, answer, Instant::now()) {
                    store.reset_streaks();
                }
            }
            changed = cycles.changed(), if cycles_open => {
                if changed.is_err() {
                    cycles_open = false; // the poll loop has stopped
                    continue;
                }
                if shutdown.is_cancelled() {
                    continue;
                }
                let now = Instant::now();
                if let Some(outgoing) = reconciler.evaluate(&store.reconcile_facts(now), now) {
                    // Read at each request: a reload may have changed the node or the path.
                    let config = reconciler.config();
                    let url = api_url(&store.node_url(), &config.path);
                    let client = client.clone();
                    in_flight = Some(Box::pin(async move {
                        let answer = send(&client, url, &config, &outgoing).await;
                        (outgoing, answer)
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Sources};

    fn config() -> ReconcileConfig {
        let sources = Sources::flags(&[("node", "http://127.0.0.1:1")]);
        config::load(&sources).unwrap().reconcile
    }

    #[test]
    fn backoff_grows_by_the_factor_up_to_the_cap_with_jitter() {
        let config = config(); // base 30s, factor 2, cap 30m
        for (failures, full) in [
            (1, 30.0),
            (2, 60.0),
            (3, 120.0),
            (6, 960.0),
            (7, 1800.0),
            (40, 1800.0),
        ] {
            for _ in 0..50 {
                let delay = backoff_delay(&config, failures).as_secs_f64();
                assert!(
                    delay >= full * 0.5 && delay < full,
                    "{failures} failures: {delay}s outside [{}, {full})",
                    full * 0.5
                );
            }
        }
    }
}
