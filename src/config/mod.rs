//! Configuration: defaults, the TOML file, `PEERSCOPE_*` variables, the seed system's
//! `NOVA_FED_*` variables and command-line flags, merged by precedence and validated whole.
//!
//! Precedence, highest first: flags, `PEERSCOPE_*`, the file given by `--config`, the
//! seed's `NOVA_FED_*` (fallbacks for deployments moving over), defaults. Every scalar
//! key is parsed from text by one function whatever its source, and every value remembers
//! where it came from, so an error names the file, variable or flag, the key and the problem.
//! The peer list comes whole from the highest source that defines one; a `peers_file`
//! (Prometheus `file_sd` JSON) adds its targets to it.

pub mod duration;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::config::duration::{format_duration, parse_duration};

/// A configuration error: where the bad value came from and what is wrong with it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct ConfigError {
    pub origin: String,
    pub problem: String,
}

impl ConfigError {
    fn new(origin: impl fmt::Display, problem: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.to_string(),
            problem: problem.into(),
        }
    }
}

/// The weights of quality's three parts.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
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
}

impl PeerConfig {
    /// A peer at `url`, labelled `name` or else by its URL without scheme.
    pub fn new(url: Url, name: Option<String>) -> Self {
        let label = name.unwrap_or_else(|| url_without_scheme(&url));
        PeerConfig { label, url }
    }
}

fn serialize_url<S: serde::Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(url.as_str())
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A complete, validated configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Config {
    #[serde(serialize_with = "serialize_url")]
    pub node: Url,
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
}

/// `[checkpoint]`: where and how often the state is saved.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CheckpointConfig {
    /// No checkpoints when absent.
    pub path: Option<PathBuf>,
    pub interval: Duration,
}

/// How often the log file rolls over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
    Hourly,
    Daily,
}

/// `reconcile.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Off,
    DryRun,
    On,
}

/// `reconcile.policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Reconcile only when a strict majority of the voters holds another root.
    Majority,
    /// The seed system's rule: any single peer divergent for `threshold` cycles.
    Any,
}

/// `[reconcile]`: when and how the local node is asked to reconcile (SPEC §6).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
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

/// Default values (SPEC §2).
pub mod defaults {
    pub const LISTEN: &str = "127.0.0.1:9478";
    pub const INTERVAL: &str = "30s";
    pub const TIMEOUT: &str = "2.5s";
    pub const WINDOW: &str = "5m";
    pub const LIVE_MAX_AGE: &str = "90s";
    pub const W_SUCCESS: f64 = 0.5;
    pub const W_LATENCY: f64 = 0.3;
    pub const W_FRESHNESS: f64 = 0.2;
    pub const BODY_LIMIT: usize = 1024 * 1024;
    pub const MAX_CONCURRENT_PULLS: usize = 256;
    pub const LOG_FORMAT: &str = "text";
    pub const LOG_LEVEL: &str = "info";
    pub const CHECKPOINT_INTERVAL: &str = "30s";
    pub const LOG_ROTATION: &str = "daily";
    pub const LOG_MAX_FILES: &str = "7";
    pub const RECONCILE: [(&str, &str); 10] = [
        ("reconcile.mode", "off"),
        ("reconcile.policy", "majority"),
        ("reconcile.threshold", "3"),
        ("reconcile.path", "/federation/reconcile"),
        ("reconcile.timeout", "10s"),
        ("reconcile.cooldown", "5m"),
        ("reconcile.backoff_base", "30s"),
        ("reconcile.backoff_factor", "2"),
        ("reconcile.backoff_cap", "30m"),
        ("reconcile.max_per_hour", "6"),
    ];
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

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// The seed system's variables and the keys they stand in for.
pub const SEED_VARIABLES: [(&str, &str); 5] = [
    ("NOVA_FED_SYNC_INTERVAL", "interval"),
    ("NOVA_FED_SYNC_TIMEOUT", "timeout"),
    ("NOVA_FED_QUALITY_W1", "quality.w_success"),
    ("NOVA_FED_QUALITY_W2", "quality.w_latency"),
    ("NOVA_FED_QUALITY_W3", "quality.w_freshness"),
];
/// The seed system's comma-separated peer list.
pub const SEED_PEERS_VARIABLE: &str = "NOVA_FED_PEERS";
/// Comma-separated peer URLs.
pub const PEERS_VARIABLE: &str = "PEERSCOPE_PEERS";

/// Every scalar key, as written in the file (dotted for sections).
pub const KEYS: [&str; 31] = [
    "node",
    "listen",
    "interval",
    "timeout",
    "window",
    "live_max_age",
    "peers_file",
    "quality.w_success",
    "quality.w_latency",
    "quality.w_freshness",
    "body_limit",
    "max_concurrent_pulls",
    "log_format",
    "log_level",
    "reconcile.mode",
    "reconcile.policy",
    "reconcile.threshold",
    "reconcile.path",
    "reconcile.timeout",
    "reconcile.cooldown",
    "reconcile.backoff_base",
    "reconcile.backoff_factor",
    "reconcile.backoff_cap",
    "reconcile.max_per_hour",
    "reconcile.token_file",
    "checkpoint.path",
    "checkpoint.interval",
    "log_file",
    "log_rotation",
    "log_max_files",
    "admin_token_file",
];

/// The environment variable of a key: `PEERSCOPE_` + the key path in upper snake case.
pub fn env_variable(key: &str) -> String {
    format!("PEERSCOPE_{}", key.replace('.', "_").to_uppercase())
}

/// Everything a configuration is read from.
pub struct Sources<'a> {
    /// The TOML file given by `--config`.
    pub file: Option<&'a Path>,
    /// Flags given on the command line, as (key, text, flag name).
    pub flags: Vec<(&'static str, String, &'static str)>,
    /// `--peer` flags.
    pub flag_peers: Vec<String>,
    pub env: &'a dyn Environment,
}

