//! The table of the metric families peerscope exports (its own, then the standard
//! `process_*` ones read by `process.rs`): name, type, label names and help, in exposition
//! order.
//! The exposition writes samples only through these entries, a unit test below holds the
//! table equal to `contracts/metrics@1.yaml`, and `tests/contract.rs` holds that equal to a
//! real scrape — so a family is named, typed and described in exactly one place in code.

/// A family's type, as the exposition's `# TYPE` line says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric family.
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    /// The full name, `peerscope_` included.
    pub name: &'static str,
    pub(crate) kind: Kind,
    /// Label names of every series (histograms add `le` to their buckets).
    pub(crate) labels: &'static [&'static str],
    pub help: &'static str,
}

pub(crate) const PEER_POLLS_TOTAL: Family = Family {
    name: "peerscope_peer_polls_total",
    kind: Kind::Counter,
    labels: &["peer"],
    help: "Pulls of the peer's summary attempted.",
};
pub const PEER_POLL_FAILURES_TOTAL: Family = Family {
    name: "peerscope_peer_poll_failures_total",
    kind: Kind::Counter,
    labels: &["peer", "reason"],
    help: "Failed pulls of the peer's summary, by reason: timeout, connect, tls, http_status, redirect, body_too_large, decode, schema, unsupported_version, identity.",
};
pub(crate) const PEER_POLL_DURATION_SECONDS: Family = Family {
    name: "peerscope_peer_poll_duration_seconds",
    kind: Kind::Histogram,
    labels: &["peer"],
    help: "Duration of every pull of the peer's summary, failed ones included.",
};
pub(crate) const PEER_UP: Family = Family {
    name: "peerscope_peer_up",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "1 if the last pull of the peer succeeded, else 0.",
};
pub(crate) const PEER_LAST_SUCCESS_TIMESTAMP_SECONDS: Family = Family {
    name: "peerscope_peer_last_success_timestamp_seconds",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "Unix time of the last successful pull of the peer.",
};
pub(crate) const PEER_SUCCESS_RATIO: Family = Family {
    name: "peerscope_peer_success_ratio",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "Successful pulls / pull attempts in the window.",
};
pub(crate) const PEER_LATENCY_P95_SECONDS: Family = Family {
    name: "peerscope_peer_latency_p95_seconds",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "95th percentile (nearest rank) of successful pull durations in the window.",
};
pub(crate) const PEER_LATENCY_SCORE: Family = Family {
    name: "peerscope_peer_latency_score",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "1 - min(latency_p95 / timeout, 1); 0 without a successful pull in the window.",
};
pub(crate) const PEER_FRESHNESS: Family = Family {
    name: "peerscope_peer_freshness",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "exp(-age / (3 x interval)), age since the last successful pull; 0 if never.",
};
pub(crate) const PEER_QUALITY: Family = Family {
    name: "peerscope_peer_quality",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "Weighted mean of success ratio, latency score and freshness, in [0, 1].",
};
pub(crate) const PEER_REPORTED_VALUE: Family = Family {
    name: "peerscope_peer_reported_value",
    kind: Kind::Gauge,
    labels: &["peer", "field"],
    help: "A numeric field of the metrics in the peer's last valid summary.",
};
pub(crate) const PEER_STATE_DIVERGENT: Family = Family {
    name: "peerscope_peer_state_divergent",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "1 if the peer's fresh state root differs from the local node's fresh root, else 0.",
};
pub(crate) const PEER_IDENTITY_CONTESTED: Family = Family {
    name: "peerscope_peer_identity_contested",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "1 if another live member reports the same node_id as the peer: both are flagged and neither votes in a reconciliation decision, else 0.",
};
pub(crate) const PEER_DIVERGENCE_STREAK: Family = Family {
    name: "peerscope_peer_divergence_streak",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "Consecutive cycles in which the peer was divergent.",
};
pub(crate) const PEER_CLOCK_SKEW_SECONDS: Family = Family {
    name: "peerscope_peer_clock_skew_seconds",
    kind: Kind::Gauge,
    labels: &["peer"],
    help: "Payload timestamp minus receive time, from the last successful pull.",
};
pub(crate) const PEERS_CONFIGURED: Family = Family {
    name: "peerscope_peers_configured",
    kind: Kind::Gauge,
    labels: &[],
    help: "Peers in the configuration.",
};
pub(crate) const PEERS_LIVE: Family = Family {
    name: "peerscope_peers_live",
    kind: Kind::Gauge,
    labels: &[],
    help: "Peers with a successful pull within live_max_age.",
};
pub(crate) const PEERS_OBSERVED: Family = Family {
    name: "peerscope_peers_observed",
    kind: Kind::Gauge,
    labels: &[],
    help: "Peers this sidecar observes: the sample its figures and decisions come from.",
};
pub(crate) const OBSERVERS_PER_PEER: Family = Family {
    name: "peerscope_observers_per_peer",
    kind: Kind::Gauge,
    labels: &[],
    help:
        "Observers per peer in force (rendezvous hashing); 0 = every sidecar observes every peer.",
};
pub(crate) const NOVELTY: Family = Family {
    name: "peerscope_novelty",
    kind: Kind::Gauge,
    labels: &[],
    help: "clip(stddev of the live peers' g_star / 0.5, 0, 1); 0 with fewer than 2 live peers.",
};
pub(crate) const G_STAR_STDDEV: Family = Family {
    name: "peerscope_g_star_stddev",
    kind: Kind::Gauge,
    labels: &[],
    help: "Population standard deviation of the live peers' latest g_star.",
};
pub(crate) const DIVERGENCE_RATIO: Family = Family {
    name: "peerscope_divergence_ratio",
    kind: Kind::Gauge,
    labels: &[],
    help: "Divergent live peers / live peers with a known root; 0 if none.",
};
pub(crate) const STATE_PEERS: Family = Family {
    name: "peerscope_state_peers",
    kind: Kind::Gauge,
    labels: &["relation"],
    help: "Peers by how their state root relates to the local node's.",
};
pub(crate) const NODE_UP: Family = Family {
    name: "peerscope_node_up",
    kind: Kind::Gauge,
    labels: &[],
    help: "1 if the last pull of the local node succeeded, else 0.",
};
pub(crate) const NODE_POLLS_TOTAL: Family = Family {
    name: "peerscope_node_polls_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Pulls of the local node's summary attempted.",
};
pub const NODE_POLL_FAILURES_TOTAL: Family = Family {
    name: "peerscope_node_poll_failures_total",
    kind: Kind::Counter,
    labels: &["reason"],
    help: "Failed pulls of the local node's summary, by reason: timeout, connect, tls, http_status, redirect, body_too_large, decode, schema, unsupported_version, identity.",
};
pub(crate) const NODE_REPORTED_VALUE: Family = Family {
    name: "peerscope_node_reported_value",
    kind: Kind::Gauge,
    labels: &["field"],
    help: "A numeric field of the metrics in the local node's last valid summary.",
};
pub(crate) const RECONCILE_REQUESTS_TOTAL: Family = Family {
    name: "peerscope_reconcile_requests_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Reconciliation requests sent to the local node.",
};
pub(crate) const RECONCILE_FAILURES_TOTAL: Family = Family {
    name: "peerscope_reconcile_failures_total",
    kind: Kind::Counter,
    labels: &["reason"],
    help: "Reconciliation requests that failed, by reason.",
};
pub(crate) const RECONCILE_SUPPRESSED_TOTAL: Family = Family {
    name: "peerscope_reconcile_suppressed_total",
    kind: Kind::Counter,
    labels: &["reason"],
    help: "Cycles in which a warranted reconciliation request was not sent, by reason.",
};
pub(crate) const RECONCILE_IN_PROGRESS: Family = Family {
    name: "peerscope_reconcile_in_progress",
    kind: Kind::Gauge,
    labels: &[],
    help: "1 while a reconciliation request is awaiting the node's answer.",
};
pub(crate) const RECONCILE_LAST_SUCCESS_TIMESTAMP_SECONDS: Family = Family {
    name: "peerscope_reconcile_last_success_timestamp_seconds",
    kind: Kind::Gauge,
    labels: &[],
    help: "Unix time of the last reconciliation request the node accepted.",
};
pub(crate) const RECONCILE_BACKOFF_SECONDS: Family = Family {
    name: "peerscope_reconcile_backoff_seconds",
    kind: Kind::Gauge,
    labels: &[],
    help: "Seconds until a failed reconciliation may be retried; 0 when not backing off.",
};
pub(crate) const RECONCILE_CONSECUTIVE_FAILURES: Family = Family {
    name: "peerscope_reconcile_consecutive_failures",
    kind: Kind::Gauge,
    labels: &[],
    help: "Reconciliation requests in a row that failed or had no effect; 0 when the node accepts one.",
};
pub(crate) const RECONCILE_CONFIRMATIONS_TOTAL: Family = Family {
    name: "peerscope_reconcile_confirmations_total",
    kind: Kind::Counter,
    labels: &["outcome"],
    help: "Confirmations on random members of the whole membership that finished, by outcome: confirmed, refuted, undecided.",
};
pub(crate) const RECONCILE_CONFIRMATION_PULLS_TOTAL: Family = Family {
    name: "peerscope_reconcile_confirmation_pulls_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Members pulled to confirm a reconciliation target (random draws from the whole membership).",
};
pub(crate) const RECONCILE_CONFIRMATION_IN_PROGRESS: Family = Family {
    name: "peerscope_reconcile_confirmation_in_progress",
    kind: Kind::Gauge,
    labels: &[],
    help: "1 while a reconciliation target is being confirmed on random members.",
};
pub(crate) const RECONCILE_CONFIRMATION_STATISTIC: Family = Family {
    name: "peerscope_reconcile_confirmation_statistic",
    kind: Kind::Gauge,
    labels: &[],
    help: "The running or last confirmation's test statistic: sampled votes for the target minus the rest (confirmed at 35, refuted at -25).",
};
pub(crate) const RECONCILE_PROBE_PULLS_TOTAL: Family = Family {
    name: "peerscope_reconcile_probe_pulls_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Pulls of the roaming probe: one random member per interval beside the observed peers, so that a sampled sidecar sees a divergence its few observed peers miss.",
};
pub(crate) const CONFIG_LAST_RELOAD_SUCCESSFUL: Family = Family {
    name: "peerscope_config_last_reload_successful",
    kind: Kind::Gauge,
    labels: &[],
    help: "1 if the last configuration (re)load succeeded, else 0.",
};
pub(crate) const CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS: Family = Family {
    name: "peerscope_config_last_reload_success_timestamp_seconds",
    kind: Kind::Gauge,
    labels: &[],
    help: "Unix time of the last successful configuration (re)load.",
};
pub(crate) const DISCOVERY_REFRESHES_TOTAL: Family = Family {
    name: "peerscope_discovery_refreshes_total",
    kind: Kind::Counter,
    labels: &["source", "outcome"],
    help: "Refreshes of a discovery source (a dns+ or dnssrv+ address, or the http_sd URL), by outcome: ok, or the failure's class (timeout, servfail, refused, unreachable, error; for http_sd the pull failure reasons and bad_body). A failed refresh keeps the source's last members.",
};
pub(crate) const DISCOVERY_MEMBERS: Family = Family {
    name: "peerscope_discovery_members",
    kind: Kind::Gauge,
    labels: &["source"],
    help: "Members of the discovery source's last good answer.",
};
pub(crate) const CONFIG_RELOADS_TOTAL: Family = Family {
    name: "peerscope_config_reloads_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Configuration reloads attempted (changes, SIGHUP, POST /-/reload).",
};
pub(crate) const CONFIG_RELOAD_FAILURES_TOTAL: Family = Family {
    name: "peerscope_config_reload_failures_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Configuration reloads refused; the previous configuration stayed in force.",
};
pub(crate) const HTTP_CONNECTIONS_SHED_TOTAL: Family = Family {
    name: "peerscope_http_connections_shed_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Client connections closed because the server's connection limit was reached: the oldest idle one, or the new one when every connection was inside a request.",
};
pub(crate) const HTTP_BASIC_AUTH_CHECKS_TOTAL: Family = Family {
    name: "peerscope_http_basic_auth_checks_total",
    kind: Kind::Counter,
    labels: &[],
    help: "bcrypt checks run for HTTP basic auth; a user and password once verified or refused is remembered and needs none.",
};
pub(crate) const HTTP_BASIC_AUTH_THROTTLED_TOTAL: Family = Family {
    name: "peerscope_http_basic_auth_throttled_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Requests answered 429 without a password check: the client had too many failed logins and the budget for such clients was spent.",
};
pub(crate) const CHECKPOINT_WRITES_TOTAL: Family = Family {
    name: "peerscope_checkpoint_writes_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Checkpoints written.",
};
pub(crate) const CHECKPOINT_WRITE_FAILURES_TOTAL: Family = Family {
    name: "peerscope_checkpoint_write_failures_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Checkpoint writes that failed.",
};
pub(crate) const CHECKPOINT_LAST_SUCCESS_TIMESTAMP_SECONDS: Family = Family {
    name: "peerscope_checkpoint_last_success_timestamp_seconds",
    kind: Kind::Gauge,
    labels: &[],
    help: "Unix time of the last checkpoint written.",
};
pub(crate) const CHECKPOINT_RESTORE_FAILURES_TOTAL: Family = Family {
    name: "peerscope_checkpoint_restore_failures_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Checkpoints found unusable at start and moved aside.",
};
pub(crate) const HTTP_REQUESTS_TOTAL: Family = Family {
    name: "peerscope_http_requests_total",
    kind: Kind::Counter,
    labels: &["handler", "code"],
    help: "HTTP requests answered, by handler (the endpoint's path, `other` for any other) and status code.",
};
pub(crate) const CYCLES_TOTAL: Family = Family {
    name: "peerscope_cycles_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Poll cycles completed since start.",
};
pub(crate) const BUILD_INFO: Family = Family {
    name: "peerscope_build_info",
    kind: Kind::Gauge,
    labels: &[
        "version",
        "revision",
        "rustc_version",
        "os",
        "arch",
        "build_date",
    ],
    help: "This peerscope build: version, git revision, compiler, target and build date; always 1.",
};

