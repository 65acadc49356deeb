//! `/metrics`: the Prometheus text exposition (format 0.0.4) or OpenMetrics 1.0 text, as
//! the scraper asks (`negotiate`), rendered at scrape time from a `View`, so a peer
//! that left the configuration has no series by construction. Every family comes from
//! the table in [`crate::serve::families`].
//!
//! OpenMetrics differs in three ways here: a counter family is named without `_total` in
//! its HELP and TYPE lines (its samples keep it), the text ends with `# EOF`, and — with
//! `metrics.created_samples` — each counter and histogram carries `_created`: when it
//! started from zero (a peer's counters when the peer was added; the sidecar's at start).

use std::fmt::Write;

use super::process::ProcessFigures;
use hyper::header::HeaderValue;

use crate::act::confirmation::OUTCOMES;
use crate::act::{ReconcileView, RequestFailure};
use crate::config::PerPeer;
use crate::figures::decision::Suppression;
use crate::figures::histogram::BUCKETS;
use crate::figures::view::{PeerView, SourceView, TargetView, View};
use crate::ops::operations::OperationsState;
use crate::pull::contract::REPORTED_FIELDS;
use crate::pull::failure::FailureReason;
use crate::serve::families::{self as f, Family, Kind};

/// The two exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text 0.0.4: the default.
    Text,
    /// OpenMetrics 1.0.0 text, when the scraper prefers it (Prometheus does).
    OpenMetrics,
}

impl Format {
    /// The exact content type of the exposition.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The format an `Accept` header prefers: OpenMetrics 1.0.0 when it is asked for with a
/// q-value at least that of text 0.0.4 (Prometheus sends
/// `application/openmetrics-text;version=1.0.0,…,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`);
/// text otherwise, and for anything this server does not speak.
pub(crate) fn negotiate(accept: Option<&HeaderValue>) -> Format {
    let Some(accept) = accept.and_then(|h| h.to_str().ok()) else {
        return Format::Text;
    };
    let (mut open_metrics, mut text) = (0.0_f64, 0.0_f64);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0_f64, None);
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        match (media.as_str(), version.as_deref()) {
            ("application/openmetrics-text", None | Some("1.0.0")) => {
                open_metrics = open_metrics.max(q);
            }
            ("text/plain", None | Some("0.0.4")) => text = text.max(q),
            _ => {}
        }
    }
    if open_metrics > 0.0 && open_metrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// How one scrape is rendered.
#[derive(Clone, Copy, Debug)]
pub struct Rendering {
    pub format: Format,
    /// Unix time the sidecar's own counters started from zero (its start).
    pub started_at: f64,
    /// Whether the figures about the exporter itself are wanted (the HTTP request counts;
    /// `process_*` come only when read).
    pub exporter_metrics: bool,
}

/// Build facts exported as `peerscope_build_info`.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    pub(crate) version: &'static str,
    pub(crate) revision: &'static str,
    pub(crate) rustc_version: &'static str,
    pub(crate) build_date: &'static str,
}

impl BuildInfo {
    pub fn current() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            revision: env!("PEERSCOPE_REVISION"),
            rustc_version: env!("PEERSCOPE_RUSTC_VERSION"),
            build_date: env!("PEERSCOPE_BUILD_DATE"),
        }
    }
}