/// A value and where it came from.
#[derive(Clone, Debug)]
struct Sourced<T> {
    value: T,
    origin: String,
}

fn sourced<T>(value: T, origin: &str) -> Option<Sourced<T>> {
    Some(Sourced {
        value,
        origin: origin.to_owned(),
    })
}

/// One source's values; `None` where the source is silent.
#[derive(Default)]
struct Layer {
    node: Option<Sourced<Url>>,
    listen: Option<Sourced<SocketAddr>>,
    interval: Option<Sourced<Duration>>,
    timeout: Option<Sourced<Duration>>,
    window: Option<Sourced<Duration>>,
    live_max_age: Option<Sourced<Duration>>,
    peers_file: Option<Sourced<PathBuf>>,
    w_success: Option<Sourced<f64>>,
    w_latency: Option<Sourced<f64>>,
    w_freshness: Option<Sourced<f64>>,
    body_limit: Option<Sourced<usize>>,
    max_concurrent_pulls: Option<Sourced<usize>>,
    log_format: Option<Sourced<LogFormat>>,
    log_level: Option<Sourced<String>>,
    peers: Option<Sourced<Vec<PeerConfig>>>,
    reconcile: ReconcileLayer,
    checkpoint_path: Option<Sourced<PathBuf>>,
    checkpoint_interval: Option<Sourced<Duration>>,
    log_file: Option<Sourced<PathBuf>>,
    log_rotation: Option<Sourced<LogRotation>>,
    log_max_files: Option<Sourced<usize>>,
    admin_token_file: Option<Sourced<PathBuf>>,
}

#[derive(Default)]
struct ReconcileLayer {
    mode: Option<Sourced<Mode>>,
    policy: Option<Sourced<Policy>>,
    threshold: Option<Sourced<usize>>,
    path: Option<Sourced<String>>,
    timeout: Option<Sourced<Duration>>,
    cooldown: Option<Sourced<Duration>>,
    backoff_base: Option<Sourced<Duration>>,
    backoff_factor: Option<Sourced<f64>>,
    backoff_cap: Option<Sourced<Duration>>,
    max_per_hour: Option<Sourced<usize>>,
    token_file: Option<Sourced<PathBuf>>,
}

impl ReconcileLayer {
    fn over(self, lower: ReconcileLayer) -> ReconcileLayer {
        ReconcileLayer {
            mode: self.mode.or(lower.mode),
            policy: self.policy.or(lower.policy),
            threshold: self.threshold.or(lower.threshold),
            path: self.path.or(lower.path),
            timeout: self.timeout.or(lower.timeout),
            cooldown: self.cooldown.or(lower.cooldown),
            backoff_base: self.backoff_base.or(lower.backoff_base),
            backoff_factor: self.backoff_factor.or(lower.backoff_factor),
            backoff_cap: self.backoff_cap.or(lower.backoff_cap),
            max_per_hour: self.max_per_hour.or(lower.max_per_hour),
            token_file: self.token_file.or(lower.token_file),
        }
    }
}

