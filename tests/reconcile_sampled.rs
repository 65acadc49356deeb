//! Confirmation before acting with the real binary (SPEC §6): one sidecar with sampled
//! observation (K = 2 of 13 members) beside simulated nodes. On the minority root, in
//! `dry-run`, it confirms the majority root on random members and records the request it
//! would send — with its evidence, valid against the contract — and sends nothing; on the
//! majority root it refutes the minority root and asks nothing.

mod common;

use common::{args, reconcile_request_schema, sample, until, Sidecar};
use peerscope_lab::node::{NodeSpec, SimNode};
use serde_json::Value;

struct Sampled {
    local: SimNode,
    _peers: Vec<SimNode>,
    sidecar: Sidecar,
    _dir: tempfile::TempDir,
}

/// The local node on `local_root`, twelve peers (`on_other` of them on "other", the rest
/// on "root"), K = 2, reconciliation in `mode`.
async fn sampled(local_root: &str, on_other: usize, mode: &str) -> Sampled {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let local = SimNode::start(loopback, NodeSpec::healthy("nova-local", local_root, 0.5))
        .await
        .unwrap();
    let mut peers = Vec::new();
    for i in 0..12 {
        let root = if i < on_other { "other" } else { "root" };
        let spec = NodeSpec::healthy(&format!("nova-{i}"), root, 0.5);
        peers.push(SimNode::start(loopback, spec).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let mut toml = format!(
        "node = \"{}\"\nname = \"nova-local\"\nobservers_per_peer = 2\ninterval = \"200ms\"\ntimeout = \"150ms\"\nlive_max_age = \"2s\"\n",
        local.url()
    );
    for (i, peer) in peers.iter().enumerate() {
        toml += &format!("[[peers]]\nname = \"nova-{i}\"\nurl = \"{}\"\n", peer.url());
    }
    toml += &format!("[reconcile]\nmode = \"{mode}\"\nthreshold = 2\n");
    let path = dir.path().join("peerscope.toml");
    std::fs::write(&path, toml).unwrap();
    let sidecar = Sidecar::start(&args(&["--config", path.to_str().unwrap()])).await;
    Sampled {
        local,
        _peers: peers,
        sidecar,
        _dir: dir,
    }
}

async fn confirmation(sidecar: &Sidecar) -> Value {
    sidecar.status().await["reconciliation"]["confirmation"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_node_confirms_on_random_members_and_dry_run_records_the_evidence() {
    let fed = sampled("root", 9, "dry-run").await;
    until(30, "the majority root confirmed", || async {
        confirmation(&fed.sidecar).await["state"] == "confirmed"
    })
    .await;
    let status = fed.sidecar.status().await;
    let reconciliation = &status["reconciliation"];
    assert_eq!(status["observation"]["observers_per_peer"], 2);
    assert!(status["observation"]["not_observed"].as_u64().unwrap() > 0);
    let evidence = &reconciliation["confirmation"];
    assert_eq!(evidence["target_root"], "other");
    assert_eq!(evidence["voters"], 13);
    // Confirmed exactly: 7 of 13 voters hold "other" whatever the undrawn members hold.
    assert!(evidence["for_target"].as_u64().unwrap() >= 7, "{evidence}");
    until(10, "the dry-run request recorded", || async {
        fed.sidecar.status().await["reconciliation"]["dry_run_request"].is_object()
    })
    .await;
    let body = fed.sidecar.status().await["reconciliation"]["dry_run_request"].clone();
    let errors: Vec<String> = reconcile_request_schema()
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{body}");
    assert_eq!(body["target_root"], "other");
    assert!(
        body["confirmation"]["for_target"].as_u64().unwrap() >= 7,
        "{body}"
    );
    let sources = body["sources"].as_array().unwrap();
    assert!(sources.len() >= 7, "sampled holders are sources: {body}");
    assert!(
        fed.local.reconcile_requests().is_empty(),
        "dry-run sends nothing"
    );

    let metrics = fed.sidecar.metrics().await;
    let confirmed = sample(
        &metrics,
        "peerscope_reconcile_confirmations_total",
        &[("outcome", "confirmed")],
    );
    assert_eq!(confirmed, Some(1.0));
    let pulls = sample(
        &metrics,
        "peerscope_reconcile_confirmation_pulls_total",
        &[],
    )
    .unwrap();
    assert!((7.0..=12.0).contains(&pulls), "{pulls} confirmation pulls");
    assert!(sample(&metrics, "peerscope_reconcile_probe_pulls_total", &[]).unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_majority_node_refutes_the_minority_root_and_asks_nothing() {
    let fed = sampled("other", 9, "on").await;
    until(30, "the minority root refuted", || async {
        confirmation(&fed.sidecar).await["state"] == "refuted"
    })
    .await;
    let evidence = confirmation(&fed.sidecar).await;
    assert_eq!(evidence["target_root"], "root");
    assert!(evidence["hold_remaining_seconds"].as_f64().unwrap() > 0.0);
    fed.sidecar.wait_more_cycles(5).await;
    assert!(fed.local.reconcile_requests().is_empty());
    let metrics = fed.sidecar.metrics().await;
    let unconfirmed = sample(
        &metrics,
        "peerscope_reconcile_suppressed_total",
        &[("reason", "unconfirmed")],
    )
    .unwrap();
    assert!(unconfirmed >= 1.0, "{metrics}");
    assert_eq!(
        sample(&metrics, "peerscope_reconcile_requests_total", &[]),
        Some(0.0)
    );
}
