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

pub mod duration;
mod file;
pub mod keys;
pub mod parse;
pub mod peers_file;
pub mod pem;
pub mod transport;
pub mod web;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use duration::format_duration;
use keys::{env_variable, DefaultValue, Key, Value, KEYS};

pub use parse::base_url as parse_base_url;

/// A configuration error: where the bad value came from and what is wrong with it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct ConfigError {
    pub origin: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(origin: impl fmt::Display, problem: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.to_string(),
            problem: problem.into(),
        }
    }
}

/// The weights of quality's three parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct QualityWeights {
    pub success: f64,
    pub latency: f64,
    pub freshness: f64,
}

/// One peer to pull.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PeerConfig {
    /// The value of the `peer` label: the configured name, or the URL without scheme.
    pub label: String,
    /// The base URL; the summary path is appended to it.
    #[serde(serialize_with = "serialize_url")]
    pub url: Url,
    /// How to reach it as its `[[peers]]` table says (unset: `[pull]`'s).
    #[serde(skip)]
    pub access: transport::PeerAccess,
    /// How it is reached: its own settings over `[pull]`'s, built when the
    /// configuration loads.
    #[serde(skip_serializing_if = "transport::Transport::is_plain")]
    pub transport: Arc<transport::Transport>,
}

impl PeerConfig {
    /// A peer at `url`, labelled `name` or else by its URL without scheme.
    pub fn new(url: Url, name: Option<String>) -> Self {
        let label = name.unwrap_or_else(|| url_without_scheme(&url));
        PeerConfig {
            label,
            url,
            access: transport::PeerAccess::default(),
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
    pub fn on_stderr(self) -> bool {
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
    pub name: Option<String>,
    pub observers_per_peer: ObserversPerPeer,
    pub metrics: MetricsConfig,
    pub listen: SocketAddr,
    pub interval: Duration,
    pub timeout: Duration,
    pub window: Duration,
    pub live_max_age: Duration,
    pub weights: QualityWeights,
    pub peers: Vec<PeerConfig>,
    pub peers_file: Option<PathBuf>,
    /// Largest summary body accepted, in bytes.
    pub body_limit: usize,
    /// How many pulls may run at once.
    pub max_concurrent_pulls: usize,
    pub log_format: LogFormat,
    pub log_color: LogColor,
    /// A `tracing` filter (`info`, `peerscope=debug`); `RUST_LOG` wins when set.
    pub log_level: String,
    pub reconcile: ReconcileConfig,
    pub checkpoint: CheckpointConfig,
    /// Directory for rolling log files; logs go to stderr only when absent.
    pub log_file: Option<PathBuf>,
    pub log_rotation: LogRotation,
    /// How many rotated log files to keep.
    pub log_max_files: usize,
    /// File holding the token that lets a non-loopback caller `POST /-/reload`.
    pub admin_token_file: Option<PathBuf>,
    /// `[pull]`: how every peer is reached unless its `[[peers]]` table says otherwise.
    pub pull: transport::PeerAccess,
    /// The exporter-toolkit web configuration file (TLS, basic auth), if any.
    pub web_config_file: Option<PathBuf>,
    /// What that file says, loaded and checked with the rest (plain HTTP without it).
    pub web: web::WebConfig,
}

/// `[checkpoint]`: where and how often the state is saved.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CheckpointConfig {
    /// No checkpoints when absent.
    pub path: Option<PathBuf>,
    pub interval: Duration,
}

/// How often the log file rolls over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
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
pub enum ObserversPerPeer {
    /// A full mesh up to [`ObserversPerPeer::AUTO_FULL_MESH_UP_TO`] members, else
    /// [`ObserversPerPeer::AUTO_OBSERVERS`] observers per peer.
    #[default]
    Auto,
    /// K observers per peer; 0 = every sidecar observes every peer.
    Fixed(usize),
}

impl ObserversPerPeer {
    /// `auto`: everyone observes everyone up to this many members (this node included).
    pub const AUTO_FULL_MESH_UP_TO: usize = 50;
    /// `auto`: observers per peer in larger federations.
    pub const AUTO_OBSERVERS: usize = 8;

    /// K in force for a federation of `members` (this node included); 0 = full mesh.
    pub fn for_members(self, members: usize) -> usize {
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
pub enum PerPeer {
    /// Every per-peer family.
    #[default]
    Full,
    /// What a verdict needs: polls, failures by reason, up, success ratio, p95, quality,
    /// divergent, streak. No histogram, no reported values.
    Lean,
}

/// `[metrics]`: what is exported.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct MetricsConfig {
    pub per_peer: PerPeer,
    /// `_created` samples in OpenMetrics scrapes.
    pub created_samples: bool,
}

/// `[reconcile]`: when and how the local node is asked to reconcile (SPEC §6).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ReconcileConfig {
    pub mode: Mode,
    pub policy: Policy,
    /// Cycles a peer must have diverged before it counts as evidence.
    pub threshold: u64,
    /// Path of the node's reconciliation API, appended to the node's base URL.
    pub path: String,
    /// Limit of one request.
    pub timeout: Duration,
    /// Quiet time after a successful request.
    pub cooldown: Duration,
    pub backoff_base: Duration,
    pub backoff_factor: f64,
    pub backoff_cap: Duration,
    pub max_per_hour: usize,
    /// File holding the bearer token; read at each request, never logged.
    pub token_file: Option<PathBuf>,
}

/// Reads environment variables; a seam so the parsers are tested with a map.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// No variables at all (the demo, the bench, tests).
pub struct NoEnvironment;

impl Environment for NoEnvironment {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Everything a configuration is read from.
pub struct Sources<'a> {
    /// The TOML file given by `--config`.
    pub file: Option<&'a Path>,
    /// Command-line flags as (key name, text); the peer list's key (`peers`) may repeat.
    pub flags: Vec<(&'static str, String)>,
    pub env: &'a dyn Environment,
}

impl Sources<'static> {
    /// Flags only: no file, no environment.
    pub fn flags(flags: &[(&'static str, &str)]) -> Self {
        Sources {
            file: None,
            flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            env: &NoEnvironment,
        }
    }
}

/// Where a key's value in force came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `default`, a file path, `environment variable X` or `flag --x`.
    pub source: String,
    /// The text as that source gave it.
    pub text: String,
}

/// A configuration and, per key set by any source (defaults included), where it came from.
#[derive(Clone, Debug)]
pub struct Explained {
    pub config: Config,
    pub origins: BTreeMap<&'static str, Origin>,
}

/// Reads and validates the configuration from all sources.
pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
    load_explained(sources).map(|explained| explained.config)
}

/// Like [`load`], and says where each value came from (for `peerscope check`).
pub fn load_explained(sources: &Sources<'_>) -> Result<Explained, ConfigError> {
    let file = match sources.file {
        Some(path) => Some((file::read(path)?, path.display().to_string())),
        None => None,
    };
    layer(sources, file)
}

/// Like [`load`] with the configuration file's text given rather than read (`origin`
/// names it in errors; relative paths are taken from the working directory): the whole
/// layering and every rule, for the fuzz target and tests.
pub fn load_text(text: &str, origin: &str, env: &dyn Environment) -> Result<Config, ConfigError> {
    let values = file::parse(text, origin, Path::new("."))?;
    let sources = Sources {
        file: None,
        flags: Vec::new(),
        env,
    };
    layer(&sources, Some((values, origin.to_owned()))).map(|explained| explained.config)
}

/// Applies defaults, seed variables, the file's values, variables and flags, in that order.
fn layer(
    sources: &Sources<'_>,
    file: Option<(file::FileValues, String)>,
) -> Result<Explained, ConfigError> {
    let mut builder = Builder {
        config: Config::unset(),
        origins: BTreeMap::new(),
    };
    for key in KEYS {
        if let DefaultValue::Text(text) = key.default {
            builder.apply(key, text, "default")?;
        }
    }
    for key in KEYS {
        for variable in key.seed_variables {
            if let Some(text) = sources.env.var(variable) {
                builder.apply(key, &text, &format!("environment variable {variable}"))?;
            }
        }
    }
    if let Some((values, origin)) = file {
        for (name, text) in values.scalars {
            builder.apply(known(name)?, &text, &origin)?;
        }
        if let Some(peers) = values.peers {
            builder.set_peers(peers, &origin, "[[peers]]");
        }
    }
    for key in KEYS {
        let variable = env_variable(key.name);
        if let Some(text) = sources.env.var(&variable) {
            builder.apply(key, &text, &format!("environment variable {variable}"))?;
        }
    }
    let mut flag_peers = Vec::new();
    for (name, text) in &sources.flags {
        let key = known(name)?;
        let origin = format!("flag --{}", key.flag.unwrap_or(key.name));
        match key.value {
            Value::PeerList => flag_peers.push(text.as_str()),
            Value::Scalar(_) | Value::Path(_) => builder.apply(key, text, &origin)?,
        }
    }
    if let Some(key) = flag_peers.first().and(keys::find("peers")) {
        let origin = format!("flag --{}", key.flag.unwrap_or(key.name));
        builder.apply(key, &flag_peers.join(","), &origin)?;
    }
    builder.finish()
}

fn known(name: &str) -> Result<&'static Key, ConfigError> {
    keys::find(name)
        .ok_or_else(|| ConfigError::new("configuration", format!("unknown key `{name}`")))
}

/// Builds a configuration by applying values in rising precedence.
struct Builder {
    config: Config,
    origins: BTreeMap<&'static str, Origin>,
}

impl Builder {
    fn apply(&mut self, key: &'static Key, text: &str, source: &str) -> Result<(), ConfigError> {
        let fail = |problem: String| ConfigError::new(source, format!("{}: {problem}", key.name));
        match key.value {
            Value::Scalar(set) => set(&mut self.config, text).map_err(fail)?,
            Value::Path(set) => set(&mut self.config, parse::path(text).map_err(fail)?),
            Value::PeerList => {
                let peers = parse_peer_list(text).map_err(fail)?;
                self.config.peers = peers;
            }
        }
        self.origins.insert(
            key.name,
            Origin {
                source: source.to_owned(),
                text: text.to_owned(),
            },
        );
        Ok(())
    }

