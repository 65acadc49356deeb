//! The real binary against simulated peers over loopback: each hostile behaviour of SPEC §5
//! on its own peer is classified with exactly its reason, while the healthy peers' figures
//! stay correct.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{args, closed_port_url, sample, Sidecar};
use peerscope_lab::node::{Behavior, NodeSpec, SimNode};

const ROOT: &str = "root-1";
const REASONS: [&str; 9] = [
    "timeout",
    "connect",
    "http_status",
    "redirect",
    "body_too_large",
    "decode",
    "schema",
    "unsupported_version",
    "identity",
];

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn node(node_id: &str, behavior: Behavior) -> SimNode {
    let spec = NodeSpec {
        behavior,
        ..NodeSpec::healthy(node_id, ROOT, 0.5)
    };
    SimNode::start(loopback(), spec).await.unwrap()
}

fn raw(body: &str) -> Behavior {
    Behavior::Raw(body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_is_classified_with_its_reason_and_healthy_peers_are_unaffected() {
    let local = node("nova-local", Behavior::Healthy).await;
    let redirect_target = node("nova-elsewhere", Behavior::Healthy).await;
    let valid_but = |change: &str| {
        format!(r#"{{"node_id":"odd","timestamp":1762534863,"state_root":"{ROOT}",{change}}}"#)
    };

    // (peer name, simulated node or None for a closed port, expected failure reason or None)
    let mut nodes = Vec::new();
    let cases: Vec<(&str, Behavior, Option<&str>)> = vec![
        ("healthy-b", Behavior::Healthy, None),
        ("healthy-c", Behavior::Healthy, None),
        ("hang", Behavior::Hang, Some("timeout")),
        ("reset", Behavior::Reset, Some("connect")),
        ("status-500", Behavior::Status(500), Some("http_status")),
        // Regression (issue 12): 304 was counted as a redirect.
        ("status-304", Behavior::Status(304), Some("http_status")),
        (
            "redirect",
            Behavior::Redirect(format!("{}/federation/sync/summary", redirect_target.url())),
            Some("redirect"),
        ),
        (
            "huge-body",
            Behavior::HugeBody(20 * 1024 * 1024),
            Some("body_too_large"),
        ),
        (
            "drip",
            Behavior::Drip(Duration::from_millis(100)),
            Some("timeout"),
        ),
        ("invalid-json", raw("{\"node_id\": \"x\", "), Some("decode")),
        (
            "nan",
            raw(&valid_but(r#""metrics":{"g_star":NaN}"#)),
            Some("decode"),
        ),
        (
            "out-of-range",
            raw(&valid_but(r#""metrics":{"g_star":1.7}"#)),
            Some("schema"),
        ),
        (
            "missing-field",
            raw(r#"{"node_id":"odd","metrics":{"g_star":0.5}}"#),
            Some("schema"),
        ),
        // Regression (issue 12): a root with a line break and a terminal escape forged a
        // whole log line; the contract now allows printable ASCII only.
        (
            "control-root",
            raw(
                r#"{"node_id":"odd","timestamp":1762534863,"state_root":"ab\n2026-12-01T00:00:00Z INFO forged \u001b[31m","metrics":{"g_star":0.5}}"#,
            ),
            Some("schema"),
        ),
        (
            "version-2",
            raw(&valid_but(r#""schema_version":2,"metrics":{"g_star":0.5}"#)),
            Some("unsupported_version"),
        ),
    ];
    let mut peer_args = Vec::new();
    for (name, behavior, _) in &cases {
        let sim = node(&format!("nova-{name}"), behavior.clone()).await;
        peer_args.push(format!("{name}={}", sim.url()));
        nodes.push(sim);
    }
    // Identity: a second URL for the local node, and two URLs that report one node_id.
    let self_peer = node("nova-local", Behavior::Healthy).await;
    let duplicate_first = node("nova-twin", Behavior::Healthy).await;
    let duplicate_second = node("nova-twin", Behavior::Healthy).await;
    let refused = closed_port_url();

    let config_dir = tempfile::tempdir().unwrap();
    let config_path = config_dir.path().join("peerscope.toml");
    let mut toml = format!(
        "node = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nwindow = \"1m\"\nlive_max_age = \"10s\"\n",
        local.url()
    );
    for pair in &peer_args {
        let (name, url) = pair.split_once('=').unwrap();
        toml += &format!("[[peers]]\nname = \"{name}\"\nurl = \"{url}\"\n");
    }
    for (name, url) in [
        ("self", self_peer.url()),
        ("twin-first", duplicate_first.url()),
        ("twin-second", duplicate_second.url()),
        ("refused", refused),
    ] {
        toml += &format!("[[peers]]\nname = \"{name}\"\nurl = \"{url}\"\n");
    }
    std::fs::write(&config_path, toml).unwrap();

    let sidecar = Sidecar::start(&args(&["--config", config_path.to_str().unwrap()])).await;
    sidecar.wait_cycles(4).await;
    let text = sidecar.metrics().await;
    let status = sidecar.status().await;
    let log = sidecar.log();
    assert!(
        !log.lines().any(|line| line.contains("forged")),
        "a peer's text reached the log:\n{log}"
    );

    let mut expectations: Vec<(&str, Option<&str>)> =
        cases.iter().map(|(n, _, r)| (*n, *r)).collect();
    expectations.extend([
        ("self", Some("identity")),
        ("twin-first", None),
        ("twin-second", None),
        ("refused", Some("connect")),
    ]);
    for (peer, expected) in &expectations {
        let polls = sample(&text, "peerscope_peer_polls_total", &[("peer", peer)]).unwrap();
        assert!(polls >= 3.0, "{peer}: only {polls} polls");
        for reason in REASONS {
            let failures = sample(
                &text,
                "peerscope_peer_poll_failures_total",
                &[("peer", peer), ("reason", reason)],
            )
            .unwrap();
            let want = if Some(reason) == *expected {
                polls
            } else {
                0.0
            };
            assert_eq!(
                failures, want,
                "{peer}: failures with reason {reason}\n{text}"
            );
        }
        let up = sample(&text, "peerscope_peer_up", &[("peer", peer)]).unwrap();
        assert_eq!(
            up,
            if expected.is_none() { 1.0 } else { 0.0 },
            "{peer}: peer_up"
        );
        let entry = status["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["label"] == *peer)
            .unwrap();
        match expected {
            Some(reason) => {
                assert_eq!(
                    entry["last_error"]["reason"], *reason,
                    "{peer}: /status last_error"
                );
                assert!(!entry["last_error"]["detail"].as_str().unwrap().is_empty());
                assert!(sample(&text, "peerscope_peer_quality", &[("peer", peer)]).unwrap() < 0.5);
            }
            None => {
                assert!(entry["last_error"].is_null(), "{peer}: {entry}");
                assert_eq!(
                    sample(&text, "peerscope_peer_success_ratio", &[("peer", peer)]),
                    Some(1.0),
                    "{peer}"
                );
                let quality = sample(&text, "peerscope_peer_quality", &[("peer", peer)]).unwrap();
                assert!(quality > 0.9, "{peer}: quality {quality}");
                assert_eq!(
                    sample(&text, "peerscope_peer_state_divergent", &[("peer", peer)]),
                    Some(0.0)
                );
            }
        }
    }

    // Live peers are measured: exactly the four that answer validly (the two that report
    // one node_id are both up: contested, not refused — issue 19).
    assert_eq!(sample(&text, "peerscope_peers_live", &[]), Some(4.0));
    for twin in ["twin-first", "twin-second"] {
        assert_eq!(
            sample(
                &text,
                "peerscope_peer_identity_contested",
                &[("peer", twin)]
            ),
            Some(1.0),
            "{twin}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "peerscope_peer_identity_contested",
            &[("peer", "self")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "peerscope_peers_configured", &[]),
        Some(expectations.len() as f64)
    );
    assert_eq!(
        sample(&text, "peerscope_state_peers", &[("relation", "agree")]),
        Some(4.0)
    );
    assert_eq!(sample(&text, "peerscope_node_up", &[]), Some(1.0));
    assert_eq!(
        redirect_target.requests(),
        0,
        "the redirect target was contacted"
    );
    let twin = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "twin-second")
        .unwrap();
    assert!(
        twin["identity_problem"]
            .as_str()
            .unwrap()
            .contains("twin-first"),
        "{twin}"
    );
    let itself = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "self")
        .unwrap();
    assert!(
        itself["identity_problem"]
            .as_str()
            .unwrap()
            .contains("self-peering"),
        "{itself}"
    );

    // The 20 MiB body was refused while streaming: memory never came near holding it.
    let peak_mib = sidecar.peak_rss_kib() / 1024;
    assert!(
        peak_mib < 48,
        "peak RSS {peak_mib} MiB suggests a large body was buffered"
    );
    // Every failure reached the log, with the peer, the reason and a detail.
    let log = sidecar.log();
    assert!(
        log.contains("hang") && log.contains("timeout") && log.contains("no complete answer"),
        "{log}"
    );
}
