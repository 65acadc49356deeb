//! The store: the one place that holds what peerscope knows — per-target counters and
//! windows, the latest summaries, identity and divergence state — and the cycle's rules
//! for changing it. Built once in `main`, before any task that reads or writes it, and
//! handed to each of them as a cheap clone of the same handle.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use reqwest::Url;
use tokio::time::Instant;

use crate::config::transport::Transport;
use crate::config::{Config, ObserversPerPeer, PeerConfig, PerPeer, QualityWeights};
use crate::figures::confirmation::Membership;
use crate::figures::decision::{Facts, PeerFacts};
use crate::figures::divergence::{self, Relation};
use crate::figures::histogram::Histogram;
use crate::figures::scoring::{self, QualityParts};
use crate::figures::view::{
    headline, FederationView, HistoryPoint, ObservationView, PeerView, QualityView, TargetView,
    View,
};
use crate::figures::window::{Sample, SampleRecord, Window};
use crate::pull::assignment::Members;
use crate::pull::contract::{summary_url, Summary};
use crate::pull::failure::{FailureReason, PullError};
use crate::pull::outcome::{Pacing, PullOutcome, PullPlan, PullTarget, TargetId};
use crate::timeline::Anchor;
use crate::timeline::{from_unix, unix_seconds};

/// The settings the figures depend on.
#[derive(Clone, Copy, Debug)]
struct Settings {
    interval: Duration,
    timeout: Duration,
    window: Duration,
    live_max_age: Duration,
    weights: QualityWeights,
    body_limit: usize,
    max_concurrent_pulls: usize,
    per_peer: PerPeer,
    created_samples: bool,
}

/// What the store keeps across a restart: per peer, its identity, window and streak
/// (contract: the checkpoint layout in `contracts/checkpoint@1.yaml`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreCheckpoint {
    pub peers: Vec<PeerCheckpoint>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerCheckpoint {
    /// The peer's base URL: what identifies it across configuration changes.
    pub url: String,
    pub node_id: Option<String>,
    pub streak: u64,
    /// Unix time of the last successful pull.
    pub last_success: Option<f64>,
    pub samples: Vec<SampleRecord>,
}

/// Shared handle to the store. Cloning it is cheap; every clone sees the same state.
#[derive(Clone)]
pub struct Store {
    // std Mutex: nothing is awaited while it is held, and every critical section is short.
    shared: Arc<Mutex<State>>,
}

struct State {
    settings: Settings,
    node: Target,
    peers: Vec<Peer>,
    /// Which peer a node_id belongs to, so that a second URL reporting it is flagged.
    owners: HashMap<String, String>,
    cycles_completed: u64,
    heartbeat: Option<Instant>,
    /// The next [`TargetId`] to hand out; ids are never reused.
    next_id: u64,
    /// This node's configured name; `None`: the local node's `node_id`.
    name: Option<String>,
    observers_per_peer: ObserversPerPeer,
    /// The last assignment of roles: for whom, and its figures.
    observation: ObservationView,
    /// Per cycle: when, peers live, novelty, divergence ratio (see [`Store::history`]).
    history: VecDeque<(Instant, usize, f64, f64)>,
    /// Positions in `peers` of the members other than this node: what confirmation draws
    /// from (SPEC §6), by position in this list.
    members: Vec<usize>,
    /// Bumped whenever `members` or the roles change; draws of an older one are void.
    generation: u64,
}

/// The most cycles of headline figures kept for the page's plot.
pub const HISTORY_LIMIT: usize = 1000;

/// Cycles of history kept: a window's worth, at most [`HISTORY_LIMIT`].
fn history_length(settings: &Settings) -> usize {
    let per_window = settings.window.as_secs_f64() / settings.interval.as_secs_f64();
    (per_window.ceil() as usize + 1).clamp(2, HISTORY_LIMIT)
}

/// Whether this sidecar pulls a peer (sampled observation, SPEC §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Pulled; `rank` among the peer's K observers (`None` in a full mesh).
    Observed { rank: Option<usize> },
    /// Another member observes it.
    NotObserved,
    /// This node itself, listed in a shared member list: skipped, not flagged.
    Myself,
}