    fn set_peers(&mut self, peers: Vec<PeerConfig>, source: &str, text: &str) {
        self.config.peers = peers;
        self.origins.insert(
            "peers",
            Origin {
                source: source.to_owned(),
                text: text.to_owned(),
            },
        );
    }

    /// Required keys, the peers file, and the rules that span several keys.
    fn finish(mut self) -> Result<Explained, ConfigError> {
        for key in KEYS.iter().filter(|k| k.default == DefaultValue::Required) {
            if !self.origins.contains_key(key.name) {
                let flag = key.flag.map_or(String::new(), |f| format!("--{f}, "));
                return Err(ConfigError::new(
                    "configuration",
                    format!(
                        "{}: {} is required ({flag}{} or `{}` in the file)",
                        key.name,
                        key.doc,
                        env_variable(key.name),
                        key.name
                    ),
                ));
            }
        }
        if let Some(path) = &self.config.peers_file {
            let listed = peers_file::read(path)?;
            self.config.peers.extend(listed);
        }
        if let Some(path) = &self.config.web_config_file {
            self.config.web = web::read(path)?;
        }
        // Peers with the same settings share one transport (and so one TLS client).
        let mut built: BTreeMap<transport::PeerAccess, Arc<transport::Transport>> = BTreeMap::new();
        for peer in &mut self.config.peers {
            let access = peer.access.over(&self.config.pull);
            peer.transport = match built.get(&access) {
                Some(transport) => Arc::clone(transport),
                None => {
                    let transport = Arc::new(transport::build(&access).map_err(|problem| {
                        ConfigError::new(format!("peer {}", peer.label), problem)
                    })?);
                    built.insert(access, Arc::clone(&transport));
                    transport
                }
            };
        }
        check_rules(&self.config, &self.origins)?;
        Ok(Explained {
            config: self.config,
            origins: self.origins,
        })
    }
}

/// Comma-separated `[NAME=]URL` entries.
fn parse_peer_list(list: &str) -> Result<Vec<PeerConfig>, String> {
    let mut peers = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) = match entry.split_once('=') {
            Some((name, url)) if !name.contains("://") => (Some(name.trim()), url.trim()),
            _ => (None, entry),
        };
        if name.is_some_and(str::is_empty) {
            return Err(format!("{entry:?}: the name before `=` is empty"));
        }
        peers.push(PeerConfig::new(
            parse::base_url(url)?,
            name.map(str::to_owned),
        ));
    }
    Ok(peers)
}

