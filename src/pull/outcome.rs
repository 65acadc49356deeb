//! What a cycle pulls and what one pull produced: the plan handed to the poll loop, the
//! outcome handed back to the store, and the pacing that bounds them.

use std::sync::Arc;

use crate::config::transport::Transport;
use std::time::{Duration, SystemTime};

use reqwest::Url;
use tokio::time::Instant;

use crate::pull::contract::Summary;
use crate::pull::failure::PullError;

/// A pulled node's identity inside this process: stable for as long as the node stays
/// configured (same URL), whatever its label becomes on reload. Outcomes are keyed by it,
/// so a reload that renames a peer mid-cycle does not lose that cycle's pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(pub u64);

/// The result of one pull, as the poller hands it over.
#[derive(Clone, Debug)]
pub struct PullOutcome {
    pub started: Instant,
    pub duration: Duration,
    /// Wall-clock time the answer was received (for clock skew and timestamps).
    pub received_at: SystemTime,
    pub result: Result<Summary, PullError>,
}

/// One node to pull this cycle.
#[derive(Clone, Debug)]
pub struct PullTarget {
    pub id: TargetId,
    /// The label at the time the plan was made (for logs and tests; never a key).
    pub label: String,
    pub(crate) summary_url: Url,
    /// TLS settings and `Authorization` header for this node (plain for the local node).
    pub(crate) transport: Arc<Transport>,
}

/// What a cycle pulls: the local node and every configured peer, in configuration order.
#[derive(Clone, Debug)]
pub struct PullPlan {
    pub node: PullTarget,
    pub peers: Vec<PullTarget>,
}

/// How cycles are paced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacing {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) body_limit: usize,
    pub(crate) max_concurrent_pulls: usize,
}

impl Pacing {
    /// The spread of pull start times: small, and never so large that a pull started last
    /// could run past the next cycle.
    pub(crate) fn jitter(&self) -> Duration {
        let slack = self.interval.saturating_sub(self.timeout) / 2;
        slack.min(self.interval / 10).min(Duration::from_secs(1))
    }
}