struct Target {
    id: TargetId,
    label: String,
    url: Url,
    summary_url: Url,
    /// How it is reached (TLS settings, `Authorization`); plain for the local node.
    transport: Arc<Transport>,
    window: Window,
    polls_total: u64,
    failures_total: [u64; FailureReason::ALL.len()],
    durations: Histogram,
    /// When the counters above started from zero (they are not checkpointed).
    counters_created_at: SystemTime,
    up: bool,
    last_success: Option<(Instant, SystemTime)>,
    last_error: Option<PullError>,
    latest: Option<Latest>,
    /// The node_id the target reported last: its identity, kept across restarts.
    node_id: Option<String>,
}

struct Latest {
    summary: Summary,
    clock_skew_seconds: f64,
}

struct Peer {
    target: Target,
    role: Role,
    streak: u64,
    relation: Relation,
    identity_problem: Option<String>,
}

impl Store {
    pub fn new(config: &Config) -> Self {
        let settings = Settings::from(config);
        let mut state = State {
            settings,
            node: Target::new(
                TargetId(0),
                node_label(&config.node),
                config.node.clone(),
                &settings,
            ),
            peers: Vec::new(),
            owners: HashMap::new(),
            cycles_completed: 0,
            heartbeat: None,
            next_id: 1,
            name: config.name.clone(),
            observers_per_peer: config.observers_per_peer,
            observation: ObservationView::default(),
            history: VecDeque::new(),
            members: Vec::new(),
            generation: 0,
        };
        for peer in &config.peers {
            let id = state.new_id();
            state.peers.push(Peer::new(id, peer, &settings));
        }
        assign_roles(&mut state);
        Store {
            shared: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in this module; the data is still
        // consistent enough to export, so keep serving rather than poisoning every reader.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state worth keeping across a restart.
    pub fn checkpoint(&self, anchor: &Anchor) -> StoreCheckpoint {
        let state = self.lock();
        StoreCheckpoint {
            peers: state
                .peers
                .iter()
                .map(|p| PeerCheckpoint {
                    url: p.target.url.to_string(),
                    node_id: p.target.node_id.clone(),
                    streak: p.streak,
                    last_success: p.target.last_success.map(|(at, _)| anchor.to_unix(at)),
                    samples: p
                        .target
                        .window
                        .samples()
                        .map(|s| s.to_record(anchor))
                        .collect(),
                })
                .collect(),
        }
    }

    /// Restores what a checkpoint kept for the peers that are still configured; samples
    /// older than the window are dropped. Returns how many peers were restored.
    pub fn restore(&self, checkpoint: &StoreCheckpoint, anchor: &Anchor) -> usize {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut restored = 0;
        for saved in &checkpoint.peers {
            let Some(peer) = state
                .peers
                .iter_mut()
                .find(|p| p.target.url.as_str() == saved.url)
            else {
                continue; // no longer configured
            };
            let samples = saved.samples.iter().map(|r| Sample::from_record(r, anchor));
            peer.target.window.restore(samples, anchor.instant);
            peer.streak = saved.streak;
            peer.target.node_id = saved.node_id.clone();
            peer.target.last_success = saved
                .last_success
                .map(|unix| (anchor.to_instant(unix), from_unix(unix)));
            if let Some(node_id) = &saved.node_id {
                state
                    .owners
                    .insert(node_id.clone(), peer.target.label.clone());
            }
            restored += 1;
        }
        restored
    }

    /// Swaps in a new configuration. Peers that stay (same URL) keep their windows,
    /// streaks and identity; added peers start empty; removed peers are forgotten, so
    /// their series vanish at the next scrape.
    pub fn reconfigure(&self, config: &Config) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let settings = Settings::from(config);
        let resized = settings.window != state.settings.window
            || settings.interval != state.settings.interval;
        state.settings = settings;
        if state.node.url != config.node {
            let id = state.new_id();
            state.node = Target::new(id, node_label(&config.node), config.node.clone(), &settings);
        }
        let mut old: Vec<Peer> = std::mem::take(&mut state.peers);
        for wanted in &config.peers {
            let peer = match old.iter().position(|p| p.target.url == wanted.url) {
                Some(index) => {
                    let mut peer = old.swap_remove(index);
                    peer.target.label = wanted.label.clone();
                    if peer.target.transport != wanted.transport {
                        peer.target.set_transport(&wanted.transport);
                    }
                    if resized {
                        peer.target
                            .window
                            .resize(settings.window, settings.interval);
                    }
                    peer
                }
                None => Peer::new(state.new_id(), wanted, &settings),
            };
            state.peers.push(peer);
        }
        let labels: HashMap<String, &str> = state
            .peers
            .iter()
            .filter_map(|p| Some((p.target.node_id.clone()?, p.target.label.as_str())))
            .collect();
        state
            .owners
            .retain(|node_id, _| labels.contains_key(node_id));
        for (node_id, owner) in state.owners.iter_mut() {
            labels[node_id].clone_into(owner);
        }
        state.name.clone_from(&config.name);
        state.observers_per_peer = config.observers_per_peer;
        assign_roles(state);
    }

    /// How the next cycle is paced.
    pub fn pacing(&self) -> Pacing {
        let settings = self.lock().settings;
        Pacing {
            interval: settings.interval,
            timeout: settings.timeout,
            body_limit: settings.body_limit,
            max_concurrent_pulls: settings.max_concurrent_pulls,
        }
    }

    /// The local node's base URL.
    pub fn node_url(&self) -> Url {
        self.lock().node.url.clone()
    }

    /// The member list a confirmation draws from.
    pub fn membership(&self) -> Membership {
        let state = self.lock();
        let k = state.observation.observers_per_peer;
        Membership {
            generation: state.generation,
            others: state.members.len(),
            sampled: state.observation.not_observed > 0,
            budget: 2 * k,
        }
    }

    /// The members at `positions` of the member list of `generation`, with their base
    /// URLs; `None` when the list has changed since.
    pub fn members_at(
        &self,
        generation: u64,
        positions: &[usize],
    ) -> Option<Vec<(PullTarget, String)>> {
        let state = self.lock();
        if state.generation != generation {
            return None;
        }
        positions
            .iter()
            .map(|&p| {
                let target = &state.peers[*state.members.get(p)?].target;
                Some((target.pull_target(), target.url.to_string()))
            })
            .collect()
    }

    /// What the next cycle pulls.
    pub fn pull_plan(&self) -> PullPlan {
        let state = self.lock();
        PullPlan {
            node: state.node.pull_target(),
            peers: state
                .peers
                .iter()
                .filter(|p| p.is_observed())
                .map(|p| p.target.pull_target())
                .collect(),
        }
    }

    /// The interval and the window in force.
    pub fn timing(&self) -> (Duration, Duration) {
        let state = self.lock();
        (state.settings.interval, state.settings.window)
    }

    /// Records that the poll loop is alive at `now`.
    pub fn beat(&self, now: Instant) {
        self.lock().heartbeat = Some(now);
    }

    /// Alive: the poll loop's heartbeat advanced within 3 intervals.
    pub fn is_alive(&self, now: Instant) -> bool {
        let state = self.lock();
        state.heartbeat.is_some_and(|beat| {
            now.saturating_duration_since(beat) <= state.settings.interval.saturating_mul(3)
        })
    }

    /// Ready: the first poll cycle has completed.
    pub fn is_ready(&self) -> bool {
        self.lock().cycles_completed > 0
    }

    /// Applies one cycle's outcomes — the local node first, then the peers in
    /// configuration order, so identity decisions do not depend on which answer came first —
    /// and then moves every peer's divergence streak.
    ///
    /// Outcomes are keyed by [`TargetId`]: a target that was replaced while the cycle ran
    /// (its URL changed) has a new id and gets nothing; one that was only renamed keeps its
    /// id and its outcome. A node outcome for a replaced node is dropped the same way.
    pub fn record_cycle(
        &self,
        node: Option<(TargetId, PullOutcome)>,
        mut peers: HashMap<TargetId, PullOutcome>,
        now: Instant,
    ) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some((id, outcome)) = node {
            if id == state.node.id {
                state.node.record(outcome);
                // Without a configured name, this node's name is its node_id: known now.
                if state.name.is_none() && state.observation.name != state.node.node_id {
                    assign_roles(state);
                }
            }
        }
        let local_id = state
            .node
            .latest
            .as_ref()
            .map(|l| l.summary.node_id.clone());

        for index in 0..state.peers.len() {
            // A peer added while the cycle ran has no outcome yet; it is pulled next cycle.
            let Some(mut outcome) = peers.remove(&state.peers[index].target.id) else {
                continue;
            };
            if let Ok(summary) = &outcome.result {
                match identity_problem(state, index, &summary.node_id, local_id.as_deref(), now) {
                    Some(problem) => {
                        outcome.result =
                            Err(PullError::new(FailureReason::Identity, problem.clone()));
                        state.peers[index].identity_problem = Some(problem);
                    }
                    None => adopt_node_id(state, index, &summary.node_id),
                }
            }
            state.peers[index].target.record(outcome);
        }

        let live_max_age = state.settings.live_max_age;
        let local_root = state.node.fresh_root(now, live_max_age).map(str::to_owned);
        for peer in state.peers.iter_mut().filter(|p| p.is_observed()) {
            let peer_root = peer.target.fresh_root(now, live_max_age);
            peer.relation = divergence::relation(local_root.as_deref(), peer_root);
            peer.streak = divergence::next_streak(peer.streak, peer.relation);
        }
        let (peers_live, novelty, divergence_ratio) =
            headline(state.peers.iter().filter(|p| p.is_observed()).map(|p| {
                let g_star = p.target.latest.as_ref().map(|l| l.summary.metrics.g_star());
                (p.target.is_live(now, live_max_age), g_star, p.relation)
            }));
        let kept = history_length(&state.settings);
        while state.history.len() >= kept {
            state.history.pop_front();
        }
        state
            .history
            .push_back((now, peers_live, novelty.novelty, divergence_ratio));
        state.cycles_completed += 1;
        state.heartbeat = Some(now);
    }

