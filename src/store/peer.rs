//! A peer of the member list: its role under sampled observation, its divergence streak,
//! its identity claims, and its figures.
//!
//! Identity: a `node_id` is nobody's to own. When two live members report the same
//! `node_id`, it is *contested*: every claimant is flagged (`identity_problem`,
//! `peerscope_peer_identity_contested`) and none may vote in a reconciliation decision,
//! while each stays up — so an impostor can neither vote in the place of the honest peer
//! nor get it marked down, whichever was listed or answered first.

use std::collections::HashMap;

use tokio::time::Instant;

use super::target::Target;
use super::{Settings, State};
use crate::config::PeerConfig;
use crate::figures::divergence::Relation;
use crate::figures::scoring::{self, QualityParts};
use crate::figures::view::{ObservationView, PeerView, QualityView};
use crate::figures::window::Window;
use crate::pull::assignment::Members;
use crate::pull::outcome::TargetId;

/// Whether this sidecar pulls a peer (sampled observation, SPEC §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Pulled; `rank` among the peer's K observers (`None` in a full mesh).
    Observed { rank: Option<usize> },
    /// Another member observes it.
    NotObserved,
    /// This node itself, listed in a shared member list: skipped, not flagged.
    Myself,
}

pub(super) struct Peer {
    pub(super) target: Target,
    pub(super) role: Role,
    pub(super) streak: u64,
    pub(super) relation: Relation,
    pub(super) identity_problem: Option<String>,
    /// Another live member reports the same node_id: flagged, and no vote.
    pub(super) contested: bool,
    /// Found by discovery rather than listed.
    pub(super) discovered: bool,
    /// A discovered member whose summary reports the local node's node_id: this node
    /// itself, found under another name. Skipped like a listed self.
    pub(super) is_local: bool,
}

impl Peer {
    pub(super) fn is_observed(&self) -> bool {
        matches!(self.role, Role::Observed { .. })
    }

    pub(super) fn new(id: TargetId, config: &PeerConfig) -> Self {
        let mut target = Target::new(id, config.label.clone(), config.url.clone());
        target.set_transport(&config.transport);
        Peer {
            target,
            role: Role::Observed { rank: None },
            streak: 0,
            relation: Relation::Unknown,
            identity_problem: None,
            contested: false,
            discovered: false,
            is_local: false,
        }
    }