/// Renders every family; the standard `process_*` ones when `process` was read.
pub fn render(
    view: &View,
    reconcile: &ReconcileView,
    operations: &OperationsState,
    build: &BuildInfo,
    process: Option<&ProcessFigures>,
    rendering: Rendering,
) -> String {
    let open_metrics = rendering.format == Format::OpenMetrics;
    let created = open_metrics && view.created_samples;
    let mut out = Writer {
        text: String::with_capacity(4096 + view.peers.len() * 4096),
        family: None,
        header_pending: false,
        open_metrics,
        created: None,
    };
    render_peers(&mut out, &view.peers, view.per_peer, created);
    out.created = created.then_some(view.node.counters_created_at);
    render_node(&mut out, &view.node);
    // The sidecar's own counters start at zero with the process.
    out.created = created.then_some(rendering.started_at);
    render_federation(&mut out, view);
    render_reconcile(&mut out, reconcile);
    render_discovery(&mut out, &view.discovery);
    render_operations(&mut out, operations, rendering.exporter_metrics);
    out.family(&f::CYCLES_TOTAL);
    out.sample(&[], view.cycles_completed as f64);
    out.family(&f::BUILD_INFO);
    out.sample(
        &[
            ("version", build.version),
            ("revision", build.revision),
            ("rustc_version", build.rustc_version),
            ("os", std::env::consts::OS),
            ("arch", std::env::consts::ARCH),
            ("build_date", build.build_date),
        ],
        1.0,
    );

    if let Some(process) = process {
        render_process(&mut out, process);
    }
    let mut text = out.text;
    if open_metrics {
        text.push_str("# EOF\n");
    }
    text
}

/// The standard `process_*` families; the CPU counter starts with the process.
fn render_process(out: &mut Writer, process: &ProcessFigures) {
    out.created = out.created.map(|_| process.start_time_seconds);
    for (family, value) in [
        (&f::PROCESS_CPU_SECONDS_TOTAL, process.cpu_seconds),
        (&f::PROCESS_MAX_FDS, process.max_fds),
        (&f::PROCESS_OPEN_FDS, process.open_fds),
        (
            &f::PROCESS_RESIDENT_MEMORY_BYTES,
            process.resident_memory_bytes,
        ),
        (&f::PROCESS_START_TIME_SECONDS, process.start_time_seconds),
        (&f::PROCESS_THREADS, process.threads),
        (
            &f::PROCESS_VIRTUAL_MEMORY_BYTES,
            process.virtual_memory_bytes,
        ),
    ] {
        out.family(family);
        out.sample(&[], value);
    }
}

/// Per observed peer: 44 series in `full` mode once it has answered (with every reported
/// field), 17 in `lean` — what a verdict needs (README, "Series per sidecar").
/// `created`: whether counters and histograms carry `_created` (each peer's own time).
fn render_peers(out: &mut Writer, peers: &[PeerView], mode: PerPeer, created: bool) {
    let full = mode == PerPeer::Full;
    out.family(&f::PEER_POLLS_TOTAL);
    for p in peers {
        out.created = created.then_some(p.target.counters_created_at);
        out.sample(&[("peer", &p.target.label)], p.target.polls_total as f64);
    }
    out.family(&f::PEER_POLL_FAILURES_TOTAL);
    for p in peers {
        out.created = created.then_some(p.target.counters_created_at);
        failure_samples(out, Some(&p.target.label), &p.target.failures_total);
    }
    out.family(&f::PEER_POLL_DURATION_SECONDS);
    let bounds: Vec<String> = BUCKETS.iter().map(f64::to_string).collect();
    for p in peers.iter().filter(|_| full) {
        let (label, t) = (p.target.label.as_str(), &p.target);
        out.created = created.then_some(t.counters_created_at);
        let cumulative = t.durations.cumulative();
        for (bound, count) in bounds.iter().zip(cumulative) {
            out.series("_bucket", &[("peer", label), ("le", bound)], count as f64);
        }
        let count = t.durations.count() as f64;
        out.series("_bucket", &[("peer", label), ("le", "+Inf")], count);
        out.series("_sum", &[("peer", label)], t.durations.sum());
        out.series("_count", &[("peer", label)], count);
    }
    gauge_per_peer(out, peers, &f::PEER_UP, |p| Some(bool_value(p.target.up)));
    gauge_per_peer(out, peers, &f::PEER_LAST_SUCCESS_TIMESTAMP_SECONDS, |p| {
        p.target.last_success_timestamp_seconds.filter(|_| full)
    });
    gauge_per_peer(out, peers, &f::PEER_SUCCESS_RATIO, |p| {
        p.quality.map(|q| q.parts.success_ratio)
    });
    gauge_per_peer(out, peers, &f::PEER_LATENCY_P95_SECONDS, |p| {
        p.quality.and_then(|q| q.latency_p95_seconds)
    });
    gauge_per_peer(out, peers, &f::PEER_LATENCY_SCORE, |p| {
        p.quality.map(|q| q.parts.latency_score).filter(|_| full)
    });
    gauge_per_peer(out, peers, &f::PEER_FRESHNESS, |p| {
        p.quality.map(|q| q.parts.freshness).filter(|_| full)
    });
    gauge_per_peer(out, peers, &f::PEER_QUALITY, |p| {
        p.quality.map(|q| q.quality)
    });
    out.family(&f::PEER_REPORTED_VALUE);
    for p in peers.iter().filter(|_| full) {
        reported_samples(out, Some(&p.target.label), &p.target.reported);
    }
    gauge_per_peer(out, peers, &f::PEER_STATE_DIVERGENT, |p| {
        Some(bool_value(p.divergent))
    });
    // Lean mode leaves it out: the claimants' votes are already withheld, and /status
    // names the problem.
    gauge_per_peer(out, peers, &f::PEER_IDENTITY_CONTESTED, |p| {
        Some(bool_value(p.identity_contested)).filter(|_| full)
    });
    gauge_per_peer(out, peers, &f::PEER_DIVERGENCE_STREAK, |p| {
        Some(p.streak as f64)
    });
    gauge_per_peer(out, peers, &f::PEER_CLOCK_SKEW_SECONDS, |p| {
        p.target.clock_skew_seconds.filter(|_| full)
    });
}

