//! Issue 10, item 1: the web configuration file (exporter-toolkit format) puts every
//! endpoint behind TLS and basic auth, and a reload changes it — proven with
//! certificates made here (rcgen), a real client over loopback and a real Prometheus
//! (Debian's) scraping with `scheme: https`, `tls_config` and `basic_auth`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{args, free_address, start_prometheus, until, Authority, Sidecar};
use peerscope_lab::node::{NodeSpec, SimNode};
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// An HTTPS client that trusts `ca` and reaches the sidecar at `address` as `localhost`.
fn client(ca: &str, address: std::net::SocketAddr, identity: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .resolve("localhost", address)
        .timeout(Duration::from_secs(5));
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// `method url` as alice, with her password.
async fn as_alice(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
) -> reqwest::Result<reqwest::Response> {
    client
        .request(method, url)
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
}

async fn targets(api: &str) -> Vec<Value> {
    let Ok(response) = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{api}/targets"))
        .send()
        .await
    else {
        return Vec::new();
    };
    let body = response.bytes().await.unwrap_or_default();
    let document: Value = serde_json::from_slice(&body).unwrap_or_default();
    document["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// (health, last error) of the target of `job`, once Prometheus has scraped it.
async fn target_health(api: &str, job: &str) -> Option<(String, String)> {
    targets(api).await.into_iter().find_map(|t| {
        (t["labels"]["job"] == job && t["health"] != "unknown").then(|| {
            (
                t["health"].as_str().unwrap_or("").to_owned(),
                t["lastError"].as_str().unwrap_or("").to_owned(),
            )
        })
    })
}

#[ignore = "needs prometheus (Debian); run by .ci/test"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth_guard_every_endpoint_for_a_real_prometheus_and_reload_to_mtls() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("peerscope test CA");
    let (server_cert, server_key) =
        authority.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) =
        authority.issue("prometheus", ExtendedKeyUsagePurpose::ClientAuth);
    let stranger = Authority::new("another CA");
    let (stranger_cert, stranger_key) =
        stranger.issue("mallory", ExtendedKeyUsagePurpose::ClientAuth);
    let ca_file = write(dir.path(), "ca.pem", &authority.pem);
    write(dir.path(), "server.pem", &server_cert);
    write(dir.path(), "server.key", &server_key);
    let client_cert_file = write(dir.path(), "client.pem", &client_cert);
    let client_key_file = write(dir.path(), "client.key", &client_key);
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    // Relative paths: from the web configuration file's directory.
    let tls_only = format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  alice: {hash}\n"
    );
    let web_file = write(dir.path(), "web.yml", &tls_only);

    let node = SimNode::start(free_address(), NodeSpec::healthy("nova-a", "r", 0.5))
        .await
        .unwrap();
    let sidecar = Sidecar::spawn(&args(&[
        "--node",
        &node.url(),
        "--interval",
        "500ms",
        "--timeout",
        "300ms",
        "--peer",
        "http://127.0.0.1:1",
        "--web.config.file",
        &web_file,
    ]));
    let address: std::net::SocketAddr = sidecar.base.trim_start_matches("http://").parse().unwrap();
    let base = format!("https://localhost:{}", address.port());
    let https = client(&authority.pem, address, None);
    until(30, "the sidecar to answer over TLS", || async {
        as_alice(&https, reqwest::Method::GET, format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    // Every endpoint: 401 without credentials or with a wrong password, 200 with them.
    for path in [
        "/", "/metrics", "/healthz", "/readyz", "/status", "/history",
    ] {
        let anonymous = https.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        assert_eq!(
            anonymous.headers()["www-authenticate"],
            "Basic realm=\"peerscope\""
        );
        let wrong = https
            .get(format!("{base}{path}"))
            .basic_auth("alice", Some("guess"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let right = as_alice(&https, reqwest::Method::GET, format!("{base}{path}"))
            .await
            .unwrap();
        assert_eq!(right.status(), 200, "{path}");
    }
    // Plain HTTP on the TLS port: refused, with a 400 that says why.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert!(plain
        .text()
        .await
        .unwrap()
        .contains("Client sent an HTTP request to an HTTPS server"));
    // The user names appear in /status, the hashes nowhere.
    let status = as_alice(&https, reqwest::Method::GET, format!("{base}/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        status.contains("\"alice\"") && !status.contains(&hash),
        "{status}"
    );

    // A real Prometheus: https + basic auth is up; a wrong password and plain HTTP are
    // down with the reason; the mTLS job (client certificate) is up too.
    let tls_config = format!("{{ca_file: '{ca_file}', server_name: localhost}}");
    let mtls_config = format!(
        "{{ca_file: '{ca_file}', server_name: localhost, cert_file: '{client_cert_file}', key_file: '{client_key_file}'}}"
    );
    let job = |name: &str, extra: &str| {
        format!("  - job_name: {name}\n{extra}    static_configs: [{{targets: ['{address}']}}]\n")
    };
    let scrape_configs = [
        job(
            "good",
            &format!("    scheme: https\n    tls_config: {tls_config}\n    basic_auth: {{username: alice, password: s3cret}}\n"),
        ),
        job(
            "wrong-password",
            &format!("    scheme: https\n    tls_config: {tls_config}\n    basic_auth: {{username: alice, password: guess}}\n"),
        ),
        job("plain-http", ""),
        job(
            "mtls",
            &format!("    scheme: https\n    tls_config: {mtls_config}\n    basic_auth: {{username: alice, password: s3cret}}\n"),
        ),
    ]
    .concat();
    let (_prometheus, api) = start_prometheus(
        dir.path(),
        &format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{scrape_configs}"),
    );
    until(60, "Prometheus to scrape every job", || async {
        let mut seen = 0;
        for job in ["good", "wrong-password", "plain-http", "mtls"] {
            seen += usize::from(target_health(&api, job).await.is_some());
        }
        seen == 4
    })
    .await;
    let (health, error) = target_health(&api, "good").await.unwrap();
    assert_eq!(health, "up", "{error}");
    let (health, error) = target_health(&api, "wrong-password").await.unwrap();
    assert_eq!(health, "down");
    assert!(error.contains("401"), "{error}");
    let (health, error) = target_health(&api, "plain-http").await.unwrap();
    assert_eq!(health, "down");
    assert!(error.contains("400"), "{error}");
    assert_eq!(target_health(&api, "mtls").await.unwrap().0, "up");

    // Reload to mTLS: a client certificate from the CA is now required.
    let mtls = format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\nbasic_auth_users:\n  alice: {hash}\n"
    );
    std::fs::write(&web_file, &mtls).unwrap();
    let with_certificate = client(
        &authority.pem,
        address,
        Some(&format!("{client_cert}{client_key}")),
    );
    let reloaded = as_alice(
        &with_certificate,
        reqwest::Method::POST,
        format!("{base}/-/reload"),
    )
    .await
    .unwrap();
    assert_eq!(reloaded.status(), 200, "{:?}", reloaded.text().await);
    // A new connection (TLS settings apply per connection; kept-alive ones end as before).
    let without = as_alice(
        &client(&authority.pem, address, None),
        reqwest::Method::GET,
        format!("{base}/metrics"),
    )
    .await;
    assert!(
        without.is_err(),
        "no client certificate: the handshake fails"
    );
    let strangers = as_alice(
        &client(
            &authority.pem,
            address,
            Some(&format!("{stranger_cert}{stranger_key}")),
        ),
        reqwest::Method::GET,
        format!("{base}/metrics"),
    )
    .await;
    assert!(
        strangers.is_err(),
        "a certificate from another CA is refused"
    );
    // Issue 18: a refused handshake leaves a log line (rate-limited; it was at debug).
    let log = sidecar.log();
    assert!(
        log.contains("refused a connection: TLS handshake failed"),
        "{log}"
    );
    let with = as_alice(
        &with_certificate,
        reqwest::Method::GET,
        format!("{base}/metrics"),
    )
    .await
    .unwrap();
    assert_eq!(with.status(), 200);
    until(
        30,
        "Prometheus' job without a client certificate to go down",
        || async {
            target_health(&api, "good")
                .await
                .is_some_and(|(health, _)| health == "down")
        },
    )
    .await;
    assert_eq!(target_health(&api, "mtls").await.unwrap().0, "up");

    // A broken web configuration is refused; the one in force stays.
    std::fs::write(&web_file, "tls_server_config:\n  cert_file: server.pem\n").unwrap();
    let refused = as_alice(
        &with_certificate,
        reqwest::Method::POST,
        format!("{base}/-/reload"),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 400);
    let reason = refused.text().await.unwrap();
    assert!(
        reason.contains("needs both cert_file and key_file"),
        "{reason}"
    );
    let still = as_alice(
        &with_certificate,
        reqwest::Method::GET,
        format!("{base}/healthz"),
    )
    .await
    .unwrap();
    assert_eq!(still.status(), 200);
}