pub(crate) const PROCESS_CPU_SECONDS_TOTAL: Family = Family {
    name: "process_cpu_seconds_total",
    kind: Kind::Counter,
    labels: &[],
    help: "Total user and system CPU time spent in seconds.",
};
pub(crate) const PROCESS_MAX_FDS: Family = Family {
    name: "process_max_fds",
    kind: Kind::Gauge,
    labels: &[],
    help: "Maximum number of open file descriptors.",
};
pub(crate) const PROCESS_OPEN_FDS: Family = Family {
    name: "process_open_fds",
    kind: Kind::Gauge,
    labels: &[],
    help: "Number of open file descriptors.",
};
pub(crate) const PROCESS_RESIDENT_MEMORY_BYTES: Family = Family {
    name: "process_resident_memory_bytes",
    kind: Kind::Gauge,
    labels: &[],
    help: "Resident memory size in bytes.",
};
pub(crate) const PROCESS_START_TIME_SECONDS: Family = Family {
    name: "process_start_time_seconds",
    kind: Kind::Gauge,
    labels: &[],
    help: "Start time of the process since unix epoch in seconds.",
};
pub(crate) const PROCESS_THREADS: Family = Family {
    name: "process_threads",
    kind: Kind::Gauge,
    labels: &[],
    help: "Number of OS threads in the process.",
};
pub(crate) const PROCESS_VIRTUAL_MEMORY_BYTES: Family = Family {
    name: "process_virtual_memory_bytes",
    kind: Kind::Gauge,
    labels: &[],
    help: "Virtual memory size in bytes.",
};