    /// The headline figures of each cycle over the last window (at most
    /// [`HISTORY_LIMIT`] cycles), oldest first, with wall-clock times from `anchor`.
    pub fn history(&self, anchor: &Anchor) -> Vec<HistoryPoint> {
        let state = self.lock();
        let span = state.settings.window;
        state
            .history
            .iter()
            .filter(|(at, ..)| anchor.instant.saturating_duration_since(*at) <= span)
            .map(
                |&(at, peers_live, novelty, divergence_ratio)| HistoryPoint {
                    at: anchor.to_unix(at),
                    peers_live,
                    novelty,
                    divergence_ratio,
                },
            )
            .collect()
    }

    /// What the reconciliation decision looks at, at `now`.
    pub fn reconcile_facts(&self, now: Instant) -> Facts {
        let state = self.lock();
        let settings = state.settings;
        let live_max_age = settings.live_max_age;
        // A node whose last pull failed is unreachable: it is never asked to reconcile.
        let local_root = if state.node.up {
            state.node.fresh_root(now, live_max_age).map(str::to_owned)
        } else {
            None
        };
        // With sampled observation the decision sees this sidecar's sample of the peers.
        let observed = || state.peers.iter().filter(|p| p.is_observed());
        let live_peers = observed()
            .filter(|p| p.target.is_live(now, live_max_age))
            .count();
        let peers = observed()
            .filter_map(|p| {
                let root = p.target.fresh_root(now, live_max_age)?;
                let latest = p.target.latest.as_ref()?;
                Some(PeerFacts {
                    peer: p.target.label.clone(),
                    url: p.target.url.to_string(),
                    node_id: latest.summary.node_id.clone(),
                    root: root.to_owned(),
                    height: latest.summary.state_height,
                    streak: p.streak,
                    // Quality only orders the sources, which never hold the local root:
                    // skip the window scan for peers that agree (every peer, most cycles).
                    quality: if local_root.as_deref() == Some(root) {
                        0.0
                    } else {
                        p.quality(now, &settings).map_or(0.0, |q| q.quality)
                    },
                })
            })
            .collect();
        Facts {
            local_root,
            live_peers,
            peers,
            local_node_id: state.node.node_id.clone(),
            sampled: state.observation.not_observed > 0,
            probe: None,
        }
    }

