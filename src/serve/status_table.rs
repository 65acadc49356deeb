//! A human-readable table of a sidecar's `/status` document, for `peerscope status` and
//! the demo's live view.

use std::fmt::Write;

use serde_json::Value;

use crate::outside::text::printable;

/// Why a sidecar's `/status` could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No answer: refused, timed out, broken.
    #[error("{url}: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("{url}: answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("{url}: not a status document: {source}")]
    NotAStatusDocument {
        url: String,
        source: serde_json::Error,
    },
}

/// Fetches a sidecar's `/status` document; `base_url` is like `http://127.0.0.1:9478`.
pub async fn fetch(client: &reqwest::Client, base_url: &str) -> Result<Value, StatusError> {
    let url = format!("{}/status", base_url.trim_end_matches('/'));
    let request = |source| StatusError::Request {
        url: url.clone(),
        source,
    };
    let response = client.get(&url).send().await.map_err(request)?;
    if !response.status().is_success() {
        let status = response.status();
        return Err(StatusError::Status { url, status });
    }
    let body = response.bytes().await.map_err(request)?;
    serde_json::from_slice(&body).map_err(|source| StatusError::NotAStatusDocument { url, source })
}

/// Renders the table. Works on the JSON so it can show any sidecar's status, even one of
/// another version.
pub fn render(status: &Value) -> String {
    let mut out = String::new();
    let node = &status["node"];
    let federation = &status["federation"];
    let _ = writeln!(
        out,
        "node {} ({}): {}, root {}  |  peers live {}/{}  |  novelty {}  |  g_star σ {}  |  divergence {}",
        text(&node["label"]),
        text(&node["node_id"]),
        if node["up"].as_bool() == Some(true) { "up" } else { "DOWN" },
        short_root(&node["state_root"]),
        text(&federation["peers_live"]),
        text(&federation["peers_configured"]),
        number(&federation["novelty"], 3),
        number(&federation["g_star_stddev"], 3),
        number(&federation["divergence_ratio"], 2),
    );
    let reconciliation = &status["reconciliation"];
    if reconciliation.is_object() {
        let decision = &reconciliation["decision"];
        let last = reconciliation["history"].as_array().and_then(|h| h.last());
        let _ = writeln!(
            out,
            "reconcile {} ({}): {}{}{}  |  requests {}  |  last: {}",
            text(&reconciliation["mode"]),
            text(&reconciliation["policy"]),
            text(&decision["kind"]),
            decision["reason"]
                .as_str()
                .map_or_else(String::new, |r| format!(" ({r})")),
            decision["target_root"]
                .as_str()
                .map_or_else(String::new, |r| format!(" → {}", truncate(r, 10))),
            text(&reconciliation["requests_total"]),
            last.map_or_else(
                || "-".into(),
                |l| format!(
                    "{} {}",
                    text(&l["outcome"]),
                    truncate(&text(&l["detail"]), 40)
                )
            ),
        );
        let confirmation = &reconciliation["confirmation"];
        if confirmation["state"].as_str().is_some_and(|s| s != "idle") {
            let _ = writeln!(
                out,
                "confirm {} → {}: {} of {} sampled of {} voters for it, {} failed  |  statistic {} (confirm at {}, refute at {})",
                text(&confirmation["state"]),
                truncate(&text(&confirmation["target_root"]), 10),
                text(&confirmation["for_target"]),
                text(&confirmation["sampled"]),
                text(&confirmation["voters"]),
                text(&confirmation["failed"]),
                text(&confirmation["statistic"]),
                text(&confirmation["confirm_at"]),
                text(&confirmation["refute_at"]),
            );
        }
    }
    for source in status["discovery"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "discovery {}: {} members{}",
            text(&source["source"]),
            text(&source["members"]),
            source["last_error"]
                .as_str()
                .map_or_else(String::new, |e| format!(
                    "  |  last refresh failed: {}",
                    truncate(e, 60)
                )),
        );
    }
    let _ = writeln!(
        out,
        "{:<24} {:<4} {:>7} {:>7} {:>8} {:>6} {:>6}  {:<10} {:<8} {:>6}  LAST ERROR",
        "PEER", "UP", "QUALITY", "SUCCESS", "P95", "FRESH", "G_STAR", "ROOT", "STATE", "STREAK",
    );
    for peer in status["peers"].as_array().into_iter().flatten() {
        let quality = &peer["quality"];
        let error = match &peer["last_error"] {
            Value::Object(e) => format!("{}: {}", text(&e["reason"]), text(&e["detail"])),
            _ => String::new(),
        };
        let p95 = match quality["latency_p95_seconds"].as_f64() {
            Some(seconds) => format!("{:.0}ms", seconds * 1000.0),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<4} {:>7} {:>7} {:>8} {:>6} {:>6}  {:<10} {:<8} {:>6}  {}",
            truncate(&text(&peer["label"]), 24),
            if peer["up"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            number(&quality["quality"], 3),
            number(&quality["success_ratio"], 2),
            p95,
            number(&quality["freshness"], 2),
            number(&peer["g_star"], 3),
            short_root(&peer["state_root"]),
            text(&peer["relation"]),
            text(&peer["streak"]),
            truncate(&error, 60),
        );
    }
    out
}