/// The most samples one peer's window may hold (window ÷ interval): bounds memory per peer.
pub const MAX_WINDOW_SAMPLES: usize = 100_000;

/// The rules that span several keys; messages name each value and where it came from.
fn check_rules(
    config: &Config,
    origins: &BTreeMap<&'static str, Origin>,
) -> Result<(), ConfigError> {
    let from = |key: &str| {
        origins
            .get(key)
            .map_or("default", |o| o.source.as_str())
            .to_owned()
    };
    let spanning = |problem: String| ConfigError::new("configuration", problem);
    if config.timeout >= config.interval {
        return Err(spanning(format!(
            "timeout {} (from {}) must be shorter than interval {} (from {})",
            format_duration(config.timeout),
            from("timeout"),
            format_duration(config.interval),
            from("interval")
        )));
    }
    if config.window < config.interval {
        return Err(spanning(format!(
            "window {} (from {}) must be at least one interval {} (from {})",
            format_duration(config.window),
            from("window"),
            format_duration(config.interval),
            from("interval")
        )));
    }
    if config.window.as_secs_f64() / config.interval.as_secs_f64() > MAX_WINDOW_SAMPLES as f64 {
        return Err(spanning(format!(
            "window {} (from {}) over interval {} (from {}) keeps more than {MAX_WINDOW_SAMPLES} samples per peer",
            format_duration(config.window),
            from("window"),
            format_duration(config.interval),
            from("interval")
        )));
    }
    let weights = config.weights;
    if weights.success + weights.latency + weights.freshness == 0.0 {
        return Err(spanning(
            "quality: the weights w_success, w_latency and w_freshness are all 0; at least one must be positive".to_owned(),
        ));
    }
    let reconcile = &config.reconcile;
    if reconcile.backoff_base > reconcile.backoff_cap {
        return Err(spanning(format!(
            "reconcile.backoff_base {} (from {}) must not exceed reconcile.backoff_cap {} (from {})",
            format_duration(reconcile.backoff_base),
            from("reconcile.backoff_base"),
            format_duration(reconcile.backoff_cap),
            from("reconcile.backoff_cap")
        )));
    }
    let mut urls = BTreeSet::new();
    let mut labels = BTreeSet::new();
    for peer in &config.peers {
        if !urls.insert(peer.url.as_str()) {
            return Err(spanning(format!("peers: {} is listed twice", peer.url)));
        }
        if !labels.insert(peer.label.as_str()) {
            return Err(spanning(format!(
                "peers: two peers are named {:?}",
                peer.label
            )));
        }
    }
    Ok(())
}