    /// After an accepted reconciliation every streak starts over, so the threshold must be
    /// crossed again before the next request.
    pub fn reset_streaks(&self) {
        for peer in &mut self.lock().peers {
            peer.streak = 0;
        }
    }

    /// Every figure, computed at `now`.
    pub fn view(&self, now: Instant) -> View {
        let state = self.lock();
        let settings = state.settings;
        let node = state.node.view(now, settings.live_max_age);
        // A peer this sidecar does not observe has no series here: its observers export it.
        let peers: Vec<PeerView> = state
            .peers
            .iter()
            .filter(|p| p.is_observed())
            .map(|p| p.view(now, &settings))
            .collect();

        let (peers_live, novelty, divergence_ratio) = headline(
            peers
                .iter()
                .map(|p| (p.target.live, p.target.g_star, p.relation)),
        );
        let count = |relation| peers.iter().filter(|p| p.relation == relation).count();
        let federation = FederationView {
            peers_configured: state
                .peers
                .iter()
                .filter(|p| p.role != Role::Myself)
                .count(),
            peers_observed: peers.len(),
            observers_per_peer: state.observation.observers_per_peer,
            peers_live,
            novelty,
            divergence_ratio,
            peers_agree: count(Relation::Agree),
            peers_diverge: count(Relation::Diverge),
            peers_unknown: count(Relation::Unknown),
        };
        View {
            node,
            peers,
            federation,
            observation: state.observation.clone(),
            per_peer: settings.per_peer,
            created_samples: settings.created_samples,
            cycles_completed: state.cycles_completed,
        }
    }
}

