//! Helpers shared by the integration tests: the real `peerscope` binary as a child
//! process, scraping it, and reading figures out of the exposition text.
#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `peerscope run` child process on a free loopback port; killed when dropped.
pub struct Sidecar {
    pub child: Child,
    pub base: String,
    pub stderr_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A free port on a random loopback address (bound, read, released).
pub fn free_address() -> SocketAddr {
    peerscope_lab::free_loopback_address().unwrap()
}

/// A loopback port nothing listens on.
pub fn closed_port_url() -> String {
    format!("http://{}", free_address())
}

impl Sidecar {
    /// Starts `peerscope run` with `args` (plus `--listen`), and waits until it is ready.
    pub async fn start(args: &[String]) -> Sidecar {
        let sidecar = Sidecar::spawn(args);
        sidecar.wait_ready().await;
        sidecar
    }

    /// Starts `peerscope run` with `args` (plus `--listen`) without waiting.
    pub fn spawn(args: &[String]) -> Sidecar {
        let listen = free_address();
        let dir = tempfile::tempdir().unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_peerscope"))
            .arg("run")
            .args(args)
            .args(["--listen", &listen.to_string()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the peerscope binary starts");
        Sidecar {
            child,
            base: format!("http://{listen}"),
            stderr_path,
            _dir: dir,
        }
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/readyz", self.base)).await {
                if response.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "sidecar not ready in 30s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    pub async fn status(&self) -> serde_json::Value {
        let body = self.get("/status").await.bytes().await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// Poll cycles completed so far (`peerscope_cycles_total`).
    pub async fn cycles(&self) -> u64 {
        sample(&self.metrics().await, "peerscope_cycles_total", &[])
            .expect("peerscope_cycles_total is exported") as u64
    }

    /// Waits until at least `cycles` poll cycles have completed since start.
    pub async fn wait_cycles(&self, cycles: u64) {
        let what = format!("{cycles} cycles");
        until(60, &what, || async { self.cycles().await >= cycles }).await;
    }

    /// Waits until `more` cycles have completed after this call: "ten more cycles",
    /// counted rather than slept, so a slow machine only makes the test slower.
    pub async fn wait_more_cycles(&self, more: u64) {
        let target = self.cycles().await + more;
        self.wait_cycles(target).await;
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.child.id(), "TERM");
        self.child.wait().unwrap()
    }

    /// Everything the sidecar logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Peak resident memory in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// The value of the sample `name{labels}` (labels in any order), if present.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, "}"));
            if series_name != name {
                return None;
            }
            let label_text = rest.strip_suffix('}')?;
            let pairs: Vec<&str> = if label_text.is_empty() {
                vec![]
            } else {
                label_text.split(',').collect()
            };
            let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            (pairs.len() == wanted.len() && wanted.iter().all(|w| pairs.contains(&w.as_str())))
                .then(|| value.parse().unwrap())
        })
}

/// Every series line of the scrape that carries `peer="label"`.
pub fn series_of_peer(text: &str, label: &str) -> Vec<String> {
    let needle = format!("peer=\"{label}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// Polls `check` every 50 ms until it holds; fails the test after `seconds`.
pub async fn until<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {seconds}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `args` as owned strings.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A real Prometheus (Debian's package) on a free loopback address, with `config` as its
/// `prometheus.yml` and its data in `dir`; stopped when dropped. Returns it and the base
/// URL of its HTTP API (`…/api/v1`).
pub fn start_prometheus(
    dir: &std::path::Path,
    config: &str,
) -> (peerscope_lab::federation::Daemon, String) {
    let address = free_address();
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let daemon = peerscope_lab::federation::Daemon::start(
        "prometheus",
        &[
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address={address}"),
        ],
        &dir.join("prometheus.log"),
    )
    .expect("prometheus starts (Debian package `prometheus`; the test command installs it)");
    (daemon, format!("http://{address}/api/v1"))
}

/// A certificate authority of the test, and certificates it signs.
pub struct Authority {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pub pem: String,
}

impl Authority {
    pub fn new(name: &str) -> Authority {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.clone().self_signed(&key).unwrap().pem();
        Authority { params, key, pem }
    }

    /// (certificate PEM, key PEM) for `name`, for a server or a client.
    pub fn issue(&self, name: &str, usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let issuer = self.params.clone().self_signed(&self.key).unwrap();
        let cert = params.signed_by(&key, &issuer, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The validator of `contracts/reconcile_request@1.yaml`.
pub fn reconcile_request_schema() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contracts/reconcile_request@1.yaml"
    );
    let document: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&document).unwrap()
}