impl Layer {
    /// Parses `text` as the value of `key`; `origin` names the source in errors.
    fn set(&mut self, key: &str, text: &str, origin: &str) -> Result<(), ConfigError> {
        let fail = |problem: String| ConfigError::new(origin, format!("{key}: {problem}"));
        match key {
            "node" => self.node = sourced(parse_base_url(text).map_err(fail)?, origin),
            "listen" => {
                let address = text
                    .parse()
                    .map_err(|_| fail(format!("{text:?} is not an address like 127.0.0.1:9478")))?;
                self.listen = sourced(address, origin);
            }
            "interval" => self.interval = sourced(parse_duration(text).map_err(fail)?, origin),
            "timeout" => self.timeout = sourced(parse_duration(text).map_err(fail)?, origin),
            "window" => self.window = sourced(parse_duration(text).map_err(fail)?, origin),
            "live_max_age" => {
                self.live_max_age = sourced(parse_duration(text).map_err(fail)?, origin)
            }
            "peers_file" => self.peers_file = sourced(PathBuf::from(text), origin),
            "quality.w_success" => {
                self.w_success = sourced(parse_weight(text).map_err(fail)?, origin)
            }
            "quality.w_latency" => {
                self.w_latency = sourced(parse_weight(text).map_err(fail)?, origin)
            }
            "quality.w_freshness" => {
                self.w_freshness = sourced(parse_weight(text).map_err(fail)?, origin)
            }
            "body_limit" => self.body_limit = sourced(parse_positive(text).map_err(fail)?, origin),
            "max_concurrent_pulls" => {
                self.max_concurrent_pulls = sourced(parse_positive(text).map_err(fail)?, origin)
            }
            "log_format" => {
                let format = match text {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(fail(format!("{text:?} is not one of text, json"))),
                };
                self.log_format = sourced(format, origin);
            }
            "log_level" => self.log_level = sourced(text.to_owned(), origin),
            "reconcile.mode" => {
                let mode = match text {
                    "off" => Mode::Off,
                    "dry-run" => Mode::DryRun,
                    "on" => Mode::On,
                    _ => return Err(fail(format!("{text:?} is not one of off, dry-run, on"))),
                };
                self.reconcile.mode = sourced(mode, origin);
            }
            "reconcile.policy" => {
                let policy = match text {
                    "majority" => Policy::Majority,
                    "any" => Policy::Any,
                    _ => return Err(fail(format!("{text:?} is not one of majority, any"))),
                };
                self.reconcile.policy = sourced(policy, origin);
            }
            "reconcile.threshold" => {
                self.reconcile.threshold = sourced(parse_positive(text).map_err(fail)?, origin)
            }
            "reconcile.path" => {
                if !text.starts_with('/') {
                    return Err(fail(format!("{text:?} must start with /")));
                }
                self.reconcile.path = sourced(text.to_owned(), origin);
            }
            "reconcile.timeout" => {
                self.reconcile.timeout =
                    sourced(parse_nonzero_duration(text).map_err(fail)?, origin)
            }
            "reconcile.cooldown" => {
                self.reconcile.cooldown = sourced(parse_duration(text).map_err(fail)?, origin)
            }
            "reconcile.backoff_base" => {
                self.reconcile.backoff_base =
                    sourced(parse_nonzero_duration(text).map_err(fail)?, origin)
            }
            "reconcile.backoff_factor" => {
                let factor = parse_weight(text).map_err(fail)?;
                if factor < 1.0 {
                    return Err(fail(format!("{text:?} must be at least 1")));
                }
                self.reconcile.backoff_factor = sourced(factor, origin);
            }
            "reconcile.backoff_cap" => {
                self.reconcile.backoff_cap =
                    sourced(parse_nonzero_duration(text).map_err(fail)?, origin)
            }
            "reconcile.max_per_hour" => {
                self.reconcile.max_per_hour = sourced(parse_positive(text).map_err(fail)?, origin)
            }
            "reconcile.token_file" => {
                self.reconcile.token_file = sourced(PathBuf::from(text), origin)
            }
            "checkpoint.path" => self.checkpoint_path = sourced(PathBuf::from(text), origin),
            "checkpoint.interval" => {
                self.checkpoint_interval =
                    sourced(parse_nonzero_duration(text).map_err(fail)?, origin)
            }
            "log_file" => self.log_file = sourced(PathBuf::from(text), origin),
            "log_rotation" => {
                let rotation = match text {
                    "hourly" => LogRotation::Hourly,
                    "daily" => LogRotation::Daily,
                    _ => return Err(fail(format!("{text:?} is not one of hourly, daily"))),
                };
                self.log_rotation = sourced(rotation, origin);
            }
            "log_max_files" => {
                self.log_max_files = sourced(parse_positive(text).map_err(fail)?, origin)
            }
            "admin_token_file" => self.admin_token_file = sourced(PathBuf::from(text), origin),
            _ => return Err(ConfigError::new(origin, format!("unknown key `{key}`"))),
        }
        Ok(())
    }

