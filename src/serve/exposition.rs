//! `/metrics`: the Prometheus text exposition (format 0.0.4), rendered at scrape time from
//! a [`View`], so a peer that left the configuration has no series by construction.
//! The families are catalogued in `contracts/metrics@1.yaml`; a test holds the two equal.

use std::fmt::Write;

use prometheus::{Encoder, Registry, TextEncoder};

use crate::act::{ReconcileView, RequestFailure};
use crate::figures::decision::Suppression;
use crate::figures::histogram::BUCKETS;
use crate::figures::view::{PeerView, TargetView, View};
use crate::ops::operations::OperationsState;
use crate::pull::contract::REPORTED_FIELDS;
use crate::pull::failure::FailureReason;

/// The exact content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const PREFIX: &str = "peerscope_";

/// Build facts exported as `peerscope_build_info`.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
}

impl BuildInfo {
    pub fn current() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            revision: env!("PEERSCOPE_REVISION"),
        }
    }
}

/// Renders every family. `process` holds the standard `process_*` collector.
pub fn render(
    view: &View,
    reconcile: &ReconcileView,
    operations: &OperationsState,
    build: &BuildInfo,
    process: &Registry,
) -> String {
    let mut out = Writer {
        text: String::with_capacity(4096 + view.peers.len() * 4096),
        header: None,
    };
    render_peers(&mut out, &view.peers);
    render_federation(&mut out, view);
    render_node(&mut out, &view.node);
    render_reconcile(&mut out, reconcile);
    render_operations(&mut out, operations);

    out.family(
        "build_info",
        "gauge",
        "Version and revision of this peerscope build; always 1.",
    );
    out.sample(
        "build_info",
        &[("version", build.version), ("revision", build.revision)],
        1.0,
    );

    let mut text = out.text;
    let mut process_text = Vec::new();
    match TextEncoder::new().encode(&process.gather(), &mut process_text) {
        Ok(()) => text.push_str(&String::from_utf8_lossy(&process_text)),
        Err(error) => tracing::warn!(%error, "process metrics could not be encoded"),
    }
    text
}

fn render_peers(out: &mut Writer, peers: &[PeerView]) {
    out.family(
        "peer_polls_total",
        "counter",
        "Pulls of the peer's summary attempted.",
    );
    for p in peers {
        out.sample(
            "peer_polls_total",
            &[("peer", &p.target.label)],
            p.target.polls_total as f64,
        );
    }
    out.family(
        "peer_poll_failures_total",
        "counter",
        "Failed pulls of the peer's summary, by reason.",
    );
    for p in peers {
        failure_samples(
            out,
            "peer_poll_failures_total",
            Some(&p.target.label),
            &p.target.failures_total,
        );
    }
    out.family(
        "peer_poll_duration_seconds",
        "histogram",
        "Duration of every pull of the peer's summary, failed ones included.",
    );
    let bounds: Vec<String> = BUCKETS.iter().map(f64::to_string).collect();
    for p in peers {
        let (label, t) = (p.target.label.as_str(), &p.target);
        let cumulative = t.durations.cumulative();
        for (bound, count) in bounds.iter().zip(cumulative) {
            out.sample(
                "peer_poll_duration_seconds_bucket",
                &[("peer", label), ("le", bound)],
                count as f64,
            );
        }
        out.sample(
            "peer_poll_duration_seconds_bucket",
            &[("peer", label), ("le", "+Inf")],
            t.durations.count() as f64,
        );
        out.sample(
            "peer_poll_duration_seconds_sum",
            &[("peer", label)],
            t.durations.sum(),
        );
        out.sample(
            "peer_poll_duration_seconds_count",
            &[("peer", label)],
            t.durations.count() as f64,
        );
    }
    gauge_per_peer(
        out,
        peers,
        "peer_up",
        "1 if the last pull of the peer succeeded, else 0.",
        |p| Some(bool_value(p.target.up)),
    );
    gauge_per_peer(
        out,
        peers,
        "peer_last_success_timestamp_seconds",
        "Unix time of the last successful pull of the peer.",
        |p| p.target.last_success_timestamp_seconds,
    );
    gauge_per_peer(
        out,
        peers,
        "peer_success_ratio",
        "Successful pulls / pull attempts in the window.",
        |p| p.quality.map(|q| q.parts.success_ratio),
    );
    gauge_per_peer(
        out,
        peers,
        "peer_latency_p95_seconds",
        "95th percentile (nearest rank) of successful pull durations in the window.",
        |p| p.quality.and_then(|q| q.latency_p95_seconds),
    );
    gauge_per_peer(
        out,
        peers,
        "peer_latency_score",
        "1 - min(latency_p95 / timeout, 1); 0 without a successful pull in the window.",
        |p| p.quality.map(|q| q.parts.latency_score),
    );
    gauge_per_peer(
        out,
        peers,
        "peer_freshness",
        "exp(-age / (3 x interval)), age since the last successful pull; 0 if never.",
        |p| p.quality.map(|q| q.parts.freshness),
    );
    gauge_per_peer(
        out,
        peers,
        "peer_quality",
        "Weighted mean of success ratio, latency score and freshness, in [0, 1].",
        |p| p.quality.map(|q| q.quality),
    );

    out.family(
        "peer_reported_value",
        "gauge",
        "A numeric field of the metrics in the peer's last valid summary.",
    );
    for p in peers {
        reported_samples(
            out,
            "peer_reported_value",
            Some(&p.target.label),
            &p.target.reported,
        );
    }
    gauge_per_peer(
        out,
        peers,
        "peer_state_divergent",
        "1 if the peer's fresh state root differs from the local node's fresh root, else 0.",
        |p| Some(bool_value(p.divergent)),
    );
    gauge_per_peer(
        out,
        peers,
        "peer_divergence_streak",
        "Consecutive cycles in which the peer was divergent.",
        |p| Some(p.streak as f64),
    );
    gauge_per_peer(
        out,
        peers,
        "peer_clock_skew_seconds",
        "Payload timestamp minus receive time, from the last successful pull.",
        |p| p.target.clock_skew_seconds,
    );
}

