//! The contracts in `contracts/` are the source of truth: the schemas and the Rust code
//! must agree on every fixture, and a real scrape must export exactly the catalogued
//! families — which `promtool check metrics` must accept.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{args, Sidecar};
use peerscope::figures::window::Sample;
use peerscope::pull::contract::decode_summary;
use peerscope::pull::failure::FailureReason;
use peerscope::timeline::Anchor;
use peerscope_lab::node::{NodeSpec, SimNode};
use serde_json::Value;

fn contract(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contracts")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&contract(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn schema_and_decoder_agree_on_every_fixture() {
    let schema = validator("peer_sync_payload@1.yaml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/fixtures");
    let mut checked = 0;
    for expected_valid in [true, false] {
        let dir = root.join(if expected_valid { "valid" } else { "invalid" });
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let bytes = std::fs::read(&path).unwrap();
            // A body that is not JSON cannot satisfy any schema.
            let schema_accepts =
                serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| schema.is_valid(&v));
            let decoded = decode_summary(&bytes);
            assert_eq!(
                schema_accepts, expected_valid,
                "{name}: the schema's verdict"
            );
            assert_eq!(
                decoded.is_ok(),
                expected_valid,
                "{name}: the decoder's verdict: {decoded:?}"
            );
            if let Err(error) = decoded {
                let reason = name.split("__").next().unwrap();
                assert_eq!(error.reason.as_str(), reason, "{name}: {error}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} fixtures");
}

#[test]
fn reconcile_request_schema_accepts_and_rejects_its_fixtures() {
    let schema = validator("reconcile_request@1.yaml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/fixtures/reconcile_request");
    for (dir, expected) in [("valid", true), ("invalid", false)] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            assert_eq!(schema.is_valid(&value), expected, "{}", path.display());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn samples_serialise_to_the_peer_sample_contract() {
    let schema = validator("peer_sample@1.yaml");
    let anchor = tokio::time::Instant::now();
    tokio::time::advance(Duration::from_secs(5)).await;
    for failure in [None, Some(FailureReason::BodyTooLarge)] {
        let sample = Sample::new(anchor, Duration::from_millis(42), failure);
        let record = serde_json::to_value(sample.to_record(&Anchor::now())).unwrap();
        assert!(schema.is_valid(&record), "{record}");
        assert_eq!(record["duration_seconds"], 0.042);
    }
    let bad = serde_json::json!({"at": 1.0, "duration_seconds": 0.1, "failure": "exploded"});
    assert!(!schema.is_valid(&bad));
}

/// (name, type, label names, help) of every family in an exposition text.
fn families_in_scrape(text: &str) -> BTreeSet<(String, String, Vec<String>, String)> {
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            families.push((
                name.to_owned(),
                String::new(),
                BTreeSet::new(),
                help.to_owned(),
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (_, kind) = rest.split_once(' ').unwrap();
            families.last_mut().unwrap().1 = kind.to_owned();
        } else if let Some((series, _)) = line.split_once('{') {
            let labels = series_labels(line);
            let family = families.last_mut().unwrap();
            assert!(series.starts_with(&family.0), "{series} outside its family");
            family.2.extend(labels.into_iter().filter(|l| l != "le"));
        }
    }
    families
        .into_iter()
        .map(|(n, t, l, h)| (n, t, l.into_iter().collect(), h))
        .collect()
}

fn series_labels(line: &str) -> Vec<String> {
    let inside = line.split_once('{').unwrap().1.rsplit_once('}').unwrap().0;
    inside
        .split(',')
        .map(|pair| pair.split_once('=').unwrap().0.to_owned())
        .collect()
}

fn catalogue() -> BTreeSet<(String, String, Vec<String>, String)> {
    let document = contract("metrics@1.yaml");
    let schema = jsonschema::validator_for(&document).unwrap();
    document["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|family| {
            assert!(schema.is_valid(family), "{family}");
            let mut labels: Vec<String> = family["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_owned())
                .collect();
            labels.sort();
            let text = |key: &str| family[key].as_str().unwrap().to_owned();
            (text("name"), text("type"), labels, text("help"))
        })
        .collect()
}

#[ignore = "needs promtool (Debian prometheus); run by .ci/test"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_scrape_exports_exactly_the_catalogue_and_passes_promtool() {
    // The local node starts behind its two peers and is reconciled, so that every family
    // (the last reconciliation's timestamp included) has a sample.
    let loopback = "127.0.0.1:0".parse().unwrap();
    let local = SimNode::start(loopback, NodeSpec::healthy("nova-a", "behind", 0.4))
        .await
        .unwrap();
    let peer = SimNode::start(loopback, NodeSpec::healthy("nova-b", "root", 0.6))
        .await
        .unwrap();
    let other = SimNode::start(loopback, NodeSpec::healthy("nova-c", "root", 0.2))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("peerscope.toml");
    let state = dir.path().join("state.json");
    let text = format!(
        "[reconcile]\nmode = \"on\"\nthreshold = 1\ncooldown = \"1s\"\n[checkpoint]\npath = \"{}\"\ninterval = \"200ms\"\n",
        state.display()
    );
    std::fs::write(&config, text).unwrap();
    // An http_sd endpoint nobody serves: its failed refreshes give the discovery families
    // their samples, and its members (none) change nothing else.
    let http_sd = format!("{}/sd", common::closed_port_url());
    let sidecar = Sidecar::start(&args(&[
        "--config",
        config.to_str().unwrap(),
        "--node",
        &local.url(),
        "--peer",
        &peer.url(),
        "--peer",
        &other.url(),
        "--peers-http-sd",
        &http_sd,
        "--interval",
        "300ms",
        "--timeout",
        "150ms",
    ]))
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sidecar.status().await["reconciliation"]["last_success_timestamp_seconds"].is_null()
        || sidecar.status().await["checkpoint"]["last_success_at"].is_null()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no reconciliation or checkpoint in 30s:\n{}",
            sidecar.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(local.state_root(), "root");

    // The checkpoint it wrote matches its contract, samples included.
    let mut schema = contract("checkpoint@1.yaml");
    let mut sample_schema = contract("peer_sample@1.yaml");
    sample_schema
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !k.starts_with('$'));
    let samples = &mut schema["properties"]["payload"]["properties"]["store"]["properties"]
        ["peers"]["items"]["properties"]["samples"]["items"];
    assert_eq!(samples["$ref"], "peer_sample@1.yaml");
    *samples = sample_schema;
    let checkpoint: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&checkpoint)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // So does the committed one that seeds the checkpoint fuzz target, and it decodes.
    let seed_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/fixtures/checkpoint/valid.json");
    let seed_bytes = std::fs::read(&seed_path).unwrap();
    let seed: Value = serde_json::from_slice(&seed_bytes).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&seed)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", seed_path.display());
    peerscope::ops::checkpoint::decode(&seed_bytes, "valid.json").unwrap();
    assert!(!checkpoint["payload"]["store"]["peers"][0]["samples"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(checkpoint["payload"]["reconcile"]["history"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));
    let response = sidecar.get("/metrics").await;
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();

    let scraped = families_in_scrape(&text);
    let catalogued = catalogue();
    let missing: Vec<_> = catalogued.difference(&scraped).collect();
    let extra: Vec<_> = scraped.difference(&catalogued).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "catalogued but not scraped: {missing:#?}\nscraped but not catalogued: {extra:#?}"
    );
    assert!(
        !text
            .lines()
            .any(|l| !l.starts_with('#') && l.split(' ').count() > 2),
        "a sample carries a timestamp"
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is on PATH (Debian package `prometheus`; the test command installs it)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The pull-failure reasons are named in help texts, a contract, a dashboard and its
/// generator: every one of those lists is `FailureReason::ALL`, in order.
#[test]
fn every_written_list_of_pull_failure_reasons_is_the_enum() {
    use peerscope::serve::families;
    let expected: Vec<&str> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
    let listed = |text: &str, after: &str, until: char| -> Vec<String> {
        let start = text
            .find(after)
            .unwrap_or_else(|| panic!("{after:?} not found"))
            + after.len();
        let end = start + text[start..].find(until).expect("the list ends");
        text[start..end]
            .split(',')
            .map(|r| r.trim().to_owned())
            .collect()
    };
    for family in [
        families::PEER_POLL_FAILURES_TOTAL,
        families::NODE_POLL_FAILURES_TOTAL,
    ] {
        assert_eq!(
            listed(family.help, "by reason: ", '.'),
            expected,
            "{}",
            family.name
        );
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap();
    assert_eq!(
        listed(&read("contracts/peer_sample@1.yaml"), "- enum: [", ']'),
        expected,
        "contracts/peer_sample@1.yaml"
    );
    for dashboard in ["dashboards/build.py", "dashboards/peerscope-peer.json"] {
        assert_eq!(
            listed(&read(dashboard), "Failed pulls per second: ", '.'),
            expected,
            "{dashboard}"
        );
    }
}
