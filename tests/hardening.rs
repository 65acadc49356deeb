//! Files, clients and peers that misbehave (issue 12), against the real binary: a FIFO, an
//! endless device or a directory in place of a watched file; signals during a debounce;
//! a refused edit that is reverted; unrelated writes beside the config; a flood of
//! clients sending unfinished headers. Each test names the defect it pins.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{args, sample, signal, until, Sidecar};
use peerscope_lab::node::{NodeSpec, SimNode};
use tokio::io::AsyncWriteExt;

async fn node(id: &str) -> SimNode {
    SimNode::start(
        "127.0.0.1:0".parse().unwrap(),
        NodeSpec::healthy(id, "root-1", 0.5),
    )
    .await
    .unwrap()
}

/// A client that gives up: a frozen sidecar must fail the test, not hang it.
fn impatient() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn scrape(sidecar: &Sidecar) -> String {
    impatient()
        .get(format!("{}/metrics", sidecar.base))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .unwrap()
}

async fn metric(sidecar: &Sidecar, name: &str) -> f64 {
    sample(&scrape(sidecar).await, name, &[]).unwrap_or_else(|| panic!("{name} is exported"))
}

fn write_config(path: &Path, local: &SimNode, peers_file: &Path) {
    std::fs::write(
        path,
        format!(
            "node = \"{}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\npeers_file = \"{}\"\n",
            local.url(),
            peers_file.display()
        ),
    )
    .unwrap();
}

fn peers_file_text(name: &str, peer: &SimNode) -> String {
    format!(
        r#"[{{"targets": ["{}"], "labels": {{"name": "{name}"}}}}]"#,
        peer.address()
    )
}

/// A local node, a peer `b` listed in a peers file, and the config file naming both.
struct Setup {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    peers: std::path::PathBuf,
    _nodes: (SimNode, SimNode),
}

impl Setup {
    async fn new() -> Setup {
        let (local, peer) = (node("nova-local").await, node("nova-b").await);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("peerscope.toml");
        let peers = dir.path().join("peers.json");
        std::fs::write(&peers, peers_file_text("b", &peer)).unwrap();
        write_config(&config, &local, &peers);
        Setup {
            dir,
            config,
            peers,
            _nodes: (local, peer),
        }
    }

    async fn start(&self) -> Sidecar {
        Sidecar::start(&args(&["--config", self.config.to_str().unwrap()])).await
    }
}

/// Puts something hostile at a path.
type MakeFile = dyn Fn(&Path);