fn render_federation(out: &mut Writer, view: &View) {
    let federation = &view.federation;
    for (family, value) in [
        (&f::PEERS_CONFIGURED, federation.peers_configured as f64),
        (&f::PEERS_LIVE, federation.peers_live as f64),
        (&f::PEERS_OBSERVED, federation.peers_observed as f64),
        (&f::OBSERVERS_PER_PEER, federation.observers_per_peer as f64),
        (&f::NOVELTY, federation.novelty.novelty),
        (&f::G_STAR_STDDEV, federation.novelty.g_star_stddev),
        (&f::DIVERGENCE_RATIO, federation.divergence_ratio),
    ] {
        out.family(family);
        out.sample(&[], value);
    }
    out.family(&f::STATE_PEERS);
    for (relation, count) in federation.by_relation() {
        out.sample(&[("relation", relation.as_str())], count as f64);
    }
}

fn render_node(out: &mut Writer, node: &TargetView) {
    out.family(&f::NODE_UP);
    out.sample(&[], bool_value(node.up));
    out.family(&f::NODE_POLLS_TOTAL);
    out.sample(&[], node.polls_total as f64);
    out.family(&f::NODE_POLL_FAILURES_TOTAL);
    failure_samples(out, None, &node.failures_total);
    out.family(&f::NODE_REPORTED_VALUE);
    reported_samples(out, None, &node.reported);
}

