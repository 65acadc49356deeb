//! Issue 10, item 2: `/metrics` speaks OpenMetrics 1.0 when the scraper prefers it, as
//! Prometheus does — checked by the Prometheus project's reference parser
//! (prometheus_client, installed by .ci/test) and by a real Prometheus scraping it. Text
//! 0.0.4 (what promtool check metrics reads) stays the default; `tests/contract.rs` runs
//! promtool on it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{args, free_address, sample, start_prometheus, until, Sidecar};
use peerscope_lab::node::{NodeSpec, SimNode};

/// The Accept header Prometheus 2.42 sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The Python with prometheus_client: `PEERSCOPE_TEST_PYTHON`, or .ci/test's virtualenv.
fn python() -> String {
    std::env::var("PEERSCOPE_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/target/ci-tools/venv/bin/python3",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// What the reference parser says of `text`: its summary line, or the error.
fn reference_parse(text: &str) -> Result<String, String> {
    let mut child = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/openmetrics_check.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "a Python with prometheus_client (bash .ci/test installs it into target/ci-tools/venv)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(said)
    } else {
        Err(format!("{said}{}", String::from_utf8_lossy(&output.stderr)))
    }
}

async fn scrape(base: &str, accept: Option<&str>) -> (String, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.get(format!("{base}/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.text().await.unwrap())
}

#[ignore = "needs prometheus (Debian) and prometheus_client (the CI venv); run by .ci/test"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_when_asked_valid_for_the_reference_parser_and_a_real_prometheus() {
    let node = SimNode::start(free_address(), NodeSpec::healthy("nova-a", "r", 0.5))
        .await
        .unwrap();
    let peer = SimNode::start(free_address(), NodeSpec::healthy("nova-b", "r", 0.6))
        .await
        .unwrap();
    let mut sidecar = Sidecar::spawn(&args(&[
        "--node",
        &node.url(),
        "--peer",
        &format!("nova-b={}", peer.url()),
        "--peer",
        &format!("gone={}", common::closed_port_url()),
        "--interval",
        "300ms",
        "--timeout",
        "200ms",
    ]));
    sidecar.wait_ready().await;
    sidecar.wait_more_cycles(2).await;

    // Without Accept, or asking for text: 0.0.4, no `# EOF`.
    for accept in [None, Some("text/plain;version=0.0.4"), Some("*/*")] {
        let (content_type, text) = scrape(&sidecar.base, accept).await;
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert!(!text.contains("# EOF"));
        assert!(text.contains("# TYPE peerscope_peer_polls_total counter"));
    }

    // Prometheus' Accept: OpenMetrics, which the reference parser accepts.
    let (content_type, text) = scrape(&sidecar.base, Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(text.ends_with("# EOF\n"), "{}", &text[text.len() - 200..]);
    assert!(text.contains("# TYPE peerscope_peer_polls counter\n"));
    assert!(text.contains("# TYPE process_cpu_seconds counter\n"));
    assert!(text.contains("peerscope_peer_polls_total{peer=\"nova-b\"}"));
    assert!(!text.contains("_created"), "off by default");
    let said = reference_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(said.ends_with(", 0 _created"), "{said}");
    // The same figures as in text 0.0.4 (the counters may have moved on by a cycle).
    assert_eq!(
        sample(&text, "peerscope_peer_up", &[("peer", "nova-b")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "peerscope_peer_up", &[("peer", "gone")]),
        Some(0.0)
    );

    // The parser is strict: the same text without `# EOF` is refused.
    let cut = text.trim_end_matches("# EOF\n");
    assert!(reference_parse(cut).is_err(), "a check that cannot fail");

    // With `metrics.created_samples`: every counter and histogram carries `_created`.
    sidecar.terminate();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("peerscope.toml");
    std::fs::write(
        &config,
        format!(
            "node = \"{}\"\ninterval = \"300ms\"\ntimeout = \"200ms\"\n[metrics]\ncreated_samples = true\n[[peers]]\nname = \"nova-b\"\nurl = \"{}\"\n",
            node.url(),
            peer.url()
        ),
    )
    .unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let sidecar = Sidecar::start(&args(&["--config", config.to_str().unwrap()])).await;
    sidecar.wait_more_cycles(2).await;
    let (_, text) = scrape(&sidecar.base, Some(PROMETHEUS_ACCEPT)).await;
    let said = reference_parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let created = sample(&text, "peerscope_peer_polls_created", &[("peer", "nova-b")])
        .expect("a peer counter's _created");
    assert!((created - started).abs() < 30.0, "{created} vs {started}");
    assert!(sample(
        &text,
        "peerscope_peer_poll_duration_seconds_created",
        &[("peer", "nova-b")]
    )
    .is_some());
    assert!(sample(&text, "peerscope_cycles_created", &[]).is_some());
    assert!(sample(&text, "process_cpu_seconds_created", &[]).is_some());
    let counters = text
        .lines()
        .filter(|l| {
            l.starts_with("# TYPE ") && (l.ends_with(" counter") || l.ends_with(" histogram"))
        })
        .count();
    assert!(counters > 10, "{counters}");
    assert!(!said.ends_with(" 0 _created"), "{said}");

    // A real Prometheus negotiates OpenMetrics with it and stores what it says.
    let target = sidecar.base.trim_start_matches("http://");
    let (_prometheus, api) = start_prometheus(
        dir.path(),
        &format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: peerscope\n    static_configs: [{{targets: ['{target}']}}]\n"),
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let query = |expr: &'static str| {
        let (client, api) = (client.clone(), api.clone());
        async move {
            let url = reqwest::Url::parse_with_params(&format!("{api}/query"), &[("query", expr)])
                .unwrap();
            let body = client.get(url).send().await.ok()?.bytes().await.ok()?;
            let document: serde_json::Value = serde_json::from_slice(&body).ok()?;
            document["data"]["result"].as_array().cloned()
        }
    };
    until(60, "Prometheus to store the OpenMetrics scrape", || async {
        query("peerscope_peer_polls_created{peer=\"nova-b\"}")
            .await
            .is_some_and(|r| r.len() == 1)
    })
    .await;
    let up = query("up{job=\"peerscope\"} == 1").await.unwrap();
    assert_eq!(up.len(), 1);
    let polls = query("peerscope_peer_polls_total{peer=\"nova-b\"} > 0")
        .await
        .unwrap();
    assert_eq!(
        polls.len(),
        1,
        "counters keep their _total name in Prometheus"
    );
}
