//! The store: the one place that holds what peerscope knows — per-target counters and
//! windows, the latest summaries, identity and divergence state — and the cycle's rules
//! for changing it. Built once in `main`, before any task that reads or writes it, and
//! handed to each of them as a cheap clone of the same handle.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::Url;
use tokio::time::Instant;

use crate::config::discovery::DiscoveryConfig;
use crate::config::{
    url_without_scheme, Config, ObserversPerPeer, PeerConfig, PerPeer, QualityWeights,
};
use crate::figures::confirmation::Membership;
use crate::figures::decision::{Facts, PeerFacts};
use crate::figures::divergence::{self, Relation};
use crate::figures::view::{
    headline, FederationView, HistoryPoint, ObservationView, PeerView, View,
};
use crate::pull::failure::{FailureReason, PullError};
use crate::pull::outcome::{Pacing, PullOutcome, PullPlan, PullTarget, TargetId};
use crate::timeline::Anchor;

mod checkpoint;
mod discovered;
mod peer;
mod target;

use crate::sync;
pub use checkpoint::{PeerCheckpoint, StoreCheckpoint};
use discovered::Discovered;
use peer::{adopt_node_id, assign_roles, mark_contested, self_peering, Peer, Role};
use target::Target;

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
    /// The pull plan of this generation, once asked for (see [`Store::pull_plan`]).
    plan: Option<Arc<PullPlan>>,
    /// The peers the configuration lists (peer list and peers file).
    configured: Arc<[PeerConfig]>,
    /// The discovery sources, their last good members and their refreshes.
    discovery: Discovered,
    /// Checkpointed peers not listed at the restore, by URL: members discovery has not
    /// found yet, restored when it does.
    unclaimed: HashMap<String, (PeerCheckpoint, Anchor)>,
}

/// The most cycles of headline figures kept for the page's plot.
pub(crate) const HISTORY_LIMIT: usize = 1000;

/// Cycles of history kept: a window's worth, at most [`HISTORY_LIMIT`].
fn history_length(settings: &Settings) -> usize {
    let per_window = settings.window.as_secs_f64() / settings.interval.as_secs_f64();
    (per_window.ceil() as usize + 1).clamp(2, HISTORY_LIMIT)
}

impl Store {
    pub fn new(config: &Config) -> Self {
        let settings = Settings::from(config);
        let mut state = State {
            settings,
            node: node_target(TargetId(0), &config.node, &settings),
            peers: Vec::new(),
            cycles_completed: 0,
            heartbeat: None,
            next_id: 1,
            name: config.name.clone(),
            observers_per_peer: config.observers_per_peer,
            observation: ObservationView::default(),
            history: VecDeque::new(),
            members: Vec::new(),
            generation: 0,
            plan: None,
            configured: Arc::clone(&config.peers),
            discovery: Discovered::default(),
            unclaimed: HashMap::new(),
        };
        state.discovery.set_config(&config.discovery);
        apply_members(&mut state, false);
        Store {
            shared: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in this module; the data is still
        // consistent enough to export, so keep serving rather than poisoning every reader.
        sync::lock(&self.shared)
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
            state.node = node_target(id, &config.node, &settings);
        }
        state.configured = Arc::clone(&config.peers);
        state.discovery.set_config(&config.discovery);
        state.name.clone_from(&config.name);
        state.observers_per_peer = config.observers_per_peer;
        apply_members(state, resized);
    }

    /// The discovery settings in force: what the discovery task looks up.
    pub(crate) fn discovery_config(&self) -> DiscoveryConfig {
        self.lock().discovery.config.clone()
    }

    /// Records one refresh of the discovery source `source`: its members on success (a
    /// changed set is applied at once), the failure's class and detail otherwise (the
    /// source's last members stay).
    pub(crate) fn record_discovery(
        &self,
        source: &str,
        result: Result<Vec<PeerConfig>, (&'static str, String)>,
    ) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.discovery.record(source, result) {
            apply_members(state, false);
        }
    }
}

