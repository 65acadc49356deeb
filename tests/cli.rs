//! The binary as an operator meets it: `check`, `status`, `--version`, the endpoints,
//! shutdown on SIGTERM, and a restart with a peer removed.

mod common;

use std::process::Command;

use common::{args, sample, series_of_peer, Sidecar};
use peerscope_lab::node::{Behavior, NodeSpec, SimNode};

fn peerscope(arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_peerscope"))
        .args(arguments)
        .env_remove("PEERSCOPE_NODE")
        .output()
        .unwrap()
}

/// A healthy simulated local node, `nova-a`, on a loopback port of its own.
async fn nova_a() -> SimNode {
    let loopback = "127.0.0.1:0".parse().unwrap();
    SimNode::start(loopback, NodeSpec::healthy("nova-a", "root", 0.4))
        .await
        .unwrap()
}

#[test]
fn check_names_the_file_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("node = \"http://127.0.0.1:8000\"\ninterval = \"2s\"\ntimeout = \"2s\"\n", "timeout 2s (from "),
        ("node = \"http://127.0.0.1:8000\"\n[quality]\nw_success = 0\nw_latency = 0\nw_freshness = 0\n", "weights"),
        ("node = \"http://127.0.0.1:8000\"\n[[peers]]\nurl = \"ftp://x\"\n", "peers[0].url: \"ftp://x\" must start with http"),
        ("node = \"http://127.0.0.1:8000\"\nwindow = \"forever\"\n", "window: invalid duration \"forever\""),
        ("node = \"http://127.0.0.1:8000\"\nlisten = 9478\n", "listen: \"9478\" is not an address"),
        ("node = [1]\n", "node: must be a string or a number"),
        ("node = \n", "TOML parse error"),
        // Regression (issue 12): accepted, then every /healthz panicked on the overflow.
        ("node = \"http://127.0.0.1:8000\"\ninterval = \"10000000000000000000\"\n", "interval: duration \"10000000000000000000\" is longer than the maximum of"),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{index}.toml"));
        std::fs::write(&path, text).unwrap();
        let output = peerscope(&["check", "--config", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{text:?}: {stderr:?} lacks {expected:?}"
        );
        if !expected.starts_with("timeout") && !expected.starts_with("weights") {
            assert!(
                stderr.contains(path.to_str().unwrap()),
                "{stderr:?} does not name the file"
            );
        }
    }
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "node = \"http://127.0.0.1:8000\"\n[[peers]]\nurl = \"http://10.0.0.12:8100\"\nname = \"nova-b\"\n").unwrap();
    let output = peerscope(&["check", "--config", good.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout)
        .contains("configuration OK: node http://127.0.0.1:8000/, 1 peers"));
}