    fn set_peer_list(&mut self, list: &str, origin: &str) -> Result<(), ConfigError> {
        let mut peers = Vec::new();
        for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let url = parse_base_url(url).map_err(|p| ConfigError::new(origin, p))?;
            peers.push(PeerConfig::new(url, None));
        }
        self.peers = Some(Sourced {
            value: peers,
            origin: origin.to_owned(),
        });
        Ok(())
    }

    /// This layer, with `lower` filling the gaps.
    fn over(self, lower: Layer) -> Layer {
        Layer {
            node: self.node.or(lower.node),
            listen: self.listen.or(lower.listen),
            interval: self.interval.or(lower.interval),
            timeout: self.timeout.or(lower.timeout),
            window: self.window.or(lower.window),
            live_max_age: self.live_max_age.or(lower.live_max_age),
            peers_file: self.peers_file.or(lower.peers_file),
            w_success: self.w_success.or(lower.w_success),
            w_latency: self.w_latency.or(lower.w_latency),
            w_freshness: self.w_freshness.or(lower.w_freshness),
            body_limit: self.body_limit.or(lower.body_limit),
            max_concurrent_pulls: self.max_concurrent_pulls.or(lower.max_concurrent_pulls),
            log_format: self.log_format.or(lower.log_format),
            log_level: self.log_level.or(lower.log_level),
            peers: self.peers.or(lower.peers),
            reconcile: self.reconcile.over(lower.reconcile),
            checkpoint_path: self.checkpoint_path.or(lower.checkpoint_path),
            checkpoint_interval: self.checkpoint_interval.or(lower.checkpoint_interval),
            log_file: self.log_file.or(lower.log_file),
            log_rotation: self.log_rotation.or(lower.log_rotation),
            log_max_files: self.log_max_files.or(lower.log_max_files),
            admin_token_file: self.admin_token_file.or(lower.admin_token_file),
        }
    }
}

/// Reads and validates the configuration from all sources.
pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
    let mut flags = Layer::default();
    for (key, text, flag) in &sources.flags {
        flags.set(key, text, &format!("flag {flag}"))?;
    }
    if !sources.flag_peers.is_empty() {
        flags.set_peer_list(&sources.flag_peers.join(","), "flag --peer")?;
    }

    let mut env = Layer::default();
    for key in KEYS {
        let variable = env_variable(key);
        if let Some(text) = sources.env.var(&variable) {
            env.set(key, &text, &format!("environment variable {variable}"))?;
        }
    }
    if let Some(list) = sources.env.var(PEERS_VARIABLE) {
        env.set_peer_list(&list, &format!("environment variable {PEERS_VARIABLE}"))?;
    }

    let file = match sources.file {
        Some(path) => read_file_layer(path)?,
        None => Layer::default(),
    };

    let mut seed = Layer::default();
    for (variable, key) in SEED_VARIABLES {
        if let Some(text) = sources.env.var(variable) {
            seed.set(key, &text, &format!("environment variable {variable}"))?;
        }
    }
    if let Some(list) = sources.env.var(SEED_PEERS_VARIABLE) {
        seed.set_peer_list(
            &list,
            &format!("environment variable {SEED_PEERS_VARIABLE}"),
        )?;
    }

    resolve(flags.over(env).over(file).over(seed))
}