fn render_reconcile(out: &mut Writer, r: &ReconcileView) {
    out.family(&f::RECONCILE_REQUESTS_TOTAL);
    out.sample(&[], r.requests_total as f64);
    out.family(&f::RECONCILE_FAILURES_TOTAL);
    for (failure, count) in RequestFailure::ALL.iter().zip(r.failures_total) {
        out.sample(&[("reason", failure.as_str())], count as f64);
    }
    out.family(&f::RECONCILE_SUPPRESSED_TOTAL);
    for (reason, count) in Suppression::ALL.iter().zip(r.suppressed_total) {
        out.sample(&[("reason", reason.as_str())], count as f64);
    }
    out.family(&f::RECONCILE_IN_PROGRESS);
    out.sample(&[], bool_value(r.in_progress));
    out.family(&f::RECONCILE_LAST_SUCCESS_TIMESTAMP_SECONDS);
    if let Some(at) = r.last_success_timestamp_seconds {
        out.sample(&[], at);
    }
    out.family(&f::RECONCILE_BACKOFF_SECONDS);
    out.sample(&[], r.backoff_remaining_seconds);
    out.family(&f::RECONCILE_CONSECUTIVE_FAILURES);
    out.sample(&[], f64::from(r.consecutive_failures));
    let c = &r.confirmation;
    out.family(&f::RECONCILE_CONFIRMATIONS_TOTAL);
    for (outcome, count) in OUTCOMES.iter().zip(c.outcomes_total) {
        out.sample(&[("outcome", outcome)], count as f64);
    }
    out.family(&f::RECONCILE_CONFIRMATION_PULLS_TOTAL);
    out.sample(&[], c.pulls_total as f64);
    out.family(&f::RECONCILE_CONFIRMATION_IN_PROGRESS);
    out.sample(&[], bool_value(c.state == "confirming"));
    out.family(&f::RECONCILE_CONFIRMATION_STATISTIC);
    out.sample(&[], c.statistic as f64);
    out.family(&f::RECONCILE_PROBE_PULLS_TOTAL);
    out.sample(&[], c.probe_pulls_total as f64);
}

fn render_discovery(out: &mut Writer, sources: &[SourceView]) {
    out.family(&f::DISCOVERY_REFRESHES_TOTAL);
    for source in sources {
        for (outcome, count) in &source.refreshes {
            out.sample(
                &[("source", &source.source), ("outcome", outcome)],
                *count as f64,
            );
        }
    }
    out.family(&f::DISCOVERY_MEMBERS);
    for source in sources {
        out.sample(&[("source", &source.source)], source.members as f64);
    }
}

fn render_operations(out: &mut Writer, operations: &OperationsState, exporter_metrics: bool) {
    let config = &operations.config;
    let checkpoint = &operations.checkpoint;
    for (family, value) in [
        (
            &f::CONFIG_LAST_RELOAD_SUCCESSFUL,
            Some(bool_value(config.last_reload_successful)),
        ),
        (
            &f::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
            Some(config.last_reload_success_at),
        ),
        (&f::CONFIG_RELOADS_TOTAL, Some(config.reloads_total as f64)),
        (
            &f::CONFIG_RELOAD_FAILURES_TOTAL,
            Some(config.reload_failures_total as f64),
        ),
        (
            &f::HTTP_CONNECTIONS_SHED_TOTAL,
            Some(operations.server.connections_shed_total as f64),
        ),
        (
            &f::HTTP_BASIC_AUTH_CHECKS_TOTAL,
            Some(operations.server.basic_auth_checks_total as f64),
        ),
        (
            &f::HTTP_BASIC_AUTH_THROTTLED_TOTAL,
            Some(operations.server.basic_auth_throttled_total as f64),
        ),
        (
            &f::CHECKPOINT_WRITES_TOTAL,
            Some(checkpoint.writes_total as f64),
        ),
        (
            &f::CHECKPOINT_WRITE_FAILURES_TOTAL,
            Some(checkpoint.write_failures_total as f64),
        ),
        (
            &f::CHECKPOINT_LAST_SUCCESS_TIMESTAMP_SECONDS,
            checkpoint.last_success_at,
        ),
        (
            &f::CHECKPOINT_RESTORE_FAILURES_TOTAL,
            Some(checkpoint.restore_failures_total as f64),
        ),
    ] {
        out.family(family);
        if let Some(value) = value {
            out.sample(&[], value);
        }
    }
    if !exporter_metrics {
        return;
    }
    out.family(&f::HTTP_REQUESTS_TOTAL);
    for (&(handler, code), &count) in &operations.server.requests_total {
        let code = code.to_string();
        out.sample(&[("handler", handler), ("code", &code)], count as f64);
    }
}