/// Issue 18: node_exporter's flags — `--log.level` from a fixed set (`bogus` made the
/// sidecar log nothing at all), `--log.format`, `--web.listen-address` with `:PORT` or a
/// name — with the earlier spellings still accepted, and a full filter in `--log.filter`.
#[test]
fn the_standard_flags_work_and_the_earlier_spellings_too() {
    let node = ["check", "--node", "http://127.0.0.1:8000"];
    let check = |extra: &[&str]| {
        let output = peerscope(&[&node[..], extra].concat());
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    };
    for flag in ["--log.level", "--log-level"] {
        let (code, text) = check(&[flag, "bogus"]);
        assert_eq!(code, Some(2), "{flag}: {text}");
        assert!(
            text.contains("log_level: \"bogus\" is not one of debug, info, warn, error"),
            "{text}"
        );
        let (code, text) = check(&[flag, "warn"]);
        assert_eq!(code, Some(0), "{flag}: {text}");
    }
    let (code, text) = check(&["--log.filter", "peerscope=verbose"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("is not a tracing filter"), "{text}");
    for (flags, listen) in [
        (
            &["--web.listen-address", ":9478"][..],
            &["listen 0.0.0.0:9478"][..],
        ),
        // A name: its first address, whichever family the resolver gives first.
        (
            &["--listen", "localhost:9478"][..],
            &["listen 127.0.0.1:9478", "listen [::1]:9478"][..],
        ),
        (&["--listen", "[::1]:9478"][..], &["listen [::1]:9478"][..]),
    ] {
        let (code, text) = check(flags);
        assert_eq!(code, Some(0), "{flags:?}: {text}");
        assert!(listen.iter().any(|l| text.contains(l)), "{flags:?}: {text}");
    }
    let (code, text) = check(&[
        "--log.format",
        "logfmt",
        "--log.filter",
        "info,peerscope=debug",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = check(&["--web.listen-address", "9478"]);
    assert_eq!(code, Some(2), "{text}");
    // A name other than localhost is not looked up at every reload: refused, saying so.
    let (code, text) = check(&["--web.listen-address", "peerscope.example:9478"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("names other than localhost are not resolved"),
        "{text}"
    );
    // A filter in log_level, as earlier versions took it, still works; a level's typo not.
    let (code, text) = check(&["--log-level", "info,peerscope=debug"]);
    assert_eq!(code, Some(0), "{text}");
    // The metrics path cannot hide another endpoint.
    let (code, text) = check(&["--web.telemetry-path", "/status"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("another endpoint's path"), "{text}");
}

/// Issue 18: shell completions and a man page, made from the command definition, so they
/// name every flag of the key table (and stay in step with it).
#[test]
fn completions_and_the_man_page_come_from_the_flags() {
    let flags: Vec<String> = peerscope::config::keys::KEYS
        .iter()
        .filter_map(|key| key.flag)
        .map(|flag| format!("--{flag}"))
        .collect();
    for shell in ["bash", "zsh", "fish"] {
        let output = peerscope(&["completions", shell]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        for flag in &flags {
            let bare = flag.trim_start_matches('-');
            assert!(script.contains(bare), "{shell} completion lacks {flag}");
        }
    }
    // The bash script parses.
    let output = peerscope(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("peerscope.bash");
    std::fs::write(&script, &output.stdout).unwrap();
    let parsed = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(parsed.success());
    let output = peerscope(&["man"]);
    assert!(output.status.success());
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.contains(".TH peerscope 1"), "{page}");
    for flag in &flags {
        // roff escapes the dashes: --log.level is \-\-log.level.
        let roff = flag.replace('-', "\\-");
        assert!(page.contains(&roff), "the man page lacks {flag}");
    }
}

#[test]
fn version_and_help_work() {
    // Regression (issue 12): `--version` failed on every subcommand.
    for command in [
        vec!["--version"],
        vec!["run", "--version"],
        vec!["check", "--version"],
        vec!["status", "--version"],
    ] {
        let output = peerscope(&command);
        assert!(output.status.success(), "{command:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{command:?}"
        );
    }
    let output = peerscope(&["--version"]);
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(version.starts_with(concat!("peerscope ", env!("CARGO_PKG_VERSION"))));
    // Issue 18: the long form says which build it is, as node_exporter's does.
    for part in ["(revision ", ", rustc ", std::env::consts::OS, ", built "] {
        assert!(version.contains(part), "{version:?} lacks {part:?}");
    }
    for command in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["status", "--help"],
        vec!["check", "--help"],
    ] {
        let output = peerscope(&command);
        assert!(output.status.success(), "{command:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{command:?}"
        );
    }
}

/// Issue 18: systemd socket activation (`--web.systemd-socket`): the sidecar serves on the
/// socket systemd's own `systemd-socket-activate` opened and passed.
#[ignore = "needs systemd-socket-activate (Debian systemd); run by .ci/test"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_serves_on_the_socket_systemd_passes() {
    let local = nova_a().await;
    let address = common::free_address();
    let mut activator = Command::new("systemd-socket-activate")
        .args([
            "--listen",
            &address.to_string(),
            env!("CARGO_BIN_EXE_peerscope"),
        ])
        .args(["run", "--node", &local.url(), "--web.systemd-socket"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("systemd-socket-activate runs (Debian's systemd; .ci/test installs it)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let ready = loop {
        let answer = reqwest::get(format!("http://{address}/readyz")).await;
        if answer.as_ref().is_ok_and(|a| a.status() == 200) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let _ = activator.kill();
    let _ = activator.wait();
    assert!(ready, "no answer on the socket systemd passed");

    // Without a socket from systemd: refused at start, saying how to start it.
    let output = peerscope(&["run", "--node", &local.url(), "--web.systemd-socket"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("systemd passed no socket"), "{stderr}");
}

/// Issue 18: exporter-toolkit's `rate_limit` (in its own sample web config) was refused as
/// an unknown key; now a token bucket over every request, 429 with `Retry-After` beyond it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_configs_rate_limit_answers_429_beyond_its_burst() {
    let local = nova_a().await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "rate_limit:\n  burst: 2\n  interval: 2s\n").unwrap();
    let sidecar = Sidecar::start(&args(&[
        "--node",
        &local.url(),
        "--web.config.file",
        web.to_str().unwrap(),
    ]))
    .await;
    // A full bucket (2 tokens after 4 s), then 6 requests well within one interval.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let response = sidecar.get("/healthz").await;
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        codes.push(response.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 429, 429, 429, 429], "{codes:?}");
}

/// Issue 18: node_exporter's `--web.telemetry-path` and `--web.disable-exporter-metrics`
/// (a switch: the flag alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_path_and_the_exporters_own_figures_are_configurable() {
    let local = nova_a().await;
    let sidecar = Sidecar::start(&args(&[
        "--node",
        &local.url(),
        "--web.telemetry-path",
        "/federation/metrics",
        "--web.disable-exporter-metrics",
    ]))
    .await;
    assert_eq!(sidecar.get("/metrics").await.status(), 404);
    let response = sidecar.get("/federation/metrics").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("peerscope_node_up 1"), "{text}");
    assert!(!text.contains("process_"), "{text}");
    assert!(!text.contains("peerscope_http_requests_total"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_status_command_and_graceful_shutdown() {
    let local = nova_a().await;
    let peer = SimNode::start(
        "127.0.0.1:0".parse().unwrap(),
        NodeSpec::healthy("nova-b", "root", 0.6),
    )
    .await
    .unwrap();
    let mut sidecar = Sidecar::start(&args(&[
        "--node",
        &local.url(),
        "--peer",
        &peer.url(),
        "--interval",
        "500ms",
        "--timeout",
        "250ms",
    ]))
    .await;
    assert_eq!(sidecar.get("/healthz").await.status(), 200);
    assert_eq!(sidecar.get("/readyz").await.status(), 200);
    assert_eq!(sidecar.get("/nope").await.status(), 404);
    // Issue 18: requests counted by handler and code; an invented path is `other`.
    let text = sidecar.metrics().await;
    let requests = |handler: &str, code: &str| {
        sample(
            &text,
            "peerscope_http_requests_total",
            &[("handler", handler), ("code", code)],
        )
    };
    assert!(requests("/healthz", "200").unwrap() >= 1.0);
    assert_eq!(requests("other", "404"), Some(1.0));
    assert!(!text.contains("/nope"));
    // Issue 18: CPU time in hundredths of a second, not whole seconds (the prometheus
    // crate's collector said 0 until a full second of CPU had been spent): the first
    // figure above 0 is a fraction of a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let cpu = loop {
        let text = sidecar.metrics().await;
        assert!(sample(&text, "process_resident_memory_bytes", &[]).unwrap() > 0.0);
        let cpu = sample(&text, "process_cpu_seconds_total", &[]).unwrap();
        if cpu > 0.0 || std::time::Instant::now() > deadline {
            break cpu;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(cpu > 0.0 && cpu < 1.0, "process_cpu_seconds_total {cpu}");
    let status = sidecar.status().await;
    assert_eq!(status["node"]["node_id"], "nova-a");
    assert_eq!(status["peers"][0]["node_id"], "nova-b");
    assert_eq!(status["federation"]["peers_live"], 1);

    let output = Command::new(env!("CARGO_BIN_EXE_peerscope"))
        .args(["status", "--url", &sidecar.base])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        table.contains("peers live 1/1") && table.contains(&peer.address().to_string()),
        "{table}"
    );

    let exit = sidecar.terminate();
    assert_eq!(exit.code(), Some(0), "log:\n{}", sidecar.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_first_cycle() {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let spec = NodeSpec {
        behavior: Behavior::Hang,
        ..NodeSpec::healthy("nova-a", "root", 0.4)
    };
    let hanging = SimNode::start(loopback, spec).await.unwrap();
    let sidecar = Sidecar::spawn(&args(&[
        "--node",
        &hanging.url(),
        "--interval",
        "60s",
        "--timeout",
        "2s",
    ]));
    // The first pull hangs until its 2 s timeout: serving, alive, but not ready yet.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while reqwest::get(format!("{}/healthz", sidecar.base))
        .await
        .is_err()
    {
        assert!(std::time::Instant::now() < deadline, "server never came up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(sidecar.get("/readyz").await.status(), 503);
    assert_eq!(sidecar.get("/healthz").await.status(), 200);
    // Prometheus' spellings answer the same (issue 18).
    assert_eq!(sidecar.get("/-/ready").await.status(), 503);
    assert_eq!(sidecar.get("/-/healthy").await.status(), 200);
    sidecar.wait_ready().await;
    assert_eq!(sidecar.get("/-/ready").await.status(), 200);
    let text = sidecar.metrics().await;
    assert_eq!(sample(&text, "peerscope_node_up", &[]), Some(0.0));
    assert_eq!(
        sample(
            &text,
            "peerscope_node_poll_failures_total",
            &[("reason", "timeout")]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "peerscope_peers_live", &[]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_removed_across_a_restart_leaves_no_series() {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let local = nova_a().await;
    let kept = SimNode::start(loopback, NodeSpec::healthy("nova-b", "root", 0.6))
        .await
        .unwrap();
    let removed = SimNode::start(loopback, NodeSpec::healthy("nova-c", "root", 0.2))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("peerscope.toml");
    let write = |peers: &[(&str, &SimNode)]| {
        let mut text = format!(
            "node = \"{}\"\ninterval = \"500ms\"\ntimeout = \"250ms\"\n",
            local.url()
        );
        for (name, node) in peers {
            text += &format!("[[peers]]\nname = \"{name}\"\nurl = \"{}\"\n", node.url());
        }
        std::fs::write(&config, text).unwrap();
    };
    let arguments = args(&["--config", config.to_str().unwrap()]);

    write(&[("kept", &kept), ("removed", &removed)]);
    let mut sidecar = Sidecar::start(&arguments).await;
    sidecar.wait_cycles(2).await;
    let text = sidecar.metrics().await;
    assert!(series_of_peer(&text, "removed").len() > 20, "{text}");
    assert_eq!(sidecar.terminate().code(), Some(0));

    write(&[("kept", &kept)]);
    let sidecar = Sidecar::start(&arguments).await;
    sidecar.wait_cycles(2).await;
    let text = sidecar.metrics().await;
    assert!(
        series_of_peer(&text, "removed").is_empty(),
        "{:?}",
        series_of_peer(&text, "removed")
    );
    assert!(!series_of_peer(&text, "kept").is_empty());
    assert_eq!(sample(&text, "peerscope_peers_configured", &[]), Some(1.0));
}

/// The sidecar binary carries no simulated nodes: `peerscope demo` says where the demo is
/// (the lab) instead of running one.
#[test]
fn the_sidecar_binary_points_to_the_lab_for_the_demo() {
    let output = Command::new(env!("CARGO_BIN_EXE_peerscope"))
        .arg("demo")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cargo run --release -p peerscope-lab -- demo"),
        "{stderr}"
    );
}

/// Issue 10, item 6: text logs carried ANSI colour codes into files and journald. Colour
/// now only on a terminal (stderr here is a file), or when asked for; and every GET
/// endpoint answers HEAD with its headers and no body; `/metrics` is gzipped when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_have_colour_only_on_a_terminal_or_when_asked_head_and_gzip_work() {
    let node = SimNode::start(
        "127.0.0.1:0".parse().unwrap(),
        NodeSpec::healthy("nova-a", "r", 0.5),
    )
    .await
    .unwrap();
    let base = [
        "--node",
        &node.url(),
        "--interval",
        "200ms",
        "--timeout",
        "100ms",
        "--peer",
        "http://127.0.0.1:1",
    ];
    let plain = Sidecar::start(&args(&base)).await;
    plain.wait_more_cycles(2).await;
    let log = plain.log();
    assert!(
        log.contains("pull failed") && !log.contains('\u{1b}'),
        "{log:?}"
    );

    let client = reqwest::Client::new();
    for path in [
        "/",
        "/metrics",
        "/status",
        "/history",
        "/healthz",
        "/readyz",
        "/-/healthy",
        "/-/ready",
    ] {
        let response = client
            .head(format!("{}{path}", plain.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "HEAD {path}");
        let length: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(length > 0, "HEAD {path}: the GET body's length");
        assert!(
            response.bytes().await.unwrap().is_empty(),
            "HEAD {path} sent a body"
        );
    }

    // gzip when asked (as Prometheus asks), plain otherwise; the same exposition either way.
    let gzipped = client
        .get(format!("{}/metrics", plain.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "accept-encoding");
    assert_eq!(
        gzipped.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let compressed = gzipped.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut text,
    )
    .unwrap();
    assert!(
        text.contains("\npeerscope_cycles_total ") && text.len() > 3 * compressed.len(),
        "{} → {}",
        compressed.len(),
        text.len()
    );
    let refused = client
        .get(format!("{}/metrics", plain.base))
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("\npeerscope_cycles_total "));

    let mut coloured_args = args(&base);
    coloured_args.extend(args(&["--log-color", "always"]));
    let coloured = Sidecar::start(&coloured_args).await;
    coloured.wait_more_cycles(2).await;
    assert!(
        coloured.log().contains("\u{1b}["),
        "--log-color always wrote no colour"
    );
}