/// Fills defaults, reads the peers file and checks the rules that span several keys.
fn resolve(layer: Layer) -> Result<Config, ConfigError> {
    let mut defaults = Layer::default();
    for (key, text) in [
        ("listen", defaults::LISTEN),
        ("interval", defaults::INTERVAL),
        ("timeout", defaults::TIMEOUT),
        ("window", defaults::WINDOW),
        ("live_max_age", defaults::LIVE_MAX_AGE),
        ("log_format", defaults::LOG_FORMAT),
        ("log_level", defaults::LOG_LEVEL),
        ("checkpoint.interval", defaults::CHECKPOINT_INTERVAL),
        ("log_rotation", defaults::LOG_ROTATION),
        ("log_max_files", defaults::LOG_MAX_FILES),
    ] {
        defaults.set(key, text, "default")?;
    }
    for (key, text) in defaults::RECONCILE {
        defaults.set(key, text, "default")?;
    }
    let layer = layer.over(defaults);
    let value_or =
        |sourced: Option<Sourced<f64>>, default: f64| sourced.map_or(default, |s| s.value);

    let node = layer.node.ok_or_else(|| {
        ConfigError::new(
            "configuration",
            "node: the local node's URL is required (--node, PEERSCOPE_NODE or `node` in the file)",
        )
    })?;
    let (interval, timeout) = (layer.interval.unwrap(), layer.timeout.unwrap());
    let (window, live_max_age) = (layer.window.unwrap(), layer.live_max_age.unwrap());
    for (key, value) in [
        ("interval", &interval),
        ("timeout", &timeout),
        ("live_max_age", &live_max_age),
    ] {
        if value.value.is_zero() {
            return Err(ConfigError::new(
                &value.origin,
                format!("{key}: must be greater than 0"),
            ));
        }
    }
    if timeout.value >= interval.value {
        return Err(ConfigError::new(
            "configuration",
            format!(
                "timeout {} (from {}) must be shorter than interval {} (from {})",
                format_duration(timeout.value),
                timeout.origin,
                format_duration(interval.value),
                interval.origin
            ),
        ));
    }
    if window.value < interval.value {
        return Err(ConfigError::new(
            "configuration",
            format!(
                "window {} (from {}) must be at least one interval {} (from {})",
                format_duration(window.value),
                window.origin,
                format_duration(interval.value),
                interval.origin
            ),
        ));
    }
    let weights = QualityWeights {
        success: value_or(layer.w_success, defaults::W_SUCCESS),
        latency: value_or(layer.w_latency, defaults::W_LATENCY),
        freshness: value_or(layer.w_freshness, defaults::W_FRESHNESS),
    };
    if weights.success + weights.latency + weights.freshness == 0.0 {
        return Err(ConfigError::new(
            "configuration",
            "quality: the weights w_success, w_latency and w_freshness are all 0; at least one must be positive",
        ));
    }

    let mut peers = layer.peers.map(|s| s.value).unwrap_or_default();
    let peers_file = layer.peers_file.map(|s| s.value);
    if let Some(path) = &peers_file {
        peers.extend(read_peers_file(path)?);
    }
    check_unique_peers(&peers)?;
    let reconcile = resolve_reconcile(layer.reconcile)?;

    Ok(Config {
        node: node.value,
        listen: layer.listen.unwrap().value,
        interval: interval.value,
        timeout: timeout.value,
        window: window.value,
        live_max_age: live_max_age.value,
        weights,
        peers,
        peers_file,
        body_limit: layer.body_limit.map_or(defaults::BODY_LIMIT, |s| s.value),
        max_concurrent_pulls: layer
            .max_concurrent_pulls
            .map_or(defaults::MAX_CONCURRENT_PULLS, |s| s.value),
        log_format: layer.log_format.unwrap().value,
        log_level: layer.log_level.unwrap().value,
        reconcile,
        checkpoint: CheckpointConfig {
            path: layer.checkpoint_path.map(|s| s.value),
            interval: layer.checkpoint_interval.unwrap().value,
        },
        log_file: layer.log_file.map(|s| s.value),
        log_rotation: layer.log_rotation.unwrap().value,
        log_max_files: layer.log_max_files.unwrap().value,
        admin_token_file: layer.admin_token_file.map(|s| s.value),
    })
}