impl State {
    fn new_id(&mut self) -> TargetId {
        let id = TargetId(self.next_id);
        self.next_id += 1;
        id
    }
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Settings {
            interval: config.interval,
            timeout: config.timeout,
            window: config.window,
            live_max_age: config.live_max_age,
            weights: config.weights,
            body_limit: config.body_limit,
            max_concurrent_pulls: config.max_concurrent_pulls,
            per_peer: config.metrics.per_peer,
            created_samples: config.metrics.created_samples,
        }
    }
}

/// The local node's label: its URL without scheme.
fn node_label(url: &Url) -> String {
    url.as_str()[url.scheme().len() + 3..]
        .trim_end_matches('/')
        .to_owned()
}

/// Decides every peer's [`Role`] from the member list (the configured peers and this
/// node), K and this node's name. Cheap enough to run under the lock: a sidecar's share is
/// O(N·K·log N) scores (see `pull::assignment`), recomputed only when its inputs change.
fn assign_roles(state: &mut State) {
    let me = state.name.clone().or_else(|| state.node.node_id.clone());
    let listed_self = me
        .as_deref()
        .is_some_and(|me| state.peers.iter().any(|p| p.target.label == me));
    let members = state.peers.len() + usize::from(!listed_self);
    let k = state.observers_per_peer.for_members(members);
    let names = Members::new(
        state
            .peers
            .iter()
            .map(|p| p.target.label.as_str())
            .chain(me.as_deref().filter(|_| !listed_self)),
    );
    let roles: Vec<Role> = state
        .peers
        .iter()
        .map(|peer| {
            let label = peer.target.label.as_str();
            match me.as_deref() {
                Some(me) if me == label => Role::Myself,
                _ if k == 0 => Role::Observed { rank: None },
                // Without a name nothing can be ranked: wait for the local node's node_id.
                None => Role::NotObserved,
                Some(me) => match names.rank_among_observers(me, label, k) {
                    Some(rank) => Role::Observed { rank: Some(rank) },
                    None => Role::NotObserved,
                },
            }
        })
        .collect();
    drop(names);
    for (peer, role) in state.peers.iter_mut().zip(roles) {
        peer.role = role;
    }
    state.members = (0..state.peers.len())
        .filter(|&i| state.peers[i].role != Role::Myself)
        .collect();
    state.generation += 1;
    let count = |role: fn(&Role) -> bool| state.peers.iter().filter(|p| role(&p.role)).count();
    state.observation = ObservationView {
        pending: me.is_none() && k > 0,
        name: me,
        setting: state.observers_per_peer,
        observers_per_peer: k,
        members,
        observed: count(|r| matches!(r, Role::Observed { .. })),
        not_observed: count(|r| *r == Role::NotObserved),
        skipped_self: listed_self,
    };
    if state.observation.pending {
        tracing::info!("observers_per_peer > 0 and no `name`: peers are pulled once the local node's node_id is known");
    }
}

