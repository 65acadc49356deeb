//! The dashboards and alerts against the real thing: Debian's Prometheus scrapes a real
//! peerscope beside simulated nodes; every query of every dashboard panel must parse and
//! return series; then a peer goes down while the local node is in the minority, and the
//! matching alerts fire in Prometheus, reach a real Alertmanager and are delivered to a
//! webhook receiver run by this test. (Every rule duration is divided by 24 here, see
//! `peerscope_lab::federation::fast_rules`; `promtool test rules` checks the real ones.)

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{args, free_address, start_prometheus, until, Sidecar};
use peerscope_lab::federation::{write_fast_rules, Daemon, Webhook};
use peerscope_lab::node::{Behavior, NodeSpec, SimNode};
use serde_json::Value;

async fn get_json(url: &str) -> Option<Value> {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .ok()?;
    serde_json::from_slice(&response.bytes().await.ok()?).ok()
}

/// A panel query as Grafana would send it for this scenario.
fn substitute(expr: &str, peer: &str) -> String {
    expr.replace("$job", "peerscope")
        .replace("$instance", ".+")
        .replace("$peer", peer)
        .replace("$__rate_interval", "30s")
}

#[ignore = "needs prometheus and prometheus-alertmanager (Debian); run by .ci/test"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_query_real_data_and_alerts_reach_alertmanager() {
    // The local node is on another root than its three peers: in the minority.
    let loopback = "127.0.0.1:0".parse().unwrap();
    let local = SimNode::start(loopback, NodeSpec::healthy("nova-local", "behind", 0.5))
        .await
        .unwrap();
    let mut peers = Vec::new();
    for (name, g) in [("a", 0.2), ("b", 0.5), ("c", 0.8)] {
        peers.push((
            name,
            SimNode::start(
                loopback,
                NodeSpec::healthy(&format!("nova-{name}"), "ahead", g),
            )
            .await
            .unwrap(),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "node = \"{}\"\ninterval = \"500ms\"\ntimeout = \"250ms\"\nlive_max_age = \"3s\"\n[reconcile]\nmode = \"dry-run\"\nthreshold = 2\n[checkpoint]\npath = \"{}\"\ninterval = \"1s\"\n",
        local.url(),
        dir.path().join("state.json").display()
    );
    for (name, node) in &peers {
        config += &format!("[[peers]]\nname = \"{name}\"\nurl = \"{}\"\n", node.url());
    }
    let config_path = dir.path().join("peerscope.toml");
    std::fs::write(&config_path, config).unwrap();
    let sidecar = Sidecar::start(&args(&["--config", config_path.to_str().unwrap()])).await;
    let sidecar_address = sidecar.base.trim_start_matches("http://").to_owned();

    let webhook = Webhook::start().await.unwrap();
    let hook_url = webhook.url.clone();
    let alertmanager_address = free_address();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!("route:\n  receiver: test\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    webhook_configs:\n      - url: {hook_url}\n"),
    )
    .unwrap();
    let _alertmanager = Daemon::start(
        "prometheus-alertmanager",
        &[
            format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ),
            format!("--storage.path={}", dir.path().join("am-data").display()),
            format!("--web.listen-address={alertmanager_address}"),
            "--cluster.listen-address=".into(),
        ],
        &dir.path().join("alertmanager.log"),
    )
    .unwrap();

    let rules: Vec<String> = [
        "peerscope.rules.yml",
        "observations.rules.yml",
        "consensus.rules.yml",
    ]
    .iter()
    .map(|name| {
        let rules = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts"));
        write_fast_rules(rules, name, dir.path())
            .unwrap()
            .display()
            .to_string()
    })
    .collect();
    let (_prometheus, api) = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{rules}]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager_address}']\nscrape_configs:\n  - job_name: peerscope\n    static_configs:\n      - targets: ['{sidecar_address}']\n",
            rules = rules.join(", ")
        ),
    );
    let query = |expr: String| {
        let api = api.clone();
        async move {
            let url = reqwest::Url::parse_with_params(&format!("{api}/query"), &[("query", expr)])
                .unwrap();
            get_json(url.as_str()).await
        }
    };
    until(60, "Prometheus to scrape peerscope for a while", || async {
        query("count_over_time(up{job=\"peerscope\"}[1m]) >= 12".into())
            .await
            .is_some_and(|v| {
                v["data"]["result"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
            })
    })
    .await;

    // Every query of every panel parses and returns series.
    let mut checked = 0;
    let mut empty = Vec::new();
    for file in [
        "peerscope-overview.json",
        "peerscope-peer.json",
        "peerscope-sidecar.json",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("dashboards")
            .join(file);
        let board: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(
            board["id"].is_null() && board["uid"].is_string(),
            "{file}: id must be null and uid fixed"
        );
        for panel in board["panels"].as_array().unwrap() {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}: {}",
                panel["title"]
            );
            assert!(
                !panel["description"].as_str().unwrap_or("").is_empty(),
                "{file}: {} has no description",
                panel["title"]
            );
            for target in panel["targets"].as_array().unwrap() {
                let expr = substitute(target["expr"].as_str().unwrap(), "a");
                let answer = query(expr.clone())
                    .await
                    .unwrap_or_else(|| panic!("no answer for {expr}"));
                assert_eq!(
                    answer["status"], "success",
                    "{file} / {}: {expr}: {answer}",
                    panel["title"]
                );
                if answer["data"]["result"]
                    .as_array()
                    .is_none_or(|r| r.is_empty())
                {
                    empty.push(format!("{file} / {}: {expr}", panel["title"]));
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} queries");
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );

    // Faults: peer b goes down; the local node has been in the minority all along.
    peers[1].1.set_behavior(Behavior::Status(500));
    let expected = [
        "PeerscopePeerDownByConsensus",
        "PeerscopeLocalNodeInMinority",
        "PeerscopeStateDivergencePersistent",
    ];
    until(90, "the alerts to fire in Prometheus", || async {
        let Some(alerts) = get_json(&format!("{api}/alerts")).await else {
            return false;
        };
        let firing: BTreeSet<String> = alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
            .collect();
        expected.iter().all(|name| firing.contains(*name))
    })
    .await;
    let alerts = get_json(&format!("{api}/alerts")).await.unwrap();
    let peer_down = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "PeerscopePeerDownByConsensus")
        .unwrap();
    assert_eq!(peer_down["labels"]["peer"], "b", "{peer_down}");
    until(60, "the alerts to reach Alertmanager", || async {
        let Some(alerts) = get_json(&format!("http://{alertmanager_address}/api/v2/alerts")).await
        else {
            return false;
        };
        let names: BTreeSet<&str> = alerts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["labels"]["alertname"].as_str())
            .collect();
        expected.iter().all(|name| names.contains(name))
    })
    .await;
    until(60, "the webhook to receive them", || async {
        let names: BTreeSet<String> = webhook
            .received()
            .into_iter()
            .map(|a| a.alertname)
            .collect();
        expected.iter().all(|name| names.contains(*name))
    })
    .await;
    // A healthy federation part stays quiet: nothing about peers a or c.
    let firing_for_healthy = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| {
            a["labels"]["alertname"] == "PeerscopePeerDownByConsensus" && a["labels"]["peer"] != "b"
        });
    assert!(!firing_for_healthy);
}
