//! The table of configuration keys: one entry per key, and everything else — the layering
//! of flags, `PEERSCOPE_*` variables, the file and the seed's `NOVA_FED_*` variables, the
//! command-line flags, the defaults, `peerscope check` and docs/configuration.md's
//! table — is derived from it. Adding a key is one entry here (plus its field in
//! [`Config`] and, where it spans keys, a rule in `check_rules`).

use super::parse::{
    api_path, base_url, boolean, duration, growth_factor, http_url, listen_address, log_filter,
    log_level, metrics_path, name, nonzero_duration, observers_per_peer, one_of, positive, weight,
};

use super::{discovery, transport};
use super::{LogColor, LogFormat, LogRotation, Mode, PerPeer, Policy};

/// Where the HTTP server listens by default (SPEC §2); the demo starts there too.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9478";

/// The key called `name`, if there is one.
pub(crate) fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

/// Every key, in the order docs/configuration.md lists them.
pub static KEYS: &[Key] = &[
    Key {
        name: "node",
        flag: Some("node"),
        seed_variables: &[],
        default: DefaultValue::Required,
        restart: false,
        doc: "the local node's base URL",
        value: Value::Scalar(|c, t| base_url(t).map(|v| c.node = v)),
    },
    Key {
        name: "peers",
        flag: Some("peer"),
        seed_variables: &["NOVA_FED_PEERS"],
        default: DefaultValue::Absent,
        restart: false,
        doc: "the peers: `[[peers]]` tables with `url` and optional `name` in the file; comma-separated `[NAME=]URL` in variables; `--peer [NAME=]URL`, repeatable. `name` is the `peer` label, else the URL without scheme",
        value: Value::PeerList,
    },
    Key {
        name: "name",
        flag: Some("name"),
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "this node's name among the members, as the peers list names it (default: the local node's `node_id`, known after its first pull); a listed peer of this name is skipped",
        value: Value::Scalar(|c, t| name(t).map(|v| c.name = v)),
    },
    Key {
        name: "observers_per_peer",
        flag: Some("observers-per-peer"),
        seed_variables: &[],
        default: DefaultValue::Text("auto"),
        restart: false,
        doc: "K: how many members observe each peer, chosen by rendezvous hashing; 0 = every sidecar observes every peer; `auto` = 0 up to 50 members, else 8",
        value: Value::Scalar(|c, t| observers_per_peer(t).map(|v| c.observers_per_peer = v)),
    },
    Key {
        name: "metrics.created_samples",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("false"),
        restart: false,
        doc: "`true`: OpenMetrics scrapes carry a `_created` sample per counter and histogram (Prometheus before 2.50 stores each as one more series)",
        value: Value::Scalar(|c, t| {
            boolean(t).map(|v| c.metrics.created_samples = v)
        }),
    },
    Key {
        name: "metrics.path",
        flag: Some("web.telemetry-path"),
        seed_variables: &[],
        default: DefaultValue::Text("/metrics"),
        restart: true,
        doc: "the path the metrics are served at",
        value: Value::Scalar(|c, t| metrics_path(t).map(|v| c.metrics.path = v)),
    },
    Key {
        name: "metrics.disable_exporter_metrics",
        flag: Some("web.disable-exporter-metrics"),
        seed_variables: &[],
        default: DefaultValue::Text("false"),
        restart: true,
        doc: "`true` (the flag alone says it): leave out the sidecar's figures about itself — `process_*` and `peerscope_http_requests_total` — as node_exporter's flag does",
        value: Value::Scalar(|c, t| {
            boolean(t)
                .map(|v| c.metrics.disable_exporter_metrics = v)
        }),
    },
    Key {
        name: "metrics.per_peer",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("full"),
        restart: false,
        doc: "`full` or `lean`: lean keeps what a verdict needs (polls, failures, up, success ratio, p95, quality, divergent, streak)",
        value: Value::Scalar(|c, t| {
            one_of(t, &[("full", PerPeer::Full), ("lean", PerPeer::Lean)])
                .map(|v| c.metrics.per_peer = v)
        }),
    },
    Key {
        name: "listen",
        flag: Some("web.listen-address"),
        seed_variables: &[],
        default: DefaultValue::Text(DEFAULT_LISTEN),
        restart: true,
        doc: "HTTP server address: `HOST:PORT`, `:PORT` for every IPv4 interface (as node_exporter takes it), or a name resolved at load",
        value: Value::Scalar(|c, t| listen_address(t).map(|v| c.listen = v)),
    },
    Key {
        name: "systemd_socket",
        flag: Some("web.systemd-socket"),
        seed_variables: &[],
        default: DefaultValue::Text("false"),
        restart: true,
        doc: "`true` (the flag alone says it): serve on the socket systemd passes (socket activation, `LISTEN_FDS`; see deploy/systemd/peerscope.socket) instead of binding `listen`",
        value: Value::Scalar(|c, t| {
            boolean(t).map(|v| c.systemd_socket = v)
        }),
    },
    Key {
        name: "interval",
        flag: Some("interval"),
        seed_variables: &["NOVA_FED_SYNC_INTERVAL"],
        default: DefaultValue::Text("30s"),
        restart: false,
        doc: "time between cycles",
        value: Value::Scalar(|c, t| nonzero_duration(t).map(|v| c.interval = v)),
    },
    Key {
        name: "timeout",
        flag: Some("timeout"),
        seed_variables: &["NOVA_FED_SYNC_TIMEOUT"],
        default: DefaultValue::Text("2.5s"),
        restart: false,
        doc: "limit of one pull, headers and body; must be < interval",
        value: Value::Scalar(|c, t| nonzero_duration(t).map(|v| c.timeout = v)),
    },
    Key {
        name: "window",
        flag: Some("window"),
        seed_variables: &[],
        default: DefaultValue::Text("5m"),
        restart: false,
        doc: "rolling window; must be ≥ interval",
        value: Value::Scalar(|c, t| duration(t).map(|v| c.window = v)),
    },
    Key {
        name: "live_max_age",
        flag: Some("live-max-age"),
        seed_variables: &[],
        default: DefaultValue::Text("90s"),
        restart: false,
        doc: "a peer is live with a successful pull this recent",
        value: Value::Scalar(|c, t| nonzero_duration(t).map(|v| c.live_max_age = v)),
    },
    Key {
        name: "peers_file",
        flag: Some("peers-file"),
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "Prometheus `file_sd` list of peers (JSON or YAML), added to the peer list",
        value: Value::Path(|c, p| c.peers_file = Some(p)),
    },
    Key {
        name: "peers_http_sd",
        flag: Some("peers-http-sd"),
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "Prometheus http_sd URL: the `file_sd` JSON list over HTTP, fetched with the peer TLS settings every `discovery_refresh`",
        value: Value::Scalar(|c, t| http_url(t).map(|v| c.discovery.http_sd = Some(v))),
    },
    Key {
        name: "discovery_refresh",
        flag: Some("discovery-refresh"),
        seed_variables: &[],
        default: DefaultValue::Text("30s"),
        restart: false,
        doc: "how often DNS names (`dns+`, `dnssrv+` peer addresses) and `peers_http_sd` are looked up again; a failed lookup keeps that source's last members",
        value: Value::Scalar(|c, t| nonzero_duration(t).map(|v| c.discovery.refresh = v)),
    },
    Key {
        name: "dns_servers",
        flag: Some("dns-server"),
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: true,
        doc: "DNS servers (`ADDR[:PORT]`, comma-separated; the flag repeats) for discovery and for the host names of every pull; default: the system's resolver configuration",
        value: Value::List(|c, t| discovery::dns_servers(t).map(|v| c.discovery.dns_servers = v)),
    },
    Key {
        name: "quality.w_success",
        flag: None,
        seed_variables: &["NOVA_FED_QUALITY_W1"],
        default: DefaultValue::Text("0.5"),
        restart: false,
        doc: "weight of the success ratio",
        value: Value::Scalar(|c, t| weight(t).map(|v| c.weights.success = v)),
    },
    Key {
        name: "quality.w_latency",
        flag: None,
        seed_variables: &["NOVA_FED_QUALITY_W2"],
        default: DefaultValue::Text("0.3"),
        restart: false,
        doc: "weight of the latency score",
        value: Value::Scalar(|c, t| weight(t).map(|v| c.weights.latency = v)),
    },
    Key {
        name: "quality.w_freshness",
        flag: None,
        seed_variables: &["NOVA_FED_QUALITY_W3"],
        default: DefaultValue::Text("0.2"),
        restart: false,
        doc: "weight of freshness",
        value: Value::Scalar(|c, t| weight(t).map(|v| c.weights.freshness = v)),
    },
    Key {
        name: "body_limit",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("1048576"),
        restart: false,
        doc: "largest summary body, bytes (enforced while streaming)",
        value: Value::Scalar(|c, t| positive(t).map(|v| c.body_limit = v)),
    },
    Key {
        name: "max_concurrent_pulls",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("256"),
        restart: false,
        doc: "pulls in flight at once",
        value: Value::Scalar(|c, t| positive(t).map(|v| c.max_concurrent_pulls = v)),
    },
    Key {
        name: "log_format",
        flag: Some("log.format"),
        seed_variables: &[],
        default: DefaultValue::Text("text"),
        restart: true,
        doc: "`logfmt` (`text` is the same) or `json`, with Prometheus' keys `time`, `level`, `source`, `msg`",
        value: Value::Scalar(|c, t| {
            one_of(
                t,
                &[
                    ("text", LogFormat::Text),
                    ("logfmt", LogFormat::Text),
                    ("json", LogFormat::Json),
                ],
            )
            .map(|v| c.log_format = v)
        }),
    },
    Key {
        name: "log_color",
        flag: Some("log-color"),
        seed_variables: &[],
        default: DefaultValue::Text("auto"),
        restart: true,
        doc: "colour in text logs on stderr: `auto` (only when stderr is a terminal and `NO_COLOR` is unset), `always` or `never`; files never have colour",
        value: Value::Scalar(|c, t| {
            one_of(
                t,
                &[
                    ("auto", LogColor::Auto),
                    ("always", LogColor::Always),
                    ("never", LogColor::Never),
                ],
            )
            .map(|v| c.log_color = v)
        }),
    },
    Key {
        name: "log_level",
        flag: Some("log.level"),
        seed_variables: &[],
        default: DefaultValue::Text("info"),
        restart: true,
        doc: "`debug`, `info`, `warn` or `error` (a finer filter: `log_filter`; a filter with `=` or `,` given here, as earlier versions took, still works)",
        value: Value::Scalar(|c, t| log_level(t).map(|v| c.log_level = v)),
    },
    Key {
        name: "log_filter",
        flag: Some("log.filter"),
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: true,
        doc: "a `tracing` filter (`info,peerscope=debug`) in place of `log_level`; `RUST_LOG` wins over both",
        value: Value::Scalar(|c, t| log_filter(t).map(|v| c.log_filter = Some(v))),
    },
    Key {
        name: "log_file",
        flag: Some("log-file"),
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: true,
        doc: "also write logs to rolling files in this directory",
        value: Value::Path(|c, p| c.log_file = Some(p)),
    },
    Key {
        name: "log_rotation",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("daily"),
        restart: true,
        doc: "`daily` or `hourly`",
        value: Value::Scalar(|c, t| {
            one_of(
                t,
                &[("hourly", LogRotation::Hourly), ("daily", LogRotation::Daily)],
            )
            .map(|v| c.log_rotation = v)
        }),
    },
    Key {
        name: "log_max_files",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("7"),
        restart: true,
        doc: "rotated log files kept",
        value: Value::Scalar(|c, t| positive(t).map(|v| c.log_max_files = v)),
    },
    Key {
        name: "admin_token_file",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: true,
        doc: "token that lets a non-loopback caller `POST /-/reload`",
        value: Value::Path(|c, p| c.admin_token_file = Some(p)),
    },
    Key {
        name: "pull.ca_file",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "CA certificates (PEM) that peers' certificates must chain to, instead of the public roots; also per peer in `[[peers]]`",
        value: Value::Path(|c, p| c.pull.ca_file = Some(p)),
    },
    Key {
        name: "pull.cert_file",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "client certificate (PEM) presented to peers (mTLS), with `key_file`; also per peer in `[[peers]]`",
        value: Value::Path(|c, p| c.pull.cert_file = Some(p)),
    },
    Key {
        name: "pull.key_file",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "private key (PEM) of `cert_file`; also per peer in `[[peers]]`",
        value: Value::Path(|c, p| c.pull.key_file = Some(p)),
    },
    Key {
        name: "pull.server_name",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "name to verify peers' certificates as, whatever host their URL names; also per peer in `[[peers]]`",
        value: Value::Scalar(|c, t| transport::server_name(t).map(|v| c.pull.server_name = Some(v))),
    },
    Key {
        name: "pull.insecure_skip_verify",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "`true`: accept any certificate from peers (a warning in the log for every peer it applies to, whenever it takes effect); also per peer in `[[peers]]`",
        value: Value::Scalar(|c, t| transport::switch(t).map(|v| c.pull.insecure_skip_verify = Some(v))),
    },
    Key {
        name: "pull.authorization_type",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "scheme of the `Authorization` header (default `Bearer`); also per peer in `[[peers]]`",
        value: Value::Scalar(|c, t| transport::authorization_type(t).map(|v| c.pull.authorization_type = Some(v))),
    },
    Key {
        name: "pull.authorization_credentials_file",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "file with the credentials sent as `Authorization: <type> <credentials>` to peers (read at load and reload, never logged); also per peer in `[[peers]]`",
        value: Value::Path(|c, p| c.pull.authorization_credentials_file = Some(p)),
    },
    Key {
        name: "web_config_file",
        flag: Some("web.config.file"),
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "web configuration (exporter-toolkit format): TLS and basic auth for every endpoint",
        value: Value::Path(|c, p| c.web_config_file = Some(p)),
    },
    Key {
        name: "reconcile.mode",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("off"),
        restart: false,
        doc: "`off`, `dry-run` or `on` (see docs/reconciliation.md)",
        value: Value::Scalar(|c, t| {
            one_of(
                t,
                &[("off", Mode::Off), ("dry-run", Mode::DryRun), ("on", Mode::On)],
            )
            .map(|v| c.reconcile.mode = v)
        }),
    },
    Key {
        name: "reconcile.policy",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("majority"),
        restart: false,
        doc: "`majority` or `any`",
        value: Value::Scalar(|c, t| {
            one_of(t, &[("majority", Policy::Majority), ("any", Policy::Any)])
                .map(|v| c.reconcile.policy = v)
        }),
    },
    Key {
        name: "reconcile.threshold",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("3"),
        restart: false,
        doc: "cycles a peer must diverge to count as evidence",
        value: Value::Scalar(|c, t| positive(t).map(|v| c.reconcile.threshold = v as u64)),
    },
    Key {
        name: "reconcile.path",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("/federation/reconcile"),
        restart: false,
        doc: "the node's API, appended to `node`",
        value: Value::Scalar(|c, t| api_path(t).map(|v| c.reconcile.path = v)),
    },
    Key {
        name: "reconcile.timeout",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("10s"),
        restart: false,
        doc: "limit of one request",
        value: Value::Scalar(|c, t| nonzero_duration(t).map(|v| c.reconcile.timeout = v)),
    },
    Key {
        name: "reconcile.cooldown",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("5m"),
        restart: false,
        doc: "quiet time after an accepted request",
        value: Value::Scalar(|c, t| duration(t).map(|v| c.reconcile.cooldown = v)),
    },
    Key {
        name: "reconcile.backoff_base",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("30s"),
        restart: false,
        doc: "first retry delay after a failure",
        value: Value::Scalar(|c, t| nonzero_duration(t).map(|v| c.reconcile.backoff_base = v)),
    },
    Key {
        name: "reconcile.backoff_factor",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("2"),
        restart: false,
        doc: "growth of the retry delay per consecutive failure (≥ 1)",
        value: Value::Scalar(|c, t| growth_factor(t).map(|v| c.reconcile.backoff_factor = v)),
    },
    Key {
        name: "reconcile.backoff_cap",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("30m"),
        restart: false,
        doc: "longest retry delay",
        value: Value::Scalar(|c, t| nonzero_duration(t).map(|v| c.reconcile.backoff_cap = v)),
    },
    Key {
        name: "reconcile.max_per_hour",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("6"),
        restart: false,
        doc: "requests in any hour, at most",
        value: Value::Scalar(|c, t| positive(t).map(|v| c.reconcile.max_per_hour = v)),
    },
    Key {
        name: "reconcile.token_file",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: false,
        doc: "file with the bearer token; read at each request, never logged (never a flag)",
        value: Value::Path(|c, p| c.reconcile.token_file = Some(p)),
    },
    Key {
        name: "checkpoint.path",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Absent,
        restart: true,
        doc: "where windows, streaks and the reconciliation state are saved (no checkpoints when absent)",
        value: Value::Path(|c, p| c.checkpoint.path = Some(p)),
    },
    Key {
        name: "checkpoint.interval",
        flag: None,
        seed_variables: &[],
        default: DefaultValue::Text("30s"),
        restart: true,
        doc: "how often to checkpoint (and always at shutdown)",
        value: Value::Scalar(|c, t| nonzero_duration(t).map(|v| c.checkpoint.interval = v)),
    },
];

mod key;
pub use key::{env_variable, DefaultValue, Key, Value, EARLIER_FLAGS};

mod restart;
#[cfg(test)]
use restart::at_path;
pub(crate) use restart::{changed_restart_keys, RestartValues};

mod markdown;
pub use markdown::markdown_table;

#[cfg(test)]
mod tests;
