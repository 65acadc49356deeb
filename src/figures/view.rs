//! A snapshot of everything peerscope knows and has computed, taken at one `now`:
//! what `/metrics` renders and `/status` serialises.

use serde::ser::{SerializeMap, Serializer};

use crate::config::{ObserversPerPeer, PerPeer};
use crate::figures::divergence::{self, Relation};
use crate::figures::histogram::Histogram;
use crate::figures::scoring::{self, Novelty, QualityParts};
use crate::pull::failure::{FailureReason, PullError};

#[derive(Clone, Debug, serde::Serialize)]
pub struct View {
    pub(crate) node: TargetView,
    /// The peers this sidecar observes (all of them in a full mesh).
    pub peers: Vec<PeerView>,
    pub federation: FederationView,
    /// Which peers this sidecar observes, and why.
    pub(crate) observation: ObservationView,
    /// Which per-peer series `/metrics` carries.
    #[serde(skip)]
    pub(crate) per_peer: PerPeer,
    /// Whether OpenMetrics scrapes carry `_created` samples (`metrics.created_samples`).
    #[serde(skip)]
    pub(crate) created_samples: bool,
    /// Completed poll cycles since start.
    pub(crate) cycles_completed: u64,
    /// Each discovery source: its members and its refreshes (SPEC §10).
    pub discovery: Vec<SourceView>,
}

/// One discovery source (a `dns+`/`dnssrv+` address or the http_sd URL).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SourceView {
    pub source: String,
    /// Members of its last good answer.
    pub members: usize,
    /// Refreshes by outcome: `ok` or the failure's class.
    #[serde(serialize_with = "serialize_counts")]
    pub refreshes: Vec<(&'static str, u64)>,
    pub last_success_timestamp_seconds: Option<f64>,
    pub last_error: Option<String>,
}

fn serialize_counts<S: serde::Serializer>(
    counts: &[(&'static str, u64)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(counts.len()))?;
    for (outcome, count) in counts {
        map.serialize_entry(outcome, count)?;
    }
    map.end()
}

/// What is known of one pulled node (the local node or a peer).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TargetView {
    /// The `peer` label (for the local node: its URL without scheme).
    pub label: String,
    pub(crate) url: String,
    /// The last pull succeeded.
    pub up: bool,
    /// A pull succeeded within `live_max_age`.
    pub live: bool,
    pub polls_total: u64,
    /// When its counters started from zero (Unix seconds): OpenMetrics' `_created`.
    #[serde(skip)]
    pub(crate) counters_created_at: f64,
    #[serde(serialize_with = "serialize_failures")]
    pub failures_total: [u64; FailureReason::ALL.len()],
    #[serde(skip)]
    pub(crate) durations: Histogram,
    pub(crate) last_success_timestamp_seconds: Option<f64>,
    pub(crate) last_error: Option<PullError>,
    pub node_id: Option<String>,
    pub(crate) state_root: Option<String>,
    pub(crate) state_height: Option<u64>,
    pub(crate) g_star: Option<f64>,
    #[serde(serialize_with = "serialize_reported")]
    pub(crate) reported: Vec<(&'static str, f64)>,
    /// Payload `timestamp` − receive time, from the last successful pull.
    pub clock_skew_seconds: Option<f64>,
}

/// A peer: what is known of it, and the figures computed from its window.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerView {
    #[serde(flatten)]
    pub target: TargetView,
    /// `None` until the peer has a pull attempt in its window.
    pub quality: Option<QualityView>,
    pub relation: Relation,
    pub(crate) divergent: bool,
    pub streak: u64,
    /// Set while the peer is excluded for reporting the local node's or another peer's node_id.
    pub identity_problem: Option<String>,
    /// Another live member reports the same node_id: this peer has no vote.
    pub identity_contested: bool,
    /// Why this sidecar observes the peer: its rank among the peer's K observers
    /// (0 = highest rendezvous score); `None` in a full mesh.
    pub(crate) observer_rank: Option<usize>,
}

/// Sampled observation (SPEC §9): who this sidecar is and what it observes.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct ObservationView {
    /// This node's name among the members (configured, or the local node's node_id).
    pub(crate) name: Option<String>,
    /// `observers_per_peer` as configured.
    pub(crate) setting: ObserversPerPeer,
    /// K in force: observers per peer; 0 = every sidecar observes every peer.
    pub(crate) observers_per_peer: usize,
    /// Members of the federation, this node included.
    pub(crate) members: usize,
    pub(crate) observed: usize,
    pub(crate) not_observed: usize,
    /// The member list names this node: that entry is skipped.
    pub(crate) skipped_self: bool,
    /// K > 0 and this node's name is not known yet: nothing is pulled but the node.
    pub(crate) pending: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct QualityView {
    #[serde(flatten)]
    pub parts: QualityParts,
    /// `None` when the window has no successful pull.
    pub latency_p95_seconds: Option<f64>,
    pub quality: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FederationView {
    /// Configured peers, this node excluded if the list names it.
    pub peers_configured: usize,
    /// Peers this sidecar observes: the sample its figures and decisions come from.
    pub(crate) peers_observed: usize,
    /// K in force; 0 = every sidecar observes every peer.
    pub(crate) observers_per_peer: usize,
    pub peers_live: usize,
    #[serde(flatten)]
    pub novelty: Novelty,
    pub divergence_ratio: f64,
    pub(crate) peers_agree: usize,
    pub(crate) peers_diverge: usize,
    pub peers_unknown: usize,
}

/// The federation's headline figures at the end of one cycle: what the page plots over
/// the last window (`GET /history`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct HistoryPoint {
    /// Unix seconds.
    pub at: f64,
    pub peers_live: usize,
    pub novelty: f64,
    pub(crate) divergence_ratio: f64,
}

/// The live count, novelty and divergence ratio of the observed peers, each given as
/// (live, latest `g_star`, relation): shared by the view and the per-cycle history.
pub(crate) fn headline(
    peers: impl Iterator<Item = (bool, Option<f64>, Relation)>,
) -> (usize, Novelty, f64) {
    let (mut live, mut g_stars, mut divergent, mut with_root) = (0, Vec::new(), 0, 0);
    for (is_live, g_star, relation) in peers {
        if !is_live {
            continue;
        }
        live += 1;
        g_stars.extend(g_star);
        if relation != Relation::Unknown {
            with_root += 1;
        }
        if relation == Relation::Diverge {
            divergent += 1;
        }
    }
    (
        live,
        scoring::novelty(&g_stars),
        divergence::divergence_ratio(divergent, with_root),
    )
}

impl FederationView {
    /// Peers per relation, in [`Relation::ALL`] order.
    pub(crate) fn by_relation(&self) -> [(Relation, usize); 3] {
        [
            (Relation::Agree, self.peers_agree),
            (Relation::Diverge, self.peers_diverge),
            (Relation::Unknown, self.peers_unknown),
        ]
    }
}

impl serde::Serialize for PullError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("reason", self.reason.as_str())?;
        map.serialize_entry("detail", &self.detail)?;
        map.end()
    }
}

fn serialize_failures<S: Serializer>(
    failures: &[u64; FailureReason::ALL.len()],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(failures.len()))?;
    for (reason, count) in FailureReason::ALL.iter().zip(failures) {
        map.serialize_entry(reason.as_str(), count)?;
    }
    map.end()
}

fn serialize_reported<S: Serializer>(
    reported: &[(&'static str, f64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(reported.len()))?;
    for (field, value) in reported {
        map.serialize_entry(field, value)?;
    }
    map.end()
}