fn resolve_reconcile(layer: ReconcileLayer) -> Result<ReconcileConfig, ConfigError> {
    let (base, cap) = (layer.backoff_base.unwrap(), layer.backoff_cap.unwrap());
    if base.value > cap.value {
        return Err(ConfigError::new(
            "configuration",
            format!(
                "reconcile.backoff_base {} (from {}) must not exceed reconcile.backoff_cap {} (from {})",
                format_duration(base.value),
                base.origin,
                format_duration(cap.value),
                cap.origin
            ),
        ));
    }
    Ok(ReconcileConfig {
        mode: layer.mode.unwrap().value,
        policy: layer.policy.unwrap().value,
        threshold: layer.threshold.unwrap().value as u64,
        path: layer.path.unwrap().value,
        timeout: layer.timeout.unwrap().value,
        cooldown: layer.cooldown.unwrap().value,
        backoff_base: base.value,
        backoff_factor: layer.backoff_factor.unwrap().value,
        backoff_cap: cap.value,
        max_per_hour: layer.max_per_hour.unwrap().value,
        token_file: layer.token_file.map(|s| s.value),
    })
}

fn check_unique_peers(peers: &[PeerConfig]) -> Result<(), ConfigError> {
    let mut urls = BTreeSet::new();
    let mut labels = BTreeSet::new();
    for peer in peers {
        if !urls.insert(peer.url.as_str()) {
            return Err(ConfigError::new(
                "configuration",
                format!("peers: {} is listed twice", peer.url),
            ));
        }
        if !labels.insert(peer.label.as_str()) {
            return Err(ConfigError::new(
                "configuration",
                format!("peers: two peers are named {:?}", peer.label),
            ));
        }
    }
    Ok(())
}

/// Reads the TOML file into a layer; unknown keys are refused.
fn read_file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&origin, format!("cannot read: {e}")))?;
    parse_file_layer(&text, &origin)
}

fn parse_file_layer(text: &str, origin: &str) -> Result<Layer, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::new(origin, e.to_string().trim_end()))?;
    let mut layer = Layer::default();
    for (key, value) in &table {
        match (key.as_str(), value) {
            ("quality", toml::Value::Table(section)) => {
                for (name, value) in section {
                    let key = format!("quality.{name}");
                    layer.set(&key, &scalar_text(value, &key, origin)?, origin)?;
                }
            }
            ("peers", toml::Value::Array(entries)) => {
                let mut peers = Vec::new();
                for (index, entry) in entries.iter().enumerate() {
                    peers.push(parse_peer_entry(entry, index, origin)?);
                }
                layer.peers = Some(Sourced {
                    value: peers,
                    origin: origin.to_owned(),
                });
            }
            ("reconcile", toml::Value::Table(section)) => {
                for (name, value) in section {
                    let key = format!("reconcile.{name}");
                    layer.set(&key, &scalar_text(value, &key, origin)?, origin)?;
                }
            }
            ("checkpoint", toml::Value::Table(section)) => {
                for (name, value) in section {
                    let key = format!("checkpoint.{name}");
                    layer.set(&key, &scalar_text(value, &key, origin)?, origin)?;
                }
            }
            ("quality" | "peers" | "reconcile" | "checkpoint", _) => {
                return Err(ConfigError::new(
                    origin,
                    format!("{key}: has the wrong type"),
                ))
            }
            _ => layer.set(key, &scalar_text(value, key, origin)?, origin)?,
        }
    }
    Ok(layer)
}

fn parse_peer_entry(
    entry: &toml::Value,
    index: usize,
    origin: &str,
) -> Result<PeerConfig, ConfigError> {
    let at = format!("peers[{index}]");
    let table = entry
        .as_table()
        .ok_or_else(|| ConfigError::new(origin, format!("{at}: must be a table with `url`")))?;
    let mut url = None;
    let mut name = None;
    for (key, value) in table {
        let text = value
            .as_str()
            .ok_or_else(|| ConfigError::new(origin, format!("{at}.{key}: must be a string")))?;
        match key.as_str() {
            "url" => {
                url = Some(
                    parse_base_url(text)
                        .map_err(|p| ConfigError::new(origin, format!("{at}.url: {p}")))?,
                )
            }
            "name" => {
                if text.is_empty() {
                    return Err(ConfigError::new(
                        origin,
                        format!("{at}.name: must not be empty"),
                    ));
                }
                name = Some(text.to_owned());
            }
            _ => {
                return Err(ConfigError::new(
                    origin,
                    format!("{at}: unknown key `{key}`"),
                ))
            }
        }
    }
    let url = url.ok_or_else(|| ConfigError::new(origin, format!("{at}.url: is required")))?;
    Ok(PeerConfig::new(url, name))
}

