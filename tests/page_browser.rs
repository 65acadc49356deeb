//! The page at `/`, as a person sees it: Debian's headless Chromium, driven by
//! `tests/browser/page.mjs` (playwright-core), loads it from a real sidecar beside
//! simulated nodes — under a `/peerscope/` prefix, as behind a reverse proxy — and the test
//! checks that it loads with no console error, shows every peer with the figures
//! `/metrics` has, turns a peer's row down when the peer goes down, does not shift its
//! layout on update, renders 1,000 peers, and is small. `.ci/test` installs Chromium and
//! playwright-core (`npm ci --prefix tests/browser`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{args, sample, Sidecar};
use peerscope_lab::node::{Behavior, NodeSpec, SimNode};

/// The page must stay under this many bytes (issue 11: under 100 KB transferred).
const PAGE_LIMIT: usize = 100 * 1024;

#[ignore = "needs chromium (Debian), node and playwright-core; run by .ci/test"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_federation_and_follows_a_fault_in_a_real_browser() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists() && browser_dir.join("node_modules/playwright-core").exists(),
        "needs Debian's chromium and playwright-core: apt-get install chromium; npm ci --prefix tests/browser (bash .ci/test does both)"
    );
    let any = "127.0.0.1:0".parse().unwrap();
    let local = SimNode::start(any, NodeSpec::healthy("nova-a", "root-1", 0.5))
        .await
        .unwrap();
    let mut peers = Vec::new();
    let mut peer_args = Vec::new();
    for name in ["nova-b", "nova-c", "nova-d", "nova-e"] {
        let node = SimNode::start(any, NodeSpec::healthy(name, "root-1", 0.3))
            .await
            .unwrap();
        peer_args.extend(["--peer".to_owned(), format!("{name}={}", node.url())]);
        peers.push(node);
    }
    let mut arguments = args(&[
        "--node",
        &local.url(),
        "--interval",
        "1s",
        "--timeout",
        "500ms",
    ]);
    arguments.extend(peer_args);
    let sidecar = Sidecar::start(&arguments).await;

    let response = sidecar.get("/").await;
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();
    assert!(html.len() < PAGE_LIMIT, "the page is {} bytes", html.len());
    for absolute in ["href=\"/", "src=\"/", "fetch(\"/", "fetch('/"] {
        assert!(
            !html.contains(absolute),
            "an absolute link ({absolute}) breaks a path prefix"
        );
    }

    let screenshot =
        std::env::temp_dir().join(format!("peerscope-page-{}.png", std::process::id()));
    let mut driver = Command::new("node")
        .arg(browser_dir.join("page.mjs"))
        .arg(format!("{}/peerscope/", sidecar.base))
        .arg("/peerscope")
        .arg(peers.len().to_string())
        .arg(&screenshot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut to_driver = driver.stdin.take().unwrap();
    let mut from_driver = BufReader::new(driver.stdout.take().unwrap()).lines();
    let mut next = |what: &str| {
        let line = from_driver
            .next()
            .unwrap_or_else(|| panic!("the browser driver stopped before {what}"))
            .unwrap();
        let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
        assert_eq!(word, what, "{line}");
        rest.to_owned()
    };

    // Every peer, with the figures /metrics has. Healthy peers' success ratio, streak and
    // relation are the same every cycle; quality moves with freshness between pulls
    // (exp(−age / 3·interval), up to 0.28 of its 0.2 weight), hence the tolerance.
    let rows: Vec<serde_json::Value> = serde_json::from_str(&next("ROWS")).unwrap();
    let text = sidecar.metrics().await;
    assert_eq!(rows.len(), peers.len());
    for row in &rows {
        let peer = row["peer"].as_str().unwrap();
        let figure = |name: &str| sample(&text, name, &[("peer", peer)]).unwrap();
        let shown = |key: &str| row[key].as_str().unwrap().parse::<f64>().unwrap();
        assert_eq!(row["up"], "true", "{peer}");
        assert_eq!(figure("peerscope_peer_up"), 1.0, "{peer}");
        assert_eq!(
            shown("success"),
            figure("peerscope_peer_success_ratio"),
            "{peer}"
        );
        assert_eq!(
            shown("streak"),
            figure("peerscope_peer_divergence_streak"),
            "{peer}"
        );
        assert_eq!(row["relation"], "agree", "{peer}");
        assert_eq!(figure("peerscope_peer_state_divergent"), 0.0, "{peer}");
        // The row and the scrape are read at different moments, up to a few cycles apart on
        // a busy machine: freshness alone moves the quality by up to 0.2 · (1 − e^(−2/3)) ≈
        // 0.1 in two intervals, and one slow pull moves the latency score.
        let (page, metric) = (shown("quality"), figure("peerscope_peer_quality"));
        assert!(
            (page - metric).abs() <= 0.15,
            "{peer}: quality {page} on the page, {metric} in /metrics"
        );
    }

    // A peer goes down mid-test: its row turns down within a few cycles.
    peers[1].set_behavior(Behavior::Status(503));
    writeln!(to_driver, "FAULT nova-c").unwrap();
    let down = next("DOWN");
    println!("row of nova-c down {down} ms after the fault");
    assert_eq!(
        sample(
            &sidecar.metrics().await,
            "peerscope_peer_up",
            &[("peer", "nova-c")]
        ),
        Some(0.0)
    );
    let shift: f64 = next("SHIFT").parse().unwrap();
    println!("cumulative layout shift over the updates: {shift}");
    assert!(
        shift < 0.1,
        "the page shifted its layout on update: CLS {shift}"
    );

    let shot = next("SHOT");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{shot}: not a real screenshot"
    );
    let big = next("BIG");
    println!("1,000 peers rendered: {big} ms");
    let errors = next("ERRORS");
    assert_eq!(errors, "[]", "console errors in the page");
    drop(to_driver);
    assert!(driver.wait().unwrap().success());
    let _ = std::fs::remove_file(&shot);
}