/// Regression (issue 12, defects 1 and 2): a FIFO in place of the peers file froze polling,
/// `/metrics`, `/healthz` and SIGTERM; a link to `/dev/zero` grew memory until it ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_a_device_or_a_directory_as_peers_file_is_refused_and_nothing_freezes() {
    let setup = Setup::new().await;
    let peers = setup.peers.as_path();
    let mut sidecar = setup.start().await;

    let hostile: [(&str, &MakeFile); 3] = [
        ("a FIFO", &|p| {
            let made = std::process::Command::new("mkfifo")
                .arg(p)
                .status()
                .unwrap();
            assert!(made.success());
        }),
        ("a character device", &|p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
        ("a directory", &|p| std::fs::create_dir(p).unwrap()),
    ];
    for (kind, make) in hostile {
        std::fs::remove_file(peers)
            .or_else(|_| std::fs::remove_dir(peers))
            .unwrap();
        make(peers);
        let response = impatient()
            .post(format!("{}/-/reload", sidecar.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{kind}: POST /-/reload did not answer: {e}"));
        assert_eq!(response.status(), 400, "{kind}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains(&format!("not a regular file (it is {kind})")),
            "{kind}: {body}"
        );
        // The peer stays polled under the configuration in force, and every endpoint answers.
        let before = metric(&sidecar, "peerscope_cycles_total").await;
        until(10, "more cycles", || async {
            metric(&sidecar, "peerscope_cycles_total").await >= before + 3.0
        })
        .await;
        let text = scrape(&sidecar).await;
        assert_eq!(
            sample(&text, "peerscope_peer_up", &[("peer", "b")]),
            Some(1.0),
            "{kind}"
        );
        assert_eq!(
            sample(&text, "peerscope_config_last_reload_successful", &[]),
            Some(0.0)
        );
        let healthz = impatient()
            .get(format!("{}/healthz", sidecar.base))
            .send()
            .await
            .unwrap();
        assert_eq!(healthz.status(), 200, "{kind}");
    }
    let peak = sidecar.peak_rss_kib();
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB: something was read without end"
    );

    // SIGTERM is honoured at once: the reloader holds no runtime thread.
    signal(sidecar.child.id(), "TERM");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = sidecar.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGTERM not honoured in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}

/// Regression (issue 12, defect 6): SIGHUPs that arrived while a change was being debounced
/// were dropped (ten SIGHUPs gave eight reloads). Each SIGHUP here comes just after an
/// unrelated write in the watched directory, so it lands inside that change's debounce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sighup_is_answered_even_inside_a_debounce() {
    let setup = Setup::new().await;
    let dir = setup.dir.path();
    let sidecar = setup.start().await;
    let before = metric(&sidecar, "peerscope_config_reloads_total").await;
    for round in 0..10 {
        std::fs::write(dir.join(format!("unrelated-{round}")), "x").unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        signal(sidecar.child.id(), "HUP");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    until(10, "ten reloads", || async {
        metric(&sidecar, "peerscope_config_reloads_total").await >= before + 10.0
    })
    .await;
    assert_eq!(
        metric(&sidecar, "peerscope_config_reload_failures_total").await,
        0.0
    );
}

/// Regression (issue 12, defect 6): after a refused edit was reverted the failure stayed
/// reported (`config_last_reload_successful` 0, the old error in `/status`) until a forced
/// reload, and unrelated writes in the same directory counted the same failure again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_edit_counts_once_and_clears_when_reverted() {
    let setup = Setup::new().await;
    let (dir, config) = (setup.dir.path(), &setup.config);
    let good = std::fs::read_to_string(config).unwrap();
    let sidecar = setup.start().await;

    std::fs::write(config, good.replace("200ms", "soon")).unwrap();
    until(10, "the bad edit to be refused", || async {
        metric(&sidecar, "peerscope_config_last_reload_successful").await == 0.0
    })
    .await;
    assert_eq!(
        metric(&sidecar, "peerscope_config_reload_failures_total").await,
        1.0
    );
    for round in 0..10 {
        std::fs::write(dir.join(format!("unrelated-{round}")), "x").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        metric(&sidecar, "peerscope_config_reload_failures_total").await,
        1.0,
        "unrelated writes counted the same failure again"
    );

    std::fs::write(config, &good).unwrap();
    until(10, "the reverted file to clear the failure", || async {
        metric(&sidecar, "peerscope_config_last_reload_successful").await == 1.0
    })
    .await;
    let status = sidecar.status().await;
    assert!(
        status["config"]["last_error"].is_null(),
        "{}",
        status["config"]
    );
    assert_eq!(
        metric(&sidecar, "peerscope_config_reload_failures_total").await,
        1.0
    );
}