/// Why the peer at `index` may not report `node_id`, if it may not.
fn identity_problem(
    state: &State,
    index: usize,
    node_id: &str,
    local_id: Option<&str>,
    now: Instant,
) -> Option<String> {
    if local_id == Some(node_id) {
        return Some(format!(
            "reports node_id {node_id:?}, the local node's own (self-peering)"
        ));
    }
    let label = &state.peers[index].target.label;
    let owner = state.owners.get(node_id).filter(|owner| *owner != label)?;
    let owner_still_reports_it = state.peers.iter().any(|p| {
        &p.target.label == owner
            && p.target.is_live(now, state.settings.live_max_age)
            && p.target.node_id.as_deref() == Some(node_id)
    });
    owner_still_reports_it
        .then(|| format!("reports node_id {node_id:?}, already reported by peer {owner:?}"))
}

/// Makes the peer at `index` the owner of `node_id`; a peer whose node_id changed is a new
/// peer, so its window, latest summary and streak start over.
fn adopt_node_id(state: &mut State, index: usize, node_id: &str) {
    let settings = state.settings;
    let peer = &mut state.peers[index];
    peer.identity_problem = None;
    let previous = peer.target.node_id.clone();
    if let Some(previous) = previous.filter(|p| p != node_id) {
        tracing::warn!(peer = %peer.target.label, from = %previous, to = %node_id, "peer's node_id changed; its window starts over");
        peer.target.window = Window::new(settings.window, settings.interval);
        peer.target.latest = None;
        peer.target.last_success = None;
        peer.streak = 0;
        if state.owners.get(&previous) == Some(&peer.target.label) {
            state.owners.remove(&previous);
        }
    }
    state
        .owners
        .insert(node_id.to_owned(), state.peers[index].target.label.clone());
}

impl Target {
    fn new(id: TargetId, label: String, url: Url, settings: &Settings) -> Self {
        Target {
            id,
            summary_url: summary_url(&url),
            transport: Arc::default(),
            label,
            url,
            window: Window::new(settings.window, settings.interval),
            polls_total: 0,
            failures_total: [0; FailureReason::ALL.len()],
            durations: Histogram::default(),
            counters_created_at: SystemTime::now(),
            up: false,
            last_success: None,
            last_error: None,
            latest: None,
            node_id: None,
        }
    }

    /// Takes `transport` for the pulls to come; switching verification off is said loudly.
    fn set_transport(&mut self, transport: &Arc<Transport>) {
        if transport.access.insecure_skip_verify == Some(true) {
            tracing::warn!(peer = %self.label, "insecure_skip_verify: this peer's TLS certificate is NOT verified; anyone on the path can impersonate it");
        }
        self.transport = Arc::clone(transport);
    }

    fn pull_target(&self) -> PullTarget {
        PullTarget {
            id: self.id,
            label: self.label.clone(),
            summary_url: self.summary_url.clone(),
            transport: Arc::clone(&self.transport),
        }
    }

    fn record(&mut self, outcome: PullOutcome) {
        self.polls_total += 1;
        self.durations.observe(outcome.duration.as_secs_f64());
        let received = outcome.started + outcome.duration;
        let failure = outcome.result.as_ref().err().map(|e| e.reason);
        self.window
            .push(Sample::new(outcome.started, outcome.duration, failure));
        match outcome.result {
            Ok(summary) => {
                if !self.up {
                    tracing::info!(target_label = %self.label, node_id = %summary.node_id, "pull succeeded");
                }
                let received_unix = unix_seconds(outcome.received_at);
                self.up = true;
                self.last_success = Some((received, outcome.received_at));
                self.last_error = None;
                self.node_id = Some(summary.node_id.clone());
                self.latest = Some(Latest {
                    clock_skew_seconds: summary.timestamp - received_unix,
                    summary,
                });
            }
            Err(error) => {
                // One line when a target goes down or fails differently; repeats at debug.
                let changed =
                    self.up || self.last_error.as_ref().map(|e| e.reason) != Some(error.reason);
                if changed {
                    tracing::warn!(target_label = %self.label, reason = %error.reason, detail = %error.detail, "pull failed");
                } else {
                    tracing::debug!(target_label = %self.label, reason = %error.reason, detail = %error.detail, "pull failed again");
                }
                self.up = false;
                self.failures_total[error.reason.index()] += 1;
                self.last_error = Some(error);
            }
        }
    }