/// Every family, in exposition order.
#[cfg(test)] // the catalogue the tests hold to contracts/metrics@1.yaml
pub(crate) const ALL: &[&Family] = &[
    &PEER_POLLS_TOTAL,
    &PEER_POLL_FAILURES_TOTAL,
    &PEER_POLL_DURATION_SECONDS,
    &PEER_UP,
    &PEER_LAST_SUCCESS_TIMESTAMP_SECONDS,
    &PEER_SUCCESS_RATIO,
    &PEER_LATENCY_P95_SECONDS,
    &PEER_LATENCY_SCORE,
    &PEER_FRESHNESS,
    &PEER_QUALITY,
    &PEER_REPORTED_VALUE,
    &PEER_STATE_DIVERGENT,
    &PEER_IDENTITY_CONTESTED,
    &PEER_DIVERGENCE_STREAK,
    &PEER_CLOCK_SKEW_SECONDS,
    &PEERS_CONFIGURED,
    &PEERS_LIVE,
    &PEERS_OBSERVED,
    &OBSERVERS_PER_PEER,
    &NOVELTY,
    &G_STAR_STDDEV,
    &DIVERGENCE_RATIO,
    &STATE_PEERS,
    &NODE_UP,
    &NODE_POLLS_TOTAL,
    &NODE_POLL_FAILURES_TOTAL,
    &NODE_REPORTED_VALUE,
    &RECONCILE_REQUESTS_TOTAL,
    &RECONCILE_FAILURES_TOTAL,
    &RECONCILE_SUPPRESSED_TOTAL,
    &RECONCILE_IN_PROGRESS,
    &RECONCILE_LAST_SUCCESS_TIMESTAMP_SECONDS,
    &RECONCILE_BACKOFF_SECONDS,
    &RECONCILE_CONSECUTIVE_FAILURES,
    &RECONCILE_CONFIRMATIONS_TOTAL,
    &RECONCILE_CONFIRMATION_PULLS_TOTAL,
    &RECONCILE_CONFIRMATION_IN_PROGRESS,
    &RECONCILE_CONFIRMATION_STATISTIC,
    &RECONCILE_PROBE_PULLS_TOTAL,
    &DISCOVERY_REFRESHES_TOTAL,
    &DISCOVERY_MEMBERS,
    &CONFIG_LAST_RELOAD_SUCCESSFUL,
    &CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
    &CONFIG_RELOADS_TOTAL,
    &CONFIG_RELOAD_FAILURES_TOTAL,
    &HTTP_CONNECTIONS_SHED_TOTAL,
    &HTTP_BASIC_AUTH_CHECKS_TOTAL,
    &HTTP_BASIC_AUTH_THROTTLED_TOTAL,
    &CHECKPOINT_WRITES_TOTAL,
    &CHECKPOINT_WRITE_FAILURES_TOTAL,
    &CHECKPOINT_LAST_SUCCESS_TIMESTAMP_SECONDS,
    &CHECKPOINT_RESTORE_FAILURES_TOTAL,
    &HTTP_REQUESTS_TOTAL,
    &CYCLES_TOTAL,
    &BUILD_INFO,
    &PROCESS_CPU_SECONDS_TOTAL,
    &PROCESS_MAX_FDS,
    &PROCESS_OPEN_FDS,
    &PROCESS_RESIDENT_MEMORY_BYTES,
    &PROCESS_START_TIME_SECONDS,
    &PROCESS_THREADS,
    &PROCESS_VIRTUAL_MEMORY_BYTES,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_contract_catalogue() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contracts/metrics@1.yaml");
        let document: yaml_serde::Value =
            yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let catalogue: Vec<(String, String, Vec<String>, String)> = document["families"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|f| {
                let text = |key: &str| f[key].as_str().unwrap().to_owned();
                let labels = f["labels"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_owned())
                    .collect();
                (text("name"), text("type"), labels, text("help"))
            })
            .collect();
        let table: Vec<(String, String, Vec<String>, String)> = ALL
            .iter()
            .map(|f| {
                let labels = f.labels.iter().map(|l| l.to_string()).collect();
                (
                    f.name.to_owned(),
                    f.kind.as_str().to_owned(),
                    labels,
                    f.help.to_owned(),
                )
            })
            .collect();
        assert_eq!(table, catalogue);
    }
}