/// Makes the peer list the configured peers followed by every discovery source's members,
/// each URL once (the first listing wins). Peers that stay (same URL) keep their windows,
/// streaks and identity; added peers start empty; removed peers are forgotten, so their
/// series vanish at the next scrape.
fn apply_members(state: &mut State, resized: bool) {
    let settings = state.settings;
    let wanted = discovered::merge(&state.configured, &state.discovery);
    {
        // Indexed by URL: matching is linear in the membership, not quadratic.
        let mut old: HashMap<Url, Peer> = std::mem::take(&mut state.peers)
            .into_iter()
            .map(|peer| (peer.target.url.clone(), peer))
            .collect();
        state.peers = Vec::with_capacity(wanted.len());
        for (wanted, discovered) in &wanted {
            let peer = match old.remove(&wanted.url) {
                Some(mut peer) => {
                    peer.target.label = wanted.label.clone();
                    if peer.target.transport != wanted.transport {
                        peer.target.set_transport(&wanted.transport);
                    }
                    if let Some(pulls) = peer.target.pulls_mut_if_any().filter(|_| resized) {
                        pulls.window.resize(settings.window, settings.interval);
                    }
                    peer
                }
                None => Peer::new(state.new_id(), wanted),
            };
            let mut peer = peer;
            peer.discovered = *discovered;
            state.peers.push(peer);
            if let Some((saved, anchor)) = state.unclaimed.remove(wanted.url.as_str()) {
                let index = state.peers.len() - 1;
                checkpoint::restore_peer(state, index, &saved, &anchor);
            }
        }
    }
    assign_roles(state);
}

impl Store {
    /// How the next cycle is paced.
    pub(crate) fn pacing(&self) -> Pacing {
        let settings = self.lock().settings;
        Pacing {
            interval: settings.interval,
            timeout: settings.timeout,
            body_limit: settings.body_limit,
            max_concurrent_pulls: settings.max_concurrent_pulls,
        }
    }

    /// The local node's base URL.
    pub(crate) fn node_url(&self) -> Url {
        self.lock().node.url.clone()
    }