fn render_federation(out: &mut Writer, view: &View) {
    let f = &view.federation;
    let gauges = [
        (
            "peers_configured",
            "Peers in the configuration.",
            f.peers_configured as f64,
        ),
        (
            "peers_live",
            "Peers with a successful pull within live_max_age.",
            f.peers_live as f64,
        ),
        (
            "novelty",
            "clip(stddev of the live peers' g_star / 0.5, 0, 1); 0 with fewer than 2 live peers.",
            f.novelty.novelty,
        ),
        (
            "g_star_stddev",
            "Population standard deviation of the live peers' latest g_star.",
            f.novelty.g_star_stddev,
        ),
        (
            "divergence_ratio",
            "Divergent live peers / live peers with a known root; 0 if none.",
            f.divergence_ratio,
        ),
    ];
    for (name, help, value) in gauges {
        out.family(name, "gauge", help);
        out.sample(name, &[], value);
    }
    out.family(
        "state_peers",
        "gauge",
        "Peers by how their state root relates to the local node's.",
    );
    for (relation, count) in f.by_relation() {
        out.sample(
            "state_peers",
            &[("relation", relation.as_str())],
            count as f64,
        );
    }
}

fn render_node(out: &mut Writer, node: &TargetView) {
    out.family(
        "node_up",
        "gauge",
        "1 if the last pull of the local node succeeded, else 0.",
    );
    out.sample("node_up", &[], bool_value(node.up));
    out.family(
        "node_polls_total",
        "counter",
        "Pulls of the local node's summary attempted.",
    );
    out.sample("node_polls_total", &[], node.polls_total as f64);
    out.family(
        "node_poll_failures_total",
        "counter",
        "Failed pulls of the local node's summary, by reason.",
    );
    failure_samples(out, "node_poll_failures_total", None, &node.failures_total);
    out.family(
        "node_reported_value",
        "gauge",
        "A numeric field of the metrics in the local node's last valid summary.",
    );
    reported_samples(out, "node_reported_value", None, &node.reported);
}

fn render_reconcile(out: &mut Writer, r: &ReconcileView) {
    out.family(
        "reconcile_requests_total",
        "counter",
        "Reconciliation requests sent to the local node.",
    );
    out.sample("reconcile_requests_total", &[], r.requests_total as f64);
    out.family(
        "reconcile_failures_total",
        "counter",
        "Reconciliation requests that failed, by reason.",
    );
    for (failure, count) in RequestFailure::ALL.iter().zip(r.failures_total) {
        out.sample(
            "reconcile_failures_total",
            &[("reason", failure.as_str())],
            count as f64,
        );
    }
    out.family(
        "reconcile_suppressed_total",
        "counter",
        "Cycles in which a warranted reconciliation request was not sent, by reason.",
    );
    for (reason, count) in Suppression::ALL.iter().zip(r.suppressed_total) {
        out.sample(
            "reconcile_suppressed_total",
            &[("reason", reason.as_str())],
            count as f64,
        );
    }
    out.family(
        "reconcile_in_progress",
        "gauge",
        "1 while a reconciliation request is awaiting the node's answer.",
    );
    out.sample("reconcile_in_progress", &[], bool_value(r.in_progress));
    out.family(
        "reconcile_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last reconciliation request the node accepted.",
    );
    if let Some(at) = r.last_success_timestamp_seconds {
        out.sample("reconcile_last_success_timestamp_seconds", &[], at);
    }
    out.family(
        "reconcile_backoff_seconds",
        "gauge",
        "Seconds until a failed reconciliation may be retried; 0 when not backing off.",
    );
    out.sample(
        "reconcile_backoff_seconds",
        &[],
        r.backoff_remaining_seconds,
    );
}