/// Regression (issue 12, defect 3): 2,000 clients sending unfinished headers took the
/// sidecar from 25 to 778 MiB. Now each connection's buffer is capped (16 KiB) and so is
/// the number of connections (512): the oldest idle one is closed to make room, so the
/// slowloris half of the flood, holding its connections open, cannot lock a scraper out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unfinished_headers_is_bounded_and_metrics_keep_answering() {
    let (local, peer) = (node("nova-local").await, node("nova-b").await);
    let sidecar = Sidecar::start(&args(&[
        "--node",
        &local.url(),
        "--peer",
        &format!("b={}", peer.url()),
        "--interval",
        "200ms",
        "--timeout",
        "100ms",
    ]))
    .await;
    let address = sidecar.base.trim_start_matches("http://").to_owned();
    let padding = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
        "a".repeat(200 * 1024)
    );
    let mut held = Vec::new();
    for index in 0..1400 {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
            continue;
        };
        let padding = match index % 2 {
            0 => padding.clone(),
            _ => "GET /metrics HTTP/1.1\r\nHost: x\r\n".to_owned(),
        };
        held.push(tokio::spawn(async move {
            // The server answers 431 and closes once the buffer is full: errors are expected.
            let _ = stream.write_all(padding.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(8)).await;
            drop(stream);
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = std::time::Instant::now();
    let text = scrape(&sidecar).await;
    let latency = started.elapsed();
    assert_eq!(
        sample(&text, "peerscope_peer_up", &[("peer", "b")]),
        Some(1.0)
    );
    let shed = sample(&text, "peerscope_http_connections_shed_total", &[]).unwrap();
    assert!(shed > 0.0, "the limit was never reached");
    let peak = sidecar.peak_rss_kib();
    println!("flood of 1,400: /metrics in {latency:?}, {shed} shed, peak RSS {peak} KiB");
    assert!(peak < 80 * 1024, "peak RSS {peak} KiB under the flood");
    for task in held {
        let _ = task.await;
    }
}

/// Regression (issue 19, item 6): a peer name with a newline forged a whole log line, and
/// ESC and BEL reached the terminal. Every value is escaped now, in both log formats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_name_cannot_forge_a_log_line_in_either_format() {
    let local = node("nova-local").await;
    let forged = "level=error msg=FORGED";
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("peerscope.toml");
        // insecure_skip_verify logs a warning naming the peer at start.
        std::fs::write(
            &config,
            format!(
                "node = \"{}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\nlog_format = \"{format}\"\n\
                 [[peers]]\nname = \"b\\n2026-12-03T00:00:00Z {forged}\\u001b[31m\\u0007\"\n\
                 url = \"https://127.0.0.1:9\"\ninsecure_skip_verify = true\n",
                local.url()
            ),
        )
        .unwrap();
        let sidecar = Sidecar::start(&args(&["--config", config.to_str().unwrap()])).await;
        until(10, "the warning naming the peer", || async {
            sidecar.log().contains("insecure_skip_verify")
        })
        .await;
        let log = sidecar.log();
        assert!(
            !log.lines()
                .any(|line| line.starts_with("2026-12-03T00:00:00Z")),
            "{format}: a line was forged:\n{log}"
        );
        assert!(
            !log.contains('\u{1b}') && !log.contains('\u{7}'),
            "{format}: a terminal escape reached the log:\n{log}"
        );
        for line in log.lines().filter(|line| !line.is_empty()) {
            if format == "json" {
                let object: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                for key in ["time", "level", "source", "msg"] {
                    assert!(object.get(key).is_some(), "no {key}: {line}");
                }
            } else {
                assert!(line.starts_with("time="), "not logfmt: {line}");
            }
        }
    }
}

/// Regression (issue 19, item 6): any web page could make a browser reload the sidecar
/// (a `text/plain` POST needs no preflight), and the page at `/` carried no
/// Content-Security-Policy, frame or sniffing headers. Its own script is a file now, so
/// the policy sent by default allows no inline script (the Chromium test shows the page
/// still runs under it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_reloads_are_refused_and_the_page_carries_its_security_headers() {
    let setup = Setup::new().await;
    let sidecar = setup.start().await;
    let reload = |origin: Option<&'static str>, fetch_site: Option<&'static str>| {
        let mut request = impatient()
            .post(format!("{}/-/reload", sidecar.base))
            .header("content-type", "text/plain")
            .body("x");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(reload(Some("https://evil.example"), None).await, 403);
    assert_eq!(
        reload(Some("https://evil.example"), Some("cross-site")).await,
        403
    );
    assert_eq!(reload(None, Some("same-site")).await, 403);
    assert_eq!(reload(None, None).await, 200, "curl's reload still works");
    let own_origin: &'static str = Box::leak(sidecar.base.clone().into_boxed_str());
    assert_eq!(reload(Some(own_origin), Some("same-origin")).await, 200);

    let page = sidecar.get("/").await;
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="page.js">"#), "{html}");
    assert!(!html.contains("<script>") && !html.contains("style="));
    let script = sidecar.get("/page.js").await;
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(script.text().await.unwrap().contains("refresh()"));
    let metrics = sidecar.get("/metrics").await;
    assert_eq!(metrics.headers()["x-content-type-options"], "nosniff");
}