fn scalar_text(value: &toml::Value, key: &str, origin: &str) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        _ => Err(ConfigError::new(
            origin,
            format!("{key}: must be a string or a number"),
        )),
    }
}

/// One group of a Prometheus `file_sd` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: HashMap<String, String>,
}

/// Reads a peers file in Prometheus `file_sd` JSON format.
pub fn read_peers_file(path: &Path) -> Result<Vec<PeerConfig>, ConfigError> {
    let origin = format!("peers file {}", path.display());
    let text =
        std::fs::read(path).map_err(|e| ConfigError::new(&origin, format!("cannot read: {e}")))?;
    parse_peers_file(&text, &origin)
}

fn parse_peers_file(text: &[u8], origin: &str) -> Result<Vec<PeerConfig>, ConfigError> {
    let groups: Vec<TargetGroup> = serde_json::from_slice(text)
        .map_err(|e| ConfigError::new(origin, format!("not a file_sd target list: {e}")))?;
    let mut peers = Vec::new();
    for (index, group) in groups.into_iter().enumerate() {
        let scheme = group
            .labels
            .get("__scheme__")
            .map_or("http", String::as_str);
        let prefix = group.labels.get("__path__").map_or("", String::as_str);
        let name = group.labels.get("name");
        if name.is_some() && group.targets.len() > 1 {
            return Err(ConfigError::new(
                origin,
                format!(
                    "group {index}: label `name` can name only one target, not {}",
                    group.targets.len()
                ),
            ));
        }
        for target in &group.targets {
            let text = format!("{scheme}://{target}{prefix}");
            let url = parse_base_url(&text).map_err(|p| {
                ConfigError::new(origin, format!("group {index}: target {target:?}: {p}"))
            })?;
            peers.push(PeerConfig::new(url, name.cloned()));
        }
    }
    Ok(peers)
}

/// Parses a node's base URL: http(s), a host, an optional path prefix, no query.
pub fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    let mut url = url;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// `http://10.0.0.7:8100/nova` → `10.0.0.7:8100/nova`.
fn url_without_scheme(url: &Url) -> String {
    let text = url.as_str();
    let rest = &text[url.scheme().len() + 3..];
    rest.trim_end_matches('/').to_owned()
}

fn parse_weight(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(w) if w.is_finite() && w >= 0.0 => Ok(w),
        _ => Err(format!("{text:?} is not a non-negative number")),
    }
}

fn parse_nonzero_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?} must be greater than 0")),
        d => Ok(d),
    }
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} is not a positive whole number")),
    }
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
        flags: Vec<(&'static str, String, &'static str)>,
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
            flag_peers: vec![],
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
        let flags = vec![("interval", "12s".to_owned(), "--interval")];
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
        let cases: [Case<'_>; 8] = [
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
            ("", &[], "node: the local node's URL is required"),
        ];
        for (file, vars, expected) in cases {
            let err = load_with(Some(file), vec![], vars).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "for {file:?}: {err:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn file_errors_name_the_file() {
        let err = load_with(Some("interval = \"soon\"\n"), vec![], &[]).unwrap_err();
        assert!(err.origin.ends_with("peerscope.toml"), "{err}");
    }

    #[test]
    fn reads_a_file_sd_peers_file() {
        let text = br#"[{"targets": ["10.0.0.5:8100", "10.0.0.6:8100"]},
                        {"targets": ["10.0.0.7:8100"], "labels": {"__scheme__": "https", "__path__": "/nova", "name": "nova-g"}}]"#;
        let peers = parse_peers_file(text, "peers.json").unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[0].url.as_str(), "http://10.0.0.5:8100/");
        assert_eq!(peers[2].label, "nova-g");
        assert_eq!(peers[2].url.as_str(), "https://10.0.0.7:8100/nova");
        let err = parse_peers_file(
            br#"[{"targets": ["a:1", "b:2"], "labels": {"name": "x"}}]"#,
            "p",
        )
        .unwrap_err();
        assert!(err.problem.contains("can name only one target"), "{err}");
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
}