fn render_operations(out: &mut Writer, operations: &OperationsState) {
    let config = &operations.config;
    let checkpoint = &operations.checkpoint;
    let families = [
        (
            "config_last_reload_successful",
            "gauge",
            "1 if the last configuration (re)load succeeded, else 0.",
            Some(bool_value(config.last_reload_successful)),
        ),
        (
            "config_last_reload_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful configuration (re)load.",
            Some(config.last_reload_success_at),
        ),
        (
            "config_reloads_total",
            "counter",
            "Configuration reloads attempted (changes, SIGHUP, POST /-/reload).",
            Some(config.reloads_total as f64),
        ),
        (
            "config_reload_failures_total",
            "counter",
            "Configuration reloads refused; the previous configuration stayed in force.",
            Some(config.reload_failures_total as f64),
        ),
        (
            "checkpoint_writes_total",
            "counter",
            "Checkpoints written.",
            Some(checkpoint.writes_total as f64),
        ),
        (
            "checkpoint_write_failures_total",
            "counter",
            "Checkpoint writes that failed.",
            Some(checkpoint.write_failures_total as f64),
        ),
        (
            "checkpoint_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last checkpoint written.",
            checkpoint.last_success_at,
        ),
        (
            "checkpoint_restore_failures_total",
            "counter",
            "Checkpoints found unusable at start and moved aside.",
            Some(checkpoint.restore_failures_total as f64),
        ),
    ];
    for (name, kind, help, value) in families {
        out.family(name, kind, help);
        if let Some(value) = value {
            out.sample(name, &[], value);
        }
    }
}

fn gauge_per_peer(
    out: &mut Writer,
    peers: &[PeerView],
    name: &'static str,
    help: &'static str,
    value: impl Fn(&PeerView) -> Option<f64>,
) {
    out.family(name, "gauge", help);
    for p in peers {
        if let Some(v) = value(p) {
            out.sample(name, &[("peer", &p.target.label)], v);
        }
    }
}

fn failure_samples(out: &mut Writer, name: &str, peer: Option<&str>, failures: &[u64; 9]) {
    for (reason, count) in FailureReason::ALL.iter().zip(failures) {
        match peer {
            Some(peer) => out.sample(
                name,
                &[("peer", peer), ("reason", reason.as_str())],
                *count as f64,
            ),
            None => out.sample(name, &[("reason", reason.as_str())], *count as f64),
        }
    }
}

fn reported_samples(
    out: &mut Writer,
    name: &str,
    peer: Option<&str>,
    reported: &[(&'static str, f64)],
) {
    debug_assert!(reported.iter().all(|(f, _)| REPORTED_FIELDS.contains(f)));
    for (field, value) in reported {
        match peer {
            Some(peer) => out.sample(name, &[("peer", peer), ("field", field)], *value),
            None => out.sample(name, &[("field", field)], *value),
        }
    }
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Writes families; a family's HELP and TYPE lines appear only once it has a sample.
struct Writer {
    text: String,
    header: Option<(&'static str, &'static str, &'static str)>,
}

impl Writer {
    fn family(&mut self, name: &'static str, kind: &'static str, help: &'static str) {
        self.header = Some((name, kind, help));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if let Some((family, kind, help)) = self.header.take() {
            let _ = writeln!(
                self.text,
                "# HELP {PREFIX}{family} {help}\n# TYPE {PREFIX}{family} {kind}"
            );
        }
        self.text.push_str(PREFIX);
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(key);
                self.text.push_str("=\"");
                escape_label_value(&mut self.text, value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        write_value(&mut self.text, value);
        self.text.push('\n');
    }
}

fn escape_label_value(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, value: f64) {
    // Writing into a String cannot fail.
    let _ = if value.is_nan() {
        write!(out, "NaN")
    } else if value.is_infinite() {
        write!(out, "{}", if value > 0.0 { "+Inf" } else { "-Inf" })
    } else if value.fract() == 0.0 && value.abs() < 9.0e15 {
        // Counters and bucket counts: integer formatting is several times faster.
        write!(out, "{}", value as i64)
    } else {
        write!(out, "{value}")
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = Writer {
            text: String::new(),
            header: None,
        };
        out.family("x", "gauge", "An example.");
        out.sample("x", &[("peer", "a\"b\\c\nd")], 0.5);
        out.sample("x", &[], f64::INFINITY);
        assert_eq!(
            out.text,
            "# HELP peerscope_x An example.\n# TYPE peerscope_x gauge\npeerscope_x{peer=\"a\\\"b\\\\c\\nd\"} 0.5\npeerscope_x +Inf\n"
        );
    }

    #[test]
    fn a_family_without_samples_writes_nothing() {
        let mut out = Writer {
            text: String::new(),
            header: None,
        };
        out.family("x", "gauge", "Nothing.");
        out.family("y", "gauge", "Something.");
        out.sample("y", &[], 1.0);
        assert!(!out.text.contains("peerscope_x"));
    }
}