    /// Quality and its parts from the window at `now`; `None` before the first attempt.
    pub(super) fn quality(&self, now: Instant, settings: &Settings) -> Option<QualityView> {
        let mut stats = self.target.pulls()?.window.stats(now);
        (stats.attempts > 0).then(|| {
            let latency_p95_seconds = scoring::p95_nearest_rank(&mut stats.success_durations);
            let age = self
                .target
                .last_success()
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

    pub(super) fn view(&self, now: Instant, settings: &Settings) -> PeerView {
        let quality = self.quality(now, settings);
        PeerView {
            target: self.target.view(now, settings.live_max_age),
            quality,
            relation: self.relation,
            divergent: self.relation == Relation::Diverge,
            streak: self.streak,
            identity_problem: self.identity_problem.clone(),
            identity_contested: self.contested,
            observer_rank: match self.role {
                Role::Observed { rank } => rank,
                Role::NotObserved | Role::Myself => None,
            },
        }
    }
}

/// Decides every peer's [`Role`] from the member list (the configured peers and this
/// node), K and this node's name. Cheap enough to run under the lock: a sidecar's share is
/// O(N·K·log N) scores (see `pull::assignment`), recomputed only when its inputs change.
pub(super) fn assign_roles(state: &mut State) {
    // A discovered member found to be this node names it as every other member knows it.
    let me = state
        .peers
        .iter()
        .find(|p| p.is_local)
        .map(|p| p.target.label.clone())
        .or_else(|| state.name.clone())
        .or_else(|| state.node.node_id.clone());
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
                _ if peer.is_local => Role::Myself,
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
    let pending = me.is_none() && k > 0;
    for (peer, role) in state.peers.iter_mut().zip(roles) {
        peer.role = role;
        match role {
            Role::Observed { .. } => {
                // Its counters exist (at 0) from now, before its first pull ends.
                peer.target.pulls_mut(&state.settings);
            }
            // Until this node's name is known, whom it observes is not: a restored
            // window waits.
            Role::NotObserved if pending => {}
            // Another member observes it (or it is this node): nothing of it is shown
            // here, so nothing is kept.
            Role::NotObserved | Role::Myself => peer.target.drop_pulls(),
        }
    }
    state.members = (0..state.peers.len())
        .filter(|&i| state.peers[i].role != Role::Myself)
        .collect();
    state.generation += 1;
    state.plan = None;
    let count = |role: fn(&Role) -> bool| state.peers.iter().filter(|p| role(&p.role)).count();
    state.observation = ObservationView {
        pending,
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

/// Why a peer may not report `node_id`: it is the local node's own (self-peering).
pub(super) fn self_peering(node_id: &str, local_id: Option<&str>) -> Option<String> {
    (local_id == Some(node_id))
        .then(|| format!("reports node_id {node_id:?}, the local node's own (self-peering)"))
}

/// Records `node_id` as the peer's; a peer whose node_id changed is a new peer, so its
/// window, latest summary and streak start over.
pub(super) fn adopt_node_id(peer: &mut Peer, node_id: &str, settings: &Settings) {
    if !peer.contested {
        peer.identity_problem = None;
    }
    let previous = peer.target.node_id.as_deref();
    if previous.is_some_and(|previous| previous != node_id) {
        tracing::warn!(peer = %peer.target.label, from = ?previous, to = %node_id, "peer's node_id changed; its window starts over");
        if let Some(pulls) = peer.target.pulls_mut_if_any() {
            pulls.window = Window::new(settings.window, settings.interval);
            pulls.latest = None;
            pulls.last_success = None;
        }
        peer.streak = 0;
    }
}

/// Flags every live member whose node_id another live member also reports, and clears
/// the flag of those no longer contested. Run after each cycle's outcomes are recorded.
pub(super) fn mark_contested(state: &mut State, now: Instant) {
    let live_max_age = state.settings.live_max_age;
    // Borrowed, not copied: this runs every cycle over every member.
    let claims: Vec<Option<&str>> = state
        .peers
        .iter()
        .map(|peer| {
            let latest = peer.target.latest()?;
            let live = !peer.is_local && peer.target.is_live(now, live_max_age);
            live.then_some(latest.summary.node_id.as_str())
        })
        .collect();
    // Per node_id: whether more than one member reports it.
    let mut repeated: HashMap<&str, bool> = HashMap::with_capacity(claims.len());
    for node_id in claims.iter().flatten() {
        repeated
            .entry(node_id)
            .and_modify(|again| *again = true)
            .or_insert(false);
    }
    let mut contested = vec![None; state.peers.len()];
    for (index, node_id) in claims.iter().enumerate() {
        let Some(node_id) = node_id.filter(|id| repeated[id]) else {
            continue;
        };
        let others: Vec<&str> = (claims.iter().enumerate())
            .filter(|&(other, claim)| other != index && *claim == Some(node_id))
            .map(|(other, _)| state.peers[other].target.label.as_str())
            .collect();
        contested[index] = Some(format!(
            "node_id {node_id:?} is contested: also reported by peer {}; no vote until one of them stops",
            others.join(", ")
        ));
    }
    for (peer, problem) in state.peers.iter_mut().zip(contested) {
        match problem {
            Some(problem) => {
                if !peer.contested {
                    tracing::warn!(peer = %peer.target.label, %problem, "identity contested");
                }
                peer.contested = true;
                peer.identity_problem = Some(problem);
                // No streak builds while contested: if the other claimant goes away,
                // this one votes from scratch, not with a streak built meanwhile.
                peer.streak = 0;
            }
            None if peer.contested => {
                peer.contested = false;
                peer.identity_problem = None;
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::config;
    use super::super::Store;
    use super::*;

    fn roles(store: &Store) -> Vec<(String, Role)> {
        let state = store.lock();
        state
            .peers
            .iter()
            .map(|p| (p.target.label.clone(), p.role))
            .collect()
    }

    #[test]
    fn this_node_listed_among_the_peers_is_skipped_and_the_rest_observed_in_a_full_mesh() {
        let store = Store::new(&config(
            &["me=http://127.0.0.1:2", "b=http://127.0.0.1:3"],
            &[("name", "me")],
        ));
        assert_eq!(
            roles(&store),
            [
                ("me".to_owned(), Role::Myself),
                ("b".to_owned(), Role::Observed { rank: None })
            ]
        );
        let observation = &store.lock().observation;
        assert!(observation.skipped_self);
        assert_eq!(observation.members, 2);
    }

    #[test]
    fn with_k_observers_each_peer_is_observed_by_k_of_the_members() {
        // 20 members, K = 3: over all members' assignments, each peer has 3 observers.
        let urls: Vec<String> = (0..20)
            .map(|i| format!("m{i}=http://127.0.0.{}:80", i + 2))
            .collect();
        let peers: Vec<&str> = urls.iter().map(String::as_str).collect();
        let mut observers = std::collections::HashMap::<String, usize>::new();
        for me in 0..20 {
            let name = format!("m{me}");
            let store = Store::new(&config(
                &peers,
                &[("name", &name), ("observers_per_peer", "3")],
            ));
            for (label, role) in roles(&store) {
                if matches!(role, Role::Observed { .. }) {
                    *observers.entry(label).or_default() += 1;
                }
            }
        }
        assert_eq!(observers.len(), 20);
        assert!(observers.values().all(|&n| n == 3), "{observers:?}");
    }

    #[test]
    fn without_a_name_nothing_is_pulled_until_the_local_node_id_is_known() {
        let store = Store::new(&config(
            &["a=http://127.0.0.1:2"],
            &[("observers_per_peer", "3")],
        ));
        assert!(store.lock().observation.pending);
        assert_eq!(roles(&store)[0].1, Role::NotObserved);
    }
}
