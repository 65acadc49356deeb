#!/usr/bin/env python3
"""Builds the Grafana dashboards in this directory: python3 dashboards/build.py

The JSON files are committed; this script is how they are kept consistent (one datasource
variable used by every panel, job/instance variables, fixed uids, units, thresholds,
descriptions). tests/dashboards_e2e.rs runs every query against a real Prometheus.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job",instance=~"$instance"'


def variables(extra=()):
    return {"list": [
        {"name": "datasource", "label": "Data Source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "options": []},
        # dashboard-linter's job and instance variables: named and labelled so, multi-select,
        # "All" as .+ (a job of any name; several jobs at once).
        {"name": "job", "label": "job", "type": "query", "datasource": DS,
         "query": {"query": "label_values(peerscope_build_info, job)", "refId": "job"},
         "definition": "label_values(peerscope_build_info, job)", "refresh": 2, "includeAll": True,
         "multi": True, "allValue": ".+", "current": {}, "options": [], "sort": 1},
        {"name": "instance", "label": "instance", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(peerscope_build_info{job=~"$job"}, instance)', "refId": "instance"},
         "definition": 'label_values(peerscope_build_info{job=~"$job"}, instance)', "refresh": 2,
         "includeAll": True, "multi": True, "allValue": ".+", "current": {}, "options": [], "sort": 1},
        *extra,
    ]}


def thresholds(*steps):
    """steps: (value or None, colour) from the lowest up."""
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


GOOD_HIGH = thresholds((None, "red"), (0.5, "orange"), (0.8, "green"))
BAD_HIGH = thresholds((None, "green"), (0.01, "orange"), (0.5, "red"))


class Layout:
    def __init__(self):
        self.x, self.y, self.row_height, self.next_id = 0, 0, 0, 1

    def place(self, w, h):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_height
            self.row_height = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos


def panel(layout, kind, title, description, targets, unit="short", th=None, w=8, h=8, minmax=None, extra=None):
    p = {
        "id": layout.next_id, "type": kind, "title": title, "description": description,
        "datasource": DS, "gridPos": layout.place(w, h),
        "targets": [{"datasource": DS, "refId": chr(65 + i), "expr": e, "legendFormat": l,
                     **({"instant": True, "format": "table"} if kind == "table" else {})}
                    for i, (e, l) in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": th or thresholds((None, "green"))}, "overrides": []},
        "options": {},
    }
    if minmax:
        p["fieldConfig"]["defaults"]["min"], p["fieldConfig"]["defaults"]["max"] = minmax
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10}
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "background"}
    layout.next_id += 1
    if extra:
        p.update(extra)
    return p


def dashboard(uid, title, description, panels, extra_vars=()):
    return {
        "id": None, "uid": uid, "title": title, "description": description, "tags": ["peerscope"],
        "timezone": "browser", "schemaVersion": 38, "version": 1,
        # Declared as code (this script): edits in the UI would be lost at the next deploy.
        "editable": False, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"}, "templating": variables(extra_vars),
        "annotations": {"list": []}, "links": [
            {"type": "dashboards", "tags": ["peerscope"], "asDropdown": True, "title": "peerscope"}],
        "panels": panels,
    }


def overview():
    L = Layout()
    return dashboard("peerscope-overview", "peerscope / Federation overview",
        "How healthy and how consistent the federation is, seen from each sidecar.", [
        panel(L, "stat", "Live peers", "Peers with a successful pull within live_max_age (measured, never the configured count).",
              [(f'sum by (instance) (peerscope_peers_live{{{SEL}}})', "{{instance}}")], w=4, h=5),
        panel(L, "stat", "Configured peers", "Peers in the sidecar's configuration.",
              [(f'sum by (instance) (peerscope_peers_configured{{{SEL}}})', "{{instance}}")], w=4, h=5),
        panel(L, "stat", "Local node up", "1 when the last pull of the node beside the sidecar succeeded.",
              [(f'peerscope_node_up{{{SEL}}}', "{{instance}}")], th=thresholds((None, "red"), (1, "green")), w=4, h=5, minmax=(0, 1)),
        panel(L, "stat", "Divergence ratio", "Divergent live peers / live peers with a known state root.",
              [(f'peerscope_divergence_ratio{{{SEL}}}', "{{instance}}")], unit="percentunit", th=BAD_HIGH, w=4, h=5, minmax=(0, 1)),
        panel(L, "stat", "Novelty", "clip(stddev of the live peers' g_star / 0.5, 0, 1); 0 with fewer than 2 live peers.",
              [(f'peerscope_novelty{{{SEL}}}', "{{instance}}")], unit="percentunit", w=4, h=5, minmax=(0, 1)),
        panel(L, "stat", "Reconciliation requests (1h)", "Requests this sidecar sent to its node in the last hour.",
              [(f'sum by (instance) (increase(peerscope_reconcile_requests_total{{{SEL}}}[1h]))', "{{instance}}")],
              th=thresholds((None, "green"), (1, "orange"), (4, "red")), w=4, h=5),
        panel(L, "timeseries", "Live vs configured peers", "A gap between the lines is peers that are configured but not answering.",
              [(f'peerscope_peers_live{{{SEL}}}', "live {{instance}}"), (f'peerscope_peers_configured{{{SEL}}}', "configured {{instance}}")], w=12),
        panel(L, "timeseries", "Novelty and g_star spread", "Novelty and the population standard deviation of the live peers' g_star.",
              [(f'peerscope_novelty{{{SEL}}}', "novelty {{instance}}"), (f'peerscope_g_star_stddev{{{SEL}}}', "σ g_star {{instance}}")], w=12, minmax=(0, 1)),
        panel(L, "timeseries", "State roots: agree / diverge / unknown", "Peers whose fresh state root agrees with, or differs from, the local node's; unknown when either root is unknown or stale.",
              [(f'sum by (relation) (peerscope_state_peers{{{SEL}}})', "{{relation}}")], w=12),
        panel(L, "timeseries", "Divergence ratio", "Divergent live peers / live peers with a known root.",
              [(f'peerscope_divergence_ratio{{{SEL}}}', "{{instance}}")], unit="percentunit", th=BAD_HIGH, w=12, minmax=(0, 1)),
        panel(L, "timeseries", "Reconciliation: requests and outcomes", "Requests sent, and failures by reason, per interval.",
              [(f'sum by (instance) (increase(peerscope_reconcile_requests_total{{{SEL}}}[$__rate_interval]))', "requests {{instance}}"),
               (f'sum by (reason) (increase(peerscope_reconcile_failures_total{{{SEL}}}[$__rate_interval]))', "failed: {{reason}}")], w=12),
        panel(L, "timeseries", "Reconciliation suppressed, by reason", "Cycles in which a warranted request was not sent: cooldown, backoff, in_flight, no_quorum, rate_limit, node_down, dry_run, disabled, rejected_target.",
              [(f'sum by (reason) (increase(peerscope_reconcile_suppressed_total{{{SEL}}}[$__rate_interval]))', "{{reason}}")], w=12),
        # One verdict per peer from all its observers (alerts/consensus.rules.yml).
        panel(L, "stat", "Peers down by consensus", "Peers that most of their observers could not pull in 2 minutes (peerscope:peer_up_observers:ratio < 0.5).",
              [(f'count(peerscope:peer_up_observers:ratio{{job=~"$job"}} < 0.5) or vector(0)', "")], th=thresholds((None, "green"), (1, "red")), w=6, h=5),
        panel(L, "stat", "Observers per peer (fewest)", "Sidecars observing the least-observed peer: K with sampled observation, N − 1 in a full mesh.",
              [(f'min(peerscope:peer_observers:count{{job=~"$job"}})', "")], w=6, h=5),
        panel(L, "stat", "Isolated observers", "Sidecars that see most of their peers down while those peers' other observers see them up.",
              [(f'count(peerscope:observer_peer_up:ratio{{job=~"$job"}} < 0.5 and peerscope:observer_peer_up_by_others:ratio{{job=~"$job"}} >= 0.5) or vector(0)', "")],
              th=thresholds((None, "green"), (1, "orange")), w=6, h=5),
        panel(L, "stat", "Peers observed by this sidecar", "This sidecar's sample of the federation (peerscope_peers_observed).",
              [(f'peerscope_peers_observed{{{SEL}}}', "{{instance}}")], w=6, h=5),
        panel(L, "status-history", "Federation matrix: observer × peer up", "One row per (observer, peer): 1 when that observer pulled that peer successfully within 2 minutes. A column of red is a dead peer; a row of red is an isolated observer.",
              [(f'peerscope:observer_peer_up:max2m{{job=~"$job"}}', "{{instance}} → {{peer}}")],
              th=thresholds((None, "red"), (1, "green")), w=24, h=10, minmax=(0, 1)),
        panel(L, "timeseries", "Share of observers that see each peer up", "peerscope:peer_up_observers:ratio per peer; below 0.5 the peer is down by consensus.",
              [(f'peerscope:peer_up_observers:ratio{{job=~"$job"}}', "{{peer}}")], unit="percentunit", th=GOOD_HIGH, w=12, minmax=(0, 1)),
        panel(L, "timeseries", "Failure ratio per peer (median observer)", "peerscope:peer_failure:ratio_rate5m; above 0.2 for 10 minutes a peer that is not down is flaky.",
              [(f'peerscope:peer_failure:ratio_rate5m{{job=~"$job"}}', "{{peer}}")], unit="percentunit", th=BAD_HIGH, w=12, minmax=(0, 1)),
        panel(L, "table", "Worst peers by quality", "The ten peers with the lowest quality (weighted success ratio, latency score and freshness).",
              [(f'bottomk(10, peerscope_peer_quality{{{SEL}}})', "")], unit="percentunit", th=GOOD_HIGH, w=24, h=9, minmax=(0, 1)),
    ])


def peer_detail():
    L = Layout()
    P = f'{SEL},peer=~"$peer"'
    peer_var = {"name": "peer", "label": "Peer", "type": "query", "datasource": DS,
                "query": {"query": f'label_values(peerscope_peer_up{{{SEL}}}, peer)', "refId": "peer"},
                "definition": f'label_values(peerscope_peer_up{{{SEL}}}, peer)', "refresh": 2,
                "includeAll": False, "multi": False, "current": {}, "options": [], "sort": 1}
    return dashboard("peerscope-peer", "peerscope / Peer detail", "One peer as a sidecar sees it.", [
        panel(L, "stat", "Up", "1 when the last pull of the peer succeeded.", [(f'peerscope_peer_up{{{P}}}', "{{instance}}")],
              th=thresholds((None, "red"), (1, "green")), w=6, h=5, minmax=(0, 1)),
        panel(L, "stat", "Quality", "Weighted mean of success ratio, latency score and freshness.", [(f'peerscope_peer_quality{{{P}}}', "{{instance}}")],
              unit="percentunit", th=GOOD_HIGH, w=6, h=5, minmax=(0, 1)),
        panel(L, "stat", "Divergence streak", "Consecutive cycles in which the peer's root differed from the local node's.",
              [(f'peerscope_peer_divergence_streak{{{P}}}', "{{instance}}")], th=thresholds((None, "green"), (3, "orange"), (10, "red")), w=6, h=5),
        panel(L, "stat", "Clock skew", "Payload timestamp minus receive time.", [(f'peerscope_peer_clock_skew_seconds{{{P}}}', "{{instance}}")],
              unit="s", th=thresholds((None, "red"), (-30, "green"), (30, "red")), w=6, h=5),
        panel(L, "timeseries", "Quality and its parts", "Quality, success ratio, latency score (1 − p95/timeout) and freshness (exp(−age / 3·interval)).",
              [(f'peerscope_peer_quality{{{P}}}', "quality"), (f'peerscope_peer_success_ratio{{{P}}}', "success ratio"),
               (f'peerscope_peer_latency_score{{{P}}}', "latency score"), (f'peerscope_peer_freshness{{{P}}}', "freshness")],
              unit="percentunit", th=GOOD_HIGH, w=12, minmax=(0, 1)),
        panel(L, "timeseries", "Pull latency", "p95 of successful pulls in the window (nearest rank), and quantiles of all pulls from the histogram.",
              [(f'peerscope_peer_latency_p95_seconds{{{P}}}', "window p95"),
               (f'histogram_quantile(0.5, sum by (le) (rate(peerscope_peer_poll_duration_seconds_bucket{{{P}}}[$__rate_interval])))', "histogram p50"),
               (f'histogram_quantile(0.99, sum by (le) (rate(peerscope_peer_poll_duration_seconds_bucket{{{P}}}[$__rate_interval])))', "histogram p99")],
              unit="s", w=12),
        panel(L, "timeseries", "Failures by reason", "Failed pulls per second: timeout, connect, tls, http_status, redirect, body_too_large, decode, schema, unsupported_version, identity.",
              [(f'sum by (reason) (rate(peerscope_peer_poll_failures_total{{{P}}}[$__rate_interval]))', "{{reason}}")], unit="reqps", w=12),
        panel(L, "timeseries", "Divergence", "Whether the peer's root differs from the local node's, and for how many cycles.",
              [(f'peerscope_peer_state_divergent{{{P}}}', "divergent"), (f'peerscope_peer_divergence_streak{{{P}}}', "streak")], w=12),
        panel(L, "timeseries", "Reported values", "The numeric fields of the metrics in the peer's last valid summary.",
              [(f'peerscope_peer_reported_value{{{P}}}', "{{field}}")], w=12),
        panel(L, "timeseries", "Clock skew", "Payload timestamp minus receive time; large values make freshness and divergence hard to read.",
              [(f'peerscope_peer_clock_skew_seconds{{{P}}}', "{{instance}}")], unit="s", w=12),
    ], extra_vars=(peer_var,))


def sidecar_health():
    L = Layout()
    return dashboard("peerscope-sidecar", "peerscope / Sidecar health", "The sidecar itself: scrapes, reloads, checkpoints, resources.", [
        panel(L, "stat", "Up", "Prometheus' view: 1 when the last scrape of the sidecar succeeded.", [(f'up{{{SEL}}}', "{{instance}}")],
              th=thresholds((None, "red"), (1, "green")), w=6, h=5, minmax=(0, 1)),
        panel(L, "stat", "Last reload", "1 when the last configuration (re)load succeeded; 0: a new configuration was refused and the old one runs.",
              [(f'peerscope_config_last_reload_successful{{{SEL}}}', "{{instance}}")], th=thresholds((None, "red"), (1, "green")), w=6, h=5, minmax=(0, 1)),
        panel(L, "stat", "Since last checkpoint", "Seconds since the last checkpoint was written.",
              [(f'time() - peerscope_checkpoint_last_success_timestamp_seconds{{{SEL}}}', "{{instance}}")], unit="s",
              th=thresholds((None, "green"), (120, "orange"), (600, "red")), w=6, h=5),
        panel(L, "stat", "Version", "peerscope version and revision.", [(f'peerscope_build_info{{{SEL}}}', "{{version}} ({{revision}})")],
              w=6, h=5, extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "textMode": "name"}}),
        panel(L, "timeseries", "Scrape duration", "How long Prometheus takes to scrape the sidecar's /metrics.",
              [(f'scrape_duration_seconds{{{SEL}}}', "{{instance}}")], unit="s", w=12),
        panel(L, "timeseries", "Config reloads", "Reloads and refused reloads per interval.",
              [(f'increase(peerscope_config_reloads_total{{{SEL}}}[$__rate_interval])', "reloads {{instance}}"),
               (f'increase(peerscope_config_reload_failures_total{{{SEL}}}[$__rate_interval])', "refused {{instance}}")], w=12),
        panel(L, "timeseries", "Checkpoints", "Checkpoint writes and failed writes per interval.",
              [(f'increase(peerscope_checkpoint_writes_total{{{SEL}}}[$__rate_interval])', "written {{instance}}"),
               (f'increase(peerscope_checkpoint_write_failures_total{{{SEL}}}[$__rate_interval])', "failed {{instance}}")], w=12),
        panel(L, "timeseries", "Pulls per second", "Pulls of the local node and the peers.",
              [(f'sum by (instance) (rate(peerscope_peer_polls_total{{{SEL}}}[$__rate_interval])) + on(instance) group_left sum by (instance) (rate(peerscope_node_polls_total{{{SEL}}}[$__rate_interval]))', "{{instance}}")],
              unit="reqps", w=12),
        panel(L, "timeseries", "CPU", "CPU seconds per second used by the sidecar.",
              [(f'rate(process_cpu_seconds_total{{{SEL}}}[$__rate_interval])', "{{instance}}")], unit="percentunit", w=8),
        panel(L, "timeseries", "Memory", "Resident memory of the sidecar.",
              [(f'process_resident_memory_bytes{{{SEL}}}', "{{instance}}")], unit="bytes", w=8),
        panel(L, "timeseries", "File descriptors", "Open file descriptors, and the limit.",
              [(f'process_open_fds{{{SEL}}}', "open {{instance}}"), (f'process_max_fds{{{SEL}}}', "max {{instance}}")], w=8),
    ])


for name, board in [("overview", overview()), ("peer", peer_detail()), ("sidecar", sidecar_health())]:
    (HERE / f"peerscope-{name}.json").write_text(json.dumps(board, indent=2) + "\n")
