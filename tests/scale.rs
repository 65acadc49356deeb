//! Federation scale (SPEC §9) on the real binary: sampled observation by rendezvous hashing
//! from a shared member list that also names this node, and the series a sidecar exports
//! per observed peer in `full` and `lean` mode, counted in a real scrape.

mod common;

use common::{args, sample, until, Sidecar};
use peerscope::pull::assignment::Members;
use peerscope_lab::node::{NodeSpec, SimNode};

/// `count` simulated nodes named nova-00…, all on one root.
async fn federation(count: usize) -> Vec<SimNode> {
    let mut nodes = Vec::new();
    for i in 0..count {
        let spec = NodeSpec::healthy(&format!("nova-{i:02}"), "root", 0.5);
        nodes.push(
            SimNode::start("127.0.0.1:0".parse().unwrap(), spec)
                .await
                .unwrap(),
        );
    }
    nodes
}

/// A shared `file_sd` member list naming every node, this one included.
fn member_list(nodes: &[SimNode]) -> String {
    let groups: Vec<serde_json::Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            serde_json::json!({
                "targets": [n.address().to_string()],
                "labels": {"name": format!("nova-{i:02}")},
            })
        })
        .collect();
    serde_json::Value::Array(groups).to_string()
}

/// The peers `me` observes among `count` members, by the documented assignment.
fn expected_observed(count: usize, me: &str, k: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("nova-{i:02}")).collect();
    let members = Members::new(names.iter().map(String::as_str));
    names
        .iter()
        .filter(|peer| members.rank_among_observers(me, peer, k).is_some())
        .cloned()
        .collect()
}

async fn sampled_sidecar(nodes: &[SimNode], extra: &[&str]) -> (Sidecar, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let peers_file = dir.path().join("members.json");
    std::fs::write(&peers_file, member_list(nodes)).unwrap();
    let mut arguments = args(&[
        "--node",
        &nodes[0].url(),
        "--peers-file",
        peers_file.to_str().unwrap(),
        "--observers-per-peer",
        "3",
        "--interval",
        "200ms",
        "--timeout",
        "100ms",
    ]);
    arguments.extend(args(extra));
    (Sidecar::start(&arguments).await, dir)
}

async fn check_sampled_observation(sidecar: &Sidecar, nodes: &[SimNode]) {
    let expected = expected_observed(nodes.len(), "nova-00", 3);
    assert!(
        !expected.is_empty() && expected.len() < nodes.len() - 1,
        "a sample, not everyone: {expected:?}"
    );
    sidecar.wait_more_cycles(5).await;
    let text = sidecar.metrics().await;
    assert_eq!(
        sample(&text, "peerscope_peers_observed", &[]),
        Some(expected.len() as f64)
    );
    assert_eq!(
        sample(&text, "peerscope_observers_per_peer", &[]),
        Some(3.0)
    );
    // Configured: every member but this node.
    assert_eq!(
        sample(&text, "peerscope_peers_configured", &[]),
        Some((nodes.len() - 1) as f64)
    );
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let name = format!("nova-{i:02}");
        let observed = expected.contains(&name);
        let up = sample(&text, "peerscope_peer_up", &[("peer", &name)]);
        assert_eq!(up.is_some(), observed, "{name}: series iff observed");
        // A peer another member observes is never pulled by this sidecar.
        assert_eq!(node.requests() > 0, observed, "{name}: pulled iff observed");
    }
    assert!(
        sample(&text, "peerscope_peer_up", &[("peer", "nova-00")]).is_none(),
        "this node, listed in the member list, is skipped"
    );
    let status = sidecar.status().await;
    let observation = &status["observation"];
    assert_eq!(observation["name"], "nova-00");
    assert_eq!(observation["members"], nodes.len());
    assert_eq!(observation["skipped_self"], true);
    let ranks: Vec<u64> = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["observer_rank"].as_u64().unwrap())
        .collect();
    assert!(
        ranks.iter().all(|r| *r < 3),
        "each observed peer says why: {ranks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_pulls_only_the_peers_rendezvous_hashing_gives_it() {
    let nodes = federation(12).await;
    let (sidecar, _dir) = sampled_sidecar(&nodes, &["--name", "nova-00"]).await;
    check_sampled_observation(&sidecar, &nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_name_the_local_node_id_is_this_nodes_name() {
    let nodes = federation(12).await;
    let (sidecar, _dir) = sampled_sidecar(&nodes, &[]).await;
    check_sampled_observation(&sidecar, &nodes).await;
}

/// Series lines of a scrape that carry `peer="…"`.
fn peer_series(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains("peer=\""))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_per_observed_peer_are_45_in_full_and_17_in_lean_mode() {
    let nodes = federation(4).await; // the local node and 3 peers
    let mut counts = Vec::new();
    for mode in ["full", "lean"] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("peerscope.toml");
        std::fs::write(&config, format!("[metrics]\nper_peer = \"{mode}\"\n")).unwrap();
        let mut arguments = args(&[
            "--config",
            config.to_str().unwrap(),
            "--node",
            &nodes[0].url(),
        ]);
        for node in &nodes[1..] {
            arguments.extend(args(&["--peer", &node.url()]));
        }
        arguments.extend(args(&["--interval", "200ms", "--timeout", "100ms"]));
        let sidecar = Sidecar::start(&arguments).await;
        until(10, "every peer to answer", || async {
            sample(&sidecar.metrics().await, "peerscope_peers_live", &[]) == Some(3.0)
        })
        .await;
        let text = sidecar.metrics().await;
        let total = text.lines().filter(|l| !l.starts_with('#')).count();
        counts.push((mode, peer_series(&text), total));
    }
    println!("series (mode, per-peer series for 3 peers, all series): {counts:?}");
    assert_eq!(counts[0].1, 3 * 45, "full");
    assert_eq!(counts[1].1, 3 * 17, "lean");
    // Everything else does not depend on the peers: the same in both modes.
    assert_eq!(counts[0].2 - counts[0].1, counts[1].2 - counts[1].1);
}
