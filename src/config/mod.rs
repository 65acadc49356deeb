//! Configuration: the table of keys ([`keys`]), where values come from, and the rules
//! that span several keys.
//!
//! Sources, highest first: flags, `PEERSCOPE_*` variables, the TOML file given by
//! `--config`, the seed system's `NOVA_FED_*` variables (fallbacks for deployments moving
//! over), defaults. [`load`] applies them in the opposite order onto one [`Config`], each
//! value parsed by its key's parser whatever its source, so a later (higher) source
//! overwrites and every value remembers where it came from: errors name the file, variable
//! or flag, the key and the problem. The peer list comes whole from the highest source
//! that defines one; a `peers_file` (Prometheus `file_sd` JSON) adds its targets to it.

pub mod discovery;
pub mod duration;
mod file;
pub mod keys;
mod load;
pub(crate) mod parse;
pub mod peers_file;
pub(crate) mod pem;
pub(crate) mod transport;
pub mod web;

pub use load::{
    load, load_explained, load_text, Environment, Explained, NoEnvironment, Origin,
    ProcessEnvironment, Sources, MAX_WINDOW_SAMPLES,
};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

pub use parse::base_url as parse_base_url;

/// A configuration error: where the bad value came from and what is wrong with it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct ConfigError {
    pub(crate) origin: String,
    pub(crate) problem: String,
}

impl ConfigError {
    pub(crate) fn new(origin: impl fmt::Display, problem: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.to_string(),
            problem: problem.into(),
        }
    }
}

/// The weights of quality's three parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct QualityWeights {
    pub(crate) success: f64,
    pub(crate) latency: f64,
    pub(crate) freshness: f64,
}

/// One peer to pull.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PeerConfig {
    /// The value of the `peer` label: the configured name, or the URL without scheme.
    pub label: String,
    /// The base URL; the summary path is appended to it.
    #[serde(serialize_with = "serialize_url")]
    pub url: Url,
    /// How to reach it as its `[[peers]]` table says; `None`: `[pull]`'s (boxed: most
    /// peers have no table, and a federation may list 100,000 of them).
    #[serde(skip)]
    pub(crate) access: Option<Box<transport::PeerAccess>>,
    /// How it is reached: its own settings over `[pull]`'s, built when the
    /// configuration loads.
    #[serde(skip_serializing_if = "transport::Transport::is_plain")]
    pub(crate) transport: Arc<transport::Transport>,
}

impl PeerConfig {
    /// A peer at `url`, labelled `name` or else by its URL without scheme.
    pub(crate) fn new(url: Url, name: Option<String>) -> Self {
        let label = name.unwrap_or_else(|| url_without_scheme(&url));
        PeerConfig {
            label,
            url,
            access: None,
            transport: Arc::default(),
        }
    }
}

fn serialize_url<S: serde::Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(url.as_str())
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Colour (ANSI escapes) in text logs on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogColor {
    /// Only when stderr is a terminal and `NO_COLOR` is unset: never in journald or a file.
    #[default]
    Auto,
    Always,
    Never,
}

impl LogColor {
    /// Whether to write colour to stderr.
    pub(crate) fn on_stderr(self) -> bool {
        use std::io::IsTerminal;
        match self {
            LogColor::Always => true,
            LogColor::Never => false,
            LogColor::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

/// A complete, validated configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Config {
    #[serde(serialize_with = "serialize_url")]
    pub node: Url,
    /// This node's name among the members; `None`: the local node's `node_id`.
    pub(crate) name: Option<String>,
    pub(crate) observers_per_peer: ObserversPerPeer,
    pub(crate) metrics: MetricsConfig,
    pub listen: SocketAddr,
    /// Serve on the socket systemd passes instead of binding `listen`.
    pub(crate) systemd_socket: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub window: Duration,
    pub(crate) live_max_age: Duration,
    pub(crate) weights: QualityWeights,
    /// Shared: the store and the reloader hold this list, not copies of it (100,000
    /// members are 30 MB a copy).
    pub peers: Arc<[PeerConfig]>,
    pub(crate) peers_file: Option<PathBuf>,
    /// Peers found by DNS and http_sd (SPEC §10), beside `peers` and the peers file.
    /// Flattened: its keys are top-level keys of the file.
    #[serde(flatten)]
    pub(crate) discovery: discovery::DiscoveryConfig,
    /// Largest summary body accepted, in bytes.
    pub(crate) body_limit: usize,
    /// How many pulls may run at once.
    pub(crate) max_concurrent_pulls: usize,
    pub(crate) log_format: LogFormat,
    pub(crate) log_color: LogColor,
    /// A `tracing` filter (`info`, `peerscope=debug`); `RUST_LOG` wins when set.
    pub(crate) log_level: String,
    /// A `tracing` filter that takes the place of `log_level`.
    pub(crate) log_filter: Option<String>,
    pub reconcile: ReconcileConfig,
    pub(crate) checkpoint: CheckpointConfig,
    /// Directory for rolling log files; logs go to stderr only when absent.
    pub(crate) log_file: Option<PathBuf>,
    pub(crate) log_rotation: LogRotation,
    /// How many rotated log files to keep.
    pub(crate) log_max_files: usize,
    /// File holding the token that lets a non-loopback caller `POST /-/reload`.
    pub(crate) admin_token_file: Option<PathBuf>,
    /// `[pull]`: how every peer is reached unless its `[[peers]]` table says otherwise.
    pub(crate) pull: transport::PeerAccess,
    /// The exporter-toolkit web configuration file (TLS, basic auth), if any.
    pub(crate) web_config_file: Option<PathBuf>,
    /// What that file says, loaded and checked with the rest (plain HTTP without it).
    pub(crate) web: web::WebConfig,
}

/// `[checkpoint]`: where and how often the state is saved.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct CheckpointConfig {
    /// No checkpoints when absent.
    pub(crate) path: Option<PathBuf>,
    pub(crate) interval: Duration,
}

/// How often the log file rolls over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogRotation {
    Hourly,
    #[default]
    Daily,
}

