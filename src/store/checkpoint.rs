//! What the store keeps across a restart, and how it is taken and given back.

use std::collections::HashMap;

use super::{State, Store};
use crate::figures::window::{Sample, SampleRecord};
use crate::timeline::{from_unix, Anchor};

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
    pub(crate) node_id: Option<String>,
    pub(crate) streak: u64,
    /// Unix time of the last successful pull.
    pub(crate) last_success: Option<f64>,
    pub(crate) samples: Vec<SampleRecord>,
}

impl Store {
    /// The state worth keeping across a restart.
    pub(crate) fn checkpoint(&self, anchor: &Anchor) -> StoreCheckpoint {
        let state = self.lock();
        StoreCheckpoint {
            peers: state
                .peers
                .iter()
                // A member never pulled has nothing to keep (at 100,000 members, most).
                .filter(|p| p.target.pulls().is_some() || p.target.node_id.is_some())
                .map(|p| PeerCheckpoint {
                    url: p.target.url.to_string(),
                    node_id: p.target.node_id.clone(),
                    streak: p.streak,
                    last_success: p.target.last_success().map(|(at, _)| anchor.to_unix(at)),
                    samples: p.target.pulls().map_or_else(Vec::new, |pulls| {
                        pulls
                            .window
                            .samples()
                            .map(|s| s.to_record(anchor))
                            .collect()
                    }),
                })
                // Entries still waiting for their member to be discovered are kept too.
                .chain(state.unclaimed.values().map(|(saved, _)| saved.clone()))
                .collect(),
        }
    }

    /// Restores what a checkpoint kept for the peers that are still configured; samples
    /// older than the window are dropped. Returns how many peers were restored.
    pub fn restore(&self, checkpoint: &StoreCheckpoint, anchor: &Anchor) -> usize {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut restored = 0;
        let by_url: HashMap<String, usize> = state
            .peers
            .iter()
            .enumerate()
            .map(|(index, peer)| (peer.target.url.to_string(), index))
            .collect();
        let discovering = state.discovery.config.is_on();
        for saved in &checkpoint.peers {
            let Some(&index) = by_url.get(&saved.url) else {
                // Not listed: with discovery on, it may be a member not discovered yet
                // (discovery runs after the restore); it waits for its URL to appear.
                if discovering {
                    state
                        .unclaimed
                        .insert(saved.url.clone(), (saved.clone(), *anchor));
                }
                continue;
            };
            restore_peer(state, index, saved, anchor);
            restored += 1;
        }
        restored
    }
}

/// Gives the peer at `index` what `saved` kept: its window, streak and identity.
pub(super) fn restore_peer(
    state: &mut State,
    index: usize,
    saved: &PeerCheckpoint,
    anchor: &Anchor,
) {
    let settings = state.settings;
    let pending = state.observation.pending;
    let peer = &mut state.peers[index];
    peer.streak = saved.streak;
    peer.target.node_id = saved.node_id.clone();
    // A member another sidecar observes keeps nothing of its pulls here (until this
    // node's name is known, nobody knows whom it observes: everything is kept).
    let unobserved = !peer.is_observed();
    if (saved.samples.is_empty() && saved.last_success.is_none()) || (unobserved && !pending) {
        return;
    }
    let pulls = peer.target.pulls_mut(&settings);
    let samples = saved.samples.iter().map(|r| Sample::from_record(r, anchor));
    pulls.window.restore(samples, anchor.instant);
    pulls.last_success = saved
        .last_success
        .map(|unix| (anchor.to_instant(unix), from_unix(unix)));
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tokio::time::Instant;

    use super::super::testing::{answered, config};
    use super::*;

    /// A store of `peers` after one cycle in which each peer `X` reported `id-X`, root
    /// `theirs`, and the local node root `mine`.
    fn store_after_one_cycle(peers: &[&str]) -> Store {
        let store = Store::new(&config(peers, &[]));
        let now = Instant::now();
        let plan = store.pull_plan();
        let outcomes: HashMap<_, _> = plan
            .peers
            .iter()
            .map(|t| (t.id, answered(&format!("id-{}", t.label), "theirs", now)))
            .collect();
        store.record_cycle(
            Some((plan.node.id, answered("local", "mine", now))),
            outcomes,
            now,
        );
        store
    }

    #[tokio::test(start_paused = true)]
    async fn a_checkpoint_gives_back_identity_window_and_streak_of_peers_still_configured() {
        let peers = ["a=http://127.0.0.1:2", "b=http://127.0.0.1:3"];
        let store = store_after_one_cycle(&peers);
        let anchor = Anchor::now();
        let saved = store.checkpoint(&anchor);
        assert_eq!(saved.peers.len(), 2);

        // After a restart, b is no longer configured.
        let restarted = Store::new(&config(&peers[..1], &[]));
        assert_eq!(restarted.restore(&saved, &anchor), 1);
        let view = restarted.view(anchor.instant);
        let a = &view.peers[0];
        assert_eq!(a.target.node_id.as_deref(), Some("id-a"));
        assert_eq!(a.streak, 1);
        assert!(a.target.last_success_timestamp_seconds.is_some());
        assert_eq!(restarted.checkpoint(&anchor).peers[0], saved.peers[0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_checkpointed_member_not_discovered_yet_is_restored_when_discovery_finds_it() {
        let store = store_after_one_cycle(&["a=http://127.0.0.1:2"]);
        let anchor = Anchor::now();
        let saved = store.checkpoint(&anchor);

        // After a restart the member comes from DNS, which has not answered yet.
        let source = "dnssrv+_nova._tcp.peers.test";
        let restarted = Store::new(&config(&[source], &[]));
        assert_eq!(restarted.restore(&saved, &anchor), 0);
        // Checkpointed again before discovery answers, the entry is not lost.
        assert_eq!(restarted.checkpoint(&anchor).peers, saved.peers);
        let found = crate::config::PeerConfig::new("http://127.0.0.1:2".parse().unwrap(), None);
        restarted.record_discovery(source, Ok(vec![found]));
        let view = restarted.view(anchor.instant);
        assert_eq!(view.peers.len(), 1);
        assert_eq!(view.peers[0].target.node_id.as_deref(), Some("id-a"));
        assert_eq!(view.peers[0].streak, 1);
        assert_eq!(restarted.checkpoint(&anchor).peers.len(), 1);
    }
}