    /// The member list a confirmation draws from.
    pub(crate) fn membership(&self) -> Membership {
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
    pub(crate) fn members_at(
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

    /// What the next cycle pulls: made when the members, their roles or the node change,
    /// and shared by every cycle until then.
    pub fn pull_plan(&self) -> Arc<PullPlan> {
        let mut state = self.lock();
        let state = &mut *state;
        let (node, peers) = (&state.node, &state.peers);
        let plan = state.plan.get_or_insert_with(|| {
            Arc::new(PullPlan {
                node: node.pull_target(),
                peers: peers
                    .iter()
                    .filter(|p| p.is_observed())
                    .map(|p| p.target.pull_target())
                    .collect(),
            })
        });
        Arc::clone(plan)
    }

    /// The interval and the window in force.
    pub(crate) fn timing(&self) -> (Duration, Duration) {
        let state = self.lock();
        (state.settings.interval, state.settings.window)
    }

    /// Records that the poll loop is alive at `now`.
    pub(crate) fn beat(&self, now: Instant) {
        self.lock().heartbeat = Some(now);
    }

    /// Alive: the poll loop's heartbeat advanced within 3 intervals.
    pub(crate) fn is_alive(&self, now: Instant) -> bool {
        let state = self.lock();
        state.heartbeat.is_some_and(|beat| {
            now.saturating_duration_since(beat) <= state.settings.interval.saturating_mul(3)
        })
    }

    /// Ready: the first poll cycle has completed.
    pub(crate) fn is_ready(&self) -> bool {
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
                state.node.record(outcome, &state.settings);
                // Without a configured name, this node's name is its node_id: known now.
                if state.name.is_none() && state.observation.name != state.node.node_id {
                    assign_roles(state);
                }
            }
        }
        let local_id = state.node.latest().map(|l| l.summary.node_id.clone());

        for index in 0..state.peers.len() {
            // A peer added while the cycle ran has no outcome yet; it is pulled next cycle.
            let Some(mut outcome) = peers.remove(&state.peers[index].target.id) else {
                continue;
            };
            // Its role changed while the cycle ran (another member observes it now): the
            // pull is dropped, not made into pull state for a member shown nowhere here.
            if !state.peers[index].is_observed() {
                continue;
            }
            if let Ok(summary) = &outcome.result {
                // Discovery lists this node too, under its address: skipped, not flagged.
                let peer = &mut state.peers[index];
                if peer.discovered && local_id.as_deref() == Some(summary.node_id.as_str()) {
                    tracing::info!(peer = %peer.target.label, "a discovered member is this node itself; skipped");
                    peer.is_local = true;
                    assign_roles(state);
                    continue;
                }
                match self_peering(&summary.node_id, local_id.as_deref()) {
                    Some(problem) => {
                        outcome.result =
                            Err(PullError::new(FailureReason::Identity, problem.clone()));
                        state.peers[index].identity_problem = Some(problem);
                    }
                    None => adopt_node_id(peer, &summary.node_id, &state.settings),
                }
            }
            let settings = state.settings;
            state.peers[index].target.record(outcome, &settings);
        }
        mark_contested(state, now);

        let live_max_age = state.settings.live_max_age;
        let local_root = state.node.fresh_root(now, live_max_age).map(str::to_owned);
        for peer in state.peers.iter_mut().filter(|p| p.is_observed()) {
            let peer_root = peer.target.fresh_root(now, live_max_age);
            peer.relation = divergence::relation(local_root.as_deref(), peer_root);
            peer.streak = divergence::next_streak(peer.streak, peer.relation);
        }
        let (peers_live, novelty, divergence_ratio) =
            headline(state.peers.iter().filter(|p| p.is_observed()).map(|p| {
                let g_star = p.target.latest().map(|l| l.summary.metrics.g_star());
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
    /// `HISTORY_LIMIT` cycles), oldest first, with wall-clock times from `anchor`.
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
    pub(crate) fn reconcile_facts(&self, now: Instant) -> Facts {
        let state = self.lock();
        let settings = state.settings;
        let live_max_age = settings.live_max_age;
        // A node whose last pull failed is unreachable: it is never asked to reconcile.
        let local_root = if state.node.up() {
            state.node.fresh_root(now, live_max_age).map(str::to_owned)
        } else {
            None
        };
        // With sampled observation the decision sees this sidecar's sample of the peers;
        // a member whose node_id another also reports has no vote (and is not counted).
        let observed = || {
            state
                .peers
                .iter()
                .filter(|p| p.is_observed() && !p.contested)
        };
        let live_peers = observed()
            .filter(|p| p.target.is_live(now, live_max_age))
            .count();
        let peers = observed()
            .filter_map(|p| {
                let root = p.target.fresh_root(now, live_max_age)?;
                let latest = p.target.latest()?;
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
    pub(crate) fn reset_streaks(&self) {
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
            discovery: state.discovery.view(),
        }
    }
}

/// The local node's target: pulled every cycle, so its counters exist from the start.
fn node_target(id: TargetId, url: &Url, settings: &Settings) -> Target {
    let mut node = Target::new(id, url_without_scheme(url), url.clone());
    node.pulls_mut(settings);
    node
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

/// What the store's unit tests share: a configuration from flags, and pull outcomes.
#[cfg(test)]
pub(super) mod testing {
    use std::time::{Duration, SystemTime};

    use tokio::time::Instant;

    use crate::config::{self, Config, Sources};
    use crate::pull::contract::decode_summary;
    use crate::pull::failure::{FailureReason, PullError};
    use crate::pull::outcome::PullOutcome;

    /// A configuration for node `http://127.0.0.1:1` with `peers` (`name=url` or a URL)
    /// and any other flags.
    pub(crate) fn config(peers: &[&str], flags: &[(&'static str, &str)]) -> Config {
        let mut all = vec![("node", "http://127.0.0.1:1")];
        all.extend(peers.iter().map(|p| ("peers", *p)));
        all.extend_from_slice(flags);
        config::load(&Sources::flags(&all)).unwrap()
    }

    /// A successful pull at `at` of a summary with this node_id and root.
    pub(crate) fn answered(node_id: &str, root: &str, at: Instant) -> PullOutcome {
        let body = format!(
            r#"{{"node_id":"{node_id}","timestamp":1700000000,"state_root":"{root}","state_height":7,"metrics":{{"g_star":0.5}}}}"#
        );
        PullOutcome {
            started: at,
            duration: Duration::from_millis(20),
            received_at: SystemTime::now(),
            result: Ok(decode_summary(body.as_bytes()).unwrap()),
        }
    }

    /// A pull at `at` that failed with `reason`.
    pub(crate) fn failed(reason: FailureReason, at: Instant) -> PullOutcome {
        PullOutcome {
            started: at,
            duration: Duration::from_millis(20),
            received_at: SystemTime::now(),
            result: Err(PullError::new(reason, "test")),
        }
    }
}

#[cfg(test)]
mod tests;