/// A value as table text. Strings are made printable: a root, an id or an error detail
/// can come from a peer, and must not move the cursor or repaint the terminal.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => printable(s).into_owned(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn number(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "-".into(), |n| format!("{n:.decimals$}"))
}

fn short_root(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| "-".into(), |root| truncate(&printable(root), 10))
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max - 1).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 12): strings from a peer reached the terminal raw.
    #[test]
    fn strings_from_a_peer_cannot_reach_the_terminal_raw() {
        let status = serde_json::json!({
            "node": {"label": "n", "node_id": "nova-a\u{1b}[2J", "up": true, "state_root": "a\nb"},
            "peers": [{"label": "p\r", "up": false, "state_root": "\u{1b}]0;x\u{7}", "relation": "unknown", "streak": 0,
                       "last_error": {"reason": "schema", "detail": "metrics.g_components.\n\u{1b}[31mforged"}}],
            "federation": {}, "reconciliation": {}
        });
        let table = render(&status);
        assert!(
            !table.contains('\u{1b}') && !table.contains('\r') && !table.contains('\u{7}'),
            "{table:?}"
        );
        assert!(table.contains("\\u{1b}"), "{table}");
        for line in table.lines() {
            assert!(
                !line.starts_with("\u{1b}[31mforged") && !line.starts_with("forged"),
                "{table}"
            );
        }
    }

    #[test]
    fn shows_the_reconciliation_decision_and_last_outcome() {
        let status = serde_json::json!({
            "node": {}, "federation": {}, "peers": [],
            "reconciliation": {"mode": "on", "policy": "majority", "requests_total": 2,
                "decision": {"kind": "suppressed", "reason": "cooldown", "target_root": "9f2c01d4e8a7"},
                "history": [{"outcome": "failed", "detail": "x"}, {"outcome": "success", "detail": "answered 200"}]}
        });
        let table = render(&status);
        let line = table.lines().nth(1).unwrap();
        assert_eq!(line, "reconcile on (majority): suppressed (cooldown) → 9f2c01d4e…  |  requests 2  |  last: success answered 200");
        assert!(
            !table.contains("confirm "),
            "no confirmation, no line: {table}"
        );
    }

    #[test]
    fn shows_the_confirmation_evidence() {
        let status = serde_json::json!({
            "node": {}, "federation": {}, "peers": [],
            "reconciliation": {"mode": "on", "policy": "majority", "requests_total": 0,
                "decision": {"kind": "suppressed", "reason": "confirming", "target_root": "b2"},
                "history": [],
                "confirmation": {"state": "confirming", "target_root": "b2", "for_target": 20,
                    "sampled": 32, "voters": 1000, "failed": 1, "statistic": 8, "confirm_at": 35, "refute_at": -25}}
        });
        let table = render(&status);
        let line = table.lines().nth(2).unwrap();
        assert_eq!(line, "confirm confirming → b2: 20 of 32 sampled of 1000 voters for it, 1 failed  |  statistic 8 (confirm at 35, refute at -25)");
    }

    #[test]
    fn shows_each_peer_with_its_figures_and_error() {
        let status = serde_json::json!({
            "node": {"label": "127.0.0.1:8000", "node_id": "nova-a", "up": true, "state_root": "abc"},
            "federation": {"peers_live": 1, "peers_configured": 2, "novelty": 0.1, "g_star_stddev": 0.05, "divergence_ratio": 0.0},
            "peers": [
                {"label": "nova-b", "up": true, "g_star": 0.4, "state_root": "abc", "relation": "agree", "streak": 0,
                 "quality": {"quality": 0.95, "success_ratio": 1.0, "latency_p95_seconds": 0.004, "freshness": 0.99}, "last_error": null},
                {"label": "nova-c", "up": false, "g_star": null, "state_root": null, "relation": "unknown", "streak": 0,
                 "quality": {"quality": 0.2, "success_ratio": 0.0, "latency_p95_seconds": null, "freshness": 0.0},
                 "last_error": {"reason": "timeout", "detail": "no complete answer within 2.5s"}}
            ]
        });
        let table = render(&status);
        assert!(table.contains("peers live 1/2"), "{table}");
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            !table.contains("reconcile"),
            "no reconciliation section, no line"
        );
        assert!(
            lines[2].starts_with("nova-b")
                && lines[2].contains("0.950")
                && lines[2].contains("4ms"),
            "{table}"
        );
        assert!(
            lines[3].contains("timeout: no complete answer within 2.5s"),
            "{table}"
        );
    }
}