    fn is_live(&self, now: Instant, live_max_age: Duration) -> bool {
        self.last_success
            .is_some_and(|(at, _)| now.saturating_duration_since(at) <= live_max_age)
    }

    /// The latest state root, if it is known and was received within `live_max_age`.
    fn fresh_root(&self, now: Instant, live_max_age: Duration) -> Option<&str> {
        if !self.is_live(now, live_max_age) {
            return None;
        }
        self.latest.as_ref()?.summary.state_root.as_deref()
    }

    fn view(&self, now: Instant, live_max_age: Duration) -> TargetView {
        let latest = self.latest.as_ref();
        TargetView {
            label: self.label.clone(),
            url: self.url.to_string(),
            up: self.up,
            live: self.is_live(now, live_max_age),
            polls_total: self.polls_total,
            counters_created_at: unix_seconds(self.counters_created_at),
            failures_total: self.failures_total,
            durations: self.durations.clone(),
            last_success_timestamp_seconds: self.last_success.map(|(_, wall)| unix_seconds(wall)),
            last_error: self.last_error.clone(),
            node_id: self.node_id.clone(),
            state_root: latest.and_then(|l| l.summary.state_root.clone()),
            state_height: latest.and_then(|l| l.summary.state_height),
            g_star: latest.map(|l| l.summary.metrics.g_star()),
            reported: latest
                .map(|l| l.summary.metrics.present().collect())
                .unwrap_or_default(),
            clock_skew_seconds: latest.map(|l| l.clock_skew_seconds),
        }
    }
}

impl Peer {
    fn is_observed(&self) -> bool {
        matches!(self.role, Role::Observed { .. })
    }

    fn new(id: TargetId, config: &PeerConfig, settings: &Settings) -> Self {
        let mut target = Target::new(id, config.label.clone(), config.url.clone(), settings);
        target.set_transport(&config.transport);
        Peer {
            target,
            role: Role::Observed { rank: None },
            streak: 0,
            relation: Relation::Unknown,
            identity_problem: None,
        }
    }

    /// Quality and its parts from the window at `now`; `None` before the first attempt.
    fn quality(&self, now: Instant, settings: &Settings) -> Option<QualityView> {
        let mut stats = self.target.window.stats(now);
        (stats.attempts > 0).then(|| {
            let latency_p95_seconds = scoring::p95_nearest_rank(&mut stats.success_durations);
            let age = self
                .target
                .last_success
                .map(|(at, _)| now.saturating_duration_since(at).as_secs_f64());
            let parts = QualityParts {
                success_ratio: stats.successes as f64 / stats.attempts as f64,
                latency_score: scoring::latency_score(
                    latency_p95_seconds,
                    settings.timeout.as_secs_f64(),
                ),
                freshness: scoring::freshness(age, settings.interval.as_secs_f64()),
            };
            QualityView {
                parts,
                latency_p95_seconds,
                quality: scoring::quality(parts, settings.weights),
            }
        })
    }

    fn view(&self, now: Instant, settings: &Settings) -> PeerView {
        let quality = self.quality(now, settings);
        PeerView {
            target: self.target.view(now, settings.live_max_age),
            quality,
            relation: self.relation,
            divergent: self.relation == Relation::Diverge,
            streak: self.streak,
            identity_problem: self.identity_problem.clone(),
            observer_rank: match self.role {
                Role::Observed { rank } => rank,
                Role::NotObserved | Role::Myself => None,
            },
        }
    }
}