impl Config {
    /// The starting point of [`load`]: every key is then written over from its default or
    /// a source, and a required key no source set is refused, so these values never
    /// reach a running sidecar.
    fn unset() -> Self {
        Config {
            node: Url::parse("http://unset.invalid").expect("a valid constant URL"),
            name: None,
            observers_per_peer: ObserversPerPeer::default(),
            metrics: MetricsConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
            window: Duration::ZERO,
            live_max_age: Duration::ZERO,
            weights: QualityWeights::default(),
            peers: Vec::new(),
            peers_file: None,
            body_limit: 0,
            max_concurrent_pulls: 0,
            log_format: LogFormat::default(),
            log_color: LogColor::default(),
            log_level: String::new(),
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

/// `http://10.0.0.7:8100/nova` → `10.0.0.7:8100/nova`.
fn url_without_scheme(url: &Url) -> String {
    let text = url.as_str();
    let rest = &text[url.scheme().len() + 3..];
    rest.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_with(
        file: Option<&str>,
        flags: Vec<(&'static str, String)>,
        vars: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peerscope.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let environment = env(vars);
        load(&Sources {
            file: file.map(|_| path.as_path()),
            flags,
            env: &environment,
        })
    }

    #[test]
    fn defaults_apply_when_every_source_is_silent() {
        let config =
            load_with(None, vec![], &[("PEERSCOPE_NODE", "http://127.0.0.1:8000")]).unwrap();
        assert_eq!(config.interval, Duration::from_secs(30));
        assert_eq!(config.timeout, Duration::from_millis(2500));
        assert_eq!(config.window, Duration::from_secs(300));
        assert_eq!(config.live_max_age, Duration::from_secs(90));
        assert_eq!(config.listen, "127.0.0.1:9478".parse().unwrap());
        assert_eq!(
            config.weights,
            QualityWeights {
                success: 0.5,
                latency: 0.3,
                freshness: 0.2
            }
        );
        assert_eq!(config.body_limit, 1024 * 1024);
        assert!(config.peers.is_empty());
    }

    #[test]
    fn flags_beat_environment_beat_file_beat_seed() {
        let file =
            "node = \"http://127.0.0.1:8000\"\ninterval = \"20s\"\ntimeout = 4\nwindow = \"10m\"\n";
        let vars = [
            ("PEERSCOPE_INTERVAL", "15s"),
            ("NOVA_FED_SYNC_INTERVAL", "99"),
            ("NOVA_FED_SYNC_TIMEOUT", "1"),
            ("NOVA_FED_QUALITY_W1", "0.7"),
        ];
        let config = load_with(Some(file), vec![], &vars).unwrap();
        assert_eq!(config.interval, Duration::from_secs(15));
        assert_eq!(config.timeout, Duration::from_secs(4));
        assert_eq!(config.weights.success, 0.7);
        let flags = vec![("interval", "12s".to_owned())];
        let config = load_with(Some(file), flags, &vars).unwrap();
        assert_eq!(config.interval, Duration::from_secs(12));
        assert_eq!(config.window, Duration::from_secs(600));
    }

    #[test]
    fn seed_peers_are_a_fallback_for_the_peer_list() {
        let vars = [
            ("PEERSCOPE_NODE", "http://n:1"),
            (
                "NOVA_FED_PEERS",
                "http://10.0.0.1:8100, http://10.0.0.2:8100/nova/",
            ),
        ];
        let config = load_with(None, vec![], &vars).unwrap();
        let labels: Vec<_> = config.peers.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["10.0.0.1:8100", "10.0.0.2:8100/nova"]);
        assert_eq!(config.peers[1].url.as_str(), "http://10.0.0.2:8100/nova");
        let file = "[[peers]]\nurl = \"http://10.0.0.3:8100\"\nname = \"nova-c\"\n";
        let config = load_with(Some(file), vec![], &vars).unwrap();
        assert_eq!(config.peers.len(), 1);
        assert_eq!(config.peers[0].label, "nova-c");
    }

    #[test]
    fn each_bad_value_is_refused_with_its_own_message() {
        let node = ("PEERSCOPE_NODE", "http://127.0.0.1:8000");
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case<'_>; 10] = [
            (
                "interval = \"10000000000000000000\"\n",
                &[node],
                "interval: duration \"10000000000000000000\" is longer than the maximum",
            ),
            (
                "interval = \"1ms\"\ntimeout = \"0.5ms\"\nwindow = \"1h\"\n",
                &[node],
                "keeps more than 100000 samples per peer",
            ),
            ("timeout = \"30s\"\n", &[node], "timeout 30s (from "),
            (
                "[quality]\nw_success = 0\nw_latency = 0\nw_freshness = 0\n",
                &[node],
                "weights w_success, w_latency and w_freshness are all 0",
            ),
            (
                "[[peers]]\nurl = \"not a url\"\n",
                &[node],
                "peers[0].url: \"not a url\" is not a URL",
            ),
            (
                "[[peers]]\nurl = \"http://a:1\"\n[[peers]]\nurl = \"http://a:1/\"\n",
                &[node],
                "peers: http://a:1/ is listed twice",
            ),
            (
                "interval = \"soon\"\n",
                &[node],
                "interval: invalid duration \"soon\"",
            ),
            ("intervall = \"30s\"\n", &[node], "unknown key `intervall`"),
            (
                "",
                &[node, ("PEERSCOPE_TIMEOUT", "x")],
                "environment variable PEERSCOPE_TIMEOUT: timeout: invalid duration",
            ),
            ("", &[], "node: the local node's base URL is required"),
        ];
        for (file, vars, expected) in cases {
            let err = load_with(Some(file), vec![], vars).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "for {file:?}: {err:?} lacks {expected:?}"
            );
        }
    }

    /// Regression (issue 12): a relative `peers_file` was taken from the working directory
    /// (`/` under systemd), not from the configuration file's directory.
    #[test]
    fn relative_paths_in_the_file_are_taken_from_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        let file = dir.path().join("conf/peerscope.toml");
        std::fs::write(
            &file,
            "node = \"http://127.0.0.1:8000\"\npeers_file = \"peers.json\"\nadmin_token_file = \"/abs/token\"\n[checkpoint]\npath = \"state/cp.json\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("conf/peers.json"),
            r#"[{"targets": ["10.0.0.5:8100"]}]"#,
        )
        .unwrap();
        let config = load(&Sources {
            file: Some(&file),
            flags: vec![],
            env: &NoEnvironment,
        })
        .unwrap();
        assert_eq!(config.peers_file, Some(dir.path().join("conf/peers.json")));
        assert_eq!(config.peers.len(), 1);
        assert_eq!(
            config.checkpoint.path,
            Some(dir.path().join("conf/state/cp.json"))
        );
        assert_eq!(config.admin_token_file, Some(PathBuf::from("/abs/token")));
        // From a flag, relative stays relative: the working directory is the user's.
        let flagged = load(&Sources {
            file: Some(&file),
            flags: vec![("checkpoint.path", "here.json".to_owned())],
            env: &NoEnvironment,
        })
        .unwrap();
        assert_eq!(flagged.checkpoint.path, Some(PathBuf::from("here.json")));
    }

