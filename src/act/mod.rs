//! The reconciler: the one place peerscope acts. After every cycle it asks whether the
//! local node should reconcile, sends at most one request at a time to the node's
//! reconciliation API, awaits the answer, and records the outcome under every guard of
//! SPEC §6. In three parts:
//! - [`guards`]: the state machine — cooldown, backoff with jitter, the hourly cap, 409,
//!   rejected roots, "no effect", the request id per episode — pure, over `now`;
//! - [`confirmation`]: under sampled observation, the target confirmed on random members
//!   of the whole membership before a request (episodes, budget, holds, the probe) — pure;
//! - `client`: the HTTP request and the classification of the node's answer;
//! - `actor`: the loop that ties them to the poll cycles and pulls the confirmation's
//!   members.
//!
//! [`Reconciler`] is the shared handle the actor, the server and the checkpointer hold.

pub(crate) mod actor;
pub(crate) mod client;
pub mod confirmation;
pub mod guards;
mod request;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use crate::config::ReconcileConfig;
use crate::figures::confirmation::{Membership, Verdict};
use crate::figures::decision::Facts;
use crate::sync;
use crate::timeline::Anchor;

pub use actor::run;
pub use confirmation::{Draws, Sample};
pub use guards::{
    Answer, DecisionSummary, HistoryEntry, Outgoing, ReconcileCheckpoint, ReconcileView,
    RequestFailure,
};

/// Shared handle to the reconciler's guards and configuration; cheap to clone.
#[derive(Clone)]
pub struct Reconciler {
    // std Mutex: nothing is awaited while it is held.
    guards: Arc<Mutex<guards::Guards>>,
    /// Swapped whole on reload; readers take a cheap `Arc` of the current one.
    config: Arc<Mutex<Arc<ReconcileConfig>>>,
}

impl Reconciler {
    pub fn new(config: ReconcileConfig) -> Self {
        let guards = guards::Guards::new(fastrand::Rng::new(), fastrand::Rng::new());
        Reconciler {
            guards: Arc::new(Mutex::new(guards)),
            config: Arc::new(Mutex::new(Arc::new(config))),
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> Arc<ReconcileConfig> {
        Arc::clone(&sync::lock(&self.config))
    }

    /// Swaps in a reloaded configuration; the state (cooldown, backoff, episode) stays.
    pub fn reconfigure(&self, config: ReconcileConfig) {
        *sync::lock(&self.config) = Arc::new(config);
    }

    fn lock(&self) -> MutexGuard<'_, guards::Guards> {
        sync::lock(&self.guards)
    }

    /// See [`guards::Guards::evaluate`].
    pub(crate) fn evaluate(
        &self,
        facts: &Facts,
        membership: &Membership,
        now: Anchor,
    ) -> Option<Outgoing> {
        let config = self.config();
        self.lock().evaluate(&config, facts, membership, now)
    }

    /// See [`guards::Guards::draws`].
    pub(crate) fn draws(&self, membership: &Membership) -> Draws {
        let config = self.config();
        self.lock().draws(&config, membership)
    }

    /// See [`guards::Guards::record_draws`].
    pub(crate) fn record_draws(
        &self,
        generation: u64,
        samples: Vec<Sample>,
        local_node_id: Option<&str>,
        now: Instant,
    ) -> Verdict {
        let config = self.config();
        self.lock()
            .record_draws(&config, generation, samples, local_node_id, now)
    }

    /// See [`guards::Guards::record_probe`].
    pub(crate) fn record_probe(&self, generation: u64, sample: Sample, local_root: Option<&str>) {
        self.lock().record_probe(generation, sample, local_root);
    }

    /// See [`guards::Guards::record`].
    pub(crate) fn record(&self, outgoing: &Outgoing, answer: Answer, now: Anchor) -> bool {
        let config = self.config();
        self.lock().record(&config, outgoing, answer, now)
    }

    pub fn view(&self, now: Instant) -> ReconcileView {
        let config = self.config();
        self.lock().view(&config, now)
    }

    pub(crate) fn checkpoint(&self, anchor: &Anchor) -> ReconcileCheckpoint {
        self.lock().checkpoint(anchor)
    }

    pub fn restore(&self, saved: &ReconcileCheckpoint, anchor: &Anchor) {
        self.lock().restore(saved, anchor);
    }
}