/// Issue 11, item 2 (with issue 10's web configuration): the page works over TLS behind
/// basic auth — a browser without credentials gets 401, one with them sees every peer,
/// and no fetch of the page fails.
#[ignore = "needs chromium (Debian), node and playwright-core; run by .ci/test"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_over_tls_behind_basic_auth_in_a_real_browser() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && browser_dir.join("node_modules/playwright-core").exists(),
        "needs Debian's chromium and playwright-core (bash .ci/test installs both)"
    );
    let dir = tempfile::tempdir().unwrap();
    let authority = common::Authority::new("page test CA");
    let (cert, key) = authority.issue("localhost", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(dir.path().join("server.pem"), cert).unwrap();
    std::fs::write(dir.path().join("server.key"), key).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  operator: {}\n",
            bcrypt::hash("page-pass", 4).unwrap()
        ),
    )
    .unwrap();
    let any = common::free_address();
    let local = SimNode::start(any, NodeSpec::healthy("nova-a", "root-1", 0.5))
        .await
        .unwrap();
    let peer = SimNode::start(
        common::free_address(),
        NodeSpec::healthy("nova-b", "root-1", 0.3),
    )
    .await
    .unwrap();
    let sidecar = Sidecar::spawn(&args(&[
        "--node",
        &local.url(),
        "--peer",
        &format!("nova-b={}", peer.url()),
        "--interval",
        "1s",
        "--timeout",
        "500ms",
        "--web.config.file",
        web.to_str().unwrap(),
    ]));
    let url = format!("{}/", sidecar.base.replace("http://", "https://"));
    let output = Command::new("node")
        .arg(browser_dir.join("secure.mjs"))
        .args([&url, "operator", "page-pass", "1"])
        .output()
        .expect("node runs");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        sidecar.log()
    );
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines, ["ANONYMOUS 401", "ROWS 1", "ERRORS []"]);
}