    #[test]
    fn file_errors_name_the_file() {
        let err = load_with(Some("interval = \"soon\"\n"), vec![], &[]).unwrap_err();
        assert!(err.origin.ends_with("peerscope.toml"), "{err}");
    }

    #[test]
    fn reconcile_section_has_defaults_and_checks_its_values() {
        let node = [("PEERSCOPE_NODE", "http://127.0.0.1:8000")];
        let config = load_with(None, vec![], &node).unwrap();
        assert_eq!(config.reconcile.mode, Mode::Off);
        assert_eq!(config.reconcile.policy, Policy::Majority);
        assert_eq!(config.reconcile.threshold, 3);
        assert_eq!(config.reconcile.cooldown, Duration::from_secs(300));
        assert_eq!(config.reconcile.backoff_cap, Duration::from_secs(1800));
        assert_eq!(config.reconcile.max_per_hour, 6);
        let file = "[reconcile]\nmode = \"dry-run\"\npolicy = \"any\"\nthreshold = 5\ntoken_file = \"/run/token\"\n";
        let vars = [node[0], ("PEERSCOPE_RECONCILE_MODE", "on")];
        let config = load_with(Some(file), vec![], &vars).unwrap();
        assert_eq!(
            config.reconcile.mode,
            Mode::On,
            "the environment beats the file"
        );
        assert_eq!(config.reconcile.policy, Policy::Any);
        assert_eq!(config.reconcile.threshold, 5);
        for (text, expected) in [
            (
                "[reconcile]\nmode = \"yes\"\n",
                "reconcile.mode: \"yes\" is not one of off, dry-run, on",
            ),
            ("[reconcile]\npath = \"reconcile\"\n", "must start with /"),
            (
                "[reconcile]\nbackoff_base = \"1h\"\n",
                "must not exceed reconcile.backoff_cap",
            ),
            (
                "[reconcile]\nsecret = 1\n",
                "unknown key `reconcile.secret`",
            ),
        ] {
            let err = load_with(Some(text), vec![], &node)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }

    #[test]
    fn peer_lists_take_an_optional_name_before_the_url() {
        let vars = [
            ("PEERSCOPE_NODE", "http://n:1"),
            (
                "PEERSCOPE_PEERS",
                "nova-b=http://10.0.0.2:8100, http://10.0.0.3:8100/a=b",
            ),
        ];
        let config = load_with(None, vec![], &vars).unwrap();
        let peers: Vec<(&str, &str)> = config
            .peers
            .iter()
            .map(|p| (p.label.as_str(), p.url.as_str()))
            .collect();
        assert_eq!(
            peers,
            [
                ("nova-b", "http://10.0.0.2:8100/"),
                ("10.0.0.3:8100/a=b", "http://10.0.0.3:8100/a=b")
            ]
        );
        let err = load_with(None, vec![("peers", "=http://x:1".to_owned())], &vars[..1])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("flag --peer: peers: \"=http://x:1\": the name before `=` is empty"),
            "{err}"
        );
    }
}