fn gauge_per_peer(
    out: &mut Writer,
    peers: &[PeerView],
    family: &'static Family,
    value: impl Fn(&PeerView) -> Option<f64>,
) {
    out.family(family);
    for p in peers {
        if let Some(v) = value(p) {
            out.sample(&[("peer", &p.target.label)], v);
        }
    }
}

fn failure_samples(
    out: &mut Writer,
    peer: Option<&str>,
    failures: &[u64; FailureReason::ALL.len()],
) {
    for (reason, count) in FailureReason::ALL.iter().zip(failures) {
        match peer {
            Some(peer) => out.sample(
                &[("peer", peer), ("reason", reason.as_str())],
                *count as f64,
            ),
            None => out.sample(&[("reason", reason.as_str())], *count as f64),
        }
    }
}

fn reported_samples(out: &mut Writer, peer: Option<&str>, reported: &[(&'static str, f64)]) {
    debug_assert!(reported.iter().all(|(f, _)| REPORTED_FIELDS.contains(f)));
    for (field, value) in reported {
        match peer {
            Some(peer) => out.sample(&[("peer", peer), ("field", field)], *value),
            None => out.sample(&[("field", field)], *value),
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

/// Writes families from the table; a family's HELP and TYPE lines appear only once it
/// has a sample.
struct Writer {
    text: String,
    family: Option<&'static Family>,
    header_pending: bool,
    open_metrics: bool,
    /// The `_created` of the counter and histogram samples that follow, if they carry one.
    created: Option<f64>,
}

impl Writer {
    fn family(&mut self, family: &'static Family) {
        self.family = Some(family);
        self.header_pending = true;
    }

    /// A sample of the current family.
    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.series("", labels, value);
    }

    /// A sample of the current family's series `name{suffix}` (`_bucket`, `_sum`, `_count`).
    fn series(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        let Some(family) = self.family else {
            debug_assert!(false, "a sample before any family");
            return;
        };
        debug_assert!(
            labels
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| *name != "le" || suffix != "_bucket")
                .eq(family.labels.iter().copied()),
            "{}{suffix}: labels {labels:?} are not the family's {:?}",
            family.name,
            family.labels
        );
        // OpenMetrics names a counter family without `_total`; its samples keep it.
        let base = match family.kind {
            Kind::Counter if self.open_metrics => {
                family.name.strip_suffix("_total").unwrap_or(family.name)
            }
            _ => family.name,
        };
        if self.header_pending {
            self.header_pending = false;
            let _ = writeln!(
                self.text,
                "# HELP {base} {help}\n# TYPE {base} {kind}",
                help = escape_help(family.help),
                kind = family.kind.as_str()
            );
        }
        write_line(&mut self.text, family.name, suffix, labels, value);
        // `_created` closes a counter's sample, and a histogram's after `_count`.
        let closes_point = match family.kind {
            Kind::Counter => suffix.is_empty(),
            Kind::Histogram => suffix == "_count",
            Kind::Gauge => false,
        };
        if let Some(created) = self.created.filter(|_| self.open_metrics && closes_point) {
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .copied()
                .filter(|(name, _)| *name != "le")
                .collect();
            write_line(&mut self.text, base, "_created", &labels, created);
        }
    }
}

/// One sample line: `name{suffix}{labels} value`.
fn write_line(text: &mut String, name: &str, suffix: &str, labels: &[(&str, &str)], value: f64) {
    text.push_str(name);
    text.push_str(suffix);
    if !labels.is_empty() {
        text.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(key);
            text.push_str("=\"");
            escape_label_value(text, value);
            text.push('"');
        }
        text.push('}');
    }
    text.push(' ');
    write_value(text, value);
    text.push('\n');
}

/// HELP text: backslash and newline escaped (both formats), and `"` (OpenMetrics; text
/// 0.0.4 readers take `\"` as it is, and no help of ours has one).
fn escape_help(help: &str) -> std::borrow::Cow<'_, str> {
    if !help.contains(['\\', '\n', '"']) {
        return help.into();
    }
    help.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
        .into()
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
mod tests;