/// `reconcile.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Off,
    DryRun,
    On,
}

/// `reconcile.policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Reconcile only when a strict majority of the voters holds another root.
    #[default]
    Majority,
    /// The seed system's rule: any single peer divergent for `threshold` cycles.
    Any,
}

/// `observers_per_peer`: how many members observe each peer (SPEC §9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ObserversPerPeer {
    /// A full mesh up to [`ObserversPerPeer::AUTO_FULL_MESH_UP_TO`] members, else
    /// [`ObserversPerPeer::AUTO_OBSERVERS`] observers per peer.
    #[default]
    Auto,
    /// K observers per peer; 0 = every sidecar observes every peer.
    Fixed(usize),
}

impl ObserversPerPeer {
    /// `auto`: everyone observes everyone up to this many members (this node included).
    pub(crate) const AUTO_FULL_MESH_UP_TO: usize = 50;
    /// `auto`: observers per peer in larger federations.
    pub(crate) const AUTO_OBSERVERS: usize = 8;

    /// K in force for a federation of `members` (this node included); 0 = full mesh.
    pub(crate) fn for_members(self, members: usize) -> usize {
        match self {
            ObserversPerPeer::Fixed(k) => k,
            ObserversPerPeer::Auto if members <= Self::AUTO_FULL_MESH_UP_TO => 0,
            ObserversPerPeer::Auto => Self::AUTO_OBSERVERS,
        }
    }
}

/// `metrics.per_peer`: which per-peer series are exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PerPeer {
    /// Every per-peer family.
    #[default]
    Full,
    /// What a verdict needs: polls, failures by reason, up, success ratio, p95, quality,
    /// divergent, streak. No histogram, no reported values.
    Lean,
}

/// `[metrics]`: what is exported.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct MetricsConfig {
    pub(crate) per_peer: PerPeer,
    /// `_created` samples in OpenMetrics scrapes.
    pub(crate) created_samples: bool,
    /// Where the metrics are served (`/metrics`).
    pub(crate) path: String,
    /// Leave out `process_*` and the HTTP request counts.
    pub(crate) disable_exporter_metrics: bool,
}

/// `[reconcile]`: when and how the local node is asked to reconcile (SPEC §6).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReconcileConfig {
    pub mode: Mode,
    pub policy: Policy,
    /// Cycles a peer must have diverged before it counts as evidence.
    pub threshold: u64,
    /// Path of the node's reconciliation API, appended to the node's base URL.
    pub(crate) path: String,
    /// Limit of one request.
    pub(crate) timeout: Duration,
    /// Quiet time after a successful request.
    pub cooldown: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_factor: f64,
    pub(crate) backoff_cap: Duration,
    pub(crate) max_per_hour: usize,
    /// File holding the bearer token; read at each request, never logged.
    pub(crate) token_file: Option<PathBuf>,
}

impl Config {
    /// Whether to serve on the socket systemd passes (`web.systemd_socket`).
    pub fn systemd_socket(&self) -> bool {
        self.systemd_socket
    }

    /// How many discovery sources (DNS names and the http_sd URL) add members.
    pub fn discovery_sources(&self) -> usize {
        self.discovery.dns.len() + usize::from(self.discovery.http_sd.is_some())
    }

    /// The starting point of [`load`]: every key is then written over from its default or
    /// a source, and a required key no source set is refused, so these values never
    /// reach a running sidecar.
    pub(super) fn unset() -> Self {
        Config {
            node: Url::parse("http://unset.invalid").expect("a valid constant URL"),
            name: None,
            observers_per_peer: ObserversPerPeer::default(),
            metrics: MetricsConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            systemd_socket: false,
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
            window: Duration::ZERO,
            live_max_age: Duration::ZERO,
            weights: QualityWeights::default(),
            peers: Arc::default(),
            peers_file: None,
            discovery: discovery::DiscoveryConfig::default(),
            body_limit: 0,
            max_concurrent_pulls: 0,
            log_format: LogFormat::default(),
            log_color: LogColor::default(),
            log_level: String::new(),
            log_filter: None,
            reconcile: ReconcileConfig::default(),
            checkpoint: CheckpointConfig::default(),
            log_file: None,
            log_rotation: LogRotation::default(),
            log_max_files: 0,
            admin_token_file: None,
            pull: transport::PeerAccess::default(),
            web_config_file: None,
            web: web::WebConfig::default(),
        }
    }
}

/// `http://10.0.0.7:8100/nova` → `10.0.0.7:8100/nova`: how a URL names a peer or the
/// node when no name is given.
pub(crate) fn url_without_scheme(url: &Url) -> String {
    let text = url.as_str();
    let rest = &text[url.scheme().len() + 3..];
    rest.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests;
