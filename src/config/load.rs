//! Loading: the sources layered onto one [`Config`] — defaults, the seed's variables, the
//! file, `PEERSCOPE_*` variables, flags — each value parsed by its key, then the rules
//! that span several keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::duration::format_duration;
use super::keys::{env_variable, DefaultValue, Key, Value, KEYS};
use super::*;

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
    // A repeated list flag (`--peer`, `--dns-server`) gives the whole list: its values
    // are joined, in order, and applied once.
    let mut flag_lists: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
    for (name, text) in &sources.flags {
        let key = known(name)?;
        let origin = format!("flag --{}", key.flag.unwrap_or(key.name));
        match key.value {
            Value::PeerList | Value::List(_) => {
                flag_lists.entry(key.name).or_default().push(text.as_str())
            }
            Value::Scalar(_) | Value::Path(_) => builder.apply(key, text, &origin)?,
        }
    }
    for (name, texts) in flag_lists {
        let key = known(name)?;
        let origin = format!("flag --{}", key.flag.unwrap_or(key.name));
        builder.apply(key, &texts.join(","), &origin)?;
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
            Value::PeerList => {
                let (peers, dns) = parse_peer_list(text).map_err(fail)?;
                self.config.peers = peers.into();
                self.config.discovery.dns = dns;
            }
            Value::Scalar(_) | Value::Path(_) | Value::List(_) => {
                key.apply(&mut self.config, text).map_err(fail)?
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

    fn set_peers(&mut self, (peers, dns): PeerList, source: &str, text: &str) {
        self.config.peers = peers.into();
        self.config.discovery.dns = dns;
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
        let mut peers = self.config.peers.to_vec();
        if let Some(path) = &self.config.peers_file {
            peers.extend(peers_file::read(path)?);
        }
        if let Some(path) = &self.config.web_config_file {
            self.config.web = web::read(path)?;
        }
        // Peers with the same settings share one transport (and so one TLS client).
        let mut built: BTreeMap<transport::PeerAccess, Arc<transport::Transport>> = BTreeMap::new();
        for peer in &mut peers {
            let own = peer.access.as_deref().cloned().unwrap_or_default();
            let access = own.over(&self.config.pull);
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
        self.config.peers = peers.into();
        if self.config.discovery.is_on() {
            let access = transport::PeerAccess::default().over(&self.config.pull);
            self.config.discovery.transport = match built.get(&access) {
                Some(transport) => Arc::clone(transport),
                None => Arc::new(
                    transport::build(&access)
                        .map_err(|problem| ConfigError::new("discovery ([pull])", problem))?,
                ),
            };
        }
        check_rules(&self.config, &self.origins)?;
        Ok(Explained {
            config: self.config,
            origins: self.origins,
        })
    }
}

/// A peer list: the peers it names, and the DNS names that name more (SPEC §10).
pub(crate) type PeerList = (Vec<PeerConfig>, Vec<discovery::DnsSource>);

/// Comma-separated `[NAME=]URL` entries, and `dns+`/`dnssrv+` addresses.
fn parse_peer_list(list: &str) -> Result<PeerList, String> {
    let mut peers = Vec::new();
    let mut dns = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if let Some(source) = discovery::dns_source(entry) {
            dns.push(source?);
            continue;
        }
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
    Ok((peers, dns))
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
    for peer in config.peers.iter() {
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