/// Regression (issue 19, item 6): a log file in the config directory made the watcher
/// re-read the configuration at every log line — each re-read logged, which wrote the
/// file, which woke the watcher: a loop every ~250 ms. Only events naming a file the
/// configuration reads count now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_beside_the_config_does_not_make_it_re_read() {
    let setup = Setup::new().await;
    let mut toml = std::fs::read_to_string(&setup.config).unwrap();
    toml += &format!(
        "log_level = \"debug\"\nlog_file = \"{}\"\n",
        setup.dir.path().display()
    );
    std::fs::write(&setup.config, toml).unwrap();
    let sidecar = setup.start().await;
    sidecar.wait_cycles(2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let re_reads = sidecar.log().matches("configuration re-read").count();
    assert_eq!(
        re_reads,
        0,
        "re-read {re_reads} times in 3 s:\n{}",
        sidecar.log()
    );
    // The watch still works: an edit of the peers file is applied.
    std::fs::write(&setup.peers, "[]").unwrap();
    until(10, "the edit applied", || async {
        sample(&scrape(&sidecar).await, "peerscope_peers_configured", &[]) == Some(0.0)
    })
    .await;
}

/// Regression (issue 19, item 2): every wrong password cost a full bcrypt — 200 clients
/// kept 1.7 cores busy and a legitimate first scrape waited 5.9 s. Now a client with
/// repeated failures is budgeted (429 beyond it) while others keep their own lane, a
/// repeated wrong pair is remembered, and an unknown user costs a check like a known one
/// (so names cannot be told by timing). Counted by `peerscope_http_basic_auth_*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_passwords_is_budgeted_and_a_legitimate_client_gets_through() {
    let local = node("nova-local").await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  alice: {}\n",
            bcrypt::hash("s3cret", 8).unwrap()
        ),
    )
    .unwrap();
    let sidecar = Sidecar::spawn(&args(&[
        "--node",
        &local.url(),
        "--interval",
        "200ms",
        "--timeout",
        "100ms",
        "--web.config.file",
        web.to_str().unwrap(),
    ]));
    let from = |address: [u8; 4]| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(std::net::IpAddr::from(address))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let (attacker, operator, repeater) = (
        from([127, 0, 0, 1]),
        from([127, 0, 0, 2]),
        from([127, 0, 0, 3]),
    );
    let metrics_url = format!("{}/metrics", sidecar.base);
    // `/metrics` from `client` as `user` with `password`.
    let login = |client: &reqwest::Client, user: String, password: String| {
        client
            .get(&metrics_url)
            .basic_auth(user, Some(password))
            .send()
    };
    let counter = |name: &'static str| {
        let scrape = login(&operator, "alice".into(), "s3cret".into());
        async move {
            let text = scrape.await.unwrap().text().await.unwrap();
            sample(&text, name, &[]).unwrap_or_else(|| panic!("{name}:\n{text}"))
        }
    };
    until(30, "the sidecar answers", || async {
        operator.get(&metrics_url).send().await.is_ok()
    })
    .await;
    let started = std::time::Instant::now();
    let mut flood = Vec::new();
    for guess in 0..250 {
        // Wrong passwords for alice, and unknown users.
        let user = if guess % 5 == 0 {
            format!("user{guess}")
        } else {
            "alice".to_owned()
        };
        let attempt = login(&attacker, user, format!("guess-{guess}"));
        flood.push(tokio::spawn(async move {
            attempt.await.map(|r| r.status().as_u16()).unwrap_or(0)
        }));
    }
    // A legitimate client from another address is answered during the flood.
    let answer = login(&operator, "alice".into(), "s3cret".into())
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let mut statuses = std::collections::BTreeMap::new();
    for task in flood {
        *statuses.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let checks = counter("peerscope_http_basic_auth_checks_total").await;
    let throttled = counter("peerscope_http_basic_auth_throttled_total").await;
    println!("250 wrong logins in {seconds:.1} s: {statuses:?}, {checks} bcrypt checks, {throttled} throttled");
    assert_eq!(statuses.get(&200), None, "{statuses:?}");
    assert!(
        throttled > 0.0 && statuses.get(&429) == Some(&(throttled as i32)),
        "{statuses:?}"
    );
    // The 5 failures of good standing, the suspects' 2 a second, the operator's own.
    let bound = 5.0 + 2.0 * (seconds.ceil() + 1.0) + 1.0;
    assert!(
        checks <= bound,
        "{checks} checks for 250 wrong logins in {seconds:.1} s (at most {bound})"
    );

    // A repeated wrong pair costs one check, however often it comes.
    let before = counter("peerscope_http_basic_auth_checks_total").await;
    for _ in 0..20 {
        let status = login(&repeater, "alice".into(), "same-wrong".into())
            .await
            .unwrap()
            .status();
        assert!(matches!(status.as_u16(), 401 | 429), "{status}");
    }
    let after = counter("peerscope_http_basic_auth_checks_total").await;
    assert_eq!(after - before, 1.0, "a repeated wrong pair is checked once");

    // An unknown user costs a check like a wrong password does (same work, same time).
    let before = after;
    let status = login(&from([127, 0, 0, 4]), "mallory".into(), "anything".into())
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let after = counter("peerscope_http_basic_auth_checks_total").await;
    assert_eq!(
        after - before,
        1.0,
        "an unknown user is checked against a real hash"
    );
}

/// Regression (issue 19, item 5): each `/metrics` request kept its own rendered body while
/// its client did not read — 50 such clients on a 20 MB exposition took the sidecar from
/// 52 MiB to 1.17 GiB. Scrapes that come together now share one rendering, distinct bodies
/// alive are bounded, and a connection whose writes make no progress for 10 s is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_share_one_body_and_are_cut_off() {
    let local = node("nova-local").await;
    let dir = tempfile::tempdir().unwrap();
    // 2,000 members on closed ports: every one exported, a few MB of exposition.
    let targets: Vec<String> = (0..2000)
        .map(|i| format!("\"127.1.{}.{}:9\"", i / 250, i % 250 + 1))
        .collect();
    let peers = dir.path().join("peers.json");
    std::fs::write(
        &peers,
        format!(r#"[{{"targets": [{}]}}]"#, targets.join(",")),
    )
    .unwrap();
    let config = dir.path().join("peerscope.toml");
    std::fs::write(
        &config,
        format!(
            "node = \"{}\"\ninterval = \"2s\"\ntimeout = \"500ms\"\nobservers_per_peer = 0\npeers_file = \"{}\"\n",
            local.url(),
            peers.display()
        ),
    )
    .unwrap();
    let sidecar = Sidecar::start(&args(&["--config", config.to_str().unwrap()])).await;
    let size = scrape(&sidecar).await.len();
    let before = sidecar.peak_rss_kib();
    let address = sidecar.base.trim_start_matches("http://").to_owned();
    let mut silent = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        silent.push(stream);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A scraper that reads is answered meanwhile.
    assert!(scrape(&sidecar)
        .await
        .contains("peerscope_peers_configured 2000"));
    let peak = sidecar.peak_rss_kib();
    let grown = peak.saturating_sub(before) as usize * 1024;
    println!(
        "50 clients that never read a {size}-byte exposition: peak RSS {before} → {peak} KiB (+{:.1} expositions)",
        grown as f64 / size as f64
    );
    assert!(
        grown < 8 * size,
        "memory grew by {grown} bytes for 50 silent clients of a {size}-byte exposition"
    );
    // Past the stall limit the server has closed them: reading ends, short of the body.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for mut stream in silent {
        use tokio::io::AsyncReadExt;
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
            .await
            .expect("the server closed a connection that made no progress");
        assert!(
            read.is_err() || received.len() < size,
            "a whole body was still there after the stall limit"
        );
    }
}

/// Regression (issue 19, item 3): the rolling log files were opened following links, so a
/// symlink planted at the day's log file name made the sidecar append its log to the
/// link's target. The start is refused now, naming the link, and the target is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_planted_at_the_log_file_is_never_written_through() {
    let local = node("nova-local").await;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let today = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    let today = String::from_utf8(today.stdout).unwrap();
    std::os::unix::fs::symlink(
        &victim,
        logs.join(format!("peerscope.{}.log", today.trim())),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_peerscope"))
        .args(["run", "--node", &local.url(), "--log-file"])
        .arg(&logs)
        .args(["--listen", &common::free_address().to_string()])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let exited = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    let _ = child.start_kill();
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let victim_now = std::fs::read_to_string(&victim).unwrap();
    assert_eq!(
        victim_now, "precious\n",
        "the log was written through the link"
    );
    assert!(
        exited.is_ok_and(|status| !status.unwrap().success()),
        "started anyway:\n{stderr}"
    );
    assert!(stderr.contains("symbolic link"), "{stderr}");
}
